//! `start_server`, `start_unix_server` and `Server`: accept connections and run a handler task
//! for each.
//!
//! # State and ownership
//!
//! A [`Server`] is a cheap handle over shared `Inner` state. Per listening socket, one *accept
//! task* loops on `accept` and spawns one *connection task* per connection, running the user's
//! handler. The listeners and their pending accept futures live in `Inner::slots`, not in the
//! accept tasks: an accept task borrows its slot only inside a single poll. That lets
//! [`Server::close`] drop the listeners (closing the sockets, so new connections are refused)
//! synchronously, as asyncio's `close()` does, and then cancel the accept tasks. (Were the
//! listener owned by the task, it would only close when the loop next reached the cancelled
//! task, and a client connecting in between would be accepted by the kernel and then reset.)
//!
//! Connection tasks are tracked in `Inner::conns` (for [`Server::abort_clients`]); each holds
//! a guard that removes it when the task ends by any means (return, panic, cancellation).
//! `finished` is set when the server is closed and the last connection task has ended: that
//! is what [`Server::wait_closed`] waits for.
//!
//! TCP and Unix servers share all of this: a slot's listener is either kind, and its accept
//! yields a [`Transport`] and a [`SocketAddress`]. A Unix server also owns its socket file
//! (`SocketFile`), which it removes when it closes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Poll};
use std::time::Duration;

use super::{from_transport, StreamReader, StreamWriter, Transport, DEFAULT_LIMIT};
use crate::net::{lookup_host, ListenOptions, SocketAddress, TcpListener, UnixListener};
use crate::sync::Event;
use crate::tls::{TlsAcceptor, TlsStream};
use crate::TaskRef;

/// What a connection handler may return. `()` needs no reporting; an `Err` from a
/// `Result<(), E>` handler is logged as a `tracing` warning naming the peer, the way asyncio
/// logs an exception a handler left unhandled.
pub trait HandlerResult {
    /// Deals with the handler's outcome for the connection from `peer` (for a Unix server the
    /// peer is usually [`SocketAddress::Unix(None)`](SocketAddress::Unix): clients bind no
    /// path).
    fn report(self, peer: Option<&SocketAddress>);
}

impl HandlerResult for () {
    fn report(self, _peer: Option<&SocketAddress>) {}
}

impl<E: fmt::Display> HandlerResult for Result<(), E> {
    fn report(self, peer: Option<&SocketAddress>) {
        if let Err(e) = self {
            tracing::warn!(?peer, "connection handler failed: {e}");
        }
    }
}

/// A running server from [`start_server`] (TCP) or [`start_unix_server`] (Unix-domain)
/// (asyncio's `Server`).
///
/// It is a cheap `Clone` handle: one task may `serve_forever` while another closes it.
/// Dropping the handles does **not** stop the server (as in asyncio, it serves until
/// [`close`](Self::close) or the end of the loop).
///
/// A Unix server removes its socket file when it closes (see [`start_unix_server`]).
pub struct Server {
    inner: Rc<Inner>,
}

struct Inner {
    /// A Unix server's socket file, removed by `close` (or when the server is dropped
    /// unclosed, e.g. with its loop). Declared before `slots` so that it is dropped first:
    /// while the listener is open its inode cannot be reused, so the inode check in
    /// `SocketFile::remove` cannot mistake a new file for ours.
    socket_file: RefCell<Option<SocketFile>>,
    /// The listening sockets with their pending accepts; emptied (closing the sockets) by
    /// `close`.
    slots: RefCell<Vec<Slot>>,
    /// Their addresses, kept for `sockets()` and `Debug`.
    addrs: Vec<SocketAddress>,
    /// One accept loop per listener; cancelled by `close`.
    accept_tasks: RefCell<Vec<TaskRef>>,
    /// Live connection tasks by connection number.
    conns: RefCell<HashMap<u64, TaskRef>>,
    /// Number for the next connection.
    next_conn: Cell<u64>,
    /// The reader limit of each connection.
    limit: usize,
    /// A TLS server's settings: each connection is handshaken before its handler runs.
    tls: Option<TlsAcceptor>,
    /// Set by `close`.
    closed: Event,
    /// Set once closed and every connection task has ended.
    finished: Event,
}

impl Inner {
    fn check_finished(&self) {
        if self.closed.is_set() && self.conns.borrow().is_empty() {
            self.finished.set();
        }
    }
}

