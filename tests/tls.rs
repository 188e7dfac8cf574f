//! TLS through real sockets on 127.0.0.1: `TlsConnector` and `TlsAcceptor` with a CA made in
//! the test, certificate failures, misbehaving peers, a large two-way transfer, and how the
//! end of a session is reported.

mod tls_support;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use kettle::net::{TcpListener, TcpStream};
use kettle::tls::{is_tls_error, rustls, tls_error, TlsAcceptor, TlsConnector, TlsStream};
use tls_support::{Pki, TempDir};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Generous bound for anything that must not hang.
const NO_HANG: Duration = Duration::from_secs(10);

/// A TLS echo server (one task per connection) on a free port.
fn spawn_echo_server(acceptor: TlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    kettle::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            kettle::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) => {
                            let _ = tls.shutdown().await;
                            return;
                        }
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
    addr
}

async fn connect(connector: &TlsConnector, name: &str, addr: SocketAddr) -> io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr).await?;
    match kettle::wait_for(connector.connect(name, tcp), NO_HANG).await {
        Ok(r) => r,
        Err(e) => panic!("the handshake hung: {e}"),
    }
}

#[kettle::test]
async fn echo_through_a_private_ca() {
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    let tls = connect(&pki.connector(), "localhost", addr).await.unwrap();
    assert_eq!(
        tls.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(tls.alpn_protocol(), None);
    assert_eq!(tls.server_name().as_deref(), Some("localhost"));
    assert!(!tls.is_server());
    let chain = tls.peer_certificates().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(tls.get_ref().peer_addr().unwrap(), addr);
    for msg in [&b"hello"[..], b"kettle", &[7u8; 40_000]] {
        tls.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        tls.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
    tls.shutdown().await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        tls.read(&mut buf).await.unwrap(),
        0,
        "the echo's close_notify"
    );
}

#[kettle::test]
async fn an_ip_literal_is_verified_against_the_ip_san() {
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    let tls = connect(&pki.connector(), "127.0.0.1", addr).await.unwrap();
    tls.write_all(b"by address").await.unwrap();
    let mut back = [0u8; 10];
    tls.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"by address");
}

#[kettle::test]
async fn the_server_sees_sni_and_both_ends_agree_on_alpn() {
    let pki = Pki::new();
    let acceptor = pki.acceptor().with_alpn(&[b"h2", b"http/1.1"]);
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = kettle::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        assert!(tls.is_server());
        assert_eq!(tls.server_name().as_deref(), Some("localhost"));
        assert_eq!(tls.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
        tls.write_all(b"ok").await.unwrap();
        tls.shutdown().await.unwrap();
    });
    let connector = TlsConnector::builder()
        .webpki_roots(false)
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .alpn_protocols(&[b"http/1.1"])
        .build()
        .unwrap();
    let tls = connect(&connector, "localhost", addr).await.unwrap();
    assert_eq!(tls.alpn_protocol(), Some(b"http/1.1".to_vec()));
    let mut buf = [0u8; 2];
    tls.read_exact(&mut buf).await.unwrap();
    server.await.unwrap();
}

#[kettle::test]
async fn a_certificate_for_another_name_is_a_tls_error_naming_the_problem() {
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    let err = connect(&pki.connector(), "example.com", addr)
        .await
        .unwrap_err();
    assert!(is_tls_error(&err), "{err:?}");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let text = err.to_string();
    assert!(
        text.starts_with("TLS handshake with example.com failed: invalid peer certificate"),
        "{text}"
    );
    assert!(
        text.contains("not valid for name \"example.com\""),
        "{text}"
    );
    let inner = tls_error(&err).unwrap();
    assert!(matches!(
        inner.rustls_error(),
        Some(rustls::Error::InvalidCertificate(_))
    ));
}

