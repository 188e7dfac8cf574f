//! Kettle's WebSocket client against Kettle's WebSocket server over real sockets: echo of
//! every message kind and size, fragments, subprotocols, compression, the close handshake
//! from either end, broadcast from other tasks, graceful shutdown (1001), the heartbeat,
//! timeouts, and what the client does with a misbehaving server.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use kettle::client::ClientSession;
use kettle::tls::TlsConnector;
use kettle::web::{
    self, AppRunner, Application, Request, Response, ServerOptions, WebSocketResponse,
};
use kettle::ws::{close_code, CloseFrame, Message};
use kettle::ErrorKind;
use tls_support::Pki;

mod tls_support;

/// Echoes text and binary; "close" makes the server close with 4000; "json" answers JSON.
async fn echo(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ws = WebSocketResponse::new()
        .protocols(&["chat", "v2"])
        .max_msg_size(1 << 20);
    ws.prepare(&req).await?;
    loop {
        match ws.receive().await {
            Ok(Message::Text(t)) if t == "close" => {
                ws.close(4000, "asked to").await?;
                break;
            }
            Ok(Message::Text(t)) if t == "protocol" => {
                ws.send_str(ws.protocol().unwrap_or("none")).await?
            }
            Ok(Message::Text(t)) if t == "compressed" => {
                ws.send_str(&ws.compressed().to_string()).await?
            }
            Ok(Message::Text(t)) => ws.send_str(&t).await?,
            Ok(Message::Binary(b)) => ws.send_bytes(b).await?,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(ws)
}

/// Open sockets, for the broadcast test.
#[derive(Default)]
struct Room(RefCell<Vec<WebSocketResponse>>);

async fn join(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ws = WebSocketResponse::new();
    ws.prepare(&req).await?;
    let room = req.state::<Room>().expect("room state");
    room.0.borrow_mut().push(ws.clone());
    while let Ok(Message::Text(t)) = ws.receive().await {
        // Sending from this task to every other socket: frames from different tasks must
        // not interleave.
        let peers: Vec<WebSocketResponse> = room.0.borrow().clone();
        for peer in peers {
            let _ = peer.send_str(&t).await;
        }
    }
    room.0.borrow_mut().retain(|p| !p.closed());
    Ok(ws)
}

/// Never receives: the heartbeat and shutdown tests' clients talk to it.
async fn heartbeat(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ws = WebSocketResponse::new().heartbeat(Duration::from_millis(200));
    ws.prepare(&req).await?;
    let err = ws.receive().await.unwrap_err();
    ws.send_str("unreachable").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    Ok(ws)
}

/// Only sends: a ticker that never receives, to check that shutdown still reaches it.
async fn ticker(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ws = WebSocketResponse::new();
    ws.prepare(&req).await?;
    while ws.send_str("tick").await.is_ok() {
        kettle::sleep(Duration::from_millis(20)).await;
    }
    Ok(ws)
}

/// Echo with no size limit at all.
async fn unlimited(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ws = WebSocketResponse::new().max_msg_size(0);
    ws.prepare(&req).await?;
    while let Ok(Message::Text(t)) = ws.receive().await {
        ws.send_str(&t).await?;
    }
    Ok(ws)
}

/// Streams back as much as it receives, from a second task, pinging all the while: the
/// bidirectional bulk transfer of `both_ends_streaming_and_pinging_do_not_stall`.
async fn stream(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ws = WebSocketResponse::new().send_timeout(Duration::from_secs(3));
    ws.prepare(&req).await?;
    let sender = ws.clone();
    let sending = kettle::spawn(async move {
        let chunk = vec![7u8; 256 * 1024];
        for _ in 0..STREAMED {
            sender.send_bytes(&chunk).await?;
        }
        Ok::<(), kettle::Error>(())
    });
    let pinger = ws.clone();
    let pinging = kettle::spawn(async move {
        while pinger.ping("p").await.is_ok() {
            kettle::sleep(Duration::from_millis(1)).await;
        }
    });
    let mut got = 0;
    while got < STREAMED {
        match ws.receive().await? {
            Message::Binary(b) => {
                assert_eq!(b.len(), 256 * 1024);
                got += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    sending.await.unwrap()?;
    ws.send_str("done").await?;
    let _ = ws.receive().await;
    pinging.cancel();
    Ok(ws)
}

/// Messages each way in `stream`.
const STREAMED: usize = 200;

fn app() -> Application {
    let mut app = Application::new();
    app.set_state(Room::default());
    app.router()
        .add_get("/echo", echo)
        .add_get("/room", join)
        .add_get("/heartbeat", heartbeat)
        .add_get("/ticker", ticker)
        .add_get("/unlimited", unlimited)
        .add_get("/stream", stream)
        .add_get("/plain", |_req: Request| async {
            Response::text("no socket here")
        });
    app
}

async fn server() -> (AppRunner, String) {
    let runner = AppRunner::start(app(), "127.0.0.1", 0).await.unwrap();
    let url = format!("ws://{}", runner.addrs()[0]);
    (runner, url)
}

#[kettle::test]
async fn echo_every_kind_and_size() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session.ws_connect(&format!("{url}/echo")).await.unwrap();
    for len in [0, 1, 125, 126, 65535, 65536, 300_000] {
        let text = "é".repeat(len / 2);
        ws.send_str(&text).await.unwrap();
        assert_eq!(
            ws.receive().await.unwrap(),
            Message::Text(text),
            "text {len}"
        );
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        ws.send_bytes(&data).await.unwrap();
        assert_eq!(ws.receive_bytes().await.unwrap(), data, "binary {len}");
    }
    ws.send_json(&serde_json::json!({"n": 1})).await.unwrap();
    let v: serde_json::Value = ws.receive_json().await.unwrap();
    assert_eq!(v["n"], 1);
    ws.close(1000, "done").await.unwrap();
    assert!(ws.closed());
    assert_eq!(ws.close_code(), Some(1000));
    let err = ws.send_str("late").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn subprotocols_and_compression_are_negotiated() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session
        .ws_connect(&format!("{url}/echo"))
        .protocols(&["v3", "v2", "chat"])
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("v2"));
    assert!(ws.compressed());
    ws.send_str("protocol").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "v2");
    ws.send_str("compressed").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "true");
    // Compressed both ways, with the window kept across messages.
    for _ in 0..3 {
        let big = "kettle ".repeat(50_000);
        ws.send_str(&big).await.unwrap();
        assert_eq!(ws.receive_str().await.unwrap(), big);
    }
    ws.close(1000, "").await.unwrap();

    let plain = session
        .ws_connect(&format!("{url}/echo"))
        .protocols(&["nope"])
        .compress(false)
        .await
        .unwrap();
    assert_eq!(plain.protocol(), None);
    assert!(!plain.compressed());
    plain.send_str("compressed").await.unwrap();
    assert_eq!(plain.receive_str().await.unwrap(), "false");
    plain.close(1000, "").await.unwrap();
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn the_server_closes_and_the_client_sees_its_frame() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session.ws_connect(&format!("{url}/echo")).await.unwrap();
    ws.send_str("close").await.unwrap();
    assert_eq!(
        ws.receive().await.unwrap(),
        Message::Close(Some(CloseFrame {
            code: 4000,
            reason: "asked to".into()
        }))
    );
    assert!(ws.closed());
    assert_eq!(ws.close_code(), Some(4000));
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn the_stream_ends_at_the_close() {
    use std::future::poll_fn;
    use std::pin::Pin;

    let (server, url) = server().await;
    let session = ClientSession::new();
    let mut ws = session.ws_connect(&format!("{url}/echo")).await.unwrap();
    for word in ["a", "b", "close"] {
        ws.send_str(word).await.unwrap();
    }
    let mut got = Vec::new();
    while let Some(msg) = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut ws), cx)).await
    {
        got.push(msg.unwrap());
    }
    assert_eq!(got, [Message::Text("a".into()), Message::Text("b".into())]);
    assert_eq!(ws.close_code(), Some(4000));
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn broadcasts_from_other_tasks_do_not_interleave() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(session.ws_connect(&format!("{url}/room")).await.unwrap());
    }
    // Every handler has joined once its client's first message is echoed to everyone.
    kettle::sleep(Duration::from_millis(100)).await;
    // Five senders at once, 20 large messages each: every client must get all 100, whole.
    let mut senders = Vec::new();
    for (i, ws) in clients.iter().enumerate() {
        let ws = ws.clone();
        senders.push(kettle::spawn(async move {
            for j in 0..20 {
                let msg = format!("{i}:{j}:{}", "x".repeat(10_000 + j));
                ws.send_str(&msg).await.unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    for ws in &clients {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let t = ws.receive_str().await.unwrap();
            let mut parts = t.splitn(3, ':');
            let (i, j) = (parts.next().unwrap(), parts.next().unwrap());
            let j: usize = j.parse().unwrap();
            assert_eq!(parts.next().unwrap().len(), 10_000 + j);
            seen.push(format!("{i}:{j}"));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);
    }
    for ws in &clients {
        ws.close(1000, "").await.unwrap();
    }
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn graceful_shutdown_closes_with_1001() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session.ws_connect(&format!("{url}/echo")).await.unwrap();
    ws.send_str("hi").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "hi");
    let client = kettle::spawn(async move { (ws.receive().await, ws.close_code()) });
    let started = Instant::now();
    server.shutdown().await;
    let (msg, code) = client.await.unwrap();
    assert_eq!(
        msg.unwrap(),
        Message::Close(Some(CloseFrame {
            code: close_code::GOING_AWAY,
            reason: "server shutting down".into()
        }))
    );
    assert_eq!(code, Some(1001));
    // The handshake completed: no waiting out the close timeout.
    assert!(started.elapsed() < Duration::from_secs(5));
    session.close().await;
}

#[kettle::test]
async fn graceful_shutdown_reaches_a_handler_that_only_sends() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session.ws_connect(&format!("{url}/ticker")).await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "tick");
    let reader = kettle::spawn(async move {
        loop {
            match ws.receive().await {
                Ok(Message::Text(_)) => continue,
                other => return other,
            }
        }
    });
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    match reader.await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, close_code::GOING_AWAY),
        other => panic!("expected the 1001 close, got {other:?}"),
    }
    session.close().await;
}

