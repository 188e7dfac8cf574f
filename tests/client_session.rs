//! `kettle::client::ClientSession` against real servers on 127.0.0.1: Kettle's own
//! `kettle::web` server (which records the connection of every request, so keep-alive and
//! pool limits are counted on the server's side), scripted raw-socket servers where the exact
//! moment of a close matters, and Python's `http.server` as a peer written by others.
//!
//! Sections: methods and bodies; keep-alive and the pool; redirects; cookies; compression;
//! large bodies; status errors; stale connections and the retry; timeouts; decoding; closing
//! the session; base URL and default headers; Python's `http.server`.

mod client_support;

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::Write as _;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use client_support::{proc_status_bytes, read_request, run_in_own_process, Script, Server, MIB};
use futures_core::Stream;
use http::header::{HeaderValue, CONTENT_ENCODING, LOCATION, SET_COOKIE};
use http::{Method, StatusCode};
use kettle::client::{ClientSession, ClientTimeout, CookieJar};
use kettle::web::multipart::FormField;
use kettle::web::{
    self, json_response, Application, CookieOptions, Request, Response, ServerOptions,
    StreamResponse,
};
use kettle::ErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The test application
// ---------------------------------------------------------------------------------------------

/// Answers with what arrived: method, path, query string, every header, the body (and its
/// length and byte sum, for bodies too large to echo).
async fn echo(mut req: Request) -> Result<Response, web::Error> {
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<String> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.as_str().to_string(), Value::from(values.join(", ")));
    }
    let body = req.read().await?;
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    Ok(json_response(&json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "headers": headers,
        "body": if body.len() <= 64 * 1024 { String::from_utf8_lossy(&body).into_owned() } else { String::new() },
        "body_len": body.len(),
        "body_sum": sum,
    })))
}

/// Parses a form (urlencoded or multipart) and answers its fields and files.
async fn form(mut req: Request) -> Result<Response, web::Error> {
    let content_type = req.content_type();
    let form = req.post().await?;
    let fields: Vec<(String, String)> = form
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let files: Vec<Value> = form
        .files
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "filename": f.filename,
                "content_type": f.content_type,
                "data": f.data.to_vec(),
            })
        })
        .collect();
    Ok(json_response(&json!({
        "content_type": content_type,
        "fields": fields,
        "files": files,
    })))
}

async fn sleep_ms(req: Request) -> &'static str {
    let ms: u64 = req
        .match_info()
        .get("ms")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    kettle::sleep(Duration::from_millis(ms)).await;
    "slept"
}

/// `/redirect/{code}?to=URL[&cookie=name=value]`.
async fn redirect(req: Request) -> Response {
    let code: u16 = req
        .match_info()
        .get("code")
        .and_then(|c| c.parse().ok())
        .unwrap_or(302);
    let to = req.query().get("to").unwrap_or("/echo").to_string();
    let mut resp = Response::text("moved").with_status(StatusCode::from_u16(code).unwrap());
    resp.headers_mut()
        .insert(LOCATION, HeaderValue::from_str(&to).unwrap());
    if let Some((name, value)) = req.query().get("cookie").and_then(|c| c.split_once('=')) {
        resp.set_cookie(name, value, &CookieOptions::new()).unwrap();
    }
    resp
}

/// `/chain/{n}` redirects to `/chain/{n-1}`; `/chain/0` answers `done`.
async fn chain(req: Request) -> Response {
    let n: u32 = req
        .match_info()
        .get("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if n == 0 {
        return Response::text("done");
    }
    let mut resp = Response::text("next").with_status(StatusCode::FOUND);
    resp.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&format!("/chain/{}", n - 1)).unwrap(),
    );
    resp
}

async fn redirect_loop(_req: Request) -> Response {
    Response::new()
        .with_status(StatusCode::MOVED_PERMANENTLY)
        .with_header(LOCATION, HeaderValue::from_static("/loop"))
}

/// Sets `a=1` for every path and `b=2` for `/sub` only.
async fn set_cookies(_req: Request) -> Response {
    let mut resp = Response::text("set");
    resp.set_cookie("a", "1", &CookieOptions::new()).unwrap();
    resp.set_cookie("b", "2", &CookieOptions::new().path("/sub"))
        .unwrap();
    resp
}

/// `/set-raw?c=...&c=...`: each `c` sent as a `Set-Cookie` line exactly as given.
async fn set_raw_cookies(req: Request) -> Response {
    let mut resp = Response::text("set");
    for line in req.query().get_all("c") {
        resp.headers_mut()
            .append(SET_COOKIE, HeaderValue::from_str(line).unwrap());
    }
    resp
}

