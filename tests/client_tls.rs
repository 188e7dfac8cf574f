//! `ClientSession` over https: against Kettle's own HTTPS server with a CA made in the test,
//! ALPN, keep-alive over TLS, redirects from http to https, and the TLS failures (unknown CA,
//! wrong name, a server that does not speak TLS) as `ErrorKind::Tls` errors.

mod tls_support;

use std::time::Duration;

use kettle::client::{ClientSession, ClientTimeout};
use kettle::tls::TlsConnector;
use kettle::web::{AppRunner, Application, Request, Response, ServerOptions};
use kettle::ErrorKind;
use tls_support::Pki;

fn app() -> Application {
    let mut app = Application::new();
    app.router().add_get("/", |req: Request| async move {
        Response::text(format!(
            "hello over {} from {}",
            req.scheme(),
            req.headers()
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
        ))
    });
    app.router()
        .add_post("/echo", |mut req: Request| async move {
            let body = req.read().await.unwrap_or_default();
            Response::bytes(body)
        });
    app
}

async fn https_server(pki: &Pki) -> AppRunner {
    AppRunner::start_with(
        app(),
        "127.0.0.1",
        0,
        ServerOptions::default().tls(pki.acceptor()),
    )
    .await
    .unwrap()
}

fn session_trusting(pki: &Pki) -> ClientSession {
    let tls = TlsConnector::builder()
        .webpki_roots(false)
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .alpn_protocols(&[b"http/1.1"])
        .build()
        .unwrap();
    ClientSession::builder().tls(tls).build().unwrap()
}

#[kettle::test]
async fn https_with_a_private_ca_keeps_connections_alive() {
    let pki = Pki::new();
    let server = https_server(&pki).await;
    let port = server.addrs()[0].port();
    let session = session_trusting(&pki);

    for host in ["localhost", "127.0.0.1"] {
        let mut resp = session
            .get(&format!("https://{host}:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.text().await.unwrap(),
            format!("hello over https from {host}:{port}")
        );
    }
    // A megabyte each way through the same pooled connection.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..3 {
        let mut resp = session
            .post(&format!("https://127.0.0.1:{port}/echo"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.bytes().await.unwrap(), big);
    }
    let stats = session.connector_stats();
    assert_eq!(stats.opened, 2, "one connection per origin name: {stats:?}");
    assert_eq!(stats.idle, 2);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn an_unknown_ca_a_wrong_name_and_plain_tcp_are_tls_errors() {
    let pki = Pki::new();
    let server = https_server(&pki).await;
    let port = server.addrs()[0].port();

    // The default session trusts only the web PKI.
    let session = ClientSession::new();
    let err = session
        .get(&format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        err.to_string()
            .contains("TLS handshake with https://127.0.0.1"),
        "{err}"
    );

    // Trusted CA, but the certificate does not name this host.
    let other = Pki::new();
    let (cert, key) = other.issue(&["example.com"]);
    let wrong = AppRunner::start_with(
        app(),
        "127.0.0.1",
        0,
        ServerOptions::default()
            .tls(kettle::tls::TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()),
    )
    .await
    .unwrap();
    let session = session_trusting(&other);
    let err = session
        .get(&format!("https://127.0.0.1:{}/", wrong.addrs()[0].port()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        format!("{err:?}").contains("NotValidForName")
            || err.to_string().contains("not valid for name"),
        "{err:?}"
    );

    // https to a plain HTTP server: an error, within the timeout, not a hang.
    let plain = AppRunner::start(app(), "127.0.0.1", 0).await.unwrap();
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().total(Duration::from_secs(10)))
        .build()
        .unwrap();
    let err = session
        .get(&format!("https://127.0.0.1:{}/", plain.addrs()[0].port()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");

    // Accepting any certificate (tests only) gets through.
    let session = ClientSession::builder()
        .tls(
            TlsConnector::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let mut resp = session
        .get(&format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().starts_with("hello over https"));

    server.shutdown().await;
    wrong.shutdown().await;
    plain.shutdown().await;
}

#[kettle::test]
async fn a_redirect_from_http_to_https_is_followed() {
    let pki = Pki::new();
    let secure = https_server(&pki).await;
    let target = format!("https://localhost:{}/", secure.addrs()[0].port());
    let mut app = Application::new();
    let location = target.clone();
    app.router().add_get("/", move |_req: Request| {
        let location = location.clone();
        async move {
            Response::text("moved")
                .with_status(http::StatusCode::MOVED_PERMANENTLY)
                .with_header(
                    http::header::LOCATION,
                    http::HeaderValue::from_str(&location).unwrap(),
                )
        }
    });
    let plain = AppRunner::start(app, "127.0.0.1", 0).await.unwrap();
    let session = session_trusting(&pki);
    let mut resp = session
        .get(&format!("http://127.0.0.1:{}/", plain.addrs()[0].port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().as_str(), target);
    assert_eq!(resp.history().len(), 1);
    assert_eq!(resp.history()[0].status(), 301);
    assert!(resp.text().await.unwrap().starts_with("hello over https"));
    session.close().await;
    secure.shutdown().await;
    plain.shutdown().await;
}
