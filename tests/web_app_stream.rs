//! `StreamResponse` on the wire: chunked framing when the length is unknown, `Content-Length`
//! when it is set, close-delimited bodies for HTTP/1.0 clients, handlers that return without
//! `write_eof`, HEAD, and what happens when a handler fails after the head was sent.

mod web_app_support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use kettle::net::TcpStream;
use kettle::web::{self, Application, Request, StreamResponse, TestClient};
use web_app_support::{find, raw, read_one, read_to_end, RawResponse};

/// `hello` then ` world`, length unknown, ended with `write_eof`.
async fn chunked(req: Request) -> Result<StreamResponse, web::Error> {
    let mut resp = StreamResponse::new();
    resp.set_status(StatusCode::ACCEPTED);
    resp.set_reason("Streaming Along");
    resp.set_content_type("text/plain");
    resp.set_charset("utf-8");
    resp.insert_header(
        HeaderName::from_static("x-stream"),
        HeaderValue::from_static("yes"),
    );
    resp.prepare(&req).await?;
    assert!(resp.prepared());
    resp.write("hello").await?;
    resp.write(" world").await?;
    // An empty write sends nothing (it must not look like the last chunk).
    resp.write("").await?;
    resp.write_eof().await?;
    Ok(resp)
}

/// The same body with its length declared.
async fn sized(req: Request) -> Result<StreamResponse, web::Error> {
    let mut resp = StreamResponse::new();
    resp.set_content_length(11);
    resp.prepare(&req).await?;
    resp.write("hello").await?;
    resp.write(" world").await?;
    resp.write_eof().await?;
    Ok(resp)
}

/// Chunked, returned without `write_eof`.
async fn no_eof(req: Request) -> Result<StreamResponse, web::Error> {
    let mut resp = StreamResponse::new();
    resp.prepare(&req).await?;
    resp.write("abc").await?;
    Ok(resp)
}

/// Length 11 declared, 5 bytes written, returned without `write_eof`.
async fn short(req: Request) -> Result<StreamResponse, web::Error> {
    let mut resp = StreamResponse::new();
    resp.set_content_length(11);
    resp.prepare(&req).await?;
    resp.write("hello").await?;
    Ok(resp)
}

async fn plain(_req: Request) -> &'static str {
    "plain"
}

fn app() -> Application {
    let mut app = Application::new();
    app.router()
        .add_get("/chunked", chunked)
        .add_get("/sized", sized)
        .add_get("/no-eof", no_eof)
        .add_get("/short", short)
        .add_get("/plain", plain);
    app
}

#[kettle::test]
async fn unknown_length_is_sent_chunked() {
    let c = TestClient::new(app()).await.unwrap();
    let bytes = raw(
        c.addr(),
        b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status_line, "HTTP/1.1 202 Streaming Along");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-stream"), Some("yes"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("date").is_some());
    assert_eq!(r.body_text(), "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");

    // The test client decodes it.
    let r = c.get("/chunked").await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.text(), "hello world");
    c.close().await;
}

