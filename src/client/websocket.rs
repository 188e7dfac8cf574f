//! `session.ws_connect(url)`: the client end of a WebSocket, opened through the session's
//! own request path (its headers, cookies, timeouts and TLS), then taken off HTTP after the
//! `101`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use http::header;
use http::StatusCode;

use super::request::RequestBuilder;
use super::session::ClientSession;
use crate::error::{Error, Result};
use crate::ws::deflate::{self, Deflate};
use crate::ws::frame::Role;
use crate::ws::handshake;
use crate::ws::socket::{Io, Options, WsCore};
use crate::ws::WebSocket;

/// aiohttp's name for the client's open WebSocket.
pub type ClientWebSocketResponse = WebSocket;

/// A WebSocket connection being set up: `session.ws_connect(url)`, its options, then
/// `.await` (or [`connect`](WsConnect::connect)).
///
/// ```no_run
/// # kettle::run(async {
/// use std::time::Duration;
///
/// let session = kettle::client::ClientSession::new();
/// let ws = session
///     .ws_connect("ws://127.0.0.1:8080/ws")
///     .protocols(&["chat"])
///     .heartbeat(Duration::from_secs(30))
///     .await?;
/// assert_eq!(ws.protocol(), Some("chat"));
/// ws.send_json(&serde_json::json!({"say": "hi"})).await?;
/// ws.close(1000, "").await?;
/// # kettle::Result::<()>::Ok(()) });
/// ```
#[must_use = "a WebSocket connection does nothing until awaited"]
pub struct WsConnect {
    request: RequestBuilder,
    protocols: Vec<String>,
    opts: Options,
}

impl ClientSession {
    /// Opens a WebSocket to `url` (`ws://`, `wss://`, or `http(s)://`), aiohttp's
    /// `session.ws_connect`. The handshake is an ordinary request of this session: its
    /// default headers, cookies, timeouts and TLS settings apply, and redirects are followed.
    pub fn ws_connect(&self, url: &str) -> WsConnect {
        let http_url = if let Some(rest) = url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else {
            url.to_string()
        };
        WsConnect {
            request: self.get(&http_url),
            protocols: Vec::new(),
            opts: Options::default(),
        }
    }
}

impl WsConnect {
    /// The subprotocols to offer, in order of preference.
    pub fn protocols(mut self, protocols: &[&str]) -> WsConnect {
        self.protocols = protocols.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Adds a header to the handshake request.
    pub fn header(mut self, name: &str, value: &str) -> WsConnect {
        self.request = self.request.header(name, value);
        self
    }

    /// The `Origin` to send (browsers always do; servers may check it).
    pub fn origin(self, origin: &str) -> WsConnect {
        self.header("Origin", origin)
    }

    /// Whether pings are answered and pongs swallowed for you (default true).
    pub fn autoping(mut self, on: bool) -> WsConnect {
        self.opts.autoping = on;
        self
    }

    /// Pings after `interval` without anything received; no pong within half of it drops
    /// the connection (while a task is in `receive`).
    pub fn heartbeat(mut self, interval: Duration) -> WsConnect {
        self.opts.heartbeat = Some(interval);
        self
    }

    /// The largest message accepted (default 4 MiB; 0: no limit); larger closes with 1009.
    pub fn max_msg_size(mut self, bytes: usize) -> WsConnect {
        self.opts.max_msg_size = bytes;
        self
    }

    /// How long `receive` waits for a message (default: forever).
    pub fn receive_timeout(mut self, timeout: Duration) -> WsConnect {
        self.opts.receive_timeout = Some(timeout);
        self
    }

    /// How long the close handshake waits for the server (default 10 s).
    pub fn close_timeout(mut self, timeout: Duration) -> WsConnect {
        self.opts.close_timeout = timeout;
        self
    }

    /// How long a send may wait for a server that does not read (default 30 s).
    pub fn send_timeout(mut self, timeout: Duration) -> WsConnect {
        self.opts.send_timeout = Some(timeout);
        self
    }

    /// Whether to offer permessage-deflate (default true, as aiohttp).
    pub fn compress(mut self, on: bool) -> WsConnect {
        self.opts.compress = on;
        self
    }

    /// Performs the handshake and returns the open WebSocket. A server that does not answer
    /// `101` with the right `Sec-WebSocket-Accept` (or picks a protocol or extension that
    /// was not offered) is an `ErrorKind::WebSocket` error.
    pub async fn connect(self) -> Result<WebSocket> {
        let key = handshake::new_client_key();
        // A refused handshake is a WebSocket error whatever the session's raise_for_status
        // (aiohttp's WSServerHandshakeError).
        let mut request = self
            .request
            .raise_for_status(false)
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Version", handshake::VERSION)
            .header("Sec-WebSocket-Key", &key);
        if !self.protocols.is_empty() {
            request = request.header("Sec-WebSocket-Protocol", &self.protocols.join(", "));
        }
        if self.opts.compress {
            request = request.header("Sec-WebSocket-Extensions", deflate::CLIENT_OFFER);
        }
        let mut resp = request.send().await?;
        let url = resp.url().clone();
        let refused = |why: String| {
            Error::websocket(
                format!("WebSocket handshake with {url} failed: {why}"),
                None,
            )
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(refused(format!(
                "the server answered {} instead of 101",
                resp.status()
            )));
        }
        let headers = resp.headers();
        if !handshake::has_token(headers, header::UPGRADE, "websocket")
            || !handshake::has_token(headers, header::CONNECTION, "upgrade")
        {
            return Err(refused("no 'Upgrade: websocket' in the 101".into()));
        }
        let expected = handshake::accept_key(key.as_bytes());
        if headers
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .is_none_or(|v| v.as_bytes() != expected.as_bytes())
        {
            return Err(refused("wrong Sec-WebSocket-Accept".into()));
        }
        let protocol = match handshake::offered_protocols(headers).as_slice() {
            [] => None,
            [p] if self.protocols.iter().any(|o| o == p) => Some(p.to_string()),
            other => {
                return Err(refused(format!(
                    "the server chose a protocol that was not offered: {}",
                    other.join(", ")
                )))
            }
        };
        let answer = deflate::read_answer(
            headers
                .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
        .map_err(&refused)?;
        if answer.is_some() && !self.opts.compress {
            return Err(refused(
                "the server enabled compression that was not offered".into(),
            ));
        }
        let conn = resp
            .upgraded
            .take()
            .ok_or_else(|| refused("the connection was not kept after the 101".into()))?;
        let (transport, rbuf) = conn.into_upgraded();
        let core = WsCore::new(
            Io::Client(transport),
            Role::Client,
            self.opts,
            protocol,
            rbuf,
            answer.map(|p| Deflate::new(p, false)),
        );
        Ok(WebSocket::from_core(core))
    }
}

impl IntoFuture for WsConnect {
    type Output = Result<WebSocket>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<WebSocket>>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.connect())
    }
}
