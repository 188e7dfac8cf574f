//! The server side: [`TlsAcceptor`], a shared `rustls::ServerConfig`.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

use super::error::TlsError;
use super::{pem, provider, TlsStream};
use crate::net::TcpStream;

/// Server-side TLS settings: the certificate chain and key to present, ALPN. Cheap to clone
/// (an `Arc<rustls::ServerConfig>` inside); every connection of a server shares one.
///
/// ```
/// use kettle::tls::TlsAcceptor;
/// let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let (cert_pem, key_pem) = (generated.cert.pem(), generated.key_pair.serialize_pem());
///
/// let acceptor = TlsAcceptor::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?
///     .with_alpn(&[b"http/1.1"]);
/// assert_eq!(acceptor.config().alpn_protocols, [b"http/1.1".to_vec()]);
///
/// // What is missing or wrong is named:
/// let err = TlsAcceptor::from_pem(cert_pem.as_bytes(), b"").unwrap_err();
/// assert!(err.to_string().contains("no private key"), "{err}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
}

impl TlsAcceptor {
    /// Presents the certificate chain in `cert_chain_pem` (the server's certificate first,
    /// then any intermediates) with the private key in `key_pem` (PKCS#8, PKCS#1 or SEC1).
    /// Errors say what is wrong: no certificate, no key, a key that is not the
    /// certificate's, a key of a kind ring cannot use.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsAcceptor> {
        let chain = pem::certificates(cert_chain_pem, "the certificate chain PEM")?;
        let key = pem::private_key(key_pem, "the private key PEM")?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| {
                let why = match e {
                    rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                        "the private key does not match the certificate".to_string()
                    }
                    e => e.to_string(),
                };
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot serve TLS with this certificate and key: {why}"),
                )
            })?;
        Ok(TlsAcceptor::from_config(Arc::new(config)))
    }

    /// [`from_pem`](Self::from_pem) from files (e.g. `fullchain.pem` and `privkey.pem`).
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> io::Result<TlsAcceptor> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let certs = pem::read_file(cert_path, "certificate file")?;
        let key = pem::read_file(key_path, "key file")?;
        TlsAcceptor::from_pem(&certs, &key).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{} with {}: {e}", cert_path.display(), key_path.display()),
            )
        })
    }

    /// Offers these ALPN protocols (e.g. `&[b"http/1.1"]`); a client that offers ALPN but
    /// none of these is refused, as RFC 7301 asks.
    pub fn with_alpn(self, protos: &[&[u8]]) -> TlsAcceptor {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protos.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from_config(Arc::new(config))
    }

    /// Uses a `rustls::ServerConfig` made by the caller (client certificates, SNI-based
    /// certificate selection, ...).
    pub fn from_config(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Performs the server's side of the handshake over an accepted `stream`. Errors are as
    /// for [`TlsConnector::connect`](super::TlsConnector::connect); there is no timeout
    /// here, so bound it with [`wait_for`](crate::wait_for) (a client that connects and
    /// sends nothing would otherwise hold the connection forever).
    pub async fn accept(&self, stream: TcpStream) -> io::Result<TlsStream> {
        let peer = match stream.peer_addr() {
            Ok(addr) => format!("client {addr}"),
            Err(_) => "a client".to_string(),
        };
        let conn = rustls::ServerConnection::new(self.config.clone()).map_err(|e| {
            TlsError::from_rustls(format!("TLS handshake with {peer}"), e)
                .into_io(io::ErrorKind::InvalidData)
        })?;
        TlsStream::handshake(stream, conn.into(), peer).await
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}
