//! Interoperability with aiohttp, the library Kettle's API follows: aiohttp's WebSocket
//! client against Kettle's server, and Kettle's client against aiohttp's server, both with
//! permessage-deflate on, so each side's compression is checked by a decoder it did not
//! write. Skipped (with a message) where `python3` has no aiohttp; `.ci/run` installs
//! Debian's python3-aiohttp.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kettle::client::ClientSession;
use kettle::web::{self, AppRunner, Application, Request, WebSocketResponse};
use kettle::ws::Message;

/// The Python that has aiohttp: the one on PATH, or Debian's.
fn python_with_aiohttp() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import aiohttp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Kills the child when the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// aiohttp's client: connects with compression, sends a script of messages, checks each
/// echo, and prints one line per check.
const AIOHTTP_CLIENT: &str = r#"
import asyncio, sys, aiohttp

async def main(url):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=("chat",), compress=15) as ws:
            print("protocol", ws.protocol, flush=True)
            big = "kettle whistles " * 20000
            for text in ["hello", "é" * 1000, big]:
                await ws.send_str(text)
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                assert msg.data == text, (len(msg.data), len(text))
            await ws.send_bytes(bytes(range(256)) * 300)
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY and msg.data == bytes(range(256)) * 300
            print("compressed", bool(ws._writer.compress), flush=True)
            await ws.send_str("close")
            msg = await ws.receive()
            print("close", msg.type.name, msg.data, msg.extra, ws.close_code, flush=True)

asyncio.run(main(sys.argv[1]))
"#;

async fn echo(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ws = WebSocketResponse::new().protocols(&["chat"]);
    ws.prepare(&req).await?;
    loop {
        match ws.receive().await? {
            Message::Text(t) if t == "close" => {
                ws.close(4001, "enough").await?;
                break;
            }
            Message::Text(t) => ws.send_str(&t).await?,
            Message::Binary(b) => ws.send_bytes(b).await?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(ws)
}

#[kettle::test]
async fn aiohttps_client_against_kettles_server() {
    let Some(python) = python_with_aiohttp() else {
        eprintln!("skipped: no python3 with aiohttp");
        return;
    };
    let mut app = Application::new();
    app.router().add_get("/ws", echo);
    let server = AppRunner::start(app, "127.0.0.1", 0).await.unwrap();
    let url = format!("ws://{}/ws", server.addrs()[0]);
    let child = Reaped(
        Command::new(python)
            .args(["-c", AIOHTTP_CLIENT, &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = kettle::run_in_executor(move || {
        let mut child = child;
        let status = child.0.wait().unwrap();
        let mut out = String::new();
        let mut err = String::new();
        std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
        std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "aiohttp client failed:\n{out}\n{err}");
        out
    })
    .await
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "protocol chat");
    // aiohttp's writer compressed (so Kettle inflated aiohttp's deflate) ...
    assert_eq!(lines[1], "compressed True");
    // ... and read Kettle's compressed echoes (the asserts in the script), then the close.
    assert_eq!(lines[2], "close CLOSE 4001 enough 4001");
    server.shutdown().await;
}

/// aiohttp's server: echoes, and answers "agreed" with whether compression is on.
const AIOHTTP_SERVER: &str = r#"
import sys, aiohttp
from aiohttp import web

async def ws_handler(request):
    ws = web.WebSocketResponse(protocols=("v1", "chat"))
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            if msg.data == "agreed":
                await ws.send_str(f"{ws.ws_protocol} {bool(ws._compress)}")
            else:
                await ws.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws

app = web.Application()
app.router.add_get("/ws", ws_handler)

async def ready(app):
    print("ready", flush=True)
app.on_startup.append(ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"#;

#[kettle::test]
async fn kettles_client_against_aiohttps_server() {
    let Some(python) = python_with_aiohttp() else {
        eprintln!("skipped: no python3 with aiohttp");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Reaped(
        Command::new(python)
            .args(["-c", AIOHTTP_SERVER, &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    kettle::run_in_executor(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    })
    .await
    .unwrap();
    // on_startup runs just before the site listens: wait for the port.
    let mut tries = 0;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tries += 1;
        assert!(tries < 100, "aiohttp never listened on {port}");
        kettle::sleep(Duration::from_millis(50)).await;
    }

    let session = ClientSession::new();
    let ws = session
        .ws_connect(&format!("ws://127.0.0.1:{port}/ws"))
        .protocols(&["chat"])
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("chat"));
    assert!(ws.compressed());
    ws.send_str("agreed").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "chat True");
    let big = "the kettle whistles ".repeat(30_000);
    for text in ["hello", "é", big.as_str(), "hello again"] {
        ws.send_str(text).await.unwrap();
        assert_eq!(ws.receive_str().await.unwrap(), text);
    }
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    ws.send_bytes(&data).await.unwrap();
    assert_eq!(ws.receive_bytes().await.unwrap(), data);
    ws.ping("still there?").await.unwrap();
    ws.close(1000, "bye").await.unwrap();
    assert_eq!(ws.close_code(), Some(1000));
    session.close().await;
}