#[kettle::test]
async fn a_declared_length_is_sent_as_content_length() {
    let c = TestClient::new(app()).await.unwrap();
    let bytes = raw(
        c.addr(),
        b"GET /sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body_text(), "hello world");
    c.close().await;
}

#[kettle::test]
async fn an_http_10_client_gets_a_close_delimited_body() {
    let c = TestClient::new(app()).await.unwrap();
    for request in [
        &b"GET /chunked HTTP/1.0\r\n\r\n"[..],
        // Even when it asks to keep the connection: without a length, the end of the
        // body is the end of the connection.
        &b"GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"[..],
    ] {
        let bytes = raw(c.addr(), request).await;
        let r = RawResponse::parse(&bytes);
        assert_eq!(r.status, 202);
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("content-length"), None);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body_text(), "hello world");
    }
    // With a declared length an HTTP/1.0 keep-alive client keeps its connection.
    let stream = TcpStream::connect(c.addr()).await.unwrap();
    let mut buf = BytesMut::new();
    stream
        .write_all(b"GET /sized HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let r = read_one(&stream, &mut buf).await;
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert_eq!(r.body_text(), "hello world");
    stream
        .write_all(b"GET /plain HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let r = read_one(&stream, &mut buf).await;
    assert_eq!(r.body_text(), "plain");
    c.close().await;
}

#[kettle::test]
async fn returning_without_write_eof_finishes_a_chunked_body_and_keeps_the_connection() {
    let c = TestClient::new(app()).await.unwrap();
    // Two requests pipelined on one connection: the first response must be complete for
    // the second to be readable after it.
    let bytes = raw(
        c.addr(),
        b"GET /no-eof HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let first = RawResponse::parse(&bytes);
    assert_eq!(first.header("transfer-encoding"), Some("chunked"));
    assert_eq!(first.header("connection"), None);
    let end = find(&first.body, b"0\r\n\r\n").expect("last chunk") + 5;
    assert_eq!(&first.body[..end], b"3\r\nabc\r\n0\r\n\r\n");
    let second = RawResponse::parse(&first.body[end..]);
    assert_eq!(second.status, 200);
    assert_eq!(second.body_text(), "plain");

    let r = c.get("/no-eof").await.unwrap();
    assert_eq!(r.text(), "abc");
    assert_eq!(c.get("/plain").await.unwrap().text(), "plain");
    c.close().await;
}

#[kettle::test]
async fn fewer_bytes_than_the_declared_length_close_the_connection() {
    let c = TestClient::new(app()).await.unwrap();
    // No `Connection: close` from the client: the server must close by itself, or the
    // client would wait for the six missing bytes forever.
    let t0 = Instant::now();
    let bytes = raw(c.addr(), b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.body_text(), "hello");
    c.close().await;
}

#[kettle::test]
async fn a_head_request_gets_the_head_and_no_body() {
    let c = TestClient::new(app()).await.unwrap();
    for path in ["/chunked", "/sized", "/no-eof"] {
        let req = format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let bytes = raw(c.addr(), req.as_bytes()).await;
        let r = RawResponse::parse(&bytes);
        assert!(r.status == 200 || r.status == 202, "{path}");
        assert!(r.body.is_empty(), "{path}: {:?}", r.body_text());
    }
    let bytes = raw(
        c.addr(),
        b"HEAD /sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        RawResponse::parse(&bytes).header("content-length"),
        Some("11")
    );
    // HEAD through the keep-alive client, then a GET on the same connection.
    let r = c
        .request(http::Method::HEAD, "/chunked")
        .send()
        .await
        .unwrap();
    assert!(r.body().is_empty());
    assert_eq!(c.get("/sized").await.unwrap().text(), "hello world");
    c.close().await;
}

#[kettle::test]
async fn pieces_reach_the_client_while_the_handler_is_still_running() {
    let mut app = Application::new();
    app.router().add_get("/slow", |req: Request| async move {
        let mut resp = StreamResponse::new();
        resp.prepare(&req).await?;
        resp.write("first;").await?;
        kettle::sleep(Duration::from_millis(400)).await;
        resp.write("second;").await?;
        resp.write_eof().await?;
        Ok::<_, web::Error>(resp)
    });
    let c = TestClient::new(app).await.unwrap();
    let stream = TcpStream::connect(c.addr()).await.unwrap();
    let t0 = Instant::now();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    while find(&buf, b"first;").is_none() {
        assert!(stream.read_buf(&mut buf, 4096).await.unwrap() > 0);
    }
    let first_at = t0.elapsed();
    assert!(first_at < Duration::from_millis(300), "{first_at:?}");
    assert!(find(&buf, b"second;").is_none());
    let rest = read_to_end(&stream).await;
    buf.extend_from_slice(&rest);
    let r = RawResponse::parse(&buf);
    assert_eq!(r.body_text(), "6\r\nfirst;\r\n7\r\nsecond;\r\n0\r\n\r\n");
    assert!(t0.elapsed() >= Duration::from_millis(400));
    c.close().await;
}

#[kettle::test]
async fn pipelined_responses_stay_in_order_around_a_stream() {
    let c = TestClient::new(app()).await.unwrap();
    let bytes = raw(
        c.addr(),
        b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /sized HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&bytes);
    let a = text.find("\r\n\r\nplain").expect("first plain");
    let b = text.find("hello world").expect("stream");
    let c2 = text.rfind("\r\n\r\nplain").expect("last plain");
    assert!(a < b && b < c2, "{text}");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    c.close().await;
}

#[kettle::test]
async fn misuse_is_an_error_not_a_broken_stream() {
    let mut app = Application::new();
    app.router()
        .add_get("/before-prepare", |_req: Request| async move {
            let mut resp = StreamResponse::new();
            let err = resp.write("x").await.unwrap_err();
            assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
            // Never prepared: it is sent as an ordinary, empty response.
            resp.set_status(StatusCode::NO_CONTENT);
            resp
        })
        .add_get("/twice", |req: Request| async move {
            let mut resp = StreamResponse::new();
            resp.set_content_length(2);
            resp.prepare(&req).await?;
            // A second prepare does nothing.
            resp.prepare(&req).await?;
            resp.write("ok").await?;
            resp.write_eof().await?;
            // Writes after the end are refused, a second write_eof does nothing.
            assert!(resp.write("more").await.is_err());
            resp.write_eof().await?;
            Ok::<_, web::Error>(resp)
        });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/before-prepare").await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get("/twice").await.unwrap();
    assert_eq!(r.text(), "ok");
    c.close().await;
}

/// After the head is out, an error (or a panic) cannot become a second response: the
/// server must end the connection so the client sees a truncated body, never a stray head
/// inside it.
#[kettle::test]
async fn failing_after_prepare_closes_the_connection_instead_of_sending_a_second_head() {
    let mut app = Application::new();
    app.router()
        .add_get("/error", |req: Request| async move {
            let mut resp = StreamResponse::new();
            resp.prepare(&req).await?;
            resp.write("partial").await?;
            Err::<StreamResponse, web::Error>(web::HTTPBadRequest().into())
        })
        .add_get("/too-much", |req: Request| async move {
            let mut resp = StreamResponse::new();
            resp.set_content_length(3);
            resp.prepare(&req).await?;
            // Past the declared length: an error, and the handler passes it on.
            resp.write("abcd").await?;
            Ok::<_, web::Error>(resp)
        })
        .add_get("/panic", |req: Request| async move {
            let mut resp = StreamResponse::new();
            resp.prepare(&req).await?;
            resp.write("partial").await?;
            if req.path() == "/panic" {
                panic!("after prepare");
            }
            Ok::<_, web::Error>(resp)
        })
        .add_get("/plain", plain);
    let c = TestClient::new(app).await.unwrap();
    for path in ["/error", "/too-much", "/panic"] {
        // Keep-alive requested, and a second request pipelined behind: neither may be
        // answered with a head after the first one.
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
        let t0 = Instant::now();
        let bytes = raw(c.addr(), req.as_bytes()).await;
        assert!(t0.elapsed() < Duration::from_secs(5), "{path}");
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{path}: {text}");
        let r = RawResponse::parse(&bytes);
        assert_eq!(r.status, 200, "{path}");
        // Chunked bodies are not terminated: the client can tell the body is incomplete.
        assert!(!r.body_text().ends_with("0\r\n\r\n"), "{path}: {text}");
    }
    // The server is fine.
    assert_eq!(c.get("/plain").await.unwrap().text(), "plain");
    c.close().await;
}

#[kettle::test]
async fn a_no_content_stream_has_no_body_framing() {
    let mut app = Application::new();
    app.router().add_get("/", |req: Request| async move {
        let mut resp = StreamResponse::new();
        resp.set_status(StatusCode::NO_CONTENT);
        resp.prepare(&req).await?;
        resp.write("dropped").await?;
        resp.write_eof().await?;
        Ok::<_, web::Error>(resp)
    });
    let c = TestClient::new(app).await.unwrap();
    let bytes = raw(
        c.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("content-length"), None);
    assert!(r.body.is_empty(), "{:?}", r.body_text());
    c.close().await;
}
