//! WebSockets (RFC 6455), both ends: the frame codec, the handshake rules, permessage-deflate
//! (RFC 7692) and the open socket that `web::WebSocketResponse` (server) and
//! `client::ClientWebSocketResponse` (`session.ws_connect`) share.
//!
//! This module holds the vocabulary both ends use: [`Message`], [`CloseFrame`] and the
//! [`close_code`]s. Failures are [`crate::Error`]s of kind
//! [`ErrorKind::WebSocket`](crate::ErrorKind::WebSocket), whose
//! [`close_code`](crate::Error::close_code) says how the socket was closed.
//!
//! The codec is Kettle's own (`frame`, `handshake`, `deflate`): the crates that exist are
//! built on tokio's I/O traits or on blocking `std::io`, and owning the frame loop lets it
//! read frames straight out of the connection's buffer and write each message with one
//! syscall.
//!
//! ```no_run
//! use kettle::web::{self, Application, Request, WebSocketResponse};
//! use kettle::ws::Message;
//!
//! async fn echo(req: Request) -> Result<WebSocketResponse, web::Error> {
//!     let ws = WebSocketResponse::new();
//!     ws.prepare(&req).await?;
//!     loop {
//!         match ws.receive().await? {
//!             Message::Text(text) => ws.send_str(&text).await?,
//!             Message::Binary(data) => ws.send_bytes(data).await?,
//!             Message::Close(_) => break,
//!             _ => {}
//!         }
//!     }
//!     Ok(ws)
//! }
//!
//! let mut app = Application::new();
//! app.router().add_get("/ws", echo);
//! web::run_app(app, "127.0.0.1", 8080).unwrap();
//! ```

pub(crate) mod deflate;
pub(crate) mod frame;
mod handle;
pub(crate) mod handshake;
pub(crate) mod mask;
mod message;
pub(crate) mod socket;

pub use handle::WebSocket;
pub use message::{close_code, CloseFrame, Message};
