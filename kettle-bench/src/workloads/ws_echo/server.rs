//! The WebSocket echo servers. Each serves `GET /ws` on 127.0.0.1 and echoes every text
//! message as text and every binary message as binary, in the plain style of its library's
//! own examples, with its defaults (no compression is negotiated: the client offers none).
//!
//! * `kettle`: `kettle::web` with a `WebSocketResponse` handler, served by `AppRunner` with
//!   default options ([`kettle`]).
//! * `epoll`: the floor, a single-threaded level-triggered raw-epoll loop that answers the
//!   handshake and echoes frames with one `read` and one `write` per batch and nothing else
//!   ([`super::epoll_server`]): what a message costs the kernel plus minimal framing, the
//!   measure of the others' CPU per message, as `http-hello`'s epoll server is for HTTP.
//! * `tungstenite`: tokio-tungstenite's `accept_async` on tokio `current_thread`, a task per
//!   connection reading a message and sending it back ([`tungstenite`]). It accepts the
//!   upgrade on any path.
//! * `aiohttp`, `aiohttp-uvloop`: `kettle-bench/python/ws_server.py`, aiohttp's
//!   `web.WebSocketResponse` on asyncio's loop or uvloop's ([`exec_python`]).
//!
//! The Rust servers set `TCP_NODELAY` on every accepted socket, as aiohttp does on its own,
//! so no server waits on Nagle's algorithm.

use std::io;

use super::Server;
use crate::netbench::{OnReady, StopFn};

/// The Python servers' source.
const PYTHON_SCRIPT: &str = include_str!("../../../python/ws_server.py");

/// Runs one of the Rust servers on 127.0.0.1:`port` (0 picks a free port). Once it listens,
/// `on_ready` gets the actual port and the function that stops the server; `serve` returns
/// when the server has stopped, or with the error that prevented it from serving. The Python
/// servers run in a process of their own ([`exec_python`]): an `Unsupported` error here.
pub fn serve(server: Server, port: u16, on_ready: OnReady) -> io::Result<()> {
    match server {
        Server::Kettle => kettle(port, on_ready),
        Server::Epoll => super::epoll_server::serve(port, on_ready),
        Server::Tungstenite => tungstenite(port, on_ready),
        Server::Aiohttp | Server::AiohttpUvloop => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the Python servers run in a process of their own",
        )),
    }
}

/// Replaces this process with `python3` running the Python `server` on `port`: the process
/// keeps its id (whose CPU time the client reads) and its core. Returns only on failure.
///
/// The caller must not have blocked SIGTERM: a signal mask survives `exec`, and the script
/// stops on SIGTERM through asyncio's handler, which cannot see a blocked signal.
pub fn exec_python(server: Server, port: u16) -> io::Error {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(crate::python::PYTHON)
        .args(["-c", PYTHON_SCRIPT, server.name(), &port.to_string()])
        .exec()
}

/// tokio-tungstenite on tokio `current_thread`: accept, `accept_async`, then read a message
/// and send it back until the connection closes. tungstenite answers pings and the closing
/// handshake by itself.
fn tungstenite(port: u16, on_ready: OnReady) -> io::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use std::net::{Ipv4Addr, SocketAddrV4};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let result = rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).await?;
        let stop: StopFn = Box::new(move || {
            // An error means the server already returned: nothing left to stop.
            let _ = stop_tx.send(());
        });
        on_ready(listener.local_addr()?.port(), stop);
        loop {
            let conn = tokio::select! {
                accepted = listener.accept() => accepted?.0,
                _ = &mut stop_rx => return Ok(()),
            };
            conn.set_nodelay(true)?;
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(conn).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    // Dropping the runtime drops the connection tasks still pending.
    drop(rt);
    result
}

/// The Kettle handler: `WebSocketResponse`, `prepare`, then every message echoed until the
/// closing handshake (which Kettle answers by itself) ends the stream.
async fn echo(
    req: kettle::web::Request,
) -> Result<kettle::web::WebSocketResponse, kettle::web::Error> {
    use futures_util::StreamExt;
    use kettle::ws::Message;

    let mut ws = kettle::web::WebSocketResponse::new();
    ws.prepare(&req).await?;
    while let Some(msg) = ws.next().await {
        match msg? {
            Message::Text(text) => ws.send_str(&text).await?,
            Message::Binary(bytes) => ws.send_bytes(bytes).await?,
            _ => {}
        }
    }
    Ok(ws)
}

/// `kettle::web`: an `Application` routing `GET /ws` to [`echo`], served by `AppRunner` with
/// default options, like `http-hello`'s Kettle server.
fn kettle(port: u16, on_ready: OnReady) -> io::Result<()> {
    use kettle::web::{AppRunner, Application};

    let lp = kettle::EventLoop::new()?;
    let runner = lp.run_until_complete(async {
        let mut app = Application::new();
        app.router().add_get(super::wire::PATH, echo);
        AppRunner::start(app, "127.0.0.1", port).await
    })?;
    let handle = lp.handle();
    on_ready(
        runner.addrs()[0].port(),
        Box::new(move || drop(handle.stop())),
    );
    let ran = lp.run_forever();
    // The client has closed every WebSocket by now; a graceful shutdown closes any left.
    lp.run_until_complete(runner.shutdown());
    lp.close().map_err(io::Error::other)?;
    ran.map_err(io::Error::other)
}
