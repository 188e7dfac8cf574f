//! Serving one application on every core: [`AppGroup`] and [`run_app_workers`].
//!
//! Each worker is a [`LoopGroup`] loop with its own `Application`, built there by the
//! user's factory (an `Application` is `!Send`), and its own [`AppRunner`]. Connections reach
//! the loops in one of two ways ([`ListenerMode`]): one `SO_REUSEPORT` listener per worker,
//! which the kernel balances by hashing each connection's addresses, or one listener shared
//! by every worker, each waiting on it with `EPOLLEXCLUSIVE` so that a connection wakes one
//! idle worker. Listeners are bound on the calling thread before any worker starts, so the
//! port (and a port-0 pick) is the same for every worker and a bind error is reported at once.
//!
//! Shutdown is per worker and graceful: each stops accepting after taking what the kernel
//! already queued, finishes its requests in flight within `shutdown_timeout`, and runs its
//! app's `on_shutdown` and `on_cleanup` hooks on its own loop.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;

use super::app::Application;
use super::runner::{AppRunner, ListenerMode, ServerOptions};
use crate::net::TcpListener;
use crate::runtime::{LoopGroup, LoopHandle};
use crate::sync::Event;

thread_local! {
    /// This worker's shutdown signal, for the cross-thread request to find.
    static SHUTDOWN: RefCell<Option<Event>> = const { RefCell::new(None) };
    /// A shutdown request that arrived before the worker was serving.
    static SHUTDOWN_EARLY: Cell<bool> = const { Cell::new(false) };
}

/// What a worker tells the starting thread.
enum Started {
    Serving(usize, Vec<SocketAddr>),
    Failed(usize, io::Error),
    /// The worker's future ended (a panic, say) before it said either.
    Vanished,
}

/// Makes sure the starting thread hears from a worker even if the worker panics before it
/// serves: otherwise `start` would wait for it forever.
struct StartReport {
    tx: mpsc::Sender<Started>,
    sent: bool,
}

impl StartReport {
    fn send(&mut self, s: Started) {
        self.sent = true;
        let _ = self.tx.send(s);
    }
}

impl Drop for StartReport {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.tx.send(Started::Vanished);
        }
    }
}

/// An application served by several event loops, one per thread (started by
/// [`AppGroup::start`]; [`run_app_workers`] is the one-call form with signal handling).
///
/// ```
/// use kettle::web::{AppGroup, Application, Request, ServerOptions};
///
/// let group = AppGroup::start(
///     |worker| {
///         let mut app = Application::new();
///         app.router().add_get("/", move |_req: Request| async move {
///             format!("hello from worker {worker}")
///         });
///         app
///     },
///     "127.0.0.1",
///     0,
///     ServerOptions::default().workers(2),
/// )
/// .unwrap();
/// assert_eq!(group.workers(), 2);
/// let addr = group.addrs()[0];
/// # let _ = addr;
/// group.shutdown().unwrap(); // graceful, on every worker
/// ```
pub struct AppGroup {
    group: Option<LoopGroup<io::Result<()>>>,
    addrs: Vec<SocketAddr>,
    exits: Option<crate::sync::mpsc::Receiver<usize>>,
}