#[kettle::test]
async fn an_absurd_length_without_a_limit_grows_memory_only_with_the_bytes() {
    let (server, url) = server().await;
    let addr = server.addrs()[0];
    let raw = kettle::run_in_executor(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.write_all(
            b"GET /unlimited HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            sock.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
        // A masked binary frame declaring 2^62 bytes, then a little of it.
        let mut frame = vec![0x82, 0xFF];
        frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.extend_from_slice(&[0u8; 1000]);
        sock.write_all(&frame).unwrap();
        sock
    })
    .await
    .unwrap();
    // The server neither panicked nor reserved the declared size: it still serves others.
    let session = ClientSession::new();
    let ws = session
        .ws_connect(&format!("{url}/unlimited"))
        .await
        .unwrap();
    ws.send_str("fine").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "fine");
    ws.close(1000, "").await.unwrap();
    // And the huge frame's connection is still open, waiting for the rest (a handler that
    // had tried to reserve 2^62 bytes would have panicked and the connection closed).
    let still_open = kettle::run_in_executor(move || {
        let mut raw = raw;
        raw.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut buf = [0u8; 16];
        matches!(raw.read(&mut buf), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
    })
    .await
    .unwrap();
    assert!(still_open);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn a_ping_flood_does_not_hold_the_loop() {
    let (server, _url) = server().await;
    let addr = server.addrs()[0];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood_stop = stop.clone();
    // A client thread that writes masked pings as fast as it can while another thread
    // reads and drops the pongs, so the server never has to wait on either side.
    let flood = std::thread::spawn(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.write_all(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .unwrap();
        let mut reader = sock.try_clone().unwrap();
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        });
        // Pings, then text messages the echo handler answers: both must yield.
        let mut pings: Vec<u8> = [0x89u8, 0x80, 1, 2, 3, 4].repeat(5_000);
        pings.extend([0x81u8, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2].repeat(5_000));
        while !flood_stop.load(std::sync::atomic::Ordering::Relaxed) {
            if sock.write_all(&pings).is_err() {
                break;
            }
        }
        let _ = sock.shutdown(std::net::Shutdown::Both);
        drain.join().unwrap();
    });
    // Meanwhile a task on the server's loop ticks every millisecond.
    kettle::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let mut ticks = 0;
    while started.elapsed() < Duration::from_millis(500) {
        kettle::sleep(Duration::from_millis(1)).await;
        ticks += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    kettle::run_in_executor(move || flood.join().unwrap())
        .await
        .unwrap();
    // Unstarved, ~400 ticks; starved, the 500 ms pass in a handful.
    assert!(ticks >= 20, "only {ticks} ticks in 500 ms during the flood");
    server.shutdown().await;
}

