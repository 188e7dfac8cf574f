//! `StreamResponse` (aiohttp's `web.StreamResponse`): a response whose body the handler
//! writes piece by piece after sending the head.

use std::borrow::Cow;
use std::rc::Rc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use super::error::Error;
use super::protocol::ConnIo;
use super::request::Request;
use super::response::{IntoResponse, Response};
use crate::http::encode::{self, Length};

/// A response streamed by the handler: `prepare` sends the head, `write` sends body pieces
/// (each one waits while the client is slow to read, so memory stays bounded), `write_eof`
/// ends it. Without a content length the body is sent chunked (HTTP/1.1) or delimited by
/// closing the connection (HTTP/1.0). Once the head is sent, a handler that fails instead of
/// returning the stream (an error, a panic) cannot send another response: the connection is
/// closed with the body unfinished, so the client sees it truncated.
///
/// ```no_run
/// use kettle::web::{Request, StreamResponse};
///
/// async fn countdown(req: Request) -> Result<StreamResponse, kettle::web::Error> {
///     let mut resp = StreamResponse::new();
///     resp.set_content_type("text/plain");
///     resp.prepare(&req).await?;
///     for i in (1..=3).rev() {
///         resp.write(format!("{i}\n")).await?;
///         kettle::sleep(std::time::Duration::from_millis(100)).await;
///     }
///     resp.write_eof().await?;
///     Ok(resp)
/// }
/// ```
pub struct StreamResponse {
    status: StatusCode,
    reason: Option<String>,
    headers: HeaderMap,
    content_type: Option<Cow<'static, str>>,
    charset: Option<Cow<'static, str>>,
    content_length: Option<u64>,
    state: State,
}

enum State {
    New,
    Prepared {
        conn: Rc<ConnIo>,
        chunked: bool,
        /// HEAD request or a status without a body: writes are dropped.
        bodyless: bool,
        written: u64,
    },
    Finished,
}

impl Default for StreamResponse {
    fn default() -> StreamResponse {
        StreamResponse::new()
    }
}

impl StreamResponse {
    /// A `200 OK` streamed response.
    pub fn new() -> StreamResponse {
        StreamResponse {
            status: StatusCode::OK,
            reason: None,
            headers: HeaderMap::new(),
            content_type: None,
            charset: None,
            content_length: None,
            state: State::New,
        }
    }

    /// Sets the status (before `prepare`).
    pub fn set_status(&mut self, status: StatusCode) {
        self.status = status;
    }

    /// Sets a custom reason phrase (before `prepare`).
    pub fn set_reason(&mut self, reason: impl Into<String>) {
        self.reason = Some(reason.into().replace(['\r', '\n'], " "));
    }

