//! Helpers shared by the `client_*` test binaries: a Kettle server that records which
//! connection carried each request, a scripted raw-socket server that sends exactly the bytes
//! a test gives it, and memory readings from `/proc/self/status`.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use kettle::web::{AppRunner, Application, Next, Request, Response, ServerOptions};

/// How long a scripted connection waits for the client before giving up, so that no helper
/// thread outlives a failed test by much.
pub const SCRIPT_IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// A Kettle server that counts connections
// ---------------------------------------------------------------------------------------------

/// What the server saw, recorded by a middleware around every handler.
#[derive(Default)]
pub struct Seen {
    /// The peer address of each request, in arrival order: one address is one connection.
    peers: RefCell<Vec<SocketAddr>>,
    /// Requests inside the handler chain right now.
    in_flight: Cell<usize>,
    /// The most requests that were inside the handler chain at once.
    max_in_flight: Cell<usize>,
}

impl Seen {
    /// Requests served so far.
    pub fn requests(&self) -> usize {
        self.peers.borrow().len()
    }

    /// Distinct connections that carried a request so far.
    pub fn connections(&self) -> usize {
        let mut peers = self.peers.borrow().clone();
        peers.sort();
        peers.dedup();
        peers.len()
    }

    /// The peer address of the `i`th request.
    pub fn peer(&self, i: usize) -> SocketAddr {
        self.peers.borrow()[i]
    }

    /// The most requests handled at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.get()
    }
}

/// A running `kettle::web` server on 127.0.0.1 with a [`Seen`] record.
pub struct Server {
    runner: AppRunner,
    pub addr: SocketAddr,
    pub seen: Rc<Seen>,
}

impl Server {
    /// Serves `app` with the default options (and a short shutdown grace period, so a test
    /// that leaves a handler stalled does not wait a minute at its end).
    pub async fn start(app: Application) -> Server {
        Server::start_with(app, ServerOptions::default()).await
    }

    pub async fn start_with(mut app: Application, options: ServerOptions) -> Server {
        let seen = Rc::new(Seen::default());
        let record = seen.clone();
        app.add_middleware(move |req: Request, next: Next| {
            let seen = record.clone();
            async move {
                if let Some(peer) = req.peer_addr() {
                    seen.peers.borrow_mut().push(peer);
                }
                let now = seen.in_flight.get() + 1;
                seen.in_flight.set(now);
                seen.max_in_flight.set(seen.max_in_flight.get().max(now));
                let resp: Response = next.run(req).await;
                seen.in_flight.set(seen.in_flight.get() - 1);
                resp
            }
        });
        let options = options.shutdown_timeout(Duration::from_millis(300));
        let runner = AppRunner::start_with(app, "127.0.0.1", 0, options)
            .await
            .expect("start the test server");
        let addr = runner.addrs()[0];
        Server { runner, addr, seen }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections open on the server right now.
    pub fn open_connections(&self) -> usize {
        self.runner.active_connections()
    }

    pub async fn shutdown(self) {
        self.runner.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// A scripted raw-socket server
// ---------------------------------------------------------------------------------------------

/// A server on 127.0.0.1 that runs a script (a plain function over a blocking socket) on each
/// connection, in a thread of its own, so it can send exactly the bytes a test needs: garbage,
/// lies about lengths, endless lines, silence.
pub struct Script {
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Script {
    /// Runs `script(n, stream)` for the `n`th accepted connection (from 0).
    pub fn start<F>(script: F) -> Script
    where
        F: Fn(usize, TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the script server");
        let addr = listener.local_addr().expect("script server address");
        let accepts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        {
            let accepts = accepts.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let n = accepts.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_read_timeout(Some(SCRIPT_IO_TIMEOUT));
                    let _ = stream.set_write_timeout(Some(SCRIPT_IO_TIMEOUT));
                    let script = script.clone();
                    thread::spawn(move || script(n, stream));
                }
            });
        }
        Script {
            addr,
            accepts,
            stop,
        }
    }

    /// A server that answers every connection with `bytes` after reading one request head,
    /// then closes it.
    pub fn reply(bytes: &'static [u8]) -> Script {
        Script::start(move |_, mut s| {
            if read_request(&mut s).is_some() {
                let _ = s.write_all(bytes);
            }
        })
    }

    /// A server that answers every connection with `bytes` after reading one request head,
    /// then keeps the connection open until the client closes it (so that a client's error
    /// comes from the bytes, never from an EOF racing them).
    pub fn reply_and_hold(bytes: &'static [u8]) -> Script {
        Script::start(move |_, mut s| {
            if read_request(&mut s).is_some() && s.write_all(bytes).is_ok() {
                wait_for_close(&mut s);
            }
        })
    }

    /// A keep-alive server that answers every request on every connection with `bytes`.
    pub fn reply_each(bytes: &'static [u8]) -> Script {
        Script::start(move |_, mut s| {
            while read_request(&mut s).is_some() {
                if s.write_all(bytes).is_err() {
                    return;
                }
            }
        })
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// One request as the scripted server read it.
#[derive(Debug)]
pub struct RawRequest {
    /// The head, request line and fields, without the blank line.
    pub head: String,
    /// The body, as framed by `Content-Length` (chunked bodies are not read).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The request line.
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one request (head byte by byte, so nothing after it is consumed; then a
/// `Content-Length` body); `None` if the client closed the connection first.
pub fn read_request(s: &mut TcpStream) -> Option<RawRequest> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    head.truncate(head.len() - 4);
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut req = RawRequest {
        head,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    req.body = vec![0; len];
    s.read_exact(&mut req.body).ok()?;
    Some(req)
}

/// Reads and drops whatever the client sends until it closes the connection (or the read
/// timeout passes).
pub fn wait_for_close(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// Writes `piece` until the peer stops taking it (or `cap` bytes went out); returns how many
/// bytes were accepted by the socket and whether the peer was seen to go away.
pub fn write_forever(s: &mut TcpStream, piece: &[u8], cap: usize) -> (usize, bool) {
    let mut sent = 0;
    while sent < cap {
        match s.write(piece) {
            Ok(0) | Err(_) => return (sent, true),
            Ok(n) => sent += n,
        }
    }
    (sent, false)
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`); `None` where there is no procfs.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

pub const MIB: u64 = 1024 * 1024;

/// Runs the ignored test `name` of this test binary in a child process and fails unless it
/// passes (its output is passed on). Resident memory is per process, and the other tests of
/// a binary, running in parallel threads, would blur a reading taken in-process.
pub fn run_in_own_process(name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed in its own process:\n{stdout}\n{stderr}"
    );
    eprint!("{stderr}");
}
