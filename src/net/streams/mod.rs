//! asyncio's streams: [`open_connection`] and [`start_server`] hand out a
//! ([`StreamReader`], [`StreamWriter`]) pair per TCP connection; [`open_unix_connection`] and
//! [`start_unix_server`] do the same over Unix-domain stream sockets (a filesystem path instead
//! of a host and port). Both kinds share all of the reader, writer and [`Server`] code; the
//! socket underneath is a [`Transport`]. [`open_connection_tls`] and [`start_server_tls`] are
//! the TCP pair over TLS (asyncio's `ssl=` argument).
//!
//! ```
//! kettle::run(async {
//!     // Seed 003's echo server, on a free port.
//!     let server = kettle::start_server(
//!         |mut reader: kettle::net::StreamReader, writer: kettle::net::StreamWriter| async move {
//!             let peer = writer.get_extra_info("peername").unwrap();
//!             loop {
//!                 let data = reader.read(1024).await?;
//!                 if data.is_empty() {
//!                     return Ok::<(), std::io::Error>(()); // the client closed
//!                 }
//!                 let msg = format!("{peer} Your msg {}", String::from_utf8_lossy(&data));
//!                 writer.write(msg.as_bytes());
//!                 writer.drain().await?;
//!             }
//!         },
//!         "127.0.0.1",
//!         0,
//!     )
//!     .await
//!     .unwrap();
//!     let port = server.sockets()[0].port().unwrap();
//!
//!     let (mut reader, writer) = kettle::open_connection("127.0.0.1", port).await.unwrap();
//!     writer.write(b"hi");
//!     writer.drain().await.unwrap();
//!     let me = writer.get_extra_info("sockname").unwrap();
//!     assert_eq!(reader.read(1024).await.unwrap(), format!("{me} Your msg hi").into_bytes());
//!     writer.close();
//!     writer.wait_closed().await.unwrap();
//!
//!     server.close();
//!     server.wait_closed().await; // the handler has seen EOF and returned
//! });
//! ```
//!
//! # Addresses
//!
//! [`StreamWriter::get_extra_info`] (`"peername"`, `"sockname"`), [`StreamReader::peer_addr`]
//! and [`Server::sockets`] return a [`SocketAddress`](crate::net::SocketAddress):
//! `Inet(SocketAddr)` for TCP, displayed as `ip:port`; `Unix(Some(path))` for a Unix socket
//! bound to a path, displayed as the path; `Unix(None)` for an unnamed one (a Unix client's own
//! end), displayed as the empty string, as asyncio gives `''`.
//!
//! # Unix socket files
//!
//! [`start_unix_server`] creates the socket file and the [`Server`] removes it when it closes
//! (asyncio 3.13), unless the path meanwhile names another file. A path that already exists
//! makes it fail with `AddrInUse`.
//!
//! # Design
//!
//! The reader pulls from the socket only when asked, into a buffer bounded by its limit; the
//! writer sends at once what the kernel accepts and leaves the rest to a background flusher
//! task (see the `writer` module). Both share the socket through an `Rc`: it closes when the
//! reader, every writer handle and any flusher are gone. After the writer's `close`, the
//! reader reports end of stream.
//!
//! # Errors
//!
//! Plain reads ([`StreamReader::read`], [`read_to_end`](StreamReader::read_to_end)) and all
//! writer operations return `io::Result`. The structured reads (`readline`, `readuntil`,
//! `readexactly`) return [`StreamError`], whose two extra cases carry data:
//! [`IncompleteRead`](StreamError::IncompleteRead) the bytes that arrived before the end of the
//! stream, [`LimitOverrun`](StreamError::LimitOverrun) how much could be consumed. A
//! `StreamError` converts into `io::Error` (`UnexpectedEof` / `InvalidData`), so `?` works in
//! functions returning `io::Result`.

mod reader;
mod server;
mod transport;
mod writer;

use std::cell::Cell;
use std::fmt;
use std::io;
use std::path::Path;
use std::rc::Rc;

pub use reader::{Lines, StreamReader, DEFAULT_LIMIT};
pub use server::{
    start_server, start_server_tls, start_server_with, start_unix_server, start_unix_server_with,
    HandlerResult, Server, ServerOptions, TLS_HANDSHAKE_TIMEOUT,
};
pub use transport::Transport;
pub use writer::{StreamWriter, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER};

