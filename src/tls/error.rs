//! [`TlsError`]: how a TLS failure travels inside an `io::Error`.
//!
//! Every TLS operation returns `io::Result`, so TLS composes with the rest of Kettle's I/O
//! (`?` in a handler, the streams' error storage). To keep TLS failures recognisable, the
//! `io::Error` carries a `TlsError` as its inner error; [`is_tls_error`] and
//! `io_err.get_ref()?.downcast_ref::<TlsError>()` find it again.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// A TLS failure: a certificate that does not verify, a handshake the peer and we cannot
/// agree on, an alert from the peer, a record that does not decrypt.
///
/// It reaches callers inside an [`io::Error`] of kind `InvalidData` (or `UnexpectedEof` for a
/// peer that hung up in the middle of the handshake), whose [`get_ref`](io::Error::get_ref)
/// is this type:
///
/// ```
/// use kettle::tls::{is_tls_error, TlsError};
/// fn explain(err: &std::io::Error) -> String {
///     match err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) {
///         Some(tls) => format!("TLS problem: {tls}"),
///         None => format!("network problem: {err}"),
///     }
/// }
/// let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// assert!(!is_tls_error(&plain));
/// assert!(explain(&plain).starts_with("network problem"));
/// ```
#[derive(Debug, Clone)]
pub struct TlsError {
    /// What was being done with whom, e.g. "TLS handshake with example.com".
    context: String,
    /// The reason, when rustls gave one.
    rustls: Option<rustls::Error>,
    /// The reason otherwise (the peer hung up, a malformed record stream).
    detail: Option<String>,
}

impl TlsError {
    /// A failure reported by rustls while doing `context`.
    pub(crate) fn from_rustls(context: String, err: rustls::Error) -> TlsError {
        TlsError {
            context,
            rustls: Some(err),
            detail: None,
        }
    }

    /// A failure found by Kettle itself while doing `context`.
    pub(crate) fn other(context: String, detail: impl Into<String>) -> TlsError {
        TlsError {
            context,
            rustls: None,
            detail: Some(detail.into()),
        }
    }

    /// The rustls error behind this failure, if it came from rustls (for matching on
    /// `rustls::Error::InvalidCertificate(..)`, `AlertReceived(..)`, ...).
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        self.rustls.as_ref()
    }

    /// Wraps this error in an `io::Error` of `kind`.
    pub(crate) fn into_io(self, kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, self)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.context)?;
        if let Some(e) = &self.rustls {
            write!(f, ": {e}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl StdError for TlsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.rustls.as_ref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// Whether `err` is a TLS failure (carries a [`TlsError`]) rather than a plain I/O one.
pub fn is_tls_error(err: &io::Error) -> bool {
    tls_error(err).is_some()
}

/// The [`TlsError`] inside `err`, if it carries one.
pub fn tls_error(err: &io::Error) -> Option<&TlsError> {
    err.get_ref().and_then(|e| e.downcast_ref::<TlsError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_context_and_the_cause() {
        let e = TlsError::from_rustls(
            "TLS handshake with example.com".into(),
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName),
        );
        let io = e.into_io(io::ErrorKind::InvalidData);
        assert!(is_tls_error(&io));
        let text = io.to_string();
        assert!(
            text.starts_with("TLS handshake with example.com failed: "),
            "{text}"
        );
        assert!(text.contains("NotValidForName"), "{text}");
        let inner = tls_error(&io).unwrap();
        assert!(matches!(
            inner.rustls_error(),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        assert!(inner.source().is_some());

        let eof = TlsError::other("TLS handshake with x".into(), "the peer closed");
        assert_eq!(
            eof.to_string(),
            "TLS handshake with x failed: the peer closed"
        );
        assert!(eof.rustls_error().is_none() && eof.source().is_none());
    }
}
