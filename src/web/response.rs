//! `Response` (aiohttp's `web.Response`), the [`IntoResponse`] conversions that let handlers
//! return strings, bytes, JSON or `Result`s, and `json_response`.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::cookies::{self, CookieError, CookieOptions};
use super::error::{internal_error, Error};

/// A complete HTTP response: status, reason, headers, content type and charset, and a body.
///
/// Constructors set the content type the way aiohttp does: [`text`](Self::text) →
/// `text/plain; charset=utf-8`, [`html`](Self::html) → `text/html; charset=utf-8`,
/// [`bytes`](Self::bytes) → `application/octet-stream`.
///
/// ```
/// use kettle::web::{CookieOptions, Response};
/// use http::StatusCode;
///
/// let mut r = Response::html("<h1>Index</h1>").with_status(StatusCode::CREATED);
/// r.set_cookie("session", "abc", &CookieOptions::default().httponly(true)).unwrap();
/// assert_eq!(r.status(), StatusCode::CREATED);
/// assert_eq!(r.content_type(), Some("text/html"));
/// assert_eq!(r.body(), "<h1>Index</h1>".as_bytes());
/// ```
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    content_type: Option<Cow<'static, str>>,
    charset: Option<Cow<'static, str>>,
    pub(crate) body: Body,
    /// Headers and a custom reason, which most responses do not have: boxed, and only
    /// when set, so that a response moving through the handler layers stays small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    reason: Option<String>,
    headers: HeaderMap,
    /// Compression asked for: `Some(None)` picks a coding from the request's
    /// `Accept-Encoding`, `Some(Some(c))` insists on `c`.
    compression: Option<Option<super::compression::ContentCoding>>,
}

/// What [`Response::headers`] shows for a response with none.
fn no_headers() -> &'static HeaderMap {
    static EMPTY: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
    EMPTY.get_or_init(HeaderMap::new)
}

/// What follows the head.
#[derive(Debug)]
pub(crate) enum Body {
    /// Bytes in memory (possibly empty).
    Full(Bytes),
    /// A region of a file, sent with `sendfile(2)`.
    File {
        file: std::fs::File,
        offset: u64,
        len: u64,
    },
    /// A [`StreamResponse`](super::StreamResponse) already wrote head and body to the
    /// connection; `finished` says whether it completed (`write_eof`).
    Sent { finished: bool },
}

impl Default for Response {
    fn default() -> Response {
        Response::new()
    }
}

impl Response {
    /// `200 OK` with an empty body and no content type.
    pub fn new() -> Response {
        Response {
            status: StatusCode::OK,
            content_type: None,
            charset: None,
            body: Body::Full(Bytes::new()),
            extra: None,
        }
    }

