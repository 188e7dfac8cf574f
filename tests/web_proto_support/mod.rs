//! Shared by the `web_proto*` test binaries: a `kettle::web` server running on its own thread
//! (its own event loop), and a blocking std client that sends exact bytes and parses exactly
//! what comes back, so the tests see the wire and nothing else.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kettle::sync::oneshot;
use kettle::web::{AppRunner, Application, ServerOptions};

/// How long any single read may block before the test fails (never reached when all is well).
pub const READ_LIMIT: Duration = Duration::from_secs(10);
/// "At once" and "within the timeout plus a margin", generously, for a loaded CI machine.
pub const PROMPT: Duration = Duration::from_secs(5);

/// A server on 127.0.0.1 (free port), running on its own thread until dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    stopped: mpsc::Receiver<Duration>,
    thread: Option<JoinHandle<()>>,
}

/// Test-friendly defaults: a short shutdown grace period, so a failing test with a stuck
/// handler does not hang in `Drop`.
pub fn options() -> ServerOptions {
    ServerOptions::default().shutdown_timeout(Duration::from_secs(2))
}

/// Starts the application `build` returns (it is built on the server's thread, since an
/// `Application` is not `Send`).
pub fn serve<F>(opts: ServerOptions, build: F) -> Server
where
    F: FnOnce() -> Application + Send + 'static,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (stopped_tx, stopped_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        kettle::run(async move {
            let runner = AppRunner::start_with(build(), "127.0.0.1", 0, opts)
                .await
                .expect("start the server");
            addr_tx.send(runner.addrs()[0]).unwrap();
            let _ = stop_rx.await;
            let t0 = Instant::now();
            runner.shutdown().await;
            let _ = stopped_tx.send(t0.elapsed());
        });
    });
    let addr = addr_rx.recv().expect("the server thread started");
    Server {
        addr,
        stop: Some(stop_tx),
        stopped: stopped_rx,
        thread: Some(thread),
    }
}

impl Server {
    /// Starts the graceful shutdown (`AppRunner::shutdown`) without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for a shutdown begun with [`begin_shutdown`](Self::begin_shutdown) to return;
    /// `None` if it has not within `limit`.
    pub fn wait_shutdown(&mut self, limit: Duration) -> Option<Duration> {
        let took = self.stopped.recv_timeout(limit).ok()?;
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
        Some(took)
    }

    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// One request on a new connection; returns the response.
    pub fn request(&self, raw: &str) -> Response {
        let mut s = self.connect();
        send(&mut s, raw.as_bytes());
        read_response(&mut s, false)
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

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(READ_LIMIT)).unwrap();
    s.set_write_timeout(Some(READ_LIMIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

pub fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).expect("send");
}

/// A response as it came off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status line, without CRLF.
    pub status_line: String,
    pub status: u16,
    /// In order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head exactly as received (status line to the blank line).
    pub raw_head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(k, _)| *k == name).count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the server said it will close the connection.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Bytes already read from a connection but not yet consumed, kept per socket by the caller
