//! [`WebSocket`]: the handle on an open WebSocket that both ends use.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::frame::opcode;
use super::socket::{NextMessage, WsCore};
use super::Message;
use crate::error::{Error, Result};

/// An open WebSocket: what `session.ws_connect(url)` returns (also named
/// [`ClientWebSocketResponse`](crate::client::ClientWebSocketResponse), aiohttp's name), and
/// what a prepared [`WebSocketResponse`](crate::web::WebSocketResponse) holds.
///
/// Clones share the one connection: keep one per task that sends. One task at a time
/// receives, any number send, and frames never interleave. It is a `futures_core::Stream` of
/// messages ending with the close (aiohttp's `async for msg in ws`).
///
/// ```no_run
/// # kettle::run(async {
/// use kettle::ws::Message;
///
/// let session = kettle::client::ClientSession::new();
/// let ws = session.ws_connect("ws://127.0.0.1:8080/ws").await?;
/// ws.send_str("hello").await?;
/// if let Message::Text(reply) = ws.receive().await? {
///     println!("{reply}");
/// }
/// ws.close(1000, "").await?;
/// # kettle::Result::<()>::Ok(()) });
/// ```
pub struct WebSocket {
    core: Rc<WsCore>,
    /// The `Stream` impl's message in progress.
    next: Option<NextMessage>,
}

impl Clone for WebSocket {
    fn clone(&self) -> WebSocket {
        WebSocket {
            core: self.core.clone(),
            next: None,
        }
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("closed", &self.closed())
            .field("close_code", &self.close_code())
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    pub(crate) fn from_core(core: WsCore) -> WebSocket {
        WebSocket {
            core: Rc::new(core),
            next: None,
        }
    }

    /// The shared state, for the server's shutdown watcher and its return-time close.
    pub(crate) fn core(&self) -> &Rc<WsCore> {
        &self.core
    }

    /// The next message as a boxed future owning a handle (for `Stream` impls).
    pub(crate) fn into_next(self) -> NextMessage {
        super::socket::next_item(self.core)
    }

    /// Sends a text message.
    pub async fn send_str(&self, text: &str) -> Result<()> {
        self.core.send(opcode::TEXT, text.as_bytes()).await
    }

    /// Sends a binary message.
    pub async fn send_bytes(&self, data: impl AsRef<[u8]>) -> Result<()> {
        self.core.send(opcode::BINARY, data.as_ref()).await
    }

    /// Sends `value` as a JSON text message.
    pub async fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(Error::other)?;
        self.send_str(&text).await
    }

    /// Sends a ping (payload at most 125 bytes).
    pub async fn ping(&self, payload: impl AsRef<[u8]>) -> Result<()> {
        self.core.send_control(opcode::PING, payload.as_ref()).await
    }

    /// Sends an unsolicited pong (payload at most 125 bytes).
    pub async fn pong(&self, payload: impl AsRef<[u8]>) -> Result<()> {
        self.core.send_control(opcode::PONG, payload.as_ref()).await
    }

    /// The next message. [`Message::Close`] is the peer's close, already answered; after it
    /// (or once closed any other way) `receive` fails with `ErrorKind::WebSocket`. A peer
    /// breaking the protocol is answered with a close frame carrying the matching code, and
    /// `receive` fails with that code in [`Error::close_code`].
    pub async fn receive(&self) -> Result<Message> {
        self.core.receive().await
    }

    /// The next message, which must be text.
    pub async fn receive_str(&self) -> Result<String> {
        match self.receive().await? {
            Message::Text(t) => Ok(t),
            other => Err(unexpected(&other, "text")),
        }
    }

    /// The next message, which must be binary.
    pub async fn receive_bytes(&self) -> Result<Bytes> {
        match self.receive().await? {
            Message::Binary(b) => Ok(b),
            other => Err(unexpected(&other, "binary")),
        }
    }

    /// The next message, text holding JSON, parsed as `T`.
    pub async fn receive_json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let text = self.receive_str().await?;
        serde_json::from_str(&text).map_err(Error::other)
    }

    /// Closes the WebSocket: sends a close frame with `code` and `message` (cut to 123
    /// bytes), then waits up to the close timeout for the peer's. Closing a closed WebSocket
    /// does nothing.
    pub async fn close(&self, code: u16, message: &str) -> Result<()> {
        self.core.close(code, message).await
    }

    /// Whether the WebSocket is closed.
    pub fn closed(&self) -> bool {
        self.core.closed()
    }

    /// The close code the WebSocket ended with: the peer's (or ours when we closed for a
    /// violation), or 1006 if the connection was lost.
    pub fn close_code(&self) -> Option<u16> {
        self.core.close_code()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.core.protocol()
    }

    /// Whether messages are compressed (permessage-deflate was agreed).
    pub fn compressed(&self) -> bool {
        self.core.compressed()
    }
}

/// A `receive_*` got a message of another kind.
fn unexpected(msg: &Message, wanted: &str) -> Error {
    let got = match msg {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Close(_) => "close",
    };
    Error::websocket(format!("expected a {wanted} message, got {got}"), None)
}

impl futures_core::Stream for WebSocket {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let core = self.core.clone();
        let next = self
            .next
            .get_or_insert_with(|| super::socket::next_item(core));
        let item = std::task::ready!(next.as_mut().poll(cx));
        self.next = None;
        Poll::Ready(item)
    }
}
