//! `ClientResponse`: the status and headers as soon as the head arrived, the body on demand.

use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_TYPE};
use http::{Method, StatusCode, Version};
use url::Url;

use super::content::Content;
use crate::error::{Error, ErrorKind, Result};

/// A response to a [`ClientSession`](super::ClientSession) request (aiohttp's
/// `ClientResponse`).
///
/// The body is read on demand: all of it with [`bytes`](ClientResponse::bytes),
/// [`text`](ClientResponse::text) or [`json`](ClientResponse::json) (each can be called again:
/// the body is kept once read), or as it streams in through
/// [`content`](ClientResponse::content). A response read to the end gives its connection back
/// to the pool; one dropped before that closes it.
///
/// ```no_run
/// # kettle::run(async {
/// let session = kettle::client::ClientSession::new();
/// let mut resp = session.get("http://127.0.0.1:8000/").send().await?;
/// println!("{} {}", resp.status(), resp.content_type());
/// println!("{}", resp.text().await?);
/// session.close().await;
/// # kettle::Result::<()>::Ok(()) });
/// ```
pub struct ClientResponse {
    pub(crate) method: Method,
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) url: Url,
    pub(crate) history: Vec<ClientResponse>,
    pub(crate) cookies: Vec<(String, String)>,
    pub(crate) content: Content,
    /// The whole body, once read by `bytes`/`text`/`json`.
    pub(crate) body: Option<Bytes>,
    /// The most bytes `bytes`/`text`/`json` will hold.
    pub(crate) max_body_size: usize,
    /// After a `101 Switching Protocols`: the connection, which no longer speaks HTTP.
    pub(crate) upgraded: Option<super::conn::Connection>,
}

impl ClientResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase the server sent (`"OK"`, ...), which may be empty.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The HTTP version of the response.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request method that produced this response.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The redirect responses that led here, oldest first (their bodies were discarded).
    pub fn history(&self) -> &[ClientResponse] {
        &self.history
    }

    /// The cookies this response set (`Set-Cookie`), as `(name, value)` pairs.
    pub fn cookies(&self) -> &[(String, String)] {
        &self.cookies
    }

    /// The media type of `Content-Type`, lower-case and without parameters;
    /// `application/octet-stream` when there is none (as aiohttp says).
    pub fn content_type(&self) -> String {
        match self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
            Some(ct) => ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase(),
            None => "application/octet-stream".to_string(),
        }
    }

    /// The `charset` parameter of `Content-Type`, lower-case, if any.
    pub fn charset(&self) -> Option<String> {
        let ct = self.headers.get(CONTENT_TYPE)?.to_str().ok()?;
        ct.split(';').skip(1).find_map(|param| {
            let (k, v) = param.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
        })
    }

    /// The `Content-Length` the server announced, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(http::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// `Ok(())` for a status below 400, an [`ErrorKind::Status`] error otherwise.
    pub fn raise_for_status(&self) -> Result<()> {
        if self.status.as_u16() >= 400 {
            return Err(status_error(self.status, &self.reason, &self.url));
        }
        Ok(())
    }

    /// Whether the status is below 400 (aiohttp's `ok`).
    pub fn ok(&self) -> bool {
        self.status.as_u16() < 400
    }

    /// The streaming body.
    pub fn content(&mut self) -> &mut Content {
        &mut self.content
    }

    /// The whole body (decompressed), read once and kept.
    pub async fn bytes(&mut self) -> Result<Bytes> {
        if let Some(b) = &self.body {
            return Ok(b.clone());
        }
        let body = self.content.read_to_end(self.max_body_size).await?;
        self.body = Some(body.clone());
        Ok(body)
    }

    /// The body decoded as text by its `charset` (UTF-8 when none is given). Bytes that are
    /// not valid in that charset are an [`ErrorKind::InvalidResponse`] error.
    pub async fn text(&mut self) -> Result<String> {
        let body = self.bytes().await?;
        let label = self.charset().unwrap_or_else(|| "utf-8".to_string());
        let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            Error::with_message(
                ErrorKind::InvalidResponse,
                format!(
                    "unknown charset {label:?} in the response from {}",
                    self.url
                ),
            )
        })?;
        let (text, _, had_errors) = encoding.decode(&body);
        if had_errors {
            return Err(Error::with_message(
                ErrorKind::InvalidResponse,
                format!(
                    "the body from {} is not valid {}",
                    self.url,
                    encoding.name()
                ),
            ));
        }
        Ok(text.into_owned())
    }

    /// The body parsed as JSON into `T`. The `Content-Type` must be JSON
    /// (`application/json` or `...+json`), as aiohttp requires by default; see
    /// [`json_any`](ClientResponse::json_any) to skip that check.
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let ct = self.content_type();
        if ct != "application/json" && !ct.ends_with("+json") {
            return Err(Error::with_message(
                ErrorKind::InvalidResponse,
                format!(
                    "expected a JSON response from {} but its Content-Type is {ct}",
                    self.url
                ),
            ));
        }
        self.json_any().await
    }

    /// The body parsed as JSON whatever its `Content-Type`.
    pub async fn json_any<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let body = self.bytes().await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidResponse,
                format!("invalid JSON from {}: {e}", self.url),
                e,
            )
        })
    }

    /// Gives the connection up now: back to the pool if the body was read to its end, closed
    /// otherwise (aiohttp's `release`; dropping the response does the same).
    pub fn release(&mut self) {
        self.content.release(true);
    }
}

/// The error of a 4xx/5xx status.
pub(crate) fn status_error(status: StatusCode, reason: &str, url: &Url) -> Error {
    let reason = if reason.is_empty() {
        status.canonical_reason().unwrap_or("")
    } else {
        reason
    };
    Error::from_status(status, format!("{} {reason}, url={url}", status.as_u16()))
}

impl std::fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientResponse")
            .field("status", &self.status)
            .field("url", &self.url.as_str())
            .field("headers", &self.headers)
            .finish()
    }
}

impl std::fmt::Display for ClientResponse {
    /// `<ClientResponse(url) [200 OK]>`, as aiohttp prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<ClientResponse({}) [{} {}]>",
            self.url,
            self.status.as_u16(),
            self.reason
        )
    }
}
