//! `Request` (aiohttp's `web.Request`): the head, the path parameters the router matched,
//! lazily parsed query and cookies, and the body — read whole (`read`, `text`, `json`,
//! `post`) or piece by piece (`content`).

use std::cell::OnceCell;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Version};

use super::app::App;
use super::body::{BodyReader, ReadError};
use super::error::Error;
use super::exceptions::{HTTPBadRequest, HTTPRequestEntityTooLarge};
use super::multidict::MultiDict;
use super::multipart::{self, FormField};
use super::protocol::ConnIo;
use super::recycle::Slot;
use super::router::Params;
use super::urlencoded;
use crate::http::head::RequestHead;

/// An HTTP request, as a handler receives it.
///
/// ```
/// use kettle::web::{Request, Response};
///
/// async fn hello(req: Request) -> Response {
///     let name = req.match_info().get("name").unwrap_or("Anonymous");
///     let lang = req.query().get("lang").unwrap_or("en").to_string();
///     Response::html(format!("<h1>hello, {name}! ({lang})</h1>"))
/// }
/// ```
pub struct Request {
    // Boxed: a request is moved through several layers (router, middlewares, the handler's
    // future); moving a pointer instead of ~400 bytes is measurably cheaper per request.
    // The box goes back to the connection when the request drops (see `Drop`), so a
    // keep-alive connection allocates it once. `ManuallyDrop` only so `Drop` can take it.
    inner: ManuallyDrop<Box<Inner>>,
}

/// An allocation for a connection's next request.
pub(crate) type RequestSlot = Slot<Inner>;

pub(crate) struct Inner {
    head: RequestHead,
    /// Built from the head's field positions the first time a handler asks.
    headers: OnceCell<HeaderMap>,
    /// Where the path ends in the target (the `?` or the end).
    path_end: usize,
    path: OnceCell<String>,
    query: OnceCell<MultiDict>,
    cookies: OnceCell<MultiDict>,
    match_info: MatchInfo,
    remote: Option<SocketAddr>,
    app: App,
    body: BodyReader,
    /// The body once read whole, so `read`/`text`/`json` can be called again.
    cached: Option<Bytes>,
    conn: Rc<ConnIo>,
}

/// The path parameters the router matched (aiohttp's `request.match_info`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    params: Params,
    route_name: Option<Rc<str>>,
    /// The sub-application that matched; `None` when the top-level application did.
    app: Option<App>,
}

impl MatchInfo {
    pub(crate) fn new(params: Params, route_name: Option<Rc<str>>) -> MatchInfo {
        MatchInfo {
            params,
            route_name,
            app: None,
        }
    }

    pub(crate) fn set_app(&mut self, app: App) {
        self.app = Some(app);
    }

    /// The sub-application whose router matched, or `None` when the top-level application's
    /// did (aiohttp's `match_info.apps[-1]`).
    pub fn subapp(&self) -> Option<&App> {
        self.app.as_ref()
    }

    /// The percent-decoded value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// All parameters, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter()
    }

    /// The name of the matched route, if it was given one.
    pub fn route_name(&self) -> Option<&str> {
        self.route_name.as_deref()
    }
}

impl Request {
    pub(crate) fn new(
        head: RequestHead,
        remote: Option<SocketAddr>,
        app: App,
        body: BodyReader,
        conn: Rc<ConnIo>,
    ) -> Request {
        let target = head.target();
        // Most targets are short, where a plain scan beats memchr's setup.
        let query_at = if target.len() < 64 {
            target.iter().position(|&b| b == b'?')
        } else {
            memchr::memchr(b'?', target)
        };
        let path_end = query_at.unwrap_or(target.len());
        let slot = conn.spare_request().unwrap_or_else(Slot::new);
        let inner = slot.fill(Inner {
            head,
            headers: OnceCell::new(),
            path_end,
            path: OnceCell::new(),
            query: OnceCell::new(),
            cookies: OnceCell::new(),
            match_info: MatchInfo::default(),
            remote,
            app,
            body,
            cached: None,
            conn,
        });
        Request {
            inner: ManuallyDrop::new(inner),
        }
    }