/// The `Cookie` header as received ("" without one).
async fn cookie_header(req: Request) -> String {
    req.headers()
        .get("cookie")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// The text every compressed response carries.
fn original_text() -> String {
    "The kettle sings before it boils; ".repeat(300)
}

/// A megabyte-ish text that compresses only moderately, for streamed decompression.
fn streamed_text() -> String {
    (0..40_000u64)
        .map(|i| format!("line {i}: {}\n", i * i % 9973))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A valid brotli stream (RFC 7932) made of uncompressed meta-blocks: no encoder needed.
///
/// Each meta-block header is ISLAST=0, MNIBBLES=4 (code 0), MLEN-1 in 16 bits and
/// ISUNCOMPRESSED=1, padded to a byte; the stream starts with WBITS=16 (a single 0 bit, which
/// takes the first header's bit 0) and ends with ISLAST=1, ISLASTEMPTY=1.
fn brotli_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut first = true;
    for block in data.chunks(1 << 16) {
        let mlen = (block.len() - 1) as u32;
        // Bit 0 is WBITS on the first block only; later headers start at bit 0 themselves.
        let shift = u32::from(first);
        let bits: u32 = (mlen << (shift + 3)) | (1 << (shift + 19));
        let nbits = shift + 20;
        let bytes = nbits.div_ceil(8) as usize;
        out.extend_from_slice(&bits.to_le_bytes()[..bytes]);
        out.extend_from_slice(block);
        first = false;
    }
    // ISLAST=1, ISLASTEMPTY=1 (a lone WBITS bit first for an empty body).
    out.push(if first { 0b110 } else { 0b11 });
    out
}

/// `/encoded/{coding}`: the original text compressed with `coding`.
async fn encoded(req: Request) -> Response {
    let coding = req.match_info().get("coding").unwrap_or("").to_string();
    let text = original_text();
    let (body, header) = match coding.as_str() {
        "gzip" => (gzip(text.as_bytes()), "gzip"),
        "deflate" => (zlib(text.as_bytes()), "deflate"),
        "raw-deflate" => (raw_deflate(text.as_bytes()), "deflate"),
        "br" => (brotli_stored(text.as_bytes()), "br"),
        _ => return Response::text("unknown").with_status(StatusCode::NOT_FOUND),
    };
    Response::bytes(body)
        .with_content_type("text/plain")
        .with_charset("utf-8")
        .with_header(CONTENT_ENCODING, HeaderValue::from_static(header))
}

/// `/empty/{coding}`: no body at all, whatever `Content-Encoding` says; chunked (just the
/// last chunk) with `?chunked`.
async fn empty_encoded(req: Request) -> Result<StreamResponse, web::Error> {
    let coding = req.match_info().get("coding").unwrap_or("gzip").to_string();
    let mut resp = StreamResponse::new();
    resp.insert_header(CONTENT_ENCODING, HeaderValue::from_str(&coding).unwrap());
    if !req.query().contains_key("chunked") {
        resp.set_content_length(0);
    }
    resp.prepare(&req).await?;
    resp.write_eof().await?;
    Ok(resp)
}

/// The streamed text, gzip-compressed and sent chunked in 1000-byte pieces.
async fn gzip_stream(req: Request) -> Result<StreamResponse, web::Error> {
    let body = gzip(streamed_text().as_bytes());
    let mut resp = StreamResponse::new();
    resp.set_content_type("text/plain");
    resp.insert_header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    resp.prepare(&req).await?;
    for piece in body.chunks(1000) {
        resp.write(Bytes::copy_from_slice(piece)).await?;
    }
    resp.write_eof().await?;
    Ok(resp)
}

/// `/big/{n}` (with `Content-Length`) and `/big-chunked/{n}`: `n` bytes of `x`, written in
/// 64 KiB pieces, each write waiting for the client to keep up.
async fn big(req: Request) -> Result<StreamResponse, web::Error> {
    let n: u64 = req
        .match_info()
        .get("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let piece = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut resp = StreamResponse::new();
    resp.set_content_type("application/octet-stream");
    if !req.path().starts_with("/big-chunked/") {
        resp.set_content_length(n);
    }
    resp.prepare(&req).await?;
    let mut left = n;
    while left > 0 {
        let take = left.min(piece.len() as u64) as usize;
        resp.write(piece.slice(..take)).await?;
        left -= take as u64;
    }
    resp.write_eof().await?;
    Ok(resp)
}

async fn status(req: Request) -> Response {
    let code: u16 = req
        .match_info()
        .get("code")
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    Response::text(format!("status {code}")).with_status(StatusCode::from_u16(code).unwrap())
}

/// 100 bytes promised, 10 sent, then five seconds of silence.
async fn stall_body(req: Request) -> Result<StreamResponse, web::Error> {
    let mut resp = StreamResponse::new();
    resp.set_content_length(100);
    resp.prepare(&req).await?;
    resp.write("0123456789").await?;
    kettle::sleep(Duration::from_secs(5)).await;
    resp.write(vec![b'.'; 90]).await?;
    resp.write_eof().await?;
    Ok(resp)
}

/// Five pieces, 100 ms apart.
async fn drip(req: Request) -> Result<StreamResponse, web::Error> {
    let mut resp = StreamResponse::new();
    resp.prepare(&req).await?;
    for i in 0..5 {
        kettle::sleep(Duration::from_millis(100)).await;
        resp.write(format!("drop {i};")).await?;
    }
    resp.write_eof().await?;
    Ok(resp)
}

fn app() -> Application {
    let mut app = Application::new();
    app.router()
        .add_route("*", "/echo", echo)
        .add_route("*", "/api/echo", echo)
        .add_post("/form", form)
        .add_get("/sleep/{ms}", sleep_ms)
        .add_route("*", "/redirect/{code}", redirect)
        .add_get("/chain/{n}", chain)
        .add_get("/loop", redirect_loop)
        .add_get("/set-cookies", set_cookies)
        .add_get("/set-raw", set_raw_cookies)
        .add_get("/cookies", cookie_header)
        .add_get("/sub/cookies", cookie_header)
        .add_get("/subway/cookies", cookie_header)
        .add_get("/encoded/{coding}", encoded)
        .add_get("/gzip-stream", gzip_stream)
        .add_get("/empty/{coding}", empty_encoded)
        .add_get("/big/{n}", big)
        .add_get("/big-chunked/{n}", big)
        .add_get("/status/{code}", status)
        .add_get("/stall-body", stall_body)
        .add_get("/drip", drip)
        .add_get("/lines", |_r: Request| async {
            "first\nsecond\r\nthird, with no end"
        })
        .add_get("/latin1", |_r: Request| async {
            Response::bytes(&b"caf\xe9 cr\xe8me"[..])
                .with_content_type("text/plain")
                .with_charset("iso-8859-1")
        })
        .add_get("/gbk", |_r: Request| async {
            Response::bytes(&b"\xd6\xd0\xce\xc4"[..])
                .with_content_type("text/plain")
                .with_charset("gbk")
        })
        .add_get("/bad-utf8", |_r: Request| async {
            Response::bytes(&b"ok \xff\xfe"[..]).with_content_type("text/plain")
        })
        .add_get("/json-data", |_r: Request| async {
            json_response(&json!({"tea": "oolong", "cups": 2}))
        })
        .add_get("/json-as-text", |_r: Request| async {
            Response::text(r#"{"tea": "green", "cups": 1}"#)
        })
        .add_get("/problem", |_r: Request| async {
            Response::bytes(&br#"{"tea": "black", "cups": 3}"#[..])
                .with_content_type("application/problem+json")
        });
    app
}

/// The echo handler's answer.
async fn echoed(resp: &mut kettle::client::ClientResponse) -> Value {
    assert_eq!(resp.status(), 200, "{resp}");
    resp.json::<Value>().await.expect("echo answers JSON")
}

fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"][name].as_str()
}

/// A body stream of `pieces`, which returns `Pending` (and wakes itself) before every
/// piece, as a stream fed by I/O would.
struct Pieces {
    pieces: VecDeque<Bytes>,
    ready: bool,
}

impl Pieces {
    fn new(pieces: Vec<Bytes>) -> Pieces {
        Pieces {
            pieces: pieces.into(),
            ready: false,
        }
    }
}

impl Stream for Pieces {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.ready {
            this.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.ready = false;
        Poll::Ready(this.pieces.pop_front().map(Ok))
    }
}

fn session_with_total(total: Duration) -> ClientSession {
    ClientSession::builder()
        .timeout(ClientTimeout::default().total(total))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Methods and bodies
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn every_method_reaches_the_handler_with_its_query_headers_and_body() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let url = server.url("/echo?a=1");
    let requests = [
        ("GET", session.get(&url), ""),
        ("POST", session.post(&url).body("posted"), "posted"),
        ("PUT", session.put(&url).body("put"), "put"),
        ("PATCH", session.patch(&url).body("patched"), "patched"),
        ("DELETE", session.delete(&url).body("deleted"), "deleted"),
        ("OPTIONS", session.options(&url), ""),
        (
            "PROPFIND",
            session.request(Method::from_bytes(b"PROPFIND").unwrap(), &url),
            "",
        ),
    ];
    for (method, request, body) in requests {
        let mut resp = request
            .query(&[("b", "2 3"), ("c", "&=")])
            .header("X-Tea", "oolong")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.method().as_str(), method);
        let echo = echoed(&mut resp).await;
        assert_eq!(echo["method"], method);
        assert_eq!(echo["path"], "/echo");
        // The builder's parameters come after the URL's own, form-encoded.
        assert_eq!(echo["query"], "a=1&b=2+3&c=%26%3D", "{method}");
        assert_eq!(header(&echo, "x-tea"), Some("oolong"));
        assert_eq!(
            header(&echo, "host"),
            Some(format!("127.0.0.1:{}", server.addr.port()).as_str())
        );
        assert_eq!(echo["body"], body, "{method}");
        if body.is_empty() && method != "POST" {
            assert_eq!(header(&echo, "content-length"), None, "{method}");
        } else {
            let len = body.len().to_string();
            assert_eq!(header(&echo, "content-length"), Some(len.as_str()));
        }
        assert_eq!(header(&echo, "transfer-encoding"), None);
    }

    // HEAD: the headers of a GET, no body, and the connection stays usable.
    let mut head = session.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(
        head.content_length().unwrap_or(0) > 0,
        "{:?}",
        head.headers()
    );
    assert!(head.bytes().await.unwrap().is_empty());
    let mut after = session.get(&url).send().await.unwrap();
    assert_eq!(echoed(&mut after).await["method"], "GET");

    // All of it on one keep-alive connection.
    assert_eq!(server.seen.connections(), 1);
    assert_eq!(session.connector_stats().opened, 1);
    session.close().await;
    server.shutdown().await;
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Order {
    tea: String,
    cups: u32,
    notes: Vec<String>,
}

#[kettle::test]
async fn json_form_and_multipart_bodies_arrive_as_sent() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();

    let order = Order {
        tea: "sencha \u{1f375}".to_string(),
        cups: 2,
        notes: vec!["hot".to_string(), "\"strong\"".to_string()],
    };
    let mut resp = session
        .post(&server.url("/echo"))
        .json(&order)
        .send()
        .await
        .unwrap();
    let echo = echoed(&mut resp).await;
    assert_eq!(header(&echo, "content-type"), Some("application/json"));
    let got: Order = serde_json::from_str(echo["body"].as_str().unwrap()).unwrap();
    assert_eq!(got, order);

    let mut resp = session
        .post(&server.url("/form"))
        .form(&[("tea", "earl grey"), ("cups", "2"), ("odd", "a&b=c+d%")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let parsed: Value = resp.json().await.unwrap();
    assert_eq!(parsed["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(
        parsed["fields"],
        json!([["tea", "earl grey"], ["cups", "2"], ["odd", "a&b=c+d%"]])
    );

    let leaves: Vec<u8> = (0..=255u8).chain([0, 13, 10, 45, 45]).collect();
    let mut resp = session
        .post(&server.url("/form"))
        .multipart(&[
            FormField::text("tea", "oolong"),
            FormField::file(
                "leaves",
                "leaves.bin",
                "application/octet-stream",
                leaves.clone(),
            ),
            FormField::text("cups", "3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let parsed: Value = resp.json().await.unwrap();
    assert_eq!(parsed["content_type"], "multipart/form-data");
    assert_eq!(parsed["fields"], json!([["tea", "oolong"], ["cups", "3"]]));
    assert_eq!(parsed["files"][0]["name"], "leaves");
    assert_eq!(parsed["files"][0]["filename"], "leaves.bin");
    assert_eq!(
        parsed["files"][0]["content_type"],
        "application/octet-stream"
    );
    assert_eq!(parsed["files"][0]["data"], json!(leaves));
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn a_streamed_upload_is_sent_chunked_and_arrives_whole() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut pieces = Vec::new();
    let mut expected_sum = 0u64;
    for i in 0..100u8 {
        let piece = vec![i; 10_000 + usize::from(i)];
        expected_sum += piece.iter().map(|&b| u64::from(b)).sum::<u64>();
        pieces.push(Bytes::from(piece));
        if i % 10 == 0 {
            // Empty pieces must not end the chunked body early.
            pieces.push(Bytes::new());
        }
    }
    let expected_len: usize = pieces.iter().map(Bytes::len).sum();
    let mut resp = session
        .put(&server.url("/echo"))
        .body_stream(Pieces::new(pieces))
        .send()
        .await
        .unwrap();
    let echo = echoed(&mut resp).await;
    assert_eq!(header(&echo, "transfer-encoding"), Some("chunked"));
    assert_eq!(header(&echo, "content-length"), None);
    assert_eq!(echo["body_len"], expected_len);
    assert_eq!(echo["body_sum"], expected_sum);

    // A small one, echoed back verbatim, on the same connection.
    let mut resp = session
        .post(&server.url("/echo"))
        .body_stream(Pieces::new(vec![
            Bytes::from_static(b"tea "),
            Bytes::from_static(b"for "),
            Bytes::from_static(b"two"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(echoed(&mut resp).await["body"], "tea for two");
    assert_eq!(server.seen.connections(), 1);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn a_per_request_timeout_replaces_the_session_default() {
    let server = Server::start(app()).await;
    let session = session_with_total(Duration::from_secs(30));
    let start = Instant::now();
    let err = session
        .get(&server.url("/sleep/5000"))
        .timeout(ClientTimeout::none().total(Duration::from_millis(200)))
        .send()
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("total timeout"), "{err}");
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // The session's own (long) default still applies to the next request.
    let mut resp = session.get(&server.url("/sleep/300")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "slept");
    session.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Keep-alive and the pool
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn fifty_sequential_gets_share_one_connection() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    for i in 0..50 {
        let mut resp = session
            .get(&server.url("/echo"))
            .query(&[("i", i.to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(echoed(&mut resp).await["query"], format!("i={i}"));
    }
    assert_eq!(server.seen.requests(), 50);
    assert_eq!(
        server.seen.connections(),
        1,
        "the server saw new connections"
    );
    assert_eq!(server.open_connections(), 1);
    let stats = session.connector_stats();
    assert_eq!(stats.opened, 1);
    assert_eq!(stats.idle, 1);
    assert_eq!(stats.busy, 0);
    session.close().await;
    assert_eq!(session.connector_stats().idle, 0);
    server.shutdown().await;
}

#[kettle::test]
async fn the_server_decides_keep_alive_per_response() {
    let session = ClientSession::new();
    // HTTP/1.0 with Connection: keep-alive is reused; HTTP/1.1 with Connection: close and
    // HTTP/1.0 without keep-alive are not.
    for (wire, connections) in [
        (
            &b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"[..],
            1,
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            3,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 3),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 2\r\n\r\nok",
            3,
        ),
    ] {
        let script = Script::reply_each(wire);
        for _ in 0..3 {
            let mut resp = session.get(&script.url("/")).send().await.unwrap();
            assert_eq!(resp.text().await.unwrap(), "ok");
        }
        settle_accepts().await;
        assert_eq!(
            script.accepts(),
            connections,
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
    session.close().await;
}

#[kettle::test]
async fn an_unread_response_closes_its_connection_and_a_read_one_returns_it() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();

    let unread = session
        .get(&server.url("/big/1000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(session.connector_stats().busy, 1);
    drop(unread);
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle, stats.opened), (0, 0, 1));

    // The next request cannot use the connection with a body still on it: a new one.
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    assert_ne!(server.seen.peer(1), server.seen.peer(0));
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle, stats.opened), (0, 1, 2));

    // A body read to its end (in pieces, through content()) gives the connection back.
    let mut resp = session
        .get(&server.url("/big/300000"))
        .send()
        .await
        .unwrap();
    let mut total = 0;
    loop {
        let piece = resp.content().read_chunk().await.unwrap();
        if piece.is_empty() {
            break;
        }
        total += piece.len();
    }
    assert_eq!(total, 300_000);
    assert!(resp.content().at_eof());
    assert_eq!(session.connector_stats().idle, 1);
    drop(resp);
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    assert_eq!(server.seen.peer(3), server.seen.peer(1));
    assert_eq!(session.connector_stats().opened, 2);

    // release() after a partial read closes; after a full read keeps.
    let mut resp = session
        .get(&server.url("/big/300000"))
        .send()
        .await
        .unwrap();
    resp.content().read(10).await.unwrap();
    resp.release();
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle), (0, 0));
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    resp.release();
    assert_eq!(session.connector_stats().idle, 1);
    assert_eq!(session.connector_stats().opened, 3);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn a_cancelled_request_gives_its_pool_slot_back() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder().limit(1).build().unwrap();

    // Cancelled in the middle of the exchange (waiting for a slow head).
    let cancelled = kettle::wait_for(
        session.get(&server.url("/sleep/5000")).send(),
        Duration::from_millis(100),
    )
    .await;
    assert!(cancelled.unwrap_err().is_timeout());
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle), (0, 0), "{stats:?}");

    // Cancelled while queued for the one slot.
    let held = session
        .get(&server.url("/big/100000"))
        .send()
        .await
        .unwrap();
    let queued = {
        let (session, url) = (session.clone(), server.url("/echo"));
        kettle::spawn(async move { session.get(&url).send().await.map(|_| ()) })
    };
    kettle::sleep(Duration::from_millis(50)).await;
    assert!(!queued.done());
    queued.cancel();
    assert!(queued.await.unwrap_err().is_cancelled());
    drop(held);

    // Cancelled just after a slot was handed to it, before it ran: the slot goes on.
    for read_first in [false, true] {
        let mut held = session
            .get(&server.url("/big/100000"))
            .send()
            .await
            .unwrap();
        let queued = {
            let (session, url) = (session.clone(), server.url("/echo"));
            kettle::spawn(async move { session.get(&url).send().await.map(|_| ()) })
        };
        kettle::sleep(Duration::from_millis(50)).await;
        if read_first {
            // Read to the end: the connection itself is handed over.
            held.bytes().await.unwrap();
        }
        drop(held);
        queued.cancel();
        assert!(queued.await.unwrap_err().is_cancelled());
        let stats = session.connector_stats();
        assert_eq!(stats.busy, 0, "{stats:?}");
        assert!(stats.idle <= 1, "{stats:?}");
    }

    // The slot is free for the next request, which neither waits nor fails.
    let mut resp = session
        .get(&server.url("/echo"))
        .timeout(ClientTimeout::default().connect(Duration::from_secs(1)))
        .send()
        .await
        .unwrap();
    echoed(&mut resp).await;
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle), (0, 1), "{stats:?}");
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn requests_waiting_for_a_connection_are_served_in_arrival_order() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder().limit(1).build().unwrap();
    let held = session
        .get(&server.url("/big/100000"))
        .send()
        .await
        .unwrap();
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let (session, url, order) = (session.clone(), server.url("/echo"), order.clone());
            kettle::spawn(async move {
                let mut resp = session
                    .get(&url)
                    .query(&[("i", i.to_string())])
                    .send()
                    .await?;
                order.borrow_mut().push(i);
                resp.bytes().await.map(|_| ())
            })
        })
        .collect();
    kettle::sleep(Duration::from_millis(50)).await;
    assert!(order.borrow().is_empty());
    drop(held);
    for w in waiters {
        w.await.unwrap().unwrap();
    }
    assert_eq!(*order.borrow(), (0..8).collect::<Vec<_>>());
    // One connection after the dropped one, handed from each waiter to the next.
    assert_eq!(session.connector_stats().opened, 2);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn idle_connections_are_closed_after_the_keepalive_timeout() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .keepalive_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    assert_eq!(session.connector_stats().idle, 1);
    // The client closes it on its own (the server would keep it for 75 s).
    let start = Instant::now();
    while server.open_connections() > 0 || session.connector_stats().idle > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "still open");
        kettle::sleep(Duration::from_millis(50)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(100));
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    assert_eq!(session.connector_stats().opened, 2);
    assert_eq!(server.seen.connections(), 2);
    session.close().await;
    server.shutdown().await;
}

/// A concurrency gauge shared by the handlers of several servers.
#[derive(Default)]
struct Gauge {
    now: Cell<usize>,
    max: Cell<usize>,
}

/// An app whose `/work` handler holds a request for 2 ms and counts how many it holds.
fn gauge_app(gauge: Rc<Gauge>) -> Application {
    let mut app = Application::new();
    app.router().add_get("/work", move |_req: Request| {
        let gauge = gauge.clone();
        async move {
            gauge.now.set(gauge.now.get() + 1);
            gauge.max.set(gauge.max.get().max(gauge.now.get()));
            kettle::sleep(Duration::from_millis(2)).await;
            gauge.now.set(gauge.now.get() - 1);
            "worked"
        }
    });
    app
}

/// Sends `urls` all at once, each from its own task; panics unless every one answers
/// `worked`.
async fn storm(session: &ClientSession, urls: Vec<String>) {
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let session = session.clone();
            kettle::spawn(async move {
                let mut resp = session.get(&url).send().await?;
                let text = resp.text().await?;
                Ok::<_, kettle::Error>((resp.status(), text))
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (status, text) = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(status, 200);
        assert_eq!(text, "worked");
    }
}

#[kettle::test]
async fn a_thousand_concurrent_requests_stay_within_the_connection_limit() {
    let gauge = Rc::new(Gauge::default());
    let server = Server::start(gauge_app(gauge.clone())).await;
    let session = ClientSession::builder().limit(10).build().unwrap();
    storm(&session, vec![server.url("/work"); 1000]).await;
    assert_eq!(server.seen.requests(), 1000);
    assert!(gauge.max.get() <= 10, "{} at once", gauge.max.get());
    assert!(gauge.max.get() > 1, "the requests did not overlap at all");
    assert!(server.seen.max_in_flight() <= 10);
    assert!(
        server.seen.connections() <= 10,
        "{}",
        server.seen.connections()
    );
    let stats = session.connector_stats();
    assert!(stats.opened <= 10, "{stats:?}");
    assert_eq!(stats.opened as usize, server.seen.connections());
    assert_eq!(stats.busy, 0);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn limit_per_host_caps_each_origin_and_limit_caps_them_all() {
    let both = Rc::new(Gauge::default());
    let a_gauge = Rc::new(Gauge::default());
    let b_gauge = Rc::new(Gauge::default());
    // Each server counts its own requests and, through `both`, those of the two together.
    let count_both = |own: Rc<Gauge>| {
        let both = both.clone();
        let mut app = Application::new();
        app.router().add_get("/work", move |_req: Request| {
            let (own, both) = (own.clone(), both.clone());
            async move {
                for g in [&own, &both] {
                    g.now.set(g.now.get() + 1);
                    g.max.set(g.max.get().max(g.now.get()));
                }
                kettle::sleep(Duration::from_millis(2)).await;
                for g in [&own, &both] {
                    g.now.set(g.now.get() - 1);
                }
                "worked"
            }
        });
        app
    };
    let a = Server::start(count_both(a_gauge.clone())).await;
    let b = Server::start(count_both(b_gauge.clone())).await;
    let interleaved = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    a.url("/work")
                } else {
                    b.url("/work")
                }
            })
            .collect()
    };

    // Three per origin, the total limit out of the way.
    let session = ClientSession::builder().limit_per_host(3).build().unwrap();
    storm(&session, interleaved(1000)).await;
    assert!(a_gauge.max.get() <= 3, "{}", a_gauge.max.get());
    assert!(b_gauge.max.get() <= 3, "{}", b_gauge.max.get());
    assert!(both.max.get() <= 6, "{}", both.max.get());
    assert!(a.seen.connections() <= 3 && b.seen.connections() <= 3);
    assert!(session.connector_stats().opened <= 6);
    session.close().await;

    // Three per origin, four in all.
    for g in [&both, &a_gauge, &b_gauge] {
        g.max.set(0);
    }
    let session = ClientSession::builder()
        .limit(4)
        .limit_per_host(3)
        .build()
        .unwrap();
    storm(&session, interleaved(1000)).await;
    assert!(both.max.get() <= 4, "{}", both.max.get());
    assert!(a_gauge.max.get() <= 3, "{}", a_gauge.max.get());
    assert!(b_gauge.max.get() <= 3, "{}", b_gauge.max.get());
    let stats = session.connector_stats();
    assert!(stats.busy + stats.idle <= 4, "{stats:?}");
    session.close().await;
    a.shutdown().await;
    b.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn post_redirected_by_301_302_303_becomes_a_get_without_body() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    for code in [301u16, 302, 303] {
        let mut resp = session
            .post(&server.url(&format!("/redirect/{code}")))
            .query(&[("to", "/echo?after=1")])
            .header("Content-Type", "text/plain")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.method(), Method::GET);
        assert_eq!(resp.url().path(), "/echo");
        assert_eq!(resp.url().query(), Some("after=1"));
        assert_eq!(resp.history().len(), 1);
        assert_eq!(resp.history()[0].status(), code);
        assert_eq!(resp.history()[0].method(), Method::POST);
        let echo = echoed(&mut resp).await;
        assert_eq!(echo["method"], "GET", "{code}");
        assert_eq!(echo["body"], "", "{code}");
        assert_eq!(header(&echo, "content-length"), None, "{code}");
        assert_eq!(header(&echo, "content-type"), None, "{code}");
    }
    // 303 turns every method but HEAD into GET.
    let mut resp = session
        .put(&server.url("/redirect/303"))
        .body("put")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed(&mut resp).await["method"], "GET");
    // A GET stays a GET.
    let mut resp = session
        .get(&server.url("/redirect/301"))
        .send()
        .await
        .unwrap();
    assert_eq!(echoed(&mut resp).await["method"], "GET");
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn post_redirected_by_307_308_keeps_its_method_and_body() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    for code in [307u16, 308] {
        let mut resp = session
            .post(&server.url(&format!("/redirect/{code}")))
            .header("Content-Type", "text/plain")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.history()[0].status(), code);
        let echo = echoed(&mut resp).await;
        assert_eq!(echo["method"], "POST", "{code}");
        assert_eq!(echo["body"], "payload", "{code}");
        assert_eq!(header(&echo, "content-type"), Some("text/plain"));
        assert_eq!(header(&echo, "content-length"), Some("7"));
    }
    // A body too large to go out with the head is sent again in full.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut resp = session
        .put(&server.url("/redirect/308"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let echo = echoed(&mut resp).await;
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["body_len"], big.len());
    assert_eq!(
        echo["body_sum"],
        big.iter().map(|&b| u64::from(b)).sum::<u64>()
    );
    // A streamed body cannot be sent twice: the 307 itself is the answer.
    let resp = session
        .post(&server.url("/redirect/307"))
        .body_stream(Pieces::new(vec![Bytes::from_static(b"once")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    assert!(resp.history().is_empty());
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn a_redirect_chain_is_kept_in_history_and_the_final_url_is_reported() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session.get(&server.url("/chain/3")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "done");
    assert_eq!(resp.url().as_str(), server.url("/chain/0"));
    let history: Vec<(u16, String)> = resp
        .history()
        .iter()
        .map(|r| (r.status().as_u16(), r.url().path().to_string()))
        .collect();
    assert_eq!(
        history,
        [
            (302, "/chain/3".to_string()),
            (302, "/chain/2".to_string()),
            (302, "/chain/1".to_string())
        ]
    );
    assert_eq!(
        resp.history()[0].headers()[LOCATION],
        "/chain/2",
        "the redirect's headers are kept"
    );
    // The redirects' bodies were drained, so all four requests shared one connection.
    assert_eq!(server.seen.requests(), 4);
    assert_eq!(server.seen.connections(), 1);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn a_cross_origin_redirect_drops_credentials_and_a_same_origin_one_keeps_them() {
    let a = Server::start(app()).await;
    let b = Server::start(app()).await;
    let session = ClientSession::new();
    let credentials = |rb: kettle::client::RequestBuilder| {
        rb.header("Authorization", "Bearer tea")
            .header("Cookie", "secret=1")
            .header("X-Tea", "oolong")
    };

    let mut same = credentials(session.get(&a.url("/redirect/302")))
        .query(&[("to", a.url("/echo"))])
        .send()
        .await
        .unwrap();
    let echo = echoed(&mut same).await;
    assert_eq!(header(&echo, "authorization"), Some("Bearer tea"));
    assert_eq!(header(&echo, "cookie"), Some("secret=1"));

    for code in ["302", "307"] {
        let mut other = credentials(session.get(&a.url(&format!("/redirect/{code}"))))
            .query(&[("to", b.url("/echo"))])
            .send()
            .await
            .unwrap();
        assert_eq!(other.url().port(), Some(b.addr.port()));
        let echo = echoed(&mut other).await;
        assert_eq!(header(&echo, "authorization"), None, "{code}: {echo}");
        assert_eq!(header(&echo, "cookie"), None, "{code}: {echo}");
        assert_eq!(header(&echo, "x-tea"), Some("oolong"), "{code}");
    }
    // A scheme-relative Location is another origin too.
    let mut other = credentials(session.get(&a.url("/redirect/302")))
        .query(&[("to", format!("//{}/echo", b.addr))])
        .send()
        .await
        .unwrap();
    let echo = echoed(&mut other).await;
    assert_eq!(header(&echo, "authorization"), None, "{echo}");
    assert_eq!(b.seen.requests(), 3);
    session.close().await;

    // Credentials given as session defaults are meant for the first origin too.
    let session = ClientSession::builder()
        .header("Authorization", "Bearer session")
        .build()
        .unwrap();
    let mut other = session
        .get(&a.url("/redirect/302"))
        .query(&[("to", b.url("/echo"))])
        .send()
        .await
        .unwrap();
    let echo = echoed(&mut other).await;
    assert_eq!(header(&echo, "authorization"), None, "{echo}");
    let mut same = session.get(&a.url("/redirect/302")).send().await.unwrap();
    let echo = echoed(&mut same).await;
    assert_eq!(header(&echo, "authorization"), Some("Bearer session"));
    session.close().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[kettle::test]
async fn too_many_redirects_and_a_redirect_loop_are_errors() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();

    let err = session.get(&server.url("/loop")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects, "{err}");
    assert!(err.to_string().contains("more than 10 redirects"), "{err}");
    assert!(err.to_string().contains("/loop"), "{err}");
    // The first request and ten redirects were followed, no more.
    assert_eq!(server.seen.requests(), 11);

    let err = session
        .get(&server.url("/chain/5"))
        .max_redirects(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert!(err.to_string().contains("more than 2 redirects"), "{err}");

    let strict = ClientSession::builder().max_redirects(3).build().unwrap();
    let mut ok = strict.get(&server.url("/chain/3")).send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "done");
    let err = strict
        .get(&server.url("/chain/4"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    // No redirects at all: the first 3xx is an error.
    let none = ClientSession::builder().max_redirects(0).build().unwrap();
    let err = none.get(&server.url("/chain/1")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    for s in [session, strict, none] {
        s.close().await;
    }
    server.shutdown().await;
}

#[kettle::test]
async fn allow_redirects_false_returns_the_redirect_itself() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session
        .post(&server.url("/redirect/302"))
        .body("x")
        .allow_redirects(false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()[LOCATION], "/echo");
    assert!(resp.history().is_empty());
    assert_eq!(resp.url().path(), "/redirect/302");
    assert_eq!(resp.text().await.unwrap(), "moved");
    assert_eq!(server.seen.requests(), 1);
    session.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn cookies_set_by_the_server_come_back_by_the_path_rules() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let cookies_at = |path: &str| {
        let request = session.get(&server.url(path));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };

    let mut resp = session
        .get(&server.url("/set-cookies"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "set");
    assert_eq!(
        resp.cookies(),
        [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string())
        ]
    );
    assert_eq!(session.cookie_jar().len(), 2);

    assert_eq!(cookies_at("/cookies").await, "a=1");
    // Longer paths first (RFC 6265 §5.4).
    assert_eq!(cookies_at("/sub/cookies").await, "b=2; a=1");
    // `/sub` is not a prefix of `/subway` in the cookie sense.
    assert_eq!(cookies_at("/subway/cookies").await, "a=1");

    // A cookie set by a redirect is sent on the request that follows it.
    let mut resp = session
        .get(&server.url("/redirect/302"))
        .query(&[("to", "/cookies"), ("cookie", "r=9")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "a=1; r=9");
    assert_eq!(
        resp.history()[0].cookies(),
        [("r".to_string(), "9".to_string())]
    );

    // A Cookie header of the request's own is kept, with the jar's cookies after it.
    let mut resp = session
        .get(&server.url("/cookies"))
        .header("Cookie", "mine=0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "mine=0; a=1; r=9");

    // What a jar must not keep or send: a Secure cookie over http, a cookie for another
    // domain; what it must forget: a cookie deleted with Max-Age=0 or a past Expires.
    let mut resp = session
        .get(&server.url("/set-raw"))
        .query(&[
            ("c", "s=1; Secure"),
            ("c", "d=1; Domain=example.com"),
            ("c", "a=; Max-Age=0; Path=/"),
            ("c", "r=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"),
            ("c", "n=new; Path=/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "set");
    assert_eq!(cookies_at("/cookies").await, "n=new");
    assert_eq!(cookies_at("/sub/cookies").await, "b=2; n=new");
    session.close().await;

    // A dummy jar stores nothing and sends nothing; the response still lists what it set.
    let dummy = ClientSession::builder()
        .cookie_jar(CookieJar::dummy())
        .build()
        .unwrap();
    let mut resp = dummy.get(&server.url("/set-cookies")).send().await.unwrap();
    assert_eq!(resp.cookies().len(), 2);
    resp.text().await.unwrap();
    assert!(dummy.cookie_jar().is_empty());
    let mut resp = dummy.get(&server.url("/cookies")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "");
    dummy.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------------------------

#[test]
fn the_handmade_brotli_stream_is_valid() {
    use std::io::Read as _;
    for len in [0usize, 1, 10, 65_535, 65_536, 65_537, 200_000] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        brotli_decompressor::Decompressor::new(&brotli_stored(&data)[..], 4096)
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{len}: {e}"));
        assert_eq!(out, data, "{len}");
    }
}

#[kettle::test]
async fn gzip_deflate_and_br_bodies_are_decoded() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    assert_eq!(
        header(&echoed(&mut resp).await, "accept-encoding"),
        Some("gzip, deflate, br")
    );
    for (path, coding) in [
        ("/encoded/gzip", "gzip"),
        ("/encoded/deflate", "deflate"),
        ("/encoded/raw-deflate", "deflate"),
        ("/encoded/br", "br"),
    ] {
        let mut resp = session.get(&server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()[CONTENT_ENCODING], coding);
        assert_eq!(resp.text().await.unwrap(), original_text(), "{path}");
    }

    // An empty body is empty, not a truncated stream of its coding.
    for coding in ["gzip", "deflate", "br"] {
        for query in ["", "?chunked"] {
            let path = format!("/empty/{coding}{query}");
            let mut resp = session.get(&server.url(&path)).send().await.unwrap();
            assert_eq!(resp.headers()[CONTENT_ENCODING], coding);
            let body = resp.bytes().await.unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(body.is_empty(), "{path}");
        }
    }

    // Decoded as it streams: chunked, in 1000-byte compressed pieces.
    let mut resp = session
        .get(&server.url("/gzip-stream"))
        .send()
        .await
        .unwrap();
    let mut text = Vec::new();
    loop {
        let piece = resp.content().read_chunk().await.unwrap();
        if piece.is_empty() {
            break;
        }
        text.extend_from_slice(&piece);
    }
    assert_eq!(text, streamed_text().as_bytes());
    // Every body was read to its end, decompressed or not: one connection throughout.
    assert_eq!(server.seen.connections(), 1);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn auto_decompress_false_returns_the_raw_bytes() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .auto_decompress(false)
        .build()
        .unwrap();
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    assert_eq!(header(&echoed(&mut resp).await, "accept-encoding"), None);
    let text = original_text();
    for (path, raw) in [
        ("/encoded/gzip", gzip(text.as_bytes())),
        ("/encoded/deflate", zlib(text.as_bytes())),
        ("/encoded/br", brotli_stored(text.as_bytes())),
    ] {
        let mut resp = session.get(&server.url(path)).send().await.unwrap();
        assert_eq!(resp.bytes().await.unwrap(), raw, "{path}");
    }
    session.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Large bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn a_100_mb_body_streams_through_in_bounded_memory() {
    run_in_own_process("hundred_mb_body_in_a_process_of_its_own");
}

#[kettle::test]
#[ignore = "run in a process of its own by a_100_mb_body_streams_through_in_bounded_memory"]
async fn hundred_mb_body_in_a_process_of_its_own() {
    const SIZE: u64 = 100 * MIB;
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let (Some(rss_before), Some(hwm_before)) =
        (proc_status_bytes("VmRSS"), proc_status_bytes("VmHWM"))
    else {
        eprintln!("skipped: no /proc/self/status to read memory use from");
        return;
    };
    let mut resp = session
        .get(&server.url(&format!("/big/{SIZE}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.content_length(), Some(SIZE));
    let mut total = 0u64;
    let mut rss_peak = rss_before;
    let mut next_sample = 0;
    loop {
        let piece = resp.content().read_chunk().await.unwrap();
        if piece.is_empty() {
            break;
        }
        assert!(piece.len() <= 64 * 1024, "{}", piece.len());
        assert!(piece.iter().all(|&b| b == b'x'));
        total += piece.len() as u64;
        if total >= next_sample {
            rss_peak = rss_peak.max(proc_status_bytes("VmRSS").unwrap_or(0));
            next_sample += 4 * MIB;
        }
    }
    assert_eq!(total, SIZE);
    let rss_growth = rss_peak.saturating_sub(rss_before);
    let hwm_growth = proc_status_bytes("VmHWM")
        .unwrap_or(0)
        .saturating_sub(hwm_before);
    eprintln!(
        "100 MiB read; RSS grew by {} KiB at most, peak RSS by {} KiB",
        rss_growth / 1024,
        hwm_growth / 1024
    );
    assert!(
        rss_growth < 40 * MIB,
        "RSS grew by {} MiB",
        rss_growth / MIB
    );
    assert!(
        hwm_growth < 40 * MIB,
        "peak RSS grew by {} MiB",
        hwm_growth / MIB
    );
    // Read to the end: the connection is reusable.
    assert_eq!(session.connector_stats().idle, 1);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn a_chunked_body_streams_through_iter_chunked() {
    const SIZE: u64 = 16 * MIB;
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session
        .get(&server.url(&format!("/big-chunked/{SIZE}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.content_length(), None);
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    let mut chunks = resp.content().iter_chunked(10_000);
    let mut total = 0u64;
    let mut pieces = 0;
    while let Some(piece) = poll_fn(|cx| Pin::new(&mut chunks).poll_next(cx)).await {
        let piece = piece.unwrap();
        assert!(!piece.is_empty() && piece.len() <= 10_000);
        total += piece.len() as u64;
        pieces += 1;
    }
    assert_eq!(total, SIZE);
    assert!(pieces >= SIZE / 10_000);
    assert_eq!(session.connector_stats().idle, 1);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn content_reads_as_lines_as_async_read_and_as_a_stream() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();

    let mut resp = session.get(&server.url("/lines")).send().await.unwrap();
    let content = resp.content();
    assert_eq!(&content.readline(100).await.unwrap()[..], b"first\n");
    assert_eq!(&content.readline(100).await.unwrap()[..], b"second\r\n");
    assert_eq!(
        &content.readline(100).await.unwrap()[..],
        b"third, with no end"
    );
    assert!(content.readline(100).await.unwrap().is_empty());
    assert!(content.at_eof());
    let mut resp = session.get(&server.url("/lines")).send().await.unwrap();
    let err = resp.content().readline(3).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(
        err.to_string().contains("line longer than 3 bytes"),
        "{err}"
    );
    drop(resp);

    // futures_io::AsyncRead, into a small buffer.
    let mut resp = session
        .get(&server.url("/big/300000"))
        .send()
        .await
        .unwrap();
    let mut buf = [0u8; 1000];
    let mut total = 0;
    loop {
        let n =
            poll_fn(|cx| futures_io::AsyncRead::poll_read(Pin::new(resp.content()), cx, &mut buf))
                .await
                .unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == b'x'));
        total += n;
    }
    assert_eq!(total, 300_000);

    // futures_core::Stream, piece by piece.
    let mut resp = session
        .get(&server.url("/big-chunked/300000"))
        .send()
        .await
        .unwrap();
    let mut total = 0;
    while let Some(piece) = poll_fn(|cx| Pin::new(resp.content()).poll_next(cx)).await {
        total += piece.unwrap().len();
    }
    assert_eq!(total, 300_000);
    // All read to the end: one connection throughout, except the one the error closed.
    assert_eq!(session.connector_stats().opened, 2);
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn bytes_refuses_a_body_larger_than_max_body_size() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .max_body_size(64 * 1024)
        .build()
        .unwrap();
    for path in ["/big/65537", "/big-chunked/100000"] {
        let mut resp = session.get(&server.url(path)).send().await.unwrap();
        let err = resp.bytes().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{path}: {err}");
        assert!(err.to_string().contains("65536-byte limit"), "{err}");
        // text() and json() go through the same limit.
        assert!(resp.text().await.is_err());
    }
    let mut resp = session.get(&server.url("/big/65536")).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 65536);
    // The limit is for holding a body, not for streaming one.
    let mut resp = session
        .get(&server.url("/big/200000"))
        .send()
        .await
        .unwrap();
    let mut total = 0;
    loop {
        let piece = resp.content().read_chunk().await.unwrap();
        if piece.is_empty() {
            break;
        }
        total += piece.len();
    }
    assert_eq!(total, 200_000);
    session.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Status errors
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn raise_for_status_session_wide_per_request_and_on_the_response() {
    let server = Server::start(app()).await;
    let raising = ClientSession::builder()
        .raise_for_status(true)
        .build()
        .unwrap();
    let err = raising
        .get(&server.url("/status/404"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert!(err.to_string().contains("404 Not Found"), "{err}");
    assert!(err.to_string().contains("/status/404"), "{err}");
    let err = raising
        .get(&server.url("/status/503"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    // Below 400 is not an error; a request may opt out.
    let mut ok = raising
        .get(&server.url("/status/201"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "status 201");
    let mut not_found = raising
        .get(&server.url("/status/404"))
        .raise_for_status(false)
        .send()
        .await
        .unwrap();
    assert_eq!(not_found.status(), 404);
    assert_eq!(not_found.text().await.unwrap(), "status 404");
    raising.close().await;

    let lenient = ClientSession::new();
    let resp = lenient
        .get(&server.url("/status/404"))
        .send()
        .await
        .unwrap();
    assert!(!resp.ok());
    let err = resp.raise_for_status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    let err = lenient
        .get(&server.url("/status/410"))
        .raise_for_status(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::GONE));
    let resp = lenient
        .get(&server.url("/status/200"))
        .send()
        .await
        .unwrap();
    assert!(resp.ok());
    resp.raise_for_status().unwrap();
    lenient.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Stale connections and the one retry
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn an_idle_connection_the_server_closed_is_replaced() {
    let options = ServerOptions::default().keepalive_timeout(Duration::from_millis(200));
    let server = Server::start_with(app(), options).await;
    let session = ClientSession::new();
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    assert_eq!(session.connector_stats().idle, 1);
    // Wait for the server to close the idle connection.
    let start = Instant::now();
    while server.open_connections() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the server kept it"
        );
        kettle::sleep(Duration::from_millis(50)).await;
    }
    kettle::sleep(Duration::from_millis(100)).await;
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    assert_eq!(session.connector_stats().opened, 2);
    assert_eq!(server.seen.connections(), 2);
    session.close().await;
    server.shutdown().await;
}

/// A server whose first connection answers one request, reads the next one whole, and
/// closes without a word; later connections answer `again` to every request (or, with
/// `later_close`, close the same way).
fn closes_after_one(later_close: bool) -> Script {
    Script::start(move |n, mut s| {
        if n == 0 || later_close {
            if n == 0 {
                let Some(_) = read_request(&mut s) else {
                    return;
                };
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
            }
            let _ = read_request(&mut s);
            return;
        }
        while read_request(&mut s).is_some() {
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain")
                .is_err()
            {
                return;
            }
        }
    })
}

/// Lets the script server's accept thread catch up with connections the kernel took.
async fn settle_accepts() {
    kettle::sleep(Duration::from_millis(200)).await;
}

#[kettle::test]
async fn a_get_on_a_reused_connection_the_server_dropped_is_retried_once() {
    let script = closes_after_one(false);
    let session = ClientSession::new();
    let mut first = session.get(&script.url("/")).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "first");
    let mut second = session.get(&script.url("/")).send().await.unwrap();
    assert_eq!(second.text().await.unwrap(), "again");
    settle_accepts().await;
    assert_eq!(script.accepts(), 2);
    assert_eq!(session.connector_stats().opened, 2);
    session.close().await;

    // Only once: when the fresh connection fails as well, that is the answer.
    let script = closes_after_one(true);
    let session = ClientSession::new();
    let mut first = session.get(&script.url("/")).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "first");
    let err = session.get(&script.url("/")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("without responding"), "{err}");
    settle_accepts().await;
    assert_eq!(script.accepts(), 2);
    session.close().await;
}

#[kettle::test]
async fn a_post_on_a_reused_connection_the_server_dropped_is_not_retried() {
    let script = closes_after_one(false);
    let session = ClientSession::new();
    let mut first = session
        .post(&script.url("/"))
        .body("one")
        .send()
        .await
        .unwrap();
    assert_eq!(first.text().await.unwrap(), "first");
    let err = session
        .post(&script.url("/"))
        .body("two")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("without responding"), "{err}");
    settle_accepts().await;
    assert_eq!(script.accepts(), 1, "the POST was sent again");
    session.close().await;
}

#[kettle::test]
async fn a_request_on_a_fresh_connection_is_not_retried() {
    let script = Script::start(|_, mut s| {
        let _ = read_request(&mut s);
    });
    let session = ClientSession::new();
    let err = session.get(&script.url("/")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    settle_accepts().await;
    assert_eq!(script.accepts(), 1);
    session.close().await;
}

#[kettle::test]
async fn a_reused_connection_that_answered_in_part_is_not_retried() {
    let script = Script::start(|n, mut s| {
        if n > 0 {
            // A retry would get a proper answer: it must not happen.
            while read_request(&mut s).is_some() {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry");
            }
            return;
        }
        let Some(_) = read_request(&mut s) else {
            return;
        };
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
        let Some(_) = read_request(&mut s) else {
            return;
        };
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConte");
    });
    let session = ClientSession::new();
    let mut first = session.get(&script.url("/")).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "first");
    let err = session.get(&script.url("/")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert!(
        err.to_string().contains("middle of the response head"),
        "{err}"
    );
    settle_accepts().await;
    assert_eq!(script.accepts(), 1);
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn sock_read_times_out_when_the_server_stalls_mid_body() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().sock_read(Duration::from_millis(300)))
        .build()
        .unwrap();
    let mut resp = session
        .get(&server.url("/stall-body"))
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    let err = resp.bytes().await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("sock_read"), "{err}");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The failed response gave up its connection.
    drop(resp);
    assert_eq!(session.connector_stats().busy, 0);

    // sock_read bounds each wait, not the whole body: 5 pieces 100 ms apart are fine.
    let mut resp = session.get(&server.url("/drip")).send().await.unwrap();
    assert_eq!(
        resp.text().await.unwrap(),
        "drop 0;drop 1;drop 2;drop 3;drop 4;"
    );
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn total_times_out_waiting_for_the_head_and_for_the_body() {
    let server = Server::start(app()).await;
    let session = session_with_total(Duration::from_millis(300));
    let start = Instant::now();
    let err = session
        .get(&server.url("/sleep/5000"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("total timeout"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(4));

    // The body of /drip takes 500 ms: past a 300 ms total, though every piece is prompt.
    let start = Instant::now();
    let mut resp = session.get(&server.url("/drip")).send().await.unwrap();
    let err = resp.text().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("total timeout"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(4));
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn connect_times_out_waiting_for_a_pooled_connection() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder().limit(1).build().unwrap();
    let held = session
        .get(&server.url("/big/1000000"))
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    let err = session
        .get(&server.url("/echo"))
        .timeout(ClientTimeout::default().connect(Duration::from_millis(200)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("waiting for a free connection"),
        "{err}"
    );
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert!(start.elapsed() < Duration::from_secs(3));
    // Once the held response lets go, the slot is free again.
    drop(held);
    let mut resp = session
        .get(&server.url("/echo"))
        .timeout(ClientTimeout::default().connect(Duration::from_millis(200)))
        .send()
        .await
        .unwrap();
    echoed(&mut resp).await;
    // A waiter is served as soon as a connection comes back.
    let held = session
        .get(&server.url("/big/100000"))
        .send()
        .await
        .unwrap();
    let waiter = {
        let session = session.clone();
        let url = server.url("/echo");
        kettle::spawn(async move {
            let mut resp = session.get(&url).send().await?;
            resp.json::<Value>().await
        })
    };
    kettle::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.done());
    let mut held = held;
    held.bytes().await.unwrap();
    let echo = waiter.await.unwrap().unwrap();
    assert_eq!(echo["method"], "GET");
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn sock_connect_times_out_on_a_listener_that_never_completes_the_handshake() {
    // A listener with a backlog of 0 that never accepts: once its queue holds a connection,
    // Linux drops further SYNs, so a connect hangs until the caller's deadline.
    let listener =
        kettle::net::TcpListener::bind_with_backlog("127.0.0.1:0".parse().unwrap(), 0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    if !full {
        eprintln!("skipped: this kernel completed every handshake of a full backlog");
        return;
    }
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().sock_connect(Duration::from_millis(300)))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = session
        .get(&format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("connecting to"), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert!(start.elapsed() < Duration::from_secs(4));
    assert_eq!(session.connector_stats().busy, 0);
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Decoding: charsets and JSON
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn text_decodes_by_the_charset_of_the_response() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session.get(&server.url("/latin1")).send().await.unwrap();
    assert_eq!(resp.charset().as_deref(), Some("iso-8859-1"));
    assert_eq!(resp.text().await.unwrap(), "café crème");
    let mut resp = session.get(&server.url("/gbk")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "中文");
    // Without a charset, UTF-8; bytes that are not UTF-8 are an error, not mojibake.
    let mut resp = session.get(&server.url("/bad-utf8")).send().await.unwrap();
    let err = resp.text().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    // The raw bytes are still there.
    assert_eq!(&resp.bytes().await.unwrap()[..], b"ok \xff\xfe");
    session.close().await;
    server.shutdown().await;
}

#[derive(Debug, Deserialize, PartialEq)]
struct Cup {
    tea: String,
    cups: u32,
}

#[kettle::test]
async fn json_wants_a_json_content_type_and_json_any_does_not() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session.get(&server.url("/json-data")).send().await.unwrap();
    let cup: Cup = resp.json().await.unwrap();
    assert_eq!(
        cup,
        Cup {
            tea: "oolong".into(),
            cups: 2
        }
    );
    let mut resp = session.get(&server.url("/problem")).send().await.unwrap();
    assert_eq!(resp.json::<Cup>().await.unwrap().tea, "black");

    let mut resp = session
        .get(&server.url("/json-as-text"))
        .send()
        .await
        .unwrap();
    let err = resp.json::<Cup>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(
        err.to_string().contains("Content-Type is text/plain"),
        "{err}"
    );
    let cup: Cup = resp.json_any().await.unwrap();
    assert_eq!(cup.tea, "green");

    // Not JSON at all.
    let mut resp = session.get(&server.url("/latin1")).send().await.unwrap();
    let err = resp.json_any::<Value>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    session.close().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Closing the session
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn a_closed_session_refuses_requests_but_finishes_responses_in_hand() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session.get(&server.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    let mut in_hand = session
        .get(&server.url("/big/200000"))
        .send()
        .await
        .unwrap();
    let stats = session.connector_stats();
    assert_eq!(
        (stats.busy, stats.idle),
        (1, 0),
        "in_hand reuses the idle connection"
    );
    session.close().await;
    assert!(session.closed());
    assert_eq!(session.connector_stats().idle, 0);

    let err = session.get(&server.url("/echo")).send().await.unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidState);

    assert_eq!(in_hand.bytes().await.unwrap().len(), 200_000);
    drop(in_hand);
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle), (0, 0));
    // Only the request before close reached the server (plus the one in hand).
    assert_eq!(server.seen.requests(), 2);
    server.shutdown().await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn dropping_an_unclosed_session_with_idle_connections_warns() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        kettle::run(async {
            let server = Server::start(app()).await;
            // Closed: no warning.
            let closed = ClientSession::new();
            closed
                .get(&server.url("/echo"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            closed.close().await;
            drop(closed);
            // Never used: nothing to leak, no warning.
            drop(ClientSession::new());
            // Unclosed, with an idle connection: a warning.
            let leaky = ClientSession::new();
            leaky
                .get(&server.url("/echo"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(leaky.connector_stats().idle, 1);
            drop(leaky);
            server.shutdown().await;
        });
    });
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert_eq!(
        text.matches("Unclosed client session").count(),
        1,
        "log was:\n{text}"
    );
    assert!(text.contains("WARN"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Base URL and default headers
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn base_url_and_default_headers_apply_and_the_request_overrides_them() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .base_url(&server.url("/"))
        .header("X-Default", "session")
        .header("X-Override", "session")
        .build()
        .unwrap();
    let mut resp = session
        .get("/echo")
        .header("X-Override", "request")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().as_str(), server.url("/echo"));
    let echo = echoed(&mut resp).await;
    assert_eq!(header(&echo, "x-default"), Some("session"));
    assert_eq!(header(&echo, "x-override"), Some("request"));
    assert!(header(&echo, "user-agent").unwrap().starts_with("kettle/"));
    assert_eq!(header(&echo, "accept"), Some("*/*"));

    // Relative references without a leading slash, with a query, and the defaults again.
    let mut resp = session.get("echo?q=1").send().await.unwrap();
    let echo = echoed(&mut resp).await;
    assert_eq!(
        (echo["path"].as_str(), echo["query"].as_str()),
        (Some("/echo"), Some("q=1"))
    );
    assert_eq!(header(&echo, "x-override"), Some("session"));

    // The built-in headers can be overridden too.
    let mut resp = session
        .get("/echo")
        .header("User-Agent", "teapot/418")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&echoed(&mut resp).await, "user-agent"),
        Some("teapot/418")
    );

    // An absolute URL ignores the base.
    let other = Server::start(app()).await;
    let mut resp = session.get(&other.url("/echo")).send().await.unwrap();
    echoed(&mut resp).await;
    assert_eq!(other.seen.requests(), 1);
    session.close().await;

    // A base with a path: relative references resolve under it.
    let api = ClientSession::builder()
        .base_url(&server.url("/api/"))
        .build()
        .unwrap();
    let mut resp = api.get("echo").send().await.unwrap();
    assert_eq!(echoed(&mut resp).await["path"], "/api/echo");
    api.close().await;
    other.shutdown().await;
    server.shutdown().await;
}

#[kettle::test]
async fn urls_are_encoded_on_the_wire_and_fragments_stay_home() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let mut resp = session
        .get(&server.url("/echo?q=th\u{e9} vert#section-2"))
        .query(&[("cup", "\u{1f375}")])
        .send()
        .await
        .unwrap();
    let echo = echoed(&mut resp).await;
    assert_eq!(echo["path"], "/echo");
    assert_eq!(echo["query"], "q=th%C3%A9%20vert&cup=%F0%9F%8D%B5");
    // The fragment stays in the URL the response reports, and off the wire.
    assert_eq!(resp.url().fragment(), Some("section-2"));
    session.close().await;
    server.shutdown().await;
}

#[kettle::test]
async fn an_ipv6_literal_is_connected_to_and_sent_in_brackets() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        if let Some(req) = read_request(&mut s) {
            let host = req.header("host").unwrap_or("").to_string();
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{host}",
                    host.len()
                )
                .as_bytes(),
            );
        }
    });
    let session = session_with_total(Duration::from_secs(10));
    let mut resp = session
        .get(&format!("http://[::1]:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), format!("[::1]:{port}"));
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Python's http.server
// ---------------------------------------------------------------------------------------------

/// A child process killed (and reaped) when dropped, so a failing test leaves none behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("kettle-client-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn python3() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts `python3 args...` listening on a free port (passed where `args` has `{port}`)
/// and waits until it accepts connections.
fn start_python(args: &[&str]) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let child = Child(
        std::process::Command::new("python3")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn python3"),
    );
    let start = Instant::now();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "python3 did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

#[kettle::test]
async fn python_http_server_serves_files_over_http_1_0() {
    if !python3() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = TempDir::new("httpserver");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.0.join("data.bin"), &data).unwrap();
    std::fs::write(dir.0.join("hello.txt"), "hello from python\n").unwrap();
    let (_child, port) = start_python(&[
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "{port}",
        "--directory",
        dir.0.to_str().unwrap(),
    ]);
    let session = session_with_total(Duration::from_secs(20));
    let base = format!("http://127.0.0.1:{port}");

    let mut resp = session
        .get(&format!("{base}/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_10);
    assert_eq!(resp.content_type(), "text/plain");
    assert_eq!(resp.text().await.unwrap(), "hello from python\n");

    let mut resp = session
        .get(&format!("{base}/data.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.content_length(), Some(data.len() as u64));
    assert_eq!(resp.bytes().await.unwrap(), data);

    // A directory listing, and a 404 page.
    let mut resp = session.get(&format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.content_type(), "text/html");
    assert!(resp.text().await.unwrap().contains("hello.txt"));
    let mut resp = session
        .get(&format!("{base}/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    resp.bytes().await.unwrap();
    // HTTP/1.0 without keep-alive: every response closed its connection, none was pooled.
    let stats = session.connector_stats();
    assert_eq!(stats.opened, 4);
    assert_eq!((stats.busy, stats.idle), (0, 0));
    session.close().await;
}

/// A Python handler that sends its body without any length, ending it by closing.
const CLOSE_DELIMITED: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        for i in range(1000):
            self.wfile.write(("line %d\n" % i).encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

#[kettle::test]
async fn python_close_delimited_body_is_read_to_the_close() {
    if !python3() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let (_child, port) = start_python(&["-c", CLOSE_DELIMITED, "{port}"]);
    let session = session_with_total(Duration::from_secs(20));
    for _ in 0..2 {
        let mut resp = session
            .get(&format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.content_length(), None);
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(resp.text().await.unwrap(), expected);
    }
    let stats = session.connector_stats();
    assert_eq!(stats.opened, 2);
    assert_eq!(stats.idle, 0);
    session.close().await;
}
