//! HTTP exceptions as values: aiohttp's `raise web.HTTPFound('/login')` is
//! `return Err(web::HTTPFound("/login").into())` (or `Err(HTTPFound("/login"))?`).
//!
//! Every exception is an [`HttpException`]: a status, an optional reason and text, and extra
//! headers (`Location` for redirections, `Allow` for 405). The functions named like aiohttp's
//! classes build them; Rust-minded code can use [`HttpException::new`] with any status.

#![allow(non_snake_case)] // the constructors are named after aiohttp's exception classes

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::response::Response;

/// An HTTP error or redirection returned by a handler, a middleware or the router.
///
/// ```
/// use kettle::web::{self, HttpException};
/// use http::StatusCode;
///
/// let e = web::HTTPNotFound().with_text("no such user");
/// assert_eq!(e.status(), StatusCode::NOT_FOUND);
/// let r = web::HTTPFound("/login");
/// assert_eq!(r.headers()["location"], "/login");
/// let teapot = HttpException::new(StatusCode::IM_A_TEAPOT);
/// assert_eq!(teapot.to_string(), "418: I'm a teapot");
/// ```
#[derive(Debug, Clone)]
pub struct HttpException {
    status: StatusCode,
    reason: Option<String>,
    text: Option<String>,
    headers: HeaderMap,
}

impl HttpException {
    /// An exception with `status`; its body is `"{code}: {reason}"` unless text is set.
    pub fn new(status: StatusCode) -> HttpException {
        HttpException {
            status,
            reason: None,
            text: None,
            headers: HeaderMap::new(),
        }
    }

    /// Replaces the body text (sent as `text/plain; charset=utf-8`).
    pub fn with_text(mut self, text: impl Into<String>) -> HttpException {
        self.text = Some(text.into());
        self
    }

    /// Replaces the reason phrase of the status line. CR and LF are replaced by spaces.
    pub fn with_reason(mut self, reason: impl Into<String>) -> HttpException {
        self.reason = Some(reason.into().replace(['\r', '\n'], " "));
        self
    }

    /// Adds a header to the response.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> HttpException {
        self.headers.append(name, value);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase: the one set, or the standard one.
    pub fn reason(&self) -> &str {
        self.reason
            .as_deref()
            .or(self.status.canonical_reason())
            .unwrap_or("Unknown")
    }

    /// The body text.
    pub fn text(&self) -> String {
        match &self.text {
            Some(t) => t.clone(),
            None => format!("{}: {}", self.status.as_u16(), self.reason()),
        }
    }

    /// Extra headers (`Location`, `Allow`, ...).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The response this exception stands for.
    pub fn into_response(self) -> Response {
        let mut r = if crate::http::encode::status_allows_body(self.status) {
            Response::text(self.text())
        } else {
            Response::new()
        };
        r.set_status(self.status);
        if let Some(reason) = self.reason {
            r.set_reason(reason);
        }
        for (name, value) in self.headers.iter() {
            r.headers_mut().append(name.clone(), value.clone());
        }
        r
    }
}

impl std::fmt::Display for HttpException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.reason())
    }
}

impl std::error::Error for HttpException {}

/// What a `Location` may not hold as is: controls, space and every non-ASCII byte.
const LOCATION_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b' ');

/// A redirection to `location`. Bytes a URI cannot hold raw (controls, spaces, non-ASCII) are
/// percent-encoded, as aiohttp does through yarl.
fn redirect(status: StatusCode, location: &str) -> HttpException {
    // Non-ASCII used to go out as raw UTF-8 (not a URI), and a location with a control
    // character silently became `/`, sending the client somewhere else entirely. Encoding
    // keeps the target and still cannot split the head (CR and LF become %0D %0A).
    let needs_escape = location.bytes().any(|b| !(0x21..0x7F).contains(&b));
    let value = if needs_escape {
        let encoded = percent_encoding::utf8_percent_encode(location, LOCATION_ESCAPES);
        HeaderValue::from_str(&encoded.to_string())
    } else {
        HeaderValue::from_str(location)
    };
    let value = value.unwrap_or(HeaderValue::from_static("/"));
    HttpException::new(status).with_header(http::header::LOCATION, value)
}

macro_rules! redirections {
    ($($(#[$doc:meta])* $name:ident => $status:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(location: &str) -> HttpException {
            redirect(StatusCode::$status, location)
        }
    )*};
}

macro_rules! errors {
    ($($(#[$doc:meta])* $name:ident => $status:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name() -> HttpException {
            HttpException::new(StatusCode::$status)
        }
    )*};
}