#[kettle::test]
async fn an_unknown_ca_is_a_tls_error() {
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    // The web PKI's roots only: the test CA is unknown to them.
    let err = connect(&TlsConnector::new(), "localhost", addr)
        .await
        .unwrap_err();
    assert!(is_tls_error(&err), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // And another CA's roots do not help either.
    let other = Pki::new();
    let err = connect(&other.connector(), "localhost", addr)
        .await
        .unwrap_err();
    assert!(is_tls_error(&err), "{err:?}");
}

#[kettle::test]
async fn accepting_invalid_certs_reaches_a_self_signed_server() {
    let generated = rcgen::generate_simple_self_signed(vec!["self.test".into()]).unwrap();
    let acceptor = TlsAcceptor::from_pem(
        generated.cert.pem().as_bytes(),
        generated.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let addr = spawn_echo_server(acceptor);
    let strict = connect(&TlsConnector::new(), "localhost", addr).await;
    assert!(is_tls_error(&strict.unwrap_err()));
    let lax = TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    // Wrong name, unknown issuer: both let through.
    let tls = connect(&lax, "localhost", addr).await.unwrap();
    tls.write_all(b"anyone there?").await.unwrap();
    let mut back = [0u8; 13];
    tls.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"anyone there?");
}

#[kettle::test]
async fn a_plain_tcp_server_is_a_tls_error_not_a_hang() {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    kettle::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // An HTTP server answering the ClientHello as if it were a request, and staying.
        tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        kettle::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    });
    let err = connect(&TlsConnector::new(), "localhost", addr)
        .await
        .unwrap_err();
    assert!(is_tls_error(&err), "{err:?}");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[kettle::test]
async fn a_plain_tcp_client_is_refused_by_the_acceptor() {
    let pki = Pki::new();
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = kettle::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Whatever the server answers (an alert), it then closes.
        let mut buf = [0u8; 256];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let err = kettle::wait_for(pki.acceptor().accept(tcp), NO_HANG)
        .await
        .unwrap()
        .unwrap_err();
    assert!(is_tls_error(&err), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("TLS handshake with client 127.0.0.1:"),
        "{err}"
    );
    client.await.unwrap();
}

#[kettle::test]
async fn a_stalled_handshake_is_ended_by_the_callers_timeout() {
    // A server that accepts and never says a word.
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = kettle::spawn(async move {
        let (_tcp, _) = listener.accept().await.unwrap();
        kettle::sleep(Duration::from_secs(30)).await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let result = kettle::wait_for(
        TlsConnector::new().connect("localhost", tcp),
        Duration::from_millis(200),
    )
    .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(started.elapsed() < NO_HANG);

    // The same on the server side: a client that connects and sends nothing.
    let pki = Pki::new();
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let _idle = TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let result = kettle::wait_for(pki.acceptor().accept(tcp), Duration::from_millis(200)).await;
    assert!(result.unwrap_err().is_timeout());
}

#[kettle::test]
async fn a_peer_that_hangs_up_mid_handshake_is_unexpected_eof() {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    kettle::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut hello = [0u8; 64];
        let _ = tcp.read(&mut hello).await;
        drop(tcp); // reads the start of the ClientHello, then closes
    });
    let err = connect(&TlsConnector::new(), "localhost", addr)
        .await
        .unwrap_err();
    // A reset is possible too when the ClientHello was not read whole.
    if err.kind() != io::ErrorKind::ConnectionReset {
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err:?}");
        assert!(is_tls_error(&err));
        assert!(
            err.to_string().contains("before the handshake completed"),
            "{err}"
        );
    }
}