#[kettle::test]
async fn both_ends_streaming_and_pinging_do_not_stall() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session
        .ws_connect(&format!("{url}/stream"))
        .send_timeout(Duration::from_secs(3))
        .await
        .unwrap();
    let sender = ws.clone();
    let sending = kettle::spawn(async move {
        let chunk = vec![9u8; 256 * 1024];
        for _ in 0..STREAMED {
            sender.send_bytes(&chunk).await?;
        }
        Ok::<(), kettle::Error>(())
    });
    let pinger = ws.clone();
    let pinging = kettle::spawn(async move {
        while pinger.ping("q").await.is_ok() {
            kettle::sleep(Duration::from_millis(1)).await;
        }
    });
    let started = Instant::now();
    let mut got = 0;
    while got < STREAMED {
        match ws.receive().await.unwrap() {
            Message::Binary(b) => {
                assert_eq!(b.len(), 256 * 1024);
                got += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    sending.await.unwrap().unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "done");
    pinging.cancel();
    ws.close(1000, "").await.unwrap();
    // 50 MiB each way over loopback; a stall would end in the 3 s send timeout instead.
    assert!(started.elapsed() < Duration::from_secs(20));
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn heartbeat_drops_a_client_that_never_pongs() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    // With autoping off and nobody receiving, the client never answers the server's pings.
    let ws = session
        .ws_connect(&format!("{url}/heartbeat"))
        .autoping(false)
        .await
        .unwrap();
    let started = Instant::now();
    // The server pings after 200 ms, gives up 100 ms later and drops the connection.
    let msg = ws.receive().await.unwrap();
    assert_eq!(msg, Message::Ping(bytes::Bytes::new()));
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket);
    assert_eq!(err.close_code(), Some(close_code::ABNORMAL));
    assert!(started.elapsed() < Duration::from_secs(5));
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn heartbeat_keeps_an_answering_client() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session.ws_connect(&format!("{url}/echo")).await.unwrap();
    // The client pings; its heartbeat also runs while it waits in receive.
    ws.ping("are you there").await.unwrap();
    ws.send_str("yes").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "yes");
    ws.close(1000, "").await.unwrap();

    let beating = session
        .ws_connect(&format!("{url}/echo"))
        .heartbeat(Duration::from_millis(50))
        .receive_timeout(Duration::from_millis(400))
        .await
        .unwrap();
    // Nothing to receive for 400 ms: several heartbeat pings go out and are answered, and
    // the receive times out without the connection being dropped.
    let err = beating.receive().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(!beating.closed());
    beating.send_str("still here").await.unwrap();
    assert_eq!(beating.receive_str().await.unwrap(), "still here");
    beating.close(1000, "").await.unwrap();
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn refused_handshakes_are_websocket_errors() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let err = session
        .ws_connect(&format!("{url}/plain"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket);
    assert!(err.to_string().contains("200"), "{err}");
    let err = session
        .ws_connect(&format!("{url}/missing"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket);
    assert!(err.to_string().contains("404"), "{err}");
    let strict = ClientSession::builder()
        .raise_for_status(true)
        .build()
        .unwrap();
    let err = strict
        .ws_connect(&format!("{url}/missing"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket, "{err}");
    strict.close().await;
    let err = session.ws_connect("ftp://127.0.0.1/").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    // A plain HTTP GET to a WebSocket route is a 400 from the server.
    let http = format!("{}/echo", url.replace("ws://", "http://"));
    let resp = session.get(&http).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    session.close().await;
    server.shutdown().await;
}

/// A scripted server on a std socket: answers the handshake, then writes `frames`.
fn scripted(
    frames: Vec<u8>,
    answer_extra: &'static str,
) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    scripted_then(frames, answer_extra, false)
}

/// `scripted`, optionally hanging up right after the frames instead of reading on.
fn scripted_then(
    frames: Vec<u8>,
    answer_extra: &'static str,
    hang_up: bool,
) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            sock.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_string())
            })
            .expect("the handshake has a key");
        let accept = accept_for(&key);
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{answer_extra}\r\n"
        );
        sock.write_all(answer.as_bytes()).unwrap();
        sock.write_all(&frames).unwrap();
        if hang_up {
            return Vec::new();
        }
        // Whatever the client sends back (its close frame), until it closes.
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest);
        rest
    });
    (url, handle)
}