/// Removes its connection from the server's table when the connection task ends, however it
/// ends (the task drops its future, and with it this guard).
struct ConnGuard {
    inner: Rc<Inner>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let task = self.inner.conns.borrow_mut().remove(&self.id);
        drop(task);
        self.inner.check_finished();
    }
}

/// Starts a TCP server on `host:port` that runs `handler(reader, writer)` as a task of its own
/// for every connection (asyncio's `start_server`). It is serving when this returns.
///
/// `host` is resolved with [`lookup_host`]; the server listens on every address it resolves to
/// (e.g. both `127.0.0.1` and `::1` for `"localhost"`), skipping those the machine cannot bind
/// (no IPv6) as long as one succeeds. An empty `host` means every IPv4 interface
/// (`0.0.0.0`). With port 0 the kernel picks a free port, and further addresses use the same
/// one. See [`Server::sockets`] for the bound addresses.
///
/// The handler's future may return `()` or a `Result<(), E>` (see [`HandlerResult`]). When it
/// returns and drops the reader and writer, buffered output is still sent, then the connection
/// closes.
///
/// ```
/// use kettle::net::{StreamReader, StreamWriter};
/// kettle::run(async {
///     let server = kettle::start_server(
///         |mut r: StreamReader, w: StreamWriter| async move {
///             let name = r.readline().await?;
///             w.write(b"hello, ");
///             w.write(&name);
///             w.drain().await?;
///             Ok::<(), std::io::Error>(())
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     assert!(server.is_serving());
///     let port = server.sockets()[0].port().unwrap();
///
///     let (mut r, w) = kettle::open_connection("127.0.0.1", port).await.unwrap();
///     w.write(b"kettle\n");
///     assert_eq!(r.read_to_end().await.unwrap(), b"hello, kettle\n");
///
///     server.close();
///     server.wait_closed().await;
///     assert!(!server.is_serving());
/// });
/// ```
pub async fn start_server<H, Fut>(handler: H, host: &str, port: u16) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    start_server_with(handler, host, port, ServerOptions::default()).await
}

/// Options of [`start_server_with`] and [`start_unix_server_with`]: asyncio's `limit`,
/// `backlog`, `reuse_address` and `reuse_port` arguments of `start_server` (a Unix server uses
/// only `limit` and `backlog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// How the listening sockets are bound (backlog, `SO_REUSEADDR`, `SO_REUSEPORT`).
    pub listen: ListenOptions,
    /// The buffer limit of each connection's [`StreamReader`] (default [`DEFAULT_LIMIT`]).
    pub limit: usize,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            listen: ListenOptions::default(),
            limit: DEFAULT_LIMIT,
        }
    }
}

/// [`start_server`] with [`ServerOptions`]. With `reuse_port`, a thread-per-core program
/// starts one server per loop on the same port and the kernel spreads the connections over
/// them.
///
/// ```
/// use kettle::net::streams::{start_server_with, ServerOptions};
/// use kettle::net::{ListenOptions, StreamReader, StreamWriter};
/// kettle::run(async {
///     let options = ServerOptions {
///         listen: ListenOptions::new().reuse_port(true),
///         limit: 1024,
///     };
///     let handler = |r: StreamReader, _w: StreamWriter| async move {
///         assert_eq!(r.limit(), 1024);
///     };
///     let a = start_server_with(handler, "127.0.0.1", 0, options).await.unwrap();
///     let port = a.sockets()[0].port().unwrap();
///     // A second server on the same port (in a real program: on another core's loop).
///     let b = start_server_with(handler, "127.0.0.1", port, options).await.unwrap();
///     assert_eq!(b.sockets()[0].port(), Some(port));
/// });
/// ```
pub async fn start_server_with<H, Fut>(
    handler: H,
    host: &str,
    port: u16,
    options: ServerOptions,
) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    let listeners = bind_tcp(host, port, options.listen).await?;
    Ok(serve(listeners, None, options.limit, None, handler))
}