/// Bytes `i..` of a stream seeded by `seed`, cheap to generate and to check.
fn pattern(seed: u8, start: usize, len: usize) -> Vec<u8> {
    (start..start + len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

/// Sends `total` bytes of `seed`'s pattern, then `close_notify`. Every megabyte it also
/// updates its keys, asking the peer to update too: the peer's reading task then produces
/// output of its own (its key update) while its writing task is busy, which must neither be
/// lost nor take the writing task's place as the one woken when the socket drains.
async fn send_pattern(tls: Rc<TlsStream>, seed: u8, total: usize) {
    let mut sent = 0;
    let mut next_update = 1 << 20;
    while sent < total {
        if sent >= next_update {
            tls.refresh_traffic_keys().unwrap();
            next_update += 1 << 20;
        }
        // Odd sizes, so writes straddle records and the outgoing buffer's cap.
        let len = (total - sent).min(50_000 + sent % 7_777);
        tls.write_all(&pattern(seed, sent, len)).await.unwrap();
        sent += len;
    }
    tls.shutdown().await.unwrap();
}

/// Reads until `close_notify`, checking every byte against `seed`'s pattern.
async fn receive_pattern(tls: Rc<TlsStream>, seed: u8) -> usize {
    let mut got = 0;
    let mut buf = bytes::BytesMut::new();
    loop {
        buf.clear();
        let n = tls.read_buf(&mut buf, 32 * 1024).await.unwrap();
        if n == 0 {
            return got;
        }
        assert_eq!(&buf[..], &pattern(seed, got, n)[..], "at byte {got}");
        got += n;
    }
}

#[kettle::test]
async fn eight_mib_each_way_at_once_with_reader_and_writer_tasks_sharing_streams() {
    const TOTAL: usize = 8 << 20;
    let pki = Pki::new();
    let acceptor = pki.acceptor();
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = kettle::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = Rc::new(acceptor.accept(tcp).await.unwrap());
        let writer = kettle::spawn(send_pattern(tls.clone(), 2, TOTAL));
        let got = receive_pattern(tls, 1).await;
        writer.await.unwrap();
        got
    });
    let tls = Rc::new(connect(&pki.connector(), "localhost", addr).await.unwrap());
    // Small kernel buffers, so both directions keep hitting a full socket.
    tls.get_ref().set_send_buffer_size(64 * 1024).unwrap();
    let writer = kettle::spawn(send_pattern(tls.clone(), 1, TOTAL));
    let reader = kettle::spawn(receive_pattern(tls.clone(), 2));
    let work = async {
        writer.await.unwrap();
        let client_got = reader.await.unwrap();
        let server_got = server.await.unwrap();
        (client_got, server_got)
    };
    let (client_got, server_got) = kettle::wait_for(work, Duration::from_secs(30))
        .await
        .expect("the transfer stalled");
    assert_eq!(client_got, TOTAL);
    assert_eq!(server_got, TOTAL);
}

#[kettle::test]
async fn close_notify_reads_as_zero_and_a_bare_tcp_end_as_unexpected_eof() {
    let pki = Pki::new();
    let acceptor = pki.acceptor();
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    kettle::spawn(async move {
        // First connection: data, then a clean close.
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        tls.write_all(b"bye").await.unwrap();
        tls.shutdown().await.unwrap();
        // Second: data, then the socket is dropped without close_notify.
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        tls.write_all(b"cut").await.unwrap();
        drop(tls);
    });
    let connector = pki.connector();
    let mut buf = [0u8; 3];

    let clean = connect(&connector, "localhost", addr).await.unwrap();
    clean.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"bye");
    assert_eq!(clean.read(&mut buf).await.unwrap(), 0);
    assert_eq!(clean.read(&mut buf).await.unwrap(), 0, "EOF stays EOF");
    // Our side may still close properly after the peer's close_notify.
    clean.shutdown().await.unwrap();

    let cut = connect(&connector, "localhost", addr).await.unwrap();
    cut.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"cut");
    let err = cut.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("without close_notify"), "{err}");
}

#[kettle::test]
async fn writing_after_shutdown_is_refused() {
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    let tls = connect(&pki.connector(), "localhost", addr).await.unwrap();
    tls.shutdown().await.unwrap();
    tls.shutdown().await.unwrap(); // repeating is harmless
    let err = tls.write(b"late").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

#[kettle::test]
async fn a_client_certificate_reaches_a_server_that_asks_for_it() {
    let pki = Pki::new();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain = rustls::pki_types::CertificateDer::from_pem_slice(pki.cert_pem.as_bytes()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![chain], key)
        .unwrap();
    let acceptor = TlsAcceptor::from_config(std::sync::Arc::new(config));

    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = kettle::spawn(async move {
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(tls) => {
                    let certs = tls.peer_certificates().expect("a client certificate");
                    assert_eq!(certs.len(), 1);
                    tls.write_all(b"welcome").await.unwrap();
                    tls.shutdown().await.unwrap();
                }
                Err(e) => assert!(is_tls_error(&e), "{e:?}"),
            }
        }
    });
    let (client_cert, client_key) = pki.issue(&["client.test"]);
    let with_cert = TlsConnector::builder()
        .webpki_roots(false)
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .client_auth_pem(client_cert.as_bytes(), client_key.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let tls = connect(&with_cert, "localhost", addr).await.unwrap();
    let mut buf = [0u8; 7];
    tls.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"welcome");

    // Without one, TLS 1.3 reports the server's refusal at the first read.
    let tls = connect(&pki.connector(), "localhost", addr).await;
    let err = match tls {
        Ok(tls) => tls.read(&mut buf).await.unwrap_err(),
        Err(e) => e,
    };
    assert!(is_tls_error(&err), "{err:?}");
    server.await.unwrap();
}

