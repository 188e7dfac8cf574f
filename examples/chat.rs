//! A WebSocket chat room (aiohttp's classic chat demo): `GET /` serves a page from
//! `examples/chat/static/`, whose script opens a WebSocket to `/ws` and shows every line any
//! page sends, prefixed by its sender's name, plus who joins and who leaves.
//!
//! ```text
//! cargo run --example chat                         # http://127.0.0.1:8080
//! cargo run --example chat -- --host 0.0.0.0 --port 9000
//! # then open http://127.0.0.1:8080/?name=alice in a browser or two
//! ```
//!
//! `--port 0` takes a free port; the banner line says which. `tests/chat_demo.rs` chats
//! through it with Kettle's WebSocket client and `tests/chat_browser.rs` with headless
//! Chromium.
//!
//! The protocol: a page sends each line as a text message (at most [`MAX_MESSAGE`] bytes);
//! the server sends JSON objects, each with a `kind`:
//!
//! ```text
//! {"kind":"welcome","id":3,"name":"alice","online":["bob","alice"]}   to the newcomer only
//! {"kind":"join","from":3,"name":"alice"}                              to everyone
//! {"kind":"message","from":3,"name":"alice","text":"hi"}               to everyone, sender too
//! {"kind":"leave","from":3,"name":"alice"}                             to everyone left
//! ```
//!
//! The room is the application's state: the open sockets by peer id. A broadcast sends to
//! each of them at once; a peer whose send fails (gone, or not reading for
//! [`SEND_TIMEOUT`]) is dropped from the room without holding up the others, and its own
//! handler then announces that it left.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kettle::web::{self, Application, FileResponse, Request, WebSocketResponse};
use kettle::ws::{close_code, Message};
use serde_json::json;

/// The largest message a page may send, in bytes; a larger one closes its socket with 1009.
pub const MAX_MESSAGE: usize = 4096;

/// The longest name, in characters; longer `?name=`s are cut.
pub const MAX_NAME: usize = 32;

/// How many pages may be in the room at once; more get 503.
pub const MAX_PEERS: usize = 1000;

/// How long a peer may leave a message unread before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A ping this often keeps idle connections open through proxies and notices dead peers.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The page and its script, next to this file.
const STATIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat/static");

/// One open page.
struct Peer {
    /// The name shown before its messages.
    name: String,
    /// Its socket (a clone of the one its handler receives on).
    ws: WebSocketResponse,
}

/// The chat room: the application's state.
#[derive(Default)]
pub struct Room {
    /// The id the next peer gets. Ids are never reused, so a name collision never confuses
    /// who is who.
    next_id: Cell<u64>,
    /// The open sockets by peer id. Never borrowed across an `.await`: a broadcast copies
    /// the handles out first.
    peers: RefCell<BTreeMap<u64, Peer>>,
}

impl Room {
    /// Adds a peer; returns its id and its name (`?name=`, cleaned, or `user-<id>`).
    fn join(&self, requested: Option<&str>, ws: WebSocketResponse) -> (u64, String) {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let name = clean_name(requested.unwrap_or("")).unwrap_or_else(|| format!("user-{id}"));
        self.peers.borrow_mut().insert(
            id,
            Peer {
                name: name.clone(),
                ws,
            },
        );
        (id, name)
    }

    /// Removes a peer (if a failed send has not already).
    fn remove(&self, id: u64) {
        self.peers.borrow_mut().remove(&id);
    }

    fn is_full(&self) -> bool {
        self.peers.borrow().len() >= MAX_PEERS
    }

    /// Everyone's names, in order of arrival.
    fn names(&self) -> Vec<String> {
        self.peers
            .borrow()
            .values()
            .map(|p| p.name.clone())
            .collect()
    }

    /// Sends `event` to every peer at once. A peer whose send fails is dropped from the room
    /// (the failed send has already ended its connection, so its handler announces the
    /// leave); the others still get the message.
    async fn broadcast(&self, event: &serde_json::Value) {
        let text = event.to_string();
        let peers: Vec<(u64, WebSocketResponse)> = self
            .peers
            .borrow()
            .iter()
            .map(|(id, p)| (*id, p.ws.clone()))
            .collect();
        let text = &text;
        let sends = peers
            .into_iter()
            .map(|(id, ws)| async move { (id, ws.send_str(text).await) });
        for (id, result) in kettle::gather_results(sends).await {
            if let Err(e) = result {
                eprintln!("chat: dropping peer {id}: {e}");
                self.remove(id);
            }
        }
    }
}

