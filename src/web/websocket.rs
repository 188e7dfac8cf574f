//! `WebSocketResponse` (aiohttp's `web.WebSocketResponse`): the server end of a WebSocket,
//! taking over the request's connection after a `101 Switching Protocols`.

use std::cell::OnceCell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::error::Error;
use super::exceptions::{HTTPBadRequest, HttpException};
use super::request::Request;
use super::response::{IntoResponse, Response};
use crate::ws::deflate::{self, Deflate};
use crate::ws::frame::Role;
use crate::ws::handshake;
use crate::ws::socket::{Io, NextMessage, Options, WsCore};
use crate::ws::{Message, WebSocket};

/// The server side of a WebSocket: `prepare` answers the handshake, then messages go both
/// ways until one end closes.
///
/// It is a cheap handle: clones share the one connection, so a chat server can keep a clone
/// of every open socket and broadcast from any task. One task at a time receives; any number
/// may send (frames never interleave). It is also a `futures_core::Stream` of messages that
/// ends with the close (aiohttp's `async for msg in ws`).
///
/// ```no_run
/// use kettle::web::{self, Request, WebSocketResponse};
/// use kettle::ws::Message;
///
/// async fn echo(req: Request) -> Result<WebSocketResponse, web::Error> {
///     let ws = WebSocketResponse::new().protocols(&["chat"]);
///     ws.prepare(&req).await?;
///     while let Ok(msg) = ws.receive().await {
///         match msg {
///             Message::Text(t) if t == "close" => ws.close(1000, "bye").await?,
///             Message::Text(t) => ws.send_str(&format!("{t}/answer")).await?,
///             Message::Binary(b) => ws.send_bytes(b).await?,
///             Message::Close(_) => break,
///             _ => {}
///         }
///     }
///     Ok(ws)
/// }
/// ```
///
/// What is enforced for you, with the close code the peer gets: frames from the client must
/// be masked (1002); text must be UTF-8 (1007); a message over `max_msg_size` (4 MiB by
/// default) is refused from its first frame's head (1009); control frames are at most 125
/// bytes and never fragmented (1002); pings are answered (`autoping`); a server shutting down
/// closes every WebSocket with 1001.
pub struct WebSocketResponse {
    opts: Options,
    protocols: Rc<[String]>,
    headers: HeaderMap,
    socket: Rc<OnceCell<WebSocket>>,
    /// The `Stream` impl's message in progress.
    next: Option<NextMessage>,
}

impl Clone for WebSocketResponse {
    fn clone(&self) -> WebSocketResponse {
        WebSocketResponse {
            opts: self.opts.clone(),
            protocols: self.protocols.clone(),
            headers: self.headers.clone(),
            socket: self.socket.clone(),
            next: None,
        }
    }
}

impl Default for WebSocketResponse {
    fn default() -> WebSocketResponse {
        WebSocketResponse::new()
    }
}

impl std::fmt::Debug for WebSocketResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketResponse")
            .field("prepared", &self.socket.get().is_some())
            .field("closed", &self.closed())
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}

/// What a valid handshake asks for.
struct Handshake {
    accept: String,
    protocol: Option<String>,
    deflate: Option<deflate::Params>,
}

impl WebSocketResponse {
    /// A WebSocket with aiohttp's defaults: autoping on, no heartbeat, 4 MiB messages, a
    /// 10 s close handshake, compression if the client offers it.
    pub fn new() -> WebSocketResponse {
        WebSocketResponse {
            opts: Options::default(),
            protocols: Rc::from(Vec::new()),
            headers: HeaderMap::new(),
            socket: Rc::new(OnceCell::new()),
            next: None,
        }
    }

    /// The subprotocols this server speaks; the first one the client offers is chosen and
    /// answered in `Sec-WebSocket-Protocol`. Without a match the handshake still succeeds,
    /// with no protocol (as aiohttp, and as RFC 6455 allows).
    pub fn protocols(mut self, protocols: &[&str]) -> WebSocketResponse {
        self.protocols = protocols.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Whether pings are answered and pongs swallowed for you (default true). With `false`,
    /// `receive` returns them as [`Message::Ping`] and [`Message::Pong`].
    pub fn autoping(mut self, on: bool) -> WebSocketResponse {
        self.opts.autoping = on;
        self
    }

    /// Sends a ping after `interval` without anything received, and drops the connection
    /// (close code 1006, a `Timeout` error from `receive`) if no pong comes within half of
    /// it. The heartbeat runs while a task is in `receive` (the usual receive loop).
    pub fn heartbeat(mut self, interval: Duration) -> WebSocketResponse {
        self.opts.heartbeat = Some(interval);
        self
    }

    /// The largest message accepted, in bytes (default 4 MiB; 0: no limit). A larger one
    /// closes the WebSocket with 1009.
    pub fn max_msg_size(mut self, bytes: usize) -> WebSocketResponse {
        self.opts.max_msg_size = bytes;
        self
    }

    /// How long `receive` waits for a message before a `Timeout` error (default: forever).
    pub fn receive_timeout(mut self, timeout: Duration) -> WebSocketResponse {
        self.opts.receive_timeout = Some(timeout);
        self
    }

    /// How long the close handshake waits for the peer's close (default 10 s); then the
    /// connection is dropped.
    pub fn close_timeout(mut self, timeout: Duration) -> WebSocketResponse {
        self.opts.close_timeout = timeout;
        self
    }

    /// How long a send may wait for a peer that does not read (default 30 s); then the
    /// connection is dropped and the send fails with `Timeout`.
    pub fn send_timeout(mut self, timeout: Duration) -> WebSocketResponse {
        self.opts.send_timeout = Some(timeout);
        self
    }

    /// Whether to accept permessage-deflate when the client offers it (default true).
    pub fn compress(mut self, on: bool) -> WebSocketResponse {
        self.opts.compress = on;
        self
    }

    /// Adds a header to the `101` response (a cookie, say).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> WebSocketResponse {
        self.headers.append(name, value);
        self
    }

