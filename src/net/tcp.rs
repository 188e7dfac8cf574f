//! TCP: a listener that accepts without blocking the loop, and a stream for both directions.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::reactor::{Direction, Registration};
use crate::sys::socket;

/// Default `listen` backlog; the kernel caps it at `net.core.somaxconn`.
const DEFAULT_BACKLOG: i32 = 1024;

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
    // Field order matters: the registration is dropped (deregistered) before the fd closes.
    reg: Registration,
    inner: std::net::TcpListener,
}

impl TcpListener {
    /// Binds to `addr` (port 0 picks a free port) with `SO_REUSEADDR` and a backlog of 1024,
    /// registered with the running loop.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(addr, DEFAULT_BACKLOG)
    }

    /// Binds with an explicit `listen` backlog.
    pub fn bind_with_backlog(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
        let fd = socket::tcp_socket(&addr)?;
        socket::set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        socket::bind_listen(&fd, &addr, backlog)?;
        TcpListener::from_fd(fd)
    }

    fn from_fd(fd: OwnedFd) -> io::Result<TcpListener> {
        let reg = Registration::new(fd.as_raw_fd())?;
        Ok(TcpListener {
            reg,
            inner: std::net::TcpListener::from(fd),
        })
    }

    /// Waits for a connection; returns the stream and the peer's address. Cancellation-safe:
    /// a connection is only taken from the kernel in the poll that returns it.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) = poll_fn(|cx| {
            self.reg.poll_io(Direction::Read, cx, || {
                socket::accept(self.inner.as_raw_fd())
            })
        })
        .await?;
        Ok((TcpStream::from_fd(fd)?, peer))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
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
    // Field order matters: the registration is dropped (deregistered) before the fd closes.
    reg: Registration,
    inner: std::net::TcpStream,
}

impl TcpStream {
    /// Connects to `addr` without blocking the loop.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = socket::tcp_socket(&addr)?;
        let connected = socket::start_connect(&fd, &addr)?;
        let stream = TcpStream::from_fd(fd)?;
        if !connected {
            // The connect finishes when the socket turns writable; SO_ERROR says how.
            poll_fn(|cx| stream.reg.poll_ready(Direction::Write, cx)).await?;
            if let Some(e) = socket::take_error(stream.as_raw_fd())? {
                return Err(e);
            }
        }
        Ok(stream)
    }

    fn from_fd(fd: OwnedFd) -> io::Result<TcpStream> {
        let reg = Registration::new(fd.as_raw_fd())?;
        Ok(TcpStream {
            reg,
            inner: std::net::TcpStream::from(fd),
        })
    }

    /// Reads into `buf`; `Ok(0)` means the peer closed its side (EOF).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_priv(cx, buf)).await
    }

    /// Reads exactly `buf.len()` bytes; an `UnexpectedEof` error if the peer closes first.
    pub async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Writes some of `buf`, returning how much.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_priv(cx, buf)).await
    }

    /// Writes all of `buf`, waiting while the kernel's send buffer is full.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Shuts down the read half, the write half (sends FIN: the peer reads EOF) or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Disables (true) or enables Nagle's algorithm.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// Whether Nagle's algorithm is disabled.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.reg
            .poll_io(Direction::Read, cx, || (&self.inner).read(buf))
    }

    fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.reg
            .poll_io(Direction::Write, cx, || (&self.inner).write(buf))
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
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

impl futures_io::AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}

impl futures_io::AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the kernel; there is no user-space buffer to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown(Shutdown::Write))
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_close(cx)
    }
}
