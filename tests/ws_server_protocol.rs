//! Kettle's WebSocket server (`kettle::web::WebSocketResponse`) against RFC 6455, on the wire:
//! a blocking std client written here sends exact bytes (handshakes, frames masked with keys
//! it chooses, deliberate violations) and checks exactly what comes back: the 101 and its
//! `Sec-WebSocket-Accept`, the refusals, unmasked server frames with the right opcode and the
//! minimal length encoding, fragmentation, ping/pong, both close handshakes, the close code
//! for every violation (1002, 1007, 1009) followed by the end of the TCP connection, and the
//! server-side timers (close timeout, send timeout, heartbeat) and graceful shutdown (1001).
//!
//! Every test runs its own server on its own thread and loop (port 0), so tests share nothing.
//! Handlers report what they saw (the close frame, the error, the close code) on a channel the
//! test reads.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kettle::sync::oneshot;
use kettle::web::{self, AppRunner, Application, Request, ServerOptions, WebSocketResponse};
use kettle::ws::Message;

/// How long any single read may block before the test fails (never reached when all is well).
const READ_LIMIT: Duration = Duration::from_secs(10);
/// "At once", or "within the configured timeout plus a margin", generously for a loaded machine.
const PROMPT: Duration = Duration::from_secs(5);
/// RFC 6455 §1.3's example key and the accept value it must produce.
const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

// --- the server --------------------------------------------------------------------------

