//! The TLS side of `https-hello`: the certificate every run serves, the one `rustls`
//! `ServerConfig` both servers are given, and the count of handshakes a server made.
//!
//! * [`CertFiles`]: a self-signed certificate for `localhost` and 127.0.0.1 (rcgen's default
//!   key, ECDSA P-256 with SHA-256), made once per `https-hello` and written as PEM into a
//!   temporary directory, whose paths go to every server child.
//! * [`server_config`]: what Kettle's `TlsAcceptor::from_pem` builds (the ring provider,
//!   rustls' safe default protocol versions, cipher suites and key exchange groups, no client
//!   authentication, this one certificate), with three changes, the same for both servers:
//!   - no session resumption: no session cache (`NoServerSessionStorage`), no TLS 1.3 tickets
//!     (`send_tls13_tickets = 0`; rustls' default ticketer makes none for TLS 1.2 either).
//!     wrk's OpenSSL keeps the session of a connection it closed cleanly and offers it on its
//!     next one (`SSL_clear` keeps it), so with resumption on, the handshake mode would measure
//!     resumed handshakes, not full ones;
//!   - ALPN `http/1.1`, as Kettle's docs advise for an HTTPS server (wrk offers no ALPN, so
//!     it costs nothing here);
//!   - the certificate comes from a [`CountingResolver`], which does what rustls' single-cert
//!     resolver does and also counts the calls: rustls asks its resolver once per ClientHello
//!     (twice for a handshake with a HelloRetryRequest, which wrk's X25519 key share never
//!     causes with rustls' groups), so the count is the handshakes the server performed. It
//!     is how the parent checks that every request of the handshake mode had its own.
//!
//! Kettle gets the config through `TlsAcceptor::from_config` (`from_pem` has no resumption
//! settings), hyper through `tokio_rustls::TlsAcceptor::from`: the same rustls, provider,
//! certificate and settings, so what differs is the I/O around rustls.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kettle::tls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// Certificate selections, one per handshake, by every [`CountingResolver`] in this process.
static HANDSHAKES: AtomicU64 = AtomicU64::new(0);

/// The TLS handshakes the servers in this process have performed so far (see the module docs).
pub fn handshakes() -> u64 {
    HANDSHAKES.load(Ordering::Relaxed)
}

/// Always the same certificate and key, counting each time rustls asks (see the module docs).
#[derive(Debug)]
struct CountingResolver {
    /// The certificate chain and its signing key.
    key: Arc<CertifiedKey>,
}

impl ResolvesServerCert for CountingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // One relaxed add on the server's only thread, beside a handshake's public-key
        // operations: nothing measurable.
        HANDSHAKES.fetch_add(1, Ordering::Relaxed);
        Some(self.key.clone())
    }
}

/// The server configuration of both servers for the certificate chain and key in these PEM
/// texts (see the module docs). Errors say which input is wrong.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Arc<ServerConfig>> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("the certificate PEM", &e))?;
    if chain.is_empty() {
        return Err(invalid("the certificate PEM", &"no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| invalid("the key PEM", &e))?;
    // Kettle's provider (kettle::tls uses ring's default provider, passed explicitly).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| invalid("the certificate and key", &e))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("the protocol versions", &e))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(CountingResolver {
            key: Arc::new(certified),
        }));
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// [`server_config`] from PEM files.
pub fn server_config_from_files(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
    };
    server_config(&read(cert)?, &read(key)?)
}

/// The benchmark's certificate and key as PEM files in a temporary directory, removed (with
/// the directory) when dropped.
pub struct CertFiles {
    /// The directory, made for this process only.
    dir: PathBuf,
    /// The self-signed certificate.
    cert: PathBuf,
    /// Its private key (PKCS#8).
    key: PathBuf,
}

impl CertFiles {
    /// Makes a fresh self-signed certificate for `localhost` and 127.0.0.1 and writes it.
    pub fn generate() -> Result<CertFiles, String> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| format!("cannot make the test certificate: {e}"))?;
        let dir = std::env::temp_dir().join(format!("kettle-bench-https-{}", std::process::id()));
        let files = CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        let write = |path: &Path, text: String| {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        std::fs::create_dir_all(&files.dir)
            .map_err(|e| format!("cannot create {}: {e}", files.dir.display()))?;
        write(&files.cert, made.cert.pem())?;
        write(&files.key, made.key_pair.serialize_pem())?;
        Ok(files)
    }

    /// The certificate's path.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// The key's path.
    pub fn key(&self) -> &Path {
        &self.key
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use rustls::{ClientConfig, ClientConnection, Connection, HandshakeKind, ServerConnection};

    /// A certificate's PEM texts (certificate, key).
    pub fn pems() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (made.cert.pem(), made.key_pair.serialize_pem())
    }

    /// A client that trusts `cert_pem` and keeps sessions to resume, as wrk's OpenSSL does.
    pub fn client_config(cert_pem: &str) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // rustls' default resumption: an in-memory cache whose sessions the client offers again.
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// Moves everything `from` has to send into `to`.
    fn deliver(from: &mut Connection, to: &mut Connection) -> bool {
        let mut moved = false;
        while from.wants_write() {
            let mut wire = Vec::new();
            from.write_tls(&mut wire).unwrap();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                to.read_tls(&mut rest).unwrap();
                to.process_new_packets().unwrap();
            }
            moved = true;
        }
        moved
    }

    /// One handshake in memory, including what the server sends after it (TLS 1.3 tickets),
    /// as the server saw it.
    fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> HandshakeKind {
        let name = "localhost".try_into().unwrap();
        let mut c: Connection = ClientConnection::new(client.clone(), name).unwrap().into();
        let mut s: Connection = ServerConnection::new(server.clone()).unwrap().into();
        while deliver(&mut c, &mut s) | deliver(&mut s, &mut c) {}
        assert!(!c.is_handshaking() && !s.is_handshaking());
        s.handshake_kind().unwrap()
    }

    /// The point of the config: a client that would resume (it does with Kettle's default
    /// acceptor, the control) gets a full handshake every time, and every one is counted.
    #[test]
    fn every_handshake_is_full_and_counted() {
        let (cert, key) = pems();
        let client = client_config(&cert);

        let defaults = kettle::tls::TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())
            .unwrap()
            .config()
            .clone();
        assert_eq!(handshake(&client, &defaults), HandshakeKind::Full);
        assert_eq!(handshake(&client, &defaults), HandshakeKind::Resumed);

        let config = server_config(cert.as_bytes(), key.as_bytes()).unwrap();
        let before = handshakes();
        for _ in 0..3 {
            assert_eq!(handshake(&client, &config), HandshakeKind::Full);
        }
        // Other tests' servers may count too, so only a lower bound holds here.
        assert!(handshakes() - before >= 3);
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_inputs_are_named() {
        let (cert, key) = pems();
        let err = |c: &str, k: &str| server_config(c.as_bytes(), k.as_bytes()).unwrap_err();
        assert!(err("", &key).to_string().contains("certificate PEM"));
        assert!(err(&cert, "").to_string().contains("key PEM"));
        let (_, other_key) = pems();
        assert!(err(&cert, &other_key)
            .to_string()
            .contains("certificate and key"));
    }

    #[test]
    fn files_are_written_and_removed() {
        let files = CertFiles::generate().unwrap();
        let dir = files.cert().parent().unwrap().to_path_buf();
        assert!(server_config_from_files(files.cert(), files.key()).is_ok());
        drop(files);
        assert!(!dir.exists());
    }
}