/// `?name=` as shown to others: control characters removed, trimmed, at most [`MAX_NAME`]
/// characters; `None` if nothing is left.
fn clean_name(raw: &str) -> Option<String> {
    let name: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_NAME)
        .collect();
    let name = name.trim_end().to_string();
    (!name.is_empty()).then_some(name)
}

/// `GET /ws`: one page's WebSocket, from the handshake to its leave notice.
async fn websocket(req: Request) -> Result<WebSocketResponse, web::Error> {
    let Some(room) = req.state::<Room>() else {
        return Err(web::HTTPInternalServerError().into());
    };
    if room.is_full() {
        return Err(web::HTTPServiceUnavailable().into());
    }
    let ws = WebSocketResponse::new()
        .max_msg_size(MAX_MESSAGE)
        .heartbeat(HEARTBEAT)
        .send_timeout(SEND_TIMEOUT);
    ws.prepare(&req).await?;

    let (id, name) = room.join(req.query().get("name"), ws.clone());
    let welcome = json!({"kind": "welcome", "id": id, "name": name, "online": room.names()});
    if ws.send_str(&welcome.to_string()).await.is_err() {
        // Gone before it was announced: nobody needs to hear that it left.
        room.remove(id);
        return Ok(ws);
    }
    room.broadcast(&json!({"kind": "join", "from": id, "name": name}))
        .await;
    converse(&room, &ws, id, &name).await;
    room.remove(id);
    room.broadcast(&json!({"kind": "leave", "from": id, "name": name}))
        .await;
    Ok(ws)
}

/// Broadcasts what the peer says until it closes, breaks the protocol or is dropped.
async fn converse(room: &Room, ws: &WebSocketResponse, id: u64, name: &str) {
    loop {
        match ws.receive().await {
            Ok(Message::Text(text)) => {
                let text = text.trim();
                if !text.is_empty() {
                    let event = json!({"kind": "message", "from": id, "name": name, "text": text});
                    room.broadcast(&event).await;
                }
            }
            Ok(Message::Binary(_)) => {
                let _ = ws
                    .close(close_code::UNSUPPORTED_DATA, "text messages only")
                    .await;
                return;
            }
            Ok(Message::Close(_)) => return,
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            // Lost connection, a protocol violation or an oversized message: Kettle has
            // already closed the socket with the matching code.
            Err(_) => return,
        }
    }
}

/// The room's application: the page at `/`, its files under `/static/`, the socket at `/ws`.
pub fn app(static_dir: PathBuf) -> Application {
    let index = static_dir.join("index.html");
    let mut app = Application::new();
    app.set_state(Room::default());
    app.router()
        .add_get("/", move |req: Request| {
            let index = index.clone();
            async move { FileResponse::new(&req, index) }
        })
        .add_get("/ws", websocket)
        .add_static("/static", static_dir);
    app
}

/// What the command line asks for.
struct Args {
    host: String,
    port: u16,
    static_dir: PathBuf,
}

/// `--host H`, `--port P` and `--static DIR`.
fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        host: "127.0.0.1".to_string(),
        port: 8080,
        static_dir: PathBuf::from(STATIC_DIR),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--host" => parsed.host = it.next().ok_or("--host needs a value")?.clone(),
            "--port" => {
                let v = it.next().ok_or("--port needs a value")?;
                parsed.port = v.parse().map_err(|_| format!("invalid port {v:?}"))?;
            }
            "--static" => {
                parsed.static_dir = PathBuf::from(it.next().ok_or("--static needs a directory")?)
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: chat [--host H] [--port P] [--static DIR])"
                ))
            }
        }
    }
    Ok(parsed)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = parse_args(&args).unwrap_or_else(|e| {
        eprintln!("chat: {e}");
        std::process::exit(2);
    });
    if !args.static_dir.join("index.html").is_file() {
        eprintln!("chat: no index.html in {}", args.static_dir.display());
        std::process::exit(2);
    }
    // Prints `======== Running on http://HOST:PORT ========` (the bound port, also for
    // `--port 0`) and stops gracefully on Ctrl+C or SIGTERM, closing every socket with 1001.
    if let Err(e) = web::run_app(app(args.static_dir), &args.host, args.port) {
        eprintln!("chat: cannot serve on {}:{}: {e}", args.host, args.port);
        std::process::exit(1);
    }
}