/// A server on 127.0.0.1 (free port), on its own thread and loop until dropped.
struct Server {
    addr: SocketAddr,
    /// What the handlers reported, in order.
    events: mpsc::Receiver<String>,
    /// Fired to begin the graceful shutdown (`AppRunner::shutdown`).
    stop: Option<oneshot::Sender<()>>,
    /// Receives once `AppRunner::shutdown` has returned.
    stopped: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (events_tx, events) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            kettle::run(async move {
                // A short grace period, so a test with a stuck handler does not hang in Drop.
                let opts = ServerOptions::default().shutdown_timeout(Duration::from_secs(2));
                let runner = AppRunner::start_with(app(events_tx), "127.0.0.1", 0, opts)
                    .await
                    .expect("start the server");
                addr_tx.send(runner.addrs()[0]).unwrap();
                let _ = stop_rx.await;
                runner.shutdown().await;
                let _ = stopped_tx.send(());
            });
        });
        let addr = addr_rx.recv().expect("the server thread started");
        Server {
            addr,
            events,
            stop: Some(stop_tx),
            stopped,
            thread: Some(thread),
        }
    }

    /// A connection with the handshake done on `path` (101 checked).
    fn open(&self, path: &str) -> Client {
        let mut c = Client::connect(self.addr);
        c.send(Handshake::get(path).to_string().as_bytes());
        let r = c.response();
        assert_eq!(r.status, 101, "handshake on {path}: {}", r.raw_head);
        c
    }

    /// The next event starting with `prefix` within `limit` (others are skipped).
    fn event(&self, prefix: &str, limit: Duration) -> Option<String> {
        let t0 = Instant::now();
        loop {
            let left = limit.checked_sub(t0.elapsed())?;
            match self.events.recv_timeout(left) {
                Ok(e) if e.starts_with(prefix) => return Some(e),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// An event starting with `prefix` already reported (others are skipped).
    fn pending(&self, prefix: &str) -> Option<String> {
        self.events.try_iter().find(|e| e.starts_with(prefix))
    }

    /// [`event`](Self::event), which must come.
    fn expect_event(&self, prefix: &str) -> String {
        self.event(prefix, PROMPT)
            .unwrap_or_else(|| panic!("no handler event starting {prefix:?} within {PROMPT:?}"))
    }

    fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the shutdown begun with `begin_shutdown` returned within `limit`.
    fn wait_shutdown(&mut self, limit: Duration) -> bool {
        let done = self.stopped.recv_timeout(limit).is_ok();
        if done {
            if let Some(t) = self.thread.take() {
                t.join().expect("server thread");
            }
        }
        done
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.begin_shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The handlers' way back to the test.
struct Events(mpsc::Sender<String>);

fn events(req: &Request) -> Rc<Events> {
    req.state::<Events>().expect("events state")
}

impl Events {
    fn report(&self, e: impl Into<String>) {
        let _ = self.0.send(e.into());
    }
}

/// The application every test talks to. Routes (any method, so the handshake itself has to
/// refuse a POST):
///
/// - `/echo`: echoes text and binary; supports the subprotocol `chat`; reports `open`,
///   `close <frame>`, `error <kind> <code>` and `done <close_code>`;
/// - `/small`: `/echo` with `max_msg_size(1024)` and `close_timeout(500 ms)`;
/// - `/nolimit`: `/echo` with `max_msg_size(0)` and `close_timeout(500 ms)`;
/// - `/quick`: `/echo` with `close_timeout(500 ms)`, for clients that cannot answer a close;
/// - `/origin`: reports `origin <Origin header>`, then echoes;
/// - `/close-done`: `ws.close(1000, "done")`, reports `close returned <result>`;
/// - `/close-timeout`: the same with `close_timeout(300 ms)`;
/// - `/flood`: sends 1 MiB messages with `send_timeout(500 ms)` until one fails (at most 64);
/// - `/heartbeat`: `/echo` with `heartbeat(200 ms)`;
/// - `/return`: returns right after the handshake, without closing;
/// - `/ticker`: sends `tick` every 50 ms and never receives, until a send fails;
/// - `/idle`: neither sends nor receives (waits an hour).
fn app(events_tx: mpsc::Sender<String>) -> Application {
    let mut app = Application::new();
    app.set_state(Events(events_tx));
    app.router()
        .add_route("*", "/echo", |r: Request| async move {
            echo(r, WebSocketResponse::new().protocols(&["chat"])).await
        })
        .add_route("*", "/small", |r: Request| async move {
            let ws = WebSocketResponse::new()
                .max_msg_size(1024)
                .close_timeout(Duration::from_millis(500));
            echo(r, ws).await
        })
        .add_route("*", "/nolimit", |r: Request| async move {
            let ws = WebSocketResponse::new()
                .max_msg_size(0)
                .close_timeout(Duration::from_millis(500));
            echo(r, ws).await
        })
        .add_route("*", "/quick", |r: Request| async move {
            echo(
                r,
                WebSocketResponse::new().close_timeout(Duration::from_millis(500)),
            )
            .await
        })
        .add_route("*", "/origin", |r: Request| async move {
            let origin = r.headers().get("origin").map(|v| v.to_str().unwrap_or("?"));
            events(&r).report(format!("origin {origin:?}"));
            echo(r, WebSocketResponse::new()).await
        })
        .add_route("*", "/close-done", |r: Request| async move {
            close_done(r, WebSocketResponse::new()).await
        })
        .add_route("*", "/close-timeout", |r: Request| async move {
            let ws = WebSocketResponse::new().close_timeout(Duration::from_millis(300));
            close_done(r, ws).await
        })
        .add_route("*", "/flood", flood)
        .add_route("*", "/heartbeat", |r: Request| async move {
            echo(
                r,
                WebSocketResponse::new().heartbeat(Duration::from_millis(200)),
            )
            .await
        })
        .add_route("*", "/return", |r: Request| async move {
            let ws = WebSocketResponse::new();
            ws.prepare(&r).await?;
            Ok::<_, web::Error>(ws)
        })
        .add_route("*", "/ticker", |r: Request| async move {
            let ev = events(&r);
            let ws = WebSocketResponse::new();
            ws.prepare(&r).await?;
            ev.report("open");
            loop {
                if let Err(e) = ws.send_str("tick").await {
                    ev.report(format!("send error {:?} {:?}", e.kind(), e.close_code()));
                    return Ok::<_, web::Error>(ws);
                }
                kettle::sleep(Duration::from_millis(50)).await;
            }
        })
        .add_route("*", "/idle", |r: Request| async move {
            let ws = WebSocketResponse::new();
            ws.prepare(&r).await?;
            events(&r).report("open");
            kettle::sleep(Duration::from_secs(3600)).await;
            Ok::<_, web::Error>(ws)
        });
    app
}

/// Echoes text and binary until the connection ends, reporting what it saw.
async fn echo(req: Request, ws: WebSocketResponse) -> Result<WebSocketResponse, web::Error> {
    let ev = events(&req);
    ws.prepare(&req).await?;
    ev.report(format!("open protocol={:?}", ws.protocol()));
    loop {
        let sent = match ws.receive().await {
            Ok(Message::Text(t)) => ws.send_str(&t).await,
            Ok(Message::Binary(b)) => ws.send_bytes(b).await,
            Ok(Message::Close(frame)) => {
                let frame = frame.map(|f| (f.code, f.reason));
                ev.report(format!("close {frame:?}"));
                break;
            }
            Ok(_) => {
                ev.report("ping or pong delivered with autoping on");
                Ok(())
            }
            Err(e) => {
                ev.report(format!("error {:?} {:?}", e.kind(), e.close_code()));
                break;
            }
        };
        if let Err(e) = sent {
            ev.report(format!("send error {:?} {:?}", e.kind(), e.close_code()));
            break;
        }
    }
    ev.report(format!("done {:?}", ws.close_code()));
    Ok(ws)
}

/// Closes from the server's side with 1000 "done" at once.
async fn close_done(req: Request, ws: WebSocketResponse) -> Result<WebSocketResponse, web::Error> {
    let ev = events(&req);
    ws.prepare(&req).await?;
    ev.report("open");
    let r = ws.close(1000, "done").await;
    let r = r.map_err(|e| format!("{:?} {:?}", e.kind(), e.close_code()));
    ev.report(format!("close returned {r:?}"));
    Ok(ws)
}

/// Sends 1 MiB messages to a client that does not read, until a send fails.
async fn flood(req: Request) -> Result<WebSocketResponse, web::Error> {
    let ev = events(&req);
    let ws = WebSocketResponse::new().send_timeout(Duration::from_millis(500));
    ws.prepare(&req).await?;
    ev.report("open");
    let chunk = Bytes::from(vec![0x5a; 1 << 20]);
    let t0 = Instant::now();
    for i in 0..64 {
        if let Err(e) = ws.send_bytes(chunk.clone()).await {
            ev.report(format!(
                "flood failed after {i} MiB: {:?} {:?} after {:?}",
                e.kind(),
                e.close_code(),
                t0.elapsed()
            ));
            return Ok(ws);
        }
    }
    ev.report("flood sent 64 MiB to a peer that reads nothing");
    Ok(ws)
}

// --- the client ------------------------------------------------------------------------------

/// A handshake request, valid unless changed.
struct Handshake {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
}

impl Handshake {
    fn get(path: &str) -> Handshake {
        Handshake {
            method: "GET",
            path: path.to_string(),
            headers: [
                ("Host", "127.0.0.1"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", RFC_KEY),
                ("Sec-WebSocket-Version", "13"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    fn method(mut self, method: &'static str) -> Handshake {
        self.method = method;
        self
    }

    /// Replaces `name` (or adds it).
    fn set(self, name: &str, value: &str) -> Handshake {
        let mut h = self.remove(name);
        h.headers.push((name.to_string(), value.to_string()));
        h
    }

    fn remove(mut self, name: &str) -> Handshake {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }
}

impl std::fmt::Display for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} HTTP/1.1\r\n", self.method, self.path)?;
        for (k, v) in &self.headers {
            write!(f, "{k}: {v}\r\n")?;
        }
        if self.method != "GET" {
            f.write_str("Content-Length: 0\r\n")?;
        }
        f.write_str("\r\n")
    }
}

/// A client frame: FIN, RSV bits (already shifted: 0x40, 0x20, 0x10), opcode, payload, masked
/// with `mask` (`None`: unmasked, a violation), length in the minimal encoding.
fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | rsv | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len <= 125 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A close payload: the code, big-endian, then the reason.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame as it came off the wire.
#[derive(Debug)]
struct Frame {
    /// The header exactly as received (first byte, length byte, extended length).
    head: Vec<u8>,
    payload: Vec<u8>,
}

impl Frame {
    fn fin(&self) -> bool {
        self.head[0] & 0x80 != 0
    }

    fn opcode(&self) -> u8 {
        self.head[0] & 0x0f
    }

    /// The whole frame, for exact comparisons.
    fn bytes(&self) -> Vec<u8> {
        let mut b = self.head.clone();
        b.extend_from_slice(&self.payload);
        b
    }

    /// The code of a close frame with one.
    fn close_code(&self) -> Option<u16> {
        (self.opcode() == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The frame, abridged for messages.
    fn show(&self) -> String {
        let b = self.bytes();
        if b.len() <= 64 {
            format!("{b:02x?}")
        } else {
            format!("{} bytes starting {:02x?}", b.len(), &b[..32])
        }
    }
}

/// An HTTP response head (and body, if framed) as it came off the wire.
struct HttpResponse {
    status: u16,
    /// The head exactly as received, status line to the blank line.
    raw_head: String,
    /// In order, names lowercased, values trimmed.
    headers: Vec<(String, String)>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking client connection with its unread bytes.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Varies the mask key from frame to frame, so every frame is really masked.
    masks: u32,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
        stream.set_write_timeout(Some(READ_LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
            masks: 0,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// A mask key, different each time (RFC 6455 §1.3's example key first).
    fn mask(&mut self) -> [u8; 4] {
        let key = (0x37fa_213d_u32 ^ self.masks.wrapping_mul(0x9e37_79b9)).to_be_bytes();
        self.masks += 1;
        key
    }

    /// One masked frame.
    fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mask = self.mask();
        self.send(&frame(fin, 0, opcode, payload, Some(mask)));
    }

    fn send_close(&mut self, code: u16, reason: &str) {
        self.send_frame(true, OP_CLOSE, &close_payload(code, reason.as_bytes()));
    }

    /// Reads more; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads until at least `n` bytes are buffered.
    fn need(&mut self, n: usize, what: &str) {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!("EOF while reading {what}; have {:02x?}", self.abridged()),
                Ok(_) => {}
                Err(e) => panic!("{e} while reading {what}; have {:02x?}", self.abridged()),
            }
        }
    }

    fn abridged(&self) -> &[u8] {
        &self.buf[..self.buf.len().min(64)]
    }

    /// An HTTP response; a body only when it has a Content-Length (refusals do).
    fn response(&mut self) -> HttpResponse {
        let head_len = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.need(self.buf.len() + 1, "a response head");
        };
        let raw_head = String::from_utf8(self.buf.drain(..head_len).collect()).expect("ASCII");
        let mut lines = raw_head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let status = status_line[9..12].parse().expect("a status code");
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(':').expect("a header line has a colon");
                (k.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let r = HttpResponse {
            status,
            raw_head: raw_head.clone(),
            headers,
        };
        if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().expect("a numeric Content-Length");
            self.need(len, "a response body");
            self.buf.drain(..len);
        }
        r
    }

    /// The next frame; a server frame must never be masked (RFC 6455 §5.1).
    fn frame(&mut self) -> Frame {
        self.need(2, "a frame head");
        let b1 = self.buf[1];
        assert_eq!(
            b1 & 0x80,
            0,
            "the server masked a frame: {:02x?}",
            self.abridged()
        );
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        self.need(2 + ext, "an extended length");
        let len = match ext {
            0 => (b1 & 0x7f) as usize,
            2 => u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize,
            _ => u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
        };
        self.need(2 + ext + len, "a frame payload");
        let head = self.buf.drain(..2 + ext).collect();
        let payload = self.buf.drain(..len).collect();
        Frame { head, payload }
    }

    /// Asserts the server closes the TCP connection within `limit` with nothing more sent (a
    /// reset counts as a close).
    fn expect_eof(&mut self, limit: Duration) {
        let t0 = Instant::now();
        self.stream.set_read_timeout(Some(limit)).unwrap();
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) if t0.elapsed() <= limit => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                r => panic!(
                    "the connection is still open after {:?} ({r:?}); unread {:02x?}",
                    t0.elapsed(),
                    self.abridged()
                ),
            }
        }
        assert!(
            self.buf.is_empty(),
            "more after the close: {:02x?}",
            self.abridged()
        );
        assert!(t0.elapsed() <= limit, "closed after {:?}", t0.elapsed());
        self.stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
    }

    /// Expects the server to fail the connection: a close frame with `code` (a valid UTF-8
    /// reason of at most 123 bytes), then, once this client has answered with its own close
    /// when `answer` (a client that cannot be parsed any more does not), the end of the TCP
    /// connection.
    fn expect_fail(&mut self, code: u16, answer: bool, what: &str) {
        let f = self.frame();
        assert_eq!(
            f.opcode(),
            OP_CLOSE,
            "{what}: expected a close, got {}",
            f.show()
        );
        assert!(f.fin(), "{what}: a fragmented close {}", f.show());
        assert_eq!(
            f.close_code(),
            Some(code),
            "{what}: expected close {code}, got {}",
            f.show()
        );
        assert!(f.payload.len() <= 125, "{what}: {}", f.show());
        assert!(
            std::str::from_utf8(&f.payload[2..]).is_ok(),
            "{what}: reason not UTF-8"
        );
        if answer {
            // The server may already have closed: then this write fails, which is fine.
            let mask = self.mask();
            let _ = self
                .stream
                .write_all(&frame(true, 0, OP_CLOSE, &f.payload[..2], Some(mask)));
        }
        self.expect_eof(PROMPT);
    }

    /// The next frame that is not a ping; pings on the way are answered.
    fn frame_answering_pings(&mut self) -> Frame {
        loop {
            let f = self.frame();
            if f.opcode() != OP_PING {
                return f;
            }
            self.send_frame(true, OP_PONG, &f.payload);
        }
    }

    /// Sends `text` and expects it back as one unfragmented, unmasked text frame.
    fn echo_text(&mut self, text: &str) {
        self.send_frame(true, OP_TEXT, text.as_bytes());
        let f = self.frame();
        assert_eq!(
            f.bytes(),
            server_frame(OP_TEXT, text.as_bytes()),
            "{}",
            f.show()
        );
    }
}

/// What a server frame with `payload` must be, byte for byte: FIN, no RSV, no mask, the
/// minimal length encoding.
fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Deterministic, valid UTF-8 (ASCII) content of length `n`.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 23) as u8).collect()
}

