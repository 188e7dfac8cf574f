//! Unix-domain sockets: a listener and stream for local connections through a filesystem path,
//! and a datagram socket.
//!
//! Addresses are std's [`std::os::unix::net::SocketAddr`]: `as_pathname()` gives the path of a
//! bound socket, `is_unnamed()` says the peer never bound one (the usual case for a client).

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use super::options::DEFAULT_BACKLOG;
use super::registered::{accept_loop, impl_async_io, Registered};
use crate::runtime::reactor::Direction;
use crate::sys::socket;

/// A Unix-domain listening socket bound to a filesystem path (asyncio's
/// `create_unix_server`, as a socket).
///
/// Binding creates the socket file and fails with `AddrInUse` if the path exists; dropping the
/// listener does not remove the file, so a server that restarts should remove it first. (The
/// [`Server`](super::Server) of [`start_unix_server`](super::start_unix_server) does remove
/// its file when it closes, as asyncio 3.13 does.)
///
/// ```
/// use kettle::net::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("kettle-doc-{}-listener.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// kettle::run(async {
///     let listener = UnixListener::bind(&path).unwrap();
///     let client = UnixStream::connect(&path).await.unwrap();
///     let (conn, _addr) = listener.accept().await.unwrap();
///     client.write_all(b"ping").await.unwrap();
///     let mut buf = [0u8; 4];
///     conn.read_exact(&mut buf).await.unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: Registered<std_unix::UnixListener>,
}

impl UnixListener {
    /// Creates a socket file at `path` and listens on it (backlog 1024), registered with the
    /// running loop.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::bind_with_backlog(path, DEFAULT_BACKLOG)
    }

    /// Binds with an explicit `listen` backlog: how many connections may wait for `accept`
    /// before [`UnixStream::connect`] has to wait for room.
    pub fn bind_with_backlog(path: impl AsRef<Path>, backlog: i32) -> io::Result<UnixListener> {
        let fd = socket::unix_socket(libc::SOCK_STREAM)?;
        socket::bind_unix(&fd, path.as_ref())?;
        socket::listen(&fd, backlog)?;
        Ok(UnixListener {
            io: Registered::new(std_unix::UnixListener::from(fd))?,
        })
    }

    /// Waits for a connection; returns the stream and the peer's address (usually unnamed).
    /// Cancellation-safe, and rides out fd exhaustion like
    /// [`TcpListener::accept`](super::TcpListener::accept).
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = accept_loop(&self.io, |l| l.accept()).await?;
        // std's accept sets close-on-exec but not non-blocking.
        stream.set_nonblocking(true)?;
        Ok((UnixStream::from_std(stream)?, addr))
    }

    /// The address (path) the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// First and largest pause between `connect` attempts while the listener's backlog is full.
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(1);
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(100);

/// A Unix-domain stream connection registered with the event loop.
///
/// Like [`TcpStream`](super::TcpStream): reads and writes take `&self`, and both `UnixStream`
/// and `&UnixStream` implement `futures_io::AsyncRead`/`AsyncWrite`.
///
/// ```
/// use kettle::net::UnixStream;
/// kettle::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     a.write_all(b"hello").await.unwrap();
///     drop(a); // EOF for b
///     let mut got = Vec::new();
///     let mut buf = [0u8; 16];
///     loop {
///         match b.read(&mut buf).await.unwrap() {
///             0 => break,
///             n => got.extend_from_slice(&buf[..n]),
///         }
///     }
///     assert_eq!(got, b"hello");
/// });
/// ```
pub struct UnixStream {
    io: Registered<std_unix::UnixStream>,
}

