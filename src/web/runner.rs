//! Serving an application: [`AppRunner`] (start, addresses, graceful shutdown) and
//! [`run_app`], aiohttp's one-call entry point.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use super::app::{App, Application};
use super::protocol::{self, ServerConfig, ServerShared};
use crate::http::HeadLimits;
use crate::net::streams::Transport;
use crate::net::{lookup_host, ListenOptions, TcpListener, TcpStream};
use crate::sync::Event;
use crate::tls::{TlsAcceptor, TlsStream};
use crate::Task;

/// Server settings: timeouts, head limits, listen options, TLS.
///
/// ```
/// use std::time::Duration;
/// use kettle::web::ServerOptions;
/// let options = ServerOptions::default()
///     .keepalive_timeout(Duration::from_secs(5))
///     .shutdown_timeout(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    config: ServerConfig,
    shutdown_timeout: Duration,
    listen: ListenOptions,
    /// Serve HTTPS with these settings instead of plain HTTP.
    tls: Option<TlsAcceptor>,
    /// Worker loops for [`run_app_workers`](super::run_app_workers); `None`: one per core.
    workers: Option<usize>,
    /// How the workers share the port.
    listener_mode: ListenerMode,
}

/// How the workers of an [`AppGroup`](super::AppGroup) share the listening port.
///
/// * `ReusePort` (the default): one `SO_REUSEPORT` listener per worker. The kernel picks
///   the listener by hashing each connection's addresses, so connections spread evenly in
///   number without any cross-thread work, but blindly: a few long-lived connections can
///   land on one worker while another idles, and a worker that is busy still gets its share.
///   A connection queued on a listener that closes is reset, which is why shutdown first
///   accepts everything queued.
/// * `Shared`: one listener for all, each worker waiting on it with `EPOLLEXCLUSIVE`; the
///   kernel wakes one waiting worker per connection, so idle workers take the new
///   connections. Balance follows load rather than counts (under light load one worker may
///   take most of them), and no queue is lost at shutdown since the listener closes once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenerMode {
    /// One `SO_REUSEPORT` listener per worker.
    #[default]
    ReusePort,
    /// One listener shared by every worker (`EPOLLEXCLUSIVE`).
    Shared,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            config: ServerConfig::default(),
            // aiohttp's default grace period.
            shutdown_timeout: Duration::from_secs(60),
            listen: ListenOptions::default(),
            tls: None,
            workers: None,
            listener_mode: ListenerMode::default(),
        }
    }
}

impl ServerOptions {
    /// How long a request head may take to arrive, from its first byte (default 30 s);
    /// slower clients get 408 and are disconnected.
    pub fn header_timeout(mut self, t: Duration) -> ServerOptions {
        self.config.header_timeout = t;
        self
    }

    /// How long an idle keep-alive connection stays open (default 75 s, as aiohttp).
    pub fn keepalive_timeout(mut self, t: Duration) -> ServerOptions {
        self.config.keepalive_timeout = t;
        self
    }

    /// How long a body read may wait for data (default 60 s).
    pub fn body_timeout(mut self, t: Duration) -> ServerOptions {
        self.config.body_timeout = t;
        self
    }

    /// How long a graceful shutdown waits for requests in flight (default 60 s).
    pub fn shutdown_timeout(mut self, t: Duration) -> ServerOptions {
        self.shutdown_timeout = t;
        self
    }

    /// The longest request line (default 8190 bytes; longer → 414).
    pub fn max_line_size(mut self, bytes: usize) -> ServerOptions {
        self.config.limits.max_line = bytes;
        self
    }

    /// The largest request head (default 32 KiB; larger → 431). At most 1 GiB: heads are
    /// indexed with 32-bit offsets, and no real client sends anything near that.
    pub fn max_head_size(mut self, bytes: usize) -> ServerOptions {
        self.config.limits.max_head = bytes.min(1 << 30);
        self
    }

    /// The most header fields (default 100; more → 431).
    pub fn max_headers(mut self, n: usize) -> ServerOptions {
        self.config.limits.max_headers = n.min(128);
        self
    }

