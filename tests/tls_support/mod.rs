//! Certificates for the TLS tests, made in the test with rcgen: a private CA and a server
//! certificate for `localhost` and `127.0.0.1` signed by it.
#![allow(dead_code)]

use std::path::PathBuf;

use kettle::tls::{TlsAcceptor, TlsConnector};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A test PKI: one CA and one server certificate it issued.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Kettle test CA");
        let ca = params.self_signed(&ca_key).unwrap();
        let mut pki = Pki {
            ca_pem: ca.pem(),
            cert_pem: String::new(),
            key_pem: String::new(),
            ca,
            ca_key,
        };
        let (cert_pem, key_pem) = pki.issue(&["localhost", "127.0.0.1"]);
        pki.cert_pem = cert_pem;
        pki.key_pem = key_pem;
        pki
    }

    /// A certificate for `names` (DNS names or IP literals) signed by the CA: (cert, key).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server presenting the `localhost` certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }

    /// A client trusting only the test CA.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::builder()
            .webpki_roots(false)
            .add_root_pem(self.ca_pem.as_bytes())
            .unwrap()
            .build()
            .unwrap()
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kettle-tls-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of `program` if it is installed (looked up in `PATH`).
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|p| p.is_file())
}
