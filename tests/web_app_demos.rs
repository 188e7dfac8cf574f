//! The web seed demos: `examples/web_app.rs` run as a process (its three routes, a hundred
//! concurrent requests that must overlap, graceful exit on SIGTERM), and the handlers of
//! `examples/web_app.rs` and `examples/web_ids.rs` served in-process (`web_ids` binds the
//! fixed port 9977 in its `main`, which a test must not depend on).

mod process_support;
mod web_app_support;

#[path = "../examples/web_ids.rs"]
#[allow(dead_code)] // the example's `main`
mod web_ids;

#[path = "../examples/web_app.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing
mod web_app_example;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use http::Method;
use kettle::web::TestClient;
use process_support::{example, start_example, Reaped};
use web_app_support::{curl, raw, RawResponse};

/// Starts `web_app --port <free>` and waits for its banner.
fn start_web_app() -> (Reaped, SocketAddr) {
    let (child, port, banner) = start_example("web_app");
    assert_eq!(
        banner,
        format!("Server started at http://127.0.0.1:{port}...")
    );
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

async fn get(addr: SocketAddr, path: &str) -> RawResponse {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    RawResponse::parse(&raw(addr, req.as_bytes()).await)
}

#[kettle::test]
async fn web_app_process_serves_the_seed_routes_concurrently() {
    let (mut child, addr) = start_web_app();

    let r = get(addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), "<h1>Index</h1>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = get(addr, "/hello/kettle").await;
    assert_eq!(r.body_text(), "<h1>hello, kettle!</h1>");
    // The name is HTML-escaped.
    let r = get(addr, "/hello/%3Cb%3E").await;
    assert_eq!(r.body_text(), "<h1>hello, &lt;b&gt;!</h1>");
    let r = get(addr, "/nope").await;
    assert_eq!(r.status, 404);

    let body = "some body\u{2615}";
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = RawResponse::parse(&raw(addr, req.as_bytes()).await);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), body);
    assert_eq!(r.header("content-type"), Some("text/plain"));

    // A hundred requests at once, each sleeping 0.5 s in its handler: they overlap, so
    // the whole batch takes about half a second, nowhere near 100 × 0.5 s.
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            kettle::spawn(async move {
                let path = if i % 2 == 0 {
                    "/".to_string()
                } else {
                    format!("/hello/user{i}")
                };
                (i, get(addr, &path).await)
            })
        })
        .collect();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert_eq!(r.status, 200, "request {i}");
        let expected = if i % 2 == 0 {
            "<h1>Index</h1>".to_string()
        } else {
            format!("<h1>hello, user{i}!</h1>")
        };
        assert_eq!(r.body_text(), expected, "request {i}");
    }
    let elapsed = t0.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "{elapsed:?}: not concurrent"
    );

    // curl, where installed.
    let url = format!("http://{addr}/echo");
    if let Some(out) = curl(&["-d", "from curl", &url]).await {
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from curl");
    }

    // SIGTERM: a graceful exit.
    let pid = child.0.id() as libc::pid_t;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "web_app did not exit on SIGTERM");
        kettle::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[kettle::test]
async fn web_app_refuses_bad_arguments() {
    let out = Command::new(example("web_app"))
        .args(["--port", "notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid port"));
}

#[kettle::test]
async fn web_app_handlers_in_process() {
    let c = TestClient::new(web_app_example::app()).await.unwrap();
    let t0 = Instant::now();
    let r = c.get("/").await.unwrap();
    assert!(t0.elapsed() >= web_app_example::DELAY);
    assert_eq!(r.text(), "<h1>Index</h1>");
    let r = c.get("/hello/a%20b").await.unwrap();
    assert_eq!(r.text(), "<h1>hello, a b!</h1>");
    let r = c
        .request(Method::POST, "/echo")
        .header("content-type", "application/json")
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text(), "{\"a\":1}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Routes added with `add_route("GET", ...)` answer HEAD too (RFC 9110 §9.1), without a
    // body.
    let r = c.request(Method::HEAD, "/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.body().is_empty());
    // The health check answers at once (no sleep), to GET and HEAD.
    let t0 = Instant::now();
    let r = c.get("/health").await.unwrap();
    assert!(t0.elapsed() < web_app_example::DELAY);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "ok");
    let r = c.request(Method::HEAD, "/health").send().await.unwrap();
    assert_eq!(r.status(), 200);
    c.close().await;
}

#[kettle::test]
async fn web_ids_handlers_in_process() {
    let c = TestClient::new(web_ids::app()).await.unwrap();
    let r = c.get("/").await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text(), "/");
    let r = c.get("/12301?name=1").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "12301");
    let r = c.get("/abc").await.unwrap();
    assert_eq!(r.text(), "abc");
    // `{id}` is one segment.
    let r = c.get("/1/2").await.unwrap();
    assert_eq!(r.status(), 404);
    // add_get answers HEAD.
    let r = c.request(Method::HEAD, "/12301").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-length"), Some("5"));
    c.close().await;
}