    /// Listen options: backlog, `SO_REUSEADDR`, `SO_REUSEPORT` (one listener per loop for
    /// multi-core servers).
    pub fn listen(mut self, listen: ListenOptions) -> ServerOptions {
        self.listen = listen;
        self
    }

    /// How many worker loops [`run_app_workers`](super::run_app_workers) and
    /// [`AppGroup`](super::AppGroup) start (default: the available parallelism). `run_app`
    /// and `AppRunner` always serve on the calling loop.
    pub fn workers(mut self, n: usize) -> ServerOptions {
        self.workers = Some(n);
        self
    }

    /// How the workers share the port (default [`ListenerMode::ReusePort`]).
    pub fn listener_mode(mut self, mode: ListenerMode) -> ServerOptions {
        self.listener_mode = mode;
        self
    }

    pub(crate) fn worker_count(&self) -> Option<usize> {
        self.workers
    }

    pub(crate) fn listener_mode_value(&self) -> ListenerMode {
        self.listener_mode
    }

    pub(crate) fn listen_options(&self) -> ListenOptions {
        self.listen
    }

    /// Serves HTTPS: every connection completes a TLS handshake with `acceptor` before its
    /// first request. The handshake must finish within the
    /// [`header_timeout`](Self::header_timeout); one that fails or is too slow is logged at
    /// debug level and its connection closed, and the server goes on serving. Requests then
    /// report [`secure`](super::Request::secure) and the `https` scheme.
    ///
    /// Offer ALPN `http/1.1` ([`TlsAcceptor::with_alpn`]) for clients that ask for a
    /// protocol: one that offers only `h2` is then refused during the handshake, rather than
    /// sent HTTP/1.1 it did not expect.
    ///
    /// ```
    /// use kettle::tls::TlsAcceptor;
    /// use kettle::web::ServerOptions;
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let acceptor = TlsAcceptor::from_pem(
    ///     made.cert.pem().as_bytes(),
    ///     made.key_pair.serialize_pem().as_bytes(),
    /// )
    /// .unwrap()
    /// .with_alpn(&[b"http/1.1"]);
    /// let options = ServerOptions::default().tls(acceptor);
    /// assert!(options.is_tls());
    /// ```
    pub fn tls(mut self, acceptor: TlsAcceptor) -> ServerOptions {
        self.tls = Some(acceptor);
        self
    }

    /// Whether these options serve HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn head_limits(&self) -> HeadLimits {
        self.config.limits
    }
}

/// A running server for one application (aiohttp's `AppRunner` + `TCPSite`).
///
/// ```
/// use kettle::web::{AppRunner, Application, Request, Response};
///
/// kettle::run(async {
///     let mut app = Application::new();
///     app.router().add_get("/", |_req: Request| async { "Hello, World!" });
///     let runner = AppRunner::start(app, "127.0.0.1", 0).await.unwrap();
///     let addr = runner.addrs()[0];
///     assert_eq!(addr.ip().to_string(), "127.0.0.1");
///     runner.shutdown().await;
/// });
/// ```
pub struct AppRunner {
    app: App,
    shared: Rc<ServerShared>,
    addrs: Vec<SocketAddr>,
    acceptors: Vec<Task<()>>,
    conns: Rc<RefCell<HashMap<u64, Task<()>>>>,
    shutdown_timeout: Duration,
}

impl AppRunner {
    /// Runs the startup hooks, binds `host:port` (every address `host` resolves to; port 0
    /// picks a free one) and starts accepting.
    pub async fn start(app: Application, host: &str, port: u16) -> io::Result<AppRunner> {
        AppRunner::start_with(app, host, port, ServerOptions::default()).await
    }

