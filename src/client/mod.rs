//! aiohttp's client: [`ClientSession`], its requests and responses, on Kettle's loop.
//!
//! ```no_run
//! // Seed 003: fetch a page and print the status, then the body.
//! use kettle::client::ClientSession;
//!
//! #[kettle::main]
//! async fn main() -> kettle::Result<()> {
//!     let session = ClientSession::new();
//!     let mut res = session.get("http://127.0.0.1:8000/").send().await?;
//!     println!("{}", res.status());
//!     println!("{}", res.text().await?);
//!     session.close().await;
//!     Ok(())
//! }
//! ```
//!
//! The pieces, each in its own file:
//!
//! * `session`: [`ClientSession`] and its builder; the request loop (one exchange, the one
//!   safe retry on a pooled connection the server had closed, redirects, cookies).
//! * `request`: [`RequestBuilder`] and [`Body`].
//! * `response`, `content`: [`ClientResponse`] and its streaming body [`Content`], which owns
//!   the connection until the body is read (then the connection goes back to the pool).
//! * `pool`: keep-alive connections per origin under `limit` and `limit_per_host`, FIFO
//!   waiting, idle expiry, stale-connection detection.
//! * `conn`: one connection (TCP or TLS), driving the client role of `crate::http`.
//! * `timeout`: [`ClientTimeout`] (total, connect, sock_connect, sock_read).
//! * `cookie_jar`: [`CookieJar`] with RFC 6265's rules.
//! * `decompress`: gzip, deflate and br bodies, decoded as they stream.
//! * `websocket`: [`ClientSession::ws_connect`] and [`WsConnect`]; the open socket is a
//!   [`ClientWebSocketResponse`] ([`crate::ws::WebSocket`]).
//! * `error`: the errors, each of an [`ErrorKind`](crate::ErrorKind) that says what failed:
//!   `Connect`, `Timeout`, `Tls`, `InvalidResponse`, `TooManyRedirects`, `Status`, `Io`,
//!   `InvalidUrl`.

mod conn;
mod content;
mod cookie_jar;
mod decompress;
mod error;
mod pool;
mod request;
mod response;
mod session;
mod timeout;
mod websocket;

/// The TLS configuration a session uses for https URLs (from [`crate::tls`]).
pub use crate::tls::TlsConnector;
pub use content::{Chunks, Content};
pub use cookie_jar::{Cookie, CookieJar};
pub use request::{Body, BodyStream, RequestBuilder};
pub use response::ClientResponse;
pub use session::{ClientSession, ClientSessionBuilder, ConnectorStats};
pub use timeout::ClientTimeout;
/// URLs as the client takes and reports them (the `url` crate's type).
pub use url::Url;
pub use websocket::{ClientWebSocketResponse, WsConnect};
