//! TCP: a listener that accepts without blocking the loop, and a stream for both directions.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use super::options::{self, ListenOptions};
use super::registered::{accept_loop, impl_async_io, Registered};
use crate::sys::socket;

/// A TCP listening socket.
///
/// ```
/// use kettle::net::{TcpListener, TcpStream};
/// kettle::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = kettle::spawn(async move {
///         let s = TcpStream::connect(addr).await.unwrap();
///         s.write_all(b"ping").await.unwrap();
///     });
///     let (conn, _peer) = listener.accept().await.unwrap();
///     let mut buf = [0u8; 4];
///     conn.read_exact(&mut buf).await.unwrap();
///     assert_eq!(&buf, b"ping");
///     client.await.unwrap();
/// });
/// ```
pub struct TcpListener {
    io: Registered<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (port 0 picks a free port) with `SO_REUSEADDR` and a backlog of 1024,
    /// registered with the running loop.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, ListenOptions::default())
    }

    /// Binds with an explicit `listen` backlog (and the other [`ListenOptions`] defaults).
    pub fn bind_with_backlog(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, ListenOptions::default().backlog(backlog))
    }

    /// Binds with the given [`ListenOptions`]: backlog, `SO_REUSEADDR`, `SO_REUSEPORT`.
    ///
    /// ```
    /// use kettle::net::{ListenOptions, TcpListener};
    /// kettle::run(async {
    ///     let options = ListenOptions::new().backlog(16).reuse_port(true);
    ///     let listener = TcpListener::bind_with("127.0.0.1:0".parse().unwrap(), options).unwrap();
    ///     assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// });
    /// ```
    pub fn bind_with(addr: SocketAddr, options: ListenOptions) -> io::Result<TcpListener> {
        let fd = socket::tcp_socket(&addr)?;
        // Options must be set before bind: SO_REUSEPORT only counts if every socket sharing
        // the port had it when it bound.
        options.apply(fd.as_raw_fd())?;
        socket::bind_listen(&fd, &addr, options.backlog)?;
        TcpListener::from_fd(fd)
    }

    /// Binds a listening socket without registering it with a loop, for a loop on another
    /// thread to adopt ([`from_std`](Self::from_std) or
    /// [`from_std_shared`](Self::from_std_shared)): how a group of loops gets its listeners.
    pub(crate) fn bind_std(
        addr: SocketAddr,
        options: ListenOptions,
    ) -> io::Result<std::net::TcpListener> {
        let fd = socket::tcp_socket(&addr)?;
        options.apply(fd.as_raw_fd())?;
        socket::bind_listen(&fd, &addr, options.backlog)?;
        Ok(std::net::TcpListener::from(fd))
    }

    /// Adopts one of several handles (`try_clone`s) of a listener that several loops accept
    /// from: registered with `EPOLLEXCLUSIVE`, so each new connection wakes one waiting loop.
    pub(crate) fn from_std_shared(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: Registered::new_shared_listener(listener)?,
        })
    }

    /// Adopts a listener bound by other code (socket activation, a listener shared
    /// with a library): it is made non-blocking and registered with the running loop.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::from_fd(listener.into())
    }

    fn from_fd(fd: OwnedFd) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: Registered::new(std::net::TcpListener::from(fd))?,
        })
    }

    /// Waits for a connection; returns the stream and the peer's address. Cancellation-safe:
    /// a connection is only taken from the kernel in the poll that returns it.
    ///
    /// Transient failures do not end the wait: a connection aborted before it was accepted is
    /// skipped at once, and when the process or system is out of file descriptors or memory
    /// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) a warning is logged through `tracing` and the
    /// accept is retried every 100 ms, the pending connection staying queued in the kernel,
    /// until it succeeds. Other errors are returned.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) = accept_loop(&self.io, |l| socket::accept(l.as_raw_fd())).await?;
        Ok((TcpStream::from_fd(fd)?, peer))
    }

    /// Takes a connection the kernel has already queued, without waiting and without asking
    /// the loop's readiness bits (which lag behind the kernel while the loop is busy): one
    /// `accept4` call. `Ok(None)` when the queue is empty. For draining a listener before it
    /// closes, since closing resets what is still queued.
    pub(crate) fn accept_queued(&self) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        loop {
            match socket::accept(self.io.as_raw_fd()) {
                Ok((fd, peer)) => return Ok(Some((TcpStream::from_fd(fd)?, peer))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => match super::registered::accept_action(&e) {
                    super::registered::AcceptAction::Retry => continue,
                    _ => return Err(e),
                },
            }
        }
    }

    /// [`accept`](Self::accept) with a deadline: a `TimedOut` error if no connection arrives
    /// within `timeout`. The listener stays usable either way.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kettle::net::TcpListener;
    /// kettle::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let err = listener.accept_timeout(Duration::from_millis(10)).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// });
    /// ```
    pub async fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        with_timeout(self.accept(), timeout, "accept timed out").await
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