use crate::net::{lookup_host, TcpStream, UnixStream};
use crate::tls::TlsConnector;

/// What a structured read of a [`StreamReader`] can fail with (asyncio's
/// `IncompleteReadError`, `LimitOverrunError`, and `OSError`).
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream ended before the read was complete. `partial` holds the bytes that arrived
    /// (they are consumed); `expected` is the size [`readexactly`](StreamReader::readexactly)
    /// asked for, or `None` for [`readuntil`](StreamReader::readuntil), which expected a
    /// separator.
    IncompleteRead {
        /// The bytes read before the end of the stream.
        partial: Vec<u8>,
        /// How many bytes were asked for, if a size was.
        expected: Option<usize>,
    },
    /// The separator was not found within the reader's limit. Nothing was consumed: the data
    /// is still buffered. `consumed` is how many bytes may be consumed before retrying: the
    /// position of the separator if it was found past the limit, otherwise the bytes known not
    /// to start it.
    LimitOverrun {
        /// Bytes that may be consumed (asyncio's `LimitOverrunError.consumed`).
        consumed: usize,
    },
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::IncompleteRead {
                partial,
                expected: Some(n),
            } => write!(
                f,
                "stream ended after {} of {n} expected bytes",
                partial.len()
            ),
            StreamError::IncompleteRead {
                partial,
                expected: None,
            } => write!(
                f,
                "stream ended after {} bytes without the separator",
                partial.len()
            ),
            StreamError::LimitOverrun { consumed } => write!(
                f,
                "separator not found within the buffer limit ({consumed} bytes can be consumed)"
            ),
            StreamError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> StreamError {
        StreamError::Io(e)
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        match e {
            StreamError::Io(e) => e,
            e @ StreamError::IncompleteRead { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string())
            }
            e @ StreamError::LimitOverrun { .. } => {
                io::Error::new(io::ErrorKind::InvalidData, e.to_string())
            }
        }
    }
}

/// What the reader, the writer handles and the flusher task of one connection share.
struct Connection {
    /// The socket.
    stream: Transport,
    /// The writer closed the connection (`close` or `abort` shut the socket down). From then
    /// on the reader reports end of stream, as asyncio's does when its transport closes, and
    /// not the reset that data arriving at a shut-down socket provokes.
    closed: Cell<bool>,
}

/// Wraps a connected [`TcpStream`] in a reader and a writer that share it (what
/// `open_connection` and `start_server` do for each connection).
pub fn from_tcp(stream: TcpStream) -> (StreamReader, StreamWriter) {
    from_transport(Transport::Tcp(stream))
}

/// Wraps a connected [`UnixStream`] in a reader and a writer that share it (what
/// `open_unix_connection` and `start_unix_server` do for each connection). Works for either
/// end of a [`UnixStream::pair`] too.
///
/// ```
/// use kettle::net::{streams::from_unix, UnixStream};
/// kettle::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (_ra, wa) = from_unix(a);
///     let (mut rb, _wb) = from_unix(b);
///     wa.write(b"over a socketpair\n");
///     assert_eq!(rb.readline().await.unwrap(), b"over a socketpair\n");
///     // Neither end of a socketpair has a path.
///     assert_eq!(wa.get_extra_info("peername"), Some(kettle::net::SocketAddress::Unix(None)));
/// });
/// ```
pub fn from_unix(stream: UnixStream) -> (StreamReader, StreamWriter) {
    from_transport(Transport::Unix(stream))
}

fn from_transport(stream: Transport) -> (StreamReader, StreamWriter) {
    let conn = Rc::new(Connection {
        stream,
        closed: Cell::new(false),
    });
    (StreamReader::new(conn.clone()), StreamWriter::new(conn))
}

