//! [`Transport`]: the socket under a stream pair, TCP or Unix-domain.
//!
//! The reader and writer need only a handful of operations from their socket (poll a read,
//! poll a write, shut down, addresses); this enum forwards each to the socket it holds. A
//! `match` per call keeps both kinds on the same code path with no boxing and no virtual call,
//! so TCP streams cost what they did when they were the only kind.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use crate::net::{SocketAddress, TcpStream, UnixStream};

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
}

impl Transport {
    /// The TCP stream, if this is a TCP connection.
    pub fn as_tcp(&self) -> Option<&TcpStream> {
        match self {
            Transport::Tcp(s) => Some(s),
            Transport::Unix(_) => None,
        }
    }

    /// The Unix-domain stream, if this is a Unix connection.
    pub fn as_unix(&self) -> Option<&UnixStream> {
        match self {
            Transport::Unix(s) => Some(s),
            Transport::Tcp(_) => None,
        }
    }

    /// The remote address: `ip:port`, or the path of the listener a Unix client connected to
    /// (an accepted Unix connection's peer is usually unnamed).
    pub fn peer_addr(&self) -> io::Result<SocketAddress> {
        match self {
            Transport::Tcp(s) => s.peer_addr().map(SocketAddress::Inet),
            Transport::Unix(s) => s.peer_addr().map(SocketAddress::from),
        }
    }

    /// The local address: `ip:port`, or the listener's path on the accepting side of a Unix
    /// connection (a Unix client's own end is usually unnamed).
    pub fn local_addr(&self) -> io::Result<SocketAddress> {
        match self {
            Transport::Tcp(s) => s.local_addr().map(SocketAddress::Inet),
            Transport::Unix(s) => s.local_addr().map(SocketAddress::from),
        }
    }

    /// Shuts down the read half, the write half (the peer reads EOF) or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.shutdown(how),
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
            Transport::Unix(s) => s.poll_read(cx, buf),
        }
    }

    /// Polls for a write of `buf`.
    #[inline]
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => s.poll_write(cx, buf),
            Transport::Unix(s) => s.poll_write(cx, buf),
        }
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

impl AsRawFd for Transport {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Transport::Tcp(s) => s.as_raw_fd(),
            Transport::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            Transport::Unix(s) => f.debug_tuple("Unix").field(s).finish(),
        }
    }
}