impl UnixStream {
    /// Connects to the listener at `path` without blocking the loop.
    ///
    /// Linux refuses a non-blocking Unix connect outright (`EAGAIN`) while the listener's
    /// backlog is full, and there is no readiness event for "room in the backlog", so the
    /// connect is retried after a pause (1 ms, doubling up to 100 ms) until the listener makes
    /// room. Wrap the call in [`wait_for`](crate::wait_for) to bound the wait.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let fd = socket::unix_socket(libc::SOCK_STREAM)?;
        let mut pause = CONNECT_RETRY_FIRST;
        let connected = loop {
            match socket::start_connect_unix(&fd, path) {
                Ok(connected) => break connected,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(pause).await;
                    pause = (pause * 2).min(CONNECT_RETRY_MAX);
                }
                Err(e) => return Err(e),
            }
        };
        let stream = UnixStream::from_fd(fd)?;
        if !connected {
            // Not expected for Unix sockets on Linux, but handled as for TCP.
            stream.io.finish_connect().await?;
        }
        Ok(stream)
    }

    /// A connected pair of streams (`socketpair`), e.g. to talk to a child task or process.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = socket::unix_pair(libc::SOCK_STREAM)?;
        Ok((UnixStream::from_fd(a)?, UnixStream::from_fd(b)?))
    }

    fn from_fd(fd: OwnedFd) -> io::Result<UnixStream> {
        UnixStream::from_std(std_unix::UnixStream::from(fd))
    }

    fn from_std(stream: std_unix::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: Registered::new(stream)?,
        })
    }

    /// Reads into `buf`; `Ok(0)` means the peer closed its side (EOF). Cancellation-safe.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(buf).await
    }

    /// Reads exactly `buf.len()` bytes; an `UnexpectedEof` error if the peer closes first.
    /// Not cancellation-safe: bytes read before a cancellation are lost with the future.
    pub async fn read_exact(&self, buf: &mut [u8]) -> io::Result<()> {
        self.io.read_exact(buf).await
    }

    /// Writes some of `buf`, returning how much. Cancellation-safe.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(buf).await
    }

    /// Writes all of `buf`, waiting while the kernel's buffer is full. Not cancellation-safe:
    /// a cancelled call may have sent part of `buf`.
    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.io.write_all(buf).await
    }

    /// Polls for a read into `buf` (the poll form of [`read`](Self::read)).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }

    /// Polls for a write of `buf` (the poll form of [`write`](Self::write)).
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    /// Reads into the spare capacity of `buf`, as `TcpStream::poll_read_buf` does, so every
    /// stream transport offers the same operations.
    pub(crate) fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
        min_spare: usize,
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read_buf(cx, buf, min_spare)
    }

    /// Writes from several buffers with one `sendmsg`.
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    /// Shuts down the read half, the write half (the peer reads EOF) or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The peer's address (the listener's path for a client; usually unnamed for a server).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address (usually unnamed for a client).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        socket::take_error(self.as_raw_fd())
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

impl_async_io!(UnixStream, io);

/// A Unix-domain datagram socket registered with the event loop: message boundaries are kept,
/// and (unlike UDP) delivery between two local sockets is reliable and ordered; a sender waits
/// while the receiver's queue is full instead of losing datagrams.
///
/// ```
/// use kettle::net::UnixDatagram;
/// kettle::run(async {
///     let (a, b) = UnixDatagram::pair().unwrap();
///     a.send(b"one").await.unwrap();
///     a.send(b"two").await.unwrap();
///     let mut buf = [0u8; 16];
///     let n = b.recv(&mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"one");
///     let n = b.recv(&mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"two");
/// });
/// ```
pub struct UnixDatagram {
    io: Registered<std_unix::UnixDatagram>,
}

impl UnixDatagram {
    /// Creates a socket file at `path` and binds to it, so others can
    /// [`send_to`](Self::send_to) it. Dropping the socket leaves the file in place.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let fd = socket::unix_socket(libc::SOCK_DGRAM)?;
        socket::bind_unix(&fd, path.as_ref())?;
        UnixDatagram::from_fd(fd)
    }

    /// A socket bound to no path: it can send, and receive replies only once
    /// [`connect`](Self::connect)ed or through a [`pair`](Self::pair).
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_fd(socket::unix_socket(libc::SOCK_DGRAM)?)
    }

    /// A connected pair of datagram sockets (`socketpair`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = socket::unix_pair(libc::SOCK_DGRAM)?;
        Ok((UnixDatagram::from_fd(a)?, UnixDatagram::from_fd(b)?))
    }

    fn from_fd(fd: OwnedFd) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: Registered::new(std_unix::UnixDatagram::from(fd))?,
        })
    }

    /// Sets the default peer for [`send`](Self::send) and [`recv`](Self::recv); datagrams
    /// from other sockets are then dropped. Does not wait.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// Sends one datagram to the connected peer. Cancellation-safe.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.io(Direction::Write, |s| s.send(buf)).await
    }

    /// Receives one datagram. Cancellation-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.io(Direction::Read, |s| s.recv(buf)).await
    }

    /// Sends one datagram to the socket bound at `path`. Cancellation-safe.
    ///
    /// ```
    /// use kettle::net::UnixDatagram;
    /// let dir = std::env::temp_dir();
    /// let path = dir.join(format!("kettle-doc-{}-dgram.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// kettle::run(async {
    ///     let server = UnixDatagram::bind(&path).unwrap();
    ///     let client = UnixDatagram::unbound().unwrap();
    ///     client.send_to(b"hello", &path).await.unwrap();
    ///     let mut buf = [0u8; 16];
    ///     let (n, from) = server.recv_from(&mut buf).await.unwrap();
    ///     assert_eq!(&buf[..n], b"hello");
    ///     assert!(from.is_unnamed()); // an unbound client cannot be answered
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.io(Direction::Write, |s| s.send_to(buf, path)).await
    }

    /// Receives one datagram; returns its length and the sender's address. Cancellation-safe.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.io(Direction::Read, |s| s.recv_from(buf)).await
    }

    /// The poll form of [`send`](Self::send).
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(Direction::Write, cx, |s| s.send(buf))
    }

    /// The poll form of [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(Direction::Read, cx, |s| s.recv(buf))
    }

    /// The address this socket is bound to (unnamed if unbound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address; a `NotConnected` error if not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down receiving, sending or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        socket::take_error(self.as_raw_fd())
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}
