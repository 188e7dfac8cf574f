//! `FileResponse` and `Router::add_static` through real sockets: validators, conditional
//! requests, ranges, content types, HEAD, and every way out of the static root a client might
//! try (which must end in 403/404, never in the file's content).

mod web_app_support;

use std::path::PathBuf;

use http::Method;
use kettle::web::{Application, FileResponse, Request, TestClient};
use web_app_support::{curl, raw, RawResponse, TempDir};

const HELLO: &str = "Hello, static world!\n";
const SECRET: &str = "TOP SECRET: the kettle is on";

/// `root/` is served at `/static`; `outside/secret.txt` sits next to it and must stay
/// unreachable, including through the symlinks planted inside the root.
struct Site {
    _tmp: TempDir,
    root: PathBuf,
    secret: PathBuf,
}

fn site() -> Site {
    let tmp = TempDir::new("static");
    let root = tmp.path().join("root");
    tmp.write("root/hello.txt", HELLO);
    tmp.write("root/style.css", "body { color: red }");
    tmp.write("root/index.html", "<h1>static</h1>");
    tmp.write("root/app.js", "console.log(1)");
    tmp.write("root/data.json", "{}");
    tmp.write("root/image.png", [0x89, b'P', b'N', b'G']);
    tmp.write("root/blob.unknownext", "??");
    tmp.write("root/empty.txt", "");
    tmp.write("root/sub/dir/deep.txt", "deep");
    tmp.write("root/with space.txt", "spaced");
    tmp.write("root/caf\u{e9}.txt", "accent");
    let secret = tmp.write("outside/secret.txt", SECRET);
    // A symlink inside the root to a file outside, and one to a directory outside.
    std::os::unix::fs::symlink(&secret, root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("linkdir")).unwrap();
    // A relative symlink climbing out.
    std::os::unix::fs::symlink("../outside/secret.txt", root.join("rel-link.txt")).unwrap();
    // A sibling whose name starts with the root's: outside, although "root-evil" starts
    // with "root" as a string.
    let evil = tmp.write("root-evil/secret.txt", SECRET);
    std::os::unix::fs::symlink(&evil, root.join("prefix-link.txt")).unwrap();
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink(root.join("hello.txt"), root.join("alias.txt")).unwrap();
    Site {
        _tmp: tmp,
        root,
        secret,
    }
}

async fn serve(site: &Site) -> TestClient {
    let mut app = Application::new();
    app.router()
        .add_static("/static", &site.root)
        .add_get("/report", |req: Request| async move {
            let path = req.query().get("path").unwrap_or("").to_string();
            FileResponse::new(&req, path)
        })
        .add_get("/typed", |req: Request| async move {
            let path = req.query().get("path").unwrap_or("").to_string();
            FileResponse::new(&req, path).with_content_type("application/x-custom")
        });
    TestClient::new(app).await.unwrap()
}

async fn raw_request(c: &TestClient, method: &str, path: &str, extra: &str) -> RawResponse {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    RawResponse::parse(&raw(c.addr(), req.as_bytes()).await)
}