/// [`start_server_with`] over TLS (asyncio's `start_server(..., ssl=context)`): every
/// connection first completes a TLS handshake with `tls`, then the handler gets a reader and
/// writer of plaintext. A handshake that fails or takes longer than
/// [`TLS_HANDSHAKE_TIMEOUT`] is logged at debug level and the connection closed; the handler
/// never sees it. [`StreamWriter::close`] and [`write_eof`](StreamWriter::write_eof) send
/// `close_notify` before ending the connection; the session is reachable through
/// [`Transport::as_tls`] for its ALPN protocol or peer certificates.
///
/// ```
/// use kettle::net::streams::{open_connection_tls, start_server_tls, ServerOptions};
/// use kettle::net::{StreamReader, StreamWriter};
/// use kettle::tls::{TlsAcceptor, TlsConnector};
///
/// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let (cert, key) = (made.cert.pem(), made.key_pair.serialize_pem());
/// let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
/// let connector = TlsConnector::builder()
///     .webpki_roots(false)
///     .add_root_pem(cert.as_bytes()) // a self-signed certificate is its own CA
///     .unwrap()
///     .build()
///     .unwrap();
/// kettle::run(async move {
///     let handler = |mut r: StreamReader, w: StreamWriter| async move {
///         let line = r.readline().await?;
///         w.write(&line.to_ascii_uppercase());
///         w.close();
///         w.wait_closed().await
///     };
///     let options = ServerOptions::default();
///     let server = start_server_tls(handler, "127.0.0.1", 0, acceptor, options).await.unwrap();
///     let port = server.sockets()[0].port().unwrap();
///
///     let (mut r, w) = open_connection_tls("localhost", port, &connector).await.unwrap();
///     w.write(b"secret\n");
///     assert_eq!(r.readline().await.unwrap(), b"SECRET\n");
///     assert_eq!(r.read(100).await.unwrap(), b""); // close_notify: a clean end
///     server.close();
/// });
/// ```
pub async fn start_server_tls<H, Fut>(
    handler: H,
    host: &str,
    port: u16,
    tls: TlsAcceptor,
    options: ServerOptions,
) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    let listeners = bind_tcp(host, port, options.listen).await?;
    Ok(serve(listeners, None, options.limit, Some(tls), handler))
}

/// How long a TLS server's connection may take to complete its handshake (asyncio's default
/// `ssl_handshake_timeout`): a client that connects and stalls is dropped after it.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Binds TCP listeners on every address `host` resolves to, all on one port.
async fn bind_tcp(
    host: &str,
    port: u16,
    listen: ListenOptions,
) -> io::Result<Vec<(SocketAddress, Listener)>> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let addrs = lookup_host(host, port).await?;
    let mut listeners = Vec::new();
    let mut chosen_port = port;
    let mut last_err = None;
    for mut addr in addrs {
        if chosen_port != 0 {
            addr.set_port(chosen_port);
        }
        match TcpListener::bind_with(addr, listen) {
            Ok(l) => {
                chosen_port = l.local_addr()?.port();
                listeners.push(l);
            }
            // An address family the machine does not have (IPv6 disabled): skip it.
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => last_err = Some(e),
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    if listeners.is_empty() {
        return Err(last_err.unwrap_or_else(|| io::Error::other("no address to listen on")));
    }
    listeners
        .into_iter()
        .map(|l| {
            Ok((
                SocketAddress::Inet(l.local_addr()?),
                Listener::Tcp(Rc::new(l)),
            ))
        })
        .collect()
}

/// Starts a server on the Unix-domain socket `path` that runs `handler(reader, writer)` as a
/// task of its own for every connection (asyncio's `start_unix_server`). It is serving when
/// this returns (nothing is awaited; the function is `async` like asyncio's and
/// [`start_server`]).
///
/// Binding creates the socket file, and fails with `AddrInUse` if `path` exists (asyncio
/// removes an existing socket file first; Kettle leaves that decision to the caller, since the
/// file may belong to a live server). The path must be shorter than 108 bytes.
///
/// **The socket file is removed when the server closes** ([`Server::close`], or the server
/// being dropped unclosed when its loop ends), as asyncio 3.13 does — but only if the path
/// still names the socket this server created (same device and inode), so a file that
/// replaced it meanwhile is left alone. [`Server::sockets`] reports the path as
/// [`SocketAddress::Unix`].
///
/// Everything else is as for [`start_server`]: the handler's result is reported through
/// [`HandlerResult`], [`Server::close`] stops accepting at once, and
/// [`Server::wait_closed`] waits for the connection handlers.
///
/// ```
/// use kettle::net::{SocketAddress, StreamReader, StreamWriter};
/// let path = std::env::temp_dir().join(format!("kettle-doc-{}-server.sock", std::process::id()));
/// kettle::run(async {
///     let server = kettle::start_unix_server(
///         |mut r: StreamReader, w: StreamWriter| async move {
///             // The client binds no path: its address is unnamed, displayed as "".
///             assert_eq!(w.get_extra_info("peername"), Some(SocketAddress::Unix(None)));
///             let name = r.readline().await?;
///             w.write(b"hello, ");
///             w.write(&name);
///             w.drain().await?;
///             Ok::<(), std::io::Error>(())
///         },
///         &path,
///     )
///     .await
///     .unwrap();
///     assert_eq!(server.sockets(), [SocketAddress::Unix(Some(path.clone()))]);
///     assert_eq!(server.sockets()[0].to_string(), path.display().to_string());
///
///     let (mut r, w) = kettle::open_unix_connection(&path).await.unwrap();
///     w.write(b"kettle\n");
///     assert_eq!(r.read_to_end().await.unwrap(), b"hello, kettle\n");
///
///     server.close();
///     assert!(!path.exists()); // removed at once by close
///     server.wait_closed().await;
/// });
/// ```
pub async fn start_unix_server<H, Fut>(handler: H, path: impl AsRef<Path>) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    start_unix_server_with(handler, path, ServerOptions::default()).await
}

