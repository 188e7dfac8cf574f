//! Socket options: how a listener is bound ([`ListenOptions`]) and the option calls shared by
//! the socket types (keep-alive, buffer sizes, TTL).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::sys::socket;

/// Default `listen` backlog; the kernel caps it at `net.core.somaxconn`.
pub(crate) const DEFAULT_BACKLOG: i32 = 1024;

/// How [`TcpListener::bind_with`](super::TcpListener::bind_with) sets up its socket (the
/// `backlog`, `reuse_address` and `reuse_port` arguments of asyncio's `create_server`).
///
/// ```
/// use kettle::net::{ListenOptions, TcpListener};
/// kettle::run(async {
///     let options = ListenOptions { reuse_port: true, ..ListenOptions::default() };
///     let a = TcpListener::bind_with("127.0.0.1:0".parse().unwrap(), options).unwrap();
///     // A second listener on the same port, e.g. one per core: the kernel spreads the
///     // incoming connections over them.
///     let b = TcpListener::bind_with(a.local_addr().unwrap(), options).unwrap();
///     assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOptions {
    /// The `listen` backlog: how many connections the kernel queues before `accept` takes
    /// them (capped by `net.core.somaxconn`). Default 1024.
    pub backlog: i32,
    /// `SO_REUSEADDR`: bind even while connections of a previous listener on the port linger
    /// in `TIME_WAIT`, so a restarted server need not wait for them. Default `true`, as in
    /// asyncio on Unix.
    pub reuse_address: bool,
    /// `SO_REUSEPORT`: let several sockets (of the same user) bind the same address, each with
    /// its own accept queue; the kernel load-balances new connections among them. This is how
    /// a thread-per-core server runs one listener per loop. Default `false`.
    pub reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> ListenOptions {
        ListenOptions {
            backlog: DEFAULT_BACKLOG,
            reuse_address: true,
            reuse_port: false,
        }
    }
}

impl ListenOptions {
    /// The defaults: backlog 1024, `SO_REUSEADDR` on, `SO_REUSEPORT` off.
    pub fn new() -> ListenOptions {
        ListenOptions::default()
    }

    /// Sets the `listen` backlog.
    pub fn backlog(mut self, backlog: i32) -> ListenOptions {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEADDR`.
    pub fn reuse_address(mut self, on: bool) -> ListenOptions {
        self.reuse_address = on;
        self
    }

    /// Sets `SO_REUSEPORT`.
    pub fn reuse_port(mut self, on: bool) -> ListenOptions {
        self.reuse_port = on;
        self
    }

    /// Applies the socket options (not the backlog) to an unbound socket.
    pub(crate) fn apply(&self, fd: RawFd) -> io::Result<()> {
        // Set explicitly either way, so `false` means off whatever the platform default is.
        socket::set_int_opt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            self.reuse_address as i32,
        )?;
        socket::set_int_opt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            self.reuse_port as i32,
        )
    }
}

/// `SO_KEEPALIVE` plus `TCP_KEEPIDLE`: `Some(idle)` probes a connection after `idle` without
/// traffic (whole seconds, at least one), `None` turns probing off.
pub(crate) fn set_keepalive(fd: RawFd, idle: Option<Duration>) -> io::Result<()> {
    match idle {
        None => socket::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0),
        Some(d) => {
            // The kernel counts in whole seconds and rejects 0; round up so a short idle time
            // still means "soon" rather than an error.
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            let secs = secs.clamp(1, i16::MAX as u64) as i32; // Linux caps TCP_KEEPIDLE at 32767.
            socket::set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
            socket::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
        }
    }
}

/// Reads back what [`set_keepalive`] set.
pub(crate) fn keepalive(fd: RawFd) -> io::Result<Option<Duration>> {
    if socket::get_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? == 0 {
        return Ok(None);
    }
    let secs = socket::get_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?;
    Ok(Some(Duration::from_secs(secs.max(0) as u64)))
}

fn buffer_opt(size: usize) -> io::Result<i32> {
    i32::try_from(size).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket buffer size does not fit in a C int",
        )
    })
}

/// Sets `SO_RCVBUF` (the kernel doubles the value for its bookkeeping).
pub(crate) fn set_recv_buffer_size(fd: RawFd, size: usize) -> io::Result<()> {
    socket::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, buffer_opt(size)?)
}

/// Reads `SO_RCVBUF`.
pub(crate) fn recv_buffer_size(fd: RawFd) -> io::Result<usize> {
    Ok(socket::get_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?.max(0) as usize)
}

/// Sets `SO_SNDBUF` (the kernel doubles the value for its bookkeeping).
pub(crate) fn set_send_buffer_size(fd: RawFd, size: usize) -> io::Result<()> {
    socket::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, buffer_opt(size)?)
}

/// Reads `SO_SNDBUF`.
pub(crate) fn send_buffer_size(fd: RawFd) -> io::Result<usize> {
    Ok(socket::get_int_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?.max(0) as usize)
}

/// The (level, name) of the unicast TTL / hop-limit option for a socket bound to `local`:
/// `IP_TTL` for IPv4, `IPV6_UNICAST_HOPS` for IPv6 (where `IP_TTL` would only cover
/// IPv4-mapped traffic).
fn ttl_opt(local: &SocketAddr) -> (i32, i32) {
    match local {
        SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_TTL),
        SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS),
    }
}

/// Sets the TTL (hop limit) of outgoing packets.
pub(crate) fn set_ttl(fd: RawFd, local: &SocketAddr, ttl: u32) -> io::Result<()> {
    let ttl = i32::try_from(ttl)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL out of range"))?;
    let (level, name) = ttl_opt(local);
    socket::set_int_opt(fd, level, name, ttl)
}

/// Reads the TTL (hop limit) of outgoing packets.
pub(crate) fn ttl(fd: RawFd, local: &SocketAddr) -> io::Result<u32> {
    let (level, name) = ttl_opt(local);
    Ok(socket::get_int_opt(fd, level, name)?.max(0) as u32)
}
