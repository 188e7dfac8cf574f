//! Socket syscalls the standard library does not expose: non-blocking `socket`, `connect`
//! that may return `EINPROGRESS`, `listen` with a chosen backlog, `accept4`, `SO_ERROR`,
//! `SO_LINGER`, and the Unix-domain variants of `bind`/`connect`/`socketpair`.

use std::ffi::OsStr;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use super::cvt;

/// A new non-blocking, close-on-exec socket. Both flags are set atomically by `socket` itself,
/// so no other thread's `fork`/`exec` can inherit the fd in between.
pub(crate) fn new_socket(domain: i32, ty: i32) -> io::Result<OwnedFd> {
    let ty = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain syscall returning a fresh fd on success.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn inet_domain(addr: &SocketAddr) -> i32 {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// A new non-blocking, close-on-exec TCP socket for `addr`'s family.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    new_socket(inet_domain(addr), libc::SOCK_STREAM)
}

/// A new non-blocking, close-on-exec UDP socket for `addr`'s family.
pub(crate) fn udp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    new_socket(inet_domain(addr), libc::SOCK_DGRAM)
}

/// A new non-blocking, close-on-exec Unix-domain socket of type `ty` (`SOCK_STREAM`,
/// `SOCK_DGRAM`).
pub(crate) fn unix_socket(ty: i32) -> io::Result<OwnedFd> {
    new_socket(libc::AF_UNIX, ty)
}

/// A connected pair of non-blocking, close-on-exec Unix-domain sockets of type `ty`.
pub(crate) fn unix_pair(ty: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    let ty = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` is a live array of two c_ints for the kernel to fill.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: both fds were just created by socketpair and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets an integer socket option.
pub(crate) fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Reads an integer socket option.
pub(crate) fn get_int_opt(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: passes a live c_int buffer and its size.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) })?;
    Ok(value)
}

/// The pending error of a socket (`SO_ERROR`), e.g. the outcome of a non-blocking connect.
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let e = get_int_opt(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
}

/// Binds to an internet address.
pub(crate) fn bind(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    })?;
    Ok(())
}

/// Marks a bound stream socket as listening, with the given backlog.
pub(crate) fn listen(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(())
}

/// Binds and listens with the given backlog.
pub(crate) fn bind_listen(fd: &OwnedFd, addr: &SocketAddr, backlog: i32) -> io::Result<()> {
    bind(fd, addr)?;
    listen(fd, backlog)
}

/// Starts a non-blocking connect. `Ok(true)`: connected at once; `Ok(false)`: in progress
/// (wait for writability, then check [`take_error`]).
pub(crate) fn start_connect(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<bool> {
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes and outlives the call.
    unsafe { raw_connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) }
}

/// Binds a Unix-domain socket to a filesystem path.
pub(crate) fn bind_unix(fd: &OwnedFd, path: &Path) -> io::Result<()> {
    let (addr, len) = to_sockaddr_un(path)?;
    // SAFETY: `addr` holds a valid sockaddr_un of `len` bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    Ok(())
}

/// Starts a non-blocking connect of a Unix-domain socket, like [`start_connect`]. A listener
/// whose backlog is full makes Linux fail at once with `EAGAIN` (a `WouldBlock` error) rather
/// than leave the connect in progress; the caller decides whether to retry.
pub(crate) fn start_connect_unix(fd: &OwnedFd, path: &Path) -> io::Result<bool> {
    let (addr, len) = to_sockaddr_un(path)?;
    // SAFETY: `addr` holds a valid sockaddr_un of `len` bytes and outlives the call.
    unsafe { raw_connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) }
}

/// `connect` with `EINTR` retried and `EINPROGRESS` reported as `Ok(false)`.
///
/// # Safety
///
/// `addr` must point to a valid socket address of `len` bytes for the duration of the call.
unsafe fn raw_connect(
    fd: &OwnedFd,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> io::Result<bool> {
    // SAFETY: the caller guarantees `addr`/`len` describe a valid socket address.
    if unsafe { libc::connect(fd.as_raw_fd(), addr, len) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINPROGRESS) => Ok(false),
        // An interrupted connect goes on in the background (POSIX); calling connect again
        // would only say EALREADY, so it is "in progress" too.
        Some(libc::EINTR) => Ok(false),
        _ => Err(err),
    }
}

/// Sets `SO_LINGER`: `None` turns lingering off (close returns at once and the kernel sends
/// what is queued in the background); `Some(d)` makes close wait up to `d` for queued data to
/// go out, and `Some(Duration::ZERO)` makes close drop the data and send an RST. A non-zero
/// duration under a second rounds up to one second, so it never turns into the RST case.
pub(crate) fn set_linger(fd: RawFd, linger: Option<Duration>) -> io::Result<()> {
    let value = match linger {
        None => libc::linger {
            l_onoff: 0,
            l_linger: 0,
        },
        Some(d) => {
            let mut secs = d.as_secs().min(i32::MAX as u64) as i32;
            if secs == 0 && !d.is_zero() {
                secs = 1;
            }
            libc::linger {
                l_onoff: 1,
                l_linger: secs,
            }
        }
    };
    // SAFETY: passes a pointer to a live `linger` and its size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&value as *const libc::linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Reads `SO_LINGER` back (see [`set_linger`]).
pub(crate) fn linger(fd: RawFd) -> io::Result<Option<Duration>> {
    let mut value = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut len = mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: passes a live `linger` buffer and its size; any bit pattern is a valid linger.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut value as *mut libc::linger).cast(),
            &mut len,
        )
    })?;
    Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
}

/// Accepts one connection: a non-blocking, close-on-exec fd and the peer's address.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `storage`.
    let new = cvt(unsafe {
        libc::accept4(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: the fd was just created by accept4 and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(new) };
    Ok((owned, from_sockaddr(&storage)?))
}

fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A `sockaddr_un` for a filesystem path. Paths with a NUL byte (including Linux's abstract
/// names, which start with one) and paths too long for `sun_path` are rejected.
fn to_sockaddr_un(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: an all-zero sockaddr_un is a valid value (and leaves the path NUL-terminated).
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = OsStr::as_bytes(path.as_os_str());
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a Unix socket path must be non-empty and contain no NUL byte",
        ));
    }
    // Keep room for the terminating NUL, which some tools expect even though Linux does not.
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a Unix socket path must be shorter than {} bytes",
                addr.sun_path.len()
            ),
        ));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let path_offset = mem::offset_of!(libc::sockaddr_un, sun_path);
    Ok((addr, (path_offset + bytes.len() + 1) as libc::socklen_t))
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match storage.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        f => Err(io::Error::other(format!("unexpected address family {f}"))),
    }
}

/// `recv(2)` into possibly uninitialized memory; returns how many bytes the kernel wrote,
/// which are then initialized. `recv` rather than `read`: it goes straight to the socket
/// layer, skipping the VFS path `read` takes.
/// What a non-blocking peek saw on an idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeekState {
    /// Nothing to read and no EOF: the peer is (as far as we can tell) still there.
    Quiet,
    /// The peer closed its side (EOF) or the socket has an error.
    Closed,
    /// Bytes are waiting that nobody asked for.
    Unsolicited,
}

/// Looks at an idle socket without consuming anything (`recv` with `MSG_PEEK |
/// MSG_DONTWAIT`), to tell whether a pooled keep-alive connection was closed by the server.
pub(crate) fn peek_idle(fd: RawFd) -> PeekState {
    let mut byte = 0u8;
    // SAFETY: the buffer is one valid byte that outlives the call.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => PeekState::Closed,
        n if n > 0 => PeekState::Unsolicited,
        _ => match io::Error::last_os_error().kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => PeekState::Quiet,
            _ => PeekState::Closed,
        },
    }
}