#[test]
fn configuration_errors_say_what_is_wrong() {
    let pki = Pki::new();
    let cert = pki.cert_pem.as_bytes();
    let key = pki.key_pem.as_bytes();

    let err = TlsAcceptor::from_pem(b"", key).unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    let err = TlsAcceptor::from_pem(cert, cert).unwrap_err();
    assert!(err.to_string().contains("no private key"), "{err}");
    let (_, other_key) = pki.issue(&["localhost"]);
    let err = TlsAcceptor::from_pem(cert, other_key.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .contains("the private key does not match the certificate"),
        "{err}"
    );

    let err = TlsConnector::builder()
        .webpki_roots(false)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("no trusted root certificates"),
        "{err}"
    );
    let err = TlsConnector::builder()
        .add_root_pem(b"nothing")
        .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");

    let dir = TempDir::new("config");
    let cert_path = dir.write("cert.pem", &pki.cert_pem);
    let key_path = dir.write("key.pem", &pki.key_pem);
    TlsAcceptor::from_pem_files(&cert_path, &key_path).unwrap();
    let missing = dir.0.join("missing.pem");
    let err = TlsAcceptor::from_pem_files(&missing, &key_path).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let ca_path = dir.write("ca.pem", &pki.ca_pem);
    TlsConnector::builder()
        .add_root_pem_file(&ca_path)
        .unwrap()
        .build()
        .unwrap();
}

#[kettle::test]
async fn an_invalid_server_name_is_invalid_input() {
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = pki
        .connector()
        .connect("not a name!", tcp)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(!is_tls_error(&err));
}

#[kettle::test]
async fn the_async_io_traits_work_through_futures_io() {
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_io::{AsyncRead, AsyncWrite};
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    let mut tls = connect(&pki.connector(), "localhost", addr).await.unwrap();
    let n = poll_fn(|cx| Pin::new(&mut tls).poll_write(cx, b"traits"))
        .await
        .unwrap();
    assert_eq!(n, 6);
    poll_fn(|cx| Pin::new(&mut tls).poll_flush(cx))
        .await
        .unwrap();
    let mut buf = [0u8; 6];
    let mut got = 0;
    while got < 6 {
        let mut r = &tls;
        got += poll_fn(|cx| Pin::new(&mut r).poll_read(cx, &mut buf[got..]))
            .await
            .unwrap();
    }
    assert_eq!(&buf, b"traits");
    poll_fn(|cx| Pin::new(&mut tls).poll_close(cx))
        .await
        .unwrap();
}

#[kettle::test]
async fn tls12_works_when_the_client_offers_nothing_newer() {
    let pki = Pki::new();
    let addr = spawn_echo_server(pki.acceptor());
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from_config(std::sync::Arc::new(config));
    let tls = connect(&connector, "localhost", addr).await.unwrap();
    assert_eq!(
        tls.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let err = tls.refresh_traffic_keys().unwrap_err();
    assert!(is_tls_error(&err), "TLS 1.2 has no key update: {err:?}");
    let big = pattern(9, 0, 300_000);
    tls.write_all(&big).await.unwrap();
    let mut back = vec![0u8; big.len()];
    tls.read_exact(&mut back).await.unwrap();
    assert_eq!(back, big);
}