    /// Whether `req` is a WebSocket handshake this response can accept (aiohttp's
    /// `can_prepare`).
    pub fn can_prepare(&self, req: &Request) -> bool {
        self.check(req).is_ok()
    }

    /// Checks the handshake (RFC 6455 §4.2.1) and what it asks for.
    fn check(&self, req: &Request) -> Result<Handshake, Box<HttpException>> {
        let bad = |why: &str| HTTPBadRequest().with_text(why.to_string());
        if req.method() != Method::GET {
            return Err(Box::new(bad("a WebSocket handshake must be a GET request")));
        }
        if req.version() < Version::HTTP_11 {
            return Err(Box::new(bad("a WebSocket handshake needs HTTP/1.1")));
        }
        let headers = req.headers();
        if !handshake::has_token(headers, header::UPGRADE, "websocket") {
            return Err(Box::new(bad("no 'Upgrade: websocket' header")));
        }
        if !handshake::has_token(headers, header::CONNECTION, "upgrade") {
            return Err(Box::new(bad("no 'Connection: Upgrade' header")));
        }
        let version = headers.get(header::SEC_WEBSOCKET_VERSION);
        if version.is_none_or(|v| v.as_bytes() != handshake::VERSION.as_bytes()) {
            // §4.4: say which version we speak.
            return Err(Box::new(
                bad("unsupported WebSocket version (13 is supported)").with_header(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static(handshake::VERSION),
                ),
            ));
        }
        // §11.3.1 and §11.3.5: each may appear once; two keys or versions leave it
        // ambiguous what is being agreed to.
        for once in [header::SEC_WEBSOCKET_KEY, header::SEC_WEBSOCKET_VERSION] {
            if headers.get_all(&once).iter().count() > 1 {
                return Err(Box::new(bad(&format!("more than one {once} header"))));
            }
        }
        let key = match headers.get(header::SEC_WEBSOCKET_KEY) {
            Some(k) if handshake::is_valid_client_key(k.as_bytes()) => k,
            _ => return Err(Box::new(bad("missing or invalid Sec-WebSocket-Key"))),
        };
        if req.content_length().is_some_and(|n| n > 0)
            || headers.contains_key(header::TRANSFER_ENCODING)
        {
            return Err(Box::new(bad("a WebSocket handshake has no body")));
        }
        let deflate = if self.opts.compress {
            deflate::accept_offer(
                headers
                    .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            )
        } else {
            None
        };
        Ok(Handshake {
            accept: handshake::accept_key(key.as_bytes()),
            protocol: handshake::select_protocol(headers, &self.protocols),
            deflate,
        })
    }

    /// Answers the handshake: checks it (a `400` error if it is not a valid WebSocket
    /// request), sends `101 Switching Protocols` and takes the connection over.
    pub async fn prepare(&self, req: &Request) -> Result<(), Error> {
        if self.socket.get().is_some() {
            return Err(crate::Error::invalid_state("the WebSocket is already prepared").into());
        }
        let hs = self.check(req).map_err(|e| Error::from(*e))?;
        let conn = req.conn();
        conn.set_head_sent();
        conn.set_must_close();
        conn.with_out(|out| {
            out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
            out.extend_from_slice(hs.accept.as_bytes());
            if let Some(p) = &hs.protocol {
                out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
                out.extend_from_slice(p.as_bytes());
            }
            if let Some(d) = &hs.deflate {
                out.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
                out.extend_from_slice(d.response_header().as_bytes());
            }
            for (name, value) in &self.headers {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
            }
            out.extend_from_slice(b"\r\n\r\n");
        });
        conn.flush()
            .await
            .map_err(|e| crate::Error::with_source(crate::ErrorKind::Io, "sending the 101", e))?;
        let core = WsCore::new(
            Io::Server(conn.clone()),
            Role::Server,
            self.opts.clone(),
            hs.protocol,
            conn.take_read_buffer(),
            hs.deflate.map(|p| Deflate::new(p, true)),
        );
        let socket = WebSocket::from_core(core);
        watch_shutdown(&socket, conn.server_shared());
        let _ = self.socket.set(socket);
        Ok(())
    }