    /// A `text/plain; charset=utf-8` response (aiohttp's `Response(text=...)`).
    pub fn text(text: impl Into<String>) -> Response {
        Response::with_body(Bytes::from(text.into()), "text/plain", Some("utf-8"))
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(html: impl Into<String>) -> Response {
        Response::with_body(Bytes::from(html.into()), "text/html", Some("utf-8"))
    }

    /// An `application/octet-stream` response (aiohttp's `Response(body=...)`).
    pub fn bytes(body: impl Into<Bytes>) -> Response {
        Response::with_body(body.into(), "application/octet-stream", None)
    }

    /// A static text response; no allocation for the body.
    pub fn static_text(text: &'static str) -> Response {
        Response::with_body(
            Bytes::from_static(text.as_bytes()),
            "text/plain",
            Some("utf-8"),
        )
    }

    fn with_body(
        body: Bytes,
        content_type: &'static str,
        charset: Option<&'static str>,
    ) -> Response {
        Response {
            content_type: Some(Cow::Borrowed(content_type)),
            charset: charset.map(Cow::Borrowed),
            body: Body::Full(body),
            ..Response::new()
        }
    }

    pub(crate) fn from_file(file: std::fs::File, offset: u64, len: u64) -> Response {
        Response {
            body: Body::File { file, offset, len },
            ..Response::new()
        }
    }

    pub(crate) fn sent(finished: bool) -> Response {
        Response {
            body: Body::Sent { finished },
            ..Response::new()
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Sets the status code.
    pub fn set_status(&mut self, status: StatusCode) {
        self.status = status;
    }

    /// Builder form of [`set_status`](Self::set_status).
    pub fn with_status(mut self, status: StatusCode) -> Response {
        self.status = status;
        self
    }

    /// The reason phrase: the one set, or the status's standard one.
    pub fn reason(&self) -> &str {
        self.custom_reason()
            .or(self.status.canonical_reason())
            .unwrap_or("Unknown")
    }

    pub(crate) fn custom_reason(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.reason.as_deref())
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Compresses the body with gzip or deflate, whichever the request's `Accept-Encoding`
    /// allows (gzip preferred), as aiohttp's `enable_compression()`. Only whole bodies of at
    /// least [`compression::MIN_SIZE`](super::compression::MIN_SIZE) bytes are compressed;
    /// not 206 responses, files, streamed responses or bodies that already have a
    /// `Content-Encoding`. `Vary: Accept-Encoding` is added either way.
    ///
    /// ```
    /// use kettle::web::Response;
    /// let mut resp = Response::text("tea ".repeat(1000));
    /// resp.enable_compression();
    /// assert!(resp.compression_enabled());
    /// ```
    pub fn enable_compression(&mut self) {
        self.extra_mut().compression = Some(None);
    }

    /// [`enable_compression`](Self::enable_compression) with one coding only: the body is
    /// sent as it is if the request does not accept it.
    pub fn enable_compression_with(&mut self, coding: super::compression::ContentCoding) {
        self.extra_mut().compression = Some(Some(coding));
    }

    /// Builder form of [`enable_compression`](Self::enable_compression).
    pub fn with_compression(mut self) -> Response {
        self.enable_compression();
        self
    }

    /// Whether compression was asked for.
    pub fn compression_enabled(&self) -> bool {
        self.compression().is_some()
    }

    pub(crate) fn compression(&self) -> Option<Option<super::compression::ContentCoding>> {
        self.extra.as_ref()?.compression
    }

    /// Sets a custom reason phrase. CR and LF are replaced by spaces so the phrase cannot
    /// split the status line.
    pub fn set_reason(&mut self, reason: impl Into<String>) {
        self.extra_mut().reason = Some(reason.into().replace(['\r', '\n'], " "));
    }

    /// The headers (without `Content-Type`, which [`content_type`](Self::content_type) and
    /// [`charset`](Self::charset) hold, and without framing headers the server computes). A
    /// `Content-Type` inserted here by hand replaces the one `content_type` would send.
    pub fn headers(&self) -> &HeaderMap {
        match &self.extra {
            Some(e) => &e.headers,
            None => no_headers(),
        }
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.extra_mut().headers
    }

    /// Builder: adds a header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Response {
        self.headers_mut().append(name, value);
        self
    }

    /// The media type (`text/html`), with any parameters other than `charset`.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Sets the media type. A `charset` parameter in it (`"application/json;
    /// charset=latin-1"`) becomes the [`charset`](Self::charset); other parameters are kept.
    /// Characters that are not allowed in a header make it ignored (logged), never a broken
    /// head.
    pub fn set_content_type(&mut self, content_type: impl Into<Cow<'static, str>>) {
        let ct = content_type.into();
        if HeaderValue::from_str(&ct).is_err() {
            tracing::warn!(content_type = %ct, "invalid content type ignored");
            return;
        }
        match split_charset(&ct) {
            Some((media, charset)) => {
                self.content_type = Some(Cow::Owned(media));
                self.set_charset(Some(charset));
            }
            None => self.content_type = Some(ct),
        }
    }

    /// Builder form of [`set_content_type`](Self::set_content_type).
    pub fn with_content_type(mut self, content_type: impl Into<Cow<'static, str>>) -> Response {
        self.set_content_type(content_type);
        self
    }

    /// The charset parameter of the content type.
    pub fn charset(&self) -> Option<&str> {
        self.charset.as_deref()
    }

    /// Sets (or with `None`, removes) the charset parameter.
    pub fn set_charset(&mut self, charset: Option<impl Into<Cow<'static, str>>>) {
        self.charset = charset.map(Into::into).filter(|c| {
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    }

    /// Builder form of [`set_charset`](Self::set_charset).
    pub fn with_charset(mut self, charset: impl Into<Cow<'static, str>>) -> Response {
        self.set_charset(Some(charset));
        self
    }

    /// The body, when it is in memory (empty for file and streamed bodies).
    pub fn body(&self) -> &[u8] {
        match &self.body {
            Body::Full(b) => b,
            _ => &[],
        }
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = Body::Full(body.into());
    }

    /// The body length when known before sending.
    pub fn content_length(&self) -> Option<u64> {
        match &self.body {
            Body::Full(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Sent { .. } => None,
        }
    }

    /// Adds a `Set-Cookie` header (aiohttp's `set_cookie`).
    pub fn set_cookie(
        &mut self,
        name: &str,
        value: &str,
        options: &CookieOptions,
    ) -> Result<(), CookieError> {
        let line = cookies::format_set_cookie(name, value, options)?;
        self.append_set_cookie(&line)
    }

    /// Adds a `Set-Cookie` header that makes the client drop cookie `name` (aiohttp's
    /// `del_cookie`); `path` and `domain` must match the ones it was set with.
    pub fn del_cookie(
        &mut self,
        name: &str,
        path: Option<&str>,
        domain: Option<&str>,
    ) -> Result<(), CookieError> {
        let line = cookies::format_del_cookie(name, path, domain)?;
        self.append_set_cookie(&line)
    }

    fn append_set_cookie(&mut self, line: &str) -> Result<(), CookieError> {
        // format_set_cookie only produces header-safe text; this cannot fail in practice.
        if let Ok(v) = HeaderValue::from_str(line) {
            self.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok(())
    }

    /// For the common response — standard reason, no headers of its own, no or a common
    /// content type — the ready-made `Content-Type` line (`b""` for none), so the whole head
    /// can be written at once; `None` when the general path is needed.
    pub(crate) fn plain_content_type_line(&self) -> Option<&'static [u8]> {
        if self.extra.is_some() {
            return None;
        }
        match self.content_type.as_deref() {
            None => Some(b""),
            ct => ready_content_type_line(ct, self.charset.as_deref()),
        }
    }

    /// The `Content-Type` line for the head, if any.
    pub(crate) fn content_type_line(&self, out: &mut Vec<u8>) {
        content_type_line(
            out,
            self.headers(),
            self.content_type.as_deref(),
            self.charset.as_deref(),
        );
    }
}

/// Splits a `charset` parameter out of a content type: `"text/plain; charset=latin-1;
/// format=flowed"` → `("text/plain; format=flowed", "latin-1")`. `None` when there is none
/// (the usual case, checked without allocating).
///
/// Without this, `Response::text(..).with_content_type("application/json; charset=x")` sent
/// `application/json; charset=x; charset=utf-8`: two charsets that disagree.
pub(crate) fn split_charset(content_type: &str) -> Option<(String, String)> {
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or("").trim();
    let mut charset = None;
    let mut rest = String::new();
    for p in params {
        let p = p.trim();
        match p.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") && charset.is_none() => {
                charset = Some(v.trim().trim_matches('"').to_string());
            }
            _ if p.is_empty() => {}
            _ => {
                rest.push_str("; ");
                rest.push_str(p);
            }
        }
    }
    let charset = charset?;
    Some((format!("{media}{rest}"), charset))
}

/// Anything a handler may return.
///
/// Implemented for [`Response`], `&'static str` and `String` (text/plain), [`Bytes`] and
/// `Vec<u8>` (octet-stream), [`Json`], `(StatusCode, T)`, [`HttpException`](super::HttpException),
/// [`Error`], and `Result<T, E>` whose error converts into [`Error`].
pub trait IntoResponse {
    /// Converts into the response to send.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::static_text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new().with_status(self)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

impl IntoResponse for super::HttpException {
    fn into_response(self) -> Response {
        super::HttpException::into_response(self)
    }
}

impl<T: IntoResponse, E: Into<Error>> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(r) => r.into_response(),
            Err(e) => e.into().into_response(),
        }
    }
}

/// A value sent as `application/json`.
///
/// ```
/// use kettle::web::{IntoResponse, Json};
/// let r = Json(vec![1, 2, 3]).into_response();
/// assert_eq!(r.body(), b"[1,2,3]");
/// assert_eq!(r.content_type(), Some("application/json"));
/// ```
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        json_response(&self.0)
    }
}