// --- the client helper itself ----------------------------------------------------------------

#[test]
fn the_frame_encoder_matches_rfc_6455_examples() {
    // §5.7: a single-frame masked text message "Hello".
    assert_eq!(
        frame(true, 0, OP_TEXT, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d])),
        [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    // §5.7: its unmasked form, and 256 bytes and 64 KiB in one unmasked binary frame.
    assert_eq!(
        server_frame(OP_TEXT, b"Hello"),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    assert_eq!(
        server_frame(OP_BINARY, &[0; 256])[..4],
        [0x82, 0x7e, 0x01, 0x00]
    );
    assert_eq!(
        server_frame(OP_BINARY, &[0; 65536])[..10],
        [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0, 0]
    );
}

// --- handshake ---------------------------------------------------------------------------

#[test]
fn a_valid_handshake_gets_101_with_the_rfc_accept_value() {
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    c.send(Handshake::get("/echo").to_string().as_bytes());
    let r = c.response();
    assert!(
        r.raw_head
            .starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{}",
        r.raw_head
    );
    assert!(
        r.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{}",
        r.raw_head
    );
    assert!(
        r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")),
        "{}",
        r.raw_head
    );
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some(RFC_ACCEPT),
        "{}",
        r.raw_head
    );
    // No extension was offered, so none may be accepted; no protocol offered, none chosen.
    assert_eq!(r.header("sec-websocket-extensions"), None, "{}", r.raw_head);
    assert_eq!(r.header("sec-websocket-protocol"), None, "{}", r.raw_head);
    // The socket speaks WebSocket right after the head.
    c.echo_text("Hello");
}

