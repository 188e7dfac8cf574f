//! Building the client's `kettle::Error`s, so every failure says which kind it is and where.

use std::io;
use std::time::Instant;

use super::pool::PoolKey;
use super::timeout::Deadlines;
use crate::error::{Error, ErrorKind};

/// A failure to reach `key`'s origin; `what` says which step failed (empty for the connect
/// itself, which the kind already says).
pub(crate) fn connect_error(key: &PoolKey, what: &str, e: io::Error) -> Error {
    let message = if what.is_empty() {
        format!("{key}: {e}")
    } else {
        format!("{key}: {what}: {e}")
    };
    Error::with_source(ErrorKind::Connect, message, e)
}

/// An I/O failure on an established connection.
pub(crate) fn io_error(what: &str, e: io::Error) -> Error {
    Error::with_source(ErrorKind::Io, format!("{e} {what}"), e)
}

/// A timeout while doing `what`, naming the limit that ran out: `total` if its deadline is
/// the one that passed, the specific limit otherwise.
pub(crate) fn timeout_error(deadlines: &Deadlines, deadline: Option<Instant>, what: &str) -> Error {
    let message = match (deadlines.total, deadlines.timeout.get_total()) {
        (Some(t), Some(d)) if deadline.is_some_and(|x| x >= t) => {
            format!("total timeout ({d:?}) passed {what}")
        }
        _ => format!("timed out {what}"),
    };
    Error::with_message(ErrorKind::Timeout, message)
}

/// Whether an error means the connection was closed under us before the response began.
pub(crate) fn is_disconnect(e: &Error) -> bool {
    if e.kind() != ErrorKind::Io {
        return false;
    }
    let Some(io) = e.get_ref().and_then(|s| s.downcast_ref::<io::Error>()) else {
        return false;
    };
    matches!(
        io.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// An `InvalidResponse` error.
pub(crate) fn invalid_response(message: impl Into<String>) -> Error {
    Error::with_message(ErrorKind::InvalidResponse, message)
}