#[kettle::test]
async fn serves_files_with_validators_and_content_types() {
    let s = site();
    let c = serve(&s).await;
    let r = raw_request(&c, "GET", "/static/hello.txt", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), HELLO);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(
        r.header("content-length"),
        Some(HELLO.len().to_string().as_str())
    );
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let lm = r.header("last-modified").unwrap();
    let mtime = std::fs::metadata(s.root.join("hello.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let sent = httpdate::parse_http_date(lm).unwrap();
    let diff = mtime.duration_since(sent).unwrap_or_else(|e| e.duration());
    assert!(diff.as_secs() < 1, "{lm}");

    for (path, ct) in [
        ("/static/style.css", "text/css"),
        ("/static/index.html", "text/html"),
        ("/static/app.js", "text/javascript"),
        ("/static/data.json", "application/json"),
        ("/static/image.png", "image/png"),
        ("/static/blob.unknownext", "application/octet-stream"),
        ("/static/sub/dir/deep.txt", "text/plain"),
        ("/static/alias.txt", "text/plain"),
    ] {
        let r = raw_request(&c, "GET", path, "").await;
        assert_eq!(r.status, 200, "{path}");
        let got = r.header("content-type").unwrap_or("");
        // mime tables differ on the JavaScript type; accept both registered names.
        if ct == "text/javascript" {
            assert!(got.ends_with("/javascript"), "{path}: {got}");
        } else {
            assert_eq!(got, ct, "{path}");
        }
    }
    // Percent-encoded names reach the file.
    let r = raw_request(&c, "GET", "/static/with%20space.txt", "").await;
    assert_eq!(r.body_text(), "spaced");
    let r = raw_request(&c, "GET", "/static/caf%C3%A9.txt", "").await;
    assert_eq!(r.body_text(), "accent");
    let r = raw_request(&c, "GET", "/static/empty.txt", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());

    // Keep-alive: several files on one connection.
    for _ in 0..3 {
        let r = c.get("/static/hello.txt").await.unwrap();
        assert_eq!(r.text(), HELLO);
    }
    c.close().await;
}

#[kettle::test]
async fn head_gets_the_headers_without_the_body() {
    let s = site();
    let c = serve(&s).await;
    let r = raw_request(&c, "HEAD", "/static/hello.txt", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(HELLO.len().to_string().as_str())
    );
    assert!(r.header("etag").is_some());
    assert!(r.body.is_empty());
    let r = c
        .request(Method::HEAD, "/static/hello.txt")
        .send()
        .await
        .unwrap();
    assert!(r.body().is_empty());
    // The connection is still in step after a HEAD of a file.
    assert_eq!(c.get("/static/hello.txt").await.unwrap().text(), HELLO);
    c.close().await;
}

#[kettle::test]
async fn conditional_requests_answer_304() {
    let s = site();
    let c = serve(&s).await;
    let first = c.get("/static/hello.txt").await.unwrap();
    let etag = first.header("etag").unwrap().to_string();
    let lm = first.header("last-modified").unwrap().to_string();

    let cond = |name: &'static str, value: String| {
        let c = &c;
        async move {
            c.request(Method::GET, "/static/hello.txt")
                .header(name, &value)
                .send()
                .await
                .unwrap()
        }
    };
    let r = cond("if-none-match", etag.clone()).await;
    assert_eq!(r.status(), 304);
    assert!(r.body().is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = cond("if-none-match", format!("\"other\", W/{etag}")).await;
    assert_eq!(r.status(), 304);
    let r = cond("if-none-match", "*".to_string()).await;
    assert_eq!(r.status(), 304);
    let r = cond("if-none-match", "\"other\"".to_string()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), HELLO);

    let r = cond("if-modified-since", lm.clone()).await;
    assert_eq!(r.status(), 304);
    let r = cond(
        "if-modified-since",
        "Thu, 01 Jan 2099 00:00:00 GMT".to_string(),
    )
    .await;
    assert_eq!(r.status(), 304);
    let r = cond(
        "if-modified-since",
        "Sat, 01 Jan 2000 00:00:00 GMT".to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = cond("if-modified-since", "not a date".to_string()).await;
    assert_eq!(r.status(), 200);

    // If-None-Match wins over If-Modified-Since.
    let r = c
        .request(Method::GET, "/static/hello.txt")
        .header("if-none-match", "\"other\"")
        .header("if-modified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // On the wire, a 304 has no body and no Content-Length.
    let r = raw_request(
        &c,
        "GET",
        "/static/hello.txt",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);

    // A rewritten file gets a new ETag.
    std::fs::write(
        s.root.join("hello.txt"),
        "changed, and longer than before\n",
    )
    .unwrap();
    let r = cond("if-none-match", etag.clone()).await;
    assert_eq!(r.status(), 200);
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    c.close().await;
}

#[kettle::test]
async fn ranges_answer_206_and_416() {
    let s = site();
    let c = serve(&s).await;
    let size = HELLO.len();
    let range = |value: &'static str| {
        let c = &c;
        async move {
            c.request(Method::GET, "/static/hello.txt")
                .header("range", value)
                .send()
                .await
                .unwrap()
        }
    };
    let r = range("bytes=0-4").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.text(), "Hello");
    assert_eq!(
        r.header("content-range").unwrap(),
        format!("bytes 0-4/{size}")
    );
    assert_eq!(r.header("content-length"), Some("5"));

    let r = range("bytes=7-").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.text(), &HELLO[7..]);
    assert_eq!(
        r.header("content-range").unwrap(),
        format!("bytes 7-{}/{size}", size - 1)
    );

    let r = range("bytes=-6").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.text(), &HELLO[size - 6..]);

    let r = range("bytes=5-1000").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.text(), &HELLO[5..]);

    for unsatisfiable in ["bytes=1000-", "bytes=1000-2000", "bytes=-0"] {
        let r = range(unsatisfiable).await;
        assert_eq!(r.status(), 416, "{unsatisfiable}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes */{size}"),
            "{unsatisfiable}"
        );
        assert!(r.body().is_empty());
    }
    // Malformed or multiple ranges: the whole file.
    for whole in ["bytes=4-1", "items=0-1", "bytes=a-b", "bytes=0-1,3-4"] {
        let r = range(whole).await;
        assert_eq!(r.status(), 200, "{whole}");
        assert_eq!(r.text(), HELLO, "{whole}");
    }

    // If-Range with the current validator gets the range; with a stale one, everything.
    let etag = c
        .get("/static/hello.txt")
        .await
        .unwrap()
        .header("etag")
        .unwrap()
        .to_string();
    let r = c
        .request(Method::GET, "/static/hello.txt")
        .header("range", "bytes=0-4")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    let r = c
        .request(Method::GET, "/static/hello.txt")
        .header("range", "bytes=0-4")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), HELLO);

    // HEAD with a range: the 206 head, no body.
    let r = raw_request(&c, "HEAD", "/static/hello.txt", "Range: bytes=0-4\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length"), Some("5"));
    assert!(r.body.is_empty());
    c.close().await;
}