#[test]
fn the_accept_value_follows_the_key() {
    // The Wikipedia example pair, computed independently of RFC 6455's.
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    let req = Handshake::get("/echo").set("Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw==");
    c.send(req.to_string().as_bytes());
    let r = c.response();
    assert_eq!(r.status, 101, "{}", r.raw_head);
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some("HSmrc0sMlYUkAGmm5OPpG2HaGWk="),
        "{}",
        r.raw_head
    );
}

#[test]
fn the_101_has_no_body_framing_headers() {
    // RFC 9110 §8.6: no Content-Length in a 1xx; a 101 has no body to frame.
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    c.send(Handshake::get("/echo").to_string().as_bytes());
    let r = c.response();
    assert_eq!(r.status, 101, "{}", r.raw_head);
    assert_eq!(r.header("content-length"), None, "{}", r.raw_head);
    assert_eq!(r.header("transfer-encoding"), None, "{}", r.raw_head);
}

#[test]
fn header_tokens_are_matched_case_insensitively_and_in_lists() {
    // `Connection: keep-alive, Upgrade` (what browsers send) and `Upgrade: WebSocket`.
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    let req = Handshake::get("/echo")
        .set("Connection", "keep-alive, Upgrade")
        .set("Upgrade", "WebSocket");
    c.send(req.to_string().as_bytes());
    let r = c.response();
    assert_eq!(r.status, 101, "{}", r.raw_head);
    assert_eq!(r.header("sec-websocket-accept"), Some(RFC_ACCEPT));
    c.echo_text("ok");
}

/// Sends `req` and expects a refusal with a status in `statuses`; returns it.
fn refused(server: &Server, req: Handshake, statuses: &[u16], what: &str) -> HttpResponse {
    let mut c = Client::connect(server.addr);
    c.send(req.to_string().as_bytes());
    let r = c.response();
    assert_ne!(r.status, 101, "{what}: upgraded anyway: {}", r.raw_head);
    assert!(
        statuses.contains(&r.status),
        "{what}: expected one of {statuses:?}, got {}",
        r.raw_head
    );
    assert_eq!(
        r.header("sec-websocket-accept"),
        None,
        "{what}: {}",
        r.raw_head
    );
    r
}

#[test]
fn a_missing_or_wrong_version_is_400() {
    let server = Server::start();
    refused(
        &server,
        Handshake::get("/echo").remove("Sec-WebSocket-Version"),
        &[400, 426],
        "no version",
    );
    for v in ["12", "14", "0", "thirteen"] {
        let req = Handshake::get("/echo").set("Sec-WebSocket-Version", v);
        refused(&server, req, &[400, 426], &format!("version {v}"));
    }
}

#[test]
fn a_wrong_version_is_refused_naming_version_13() {
    // RFC 6455 §4.4: the refusal carries `Sec-WebSocket-Version` with the versions understood.
    let server = Server::start();
    let req = Handshake::get("/echo").set("Sec-WebSocket-Version", "14");
    let r = refused(&server, req, &[400, 426], "version 14");
    assert_eq!(
        r.header("sec-websocket-version"),
        Some("13"),
        "{}",
        r.raw_head
    );
}

#[test]
fn a_missing_or_malformed_key_is_400() {
    let server = Server::start();
    refused(
        &server,
        Handshake::get("/echo").remove("Sec-WebSocket-Key"),
        &[400],
        "no key",
    );
    for key in [
        "",
        "abc",
        "not base64 at all!!!!!!!",
        // Base64 of 15 and of 17 bytes: the key must decode to exactly 16.
        "AAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let req = Handshake::get("/echo").set("Sec-WebSocket-Key", key);
        refused(&server, req, &[400], &format!("key {key:?}"));
    }
}

#[test]
fn missing_upgrade_or_connection_tokens_are_400() {
    let server = Server::start();
    let cases = [
        ("no Upgrade", Handshake::get("/echo").remove("Upgrade")),
        (
            "Upgrade: h2c",
            Handshake::get("/echo").set("Upgrade", "h2c"),
        ),
        (
            "no Connection",
            Handshake::get("/echo").remove("Connection"),
        ),
        (
            "Connection: keep-alive",
            Handshake::get("/echo").set("Connection", "keep-alive"),
        ),
    ];
    for (what, req) in cases {
        refused(&server, req, &[400, 426], what);
    }
}

#[test]
fn a_post_is_never_upgraded() {
    // RFC 6455 §4.1: the method must be GET. The route accepts any method, so this is the
    // handshake's own check.
    let server = Server::start();
    refused(
        &server,
        Handshake::get("/echo").method("POST"),
        &[400, 405],
        "POST",
    );
}

#[test]
fn the_first_supported_subprotocol_is_chosen() {
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    c.send(
        Handshake::get("/echo")
            .set("Sec-WebSocket-Protocol", "a, chat")
            .to_string()
            .as_bytes(),
    );
    let r = c.response();
    assert_eq!(r.status, 101, "{}", r.raw_head);
    assert_eq!(
        r.header("sec-websocket-protocol"),
        Some("chat"),
        "{}",
        r.raw_head
    );
    assert_eq!(server.expect_event("open"), "open protocol=Some(\"chat\")");
    c.echo_text("chatting");
}

#[test]
fn no_common_subprotocol_means_no_protocol_header() {
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    c.send(
        Handshake::get("/echo")
            .set("Sec-WebSocket-Protocol", "a, b")
            .to_string()
            .as_bytes(),
    );
    let r = c.response();
    assert_eq!(r.status, 101, "{}", r.raw_head);
    assert_eq!(r.header("sec-websocket-protocol"), None, "{}", r.raw_head);
    assert_eq!(server.expect_event("open"), "open protocol=None");
    c.echo_text("still fine");
}

#[test]
fn the_handler_sees_the_origin_header() {
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    let req = Handshake::get("/origin").set("Origin", "http://example.com");
    c.send(req.to_string().as_bytes());
    assert_eq!(c.response().status, 101);
    assert_eq!(
        server.expect_event("origin"),
        "origin Some(\"http://example.com\")"
    );
    c.echo_text("hi");
}

// --- data frames -------------------------------------------------------------------------

#[test]
fn the_rfc_hello_frame_is_echoed_exactly() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    assert_eq!(
        c.frame().bytes(),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
}