/// [`start_unix_server`] with [`ServerOptions`]: its `limit` and `listen.backlog` apply;
/// `listen.reuse_address` and `listen.reuse_port` do not (they are IP options) and are ignored.
///
/// ```
/// use kettle::net::streams::{start_unix_server_with, ServerOptions};
/// use kettle::net::{ListenOptions, StreamReader, StreamWriter};
/// let path = std::env::temp_dir().join(format!("kettle-doc-{}-with.sock", std::process::id()));
/// kettle::run(async {
///     let options = ServerOptions {
///         listen: ListenOptions::new().backlog(8),
///         limit: 4,
///     };
///     let server = start_unix_server_with(
///         |mut r: StreamReader, w: StreamWriter| async move {
///             // A line longer than the limit of 4 bytes is refused.
///             let too_long = r.readline().await.is_err();
///             w.write(if too_long { &b"too long\n"[..] } else { b"ok\n" });
///         },
///         &path,
///         options,
///     )
///     .await
///     .unwrap();
///     let (mut r, w) = kettle::open_unix_connection(&path).await.unwrap();
///     w.write(b"a long line\n");
///     assert_eq!(r.readline().await.unwrap(), b"too long\n");
///     server.close();
/// });
/// ```
pub async fn start_unix_server_with<H, Fut>(
    handler: H,
    path: impl AsRef<Path>,
    options: ServerOptions,
) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    let path = path.as_ref();
    let listener = UnixListener::bind_with_backlog(path, options.listen.backlog)?;
    // Identify the file right away, before anything could replace it. If that fails (someone
    // removed it already) there is nothing of ours to clean up later.
    let socket_file = SocketFile::identify(path);
    let addr = SocketAddress::from(listener.local_addr()?);
    Ok(serve(
        vec![(addr, Listener::Unix(Rc::new(listener)))],
        socket_file,
        options.limit,
        None,
        handler,
    ))
}

/// Builds the server over bound `listeners` and starts one accept task per listener.
fn serve<H, Fut>(
    listeners: Vec<(SocketAddress, Listener)>,
    socket_file: Option<SocketFile>,
    limit: usize,
    tls: Option<TlsAcceptor>,
    handler: H,
) -> Server
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    let count = listeners.len();
    let (addrs, slots) = listeners
        .into_iter()
        .map(|(addr, listener)| {
            let slot = Slot {
                listener,
                pending: None,
            };
            (addr, slot)
        })
        .unzip();
    let inner = Rc::new(Inner {
        socket_file: RefCell::new(socket_file),
        slots: RefCell::new(slots),
        addrs,
        accept_tasks: RefCell::new(Vec::new()),
        conns: RefCell::new(HashMap::new()),
        next_conn: Cell::new(0),
        limit,
        tls,
        closed: Event::new(),
        finished: Event::new(),
    });
    let handler = Rc::new(handler);
    let tasks = (0..count)
        .map(|i| crate::spawn(accept_loop(inner.clone(), i, handler.clone())).task_ref())
        .collect();
    *inner.accept_tasks.borrow_mut() = tasks;
    Server { inner }
}