#[kettle::test]
async fn directories_are_403_and_missing_files_404() {
    let s = site();
    let c = serve(&s).await;
    for path in [
        "/static/sub",
        "/static/sub/",
        "/static/sub/dir",
        "/static/",
        "/static/.",
    ] {
        let r = raw_request(&c, "GET", path, "").await;
        assert_eq!(r.status, 403, "{path}: {}", r.body_text());
    }
    for path in [
        "/static/missing.txt",
        "/static/sub/missing",
        "/static/hello.txt/x",
        "/static/%2e%2e%2e",
    ] {
        let r = raw_request(&c, "GET", path, "").await;
        assert_eq!(r.status, 404, "{path}: {}", r.body_text());
    }
    // `/static` itself (no slash) is not a route of the static resource.
    let r = raw_request(&c, "GET", "/static", "").await;
    assert_eq!(r.status, 404);
    // Static routes answer GET and HEAD only.
    let r = raw_request(&c, "POST", "/static/hello.txt", "Content-Length: 0\r\n").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    c.close().await;
}

#[kettle::test]
async fn nothing_outside_the_root_is_ever_served() {
    let s = site();
    let c = serve(&s).await;
    let attempts = [
        "/static/../outside/secret.txt",
        "/static/sub/../../outside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/%2E%2E/outside/secret.txt",
        "/static/.%2e/outside/secret.txt",
        "/static/..%2Foutside%2Fsecret.txt",
        "/static/..%2foutside%2fsecret.txt",
        "/static/%2e%2e%2Foutside%2Fsecret.txt",
        "/static/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/../../../../../../../../etc/passwd",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/%2F%2Fetc%2Fpasswd",
        "/static/..\\outside\\secret.txt",
        "/static/..%5Coutside%5Csecret.txt",
        "/static/hello.txt%00.png",
        "/static/%00",
        "/static/link.txt",
        "/static/rel-link.txt",
        "/static/linkdir/secret.txt",
        "/static/linkdir",
        "/static/sub/..%2F..%2Foutside/secret.txt",
        "/static/%252e%252e/outside/secret.txt",
        "/static/prefix-link.txt",
        "/static/../root-evil/secret.txt",
    ];
    for path in attempts {
        let r = raw_request(&c, "GET", path, "").await;
        assert!(
            [400, 403, 404].contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body_text()
        );
        let body = r.body_text();
        assert!(!body.contains("TOP SECRET"), "{path} leaked the secret");
        assert!(!body.contains("root:"), "{path} leaked /etc/passwd");
    }
    // The ones that clearly try to climb out are refused as forbidden.
    for path in [
        "/static/../outside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/..%2Foutside%2Fsecret.txt",
        "/static/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/link.txt",
        "/static/rel-link.txt",
        "/static/linkdir/secret.txt",
        "/static/prefix-link.txt",
    ] {
        let r = raw_request(&c, "GET", path, "").await;
        assert_eq!(r.status, 403, "{path}");
    }
    // Absolute paths are taken relative to the root.
    let r = raw_request(&c, "GET", &format!("/static/{}", s.secret.display()), "").await;
    assert_eq!(r.status, 404);
    // The secret file itself is fine; it is only its location that is off limits.
    assert_eq!(std::fs::read_to_string(&s.secret).unwrap(), SECRET);
    c.close().await;
}