/// Connects to `host:port` and returns the connection's reader and writer (asyncio's
/// `open_connection`).
///
/// `host` is an IP literal or a name, resolved with [`lookup_host`] (off the loop); each
/// address is tried in turn until one accepts. If all fail, the error names each address with
/// its failure.
///
/// ```
/// kettle::run(async {
///     let server = kettle::start_server(
///         |_r, w: kettle::net::StreamWriter| async move { w.write(b"220 ready\r\n") },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     let port = server.sockets()[0].port().unwrap();
///
///     let (mut reader, _writer) = kettle::open_connection("localhost", port).await.unwrap();
///     assert_eq!(reader.readline().await.unwrap(), b"220 ready\r\n");
/// });
/// ```
///
/// (`localhost` may resolve to `::1` first; the server above listens on IPv4 only, so that
/// address is refused and the next one is tried.)
pub async fn open_connection(host: &str, port: u16) -> io::Result<(StreamReader, StreamWriter)> {
    Ok(from_tcp(connect_tcp(host, port).await?))
}

/// [`open_connection`] over TLS (asyncio's `open_connection(host, port, ssl=context)`):
/// connects, performs the TLS handshake with `connector`, verifying the server's certificate
/// against `host`, and returns a reader and writer of plaintext. Handshake failures are
/// errors carrying a [`TlsError`](crate::tls::TlsError); bound the whole call with
/// [`wait_for`](crate::wait_for). The writer's [`close`](StreamWriter::close) and
/// [`write_eof`](StreamWriter::write_eof) send `close_notify`; a server that ends the
/// connection without one makes the reader fail with `UnexpectedEof` instead of seeing end of
/// stream.
///
/// See [`start_server_tls`] for an example with both ends.
pub async fn open_connection_tls(
    host: &str,
    port: u16,
    connector: &TlsConnector,
) -> io::Result<(StreamReader, StreamWriter)> {
    let tcp = connect_tcp(host, port).await?;
    let tls = connector.connect(host, tcp).await?;
    Ok(from_transport(Transport::Tls(tls)))
}

/// Connects to the first address of `host` that accepts; if none does, the error names each
/// address with its failure.
async fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let addrs = lookup_host(host, port).await?;
    let mut failures = Vec::new();
    for addr in &addrs {
        match TcpStream::connect(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => failures.push((*addr, e)),
        }
    }
    if failures.len() == 1 {
        return Err(failures.pop().expect("one failure").1);
    }
    let kind = failures
        .last()
        .map_or(io::ErrorKind::NotFound, |(_, e)| e.kind());
    let detail: Vec<String> = failures.iter().map(|(a, e)| format!("{a}: {e}")).collect();
    Err(io::Error::new(
        kind,
        format!(
            "could not connect to {host} port {port} ({})",
            detail.join("; ")
        ),
    ))
}

/// Connects to the Unix-domain stream socket at `path` and returns the connection's reader
/// and writer (asyncio's `open_unix_connection`).
///
/// If the listener's backlog is full, the connect is retried until it makes room (see
/// [`UnixStream::connect`]); wrap the call in [`wait_for`](crate::wait_for) to bound the wait.
/// On the writer, `get_extra_info("peername")` is the server's path and `"sockname"` is
/// [`SocketAddress::Unix(None)`](crate::net::SocketAddress::Unix) (a client binds no path).
///
/// ```
/// use kettle::net::{StreamReader, StreamWriter};
/// let path = std::env::temp_dir().join(format!("kettle-doc-{}-open.sock", std::process::id()));
/// kettle::run(async {
///     let server = kettle::start_unix_server(
///         |mut r: StreamReader, w: StreamWriter| async move {
///             let line = r.readline().await?;
///             w.write(&line.to_ascii_uppercase());
///             w.drain().await
///         },
///         &path,
///     )
///     .await
///     .unwrap();
///
///     let (mut reader, writer) = kettle::open_unix_connection(&path).await.unwrap();
///     writer.write(b"hello over a unix socket\n");
///     assert_eq!(reader.readline().await.unwrap(), b"HELLO OVER A UNIX SOCKET\n");
///     assert_eq!(writer.get_extra_info("peername").unwrap().as_pathname(), Some(path.as_path()));
///
///     server.close();
///     server.wait_closed().await;
/// });
/// assert!(!path.exists()); // the server removed its socket file
/// ```
pub async fn open_unix_connection(
    path: impl AsRef<Path>,
) -> io::Result<(StreamReader, StreamWriter)> {
    let stream = UnixStream::connect(path).await?;
    Ok(from_unix(stream))
}