/// through [`Conn`].
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn open(addr: SocketAddr) -> Conn {
        Conn::new(connect(addr))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        send(&mut self.stream, bytes);
    }

    pub fn send_str(&mut self, s: &str) {
        self.send(s.as_bytes());
    }

    /// Reads more; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn fill_or_panic(&mut self, what: &str) {
        match self.fill() {
            Ok(0) => panic!("EOF while reading {what}; have {}", self.show()),
            Ok(_) => {}
            Err(e) => panic!("error while reading {what}: {e}; have {}", self.show()),
        }
    }

    /// What is buffered, abridged for messages.
    fn show(&self) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        if text.len() <= 400 {
            format!("{text:?}")
        } else {
            let cut = (0..=200)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            format!("{} bytes starting {:?}", self.buf.len(), &text[..cut])
        }
    }

    /// Exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill_or_panic("exact bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// One response; `head_request` says the request was HEAD (no body follows).
    pub fn response(&mut self, head_request: bool) -> Response {
        let head_len = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill_or_panic("a response head");
        };
        let raw_head = String::from_utf8(self.buf[..head_len].to_vec()).expect("ASCII head");
        self.buf.drain(..head_len);
        let mut lines = raw_head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "bad status line {status_line:?}"
        );
        let status: u16 = status_line[9..12].parse().expect("status code");
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once(':').expect("header line has a colon");
            assert!(!k.contains(' '), "space in header name {line:?}");
            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut resp = Response {
            status_line,
            status,
            headers,
            body: Vec::new(),
            raw_head,
        };
        let bodyless = head_request || status < 200 || status == 204 || status == 304;
        if bodyless {
            return resp;
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            resp.body = self.chunked_body();
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("numeric Content-Length");
            resp.body = self.read_exact(len);
        } else {
            resp.body = self.read_to_eof();
        }
        resp
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return line;
            }
            self.fill_or_panic("a chunk line");
        }
    }

    fn chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.line();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            if size == 0 {
                while !self.line().is_empty() {}
                return body;
            }
            body.extend(self.read_exact(size));
            assert_eq!(self.read_exact(2), b"\r\n");
        }
    }

    /// Everything until the server closes (a reset counts as a close, with what came first).
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return std::mem::take(&mut self.buf)
                }
                Err(e) => panic!("no EOF: {e}; have {}", self.show()),
            }
        }
    }

    /// Asserts the server closes the connection with nothing more sent, within `limit`.
    pub fn expect_closed(&mut self, limit: Duration) {
        let t0 = Instant::now();
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let rest = self.read_to_eof();
        assert!(
            rest.is_empty(),
            "expected only a close, got {:?}",
            String::from_utf8_lossy(&rest)
        );
        assert!(t0.elapsed() <= limit, "closed after {:?}", t0.elapsed());
        self.stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
    }

    /// Whether the connection is still open and silent `for_` from now.
    pub fn is_open_and_silent(&mut self, for_: Duration) -> bool {
        self.stream.set_read_timeout(Some(for_)).unwrap();
        let r = self.fill();
        self.stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
        matches!(r, Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }

    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one response from a bare stream (for one-shot requests).
pub fn read_response(s: &mut TcpStream, head_request: bool) -> Response {
    let mut c = Conn::new(s.try_clone().unwrap());
    c.response(head_request)
}

/// `GET path` with a Host header, HTTP/1.1.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// Counts lines that look like the start of a response in `bytes`.
pub fn count_status_lines(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ").count()
}

/// Polls `f` until it is true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

// --- the application the protocol tests talk to ------------------------------------------

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use kettle::web::{self, Request, StreamResponse};

/// The test's side of the probe application: what its handlers report, the gate that
/// `/gate` waits on, and the `/hit` counter.
pub struct Probe {
    pub events: mpsc::Receiver<String>,
    pub gate: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
}

impl Probe {
    pub fn open_gate(&self) {
        self.gate.store(true, Ordering::SeqCst);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The next event a handler reported, within `limit`.
    pub fn event(&self, limit: Duration) -> Option<String> {
        self.events.recv_timeout(limit).ok()
    }
}

/// The server's side, kept in the application's state.
struct ProbeState {
    events: mpsc::Sender<String>,
    gate: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    big: std::cell::RefCell<Option<bytes::Bytes>>,
}

impl ProbeState {
    fn report(&self, e: impl Into<String>) {
        let _ = self.events.send(e.into());
    }
}

fn state(req: &Request) -> std::rc::Rc<ProbeState> {
    req.state::<ProbeState>().expect("probe state")
}

/// A handler that panics before it even returns its future (a plain `fn`, not `async`).
fn panic_now(_req: Request) -> std::future::Ready<web::Response> {
    panic!("panicked before the future existed")
}

/// The probe application and the test's handle on it. Routes:
///
/// - `GET /` → `Hello, World!`; `GET /p/{n}` → `n`; `GET /hit` counts;
/// - `GET /info` → version and keep-alive as the handler saw them;
/// - `GET /peer` → the client's port and a newline (one port = one connection);
/// - `GET /sleep/{ms}`; `GET /gate` (reports `gate entered`, waits for [`Probe::open_gate`]);
/// - `GET /forever` (reports `forever entered`, never answers);
/// - `GET /big/{n}` → `n` bytes; `GET /hit-big/{n}` counts as a hit too;
/// - `GET /stream` → a streamed body `abc`;
/// - `GET /framing-headers` → `abc` with bogus Content-Length, Transfer-Encoding and
///   Connection headers set by the handler;
/// - `GET /panic`, `GET /panic-sync`;
/// - `GET /stream-then/{panic,error,replace}`: a streamed response begun, then abandoned;
/// - `POST /echo` (read; trailers echoed as `x-trailer-*`), `/text`, `/json`;
/// - `POST /reject` → 403 without reading the body;
/// - `POST /stream-echo` sends a streamed head, then echoes the body as it reads it;
/// - `POST /count` reads chunk by chunk and reports `body error: ...` or `body ok: n`.
pub fn probe_app() -> (impl FnOnce() -> Application + Send + 'static, Probe) {
    probe_app_with(|_| {})
}

/// [`probe_app`], with `tweak` applied to the application (limits, extra routes).
pub fn probe_app_with(
    tweak: impl FnOnce(&mut Application) + Send + 'static,
) -> (impl FnOnce() -> Application + Send + 'static, Probe) {
    let (tx, rx) = mpsc::channel();
    let gate = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        events: rx,
        gate: gate.clone(),
        hits: hits.clone(),
    };
    let build = move || {
        let mut app = Application::new();
        app.set_state(ProbeState {
            events: tx,
            gate,
            hits,
            big: Default::default(),
        });
        app.router()
            .add_get("/", |_r: Request| async { "Hello, World!" })
            .add_get("/p/{n}", |r: Request| async move {
                r.match_info().get("n").unwrap_or("").to_string()
            })
            .add_get("/hit", |r: Request| async move {
                state(&r).hits.fetch_add(1, Ordering::SeqCst);
                "hit"
            })
            .add_get("/peer", |r: Request| async move {
                format!("{}\n", r.peer_addr().map_or(0, |a| a.port()))
            })
            .add_get("/info", |r: Request| async move {
                format!("version={:?} keep_alive={}", r.version(), r.keep_alive())
            })
            .add_get("/sleep/{ms}", |r: Request| async move {
                let ms: u64 = r.match_info().get("ms").unwrap().parse().unwrap();
                kettle::sleep(Duration::from_millis(ms)).await;
                format!("slept {ms}")
            })
            .add_get("/gate", |r: Request| async move {
                let s = state(&r);
                s.report("gate entered");
                while !s.gate.load(Ordering::SeqCst) {
                    kettle::sleep(Duration::from_millis(5)).await;
                }
                "gate passed"
            })
            .add_get("/forever", |r: Request| async move {
                state(&r).report("forever entered");
                kettle::sleep(Duration::from_secs(3600)).await;
                "never"
            })
            .add_get("/big/{n}", |r: Request| async move {
                let n: usize = r.match_info().get("n").unwrap().parse().unwrap();
                web::Response::bytes(pattern(n))
            })
            .add_get("/hit-big/{n}", |r: Request| async move {
                let s = state(&r);
                s.hits.fetch_add(1, Ordering::SeqCst);
                let n: usize = r.match_info().get("n").unwrap().parse().unwrap();
                // The same bytes each time (a cheap clone), so handlers cost next to nothing.
                let mut cached = s.big.borrow_mut();
                if cached.as_ref().is_none_or(|b| b.len() != n) {
                    *cached = Some(bytes::Bytes::from(pattern(n)));
                }
                web::Response::bytes(cached.clone().unwrap())
            })
            .add_get("/stream", |r: Request| async move {
                let mut resp = StreamResponse::new();
                resp.set_content_type("text/plain");
                resp.prepare(&r).await?;
                for piece in ["a", "b", "c"] {
                    resp.write(piece).await?;
                }
                resp.write_eof().await?;
                Ok::<_, web::Error>(resp)
            })
            .add_get("/stream-then/{what}", |r: Request| async move {
                // Starts a streamed response, then fails: the head is already out.
                let mut resp = StreamResponse::new();
                resp.prepare(&r).await?;
                resp.write("partial").await?;
                match r.match_info().get("what") {
                    Some("panic") if std::hint::black_box(true) => panic!("after prepare"),
                    Some("error") => return Err(web::HTTPBadRequest().into()),
                    _ => {}
                }
                Ok::<_, web::Error>(web::Response::text("replaced"))
            })
            .add_get("/framing-headers", |_r: Request| async move {
                // Framing headers set by hand must not reach the wire: the server owns framing.
                let mut resp = web::Response::text("abc");
                let h = resp.headers_mut();
                h.insert("content-length", "999".parse().unwrap());
                h.insert("transfer-encoding", "chunked".parse().unwrap());
                h.insert("connection", "keep-alive".parse().unwrap());
                resp
            })
            .add_get("/panic", |_r: Request| async move {
                if std::hint::black_box(true) {
                    panic!("handler panicked");
                }
                "unreachable"
            })
            .add_get("/panic-sync", panic_now)
            .add_post("/echo", |mut r: Request| async move {
                let body = r.read().await?;
                let mut resp = web::Response::bytes(body);
                if let Some(trailers) = r.content().trailers() {
                    for (k, v) in &trailers {
                        let name = format!("x-trailer-{k}");
                        resp.headers_mut().append(
                            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                            v.clone(),
                        );
                    }
                }
                Ok::<_, web::Error>(resp)
            })
            .add_post("/text", |mut r: Request| async move {
                let text = r.text().await?;
                Ok::<_, web::Error>(format!("text:{text}"))
            })
            .add_post("/json", |mut r: Request| async move {
                let v: serde_json::Value = r.json().await?;
                Ok::<_, web::Error>(web::json_response(&serde_json::json!({ "got": v })))
            })
            .add_post("/stream-echo", |mut r: Request| async move {
                // The head goes out before the body is read.
                let mut resp = StreamResponse::new();
                resp.prepare(&r).await?;
                while let Some(piece) = r.content().read_chunk().await? {
                    resp.write(piece).await?;
                }
                resp.write_eof().await?;
                Ok::<_, web::Error>(resp)
            })
            .add_post("/reject", |_r: Request| async move {
                web::Error::from(web::HTTPForbidden())
            })
            .add_post("/count", |mut r: Request| async move {
                let s = state(&r);
                let mut total = 0;
                loop {
                    match r.content().read_chunk().await {
                        Ok(Some(c)) => total += c.len(),
                        Ok(None) => break,
                        Err(e) => {
                            s.report(format!("body error: {e}"));
                            return Err(e);
                        }
                    }
                }
                s.report(format!("body ok: {total}"));
                Ok(format!("{total}"))
            });
        tweak(&mut app);
        app
    };
    (build, probe)
}

/// Deterministic bytes for large bodies.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 23) as u8).collect()
}