impl AppGroup {
    /// Binds `host:port`, starts `options`' number of workers (default: the available
    /// parallelism), builds each worker's application with `factory(worker_index)`, and
    /// returns once every worker serves. Blocks the calling thread while starting. An error
    /// if binding fails or any worker's startup (its `on_startup` hooks) fails; the workers
    /// already serving are then shut down.
    pub fn start<F>(
        factory: F,
        host: &str,
        port: u16,
        options: ServerOptions,
    ) -> io::Result<AppGroup>
    where
        F: Fn(usize) -> Application + Send + Sync + 'static,
    {
        let builder = LoopGroup::builder().thread_name("kettle-web");
        let builder = match options.worker_count() {
            Some(n) => builder.workers(n),
            None => builder,
        };
        let n = builder.worker_count();
        let per_worker = bind_all(host, port, &options, n)?;
        let listeners = Arc::new(Mutex::new(
            per_worker.into_iter().map(Some).collect::<Vec<_>>(),
        ));
        let mode = options.listener_mode_value();
        let (started_tx, started_rx) = mpsc::channel();
        let (exit_tx, exit_rx) = crate::sync::mpsc::channel(n.max(1) * 2);
        let factory = Arc::new(factory);
        let group = builder.spawn(move |i| {
            let std_listeners = listeners.lock().ok().and_then(|mut l| l.get_mut(i)?.take());
            let (factory, options, started, exits) = (
                factory.clone(),
                options.clone(),
                started_tx.clone(),
                exit_tx.clone(),
            );
            async move {
                let _exit = ExitNotice(exits, i);
                let mut report = StartReport {
                    tx: started,
                    sent: false,
                };
                serve_worker(i, std_listeners, mode, &*factory, options, &mut report).await
            }
        })?;
        let mut addrs = Vec::new();
        let mut failure = None;
        // A worker that vanished has its reason (a panic message) in the group's results.
        let mut vanished = false;
        for _ in 0..n {
            match started_rx.recv() {
                Ok(Started::Serving(0, a)) => addrs = a,
                Ok(Started::Serving(_, _)) => {}
                Ok(Started::Failed(i, e)) => {
                    failure.get_or_insert(io::Error::new(e.kind(), format!("worker {i}: {e}")));
                }
                Ok(Started::Vanished) | Err(_) => {
                    vanished = true;
                }
            }
        }
        let mut me = AppGroup {
            group: Some(group),
            addrs,
            exits: Some(exit_rx),
        };
        if failure.is_some() || vanished {
            let joined = me.shutdown_all();
            return Err(match (failure, joined) {
                (Some(e), _) => e,
                (None, Err(e)) => e,
                (None, Ok(())) => io::Error::other("a worker stopped while starting"),
            });
        }
        Ok(me)
    }

    /// The addresses served (the same on every worker).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// How many workers serve.
    pub fn workers(&self) -> usize {
        self.group.as_ref().map_or(0, LoopGroup::len)
    }

    /// The loop handles of the workers, for cross-loop calls.
    pub fn handles(&self) -> Vec<LoopHandle> {
        self.group.as_ref().map_or(Vec::new(), LoopGroup::handles)
    }

    /// Waits (on the caller's loop) until some worker stops serving on its own, which only a
    /// failure does, and returns its index.
    pub async fn any_exited(&mut self) -> Option<usize> {
        self.exits.as_mut()?.recv().await
    }

    /// Graceful shutdown of every worker at once (see [`AppRunner::shutdown`]); blocks until
    /// all are done. The first worker error, if any (a panicked worker is an `Other` error
    /// with its message).
    pub fn shutdown(mut self) -> io::Result<()> {
        self.shutdown_all()
    }

    fn shutdown_all(&mut self) -> io::Result<()> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        for h in group.handles() {
            // A worker that already ended has a closed loop: nothing to stop.
            let _ = h.call_soon_threadsafe(request_shutdown);
        }
        let mut first_error = None;
        for (i, r) in group.join().into_iter().enumerate() {
            let e = match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(e) => io::Error::other(format!("worker {i}: {e}")),
            };
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for AppGroup {
    fn drop(&mut self) {
        let _ = self.shutdown_all();
    }
}

impl std::fmt::Debug for AppGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppGroup")
            .field("workers", &self.workers())
            .field("addrs", &self.addrs)
            .finish()
    }
}

/// Tells the starting thread's loop that a worker ended, however it ended (its future's
/// destructor runs on completion, cancellation and panic alike).
struct ExitNotice(crate::sync::mpsc::Sender<usize>, usize);

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.0.try_send(self.1);
    }
}

/// Runs on a worker's loop: starts its graceful shutdown.
fn request_shutdown() {
    SHUTDOWN_EARLY.with(|s| s.set(true));
    SHUTDOWN.with(|s| {
        if let Some(e) = s.borrow().as_ref() {
            e.set();
        }
    });
}

