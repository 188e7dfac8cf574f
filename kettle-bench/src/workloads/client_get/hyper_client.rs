//! `hyper`: hyper 1.x's low-level HTTP/1 client on tokio's `current_thread` runtime, the
//! runtime-plus-protocol cost with no pool or URL handling on top.
//!
//! Each of the `conns` request loops owns one connection: a tokio `TcpStream` (with
//! `TCP_NODELAY`, as reqwest and aiohttp set it) handed to `client::conn::http1::handshake`,
//! whose connection future runs in a task of its own as in hyper's examples. The loop sends
//! `GET /` with a `Host` header (hyper's low-level client adds none) and collects the body.
//! hyper-util is not needed: its pool is what reqwest adds, and the I/O adapter is
//! [`TokioIo`], shared with the hyper server.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, HOST};
use hyper::Request;

use super::load::{check, Measured, Span, Tickets};
use super::RunArgs;
use crate::workloads::http::tokio_io::TokioIo;

/// One connection's request handle.
type Sender = SendRequest<Empty<Bytes>>;

/// One run: the connections, the warm-up phase, then the measured phase.
pub fn run(args: &RunArgs) -> Result<Measured, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("cannot build the tokio runtime: {e}"))?;
    rt.block_on(async {
        let host = HeaderValue::from_str(&format!("127.0.0.1:{}", args.port))
            .map_err(|e| format!("bad Host header: {e}"))?;
        let mut senders = Vec::with_capacity(args.conns);
        for _ in 0..args.conns {
            senders.push(connect(args.port).await?);
        }
        // Each phase hands the connections to its loops and gets them back, so the measured
        // phase runs on the connections the warm-up opened.
        let senders = phase(senders, &host, args.warmup).await?;
        let span = Span::start(args.server_pid)?;
        let senders = phase(senders, &host, args.requests).await?;
        let measured = span.finish(args.requests)?;
        // Closes the connections (their tasks end when their sender is gone).
        drop(senders);
        Ok(measured)
    })
}

/// A new connection to the server, its I/O driven by a task of its own.
async fn connect(port: u16) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot connect to 127.0.0.1:{port}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let (sender, conn) = http1::handshake(TokioIo(stream))
        .await
        .map_err(|e| format!("HTTP/1 handshake: {e}"))?;
    tokio::spawn(async move {
        // An error here also fails the request in flight, which reports it.
        let _ = conn.await;
    });
    Ok(sender)
}

/// `count` requests, one loop per connection; returns the connections once all are answered.
async fn phase(
    senders: Vec<Sender>,
    host: &HeaderValue,
    count: u64,
) -> Result<Vec<Sender>, String> {
    let tickets = Arc::new(Tickets::new(count));
    let loops: Vec<_> = senders
        .into_iter()
        .map(|sender| tokio::spawn(request_loop(sender, host.clone(), tickets.clone())))
        .collect();
    let mut back = Vec::with_capacity(loops.len());
    for handle in loops {
        back.push(
            handle
                .await
                .map_err(|e| format!("a request loop died: {e}"))??,
        );
    }
    Ok(back)
}

/// Requests on one connection, one at a time, while tickets last; returns the connection.
async fn request_loop(
    mut sender: Sender,
    host: HeaderValue,
    tickets: Arc<Tickets>,
) -> Result<Sender, String> {
    while tickets.take() {
        sender
            .ready()
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let req = Request::get("/")
            .header(HOST, host.clone())
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("GET /: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("GET /: reading the body: {e}"))?
            .to_bytes();
        check(status, &body)?;
    }
    Ok(sender)
}
