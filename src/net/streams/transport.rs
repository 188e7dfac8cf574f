//! [`Transport`]: the socket under a stream pair (or a web server's connection): TCP,
//! Unix-domain, or TLS over TCP.
//!
//! The reader and writer need only a handful of operations from their socket (poll a read,
//! poll a write, flush, shut down, addresses); this enum forwards each to the socket it holds.
//! A `match` per call keeps every kind on the same code path with no boxing and no virtual
//! call, so TCP streams cost what they did when they were the only kind.
//!
//! TLS adds one thing the plain sockets lack: bytes a write accepted may still sit in the
//! session's buffer (encrypted, not yet sent), so writers finish with
//! [`poll_flush`](Transport::poll_flush), and ending the sending side means sending
//! `close_notify` first ([`poll_shutdown_write`](Transport::poll_shutdown_write)). For TCP and
//! Unix both are immediate.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use crate::net::{SocketAddress, TcpStream, UnixStream};
use crate::tls::TlsStream;

/// The connected socket under a [`StreamReader`](super::StreamReader) /
/// [`StreamWriter`](super::StreamWriter) pair (what asyncio calls the transport), from
/// [`StreamWriter::transport`](super::StreamWriter::transport).
///
/// Use it for what the streams do not cover, such as socket options:
///
/// ```
/// use kettle::net::streams::Transport;
/// kettle::run(async {
///     let server = kettle::start_server(|_r, _w| async {}, "127.0.0.1", 0).await.unwrap();
///     let port = server.sockets()[0].port().unwrap();
///     let (_reader, writer) = kettle::open_connection("127.0.0.1", port).await.unwrap();
///     match writer.transport() {
///         Transport::Tcp(tcp) => tcp.set_nodelay(true).unwrap(),
///         Transport::Unix(_) => unreachable!("open_connection is TCP"),
///         _ => unreachable!("a transport kind added later"),
///     }
///     assert!(writer.transport().as_tcp().unwrap().nodelay().unwrap());
///     assert!(writer.transport().as_unix().is_none());
/// });
/// ```
///
/// Reading or writing the socket directly bypasses the reader's buffer and the writer's
/// buffer and ordering.
#[non_exhaustive]
pub enum Transport {
    /// A TCP connection ([`open_connection`](super::open_connection),
    /// [`start_server`](super::start_server)).
    Tcp(TcpStream),
    /// A Unix-domain stream connection
    /// ([`open_unix_connection`](super::open_unix_connection),
    /// [`start_unix_server`](super::start_unix_server)).
    Unix(UnixStream),
    /// A TLS connection over TCP ([`open_connection_tls`](super::open_connection_tls),
    /// [`start_server_tls`](super::start_server_tls), an HTTPS web server).
    Tls(TlsStream),
}

impl Transport {
    /// The TCP stream, if this is a TCP connection (TLS included: the stream under it, for
    /// socket options).
    pub fn as_tcp(&self) -> Option<&TcpStream> {
        match self {
            Transport::Tcp(s) => Some(s),
            Transport::Tls(s) => Some(s.get_ref()),
            Transport::Unix(_) => None,
        }
    }

    /// The Unix-domain stream, if this is a Unix connection.
    pub fn as_unix(&self) -> Option<&UnixStream> {
        match self {
            Transport::Unix(s) => Some(s),
            Transport::Tcp(_) | Transport::Tls(_) => None,
        }
    }

    /// The TLS session, if this is a TLS connection (for its ALPN protocol, version, peer
    /// certificates: asyncio's `get_extra_info('ssl_object')`).
    pub fn as_tls(&self) -> Option<&TlsStream> {
        match self {
            Transport::Tls(s) => Some(s),
            Transport::Tcp(_) | Transport::Unix(_) => None,
        }
    }

    /// Whether this is a TLS connection.
    #[inline]
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The remote address: `ip:port`, or the path of the listener a Unix client connected to
    /// (an accepted Unix connection's peer is usually unnamed).
    pub fn peer_addr(&self) -> io::Result<SocketAddress> {
        match self {
            Transport::Tcp(s) => s.peer_addr().map(SocketAddress::Inet),
            Transport::Tls(s) => s.get_ref().peer_addr().map(SocketAddress::Inet),
            Transport::Unix(s) => s.peer_addr().map(SocketAddress::from),
        }
    }

    /// The local address: `ip:port`, or the listener's path on the accepting side of a Unix
    /// connection (a Unix client's own end is usually unnamed).
    pub fn local_addr(&self) -> io::Result<SocketAddress> {
        match self {
            Transport::Tcp(s) => s.local_addr().map(SocketAddress::Inet),
            Transport::Tls(s) => s.get_ref().local_addr().map(SocketAddress::Inet),
            Transport::Unix(s) => s.local_addr().map(SocketAddress::from),
        }
    }

