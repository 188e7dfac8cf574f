//! Helpers shared by `tests/chat_demo.rs` and `tests/chat_browser.rs`: the `chat` example run
//! as a process on a port of its own choosing, and a chat member speaking its JSON protocol
//! through Kettle's WebSocket client.
#![allow(dead_code)] // each test file uses its own subset

use std::future::IntoFuture;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kettle::client::{ClientSession, ClientWebSocketResponse};
use kettle::ws::Message;
use serde_json::Value;

use crate::process_support::{example, Reaped};

/// The `chat` example, killed when dropped; what it printed is shown if the test fails.
pub struct ChatServer {
    child: Reaped,
    /// Where it listens (from its banner).
    pub addr: SocketAddr,
    /// Everything it printed on stdout and stderr, collected by two reader threads (which
    /// also keep its pipes open, so a late `println!` never hits a closed pipe).
    output: Arc<Mutex<String>>,
}

impl ChatServer {
    /// Starts `chat --port 0` and reads the port it bound from its banner,
    /// `======== Running on http://127.0.0.1:PORT ========`.
    pub fn start() -> ChatServer {
        ChatServer::start_with(&[])
    }

    /// [`start`](ChatServer::start) with more arguments.
    pub fn start_with(args: &[&str]) -> ChatServer {
        let mut child = Reaped(
            Command::new(example("chat"))
                .args(["--port", "0"])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the chat example"),
        );
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
        let mut banner = String::new();
        stdout.read_line(&mut banner).unwrap();
        output.lock().unwrap().push_str(&banner);
        drain(stdout, output.clone());
        drain(child.0.stderr.take().unwrap(), output.clone());
        let addr = banner
            .trim()
            .strip_prefix("======== Running on http://")
            .and_then(|rest| rest.strip_suffix(" ========"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
        ChatServer {
            child,
            addr,
            output,
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Its process id, for signals.
    pub fn pid(&self) -> libc::pid_t {
        self.child.0.id() as libc::pid_t
    }

    /// How it exited, once it has.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.0.try_wait().unwrap()
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- chat example output:\n{}", self.output());
        }
    }
}

/// Copies everything `from` yields into `to`, on a thread of its own.
fn drain(mut from: impl Read + Send + 'static, to: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            to.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

/// How long a test waits for one expected chat event before failing.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A chat member on Kettle's WebSocket client, keeping every event it received (for the
/// failure messages).
pub struct Member {
    pub ws: ClientWebSocketResponse,
    /// Its peer id, from the welcome.
    pub id: u64,
    /// Its name as the server shows it.
    pub name: String,
    /// Every event received, in order, the welcome first.
    pub seen: Vec<Value>,
}

impl Member {
    /// Joins the chat at `addr` as `?name=<query_name>` (raw: the caller percent-encodes)
    /// and reads the welcome.
    pub async fn join(addr: SocketAddr, query_name: &str) -> Member {
        Member::join_with(addr, query_name, true).await
    }

    /// [`join`](Member::join), offering permessage-deflate or not.
    pub async fn join_with(addr: SocketAddr, query_name: &str, compress: bool) -> Member {
        let url = if query_name.is_empty() {
            format!("ws://{addr}/ws")
        } else {
            format!("ws://{addr}/ws?name={query_name}")
        };
        let connecting = ClientSession::new()
            .ws_connect(&url)
            .compress(compress)
            .into_future();
        let ws = kettle::wait_for(connecting, EVENT_TIMEOUT)
            .await
            .expect("no WebSocket handshake in time")
            .unwrap_or_else(|e| panic!("ws_connect {url}: {e}"));
        let mut member = Member {
            ws,
            id: 0,
            name: String::new(),
            seen: Vec::new(),
        };
        let welcome = member.next().await;
        assert_eq!(welcome["kind"], "welcome", "{welcome}");
        member.id = welcome["id"].as_u64().expect("welcome id");
        member.name = welcome["name"].as_str().expect("welcome name").to_string();
        member
    }

    /// Sends one line.
    pub async fn say(&self, text: &str) {
        self.ws
            .send_str(text)
            .await
            .unwrap_or_else(|e| panic!("{} cannot send: {e}", self.name));
    }

    /// The next event, within [`EVENT_TIMEOUT`].
    pub async fn next(&mut self) -> Value {
        self.next_within(EVENT_TIMEOUT).await
    }

    /// The next event, within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Value {
        let msg = match kettle::wait_for(self.ws.receive(), limit).await {
            Ok(Ok(msg)) => msg,
            Ok(Err(e)) => panic!("{} lost its socket: {e}\nseen: {:#?}", self.name, self.seen),
            Err(_) => panic!(
                "{} got nothing for {limit:?}\nseen: {:#?}",
                self.name, self.seen
            ),
        };
        let Message::Text(text) = msg else {
            panic!("{} got {msg:?}, not a text message", self.name);
        };
        let event: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the server sent {text:?}, not JSON: {e}"));
        self.seen.push(event.clone());
        event
    }

    /// Skips events until one for which `wanted` holds, within `limit` in all; panics with
    /// `what` and everything seen if none comes.
    pub async fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = match kettle::wait_for(self.ws.receive(), left).await {
                Ok(Ok(Message::Text(text))) => serde_json::from_str::<Value>(&text)
                    .unwrap_or_else(|e| panic!("the server sent {text:?}, not JSON: {e}")),
                Ok(other) => panic!(
                    "{} waiting for {what}: got {other:?}\nseen: {:#?}",
                    self.name, self.seen
                ),
                Err(_) => panic!(
                    "{} waited {limit:?} for {what} in vain\nseen: {:#?}",
                    self.name, self.seen
                ),
            };
            self.seen.push(event.clone());
            if wanted(&event) {
                return event;
            }
        }
    }
}

impl Member {
    /// Reads events until `done` holds for everything seen so far, within `limit` in all;
    /// panics with `what` and everything seen if it never does. For events whose order
    /// between themselves is not fixed.
    pub async fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{} waited {limit:?} for {what} in vain\nseen: {:#?}",
                    self.name, self.seen
                );
            }
            self.next_within(left).await;
        }
    }
}

/// Whether `event` is a `kind` event from the member named `name` (with `text`, for
/// messages).
pub fn is(event: &Value, kind: &str, name: &str, text: Option<&str>) -> bool {
    event["kind"] == kind && event["name"] == name && text.is_none_or(|t| event["text"] == t)
}