    pub(crate) fn set_match_info(&mut self, match_info: MatchInfo) {
        self.inner.match_info = match_info;
    }

    pub(crate) fn set_app(&mut self, app: App) {
        self.inner.app = app;
    }

    /// The application that routed the request: the innermost sub-application that matched,
    /// or the top-level one.
    fn matched_app(&self) -> &App {
        self.inner
            .match_info
            .app
            .as_ref()
            .unwrap_or(&self.inner.app)
    }

    pub(crate) fn conn(&self) -> &Rc<ConnIo> {
        &self.inner.conn
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.inner.head.method
    }

    /// The protocol version (HTTP/1.0 or HTTP/1.1).
    pub fn version(&self) -> Version {
        self.inner.head.version
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        // Most handlers never look at the headers; building the map only when asked saves a
        // hash insert and a reference count per field on every other request.
        self.inner.headers.get_or_init(|| {
            let spare = self.inner.conn.spare_headers();
            self.inner.head.header_map(spare)
        })
    }

    fn target(&self) -> &str {
        // The head parser checked that the target is UTF-8.
        self.inner.head.target_str()
    }

    /// The request target as sent: path and query, still percent-encoded (aiohttp's
    /// `raw_path`).
    pub fn raw_path(&self) -> &str {
        self.target()
    }