/// aiohttp's `web.json_response(data)`: `data` serialized as `application/json`. A value that
/// cannot be serialized (a map with non-string keys, say) is a 500, with the reason logged.
pub fn json_response<T: serde::Serialize + ?Sized>(data: &T) -> Response {
    match serde_json::to_vec(data) {
        Ok(body) => Response::with_body(Bytes::from(body), "application/json", None),
        Err(e) => {
            tracing::error!(error = %e, "json_response: cannot serialize");
            internal_error()
        }
    }
}

/// The common content types as one ready-made line each, and no line (`b""`) for none.
pub(crate) fn ready_content_type_line(
    content_type: Option<&str>,
    charset: Option<&str>,
) -> Option<&'static [u8]> {
    match (content_type?, charset) {
        ("text/plain", Some("utf-8")) => Some(b"Content-Type: text/plain; charset=utf-8\r\n"),
        ("text/html", Some("utf-8")) => Some(b"Content-Type: text/html; charset=utf-8\r\n"),
        ("application/json", None) => Some(b"Content-Type: application/json\r\n"),
        ("application/octet-stream", None) => Some(b"Content-Type: application/octet-stream\r\n"),
        _ => None,
    }
}

/// Appends the `Content-Type` line for a head (of a [`Response`] or a
/// [`StreamResponse`](super::StreamResponse)).
pub(crate) fn content_type_line(
    out: &mut Vec<u8>,
    headers: &HeaderMap,
    content_type: Option<&str>,
    charset: Option<&str>,
) {
    // A Content-Type the handler put in `headers` by hand (or an exception's `with_header`)
    // was already written by `head_start`; writing ours as well would send two conflicting
    // Content-Type headers. The explicit header wins, as in aiohttp. The emptiness check
    // keeps the common case free of a hash lookup.
    if !headers.is_empty() && headers.contains_key(header::CONTENT_TYPE) {
        return;
    }
    if let Some(line) = ready_content_type_line(content_type, charset) {
        out.extend_from_slice(line);
        return;
    }
    if let Some(ct) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct.as_bytes());
        if let Some(cs) = charset {
            out.extend_from_slice(b"; charset=");
            out.extend_from_slice(cs.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}
