//! `kettle`: Kettle's `ClientSession` (aiohttp's `ClientSession`, in Rust) on Kettle's event
//! loop, the client this benchmark is for.
//!
//! Like the aiohttp client: one
//! session whose pool limit is `conns`, shared by `conns` tasks (`kettle::spawn`) that each make
//! requests in turn as user code would (`session.get(url).send()`, then `bytes()`), run by
//! `kettle::run`; the session is closed at the end.

use std::rc::Rc;

use kettle::client::ClientSession;

use super::load::{check, Measured, Span, Tickets};
use super::RunArgs;

/// One run: the warm-up phase (which opens the connections), then the measured phase.
pub fn run(args: &RunArgs) -> Result<Measured, String> {
    kettle::run(async {
        let session = ClientSession::builder()
            .limit(args.conns)
            .build()
            .map_err(|e| format!("cannot build the ClientSession: {e}"))?;
        // Tasks need 'static futures, and a loop is one thread: an Rc shares the session.
        let session = Rc::new(session);
        let url: Rc<str> = args.url().into();
        phase(&session, &url, args.warmup, args.conns).await?;
        let span = Span::start(args.server_pid)?;
        phase(&session, &url, args.requests, args.conns).await?;
        let measured = span.finish(args.requests)?;
        // Every task has ended, so this is the last handle.
        let session = Rc::try_unwrap(session)
            .map_err(|_| "the session is still shared after every loop ended".to_string())?;
        session.close().await;
        Ok(measured)
    })
}

/// `count` requests from `conns` concurrent tasks; returns once all are answered.
async fn phase(
    session: &Rc<ClientSession>,
    url: &Rc<str>,
    count: u64,
    conns: usize,
) -> Result<(), String> {
    let tickets = Rc::new(Tickets::new(count));
    let loops: Vec<_> = (0..conns)
        .map(|_| kettle::spawn(request_loop(session.clone(), url.clone(), tickets.clone())))
        .collect();
    for task in loops {
        task.await
            .map_err(|e| format!("a request loop died: {e}"))??;
    }
    Ok(())
}

/// Requests, one at a time, while tickets last.
async fn request_loop(
    session: Rc<ClientSession>,
    url: Rc<str>,
    tickets: Rc<Tickets>,
) -> Result<(), String> {
    // A plain &str, which any form of `get(url)` takes (&str, AsRef<str>, Into<String>, ...).
    let url: &str = &url;
    while tickets.take() {
        let mut resp = session
            .get(url)
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
