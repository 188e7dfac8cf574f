//! `session.get(url)` and friends: a request being built, and its body.

use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::Method;

use super::response::ClientResponse;
use super::session::ClientSession;
use super::timeout::ClientTimeout;
use crate::error::{Error, ErrorKind, Result};
use crate::web::multipart::FormField;

/// A streamed request body: pieces of bytes, sent with `Transfer-Encoding: chunked`.
pub type BodyStream = Pin<Box<dyn futures_core::Stream<Item = io::Result<Bytes>>>>;

/// A request body.
pub enum Body {
    /// No body.
    Empty,
    /// A body of known length, sent with `Content-Length`. It can be sent again for a retry or
    /// a 307/308 redirect.
    Bytes(Bytes),
    /// A body streamed as it is produced, with chunked framing. It can be sent only once, so
    /// such a request is neither retried nor redirected with its body.
    Stream(BodyStream),
}

impl Body {
    /// Whether the body can be sent a second time.
    pub(crate) fn is_replayable(&self) -> bool {
        !matches!(self, Body::Stream(_))
    }

    /// A copy for a second sending, if possible.
    pub(crate) fn replay(&self) -> Option<Body> {
        match self {
            Body::Empty => Some(Body::Empty),
            Body::Bytes(b) => Some(Body::Bytes(b.clone())),
            Body::Stream(_) => None,
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// A request being built: `session.get(url)`, `session.post(url)`, ...
///
/// Nothing is sent until [`send`](RequestBuilder::send) (or `.await` on the builder itself).
/// A builder error (an invalid header, a value that cannot be serialised) is kept and
/// returned by `send`, so calls chain without a `?` at every step.
///
/// ```no_run
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Order { tea: &'static str, cups: u32 }
///
/// # kettle::run(async {
/// let session = kettle::client::ClientSession::new();
/// let resp = session
///     .post("http://127.0.0.1:8000/orders")
///     .query(&[("urgent", "yes")])
///     .header("X-Request-Id", "42")
///     .json(&Order { tea: "oolong", cups: 2 })
///     .send()
///     .await?;
/// println!("{}", resp.status());
/// session.close().await;
/// # kettle::Result::<()>::Ok(()) });
/// ```
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    pub(crate) session: ClientSession,
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) timeout: Option<ClientTimeout>,
    pub(crate) allow_redirects: bool,
    pub(crate) max_redirects: Option<usize>,
    pub(crate) raise_for_status: Option<bool>,
    pub(crate) error: Option<Error>,
}

impl RequestBuilder {
    pub(crate) fn new(session: ClientSession, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder {
            session,
            method,
            url: url.to_string(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Body::Empty,
            timeout: None,
            allow_redirects: true,
            max_redirects: None,
            raise_for_status: None,
            error: None,
        }
    }

    fn keep_error(mut self, e: Error) -> RequestBuilder {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self
    }

    /// Adds query parameters (appended to any the URL already has, form-encoded).
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, params: &[(K, V)]) -> RequestBuilder {
        self.query.extend(
            params
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())),
        );
        self
    }

    /// Sets a header, replacing the session's default of the same name.
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.insert(n, v);
                self
            }
            _ => {
                let e = Error::with_message(
                    ErrorKind::InvalidState,
                    format!("invalid header {name:?}: {value:?}"),
                );
                self.keep_error(e)
            }
        }
    }

    /// Sets several headers at once.
    pub fn headers(mut self, headers: HeaderMap) -> RequestBuilder {
        for (name, value) in headers.iter() {
            self.headers.insert(name.clone(), value.clone());
        }
        self
    }

    /// A body of bytes, sent with `Content-Length`.
    pub fn body(mut self, body: impl Into<Bytes>) -> RequestBuilder {
        self.body = Body::Bytes(body.into());
        self
    }

    /// A body streamed piece by piece with chunked framing (an upload of unknown length).
    pub fn body_stream(
        mut self,
        stream: impl futures_core::Stream<Item = io::Result<Bytes>> + 'static,
    ) -> RequestBuilder {
        self.body = Body::Stream(Box::pin(stream));
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> RequestBuilder {
        match serde_json::to_vec(value) {
            Ok(v) => {
                self.body = Body::Bytes(v.into());
                self.set_default_type("application/json");
                self
            }
            Err(e) => self.keep_error(Error::with_source(
                ErrorKind::InvalidState,
                "cannot serialise the JSON body",
                e,
            )),
        }
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, fields: &[(K, V)]) -> RequestBuilder {
        let encoded = crate::web::urlencoded::encode(fields.iter().map(|(k, v)| (k, v)));
        self.body = Body::Bytes(encoded.into());
        self.set_default_type("application/x-www-form-urlencoded");
        self
    }

    /// A `multipart/form-data` body of text and file fields (aiohttp's `FormData`).
    pub fn multipart(mut self, fields: &[FormField]) -> RequestBuilder {
        let boundary = crate::web::multipart::random_boundary();
        self.body = Body::Bytes(crate::web::multipart::encode(fields, &boundary));
        let ct = format!("multipart/form-data; boundary={boundary}");
        if let Ok(v) = HeaderValue::from_str(&ct) {
            self.headers.insert(CONTENT_TYPE, v);
        }
        self
    }

    /// Timeouts for this request, replacing the session's.
    pub fn timeout(mut self, timeout: ClientTimeout) -> RequestBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// Whether to follow redirects (default true).
    pub fn allow_redirects(mut self, allow: bool) -> RequestBuilder {
        self.allow_redirects = allow;
        self
    }

    /// The most redirects to follow for this request.
    pub fn max_redirects(mut self, n: usize) -> RequestBuilder {
        self.max_redirects = Some(n);
        self
    }

    /// Whether a 4xx/5xx status is an error for this request, replacing the session's choice.
    pub fn raise_for_status(mut self, on: bool) -> RequestBuilder {
        self.raise_for_status = Some(on);
        self
    }

    /// Sends the request; the response's head has arrived when this returns, its body not
    /// necessarily.
    pub fn send(self) -> impl Future<Output = Result<ClientResponse>> + 'static {
        let session = self.session.clone();
        let mut prepared = session.prepare(self);
        // The future refers to `prepared` in place: moving it into a local first would give
        // every request's future a second copy of it.
        async move {
            match &mut prepared {
                Ok(p) => ClientSession::run(p).await,
                Err(e) => Err(e.clone()),
            }
        }
    }

    fn set_default_type(&mut self, ct: &'static str) {
        if !self.headers.contains_key(CONTENT_TYPE) {
            self.headers
                .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
    }
}

impl IntoFuture for RequestBuilder {
    type Output = Result<ClientResponse>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<ClientResponse>>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &self.body)
            .finish()
    }
}
