//! Stand-in for `crate::tls` until the TLS layer lands on this branch: https connections fail
//! with a clear error. Removed when the client switches to `crate::tls`.

use std::io;
use std::task::{Context, Poll};

use crate::net::TcpStream;

/// Client-side TLS configuration (stand-in).
#[derive(Clone, Debug, Default)]
pub struct TlsConnector;

impl TlsConnector {
    /// The default configuration.
    pub fn new() -> TlsConnector {
        TlsConnector
    }

    pub(crate) async fn connect(&self, _name: &str, _stream: TcpStream) -> io::Result<TlsStream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "https is not available in this build yet",
        ))
    }
}

/// A TLS connection (stand-in; never constructed).
pub(crate) enum TlsStream {}

impl TlsStream {
    pub(crate) fn get_ref(&self) -> &TcpStream {
        match *self {}
    }
    pub(crate) fn poll_read_buf(
        &self,
        _: &mut Context<'_>,
        _: &mut bytes::BytesMut,
        _: usize,
    ) -> Poll<io::Result<usize>> {
        match *self {}
    }
    pub(crate) fn poll_write(&self, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        match *self {}
    }
    pub(crate) fn poll_flush(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match *self {}
    }
}

pub(crate) fn is_tls_error(_: &io::Error) -> bool {
    false
}