    /// Shuts down the read half, the write half (the peer reads EOF) or both, at once. On a
    /// TLS connection this is the socket's shutdown: no `close_notify` is sent, so the peer
    /// sees a truncated session ([`StreamWriter::close`](super::StreamWriter::close) sends
    /// one).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.shutdown(how),
            Transport::Tls(s) => s.get_ref().shutdown(how),
            Transport::Unix(s) => s.shutdown(how),
        }
    }

    /// Polls for a read into `buf`; `Ok(0)` is end of stream.
    #[inline]
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => s.poll_read(cx, buf),
            Transport::Tls(s) => s.poll_read(cx, buf),
            Transport::Unix(s) => s.poll_read(cx, buf),
        }
    }

    /// Polls for a write of `buf`. On TLS, taken bytes may still be buffered: see
    /// [`poll_flush`](Self::poll_flush).
    #[inline]
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => s.poll_write(cx, buf),
            Transport::Tls(s) => s.poll_write(cx, buf),
            Transport::Unix(s) => s.poll_write(cx, buf),
        }
    }

    /// Polls for a write from several buffers (one `sendmsg` on a plain socket).
    #[inline]
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => s.poll_write_vectored(cx, bufs),
            Transport::Tls(s) => s.poll_write_vectored(cx, bufs),
            Transport::Unix(s) => s.poll_write_vectored(cx, bufs),
        }
    }

    /// Polls for a read into the spare capacity of `buf` (see
    /// [`TcpStream::poll_read_buf`]).
    #[inline]
    pub(crate) fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
        min_spare: usize,
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => s.poll_read_buf(cx, buf, min_spare),
            Transport::Tls(s) => s.poll_read_buf(cx, buf, min_spare),
            Transport::Unix(s) => s.poll_read_buf(cx, buf, min_spare),
        }
    }

    /// Polls until everything written has been handed to the kernel: immediate for plain
    /// sockets, which buffer nothing; TLS sends its queued records.
    #[inline]
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tls(s) => s.poll_flush(cx),
            Transport::Tcp(_) | Transport::Unix(_) => Poll::Ready(Ok(())),
        }
    }

    /// Whether bytes a write took are still waiting to be sent (TLS records the socket did
    /// not take yet); never for plain sockets.
    #[inline]
    pub(crate) fn has_pending_output(&self) -> bool {
        match self {
            Transport::Tls(s) => s.has_pending_output(),
            Transport::Tcp(_) | Transport::Unix(_) => false,
        }
    }

    /// Polls the end of the sending side, so the peer reads a clean end of stream: a plain
    /// socket's write half is shut down at once; TLS sends `close_notify` first. A peer that
    /// is already gone (`NotConnected`) is no error.
    pub(crate) fn poll_shutdown_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let done = match self {
            Transport::Tls(s) => return s.poll_shutdown(cx),
            Transport::Tcp(s) => s.shutdown(Shutdown::Write),
            Transport::Unix(s) => s.shutdown(Shutdown::Write),
        };
        Poll::Ready(match done {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }

    /// [`poll_shutdown_write`](Self::poll_shutdown_write) as a future.
    pub(crate) async fn shutdown_write(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_shutdown_write(cx)).await
    }

    /// Sends up to `len` bytes of `file` from `*offset`, advancing it; returns the bytes sent
    /// (`0`: the file ended first). TCP uses `sendfile(2)`; TLS must encrypt, so the file is
    /// read into memory a piece at a time and written through the session.
    pub(crate) async fn sendfile(
        &self,
        file: &std::fs::File,
        offset: &mut u64,
        len: u64,
    ) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.sendfile(file, offset, len).await,
            Transport::Tls(_) | Transport::Unix(_) => self.copy_file(file, offset, len).await,
        }
    }

    /// The read-and-write fallback of [`sendfile`](Self::sendfile).
    async fn copy_file(
        &self,
        file: &std::fs::File,
        offset: &mut u64,
        len: u64,
    ) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        // A few records' worth per call: large enough to amortise the call, small enough that
        // a connection holds little memory while its client is slow.
        const PIECE: usize = 64 * 1024;
        let mut buf = vec![0u8; PIECE.min(usize::try_from(len).unwrap_or(PIECE))];
        let n = file.read_at(&mut buf, *offset)?;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            match std::future::poll_fn(|cx| self.poll_write(cx, rest)).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                w => rest = &rest[w..],
            }
        }
        *offset += n as u64;
        Ok(n)
    }
}

impl From<TcpStream> for Transport {
    fn from(stream: TcpStream) -> Transport {
        Transport::Tcp(stream)
    }
}

impl From<UnixStream> for Transport {
    fn from(stream: UnixStream) -> Transport {
        Transport::Unix(stream)
    }
}

impl From<TlsStream> for Transport {
    fn from(stream: TlsStream) -> Transport {
        Transport::Tls(stream)
    }
}

impl AsRawFd for Transport {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Transport::Tcp(s) => s.as_raw_fd(),
            Transport::Tls(s) => s.get_ref().as_raw_fd(),
            Transport::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            Transport::Tls(s) => f.debug_tuple("Tls").field(s).finish(),
            Transport::Unix(s) => f.debug_tuple("Unix").field(s).finish(),
        }
    }
}