pub(crate) fn read_uninit(fd: RawFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe writable memory owned by `buf` for the whole
    // call; the kernel writes at most `buf.len()` bytes and never reads them.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sends several buffers with one `sendmsg(2)` (`send(2)` for one), `MSG_NOSIGNAL` so a
/// closed peer is an `EPIPE` error rather than a SIGPIPE that kills the process, and without
/// the VFS path `writev` takes.
pub(crate) fn send_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let n = if let [one] = bufs {
        // SAFETY: `one` is a readable buffer of `one.len()` bytes for the whole call.
        unsafe { libc::send(fd, one.as_ptr().cast(), one.len(), libc::MSG_NOSIGNAL) }
    } else {
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        // IoSlice is guaranteed ABI-compatible with `struct iovec` on Unix; the kernel only
        // reads through these pointers.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
        // SAFETY: `msg` points at `bufs`, which outlives the call.
        unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) }
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `sendfile(2)` from `file` at `*offset` to the socket `fd`, at most `len` bytes; advances
/// `*offset` by what was sent.
pub(crate) fn sendfile(fd: RawFd, file: RawFd, offset: &mut u64, len: u64) -> io::Result<usize> {
    let mut off =
        i64::try_from(*offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // Linux sends at most 0x7ffff000 bytes per call.
    let count = len.min(0x7fff_f000) as usize;
    // SAFETY: `off` is a valid, exclusively borrowed off_t for the duration of the call.
    let n = unsafe { libc::sendfile(fd, file, &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off as u64;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_vectored_and_recv_move_every_byte_in_order() {
        let (a, b) = unix_pair(libc::SOCK_STREAM).unwrap();
        let parts: [&[u8]; 3] = [b"head;", b"", b"body"];
        let slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        assert_eq!(send_vectored(a.as_raw_fd(), &slices).unwrap(), 9);
        assert_eq!(
            send_vectored(a.as_raw_fd(), &[io::IoSlice::new(b"!")]).unwrap(),
            1
        );
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 32];
        let n = read_uninit(b.as_raw_fd(), &mut buf).unwrap();
        // SAFETY: recv initialized the first `n` bytes.
        let got: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        assert_eq!(got, b"head;body!");
    }

    #[test]
    fn sending_to_a_closed_peer_is_epipe_not_a_signal() {
        let (a, b) = unix_pair(libc::SOCK_STREAM).unwrap();
        drop(b);
        let err = send_vectored(a.as_raw_fd(), &[io::IoSlice::new(b"x")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn unix_paths_are_checked() {
        let (addr, len) = to_sockaddr_un(Path::new("/tmp/k.sock")).unwrap();
        assert_eq!(addr.sun_family as i32, libc::AF_UNIX);
        assert_eq!(
            len as usize,
            mem::offset_of!(libc::sockaddr_un, sun_path) + "/tmp/k.sock".len() + 1
        );
        assert_eq!(addr.sun_path[11], 0);
        for bad in ["", "a\0b", &"x".repeat(108)] {
            let err = to_sockaddr_un(Path::new(bad)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(to_sockaddr_un(Path::new(&"x".repeat(107))).is_ok());
    }

    #[test]
    fn sockaddr_round_trips() {
        for a in ["127.0.0.1:8080", "[::1]:443", "[fe80::1%2]:9"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (storage, _) = to_sockaddr(&addr);
            assert_eq!(from_sockaddr(&storage).unwrap(), addr);
        }
    }
}