/// One worker: adopt its listeners, build and start its app, report, serve until asked to
/// stop, shut down gracefully.
async fn serve_worker<F>(
    index: usize,
    listeners: Option<Vec<std::net::TcpListener>>,
    mode: ListenerMode,
    factory: &F,
    options: ServerOptions,
    started: &mut StartReport,
) -> io::Result<()>
where
    F: Fn(usize) -> Application,
{
    let adopted: io::Result<Vec<TcpListener>> = listeners
        .unwrap_or_default()
        .into_iter()
        .map(|l| match mode {
            ListenerMode::ReusePort => TcpListener::from_std(l),
            ListenerMode::Shared => TcpListener::from_std_shared(l),
        })
        .collect();
    let runner = match adopted {
        Ok(listeners) => AppRunner::serve_listeners(factory(index), listeners, options).await,
        Err(e) => Err(e),
    };
    let runner = match runner {
        Ok(r) => r,
        Err(e) => {
            let kind = e.kind();
            let message = e.to_string();
            started.send(Started::Failed(index, e));
            return Err(io::Error::new(kind, message));
        }
    };
    let stop = Event::new();
    SHUTDOWN.with(|s| *s.borrow_mut() = Some(stop.clone()));
    if SHUTDOWN_EARLY.with(Cell::get) {
        stop.set();
    }
    started.send(Started::Serving(index, runner.addrs().to_vec()));
    let mut wait = pin!(stop.wait());
    poll_fn(|cx| wait.as_mut().poll(cx).map(|_| ())).await;
    tracing::info!(worker = index, "shutting down");
    runner.shutdown().await;
    SHUTDOWN.with(|s| s.borrow_mut().take());
    Ok(())
}

/// Binds the listeners of `n` workers on every address `host` resolves to: `n` sockets per
/// address with `SO_REUSEPORT`, or one per address shared (cloned) by all.
fn bind_all(
    host: &str,
    port: u16,
    options: &ServerOptions,
    n: usize,
) -> io::Result<Vec<Vec<std::net::TcpListener>>> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolves to nothing"),
        ));
    }
    let mut per_worker: Vec<Vec<std::net::TcpListener>> = (0..n).map(|_| Vec::new()).collect();
    for addr in addrs {
        match options.listener_mode_value() {
            ListenerMode::ReusePort => {
                let listen = options.listen_options().reuse_port(true);
                let first = TcpListener::bind_std(addr, listen)?;
                // Port 0: every other worker joins the port the first one got.
                let bound = first.local_addr()?;
                per_worker[0].push(first);
                for listeners in per_worker.iter_mut().skip(1) {
                    listeners.push(TcpListener::bind_std(bound, listen)?);
                }
            }
            ListenerMode::Shared => {
                let listener = TcpListener::bind_std(addr, options.listen_options())?;
                for listeners in per_worker.iter_mut().skip(1) {
                    listeners.push(listener.try_clone()?);
                }
                per_worker[0].push(listener);
            }
        }
    }
    Ok(per_worker)
}

/// aiohttp's `web.run_app` on every core: serves the applications `factory` builds, one per
/// worker loop (see [`AppGroup`]), prints where, and shuts every worker down gracefully on
/// SIGINT or SIGTERM (or when a worker fails). The number of workers comes from
/// [`ServerOptions::workers`], by default the available parallelism.
///
/// ```no_run
/// use kettle::web::{run_app_workers, Application, Request, ServerOptions};
///
/// fn main() -> std::io::Result<()> {
///     run_app_workers(
///         |_worker| {
///             let mut app = Application::new();
///             app.router().add_get("/", |_req: Request| async { "Hello, World!" });
///             app
///         },
///         "0.0.0.0",
///         8080,
///         ServerOptions::default(),
///     )
/// }
/// ```
pub fn run_app_workers<F>(
    factory: F,
    host: &str,
    port: u16,
    options: ServerOptions,
) -> io::Result<()>
where
    F: Fn(usize) -> Application + Send + Sync + 'static,
{
    let scheme = if options.is_tls() { "https" } else { "http" };
    let lp = crate::EventLoop::new()?;
    let result: io::Result<()> = lp.run_until_complete(async {
        // Signal handlers first: a signal that arrives while the workers start is not lost.
        let mut signals = crate::signal::Signals::new(&[libc::SIGINT, libc::SIGTERM])?;
        let mut group = AppGroup::start(factory, host, port, options)?;
        for addr in group.addrs() {
            println!(
                "======== Running on {scheme}://{addr} ({} workers) ========",
                group.workers()
            );
        }
        println!("(Press CTRL+C to quit)");
        let why = {
            let mut signal = pin!(signals.recv());
            let mut exited = pin!(group.any_exited());
            poll_fn(|cx| {
                if let Poll::Ready(sig) = signal.as_mut().poll(cx) {
                    return Poll::Ready(format!("signal {sig:?}"));
                }
                if let Poll::Ready(i) = exited.as_mut().poll(cx) {
                    return Poll::Ready(format!("worker {i:?} stopped"));
                }
                Poll::Pending
            })
            .await
        };
        tracing::info!("{why}: shutting down every worker");
        group.shutdown()
    });
    let _ = lp.close();
    result
}
