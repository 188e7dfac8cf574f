//! actix-web 4: the framework anchor (router, extractors, responders, like the Kettle web
//! framework), built without default features, so it is a plain HTTP/1 server. `http-hello`
//! runs it with one worker ([`serve`]), `http-hello --workers N` with N ([`serve_workers`]).
//!
//! actix runs its own system: this thread drives the `System` (the server future), a separate
//! accept thread takes connections and hands them to the worker threads, which serve them.
//! All of them are in the server process, so they share its core (or cores) and its CPU time.
//! Its own signal handling is disabled; the `http-server` signal thread stops it through its
//! handle. actix adds `content-length` and `date` (cached) itself; `TCP_NODELAY` is set per
//! connection in `on_connect`, as the other servers set it, since actix does not by default.

use std::io;

use actix_web::{web, App, HttpResponse, HttpServer};

use super::localhost;
use super::response::{self, count_answered, count_answered_on_thread};
use crate::netbench::StopFn;

/// The handler for `GET /`.
async fn hello() -> HttpResponse {
    count_answered(1);
    hello_response()
}

/// The handler for `GET /` with several workers: counted per worker thread too.
async fn hello_counted_per_thread() -> HttpResponse {
    count_answered_on_thread(1);
    hello_response()
}

fn hello_response() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(response::CONTENT_TYPE)
        .body(response::BODY)
}

/// Serves on 127.0.0.1:`port` with one worker until stopped; see [`super::serve`].
pub fn serve(port: u16, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    run(port, 1, false, on_ready)
}

/// Serves on 127.0.0.1:`port` with `workers` worker threads until stopped; returns the
/// requests each worker answered (see [`super::serve_workers`]).
pub fn serve_workers(
    port: u16,
    workers: usize,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<Vec<u64>> {
    run(port, workers, true, on_ready)?;
    Ok(response::per_thread_answered())
}

/// The server with `workers` workers, counting per thread if `per_thread`.
fn run(
    port: u16,
    workers: usize,
    per_thread: bool,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let route = if per_thread {
                web::get().to(hello_counted_per_thread)
            } else {
                web::get().to(hello)
            };
            App::new().route("/", route)
        })
        .workers(workers)
        .disable_signals()
        .on_connect(|conn, _| {
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        .bind(localhost(port))?;
        let port = server
            .addrs()
            .first()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("actix bound no address"))?;
        let server = server.run();
        let handle = server.handle();
        on_ready(
            port,
            Box::new(move || {
                // The stop command is sent by this call; the returned future only reports
                // completion, which `server.await` below waits for.
                drop(handle.stop(false));
            }),
        );
        server.await
    })
}