    /// The open WebSocket behind this response, once prepared (a plain
    /// [`WebSocket`](crate::ws::WebSocket) handle, the type the client side has too).
    pub fn socket(&self) -> Option<&WebSocket> {
        self.socket.get()
    }

    fn open(&self) -> crate::Result<&WebSocket> {
        self.socket
            .get()
            .ok_or_else(|| crate::Error::invalid_state("call prepare() before using the WebSocket"))
    }

    /// Sends a text message.
    pub async fn send_str(&self, text: &str) -> crate::Result<()> {
        self.open()?.send_str(text).await
    }

    /// Sends a binary message.
    pub async fn send_bytes(&self, data: impl AsRef<[u8]>) -> crate::Result<()> {
        self.open()?.send_bytes(data).await
    }

    /// Sends `value` as a JSON text message.
    pub async fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> crate::Result<()> {
        self.open()?.send_json(value).await
    }

    /// Sends a ping (payload at most 125 bytes).
    pub async fn ping(&self, payload: impl AsRef<[u8]>) -> crate::Result<()> {
        self.open()?.ping(payload).await
    }

    /// Sends an unsolicited pong (payload at most 125 bytes).
    pub async fn pong(&self, payload: impl AsRef<[u8]>) -> crate::Result<()> {
        self.open()?.pong(payload).await
    }

    /// The next message. [`Message::Close`] is the peer's close, already answered; after it
    /// (or once closed any other way) `receive` fails with `ErrorKind::WebSocket`.
    pub async fn receive(&self) -> crate::Result<Message> {
        self.open()?.receive().await
    }

    /// The next message, which must be text.
    pub async fn receive_str(&self) -> crate::Result<String> {
        self.open()?.receive_str().await
    }

    /// The next message, which must be binary.
    pub async fn receive_bytes(&self) -> crate::Result<Bytes> {
        self.open()?.receive_bytes().await
    }

    /// The next message, text holding JSON, parsed as `T`.
    pub async fn receive_json<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        self.open()?.receive_json().await
    }

    /// Closes the WebSocket: sends a close frame with `code` and `message`, then waits (up to
    /// `close_timeout`) for the client's. Closing a closed WebSocket does nothing.
    pub async fn close(&self, code: u16, message: &str) -> crate::Result<()> {
        self.open()?.close(code, message).await
    }

    /// Whether the WebSocket is closed.
    pub fn closed(&self) -> bool {
        self.socket.get().is_some_and(WebSocket::closed)
    }

    /// The close code the WebSocket ended with: the client's (or ours when we closed for a
    /// violation), or 1006 if the connection was lost.
    pub fn close_code(&self) -> Option<u16> {
        self.socket.get().and_then(WebSocket::close_code)
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.socket.get().and_then(WebSocket::protocol)
    }

    /// Whether messages are compressed (permessage-deflate was agreed).
    pub fn compressed(&self) -> bool {
        self.socket.get().is_some_and(WebSocket::compressed)
    }
}

impl futures_core::Stream for WebSocketResponse {
    type Item = crate::Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(ws) = self.socket.get().cloned() else {
            return Poll::Ready(Some(Err(crate::Error::invalid_state(
                "call prepare() before using the WebSocket",
            ))));
        };
        let next = self.next.get_or_insert_with(|| ws.into_next());
        let item = std::task::ready!(next.as_mut().poll(cx));
        self.next = None;
        Poll::Ready(item)
    }
}

impl IntoResponse for WebSocketResponse {
    fn into_response(self) -> Response {
        if self.socket.get().is_none() {
            tracing::error!("a handler returned a WebSocketResponse it never prepared");
            return super::error::internal_error();
        }
        // Returned while still open: end it properly with a 1000, as aiohttp does, rather
        // than a bare FIN the client would report as 1006.
        if let Some(ws) = self.socket.get() {
            ws.core().close_on_return();
        }
        Response::sent(true).with_status(StatusCode::SWITCHING_PROTOCOLS)
    }
}

/// Closes `socket` with 1001 as soon as the server starts shutting down, even if its handler
/// is neither receiving nor sending at that moment (a receive loop or a send would notice by
/// itself; an idle handler would otherwise hold the shutdown until `shutdown_timeout`).
///
/// The task holds only a weak reference and the shutdown signal, so it keeps neither the
/// WebSocket nor its connection alive, and it ends as soon as the WebSocket is closed or
/// dropped.
fn watch_shutdown(socket: &WebSocket, shared: Rc<super::protocol::ServerShared>) {
    let core = Rc::downgrade(socket.core());
    let done = socket.core().done_signal();
    crate::spawn(async move {
        let mut closing = pin!(shared.closing.wait());
        let mut finished = pin!(done.wait());
        let shutdown = poll_fn(|cx| {
            if finished.as_mut().poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            closing.as_mut().poll(cx).map(|()| true)
        })
        .await;
        if !shutdown {
            return;
        }
        if let Some(core) = core.upgrade() {
            let _ = core
                .close(crate::ws::close_code::GOING_AWAY, "server shutting down")
                .await;
        }
    });
}
