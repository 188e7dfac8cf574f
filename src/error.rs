//! The one error type of Kettle's runtime layer.
//!
//! asyncio raises a handful of exception classes (`CancelledError`, `TimeoutError`,
//! `InvalidStateError`, whatever a task raised); Kettle folds them into one [`Error`] with an
//! [`ErrorKind`], the way `std::io::Error` does, so that `?` works across every awaitable and
//! callers branch on `err.kind()` or the `is_*` helpers.

use std::fmt;
use std::sync::Arc;

/// A specialised `Result` for Kettle's awaitables.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in asyncio's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The task or future was cancelled (asyncio's `CancelledError`).
    Cancelled,
    /// A deadline passed before the awaited operation finished (asyncio's `TimeoutError`).
    Timeout,
    /// The operation does not fit the object's state, e.g. `result()` on a future that is not
    /// done, or `set_result` on one that is (asyncio's `InvalidStateError`).
    InvalidState,
    /// The code inside a task, callback or executor job panicked; the message is kept.
    Panicked,
    /// The event loop is closed, or was dropped while the operation was pending.
    LoopClosed,
    /// An error set by user code through [`Future::set_error`](crate::Future::set_error).
    Other,
    /// A finished generator was resumed (Python's `StopIteration`).
    StopIteration,
    /// The HTTP client could not connect: name resolution, a refused or unreachable peer
    /// (aiohttp's `ClientConnectorError`).
    Connect,
    /// A TLS handshake or record failed: an untrusted or mismatched certificate, a peer that
    /// does not speak TLS, a bad record (aiohttp's `ClientSSLError`).
    Tls,
    /// The peer's HTTP response broke the protocol: garbage, an oversized head, bad framing,
    /// a connection closed mid-body (aiohttp's `ClientResponseError` for parsing and
    /// `ClientPayloadError`).
    InvalidResponse,
    /// A request followed more redirects than allowed, or a redirect loop
    /// (aiohttp's `TooManyRedirects`).
    TooManyRedirects,
    /// The response had a 4xx or 5xx status and the caller asked for that to be an error
    /// ([`Error::status`] has the code; aiohttp's `raise_for_status`).
    Status,
    /// Another I/O error on a connection, such as a reset while sending (aiohttp's
    /// `ClientOSError`); [`Error::get_ref`] holds the `std::io::Error`.
    Io,
    /// A URL that cannot be requested: unparsable, no host, or a scheme other than http or
    /// https (aiohttp's `InvalidURL`).
    InvalidUrl,
    /// A WebSocket failed: a handshake the server refused, a peer that broke RFC 6455 (Kettle
    /// closed with the code [`Error::close_code`] gives), a message too big, a connection lost
    /// without a close, or a send or receive on a WebSocket already closed (aiohttp's
    /// `WSServerHandshakeError` and `WebSocketError`).
    WebSocket,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Timeout => "timed out",
            ErrorKind::InvalidState => "invalid state",
            ErrorKind::Panicked => "panicked",
            ErrorKind::LoopClosed => "event loop closed",
            ErrorKind::Other => "error",
            ErrorKind::StopIteration => "stop iteration",
            ErrorKind::Connect => "cannot connect",
            ErrorKind::Tls => "TLS error",
            ErrorKind::InvalidResponse => "invalid response",
            ErrorKind::TooManyRedirects => "too many redirects",
            ErrorKind::Status => "error status",
            ErrorKind::Io => "I/O error",
            ErrorKind::InvalidUrl => "invalid URL",
            ErrorKind::WebSocket => "WebSocket error",
        }
    }
}

/// The error produced by Kettle's tasks, futures and combinators.
///
/// It is cheap to clone (the optional source sits behind an `Arc`), because an asyncio future can
/// hand the same exception to every awaiter.
///
/// ```
/// let err = kettle::Error::timeout();
/// assert!(err.is_timeout());
/// assert_eq!(err.to_string(), "timed out");
/// ```
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    /// Detail beyond the kind, boxed so that the common detail-free errors (a cancelled task, a
    /// timeout) stay two words wide and allocate nothing.
    detail: Option<Arc<Detail>>,
}

/// The rarely present parts of an [`Error`].
struct Detail {
    /// Human detail beyond the kind: the panic message, what state was wrong, ...
    message: Option<String>,
    /// The user's error for [`ErrorKind::Other`], or the cause of a client error.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// The response status behind an [`ErrorKind::Status`] error, or a refused WebSocket
    /// handshake.
    status: Option<http::StatusCode>,
    /// The WebSocket close code behind an [`ErrorKind::WebSocket`] error.
    close_code: Option<u16>,
}

impl Error {
    /// An error of `kind` with no further detail.
    pub fn new(kind: ErrorKind) -> Error {
        Error { kind, detail: None }
    }