#[kettle::test]
async fn curl_cannot_leave_the_root_either() {
    let s = site();
    let c = serve(&s).await;
    let base = format!("http://{}", c.addr());
    let Some(out) = curl(&["--version"]).await else {
        eprintln!("curl is not installed; skipping");
        c.close().await;
        return;
    };
    assert!(out.status.success());
    for path in [
        "/static/../outside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/..%2F..%2Fetc%2Fpasswd",
        "/static/link.txt",
    ] {
        let url = format!("{base}{path}");
        let out = curl(&["--path-as-is", "-w", "\n%{http_code}", &url])
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = text.rsplit('\n').next().unwrap_or("");
        assert!(["403", "404"].contains(&code), "{path}: {text}");
        assert!(!text.contains("TOP SECRET"), "{path}");
    }
    // And a normal fetch, with a range.
    let url = format!("{base}/static/hello.txt");
    let out = curl(&["-r", "0-4", "-w", "\n%{http_code}", &url])
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello\n206");
    c.close().await;
}

#[kettle::test]
async fn file_response_from_a_handler() {
    let s = site();
    let c = serve(&s).await;
    let hello = s.root.join("hello.txt");
    let q = |handler: &str, p: &std::path::Path| {
        let enc: String = p
            .display()
            .to_string()
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"/._-".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("/{handler}?path={enc}")
    };
    let r = c.get(&q("report", &hello)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), HELLO);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(r.header("etag").is_some());

    let r = c.get(&q("typed", &hello)).await.unwrap();
    assert_eq!(r.header("content-type"), Some("application/x-custom"));

    // Conditional and range headers apply to a handler's FileResponse too.
    let etag = r.header("etag").unwrap().to_string();
    let r = c
        .request(Method::GET, &q("report", &hello))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .request(Method::GET, &q("report", &hello))
        .header("range", "bytes=-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text(), "d!\n");

    let r = c.get(&q("report", &s.root.join("nope.txt"))).await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(&q("report", &s.root.join("sub"))).await.unwrap();
    assert_eq!(r.status(), 403);
    c.close().await;
}

#[kettle::test]
async fn a_large_file_arrives_whole() {
    let tmp = TempDir::new("static-large");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    tmp.write("big.bin", &data);
    let mut app = Application::new();
    app.router().add_static("/files/", tmp.path());
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/files/big.bin").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().len(), data.len());
    assert!(r.body().as_ref() == &data[..]);
    // A range in the middle of it.
    let r = c
        .request(Method::GET, "/files/big.bin")
        .header("range", "bytes=1000000-1000099")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.body().as_ref(), &data[1_000_000..1_000_100]);
    c.close().await;
}

/// Opening a FIFO for reading blocks until a writer appears, and the open runs on the loop's
/// thread: a named pipe in the static directory must be refused without being opened, or one
/// request would freeze every connection of the loop.
#[kettle::test]
async fn special_files_are_refused_without_blocking_the_loop() {
    let s = site();
    let fifo = s.root.join("pipe.txt");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let c = serve(&s).await;
    let t0 = std::time::Instant::now();
    let r = raw_request(&c, "GET", "/static/pipe.txt", "").await;
    assert_eq!(r.status, 403);
    // Through a handler's FileResponse too, and for a device.
    let r = c
        .get(&format!("/report?path={}", fifo.display()))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c.get("/report?path=/dev/zero").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    c.close().await;
}