/// Sec-WebSocket-Accept computed independently of Kettle (SHA-1 through `sha1sum`-free
/// code: the test's own implementation).
fn accept_for(key: &str) -> String {
    let mut data = key.as_bytes().to_vec();
    data.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&data))
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[i * 4..i * 4 + 4].try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The close frame a client sends: masked, so unmask it to read the code.
fn client_close_code(sent: &[u8]) -> Option<u16> {
    let i = sent.iter().position(|&b| b == 0x88)?;
    let len = usize::from(sent[i + 1] & 0x7F);
    assert!(sent[i + 1] & 0x80 != 0, "client frames are masked");
    if len < 2 {
        return None;
    }
    let key = &sent[i + 2..i + 6];
    let code = [sent[i + 6] ^ key[0], sent[i + 7] ^ key[1]];
    Some(u16::from_be_bytes(code))
}

#[kettle::test]
async fn the_client_reads_unmasked_frames_and_refuses_masked_ones() {
    let session = ClientSession::new();
    // "Hello" unmasked (RFC 6455 §5.7), then a fragmented "Hel" + "lo", then a close 1000.
    let mut frames = vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
    frames.extend_from_slice(&[0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02, b'l', b'o']);
    frames.extend_from_slice(&[0x88, 0x02, 0x03, 0xE8]);
    let (url, peer) = scripted(frames, "");
    let ws = session.ws_connect(&url).compress(false).await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "Hello");
    assert_eq!(ws.receive_str().await.unwrap(), "Hello");
    assert_eq!(
        ws.receive().await.unwrap(),
        Message::Close(Some(CloseFrame {
            code: 1000,
            reason: String::new()
        }))
    );
    let sent = kettle::run_in_executor(move || peer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(client_close_code(&sent), Some(1000), "the close is echoed");

    // A masked frame from a server: the client closes with 1002.
    let (url, peer) = scripted(vec![0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0], "");
    let ws = session.ws_connect(&url).compress(false).await.unwrap();
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.close_code(), Some(close_code::PROTOCOL_ERROR));
    let sent = kettle::run_in_executor(move || peer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(client_close_code(&sent), Some(1002));

    // Invalid UTF-8 in text: 1007.
    let (url, peer) = scripted(vec![0x81, 0x02, 0xC3, 0x28], "");
    let ws = session.ws_connect(&url).compress(false).await.unwrap();
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.close_code(), Some(close_code::INVALID_PAYLOAD));
    let sent = kettle::run_in_executor(move || peer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(client_close_code(&sent), Some(1007));

    // A message over max_msg_size, refused from its head: 1009.
    let (url, peer) = scripted(vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x10, 0, 0], "");
    let ws = session
        .ws_connect(&url)
        .compress(false)
        .max_msg_size(1024)
        .await
        .unwrap();
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.close_code(), Some(close_code::MESSAGE_TOO_BIG));
    let sent = kettle::run_in_executor(move || peer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(client_close_code(&sent), Some(1009));

    // A server that vanishes without a close: 1006.
    let (url, peer) = scripted_then(vec![0x81, 0x02, b'h', b'i'], "", true);
    let ws = session.ws_connect(&url).compress(false).await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "hi");
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket);
    assert_eq!(err.close_code(), Some(close_code::ABNORMAL));
    assert!(ws.closed());
    peer.join().unwrap();
    session.close().await;
}