    /// [`start`](Self::start) with options.
    pub async fn start_with(
        app: Application,
        host: &str,
        port: u16,
        options: ServerOptions,
    ) -> io::Result<AppRunner> {
        let mut listeners = Vec::new();
        let mut last_err = None;
        for addr in lookup_host(host, port).await? {
            match TcpListener::bind_with(addr, options.listen) {
                Ok(l) => listeners.push(l),
                Err(e) => last_err = Some(e),
            }
        }
        if listeners.is_empty() {
            return Err(last_err.unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} resolves to nothing"),
                )
            }));
        }
        AppRunner::serve_listeners(app, listeners, options).await
    }

    /// Serves on listeners bound by the caller (one per loop with `SO_REUSEPORT`, say).
    pub async fn serve_listeners(
        app: Application,
        listeners: Vec<TcpListener>,
        options: ServerOptions,
    ) -> io::Result<AppRunner> {
        let app = app.freeze();
        app.startup()
            .await
            .map_err(|e| io::Error::other(format!("on_startup failed: {e}")))?;
        let mut config = options.config.clone();
        config.limits = options.head_limits();
        let shared = Rc::new(ServerShared {
            config,
            closing: Event::new(),
            active: Cell::new(0),
            in_flight: Cell::new(0),
            idle: Event::new(),
            stop_accepting: Event::new(),
        });
        shared.idle.set();
        let conns: Rc<RefCell<HashMap<u64, Task<()>>>> = Rc::default();
        let mut addrs = Vec::new();
        let mut acceptors = Vec::new();
        for listener in listeners {
            addrs.push(listener.local_addr()?);
            acceptors.push(crate::spawn(accept_loop(
                listener,
                app.clone(),
                shared.clone(),
                conns.clone(),
                options.tls.clone(),
            )));
        }
        Ok(AppRunner {
            app,
            shared,
            addrs,
            acceptors,
            conns,
            shutdown_timeout: options.shutdown_timeout,
        })
    }

    /// The addresses being served.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The running application.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Open connections.
    pub fn active_connections(&self) -> usize {
        self.shared.active.get()
    }

    /// Graceful shutdown: stop accepting, close idle keep-alive connections at once, run the
    /// `on_shutdown` hooks, let requests in flight finish within the shutdown timeout (their
    /// responses close their connections), cancel what is still running after it, then run
    /// the `on_cleanup` hooks.
    pub async fn shutdown(self) {
        // The acceptors first take every connection already queued in the kernel: closing a
        // listener resets those, and their clients did nothing wrong.
        self.shared.stop_accepting.set();
        for acceptor in self.acceptors {
            let _ = acceptor.await;
        }
        self.shared.closing.set();
        self.app.shutdown().await;
        let drained = crate::wait_for(self.shared.idle.wait(), self.shutdown_timeout).await;
        if drained.is_err() {
            let stuck: Vec<Task<()>> = self.conns.borrow_mut().drain().map(|(_, t)| t).collect();
            tracing::warn!(
                connections = stuck.len(),
                "shutdown timeout: cancelling requests still running"
            );
            for t in &stuck {
                t.cancel();
            }
            for t in stuck {
                let _ = t.await;
            }
        }
        self.app.cleanup().await;
    }
}

