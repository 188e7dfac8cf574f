//! The Kettle servers for `http-hello`.
//!
//! * [`serve`], measured as **`kettle`**: the web framework through its public API — an
//!   `Application` whose router maps `GET /` to an ordinary `async fn(Request) -> Response`,
//!   served by `AppRunner` with default options (keep-alive, pipelining, timeouts, access
//!   log callsite: everything a user gets). `https-hello` serves it over TLS
//!   ([`serve_with`] and `ServerOptions::tls`), otherwise unchanged.
//! * [`serve_raw`], measured as **`kettle-raw`**: Kettle's runtime with no framework at all, a
//!   task per connection over `kettle::net::TcpListener`/`TcpStream` doing what the epoll floor
//!   does (read, count the requests the read completed, write that many fixed responses in one
//!   write). Its distance to the `epoll` floor is what the event loop, tasks and sockets cost;
//!   the distance from it to `kettle` is what the framework costs.
//!
//! * [`serve_workers`], measured as **`kettle`** and **`kettle-1w`** in `http-hello --workers
//!   N`: the same application on N event loops (and on one), through
//!   `kettle::web::run_app_workers`, counting the requests of each worker. It needs the
//!   `kettle-workers` cargo feature; without it, it returns an `Unsupported` error.
//!
//! The functions have the signature every server in this workload has: serve on
//! 127.0.0.1:PORT (0 picks a free port), call `on_ready` with the actual port and a stop
//! function once listening, and return when stopped.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use super::response::{count_answered, HelloResponse, RequestCounter};
use super::{localhost, READ_BUF};
use crate::netbench::StopFn;

/// `GET /`: the same bytes every server sends (the framework adds `Content-Length` and `Date`).
async fn hello(_req: kettle::web::Request) -> kettle::web::Response {
    count_answered(1);
    kettle::web::Response::static_text("Hello, World!")
}

/// The Kettle web-framework server (`kettle`): see the module docs.
pub fn serve(port: u16, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    serve_with(port, kettle::web::ServerOptions::default(), on_ready)
}

