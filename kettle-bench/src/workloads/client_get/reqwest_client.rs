//! `reqwest`: the high-level Rust client users reach for, on tokio's `current_thread` runtime.
//!
//! One `reqwest::Client` (its connection pool keeps up to `conns` idle connections to the
//! server, so every loop finds one back after the warm-up) shared by `conns` tokio tasks, each
//! making requests in turn as user code would: `client.get(url).send()`, then `bytes()`.
//! Built without default features: plain HTTP/1, no TLS, HTTP/2 or charset decoding, and
//! `no_proxy()` so no proxy environment variable is looked up or obeyed. The URL's host is an
//! IP address, so no resolver thread is involved either.

use std::sync::Arc;

use super::load::{check, Measured, Span, Tickets};
use super::RunArgs;

/// One run: the warm-up phase (which opens the connections), then the measured phase.
pub fn run(args: &RunArgs) -> Result<Measured, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        // The pool's idle timer needs the time driver, the sockets the I/O driver.
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the tokio runtime: {e}"))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(args.conns)
            .build()
            .map_err(|e| format!("cannot build the reqwest client: {e}"))?;
        let url: Arc<str> = args.url().into();
        phase(&client, &url, args.warmup, args.conns).await?;
        let span = Span::start(args.server_pid)?;
        phase(&client, &url, args.requests, args.conns).await?;
        span.finish(args.requests)
    })
}

/// `count` requests from `conns` concurrent loops; returns once all are answered.
async fn phase(
    client: &reqwest::Client,
    url: &Arc<str>,
    count: u64,
    conns: usize,
) -> Result<(), String> {
    let tickets = Arc::new(Tickets::new(count));
    let loops: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(request_loop(client.clone(), url.clone(), tickets.clone())))
        .collect();
    for handle in loops {
        handle
            .await
            .map_err(|e| format!("a request loop died: {e}"))??;
    }
    Ok(())
}

/// Requests, one at a time, while tickets last.
async fn request_loop(
    client: reqwest::Client,
    url: Arc<str>,
    tickets: Arc<Tickets>,
) -> Result<(), String> {
    while tickets.take() {
        let resp = client
            .get(&*url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
        check(status, &body)?;
    }
    Ok(())
}
