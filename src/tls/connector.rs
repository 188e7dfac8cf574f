//! The client side: [`TlsConnector`] (a shared `rustls::ClientConfig`) and its builder.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::TlsError;
use super::{pem, provider, TlsStream};
use crate::net::TcpStream;

/// Client-side TLS settings: which certificate authorities to trust, ALPN, an optional
/// client certificate. Cheap to clone (an `Arc<rustls::ClientConfig>` inside), so build one
/// per application and share it.
///
/// ```no_run
/// use kettle::net::TcpStream;
/// use kettle::tls::TlsConnector;
///
/// kettle::run(async {
///     let connector = TlsConnector::new(); // the web PKI's roots, certificates verified
///     let addr = kettle::net::lookup_host("example.com", 443).await?[0];
///     let tcp = TcpStream::connect(addr).await?;
///     let tls = connector.connect("example.com", tcp).await?;
///     tls.write_all(b"HEAD / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
///         .await?;
///     let mut head = [0u8; 12];
///     tls.read_exact(&mut head).await?;
///     assert!(head.starts_with(b"HTTP/1.1 "));
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// Verifies servers against the web PKI (Mozilla's root store, compiled in through
    /// `webpki-roots`), with no ALPN and no client certificate.
    pub fn new() -> TlsConnector {
        TlsConnector::builder()
            .build()
            .expect("the built-in roots with ring's default settings form a valid configuration")
    }

    /// Starts a custom configuration (own CA, ALPN, client certificate, ...).
    pub fn builder() -> TlsConnectorBuilder {
        TlsConnectorBuilder {
            roots: RootCertStore::empty(),
            webpki: true,
            native: false,
            accept_invalid: false,
            alpn: Vec::new(),
            client_auth: None,
        }
    }

    /// Uses a `rustls::ClientConfig` made by the caller, for what the builder does not cover.
    pub fn from_config(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Performs the TLS handshake over `stream` with the server `server_name` (a DNS name,
    /// or an IP literal such as `127.0.0.1` or `::1`, brackets allowed), which the server's
    /// certificate must be valid for. The name is also sent as SNI (IP addresses are not).
    ///
    /// A handshake that fails (a certificate that does not verify, no common protocol, an
    /// alert) is an `InvalidData` error carrying a [`TlsError`]; a peer that hangs up in the
    /// middle is an `UnexpectedEof` one carrying a `TlsError` too. There is no timeout here:
    /// wrap the call in [`wait_for`](crate::wait_for) to bound it. Dropping the future closes
    /// the socket.
    pub async fn connect(&self, server_name: &str, stream: TcpStream) -> io::Result<TlsStream> {
        let bare = server_name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(server_name);
        let name = ServerName::try_from(bare.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{server_name:?} is neither a valid DNS name nor an IP address"),
            )
        })?;
        let conn = rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| {
            TlsError::from_rustls(format!("TLS handshake with {server_name}"), e)
                .into_io(io::ErrorKind::InvalidData)
        })?;
        TlsStream::handshake(stream, conn.into(), server_name.to_string()).await
    }
}