/// [`serve`] with server options: `https-hello` passes the defaults plus TLS.
pub fn serve_with(
    port: u16,
    options: kettle::web::ServerOptions,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<()> {
    use kettle::web::{AppRunner, Application};

    let lp = kettle::EventLoop::new()?;
    let runner = lp.run_until_complete(async {
        let mut app = Application::new();
        app.router().add_get("/", hello);
        AppRunner::start_with(app, "127.0.0.1", port, options).await
    })?;
    let handle = lp.handle();
    on_ready(
        runner.addrs()[0].port(),
        Box::new(move || drop(handle.stop())),
    );
    let ran = lp.run_forever();
    // Graceful: idle keep-alive connections close at once, nothing is in flight.
    lp.run_until_complete(runner.shutdown());
    lp.close().map_err(io::Error::other)?;
    ran.map_err(io::Error::other)
}

/// Whether this build has [`serve_workers`] (the `kettle-workers` feature).
pub const HAS_WORKERS: bool = cfg!(feature = "kettle-workers");

/// The Kettle web-framework server on `workers` event loops: `kettle::web::run_app_workers`
/// with `ServerOptions::default().workers(workers)`, each loop's `Application` mapping `GET /`
/// as [`serve`]'s does and counting its requests per worker (by `kettle::worker_index()`).
/// Returns those counts once stopped.
///
/// `run_app_workers` binds the port itself, says where only in its banner, and stops on
/// SIGINT or SIGTERM, caught by its own handler. So a free port is picked here first (for
/// port 0: bound and released, which another process could take in between, but nothing else
/// here binds ports); the server runs on a thread of its own while this one waits until the
/// port accepts, and only then reports ready. `http-server` blocks SIGTERM and takes it on
/// its signal thread; the stop function passes it on by raising it on that thread with the
/// signal unblocked, so the server's handler sees it as it would see a signal from outside.
#[cfg(feature = "kettle-workers")]
pub fn serve_workers(
    port: u16,
    workers: usize,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<Vec<u64>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use kettle::web::{run_app_workers, Application, Request, Response, ServerOptions};

    let port = match port {
        0 => std::net::TcpListener::bind(localhost(0))?
            .local_addr()?
            .port(),
        p => p,
    };
    let per_worker: Arc<[AtomicU64]> = (0..workers).map(|_| AtomicU64::new(0)).collect();
    let counts = per_worker.clone();
    let factory = move |_worker: usize| {
        let counts = counts.clone();
        let mut app = Application::new();
        app.router().add_get("/", move |_req: Request| {
            count_answered(1);
            if let Some(count) = kettle::worker_index().and_then(|i| counts.get(i)) {
                count.fetch_add(1, Ordering::Relaxed);
            }
            async { Response::static_text("Hello, World!") }
        });
        app
    };
    // `KETTLE_LISTENER=shared` measures the shared EPOLLEXCLUSIVE listener instead of one
    // SO_REUSEPORT listener per worker (the default), for comparing the two modes.
    let mode = match std::env::var("KETTLE_LISTENER").as_deref() {
        Ok("shared") => kettle::web::ListenerMode::Shared,
        _ => kettle::web::ListenerMode::ReusePort,
    };
    let options = ServerOptions::default()
        .workers(workers)
        .listener_mode(mode);
    let server = std::thread::Builder::new()
        .name("kettle-workers".into())
        .spawn(move || run_app_workers(factory, "127.0.0.1", port, options))?;

    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(localhost(port)).is_err() {
        if server.is_finished() {
            break;
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("run_app_workers did not accept on port {port} within 10 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if !server.is_finished() {
        on_ready(
            port,
            Box::new(|| {
                if let Err(e) = crate::sys::raise_unblocked(libc::SIGTERM) {
                    eprintln!("kettle-bench: cannot pass SIGTERM on to the server: {e}");
                }
            }),
        );
    }
    server
        .join()
        .map_err(|_| io::Error::other("run_app_workers panicked"))??;
    Ok(per_worker
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect())
}

/// [`serve_workers`] in a build without the `kettle-workers` feature: an `Unsupported` error.
#[cfg(not(feature = "kettle-workers"))]
pub fn serve_workers(
    _port: u16,
    _workers: usize,
    _on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<Vec<u64>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this kettle-bench was built without the `kettle-workers` feature \
         (kettle::web::run_app_workers)",
    ))
}

/// Kettle's runtime without the framework (`kettle-raw`): see the module docs.
pub fn serve_raw(port: u16, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    use kettle::net::TcpListener;

    let addr = localhost(port);
    let lp = kettle::EventLoop::new()?;
    // A socket registers with the loop running on its thread, so the listener is bound inside a
    // short run of the loop; it stays registered after that run returns.
    let listener = lp.run_until_complete(async { TcpListener::bind(addr) })?;
    let handle = lp.handle();
    on_ready(
        listener.local_addr()?.port(),
        Box::new(move || drop(handle.stop())),
    );

    // One response for the whole server, its date refreshed once per second, as the floor has.
    let response = Rc::new(RefCell::new(HelloResponse::new()));
    // An accept error (out of fds, say) ends the server; it comes out through this cell.
    let failure: Rc<RefCell<Option<io::Error>>> = Rc::default();
    let fail = failure.clone();
    let acceptor = lp.create_task(async move {
        let result: io::Result<()> = async {
            loop {
                let (conn, _) = listener.accept().await?;
                conn.set_nodelay(true)?;
                let response = response.clone();
                // Detached: a connection task ends at EOF, or is dropped when the loop closes.
                drop(kettle::spawn(async move {
                    let mut buf = vec![0u8; READ_BUF];
                    let mut out = Vec::with_capacity(READ_BUF);
                    let mut requests = RequestCounter::default();
                    loop {
                        let n = match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let complete = requests.feed(&buf[..n]);
                        if complete == 0 {
                            continue;
                        }
                        count_answered(complete as u64);
                        out.clear();
                        response.borrow_mut().append(complete, &mut out);
                        if conn.write_all(&out).await.is_err() {
                            break;
                        }
                    }
                }));
            }
        }
        .await;
        if let Err(e) = result {
            *fail.borrow_mut() = Some(e);
            kettle::get_running_loop().stop();
        }
    });
    let ran = lp.run_forever();
    // The acceptor and the connection tasks are still pending; closing the loop drops them
    // (and so closes their sockets) before we return.
    drop(acceptor);
    lp.close().map_err(io::Error::other)?;
    ran.map_err(io::Error::other)?;
    match failure.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