#[kettle::test]
async fn handshake_answers_the_client_must_refuse() {
    let session = ClientSession::new();
    // A wrong accept key.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf);
        sock.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n").unwrap();
    });
    let err = session.ws_connect(&url).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebSocket);
    assert!(err.to_string().contains("Sec-WebSocket-Accept"), "{err}");
    t.join().unwrap();

    // A protocol that was not offered.
    let (url, _peer) = scripted(Vec::new(), "Sec-WebSocket-Protocol: evil\r\n");
    let err = session
        .ws_connect(&url)
        .protocols(&["chat"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not offered"), "{err}");
    // An extension that was not offered.
    let (url, _peer) = scripted(Vec::new(), "Sec-WebSocket-Extensions: x-custom\r\n");
    let err = session.ws_connect(&url).await.unwrap_err();
    assert!(err.to_string().contains("not offered"), "{err}");
    session.close().await;
}

#[kettle::test]
async fn concurrent_receives_are_refused() {
    let (server, url) = server().await;
    let session = ClientSession::new();
    let ws = session.ws_connect(&format!("{url}/echo")).await.unwrap();
    let first = ws.clone();
    let pending = kettle::spawn(async move { first.receive().await });
    kettle::sleep(Duration::from_millis(20)).await;
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    ws.send_str("for the first").await.unwrap();
    assert_eq!(
        pending.await.unwrap().unwrap(),
        Message::Text("for the first".into())
    );
    // A close while another task receives: that task sees the server's answer.
    let first = ws.clone();
    let pending = kettle::spawn(async move { first.receive().await });
    kettle::sleep(Duration::from_millis(20)).await;
    ws.close(1000, "bye").await.unwrap();
    assert!(pending.await.unwrap().unwrap().is_close());
    assert!(ws.closed());
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn wss_over_kettle_tls() {
    let pki = Pki::new();
    let server = AppRunner::start_with(
        app(),
        "127.0.0.1",
        0,
        ServerOptions::default().tls(pki.acceptor()),
    )
    .await
    .unwrap();
    let port = server.addrs()[0].port();
    let tls = TlsConnector::builder()
        .webpki_roots(false)
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let session = ClientSession::builder().tls(tls).build().unwrap();
    let ws = session
        .ws_connect(&format!("wss://localhost:{port}/echo"))
        .await
        .unwrap();
    for i in 0..10 {
        let msg = format!("secret {i} {}", "z".repeat(i * 1000));
        ws.send_str(&msg).await.unwrap();
        assert_eq!(ws.receive_str().await.unwrap(), msg);
    }
    ws.close(1000, "").await.unwrap();
    assert_eq!(ws.close_code(), Some(1000));
    session.close().await;
    server.shutdown().await;
}
