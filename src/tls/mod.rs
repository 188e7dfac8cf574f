//! TLS for Kettle's sockets (asyncio's `ssl=` argument), through rustls.
//!
//! - [`TlsConnector`] (client) and [`TlsAcceptor`] (server) hold the configuration: trust
//!   roots, certificate and key, ALPN. Build one and share it; clones are cheap.
//! - `connector.connect(name, tcp)` and `acceptor.accept(tcp)` run the handshake over a
//!   connected [`TcpStream`](crate::net::TcpStream) and return a [`TlsStream`], which reads
//!   and writes plaintext like the `TcpStream` it wraps.
//! - TLS failures are `io::Error`s carrying a [`TlsError`]: see [`is_tls_error`].
//!
//! The web server ([`ServerOptions::tls`](crate::web::ServerOptions::tls)) and asyncio's
//! streams ([`open_connection_tls`](crate::net::streams::open_connection_tls),
//! [`start_server_tls`](crate::net::streams::start_server_tls)) use these too.
//!
//! ```
//! use kettle::net::{TcpListener, TcpStream};
//! use kettle::tls::{TlsAcceptor, TlsConnector};
//!
//! // A certificate authority and a certificate for localhost, made on the spot (rcgen).
//! let ca_key = rcgen::KeyPair::generate().unwrap();
//! let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! let ca = ca.self_signed(&ca_key).unwrap();
//! let key = rcgen::KeyPair::generate().unwrap();
//! let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
//!     .unwrap()
//!     .signed_by(&key, &ca, &ca_key)
//!     .unwrap();
//!
//! let acceptor =
//!     TlsAcceptor::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
//! let connector = TlsConnector::builder()
//!     .webpki_roots(false)
//!     .add_root_pem(ca.pem().as_bytes())
//!     .unwrap()
//!     .build()
//!     .unwrap();
//!
//! kettle::run(async move {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = kettle::spawn(async move {
//!         let (tcp, _) = listener.accept().await.unwrap();
//!         let tls = acceptor.accept(tcp).await.unwrap();
//!         let mut buf = [0u8; 4];
//!         tls.read_exact(&mut buf).await.unwrap();
//!         tls.write_all(&buf).await.unwrap();
//!         tls.shutdown().await.unwrap();
//!     });
//!     let tcp = TcpStream::connect(addr).await.unwrap();
//!     let tls = connector.connect("localhost", tcp).await.unwrap();
//!     tls.write_all(b"ping").await.unwrap();
//!     let mut buf = [0u8; 4];
//!     tls.read_exact(&mut buf).await.unwrap();
//!     assert_eq!(&buf, b"ping");
//!     assert_eq!(tls.read(&mut buf).await.unwrap(), 0); // the server's close_notify
//!     server.await.unwrap();
//! });
//! ```
//!
//! # Crypto
//!
//! rustls runs on the `ring` provider, with rustls' safe defaults (TLS 1.3 and 1.2, forward
//! secret AEAD suites only). The handshake is driven by Kettle's readiness events like any
//! other socket operation; see `stream.rs` for how reads, writes and the alerts a read can
//! produce share one socket.

mod acceptor;
mod connector;
mod error;
mod pem;
mod stream;

use std::sync::Arc;

pub use acceptor::TlsAcceptor;
pub use connector::{TlsConnector, TlsConnectorBuilder};
pub use error::{is_tls_error, tls_error, TlsError};
pub use stream::TlsStream;

/// The rustls version Kettle uses, for [`TlsConnector::from_config`],
/// [`TlsAcceptor::from_config`] and matching on [`TlsError::rustls_error`] without a
/// direct dependency whose version could drift from Kettle's.
pub use rustls;

/// The crypto provider for every configuration Kettle builds. Passed explicitly rather than
/// installed process-wide, so an application that also links aws-lc-rs (through another
/// crate) cannot make rustls' default ambiguous for us, nor we for it.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