#[test]
fn text_and_binary_echo_with_each_length_encoding() {
    let server = Server::start();
    let mut c = server.open("/echo");
    for (opcode, len) in [
        (OP_TEXT, 0),
        (OP_TEXT, 125),
        (OP_BINARY, 1),
        (OP_BINARY, 125),
        (OP_TEXT, 126),
        (OP_TEXT, 300),
        (OP_BINARY, 300),
        (OP_BINARY, 65535),
        (OP_TEXT, 65536),
        (OP_TEXT, 70_000),
        (OP_BINARY, 70_000),
    ] {
        let payload = pattern(len);
        c.send_frame(true, opcode, &payload);
        let f = c.frame();
        let want = server_frame(opcode, &payload);
        let head_len = want.len() - len;
        assert_eq!(
            f.head,
            want[..head_len],
            "opcode {opcode} length {len}: head {:02x?}",
            f.head
        );
        assert!(
            f.payload == payload,
            "opcode {opcode} length {len}: payload differs"
        );
    }
    // The exact heads the issue names.
    c.send_frame(true, OP_BINARY, &[7; 300]);
    assert_eq!(c.frame().head, [0x82, 0x7e, 0x01, 0x2c]);
    c.send_frame(true, OP_BINARY, &vec![7; 70_000]);
    assert_eq!(
        c.frame().head,
        [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]
    );
    c.send_frame(true, OP_TEXT, "κόσμε".as_bytes());
    assert_eq!(c.frame().bytes(), server_frame(OP_TEXT, "κόσμε".as_bytes()));
}

// --- fragmentation -----------------------------------------------------------------------

#[test]
fn a_text_message_in_three_fragments_is_one_message() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(false, OP_TEXT, b"Hel");
    c.send_frame(false, OP_CONT, b"lo, ");
    c.send_frame(true, OP_CONT, b"World");
    assert_eq!(c.frame().bytes(), server_frame(OP_TEXT, b"Hello, World"));
    // Binary too, with an empty middle fragment.
    c.send_frame(false, OP_BINARY, &[1, 2]);
    c.send_frame(false, OP_CONT, &[]);
    c.send_frame(true, OP_CONT, &[3]);
    assert_eq!(c.frame().bytes(), server_frame(OP_BINARY, &[1, 2, 3]));
}

#[test]
fn a_code_point_split_between_fragments_is_valid() {
    // "κόσμε" cut inside its second character: each fragment alone is not valid UTF-8.
    let server = Server::start();
    let mut c = server.open("/echo");
    let text = "κόσμε".as_bytes();
    c.send_frame(false, OP_TEXT, &text[..3]);
    c.send_frame(true, OP_CONT, &text[3..]);
    assert_eq!(c.frame().bytes(), server_frame(OP_TEXT, text));
}

#[test]
fn a_ping_between_fragments_is_answered_and_the_message_still_assembles() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(false, OP_TEXT, b"frag");
    c.send_frame(true, OP_PING, b"p1");
    c.send_frame(false, OP_CONT, b"men");
    c.send_frame(true, OP_CONT, b"ted");
    let mut got = [c.frame().bytes(), c.frame().bytes()];
    // The pong is due as soon as practical, so before the message; either order is legal.
    got.sort_by_key(|f| f[0] == 0x81);
    assert_eq!(got[0], server_frame(OP_PONG, b"p1"));
    assert_eq!(got[1], server_frame(OP_TEXT, b"fragmented"));
}

#[test]
fn a_continuation_with_no_message_started_is_1002() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(true, OP_CONT, b"orphan");
    c.expect_fail(1002, true, "orphan continuation");
    server.expect_event("done");
}

#[test]
fn a_new_data_frame_inside_a_fragmented_message_is_1002() {
    let server = Server::start();
    for opcode in [OP_TEXT, OP_BINARY] {
        let mut c = server.open("/echo");
        c.send_frame(false, OP_TEXT, b"start");
        c.send_frame(true, opcode, b"again");
        c.expect_fail(1002, true, &format!("opcode {opcode} inside a message"));
    }
}

// --- ping and pong -----------------------------------------------------------------------

#[test]
fn a_ping_gets_a_pong_with_the_same_payload() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(true, OP_PING, b"ping");
    assert_eq!(c.frame().bytes(), [0x8a, 0x04, b'p', b'i', b'n', b'g']);
    c.send_frame(true, OP_PING, b"");
    assert_eq!(c.frame().bytes(), [0x8a, 0x00]);
    let biggest = pattern(125);
    c.send_frame(true, OP_PING, &biggest);
    assert_eq!(c.frame().bytes(), server_frame(OP_PONG, &biggest));
    // Binary payloads are echoed as they are.
    c.send_frame(true, OP_PING, &[0, 0xff, 0x80]);
    assert_eq!(c.frame().bytes(), [0x8a, 0x03, 0, 0xff, 0x80]);
    c.echo_text("after pings");
    assert_eq!(server.pending("ping or pong"), None);
}

#[test]
fn an_unsolicited_pong_is_ignored() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(true, OP_PONG, b"unasked");
    c.send_frame(true, OP_PONG, b"");
    // The next thing the server sends is the echo: nothing answered the pongs.
    c.echo_text("after");
    assert_eq!(server.pending("ping or pong"), None);
}

// --- the close handshake -----------------------------------------------------------------

#[test]
fn a_client_close_is_answered_then_the_connection_closes() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_close(1000, "bye");
    let f = c.frame();
    assert_eq!(f.opcode(), OP_CLOSE, "{}", f.show());
    assert!(f.fin());
    assert_eq!(f.close_code(), Some(1000), "{}", f.show());
    c.expect_eof(PROMPT);
    assert_eq!(server.expect_event("close"), "close Some((1000, \"bye\"))");
    assert_eq!(server.expect_event("done"), "done Some(1000)");
}

#[test]
fn an_empty_client_close_is_answered() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(true, OP_CLOSE, &[]);
    let f = c.frame();
    assert_eq!(f.opcode(), OP_CLOSE, "{}", f.show());
    // No code received: the answer is empty or 1000.
    assert!(
        f.payload.is_empty() || f.close_code() == Some(1000),
        "{}",
        f.show()
    );
    c.expect_eof(PROMPT);
    assert_eq!(server.expect_event("close"), "close None");
}

#[test]
fn application_close_codes_are_accepted() {
    let server = Server::start();
    for code in [1000, 1001, 1003, 1011, 3000, 4999] {
        let mut c = server.open("/echo");
        c.send_close(code, "");
        let f = c.frame();
        assert_eq!(f.opcode(), OP_CLOSE, "code {code}: {}", f.show());
        assert_ne!(f.close_code(), Some(1002), "code {code} refused");
        c.expect_eof(PROMPT);
        assert_eq!(
            server.expect_event("close"),
            format!("close Some(({code}, \"\"))")
        );
    }
}

