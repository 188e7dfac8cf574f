//! Response compression: `Response::enable_compression()` and `compression_middleware`,
//! gzip or deflate from `Accept-Encoding`, never for small bodies, 206 or already-encoded
//! content, with `Vary: Accept-Encoding`; checked on the wire and through Kettle's client.

use std::io::Read;

use http::{HeaderValue, StatusCode};
use kettle::client::ClientSession;
use kettle::web::{self, AppRunner, Application, ContentCoding, Request, Response};

fn big() -> String {
    (0..2000)
        .map(|i| format!("line {i} of the tea ceremony\n"))
        .collect()
}

fn app() -> Application {
    let mut app = Application::new();
    app.router()
        .add_get("/big", |_r: Request| async {
            Response::text(big()).with_compression()
        })
        .add_get("/small", |_r: Request| async {
            Response::text("tiny").with_compression()
        })
        .add_get("/gzip-only", |_r: Request| async {
            let mut r = Response::text(big());
            r.enable_compression_with(ContentCoding::Gzip);
            r
        })
        .add_get("/partial", |_r: Request| async {
            Response::text(big())
                .with_status(StatusCode::PARTIAL_CONTENT)
                .with_compression()
        })
        .add_get("/encoded", |_r: Request| async {
            Response::bytes(big())
                .with_header(
                    http::header::CONTENT_ENCODING,
                    HeaderValue::from_static("br"),
                )
                .with_compression()
        })
        .add_get("/plain", |_r: Request| async { Response::text(big()) });
    app
}

/// GET `path` with `accept` (raw, no decompression): status, headers, body bytes.
async fn raw_get(
    base: &str,
    path: &str,
    accept: Option<&str>,
) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
    let session = ClientSession::builder()
        .auto_decompress(false)
        .build()
        .unwrap();
    let mut req = session.get(&format!("{base}{path}"));
    if let Some(a) = accept {
        req = req.header("Accept-Encoding", a);
    }
    let mut resp = req.send().await.unwrap();
    let body = resp.bytes().await.unwrap();
    let out = (resp.status(), resp.headers().clone(), body);
    session.close().await;
    out
}

fn gunzip(b: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn inflate(b: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::ZlibDecoder::new(b)
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[kettle::test]
async fn bodies_are_compressed_as_the_request_accepts() {
    let runner = AppRunner::start(app(), "127.0.0.1", 0).await.unwrap();
    let base = format!("http://{}", runner.addrs()[0]);

    let (status, h, body) = raw_get(&base, "/big", Some("gzip, deflate")).await;
    assert_eq!(status, 200);
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["vary"], "Accept-Encoding");
    assert_eq!(h["content-length"], body.len().to_string().as_str());
    assert!(body.len() < big().len() / 3);
    assert_eq!(gunzip(&body), big());

    let (_, h, body) = raw_get(&base, "/big", Some("deflate")).await;
    assert_eq!(h["content-encoding"], "deflate");
    assert_eq!(inflate(&body), big());

    let (_, h, body) = raw_get(&base, "/big", Some("gzip;q=0, deflate;q=0.5")).await;
    assert_eq!(h["content-encoding"], "deflate");
    assert_eq!(inflate(&body), big());

    // br only when that is all the client takes (gzip costs less CPU); Kettle's client
    // decodes it with a decoder the encoder does not share code with.
    let (_, h, body) = raw_get(&base, "/big", Some("br")).await;
    assert_eq!(h["content-encoding"], "br");
    assert!(body.len() < big().len() / 3);
    let (_, h, _) = raw_get(&base, "/big", Some("br, gzip")).await;
    assert_eq!(h["content-encoding"], "gzip");
    let session = ClientSession::new();
    let mut resp = session
        .get(&format!("{base}/big"))
        .header("Accept-Encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "br");
    assert_eq!(resp.text().await.unwrap(), big());
    session.close().await;

    // Nothing acceptable, or nothing asked: as it is, but still varying on the header.
    for accept in [None, Some("zstd"), Some("identity")] {
        let (_, h, body) = raw_get(&base, "/big", accept).await;
        assert!(h.get("content-encoding").is_none(), "{accept:?}");
        assert_eq!(h["vary"], "Accept-Encoding");
        assert_eq!(body, big().as_bytes());
    }
    // One coding insisted on, which the request refuses.
    let (_, h, _) = raw_get(&base, "/gzip-only", Some("deflate")).await;
    assert!(h.get("content-encoding").is_none());
    let (_, h, body) = raw_get(&base, "/gzip-only", Some("*")).await;
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(gunzip(&body), big());
    runner.shutdown().await;
}

#[kettle::test]
async fn small_partial_and_already_encoded_bodies_are_left_alone() {
    let runner = AppRunner::start(app(), "127.0.0.1", 0).await.unwrap();
    let base = format!("http://{}", runner.addrs()[0]);
    let (_, h, body) = raw_get(&base, "/small", Some("gzip")).await;
    assert!(h.get("content-encoding").is_none());
    assert_eq!(&body[..], b"tiny");
    let (status, h, body) = raw_get(&base, "/partial", Some("gzip")).await;
    assert_eq!(status, 206);
    assert!(h.get("content-encoding").is_none());
    assert_eq!(body, big().as_bytes());
    let (_, h, body) = raw_get(&base, "/encoded", Some("gzip")).await;
    assert_eq!(h["content-encoding"], "br");
    assert_eq!(body, big().as_bytes());
    // Without enable_compression nothing changes, not even Vary.
    let (_, h, _) = raw_get(&base, "/plain", Some("gzip")).await;
    assert!(h.get("content-encoding").is_none() && h.get("vary").is_none());
    runner.shutdown().await;
}

#[kettle::test]
async fn the_middleware_compresses_every_eligible_response_and_the_client_undoes_it() {
    let mut app = Application::new();
    app.add_middleware(web::compression_middleware);
    app.router()
        .add_get("/", |_r: Request| async { big() })
        .add_get("/small", |_r: Request| async { "tiny" });
    let runner = AppRunner::start(app, "127.0.0.1", 0).await.unwrap();
    let base = format!("http://{}", runner.addrs()[0]);
    let (_, h, body) = raw_get(&base, "/", Some("gzip")).await;
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(gunzip(&body), big());
    let (_, h, _) = raw_get(&base, "/small", Some("gzip")).await;
    assert!(h.get("content-encoding").is_none());
    // Kettle's client asks for gzip, deflate and br and decodes on the fly.
    let session = ClientSession::new();
    let mut resp = session.get(&format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.text().await.unwrap(), big());
    // HEAD: the same headers as GET, no body.
    let resp = session.head(&format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    session.close().await;
    runner.shutdown().await;
}