    /// An error of `kind` with a message saying what happened.
    pub fn with_message(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            detail: Some(Arc::new(Detail {
                message: Some(message.into()),
                source: None,
                status: None,
                close_code: None,
            })),
        }
    }

    /// An error of `kind` with a message and the lower-level error that caused it (kept as
    /// [`source`](std::error::Error::source) and [`get_ref`](Error::get_ref)).
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error {
            kind,
            detail: Some(Arc::new(Detail {
                message: Some(message.into()),
                source: Some(source.into()),
                status: None,
                close_code: None,
            })),
        }
    }

    /// A [`ErrorKind::Status`] error for `status`, with a message (usually the URL).
    pub fn from_status(status: http::StatusCode, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Status,
            detail: Some(Arc::new(Detail {
                message: Some(message.into()),
                source: None,
                status: Some(status),
                close_code: None,
            })),
        }
    }

    /// A [`ErrorKind::WebSocket`] error; `close_code` is the code the WebSocket was closed
    /// with (sent by Kettle for a protocol violation, or 1006 for a lost connection).
    pub fn websocket(message: impl Into<String>, close_code: Option<u16>) -> Error {
        Error {
            kind: ErrorKind::WebSocket,
            detail: Some(Arc::new(Detail {
                message: Some(message.into()),
                source: None,
                status: None,
                close_code,
            })),
        }
    }

    /// The close code of a WebSocket error: what Kettle sent when the peer broke the protocol
    /// (1002, 1007, 1009, ...), or 1006 when the connection was lost without a close.
    ///
    /// ```
    /// let err = kettle::Error::websocket("message too big", Some(1009));
    /// assert_eq!(err.close_code(), Some(1009));
    /// ```
    pub fn close_code(&self) -> Option<u16> {
        self.detail.as_ref()?.close_code
    }

    /// The response status of an [`ErrorKind::Status`] error.
    ///
    /// ```
    /// let err = kettle::Error::from_status(http::StatusCode::NOT_FOUND, "404 Not Found");
    /// assert_eq!(err.status(), Some(http::StatusCode::NOT_FOUND));
    /// ```
    pub fn status(&self) -> Option<http::StatusCode> {
        self.detail.as_ref()?.status
    }

    /// Wraps a user error, as `Future::set_error` does with its argument.
    pub fn other(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error {
            kind: ErrorKind::Other,
            detail: Some(Arc::new(Detail {
                message: None,
                source: Some(source.into()),
                status: None,
                close_code: None,
            })),
        }
    }

    /// The `Cancelled` error.
    pub fn cancelled() -> Error {
        Error::new(ErrorKind::Cancelled)
    }

    /// The `Timeout` error.
    pub fn timeout() -> Error {
        Error::new(ErrorKind::Timeout)
    }

    /// An `InvalidState` error saying what was expected.
    pub fn invalid_state(message: impl Into<String>) -> Error {
        Error::with_message(ErrorKind::InvalidState, message)
    }

    /// Turns a caught panic payload into a `Panicked` error carrying its message.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Error {
        Error::with_message(ErrorKind::Panicked, panic_message(&*payload))
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The detail message, if any (for a panic, the panic message).
    pub fn message(&self) -> Option<&str> {
        self.detail.as_ref()?.message.as_deref()
    }

    /// True for [`ErrorKind::StopIteration`]: a finished generator was resumed.
    pub fn is_stop_iteration(&self) -> bool {
        self.kind == ErrorKind::StopIteration
    }

    /// True for [`ErrorKind::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }

    /// True for [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// True for [`ErrorKind::Panicked`].
    pub fn is_panic(&self) -> bool {
        self.kind == ErrorKind::Panicked
    }

    /// The user's error inside an [`ErrorKind::Other`], to downcast with `downcast_ref`.
    pub fn get_ref(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.detail.as_ref()?.source.as_deref()
    }
}

/// Extracts the text of a panic payload (`&str` or `String`, as `panic!` makes them).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(m) = self.message() {
            d.field("message", &m);
        }
        if let Some(s) = self.get_ref() {
            d.field("source", &s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.message(), self.get_ref()) {
            (Some(m), _) => write!(f, "{}: {}", self.kind.as_str(), m),
            (None, Some(s)) => fmt::Display::fmt(s, f),
            (None, None) => f.write_str(self.kind.as_str()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.get_ref() {
            Some(s) => Some(s as &(dyn std::error::Error + 'static)),
            None => None,
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        let kind = match e.kind {
            ErrorKind::Timeout => std::io::ErrorKind::TimedOut,
            ErrorKind::Cancelled => std::io::ErrorKind::Interrupted,
            ErrorKind::InvalidResponse | ErrorKind::Tls => std::io::ErrorKind::InvalidData,
            ErrorKind::InvalidUrl => std::io::ErrorKind::InvalidInput,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_message() {
        let e = Error::with_message(ErrorKind::Panicked, "boom");
        assert_eq!(e.to_string(), "panicked: boom");
        assert!(e.is_panic());
    }

    #[test]
    fn other_wraps_source() {
        let e = Error::other("bad thing");
        assert_eq!(e.kind(), ErrorKind::Other);
        assert_eq!(e.to_string(), "bad thing");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn detail_free_errors_are_small() {
        assert!(std::mem::size_of::<Error>() <= 16);
    }

    #[test]
    fn panic_payloads() {
        let p: Box<dyn std::any::Any + Send> = Box::new("static");
        assert_eq!(Error::from_panic(p).message(), Some("static"));
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
        assert_eq!(Error::from_panic(p).message(), Some("owned"));
    }
}