    /// The path without the query, percent-decoded (aiohttp's `path`). Bytes that do not
    /// decode to UTF-8 are shown as U+FFFD.
    pub fn path(&self) -> &str {
        let raw = &self.target()[..self.inner.path_end];
        if !raw.contains('%') {
            return raw;
        }
        self.inner.path.get_or_init(|| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .into_owned()
        })
    }

    /// The raw, still encoded path without the query, as the router matches it.
    pub(crate) fn raw_path_only(&self) -> &str {
        &self.target()[..self.inner.path_end]
    }

    /// The query string without the `?` (empty if none).
    pub fn query_string(&self) -> &str {
        self.target().get(self.inner.path_end + 1..).unwrap_or("")
    }

    /// The query parameters, decoded; a key may repeat (aiohttp's `request.query`).
    pub fn query(&self) -> &MultiDict {
        self.inner
            .query
            .get_or_init(|| urlencoded::parse(self.query_string()))
    }

    /// The parameters the route pattern matched.
    pub fn match_info(&self) -> &MatchInfo {
        &self.inner.match_info
    }

    /// Cookies sent by the client (from every `Cookie` header).
    pub fn cookies(&self) -> &MultiDict {
        self.inner.cookies.get_or_init(|| {
            let mut all = MultiDict::new();
            for value in self.headers().get_all(header::COOKIE) {
                // Not `to_str`, which refuses any byte above 0x7F: one cookie with UTF-8 in
                // it (stored by some script on the domain) made the whole header, session
                // cookie included, disappear. UTF-8 is read as is; other bytes become U+FFFD
                // in the cookie that holds them only.
                let text = String::from_utf8_lossy(value.as_bytes());
                for (k, v) in super::cookies::parse_cookie_header(&text) {
                    all.add(k, v);
                }
            }
            all
        })
    }

    /// Whether the request came over TLS (aiohttp's `request.secure`).
    pub fn secure(&self) -> bool {
        self.inner.conn.is_tls()
    }

    /// `"https"` over TLS, `"http"` otherwise (aiohttp's `request.scheme`, without its
    /// proxy-header handling).
    pub fn scheme(&self) -> &'static str {
        if self.secure() {
            "https"
        } else {
            "http"
        }
    }

    /// The peer's IP address as text (aiohttp's `request.remote`).
    pub fn remote(&self) -> Option<String> {
        self.inner.remote.map(|a| a.ip().to_string())
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.remote
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    }

    /// The declared body length: the `Content-Length` header's value, `None` without one
    /// (a chunked body, or a request with no body such as a plain GET), as in aiohttp.
    pub fn content_length(&self) -> Option<u64> {
        match self.inner.head.framing {
            // The head parser frames a request without Content-Length as a zero-length body;
            // reporting that as a declared `Some(0)` differed from aiohttp, whose `None`
            // handlers use to tell "no length sent" apart. Only zero needs the header lookup.
            crate::http::head::Framing::Length(0) if !self.inner.head.has_content_length => None,
            crate::http::head::Framing::Length(n) => Some(n),
            crate::http::head::Framing::Chunked => None,
        }
    }

    /// The media type of the body without parameters, lowercased;
    /// `application/octet-stream` when the header is missing, as in aiohttp.
    pub fn content_type(&self) -> String {
        let raw = self
            .content_type_header()
            .unwrap_or("application/octet-stream");
        raw.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// The `charset` parameter of the content type.
    pub fn charset(&self) -> Option<String> {
        self.charset_param().map(str::to_ascii_lowercase)
    }

    /// The `charset` parameter as sent (unquoted, not lowercased), without allocating.
    fn charset_param(&self) -> Option<&str> {
        let raw = self.content_type_header()?;
        raw.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"'))
        })
    }

    fn content_type_header(&self) -> Option<&str> {
        self.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
    }

    /// Whether the client asked to keep the connection open.
    pub fn keep_alive(&self) -> bool {
        self.inner.head.keep_alive
    }

    /// The application serving this request (its state, `url_for`), aiohttp's
    /// `request.app`. With [sub-applications](super::Application::add_subapp) it is the one
    /// whose code is running: in the handler, the innermost sub-application that matched;
    /// in a middleware, the application that added that middleware.
    pub fn app(&self) -> &App {
        &self.inner.app
    }

    /// Shared state of type `T` of [`app()`](Self::app), registered with
    /// [`Application::set_state`](super::Application::set_state) (aiohttp's
    /// `request.app[key]`). Only that application's state: use [`config`](Self::config) to
    /// look in the applications above a sub-application too.
    pub fn state<T: 'static>(&self) -> Option<Rc<T>> {
        self.inner.app.state::<T>()
    }

    /// Shared state of type `T` looked up from the innermost application that matched
    /// outwards: the sub-application's own, else its parent's, and so on up to the
    /// top-level application (aiohttp's `request.config_dict`). The same from a middleware
    /// as from the handler; without sub-applications it is [`state`](Self::state).
    pub fn config<T: 'static>(&self) -> Option<Rc<T>> {
        self.matched_app().config::<T>()
    }

    /// Whether the request has a body still to be read.
    pub fn can_read_body(&self) -> bool {
        self.inner.cached.is_none() && !self.inner.body.is_done()
    }

    /// The whole body (aiohttp's `await request.read()`). A body larger than the
    /// application's `client_max_size` is a 413 error; one that stops early (the client
    /// disconnects) or stalls past the read timeout is a 400. For a request routed into a
    /// sub-application, its `client_max_size` is the limit, also when a parent's middleware
    /// reads the body.
    pub async fn read(&mut self) -> Result<Bytes, Error> {
        if let Some(b) = &self.inner.cached {
            return Ok(b.clone());
        }
        let limit = self.matched_app().client_max_size();
        let body = self
            .inner
            .body
            .read_to_end(limit)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge { actual } => HTTPRequestEntityTooLarge(limit, actual).into(),
                ReadError::Bad(reason) => Error::from(HTTPBadRequest().with_text(reason)),
            })?;
        self.inner.cached = Some(body.clone());
        Ok(body)
    }

    /// The body as text, decoded with the declared charset: ISO-8859-1 (`latin-1`) and
    /// US-ASCII are decoded as such, UTF-8 is the default and is also used for any other
    /// charset; invalid sequences become U+FFFD.
    pub async fn text(&mut self) -> Result<String, Error> {
        let body = self.read().await?;
        // The charset used to be ignored, so a latin-1 form (a byte 0xE9 for é) came out as
        // U+FFFD. Only the single-byte charsets that map bytes straight onto code points
        // are decoded here; no table, no dependency.
        let single_byte = self.charset_param().and_then(|cs| {
            const LATIN1: [&str; 6] = [
                "iso-8859-1",
                "iso8859-1",
                "iso_8859-1",
                "latin-1",
                "latin1",
                "l1",
            ];
            const ASCII: [&str; 3] = ["us-ascii", "ascii", "us"];
            if LATIN1.iter().any(|n| cs.eq_ignore_ascii_case(n)) {
                Some(u8::MAX)
            } else if ASCII.iter().any(|n| cs.eq_ignore_ascii_case(n)) {
                Some(0x7F)
            } else {
                None
            }
        });
        Ok(match single_byte {
            Some(max) => body
                .iter()
                .map(|&b| if b <= max { char::from(b) } else { '\u{FFFD}' })
                .collect(),
            None => String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// The body parsed as JSON into `T`; malformed JSON or the wrong shape is a 400 naming
    /// the problem.
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let body = self.read().await?;
        serde_json::from_slice(&body).map_err(|e| {
            HTTPBadRequest()
                .with_text(format!("invalid JSON body: {e}"))
                .into()
        })
    }

    /// A form body (aiohttp's `await request.post()`): `application/x-www-form-urlencoded`
    /// or `multipart/form-data` (with file fields). Any other content type gives an empty
    /// form, as in aiohttp; a malformed multipart body is a 400.
    pub async fn post(&mut self) -> Result<Form, Error> {
        let content_type = self.content_type();
        if content_type == "application/x-www-form-urlencoded" {
            let body = self.read().await?;
            return Ok(Form {
                fields: urlencoded::parse(&body),
                files: Vec::new(),
            });
        }
        if content_type != "multipart/form-data" {
            return Ok(Form::default());
        }
        let raw = self.content_type_header().unwrap_or("").to_string();
        let boundary = multipart::boundary(&raw)
            .map_err(|e| HTTPBadRequest().with_text(format!("bad multipart body: {e}")))?;
        let body = self.read().await?;
        let parts = multipart::parse(body, &boundary, &multipart::MultipartLimits::default())
            .map_err(|e| HTTPBadRequest().with_text(format!("bad multipart body: {e}")))?;
        let mut form = Form::default();
        for part in parts {
            if part.filename.is_some() {
                form.files.push(part);
            } else {
                form.fields.add(
                    part.name.clone(),
                    String::from_utf8_lossy(&part.data).into_owned(),
                );
            }
        }
        Ok(form)
    }

    /// The body as it arrives, chunk by chunk, without buffering it whole (aiohttp's
    /// `request.content`). Mixing it with [`read`](Self::read) gives `read` what is left.
    pub fn content(&mut self) -> &mut BodyReader {
        &mut self.inner.body
    }

    /// Builds the URL path of the named route (aiohttp's `request.app.router[name].url_for`):
    /// a route of [`app()`](Self::app), with its prefix when that is a sub-application.
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.inner.app.url_for(name, params)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken once, here, and `self` is not used afterwards.
        let mut inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        // The field list's, header map's and request's allocations serve the connection's
        // next request.
        let buffers = inner.head.take_buffers();
        let headers = inner.headers.take();
        let conn = inner.conn.clone();
        conn.recycle_head(buffers, headers);
        conn.recycle_request(Slot::empty(inner));
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.inner.head.method)
            .field("target", &self.target())
            .field("version", &self.inner.head.version)
            .finish_non_exhaustive()
    }
}

/// A parsed form: text fields (a multi-map) and file fields.
#[derive(Debug, Default, Clone)]
pub struct Form {
    /// Text fields, in order; names may repeat.
    pub fields: MultiDict,
    /// File fields (multipart parts with a filename), in order; the data is a zero-copy
    /// slice of the request body.
    pub files: Vec<FormField>,
}

impl Form {
    /// The first text field named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name)
    }

    /// The first file field named `name`.
    pub fn file(&self, name: &str) -> Option<&FormField> {
        self.files.iter().find(|f| f.name == name)
    }
}