/// Runs `op` under `timeout`, turning the deadline into an `io::ErrorKind::TimedOut` error.
pub(crate) async fn with_timeout<T>(
    op: impl std::future::Future<Output = io::Result<T>>,
    timeout: Duration,
    what: &'static str,
) -> io::Result<T> {
    match crate::wait_for(op, timeout).await {
        Ok(result) => result,
        Err(e) if e.is_timeout() => Err(io::Error::new(io::ErrorKind::TimedOut, what)),
        Err(e) => Err(io::Error::other(e)),
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// A TCP connection registered with the event loop.
///
/// Reads and writes take `&self`, so one task may read while another writes (the stream can be
/// shared through an `Rc`, and `&TcpStream` implements `AsyncRead`/`AsyncWrite` too).
pub struct TcpStream {
    io: Registered<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` without blocking the loop.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = socket::tcp_socket(&addr)?;
        let connected = socket::start_connect(&fd, &addr)?;
        let stream = TcpStream::from_fd(fd)?;
        if !connected {
            stream.io.finish_connect().await?;
        }
        Ok(stream)
    }

    /// [`connect`](Self::connect) with a deadline: a `TimedOut` error if the connection is not
    /// established within `timeout` (the half-open socket is closed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kettle::net::{TcpListener, TcpStream};
    /// kettle::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let s = TcpStream::connect_timeout(addr, Duration::from_secs(5)).await.unwrap();
    ///     assert_eq!(s.peer_addr().unwrap(), addr);
    /// });
    /// ```
    pub async fn connect_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        with_timeout(TcpStream::connect(addr), timeout, "connect timed out").await
    }

    /// Adopts a connected std stream: it is made non-blocking and registered with the
    /// running loop.
    ///
    /// ```
    /// use kettle::net::{TcpListener, TcpStream};
    /// kettle::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     let client = TcpStream::from_std(std_stream).unwrap();
    ///     client.write_all(b"hi").await.unwrap();
    ///     let mut buf = [0u8; 2];
    ///     server.read_exact(&mut buf).await.unwrap();
    ///     assert_eq!(&buf, b"hi");
    /// });
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_fd(stream.into())
    }

    fn from_fd(fd: OwnedFd) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: Registered::new(std::net::TcpStream::from(fd))?,
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

    /// Writes all of `buf`, waiting while the kernel's send buffer is full. Not
    /// cancellation-safe: a cancelled call may have sent part of `buf`.
    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.io.write_all(buf).await
    }

    /// Reads whatever is available into the spare capacity of `buf`, reserving `min_spare`
    /// bytes first when less is free, and returns how many bytes were appended (`0`: EOF).
    /// Cancellation-safe. The bytes become part of `buf` without zero-filling or copying, so
    /// they can be split off later as [`bytes::Bytes`].
    ///
    /// ```
    /// use kettle::net::{TcpListener, TcpStream};
    /// kettle::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    ///     let mut buf = bytes::BytesMut::new();
    ///     let n = server.read_buf(&mut buf, 4096).await.unwrap();
    ///     assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n");
    /// });
    /// ```
    pub async fn read_buf(&self, buf: &mut bytes::BytesMut, min_spare: usize) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.io.poll_read_buf(cx, buf, min_spare)).await
    }

    /// The poll form of [`read_buf`](Self::read_buf).
    pub fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
        min_spare: usize,
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read_buf(cx, buf, min_spare)
    }

    /// Writes from several buffers with one `writev` syscall; returns how many bytes the
    /// kernel took (possibly fewer than the total). Cancellation-safe.
    pub async fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.io.poll_write_vectored(cx, bufs)).await
    }

    /// The poll form of [`write_vectored`](Self::write_vectored).
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    /// One non-blocking `sendmsg`, outside the reactor: `WouldBlock` if the socket is full,
    /// and no waker is registered either way.
    ///
    /// For output that a reading task sends on the side (a TLS alert or key update produced
    /// by a read): a registering write would replace the waker of the task that owns the
    /// write direction, which would then never hear of the next writable edge. Leaving the
    /// readiness bits alone is safe: a bit that stays set only costs the next registered
    /// write one `EWOULDBLOCK`.
    pub(crate) fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        loop {
            match socket::send_vectored(self.as_raw_fd(), bufs) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Sends up to `len` bytes of `file` from `*offset` with `sendfile(2)` (no copy through
    /// user space), waiting while the socket is full; advances `*offset` and returns the
    /// bytes sent (`0`: the file ended first).
    pub(crate) async fn sendfile(
        &self,
        file: &std::fs::File,
        offset: &mut u64,
        len: u64,
    ) -> io::Result<usize> {
        use std::os::fd::AsRawFd as _;
        let fd = self.io.as_raw_fd();
        let src = file.as_raw_fd();
        self.io
            .io(crate::runtime::reactor::Direction::Write, |_| {
                socket::sendfile(fd, src, offset, len)
            })
            .await
    }

    /// Whether the loop has seen the socket turn readable (data, EOF or an error) since the
    /// last read that drained it; a syscall-free liveness check for idle connections.
    pub(crate) fn read_event_pending(&self) -> bool {
        self.io.read_event_pending()
    }

    /// Polls for a read into `buf` (the poll form of [`read`](Self::read)).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }

    /// Polls for a write of `buf` (the poll form of [`write`](Self::write)).
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    /// Shuts down the read half, the write half (sends FIN: the peer reads EOF) or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Disables (true) or enables Nagle's algorithm.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }

    /// Whether Nagle's algorithm is disabled.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Turns TCP keep-alive on, probing the peer after `idle` without traffic (whole seconds,
    /// rounded up, at least one), or off with `None`. Probing detects peers that vanished
    /// without a FIN or RST (a crashed host, a dropped NAT mapping), which would otherwise
    /// leave a reader waiting forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kettle::net::{TcpListener, TcpStream};
    /// kettle::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let s = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     s.set_keepalive(Some(Duration::from_secs(30))).unwrap();
    ///     assert_eq!(s.keepalive().unwrap(), Some(Duration::from_secs(30)));
    ///     s.set_keepalive(None).unwrap();
    ///     assert_eq!(s.keepalive().unwrap(), None);
    /// });
    /// ```
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        options::set_keepalive(self.as_raw_fd(), idle)
    }

    /// The keep-alive idle time, or `None` if keep-alive is off.
    pub fn keepalive(&self) -> io::Result<Option<Duration>> {
        options::keepalive(self.as_raw_fd())
    }

    /// Sets `SO_LINGER`, what closing the socket does with unsent data. `None` (the default):
    /// close at once, the kernel sends the rest in the background. `Some(d)`: closing waits up
    /// to `d` (whole seconds, a fraction rounds up) for the data to go out. `Some(ZERO)`:
    /// closing discards unsent data and resets the connection (the peer sees
    /// `ConnectionReset`), which also skips `TIME_WAIT`.
    ///
    /// A non-zero linger makes dropping the stream block the loop's thread while data drains;
    /// prefer `None` or zero on an event loop.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        socket::set_linger(self.as_raw_fd(), linger)
    }

    /// The `SO_LINGER` setting (see [`set_linger`](Self::set_linger)).
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        socket::linger(self.as_raw_fd())
    }

    /// Asks for a kernel receive buffer of `size` bytes (`SO_RCVBUF`). Linux doubles the
    /// value for bookkeeping and caps it at `net.core.rmem_max`, so
    /// [`recv_buffer_size`](Self::recv_buffer_size) reads back a different number.
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        options::set_recv_buffer_size(self.as_raw_fd(), size)
    }

    /// The kernel receive buffer size (`SO_RCVBUF`).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        options::recv_buffer_size(self.as_raw_fd())
    }

    /// Asks for a kernel send buffer of `size` bytes (`SO_SNDBUF`); doubled and capped like
    /// [`set_recv_buffer_size`](Self::set_recv_buffer_size).
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        options::set_send_buffer_size(self.as_raw_fd(), size)
    }

    /// The kernel send buffer size (`SO_SNDBUF`).
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        options::send_buffer_size(self.as_raw_fd())
    }

    /// Sets the time-to-live (IPv4) or hop limit (IPv6) of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        options::set_ttl(self.as_raw_fd(), &self.local_addr()?, ttl)
    }

    /// The time-to-live (IPv4) or hop limit (IPv6) of outgoing packets.
    pub fn ttl(&self) -> io::Result<u32> {
        options::ttl(self.as_raw_fd(), &self.local_addr()?)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        socket::take_error(self.as_raw_fd())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

impl_async_io!(TcpStream, io);