#[test]
fn a_server_close_sends_code_and_reason_and_waits_for_the_client() {
    let server = Server::start();
    let mut c = server.open("/close-done");
    assert_eq!(
        c.frame().bytes(),
        [0x88, 0x06, 0x03, 0xe8, b'd', b'o', b'n', b'e']
    );
    // `close` waits for the answer (the default close timeout is 10 s).
    assert_eq!(
        server.event("close returned", Duration::from_millis(300)),
        None
    );
    c.send_close(1000, "");
    c.expect_eof(PROMPT);
    assert_eq!(
        server.expect_event("close returned"),
        "close returned Ok(())"
    );
}

#[test]
fn a_client_that_never_answers_a_close_is_cut_after_close_timeout() {
    let server = Server::start();
    let mut c = server.open("/close-timeout");
    assert_eq!(
        c.frame().bytes(),
        [0x88, 0x06, 0x03, 0xe8, b'd', b'o', b'n', b'e']
    );
    // close_timeout is 300 ms: closed well within 5 s.
    c.expect_eof(PROMPT);
    server.expect_event("close returned");
}

// --- violations: a close with the exact code, then the end of the connection --------------

#[test]
fn an_unmasked_client_frame_is_1002() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send(&frame(true, 0, OP_TEXT, b"Hello", None));
    c.expect_fail(1002, true, "unmasked");
    let err = server.expect_event("error");
    assert!(err.ends_with("Some(1002)"), "{err}");
}

#[test]
fn rsv_bits_without_an_extension_are_1002() {
    let server = Server::start();
    for rsv in [0x40, 0x20, 0x10, 0x70] {
        let mut c = server.open("/echo");
        let mask = c.mask();
        c.send(&frame(true, rsv, OP_TEXT, b"Hello", Some(mask)));
        c.expect_fail(1002, true, &format!("rsv {rsv:#04x}"));
    }
    // On a control frame too.
    let mut c = server.open("/echo");
    let mask = c.mask();
    c.send(&frame(true, 0x40, OP_PING, b"p", Some(mask)));
    c.expect_fail(1002, true, "rsv1 on a ping");
}

#[test]
fn reserved_opcodes_are_1002() {
    let server = Server::start();
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        let mut c = server.open("/echo");
        c.send_frame(true, opcode, b"x");
        c.expect_fail(1002, true, &format!("opcode {opcode:#x}"));
    }
}

#[test]
fn a_control_frame_over_125_bytes_is_1002() {
    let server = Server::start();
    let payload = close_payload(1000, &pattern(124)); // 126 bytes
    for opcode in [OP_PING, OP_PONG] {
        let mut c = server.open("/echo");
        c.send_frame(true, opcode, &payload);
        c.expect_fail(1002, true, &format!("opcode {opcode:#x} with 126 bytes"));
    }
    // A client that sent a close (even a bad one) sends nothing more.
    let mut c = server.open("/quick");
    c.send_frame(true, OP_CLOSE, &payload);
    c.expect_fail(1002, false, "close with 126 bytes");
}

#[test]
fn a_fragmented_control_frame_is_1002() {
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(false, OP_PING, b"half");
    c.expect_fail(1002, true, "ping with FIN=0");
    let mut c = server.open("/echo");
    c.send_frame(false, OP_CLOSE, &close_payload(1000, b""));
    c.expect_fail(1002, true, "close with FIN=0");
}

#[test]
fn invalid_utf8_in_a_text_message_is_1007() {
    // "κόσμε" followed by an encoded UTF-16 surrogate (Autobahn 6.3.1).
    const BAD: &[u8] = &[
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
    ];
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(true, OP_TEXT, BAD);
    c.expect_fail(1007, true, "invalid UTF-8, one frame");
    let err = server.expect_event("error");
    assert!(err.ends_with("Some(1007)"), "{err}");

    // The same over fragments, and an overlong encoding.
    let mut c = server.open("/echo");
    c.send_frame(false, OP_TEXT, &BAD[..6]);
    c.send_frame(true, OP_CONT, &BAD[6..]);
    c.expect_fail(1007, true, "invalid UTF-8, fragmented");
    let mut c = server.open("/echo");
    c.send_frame(true, OP_TEXT, &[0xc0, 0xaf]);
    c.expect_fail(1007, true, "overlong '/'");
    // A message that ends inside a code point.
    let mut c = server.open("/echo");
    c.send_frame(true, OP_TEXT, &"κόσμε".as_bytes()[..3]);
    c.expect_fail(1007, true, "truncated code point");
}

#[test]
fn invalid_utf8_in_a_close_reason_is_1007() {
    let server = Server::start();
    let mut c = server.open("/quick");
    c.send_frame(
        true,
        OP_CLOSE,
        &close_payload(1000, &[0xce, 0xba, 0xff, 0xfe]),
    );
    c.expect_fail(1007, false, "invalid UTF-8 reason");
}

#[test]
fn a_one_byte_close_payload_is_1002() {
    let server = Server::start();
    let mut c = server.open("/quick");
    c.send_frame(true, OP_CLOSE, &[0x03]);
    c.expect_fail(1002, false, "1-byte close payload");
}

#[test]
fn close_codes_invalid_on_the_wire_are_1002() {
    let server = Server::start();
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999] {
        let mut c = server.open("/quick");
        c.send_close(code, "");
        c.expect_fail(1002, false, &format!("close code {code}"));
    }
}

#[test]
fn a_frame_declaring_more_than_max_msg_size_is_1009_without_its_payload() {
    let server = Server::start();
    // Only the head and mask key are sent: the server must answer without waiting for the
    // declared payload (which never comes), then close after its close timeout (500 ms).
    let heads: [&[u8]; 2] = [
        // 2000 bytes, 16-bit length.
        &[0x82, 0xfe, 0x07, 0xd0, 1, 2, 3, 4],
        // 1 TiB, 64-bit length.
        &[0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4],
    ];
    for head in heads {
        let mut c = server.open("/small");
        c.send(head);
        c.expect_fail(1009, false, &format!("head {head:02x?}"));
        let err = server.expect_event("error");
        assert!(err.ends_with("Some(1009)"), "{err}");
    }
    // Under the limit is fine.
    let mut c = server.open("/small");
    let under = pattern(1000);
    c.send_frame(true, OP_BINARY, &under);
    assert_eq!(c.frame().bytes(), server_frame(OP_BINARY, &under));
}

#[test]
fn fragments_adding_up_to_more_than_max_msg_size_are_1009() {
    let server = Server::start();
    let mut c = server.open("/small");
    c.send_frame(false, OP_TEXT, &pattern(600));
    c.send_frame(true, OP_CONT, &pattern(600));
    c.expect_fail(1009, true, "600 + 600 bytes");
    // 500 + 500 is under.
    let mut c = server.open("/small");
    c.send_frame(false, OP_TEXT, &pattern(500));
    c.send_frame(true, OP_CONT, &pattern(500));
    let mut whole = pattern(500);
    whole.extend(pattern(500));
    assert_eq!(c.frame().bytes(), server_frame(OP_TEXT, &whole));
}

