//! `kettle::web`: an aiohttp.web-style HTTP/1.1 server framework.
//!
//! ```no_run
//! use kettle::web::{self, Application, Request, Response};
//!
//! async fn index(_req: Request) -> Response {
//!     Response::html("<h1>Index</h1>")
//! }
//!
//! async fn hello(req: Request) -> Response {
//!     let name = req.match_info().get("name").unwrap_or("world");
//!     Response::html(format!("<h1>hello, {name}!</h1>"))
//! }
//!
//! let mut app = Application::new();
//! app.router().add_get("/", index).add_get("/hello/{name}", hello);
//! web::run_app(app, "127.0.0.1", 8000).unwrap();
//! ```
//!
//! The layout follows aiohttp's vocabulary: [`Application`] and its [`router`](Router),
//! [`Request`], [`Response`] / [`StreamResponse`] / [`FileResponse`], the exceptions
//! (`HTTPNotFound()`, `HTTPFound(location)`, ...), [`cookies`], forms ([`urlencoded`],
//! [`multipart`]), middlewares ([`Next`]), [`AppRunner`] and [`run_app`], and
//! [`TestClient`] for tests. The protocol itself (strict HTTP/1.1 parsing, limits,
//! keep-alive, pipelining, timeouts) lives in `web::protocol` over the crate's `http` codec.

mod app;
mod body;
pub mod compression;
pub mod cookies;
mod error;
mod exceptions;
mod handler;
pub mod multidict;
pub mod multipart;
mod out_queue;
mod protocol;
mod recycle;
mod request;
mod response;
pub mod router;
mod runner;
mod static_files;
mod stream_response;
mod test_client;
pub mod urlencoded;
mod websocket;
mod workers;

/// The `http` crate's vocabulary types, re-exported so an application needs no direct
/// dependency on it.
pub use ::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
pub use app::{App, Application, DEFAULT_CLIENT_MAX_SIZE};
pub use body::BodyReader;
pub use compression::{compression_middleware, ContentCoding};
pub use cookies::{CookieOptions, SameSite};
pub use error::Error;
pub use exceptions::*;
pub use handler::{Handler, LocalBoxFuture, Middleware, Next};
pub use multidict::MultiDict;
pub use request::{Form, MatchInfo, Request};
pub use response::{json_response, IntoResponse, Json, Response};
pub use router::{delete, get, head, patch, post, put, route, RouteDef, Router};
pub use runner::{run_app, run_app_with, AppRunner, ListenerMode, ServerOptions};
pub use static_files::FileResponse;
pub use stream_response::StreamResponse;
pub use test_client::{TestClient, TestResponse};
pub use websocket::WebSocketResponse;
pub use workers::{run_app_workers, AppGroup};

pub(crate) use protocol::ConnIo;
