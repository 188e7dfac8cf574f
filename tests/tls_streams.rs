//! asyncio's streams over TLS: `start_server_tls` and `open_connection_tls` through real
//! sockets on 127.0.0.1, with a CA made in the test.

mod tls_support;

use std::time::Duration;

use kettle::net::streams::{open_connection_tls, start_server_tls, ServerOptions};
use kettle::net::{StreamReader, StreamWriter, TcpStream};
use kettle::tls::is_tls_error;
use tls_support::Pki;

/// Generous bound for anything that must not hang.
const NO_HANG: Duration = Duration::from_secs(10);

/// Echoes lines until the client's end of stream, then closes (sending close_notify).
async fn line_echo(mut r: StreamReader, w: StreamWriter) -> std::io::Result<()> {
    loop {
        let line = r.readline().await?;
        if line.is_empty() {
            break;
        }
        w.write(&line);
        w.drain().await?;
    }
    w.close();
    w.wait_closed().await
}

#[kettle::test]
async fn lines_echo_over_tls() {
    let pki = Pki::new();
    let server = start_server_tls(
        line_echo,
        "127.0.0.1",
        0,
        pki.acceptor().with_alpn(&[b"echo/1"]),
        ServerOptions {
            limit: 2 << 20,
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let port = server.sockets()[0].port().unwrap();
    let connector = kettle::tls::TlsConnector::builder()
        .webpki_roots(false)
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .alpn_protocols(&[b"echo/1"])
        .build()
        .unwrap();
    let (mut r, w) = open_connection_tls("localhost", port, &connector)
        .await
        .unwrap();
    let tls = w.transport().as_tls().expect("a TLS transport");
    assert_eq!(tls.alpn_protocol().as_deref(), Some(&b"echo/1"[..]));
    assert!(w.transport().is_tls());
    assert!(w.transport().as_tcp().is_some());
    assert_eq!(
        w.get_extra_info("peername").unwrap().port(),
        Some(port),
        "addresses come from the TCP stream under TLS"
    );
    for i in 0..100 {
        let line = format!("line {i} {}\n", "x".repeat(i * 37));
        w.write(line.as_bytes());
        assert_eq!(r.readline().await.unwrap(), line.as_bytes());
    }
    // A large write goes through the flusher and the TLS session's own buffer.
    let big = format!("{}\n", "y".repeat(1 << 20));
    r.set_limit(2 << 20);
    w.write(big.as_bytes());
    w.drain().await.unwrap();
    assert_eq!(r.readline().await.unwrap().len(), big.len());

    // write_eof sends close_notify: the server sees end of stream, closes, and we see a clean
    // end (not a truncation error).
    w.write_eof();
    assert_eq!(r.read(100).await.unwrap(), b"");
    assert!(r.at_eof());
    w.close();
    w.wait_closed().await.unwrap();
    server.close();
    kettle::wait_for(server.wait_closed(), NO_HANG)
        .await
        .unwrap();
}

#[kettle::test]
async fn a_failed_handshake_never_reaches_the_handler_and_the_server_goes_on() {
    let pki = Pki::new();
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = calls.clone();
    let server = start_server_tls(
        move |r, w| {
            counted.set(counted.get() + 1);
            line_echo(r, w)
        },
        "127.0.0.1",
        0,
        pki.acceptor(),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let port = server.sockets()[0].port().unwrap();

    // A plain-text client: the handshake fails and the server closes the connection.
    let plain = TcpStream::connect(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    plain.write_all(b"hello?\n").await.unwrap();
    let mut buf = [0u8; 512];
    let drained = kettle::wait_for(
        async {
            loop {
                match plain.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // the alert
                }
            }
        },
        NO_HANG,
    )
    .await;
    assert!(drained.is_ok(), "the server kept a failed handshake open");

    // A client that does not trust the server's CA fails on its side.
    let err = open_connection_tls("localhost", port, &Pki::new().connector())
        .await
        .unwrap_err();
    assert!(is_tls_error(&err), "{err:?}");

    // And the next good client is served.
    let (mut r, w) = open_connection_tls("127.0.0.1", port, &pki.connector())
        .await
        .unwrap();
    w.write(b"still here\n");
    assert_eq!(r.readline().await.unwrap(), b"still here\n");
    assert_eq!(calls.get(), 1, "only the good client reached the handler");
    w.close();
    w.wait_closed().await.unwrap();
    server.close();
}

#[kettle::test]
async fn a_handler_that_returns_right_after_writing_still_delivers_everything() {
    let pki = Pki::new();
    let server = start_server_tls(
        |_r: StreamReader, w: StreamWriter| async move {
            // Written and dropped at once: the flusher must send the rest and close_notify.
            w.write(&vec![b'z'; 300_000]);
            w.close();
        },
        "127.0.0.1",
        0,
        pki.acceptor(),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let port = server.sockets()[0].port().unwrap();
    let (mut r, _w) = open_connection_tls("localhost", port, &pki.connector())
        .await
        .unwrap();
    let all = kettle::wait_for(r.read_to_end(), NO_HANG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all.len(), 300_000);
    assert!(all.iter().all(|&b| b == b'z'));
    server.close();
}