impl std::fmt::Debug for AppRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRunner")
            .field("addrs", &self.addrs)
            .field("active", &self.shared.active.get())
            .finish()
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: App,
    shared: Rc<ServerShared>,
    conns: Rc<RefCell<HashMap<u64, Task<()>>>>,
    tls: Option<TlsAcceptor>,
) {
    let mut next_id: u64 = 0;
    let mut draining = false;
    loop {
        let accepted = if draining {
            // Only what the kernel has already queued, asked of the kernel itself: closing the
            // listener would reset those connections.
            match listener.accept_queued() {
                Ok(Some(c)) => Ok(c),
                Ok(None) => return,
                Err(e) => Err(e),
            }
        } else {
            let mut accept = pin!(listener.accept());
            let mut stop = pin!(shared.stop_accepting.wait());
            let next = poll_fn(|cx| {
                if let Poll::Ready(r) = accept.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
                if stop.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match next {
                Some(r) => r,
                None => {
                    draining = true;
                    continue;
                }
            }
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // accept() already retries transient errors; this one is the listener's.
                tracing::error!(error = %e, "accept failed; listener stopped");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        shared.active.set(shared.active.get() + 1);
        shared.idle.clear();
        let (app, shared2, conns2) = (app.clone(), shared.clone(), conns.clone());
        let tls = tls.clone();
        let task = crate::spawn(async move {
            let _guard = ConnGuard {
                shared: shared2.clone(),
                conns: conns2,
                id,
            };
            let transport = match tls {
                None => Transport::Tcp(stream),
                // In the connection's own task: a slow handshake never holds up accepting.
                Some(tls) => match handshake(&tls, stream, peer, &shared2).await {
                    Some(stream) => Transport::Tls(stream),
                    None => return,
                },
            };
            protocol::serve(transport, Some(peer), app, shared2).await;
        });
        if !task.done() {
            conns.borrow_mut().insert(id, task);
        }
    }
}

/// How long a TLS handshake under way when shutdown begins may still take.
const SHUTDOWN_HANDSHAKE_GRACE: Duration = Duration::from_millis(200);

/// An HTTPS connection's handshake, bounded by the header timeout, and given up shortly
/// after the server starts shutting down (no request is in flight yet, so there is nothing
/// to finish beyond a hello already sent).
/// `None` (logged) if it did not complete.
async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &ServerShared,
) -> Option<TlsStream> {
    let timeout = shared.config.header_timeout;
    let mut handshake = pin!(crate::wait_for(tls.accept(stream), timeout));
    let mut closing = pin!(shared.closing.wait());
    // Shutdown gives a handshake already under way a short grace: its client hello is
    // probably in the socket (the connection was queued when shutdown began).
    let mut grace: Option<crate::Sleep> = None;
    let outcome = poll_fn(|cx| {
        if let Poll::Ready(r) = handshake.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        if grace.is_none() && closing.as_mut().poll(cx).is_ready() {
            grace = Some(crate::sleep(SHUTDOWN_HANDSHAKE_GRACE));
        }
        if let Some(g) = grace.as_mut() {
            if pin!(g).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    })
    .await;
    match outcome {
        Some(Ok(Ok(stream))) => Some(stream),
        // Debug, not warn: failed handshakes are the daily noise of any public HTTPS port
        // (scanners, plain-HTTP clients, clients that distrust a test certificate).
        Some(Ok(Err(e))) => {
            tracing::debug!(%peer, "TLS handshake failed; closing: {e}");
            None
        }
        Some(Err(_)) => {
            tracing::debug!(%peer, ?timeout, "TLS handshake timed out; closing");
            None
        }
        None => None,
    }
}

/// Counts a connection out when its task ends, however it ends (cancellation included).
struct ConnGuard {
    shared: Rc<ServerShared>,
    conns: Rc<RefCell<HashMap<u64, Task<()>>>>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Ok(mut conns) = self.conns.try_borrow_mut() {
            conns.remove(&self.id);
        }
        let n = self.shared.active.get() - 1;
        self.shared.active.set(n);
        if n == 0 {
            self.shared.idle.set();
        }
    }
}

/// aiohttp's `web.run_app`: serves `app` on `host:port` on a new event loop on this thread,
/// prints where, and shuts down gracefully on SIGINT or SIGTERM.
pub fn run_app(app: Application, host: &str, port: u16) -> io::Result<()> {
    run_app_with(app, host, port, ServerOptions::default())
}

/// [`run_app`] with options.
pub fn run_app_with(
    app: Application,
    host: &str,
    port: u16,
    options: ServerOptions,
) -> io::Result<()> {
    let lp = crate::EventLoop::new()?;
    let scheme = if options.is_tls() { "https" } else { "http" };
    let result: io::Result<()> = lp.run_until_complete(async {
        let mut signals = crate::signal::Signals::new(&[libc::SIGINT, libc::SIGTERM])?;
        let runner = AppRunner::start_with(app, host, port, options).await?;
        for addr in runner.addrs() {
            println!("======== Running on {scheme}://{addr} ========");
        }
        println!("(Press CTRL+C to quit)");
        let sig = signals.recv().await;
        tracing::info!(signal = ?sig, "shutting down");
        runner.shutdown().await;
        Ok(())
    });
    let _ = lp.close();
    result
}