/// The socket file of a Unix server: where it is and which file it is, so that removing it
/// never removes a file that replaced it.
struct SocketFile {
    /// The path, made absolute at bind time so that a later change of the working directory
    /// does not redirect the removal.
    path: PathBuf,
    /// The device and inode of the socket file the server created.
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Records the file now at `path` (just bound). `None` if it cannot be examined.
    fn identify(path: &Path) -> Option<SocketFile> {
        let path = std::path::absolute(path).ok()?;
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_socket() {
            return None; // replaced already: not ours
        }
        Some(SocketFile {
            path,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Removes the file if the path still names the socket recorded by `identify`.
    fn remove(&self) {
        let Ok(meta) = std::fs::symlink_metadata(&self.path) else {
            return; // already gone
        };
        if meta.dev() != self.dev || meta.ino() != self.ino {
            tracing::debug!(
                path = %self.path.display(),
                "not removing the Unix socket path: it no longer names this server's socket"
            );
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), "could not remove the Unix socket file: {e}");
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The pending `accept` of one listener, owning (a handle on) the listener so that it can be
/// kept across polls: `accept` may wait on a timer (its back-off when out of file descriptors),
/// which a fresh future per poll would lose.
type PendingAccept = Pin<Box<dyn Future<Output = io::Result<(Transport, SocketAddress)>>>>;

/// A listening socket of either kind.
enum Listener {
    Tcp(Rc<TcpListener>),
    Unix(Rc<UnixListener>),
}

impl Listener {
    /// Starts accepting one connection.
    fn accept(&self) -> PendingAccept {
        match self {
            Listener::Tcp(l) => {
                let l = l.clone();
                Box::pin(async move {
                    let (stream, peer) = l.accept().await?;
                    Ok((Transport::Tcp(stream), SocketAddress::Inet(peer)))
                })
            }
            Listener::Unix(l) => {
                let l = l.clone();
                Box::pin(async move {
                    let (stream, peer) = l.accept().await?;
                    Ok((Transport::Unix(stream), SocketAddress::from(peer)))
                })
            }
        }
    }
}

/// One listening socket and its accept in progress.
struct Slot {
    /// The socket. Only this and `pending` hold it, so dropping the slot closes it.
    listener: Listener,
    /// The accept being waited for, if any.
    pending: Option<PendingAccept>,
}

/// Accepts connections on listener `index` until the server closes.
async fn accept_loop<H, Fut>(inner: Rc<Inner>, index: usize, handler: Rc<H>)
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    loop {
        // Borrow the slot for this poll only (see the module docs).
        let accepted = poll_fn(|cx| {
            let mut slots = inner.slots.borrow_mut();
            let Some(slot) = slots.get_mut(index) else {
                return Poll::Ready(None); // closed
            };
            let pending = slot.pending.get_or_insert_with(|| slot.listener.accept());
            let out = ready!(pending.as_mut().poll(cx));
            slot.pending = None;
            Poll::Ready(Some(out))
        })
        .await;
        let (stream, peer) = match accepted {
            None => return,
            Some(Ok(conn)) => conn,
            Some(Err(e)) => {
                // `accept` already rides out transient failures (aborted connections, fd
                // exhaustion); what reaches here means the listener itself is broken.
                tracing::error!(
                    addr = ?inner.addrs.get(index),
                    "accept failed; no longer accepting on this address: {e}"
                );
                return;
            }
        };
        let id = inner.next_conn.get();
        inner.next_conn.set(id + 1);
        let guard = ConnGuard {
            inner: inner.clone(),
            id,
        };
        let limit = inner.limit;
        let task = match (&inner.tls, stream) {
            // The handshake runs in the connection's task, so a slow client never holds up
            // the accept loop.
            (Some(tls), Transport::Tcp(tcp)) => {
                let (tls, handler) = (tls.clone(), handler.clone());
                crate::spawn(async move {
                    let _guard = guard;
                    let stream = match handshake(&tls, tcp).await {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::debug!(%peer, "TLS handshake failed; closing: {e}");
                            return;
                        }
                    };
                    let (mut reader, writer) = from_transport(Transport::Tls(stream));
                    reader.set_limit(limit);
                    handler(reader, writer).await.report(Some(&peer));
                })
            }
            (_, stream) => {
                let (mut reader, writer) = from_transport(stream);
                reader.set_limit(limit);
                let work = handler(reader, writer);
                crate::spawn(async move {
                    let _guard = guard;
                    work.await.report(Some(&peer));
                })
            }
        };
        // The task has not run yet (spawn only queues it), so its guard cannot have fired.
        inner.conns.borrow_mut().insert(id, task.task_ref());
    }
}

/// A TLS server's handshake for one connection, bounded by [`TLS_HANDSHAKE_TIMEOUT`].
async fn handshake(tls: &TlsAcceptor, tcp: crate::net::TcpStream) -> io::Result<TlsStream> {
    crate::net::tcp::with_timeout(
        tls.accept(tcp),
        TLS_HANDSHAKE_TIMEOUT,
        "TLS handshake timed out",
    )
    .await
}

impl Server {
    /// The addresses the server listens on (asyncio's `sockets`, as addresses); empty once
    /// closed. For a TCP server they are [`SocketAddress::Inet`] (use
    /// [`port`](SocketAddress::port) to learn the port the kernel picked for port 0); for a Unix
    /// server, one [`SocketAddress::Unix`] with the socket's path.
    pub fn sockets(&self) -> Vec<SocketAddress> {
        if self.inner.closed.is_set() {
            return Vec::new();
        }
        self.inner.addrs.clone()
    }

    /// Whether the server still accepts connections.
    pub fn is_serving(&self) -> bool {
        !self.inner.closed.is_set()
    }

    /// Stops accepting (asyncio's `close`): the listening sockets are closed at once, so new
    /// connections are refused. Connections already accepted go on; see
    /// [`wait_closed`](Self::wait_closed) and [`abort_clients`](Self::abort_clients).
    ///
    /// A Unix server also removes its socket file here, if the path still names the socket it
    /// created (see [`start_unix_server`]).
    pub fn close(&self) {
        if self.inner.closed.is_set() {
            return;
        }
        // A Unix server's socket file goes first, while the listener still pins its inode (see
        // `Inner::socket_file`); `SocketFile`'s drop removes it.
        let socket_file = self.inner.socket_file.borrow_mut().take();
        drop(socket_file);
        // Dropping the slots (listeners and pending accepts) deregisters and closes the
        // sockets.
        let slots = std::mem::take(&mut *self.inner.slots.borrow_mut());
        drop(slots);
        for task in self.inner.accept_tasks.borrow_mut().drain(..) {
            task.cancel();
        }
        self.inner.closed.set();
        self.inner.check_finished();
    }

    /// Cancels every connection's handler task (asyncio 3.13's `abort_clients`, in task
    /// terms): their readers and writers are dropped, which closes the connections once any
    /// buffered output is sent. Use it after [`close`](Self::close) to shut down without
    /// waiting for clients.
    pub fn abort_clients(&self) {
        let tasks: Vec<TaskRef> = self.inner.conns.borrow().values().cloned().collect();
        for t in tasks {
            t.cancel();
        }
    }

    /// Number of connections whose handler is still running.
    pub fn active_connections(&self) -> usize {
        self.inner.conns.borrow().len()
    }

    /// Waits until the server is closed and every connection handler has finished (asyncio
    /// 3.12's `wait_closed`). Called before [`close`](Self::close), it waits for that too.
    pub async fn wait_closed(&self) {
        let finished = self.inner.finished.clone();
        finished.wait().await;
    }

    /// Serves until the server is closed (asyncio's `serve_forever`; accepting already runs,
    /// this only waits). If this future is dropped first, e.g. its task is cancelled, the
    /// server is closed, as in asyncio.
    pub async fn serve_forever(&self) {
        /// Closes the server unless disarmed.
        struct CloseOnDrop<'a>(&'a Server, bool);
        impl Drop for CloseOnDrop<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.close();
                }
            }
        }
        let mut guard = CloseOnDrop(self, true);
        let closed = self.inner.closed.clone();
        closed.wait().await;
        guard.1 = false;
    }
}

impl Clone for Server {
    fn clone(&self) -> Server {
        Server {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("sockets", &self.inner.addrs)
            .field("serving", &self.is_serving())
            .field("connections", &self.active_connections())
            .finish()
    }
}