#[test]
fn a_64_bit_length_with_the_top_bit_set_is_1002() {
    let server = Server::start();
    // With no size limit the length's own rule must catch it; with the default limit too.
    // The stream cannot be parsed after it, so the client does not answer the close.
    for path in ["/nolimit", "/quick"] {
        let mut c = server.open(path);
        c.send(&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x05, 1, 2, 3, 4]);
        c.expect_fail(1002, false, path);
    }
}

// --- isolation and back-pressure ---------------------------------------------------------

#[test]
fn bad_input_on_one_connection_does_not_hurt_another() {
    let server = Server::start();
    let mut good = server.open("/echo");
    good.echo_text("before");

    // A frame declaring 1 TiB, its payload never sent.
    let mut huge = server.open("/small");
    huge.send(&[0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    good.echo_text("during a huge frame");

    // A 3 MiB frame (under the default 4 MiB limit) stalled a third of the way in.
    let mut slow = server.open("/echo");
    let big = pattern(3 << 20);
    let mask = slow.mask();
    let wire = frame(true, 0, OP_BINARY, &big, Some(mask));
    slow.send(&wire[..1 << 20]);
    good.echo_text("during a stalled big frame");

    // Garbage: 0xff is FIN, all RSV bits, opcode 0xF.
    let mut garbage = server.open("/quick");
    garbage.send(&[0xff; 4096]);
    good.echo_text("during garbage");

    huge.expect_fail(1009, false, "huge");
    garbage.expect_fail(1002, false, "garbage");
    slow.send(&wire[1 << 20..]);
    let f = slow.frame();
    assert_eq!(f.head, [0x82, 0x7f, 0, 0, 0, 0, 0, 0x30, 0, 0]);
    assert!(f.payload == big, "the 3 MiB echo differs");
    good.echo_text("after");
}

/// Shrinks the client's receive buffer (and so its TCP window), so a client that does not
/// read stops the server's writes early.
fn small_receive_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 64 * 1024;
    // SAFETY: a valid socket and a c_int option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_RCVBUF");
}

#[test]
fn a_peer_that_does_not_read_fails_the_send_not_the_server() {
    let server = Server::start();
    let mut stalled = Client::connect(server.addr);
    small_receive_buffer(&stalled.stream);
    stalled.send(Handshake::get("/flood").to_string().as_bytes());
    server.expect_event("open");
    // Never read from `stalled` again.

    let mut good = server.open("/echo");
    good.echo_text("while flooding");
    // Each send either completes or times out after 500 ms: the handler must give up long
    // before it has queued the 64 MiB it tries to send (a bounded queue).
    let report = server
        .event("flood", Duration::from_secs(15))
        .expect("the flooding handler reported");
    assert!(report.starts_with("flood failed after"), "{report}");
    assert!(
        report.contains(": Timeout ") || report.contains(": WebSocket "),
        "{report}"
    );
    good.echo_text("after the flood");
    drop(stalled);
}

// --- shutdown and heartbeat --------------------------------------------------------------

#[test]
fn graceful_shutdown_closes_websockets_with_1001() {
    let mut server = Server::start();
    let mut c = server.open("/echo");
    c.echo_text("connected");
    server.begin_shutdown();
    let f = c.frame();
    assert_eq!(f.opcode(), OP_CLOSE, "{}", f.show());
    assert_eq!(f.close_code(), Some(1001), "{}", f.show());
    c.send_close(1001, "");
    c.expect_eof(PROMPT);
    assert!(server.wait_shutdown(PROMPT), "shutdown did not return");
}

#[test]
fn heartbeat_pings_and_cuts_a_peer_that_never_pongs() {
    let server = Server::start();
    let mut c = server.open("/heartbeat");
    let f = c.frame();
    assert_eq!(
        f.opcode(),
        OP_PING,
        "expected a heartbeat ping, got {}",
        f.show()
    );
    assert!(f.fin(), "{}", f.show());
    // No pong: the server gives up (more pings or a close frame may come first).
    let t0 = Instant::now();
    c.stream.set_read_timeout(Some(PROMPT)).unwrap();
    loop {
        if c.buf.len() >= 2 {
            let f = c.frame();
            assert!(
                matches!(f.opcode(), OP_PING | OP_CLOSE),
                "unexpected {}",
                f.show()
            );
            continue;
        }
        match c.fill() {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}: still open after {:?}", t0.elapsed()),
        }
        assert!(
            t0.elapsed() <= PROMPT,
            "still open after {:?}",
            t0.elapsed()
        );
    }
    // aiohttp's semantics: the lost peer is recorded as 1006.
    assert_eq!(server.expect_event("done"), "done Some(1006)");
}

#[test]
fn heartbeat_keeps_a_peer_that_pongs() {
    let server = Server::start();
    let mut c = server.open("/heartbeat");
    // Five heartbeats (a second at 200 ms), each answered.
    for _ in 0..5 {
        let f = c.frame();
        assert_eq!(f.opcode(), OP_PING, "{}", f.show());
        c.send_frame(true, OP_PONG, &f.payload);
    }
    c.send_frame(true, OP_TEXT, b"still here");
    let f = c.frame_answering_pings();
    assert_eq!(
        f.bytes(),
        server_frame(OP_TEXT, b"still here"),
        "{}",
        f.show()
    );
}

// --- more of the same rules, at their edges ---------------------------------------------------

#[test]
fn frames_trickled_in_small_pieces_are_parsed() {
    let server = Server::start();
    let mut c = server.open("/echo");
    // A 300-byte frame one byte per write: head, extended length and mask key split up.
    let text = pattern(300);
    let mask = c.mask();
    for b in frame(true, 0, OP_TEXT, &text, Some(mask)) {
        c.send(&[b]);
    }
    assert_eq!(c.frame().bytes(), server_frame(OP_TEXT, &text));
    // A 70 000-byte frame in 997-byte pieces: the mask key's phase differs at every cut.
    let data = pattern(70_000);
    let mask = c.mask();
    for piece in frame(true, 0, OP_BINARY, &data, Some(mask)).chunks(997) {
        c.send(piece);
    }
    let f = c.frame();
    assert_eq!(f.head, [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]);
    assert!(f.payload == data, "the trickled 70 000 bytes differ");
}

