//! Certificates and keys from PEM, with errors that say which input lacked what.

use std::io;
use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every `CERTIFICATE` block of `pem` (other blocks are skipped). `what` names the input in
/// errors ("the certificate chain PEM"); none at all is an `InvalidInput` error.
pub(crate) fn certificates(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(what, e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains no certificate (no BEGIN CERTIFICATE block)"),
        ));
    }
    Ok(certs)
}

/// The first private key of `pem`: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or
/// SEC1 (`EC PRIVATE KEY`).
pub(crate) fn private_key(pem: &[u8], what: &str) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{what} contains no private key (no PRIVATE KEY, RSA PRIVATE KEY or \
                 EC PRIVATE KEY block)"
            ),
        ),
        e => bad_pem(what, e),
    })
}

/// Reads a PEM file, naming it in the error.
pub(crate) fn read_file(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))
}

fn bad_pem(what: &str, e: pem::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} is not valid PEM: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_blocks_are_named() {
        let err = certificates(b"just text", "the chain").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err
            .to_string()
            .contains("the chain contains no certificate"));
        let err = private_key(b"", "the key file").unwrap_err();
        assert!(err
            .to_string()
            .contains("the key file contains no private key"));
        let truncated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        let err = certificates(truncated, "the chain").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