redirections! {
    /// 300 Multiple Choices, with `Location`.
    HTTPMultipleChoices => MULTIPLE_CHOICES;
    /// 301 Moved Permanently, with `Location`.
    HTTPMovedPermanently => MOVED_PERMANENTLY;
    /// 302 Found, with `Location`.
    HTTPFound => FOUND;
    /// 303 See Other, with `Location` (the answer to a POST that redirects to a GET).
    HTTPSeeOther => SEE_OTHER;
    /// 307 Temporary Redirect, with `Location` (method and body are kept).
    HTTPTemporaryRedirect => TEMPORARY_REDIRECT;
    /// 308 Permanent Redirect, with `Location`.
    HTTPPermanentRedirect => PERMANENT_REDIRECT;
}

errors! {
    /// 304 Not Modified (no body).
    HTTPNotModified => NOT_MODIFIED;
    /// 204 No Content.
    HTTPNoContent => NO_CONTENT;
    /// 400 Bad Request.
    HTTPBadRequest => BAD_REQUEST;
    /// 401 Unauthorized.
    HTTPUnauthorized => UNAUTHORIZED;
    /// 402 Payment Required.
    HTTPPaymentRequired => PAYMENT_REQUIRED;
    /// 403 Forbidden.
    HTTPForbidden => FORBIDDEN;
    /// 404 Not Found.
    HTTPNotFound => NOT_FOUND;
    /// 406 Not Acceptable.
    HTTPNotAcceptable => NOT_ACCEPTABLE;
    /// 408 Request Timeout.
    HTTPRequestTimeout => REQUEST_TIMEOUT;
    /// 409 Conflict.
    HTTPConflict => CONFLICT;
    /// 410 Gone.
    HTTPGone => GONE;
    /// 411 Length Required.
    HTTPLengthRequired => LENGTH_REQUIRED;
    /// 412 Precondition Failed.
    HTTPPreconditionFailed => PRECONDITION_FAILED;
    /// 413 Request Entity Too Large (see also [`HTTPRequestEntityTooLarge`]).
    HTTPPayloadTooLarge => PAYLOAD_TOO_LARGE;
    /// 414 Request-URI Too Long.
    HTTPRequestURITooLong => URI_TOO_LONG;
    /// 415 Unsupported Media Type.
    HTTPUnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE;
    /// 416 Range Not Satisfiable.
    HTTPRequestRangeNotSatisfiable => RANGE_NOT_SATISFIABLE;
    /// 417 Expectation Failed.
    HTTPExpectationFailed => EXPECTATION_FAILED;
    /// 422 Unprocessable Entity.
    HTTPUnprocessableEntity => UNPROCESSABLE_ENTITY;
    /// 429 Too Many Requests.
    HTTPTooManyRequests => TOO_MANY_REQUESTS;
    /// 431 Request Header Fields Too Large.
    HTTPRequestHeaderFieldsTooLarge => REQUEST_HEADER_FIELDS_TOO_LARGE;
    /// 500 Internal Server Error.
    HTTPInternalServerError => INTERNAL_SERVER_ERROR;
    /// 501 Not Implemented.
    HTTPNotImplemented => NOT_IMPLEMENTED;
    /// 502 Bad Gateway.
    HTTPBadGateway => BAD_GATEWAY;
    /// 503 Service Unavailable.
    HTTPServiceUnavailable => SERVICE_UNAVAILABLE;
    /// 504 Gateway Timeout.
    HTTPGatewayTimeout => GATEWAY_TIMEOUT;
    /// 505 HTTP Version Not Supported.
    HTTPVersionNotSupported => HTTP_VERSION_NOT_SUPPORTED;
}

/// 405 Method Not Allowed, with the `Allow` header listing `allowed`.
pub fn HTTPMethodNotAllowed(method: &Method, allowed: &[Method]) -> HttpException {
    let list = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let value = HeaderValue::from_str(&list).unwrap_or(HeaderValue::from_static(""));
    HttpException::new(StatusCode::METHOD_NOT_ALLOWED)
        .with_header(http::header::ALLOW, value)
        .with_text(format!("405: Method {method} is not allowed"))
}

/// 413, saying how large a body may be and how large this one was (aiohttp's text).
pub fn HTTPRequestEntityTooLarge(max_size: u64, actual_size: Option<u64>) -> HttpException {
    let text = match actual_size {
        Some(n) => format!("Maximum request body size {max_size} exceeded, actual body size {n}"),
        None => format!("Maximum request body size {max_size} exceeded"),
    };
    HttpException::new(StatusCode::PAYLOAD_TOO_LARGE).with_text(text)
}