    /// The headers, to change before `prepare`.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Adds a header (before `prepare`).
    pub fn insert_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.headers.append(name, value);
    }

    /// Sets the media type (before `prepare`); a `charset` parameter in it becomes the
    /// charset, as in [`Response::set_content_type`].
    pub fn set_content_type(&mut self, content_type: impl Into<Cow<'static, str>>) {
        let ct = content_type.into();
        if HeaderValue::from_str(&ct).is_err() {
            return;
        }
        match super::response::split_charset(&ct) {
            Some((media, charset)) => {
                self.content_type = Some(Cow::Owned(media));
                self.set_charset(charset);
            }
            None => self.content_type = Some(ct),
        }
    }

    /// Sets the charset parameter (before `prepare`).
    pub fn set_charset(&mut self, charset: impl Into<Cow<'static, str>>) {
        let cs = charset.into();
        if cs
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            self.charset = Some(cs);
        }
    }

    /// Declares the body length (before `prepare`): the body is then sent as is, not
    /// chunked, and writing more than that is an error.
    pub fn set_content_length(&mut self, len: u64) {
        self.content_length = Some(len);
    }

    /// Whether the head has been sent.
    pub fn prepared(&self) -> bool {
        !matches!(self.state, State::New)
    }

    /// Sends the status line and headers for `req` (after any responses queued before it on
    /// the same connection). Calling it again does nothing.
    pub async fn prepare(&mut self, req: &Request) -> Result<(), Error> {
        if self.prepared() {
            return Ok(());
        }
        let conn = req.conn().clone();
        let bodyless = conn.is_head() || !encode::status_allows_body(self.status);
        let length = match self.content_length {
            _ if !encode::status_allows_body(self.status) => Length::Unframed,
            Some(n) => Length::Known(n),
            None if conn.version() == Version::HTTP_11 => Length::Chunked,
            None => {
                conn.set_must_close();
                Length::Unframed
            }
        };
        let chunked = length == Length::Chunked && !bodyless;
        let connection = conn.connection_header();
        conn.with_out(|out| {
            let has_date =
                encode::head_start(out, self.status, self.reason.as_deref(), &self.headers);
            super::response::content_type_line(
                out,
                &self.headers,
                self.content_type.as_deref(),
                self.charset.as_deref(),
            );
            encode::head_end(out, length, connection, has_date);
        });
        // From here on, whatever the handler returns instead of this response (an error, a
        // panic's 500) must not become a second head: the connection drops it and closes.
        conn.set_head_sent();
        conn.flush().await?;
        self.state = State::Prepared {
            conn,
            chunked,
            bodyless,
            written: 0,
        };
        Ok(())
    }

    /// Sends a piece of the body, waiting while the client does not keep up.
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        let data = data.into();
        let State::Prepared {
            conn,
            chunked,
            bodyless,
            written,
        } = &mut self.state
        else {
            return Err(misuse("write() before prepare() or after write_eof()"));
        };
        if *bodyless || data.is_empty() {
            return Ok(());
        }
        *written += data.len() as u64;
        if self.content_length.is_some_and(|n| *written > n) {
            return Err(misuse("write() past the declared content length"));
        }
        if *chunked {
            conn.with_out(|out| encode::chunk_header(out, data.len()));
            conn.queue_bytes(data);
            conn.queue(encode::CHUNK_END);
        } else {
            conn.queue_bytes(data);
        }
        conn.flush().await?;
        Ok(())
    }

    /// Ends the body (the last chunk, for a chunked body).
    pub async fn write_eof(&mut self) -> Result<(), Error> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let State::Prepared {
            conn,
            chunked,
            bodyless,
            written,
        } = state
        else {
            return Ok(());
        };
        if chunked && !bodyless {
            conn.queue(encode::LAST_CHUNK);
        }
        if self.content_length.is_some_and(|n| written < n) && !bodyless {
            // Fewer bytes than promised: the client would wait for the rest forever.
            conn.set_must_close();
        }
        conn.flush().await?;
        Ok(())
    }
}

fn misuse(what: &'static str) -> Error {
    Error::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, what))
}

impl IntoResponse for StreamResponse {
    fn into_response(self) -> Response {
        match self.state {
            // Never prepared: send what was set up, with an empty body.
            State::New => {
                let mut r = Response::new().with_status(self.status);
                *r.headers_mut() = self.headers;
                if let Some(reason) = self.reason {
                    r.set_reason(reason);
                }
                if let Some(ct) = self.content_type {
                    r.set_content_type(ct);
                }
                r.set_charset(self.charset);
                r
            }
            // The handler returned without write_eof: finish the body as aiohttp does, if
            // the framing allows; otherwise the connection closes after it.
            State::Prepared {
                conn,
                chunked,
                bodyless,
                written,
            } => {
                if chunked && !bodyless {
                    conn.queue(encode::LAST_CHUNK);
                }
                let complete =
                    bodyless || chunked || self.content_length.is_none_or(|n| n == written);
                Response::sent(complete)
            }
            State::Finished => Response::sent(true),
        }
    }
}

impl std::fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResponse")
            .field("status", &self.status)
            .field("prepared", &self.prepared())
            .finish_non_exhaustive()
    }
}