impl Default for TlsConnector {
    fn default() -> TlsConnector {
        TlsConnector::new()
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TlsConnector`]; from [`TlsConnector::builder`].
///
/// ```
/// use kettle::tls::TlsConnector;
/// # let ca_pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
/// // Trust only our own CA (say, a test or an internal service), and speak HTTP/1.1.
/// let connector = TlsConnector::builder()
///     .webpki_roots(false)
///     .add_root_pem(ca_pem.as_bytes())?
///     .alpn_protocols(&[b"http/1.1"])
///     .build()?;
/// assert_eq!(connector.config().alpn_protocols, [b"http/1.1".to_vec()]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TlsConnectorBuilder {
    /// Roots added explicitly.
    roots: RootCertStore,
    /// Add the web PKI's roots at `build`.
    webpki: bool,
    /// Add the system's roots at `build`.
    native: bool,
    /// Skip certificate verification (tests only).
    accept_invalid: bool,
    /// ALPN protocols to offer, in order of preference.
    alpn: Vec<Vec<u8>>,
    /// A client certificate chain and its key.
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl TlsConnectorBuilder {
    /// Trusts the certificate authorities in `pem` (one or more `CERTIFICATE` blocks; other
    /// blocks are skipped), in addition to the web PKI unless
    /// [`webpki_roots(false)`](Self::webpki_roots). No certificate in `pem`, or one that is
    /// not a usable trust anchor, is an error.
    pub fn add_root_pem(mut self, pem: &[u8]) -> io::Result<Self> {
        for cert in pem::certificates(pem, "the root certificate PEM")? {
            self.roots.add(cert).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the root certificate PEM holds an unusable certificate: {e}"),
                )
            })?;
        }
        Ok(self)
    }

    /// [`add_root_pem`](Self::add_root_pem) from a file.
    pub fn add_root_pem_file(self, path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let pem = pem::read_file(path, "root certificate file")?;
        self.add_root_pem(&pem)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Whether to trust the web PKI's roots (Mozilla's, compiled in); on by default. Turn it
    /// off with [`add_root_pem`](Self::add_root_pem) to trust only your own CA.
    pub fn webpki_roots(mut self, on: bool) -> Self {
        self.webpki = on;
        self
    }

    /// Whether to trust the operating system's roots too (off by default). They are read
    /// when [`build`](Self::build) runs: on Linux, the distribution's CA bundle (found the
    /// way OpenSSL finds it, `SSL_CERT_FILE` included).
    pub fn native_roots(mut self, on: bool) -> Self {
        self.native = on;
        self
    }

    /// Accepts any server certificate: expired, self-signed, for another name. **Only for
    /// tests and development**: it makes the connection open to anyone in the middle. The
    /// handshake's own signatures are still checked with the certificate presented, so it
    /// is still TLS, just with an unauthenticated server.
    pub fn danger_accept_invalid_certs(mut self, on: bool) -> Self {
        self.accept_invalid = on;
        self
    }

    /// The protocols to offer through ALPN, most preferred first (e.g. `&[b"http/1.1"]`).
    pub fn alpn_protocols(mut self, protos: &[&[u8]]) -> Self {
        self.alpn = protos.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Presents a client certificate to servers that ask for one: `cert_chain` holds the
    /// certificate and any intermediates (leaf first), `key` its private key, both PEM.
    pub fn client_auth_pem(mut self, cert_chain: &[u8], key: &[u8]) -> io::Result<Self> {
        let chain = pem::certificates(cert_chain, "the client certificate PEM")?;
        let key = pem::private_key(key, "the client key PEM")?;
        self.client_auth = Some((chain, key));
        Ok(self)
    }

    /// Builds the connector. Fails if no root would be trusted (web PKI off and none added,
    /// and not accepting invalid certificates), or the client certificate and key do not
    /// fit together.
    pub fn build(self) -> io::Result<TlsConnector> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?;
        let builder = if self.accept_invalid {
            let verifier = AcceptAnyServerCert {
                algorithms: provider.signature_verification_algorithms,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        } else {
            let mut roots = self.roots;
            if self.webpki {
                roots
                    .roots
                    .extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            if self.native {
                add_native_roots(&mut roots)?;
            }
            if roots.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no trusted root certificates: the web PKI roots are off and no other \
                     roots were added, so no server could be verified",
                ));
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match self.client_auth {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the client certificate cannot be used: {e}"),
                )
            })?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        Ok(TlsConnector {
            config: Arc::new(config),
        })
    }
}

impl fmt::Debug for TlsConnectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnectorBuilder")
            .field("added_roots", &self.roots.len())
            .field("webpki_roots", &self.webpki)
            .field("native_roots", &self.native)
            .field("danger_accept_invalid_certs", &self.accept_invalid)
            .field("alpn_protocols", &self.alpn)
            .field("client_auth", &self.client_auth.is_some())
            .finish()
    }
}

/// Adds the system store's certificates. A store that yields nothing is an error: the
/// caller asked for it, and silently trusting less than expected would only surface later as
/// puzzling verification failures.
fn add_native_roots(roots: &mut RootCertStore) -> io::Result<()> {
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no usable certificate in the system trust store{}",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                }
            ),
        ));
    }
    Ok(())
}

fn config_error(e: rustls::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid TLS configuration: {e}"),
    )
}

/// A verifier for [`TlsConnectorBuilder::danger_accept_invalid_certs`]: any certificate
/// passes, but the handshake signatures must still be made by its key, so the peer at least
/// holds the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