#[test]
fn several_frames_in_one_write_are_answered_in_order() {
    let server = Server::start();
    let mut c = server.open("/echo");
    let mut wire = Vec::new();
    for (op, payload) in [
        (OP_TEXT, &b"one"[..]),
        (OP_PING, b"two"),
        (OP_BINARY, b"three"),
    ] {
        let mask = c.mask();
        wire.extend(frame(true, 0, op, payload, Some(mask)));
    }
    c.send(&wire);
    assert_eq!(c.frame().bytes(), server_frame(OP_TEXT, b"one"));
    assert_eq!(c.frame().bytes(), server_frame(OP_PONG, b"two"));
    assert_eq!(c.frame().bytes(), server_frame(OP_BINARY, b"three"));
}

#[test]
fn a_close_inside_a_fragmented_message_is_answered() {
    // Control frames may come between fragments (§5.4), the close included.
    let server = Server::start();
    let mut c = server.open("/echo");
    c.send_frame(false, OP_TEXT, b"never ");
    c.send_close(1000, "");
    let f = c.frame();
    assert_eq!(f.close_code(), Some(1000), "{}", f.show());
    c.expect_eof(PROMPT);
}

#[test]
fn data_after_the_server_close_is_not_answered() {
    // §5.5.1: after its close the server sends no more data frames.
    let server = Server::start();
    let mut c = server.open("/close-done");
    assert_eq!(c.frame().close_code(), Some(1000));
    c.send_frame(true, OP_TEXT, b"late");
    c.send_close(1000, "");
    c.expect_eof(PROMPT);
    assert_eq!(
        server.expect_event("close returned"),
        "close returned Ok(())"
    );
}

#[test]
fn a_message_of_exactly_max_msg_size_is_accepted() {
    // The limit is the largest message allowed: 1024 passes, 1025 does not.
    let server = Server::start();
    let mut c = server.open("/small");
    c.send_frame(true, OP_BINARY, &pattern(1024));
    assert_eq!(c.frame().bytes(), server_frame(OP_BINARY, &pattern(1024)));
    c.send_frame(false, OP_TEXT, &pattern(512));
    c.send_frame(true, OP_CONT, &pattern(512));
    let mut whole = pattern(512);
    whole.extend(pattern(512));
    assert_eq!(c.frame().bytes(), server_frame(OP_TEXT, &whole));

    c.send_frame(true, OP_BINARY, &pattern(1025));
    c.expect_fail(1009, true, "1025 bytes");
    let mut c = server.open("/small");
    c.send_frame(false, OP_TEXT, &pattern(512));
    c.send_frame(true, OP_CONT, &pattern(513));
    c.expect_fail(1009, true, "512 + 513 bytes");
}

#[test]
fn a_close_reason_of_123_bytes_is_accepted() {
    // The largest close payload: 2 bytes of code and 123 of reason.
    let server = Server::start();
    let mut c = server.open("/echo");
    let reason = String::from_utf8(pattern(123)).unwrap();
    c.send_close(1000, &reason);
    let f = c.frame();
    assert_eq!(f.close_code(), Some(1000), "{}", f.show());
    c.expect_eof(PROMPT);
    assert_eq!(
        server.expect_event("close"),
        format!("close Some((1000, {reason:?}))")
    );
}

#[test]
fn subprotocols_offered_on_several_header_lines_count() {
    // §11.3.4: several Sec-WebSocket-Protocol lines are one list.
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    let mut req = Handshake::get("/echo");
    req.headers
        .push(("Sec-WebSocket-Protocol".into(), "a".into()));
    req.headers
        .push(("Sec-WebSocket-Protocol".into(), "chat".into()));
    c.send(req.to_string().as_bytes());
    let r = c.response();
    assert_eq!(r.status, 101, "{}", r.raw_head);
    assert_eq!(
        r.header("sec-websocket-protocol"),
        Some("chat"),
        "{}",
        r.raw_head
    );
}

#[test]
fn a_duplicate_key_header_is_400() {
    // §11.3.1: Sec-WebSocket-Key MUST NOT appear more than once in a request, and §4.2.1
    // answers a handshake that breaks the rules with 400.
    let server = Server::start();
    let mut req = Handshake::get("/echo");
    req.headers.push((
        "Sec-WebSocket-Key".into(),
        "x3JJHMbDL1EzLkh9GBhXDw==".into(),
    ));
    refused(&server, req, &[400], "two keys");
}

#[test]
fn a_duplicate_version_header_is_400() {
    // §11.3.5: Sec-WebSocket-Version MUST NOT appear more than once in a request.
    let server = Server::start();
    let mut req = Handshake::get("/echo");
    req.headers
        .push(("Sec-WebSocket-Version".into(), "8".into()));
    refused(&server, req, &[400, 426], "two versions");
}

#[test]
fn http_1_0_is_never_upgraded() {
    // §4.1: the handshake is HTTP/1.1 or later.
    let server = Server::start();
    let mut c = Client::connect(server.addr);
    let req = Handshake::get("/echo")
        .to_string()
        .replace("HTTP/1.1", "HTTP/1.0");
    c.send(req.as_bytes());
    let r = c.response();
    assert_ne!(r.status, 101, "{}", r.raw_head);
    assert!((400..500).contains(&r.status), "{}", r.raw_head);
}

#[test]
fn a_handler_that_returns_without_closing_sends_1000() {
    // aiohttp closes a WebSocket its handler left open with 1000 (write_eof → close()), so
    // the peer sees a clean close rather than an abnormal one (1006).
    let server = Server::start();
    let mut c = server.open("/return");
    let f = c.frame();
    assert_eq!(f.opcode(), OP_CLOSE, "{}", f.show());
    assert_eq!(f.close_code(), Some(1000), "{}", f.show());
    c.send_close(1000, "");
    c.expect_eof(PROMPT);
}

/// Starts the shutdown with a client on `path` and expects a 1001 close before anything else
/// but the `tick`s of `/ticker`.
fn shutdown_sends_1001(path: &str) {
    let mut server = Server::start();
    let mut c = server.open(path);
    server.expect_event("open");
    server.begin_shutdown();
    let f = loop {
        let f = c.frame();
        if f.bytes() != server_frame(OP_TEXT, b"tick") {
            break f;
        }
    };
    assert_eq!(f.opcode(), OP_CLOSE, "{path}: {}", f.show());
    assert_eq!(f.close_code(), Some(1001), "{path}: {}", f.show());
    c.send_close(1001, "");
    c.expect_eof(PROMPT);
    assert!(
        server.wait_shutdown(PROMPT),
        "{path}: shutdown did not return"
    );
}

#[test]
fn shutdown_closes_a_websocket_whose_handler_only_sends_with_1001() {
    shutdown_sends_1001("/ticker");
}

#[test]
fn shutdown_closes_an_idle_websocket_with_1001() {
    shutdown_sends_1001("/idle");
}
