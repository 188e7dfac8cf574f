//! hyper 1.x on tokio's `current_thread` runtime: the low-level Rust HTTP anchor.
//!
//! hyper is driven directly (`hyper::server::conn::http1`, no hyper-util), one tokio task per
//! connection, with keep-alive on and `pipeline_flush(true)`, so that the responses to
//! pipelined requests leave in one write per batch as they do from the other servers. No timer
//! is configured, so there is no header-read timeout; hyper adds `content-length` (from the
//! body's exact size) and `date` (cached per second) itself.
//!
//! For `http-hello --workers N` ([`serve_workers`]) the same accept loop and connection tasks
//! run on tokio's `multi_thread` runtime with N worker threads, the way hyper's own examples
//! serve (`#[tokio::main]`): the accept loop in `block_on` on the calling thread, each
//! connection a task spawned onto the workers, which steal work from each other.
//!
//! For `https-hello` ([`serve_with`] given a tokio-rustls acceptor) each connection's task runs
//! the TLS handshake first, then hyper over the TLS stream; the accept loop never waits for a
//! handshake.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};

use super::response::{self, count_answered, count_answered_on_thread};
use super::{localhost, tokio_io::TokioIo};
use crate::netbench::StopFn;

/// The handler: `Hello, World!` for every request (there is only `GET /` here).
async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    count_answered(1);
    Ok(hello_response())
}

/// The handler on the `multi_thread` runtime: counted per worker thread too.
async fn hello_counted_per_thread(
    _req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    count_answered_on_thread(1);
    Ok(hello_response())
}

fn hello_response() -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(response::BODY)));
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(response::CONTENT_TYPE),
    );
    res
}

/// Serves plain HTTP on 127.0.0.1:`port` until stopped; see [`super::serve`].
pub fn serve(port: u16, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    serve_with(port, None, on_ready)
}

/// [`serve`], or HTTPS with `tls`: every connection completes its handshake with that
/// acceptor before hyper reads a request from it.
pub fn serve_with(
    port: u16,
    tls: Option<tokio_rustls::TlsAcceptor>,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    serve_on(rt, port, tls, hello, on_ready)
}

/// Serves plain HTTP on 127.0.0.1:`port` on a `multi_thread` runtime with `workers` worker
/// threads until stopped; returns the requests each worker thread answered (see
/// [`super::serve_workers`]).
pub fn serve_workers(
    port: u16,
    workers: usize,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<Vec<u64>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()?;
    serve_on(rt, port, None, hello_counted_per_thread, on_ready)?;
    Ok(response::per_thread_answered())
}

/// The server on `rt`, answering with `handler`: see [`serve_with`].
fn serve_on<H, F>(
    rt: tokio::runtime::Runtime,
    port: u16,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Copy + Send + 'static,
    F: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(localhost(port)).await?;
        on_ready(
            listener.local_addr()?.port(),
            // An error means the server already returned: nothing left to stop.
            Box::new(move || {
                let _ = stop_tx.send(());
            }),
        );
        let mut http = hyper::server::conn::http1::Builder::new();
        http.keep_alive(true)
            .pipeline_flush(true)
            .header_read_timeout(None);
        loop {
            let conn = tokio::select! {
                accepted = listener.accept() => accepted?.0,
                _ = &mut stop_rx => return Ok(()),
            };
            conn.set_nodelay(true)?;
            let service = hyper::service::service_fn(handler);
            // A client that resets, fails its handshake or sends garbage ends its own
            // connection only.
            match &tls {
                None => {
                    let serving = http.serve_connection(TokioIo(conn), service);
                    tokio::spawn(async move {
                        let _ = serving.await;
                    });
                }
                Some(acceptor) => {
                    let handshake = acceptor.accept(conn);
                    let http = http.clone();
                    tokio::spawn(async move {
                        if let Ok(stream) = handshake.await {
                            let _ = http.serve_connection(TokioIo(stream), service).await;
                        }
                    });
                }
            }
        }
    });
    // Dropping the runtime drops the connection tasks still pending.
    drop(rt);
    result
}
