//! `kettle::web`'s framework layer through real sockets: routing, the request API, responses
//! and their `IntoResponse` forms, HTTP exceptions as values, middlewares and lifecycle hooks.
//! Every request here goes over TCP to an app served on 127.0.0.1 (`TestClient`), or as raw
//! bytes where the exact wire text matters.

mod web_app_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use http::{Method, StatusCode};
use kettle::web::multipart::{self, FormField};
use kettle::web::{
    self, json_response, AppRunner, Application, CookieOptions, HttpException, Json, Next, Request,
    Response, SameSite, TestClient,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use web_app_support::{raw, RawResponse};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// A handler that answers its method and the `name` path parameter.
async fn which(req: Request) -> Response {
    Response::text(format!(
        "{} {}",
        req.method(),
        req.match_info().get("name").unwrap_or("-")
    ))
}

async fn param(req: Request) -> Response {
    let all: Vec<String> = req
        .match_info()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Response::text(all.join("&"))
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn each_method_helper_routes_only_its_method() {
    let mut app = Application::new();
    app.router()
        .add_route("GET", "/route", which)
        .add_route("options", "/route", which)
        .add_get("/get", which)
        .add_post("/post", which)
        .add_put("/put", which)
        .add_patch("/patch", which)
        .add_delete("/delete", which)
        .add_route("*", "/any", which);
    let c = TestClient::new(app).await.unwrap();

    for (method, path) in [
        ("GET", "/route"),
        ("OPTIONS", "/route"),
        ("GET", "/get"),
        ("POST", "/post"),
        ("PUT", "/put"),
        ("PATCH", "/patch"),
        ("DELETE", "/delete"),
        ("GET", "/any"),
        ("DELETE", "/any"),
        ("PROPFIND", "/any"),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = c.request(m, path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{method} {path}");
        assert_eq!(r.text(), format!("{method} -"), "{method} {path}");
    }

    // Each helper refuses the others' methods with 405 and the one method it has.
    for (method, path, allow) in [
        ("POST", "/get", "GET, HEAD"),
        ("GET", "/post", "POST"),
        ("POST", "/put", "PUT"),
        ("PUT", "/patch", "PATCH"),
        ("GET", "/delete", "DELETE"),
        ("PUT", "/route", "GET, HEAD, OPTIONS"),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = c.request(m, path).send().await.unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    c.close().await;
}

#[kettle::test]
async fn add_get_also_answers_head_with_the_same_headers_and_no_body() {
    let mut app = Application::new();
    app.router().add_get("/page", |_r: Request| async {
        Response::html("<p>twelve b</p>").with_header(
            http::header::HeaderName::from_static("x-page"),
            HeaderValue::from_static("1"),
        )
    });
    let c = TestClient::new(app).await.unwrap();
    let get = c.get("/page").await.unwrap();
    let head = c.request(Method::HEAD, "/page").send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.body().is_empty());
    for name in ["content-length", "content-type", "x-page"] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert_eq!(get.header("content-length"), Some("15"));

    // And on the wire: nothing follows the head of the HEAD response.
    let bytes = raw(
        c.addr(),
        b"HEAD /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("15"));
    assert!(r.body.is_empty(), "{:?}", r.body_text());
    c.close().await;
}

#[kettle::test]
async fn every_get_route_answers_head_and_an_explicit_head_route_wins_in_any_order() {
    let mut app = Application::new();
    app.router()
        // RFC 9110 §9.1: HEAD wherever GET is, whichever way the GET route was added.
        .add_route("GET", "/route", |_r: Request| async { "twelve bytes" })
        .add_route_named("get", "/named/{id}", "named", |_r: Request| async {
            "named"
        })
        .add_get("/later", |_r: Request| async { "get" })
        // An explicit HEAD route added after its GET replaces the implicit one.
        .add_head("/later", |_r: Request| async {
            Response::new().with_header(
                http::header::HeaderName::from_static("x-head"),
                HeaderValue::from_static("own"),
            )
        });
    let c = TestClient::new(app).await.unwrap();
    let r = c.request(Method::HEAD, "/route").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-length"), Some("12"));
    assert!(r.body().is_empty());
    let r = c.request(Method::HEAD, "/named/7").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-length"), Some("5"));
    let r = c.request(Method::HEAD, "/later").send().await.unwrap();
    assert_eq!(r.header("x-head"), Some("own"));
    assert_eq!(c.get("/later").await.unwrap().text(), "get");
    // No body bytes on the wire for the implicit HEAD either.
    let bytes = raw(
        c.addr(),
        b"HEAD /route HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!((r.status, r.header("content-length")), (200, Some("12")));
    assert!(r.body.is_empty(), "{:?}", r.body_text());
    c.close().await;
}

#[kettle::test]
async fn explicit_head_route_added_before_add_get_wins() {
    let mut app = Application::new();
    app.router()
        .add_head("/x", |_r: Request| async {
            Response::new().with_header(
                http::header::HeaderName::from_static("x-head"),
                HeaderValue::from_static("own"),
            )
        })
        .add_get("/x", |_r: Request| async { "get" });
    let c = TestClient::new(app).await.unwrap();
    let r = c.request(Method::HEAD, "/x").send().await.unwrap();
    assert_eq!(r.header("x-head"), Some("own"));
    assert_eq!(c.get("/x").await.unwrap().text(), "get");
    c.close().await;
}

#[kettle::test]
async fn path_parameters_plain_regex_and_tail() {
    let mut app = Application::new();
    app.router()
        .add_get("/hello/{name}", param)
        .add_get(r"/users/{id:\d+}", param)
        .add_get(r"/users/{id:\d+}/posts/{slug}", param)
        .add_get("/files/{tail:.*}", param)
        .add_get("/img/{name}.{ext}", param);
    let c = TestClient::new(app).await.unwrap();

    let cases = [
        ("/hello/kettle", 200, "name=kettle"),
        // Parameters are percent-decoded; an encoded slash stays inside the value.
        ("/hello/a%20b", 200, "name=a b"),
        ("/hello/a%2Fb", 200, "name=a/b"),
        ("/hello/caf%C3%A9", 200, "name=café"),
        ("/hello/1+1", 200, "name=1+1"),
        ("/hello/50%25", 200, "name=50%"),
        ("/users/42", 200, "id=42"),
        ("/users/42/posts/first-post", 200, "id=42&slug=first-post"),
        ("/files/a/b/c.txt", 200, "tail=a/b/c.txt"),
        ("/files/", 200, "tail="),
        ("/files/x%2Fy%20z", 200, "tail=x/y z"),
        ("/img/logo.png", 200, "name=logo&ext=png"),
    ];
    for (path, status, body) in cases {
        let r = c.get(path).await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.text(), body, "{path}");
    }
    for path in [
        "/users/abc",
        "/users/",
        "/users/4x2",
        "/hello/",
        "/hello/a/b",
        // An escape that is not UTF-8 does not reach a handler.
        "/hello/%FF",
    ] {
        let r = c.get(path).await.unwrap();
        assert_eq!(r.status(), 404, "{path}: {}", r.text());
    }
    c.close().await;
}

#[kettle::test]
async fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let mut app = Application::new();
    app.router()
        .add_get("/items", which)
        .add_post("/items", which)
        .add_delete(r"/items/{id:\d+}", which)
        .add_put("/items/{name}", which);
    let c = TestClient::new(app).await.unwrap();

    let r = c.get("/nothing/here").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text(), "404: Not Found");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("allow"), None);

    let r = c.request(Method::PATCH, "/items").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    assert_eq!(r.text(), "405: Method PATCH is not allowed");

    // Two resources match /items/7: the Allow list has the methods of both.
    let r = c.get("/items/7").await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.header("allow"), Some("DELETE, PUT"));
    // ...and each answers its own method.
    let r = c.request(Method::DELETE, "/items/7").send().await.unwrap();
    assert_eq!(r.text(), "DELETE -");
    let r = c.request(Method::PUT, "/items/7").send().await.unwrap();
    assert_eq!(r.text(), "PUT 7");
    c.close().await;
}

#[kettle::test]
async fn named_routes_build_urls_from_router_app_and_request() {
    let mut app = Application::new();
    app.router()
        .add_route_named(
            "GET",
            r"/users/{id:\d+}",
            "user",
            |req: Request| async move {
                let me = req
                    .url_for("user", &[("id", req.match_info().get("id").unwrap())])
                    .unwrap();
                let other = req.url_for("file", &[("path", "a b/c.txt")]).unwrap();
                let name = req.match_info().route_name().unwrap_or("-").to_string();
                Response::text(format!("{name} {me} {other}"))
            },
        )
        .add_route_named("GET", "/files/{path:.*}", "file", param)
        .add_route_named("GET", "/tags/{tag}", "tag", param)
        .add_route_named("GET", "/about", "about", param);

    // The router answers before the app is served...
    assert_eq!(
        app.router().url_for("user", &[("id", "5")]).unwrap(),
        "/users/5"
    );
    assert_eq!(app.router().url_for("about", &[]).unwrap(), "/about");
    // A value that would break out of its segment is encoded.
    assert_eq!(
        app.router().url_for("tag", &[("tag", "a/b c?")]).unwrap(),
        "/tags/a%2Fb%20c%3F"
    );
    assert!(app.router().url_for("user", &[("id", "x")]).is_err());
    assert!(app.router().url_for("nobody", &[]).is_err());
    assert!(app.router().url_for("user", &[]).is_err());

    let c = TestClient::new(app).await.unwrap();
    // ...the running App...
    let a = c.runner().app();
    assert_eq!(a.url_for("user", &[("id", "9")]).unwrap(), "/users/9");
    assert_eq!(
        a.url_for("file", &[("path", "x/y z")]).unwrap(),
        "/files/x/y%20z"
    );
    assert!(a.url_for("nobody", &[]).is_err());

    // ...and the request; the URLs built lead back to their routes.
    let r = c.get("/users/12").await.unwrap();
    assert_eq!(r.text(), "user /users/12 /files/a%20b/c.txt");
    let r = c.get("/files/a%20b/c.txt").await.unwrap();
    assert_eq!(r.text(), "path=a b/c.txt");
    let r = c
        .get(&a.url_for("tag", &[("tag", "a/b c?")]).unwrap())
        .await
        .unwrap();
    assert_eq!(r.text(), "tag=a/b c?");
    c.close().await;
}

#[kettle::test]
async fn url_for_with_an_unknown_name_is_a_500_without_detail_inside_a_handler() {
    let mut app = Application::new();
    app.router().add_get("/", |req: Request| async move {
        let url = req.url_for("missing-route-name", &[])?;
        Ok::<_, web::Error>(Response::text(url))
    });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/").await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(!r.text().contains("missing-route-name"), "{}", r.text());
    c.close().await;
}

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// Everything a handler can learn about its request, as JSON.
async fn describe(req: Request) -> Response {
    let query: Vec<(String, String)> = req
        .query()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cookies: Vec<(String, String)> = req
        .cookies()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    json_response(&json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "raw_path": req.raw_path(),
        "version": format!("{:?}", req.version()),
        "x_custom": req.headers().get_all("x-custom").iter()
            .map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>(),
        "host": req.host(),
        "query": query,
        "a": req.query().get_all("a").collect::<Vec<_>>(),
        "query_string": req.query_string(),
        "match": req.match_info().iter().collect::<Vec<_>>(),
        "cookies": cookies,
        "remote": req.remote(),
        "peer_ip": req.peer_addr().map(|a| a.ip().to_string()),
        "content_length": req.content_length(),
        "content_type": req.content_type(),
        "charset": req.charset(),
        "keep_alive": req.keep_alive(),
    }))
}

#[kettle::test]
async fn request_head_path_query_cookies_and_peer() {
    let mut app = Application::new();
    app.router()
        .add_route("*", "/d/{name}", describe)
        .add_route("*", "/d", describe);
    let c = TestClient::new(app).await.unwrap();

    let r = c
        .request(Method::GET, "/d/a%20b%2Fc?a=1&b=x+y&a=2&a=%26&empty=&flag")
        .header("x-custom", "one")
        .header("x-custom", "two")
        .header("cookie", "session=abc; theme=\"dark mode\"")
        .header("cookie", "lang=en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: Value = r.json().unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/d/a b/c");
    assert_eq!(
        v["raw_path"],
        "/d/a%20b%2Fc?a=1&b=x+y&a=2&a=%26&empty=&flag"
    );
    assert_eq!(v["version"], "HTTP/1.1");
    assert_eq!(v["x_custom"], json!(["one", "two"]));
    assert_eq!(v["host"], c.addr().to_string());
    assert_eq!(
        v["query"],
        json!([
            ["a", "1"],
            ["b", "x y"],
            ["a", "2"],
            ["a", "&"],
            ["empty", ""],
            ["flag", ""]
        ])
    );
    assert_eq!(v["a"], json!(["1", "2", "&"]));
    assert_eq!(v["query_string"], "a=1&b=x+y&a=2&a=%26&empty=&flag");
    assert_eq!(v["match"], json!([["name", "a b/c"]]));
    assert_eq!(
        v["cookies"],
        json!([["session", "abc"], ["theme", "dark mode"], ["lang", "en"]])
    );
    assert_eq!(v["remote"], "127.0.0.1");
    assert_eq!(v["peer_ip"], "127.0.0.1");
    assert_eq!(v["keep_alive"], true);
    // No body, no Content-Type: aiohttp's default media type and no charset.
    assert_eq!(v["content_type"], "application/octet-stream");
    assert_eq!(v["charset"], Value::Null);

    // No query at all.
    let v: Value = c.get("/d").await.unwrap().json().unwrap();
    assert_eq!(v["query_string"], "");
    assert_eq!(v["query"], json!([]));
    assert_eq!(v["path"], "/d");
    assert_eq!(v["raw_path"], "/d");
    assert_eq!(v["cookies"], json!([]));
    // No Content-Length header: no declared length (aiohttp's None), not zero.
    assert_eq!(v["content_length"], Value::Null);
    // An explicit zero is a declared zero.
    let v: Value = c.post("/d", "").await.unwrap().json().unwrap();
    assert_eq!(v["content_length"], 0);

    // Body metadata.
    let v: Value = c
        .request(Method::POST, "/d")
        .header(
            "content-type",
            "Text/Plain; Charset=\"ISO-8859-1\"; format=flowed",
        )
        .body("12345")
        .send()
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["content_length"], 5);
    assert_eq!(v["content_type"], "text/plain");
    assert_eq!(v["charset"], "iso-8859-1");
    c.close().await;
}

/// Browsers send whatever scripts stored, UTF-8 included; one such cookie must not hide
/// the others (the session cookie next to it, say).
#[kettle::test]
async fn a_non_ascii_cookie_does_not_hide_the_others() {
    let mut app = Application::new();
    app.router().add_get("/d", describe);
    let c = TestClient::new(app).await.unwrap();
    let bytes = raw(
        c.addr(),
        "GET /d HTTP/1.1\r\nHost: x\r\nCookie: session=abc; name=caf\u{e9}; theme=dark\r\n\
         Connection: close\r\n\r\n"
            .as_bytes(),
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["cookies"],
        json!([["session", "abc"], ["name", "café"], ["theme", "dark"]])
    );
    // Bytes that are not UTF-8 at all do not hide the others either.
    let bytes = raw(
        c.addr(),
        b"GET /d HTTP/1.1\r\nHost: x\r\nCookie: session=abc; junk=\xff\xfe\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    let v: Value = serde_json::from_slice(&RawResponse::parse(&bytes).body).unwrap();
    assert_eq!(v["cookies"][0], json!(["session", "abc"]));
    c.close().await;
}

#[kettle::test]
async fn request_version_and_keep_alive_from_an_http_10_client() {
    let mut app = Application::new();
    app.router().add_get("/d", describe);
    let c = TestClient::new(app).await.unwrap();
    let bytes = raw(c.addr(), b"GET /d?x=1 HTTP/1.0\r\n\r\n").await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["version"], "HTTP/1.0");
    assert_eq!(v["keep_alive"], false);
    assert_eq!(v["host"], Value::Null);
    c.close().await;
}

#[kettle::test]
async fn content_length_is_none_for_a_chunked_body() {
    let mut app = Application::new();
    app.router().add_post("/d", |mut req: Request| async move {
        let len = req.content_length();
        let body = req.text().await?;
        Ok::<_, web::Error>(Response::text(format!("{len:?} {body}")))
    });
    let c = TestClient::new(app).await.unwrap();
    let bytes = raw(
        c.addr(),
        b"POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.body_text(), "None abcde");
    c.close().await;
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Order {
    item: String,
    qty: u32,
}

#[kettle::test]
async fn read_text_and_json_bodies() {
    let mut app = Application::new();
    app.router()
        .add_post("/read", |mut req: Request| async move {
            let first = req.read().await?;
            // Reading again gives the same bytes.
            let again = req.read().await?;
            assert_eq!(first, again);
            Ok::<_, web::Error>(Response::bytes(first))
        })
        .add_post("/text", |mut req: Request| async move {
            let t = req.text().await?;
            Ok::<_, web::Error>(Response::text(format!("[{t}]")))
        })
        .add_post("/json", |mut req: Request| async move {
            let mut order: Order = req.json().await?;
            order.qty *= 2;
            Ok::<_, web::Error>(Json(order))
        });
    let c = TestClient::new(app).await.unwrap();

    let binary: Vec<u8> = (0..=255u8).collect();
    let r = c.post("/read", binary.clone()).await.unwrap();
    assert_eq!(r.body().as_ref(), &binary[..]);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));

    // A body that does not arrive in one piece.
    let big = "x".repeat(300_000);
    let r = c.post("/read", big.clone()).await.unwrap();
    assert_eq!(r.body().len(), big.len());

    let r = c.post("/text", "héllo").await.unwrap();
    assert_eq!(r.text(), "[héllo]");
    let r = c.post("/text", "").await.unwrap();
    assert_eq!(r.text(), "[]");

    let r = c
        .request(Method::POST, "/json")
        .header("content-type", "application/json")
        .body(r#"{"item": "tea", "qty": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json::<Order>().unwrap(),
        Order {
            item: "tea".into(),
            qty: 4
        }
    );

    // Malformed JSON and the wrong shape are 400s that say what is wrong.
    for bad in [
        r#"{"item": "tea", "qty": }"#,
        r#"{"item": "tea"}"#,
        "",
        "[1,2]",
    ] {
        let r = c.post("/json", bad).await.unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
        assert!(r.text().contains("invalid JSON body"), "{}", r.text());
    }
    // The connection is still good after those.
    assert_eq!(c.post("/text", "ok").await.unwrap().text(), "[ok]");
    c.close().await;
}

#[kettle::test]
async fn text_decodes_with_the_declared_charset() {
    let mut app = Application::new();
    app.router()
        .add_post("/text", |mut req: Request| async move {
            let t = req.text().await?;
            Ok::<_, web::Error>(Response::text(t))
        });
    let c = TestClient::new(app).await.unwrap();
    // "café" in ISO-8859-1: é is the single byte 0xE9.
    let r = c
        .request(Method::POST, "/text")
        .header("content-type", "text/plain; charset=iso-8859-1")
        .body(&b"caf\xe9"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text(), "café");
    let r = c
        .request(Method::POST, "/text")
        .header("content-type", "text/plain; Charset=\"Latin-1\"")
        .body(&b"\xa3\xbd"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text(), "£½");
    // US-ASCII has no byte above 0x7F.
    let r = c
        .request(Method::POST, "/text")
        .header("content-type", "text/plain; charset=us-ascii")
        .body(&b"ab\xe9"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text(), "ab\u{FFFD}");
    // The default is UTF-8.
    let r = c
        .request(Method::POST, "/text")
        .header("content-type", "text/plain")
        .body("café")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text(), "café");
    c.close().await;
}

#[kettle::test]
async fn body_larger_than_client_max_size_is_413() {
    let mut app = Application::new();
    app.set_client_max_size(10);
    app.router()
        .add_post("/read", |mut req: Request| async move {
            let b = req.read().await?;
            Ok::<_, web::Error>(Response::bytes(b))
        });
    let c = TestClient::new(app).await.unwrap();
    assert_eq!(c.post("/read", "0123456789").await.unwrap().status(), 200);
    let r = c.post("/read", "0123456789A").await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.text(),
        "413: Maximum request body size 10 exceeded, actual body size 11"
    );

    // A chunked body has no declared size: it is refused once it grows past the limit.
    let bytes = raw(
        c.addr(),
        b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          6\r\n012345\r\n6\r\n6789AB\r\n0\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status, 413, "{}", r.body_text());
    assert!(
        r.body_text()
            .contains("Maximum request body size 10 exceeded"),
        "{}",
        r.body_text()
    );
    c.close().await;
}

#[kettle::test]
async fn post_reads_urlencoded_forms_with_repeated_keys() {
    let mut app = Application::new();
    app.router()
        .add_post("/form", |mut req: Request| async move {
            let form = req.post().await?;
            let fields: Vec<(String, String)> = form
                .fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Ok::<_, web::Error>(Json(json!({
                "fields": fields,
                "tags": form.fields.get_all("tag").collect::<Vec<_>>(),
                "name": form.get("name"),
                "files": form.files.len(),
            })))
        });
    let c = TestClient::new(app).await.unwrap();
    let r = c
        .request(Method::POST, "/form")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Lao+Zhang&tag=tea&tag=%E8%8C%B6&eq=a%3Db&flag")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(v["name"], "Lao Zhang");
    assert_eq!(v["tags"], json!(["tea", "茶"]));
    assert_eq!(
        v["fields"],
        json!([
            ["name", "Lao Zhang"],
            ["tag", "tea"],
            ["tag", "茶"],
            ["eq", "a=b"],
            ["flag", ""]
        ])
    );
    assert_eq!(v["files"], 0);

    // Parameters on the content type do not matter.
    let r = c
        .request(Method::POST, "/form")
        .header(
            "content-type",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        )
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["name"], "x");

    // Another content type gives an empty form, as in aiohttp.
    let r = c
        .request(Method::POST, "/form")
        .header("content-type", "application/json")
        .body("name=x")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["fields"], json!([]));
    c.close().await;
}

#[kettle::test]
async fn post_reads_multipart_forms_with_file_fields() {
    let mut app = Application::new();
    app.router()
        .add_post("/upload", |mut req: Request| async move {
            let form = req.post().await?;
            let files: Vec<Value> = form
                .files
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name,
                        "filename": f.filename,
                        "content_type": f.content_type,
                        "size": f.data.len(),
                        "data": String::from_utf8_lossy(&f.data),
                    })
                })
                .collect();
            let fields: Vec<(String, String)> = form
                .fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let avatar_len = form.file("avatar").map(|f| f.data.len());
            Ok::<_, web::Error>(Json(json!({
                "fields": fields,
                "files": files,
                "avatar_len": avatar_len,
            })))
        });
    let c = TestClient::new(app).await.unwrap();

    let png: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let fields = [
        FormField::text("title", "Tea & biscuits"),
        FormField::file("doc", "notes.txt", "text/plain", "line 1\r\nline 2\r\n"),
        FormField::text("tag", "a"),
        FormField::text("tag", "b"),
        FormField::file("avatar", "me.png", "image/png", png.clone()),
        FormField::file("empty", "", "application/octet-stream", Bytes::new()),
    ];
    let boundary = multipart::random_boundary();
    let body = multipart::encode(&fields, &boundary);
    let r = c
        .request(Method::POST, "/upload")
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(
        v["fields"],
        json!([["title", "Tea & biscuits"], ["tag", "a"], ["tag", "b"]])
    );
    assert_eq!(v["files"][0]["name"], "doc");
    assert_eq!(v["files"][0]["filename"], "notes.txt");
    assert_eq!(v["files"][0]["content_type"], "text/plain");
    assert_eq!(v["files"][0]["data"], "line 1\r\nline 2\r\n");
    assert_eq!(v["files"][1]["filename"], "me.png");
    assert_eq!(v["files"][1]["content_type"], "image/png");
    assert_eq!(v["files"][1]["size"], 2000);
    assert_eq!(v["files"][2]["filename"], "");
    assert_eq!(v["files"][2]["size"], 0);
    assert_eq!(v["avatar_len"], 2000);

    // A large file that arrives in many reads.
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let body = multipart::encode(
        &[
            FormField::file("blob", "big.bin", "application/octet-stream", big.clone()),
            FormField::text("after", "yes"),
        ],
        &boundary,
    );
    let r = c
        .request(Method::POST, "/upload")
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(v["files"][0]["size"], big.len());
    assert_eq!(v["fields"], json!([["after", "yes"]]));

    // The quoted boundary form parses too.
    let body = multipart::encode(&[FormField::text("k", "v")], "a b:c");
    let r = c
        .request(Method::POST, "/upload")
        .header("content-type", "multipart/form-data; boundary=\"a b:c\"")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["fields"], json!([["k", "v"]]));

    // A body cut short, or with a boundary that is not the declared one: 400, and the
    // connection is still usable.
    let body = multipart::encode(&fields, &boundary);
    let cut = body.slice(..body.len() - 30);
    for (ct, body) in [
        (format!("multipart/form-data; boundary={boundary}"), cut),
        (
            "multipart/form-data; boundary=other".to_string(),
            body.clone(),
        ),
        ("multipart/form-data".to_string(), body.clone()),
    ] {
        let r = c
            .request(Method::POST, "/upload")
            .header("content-type", &ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{ct}: {}", r.text());
        assert!(r.text().contains("bad multipart body"), "{}", r.text());
    }
    c.close().await;
}

#[kettle::test]
async fn streaming_body_arrives_chunk_by_chunk() {
    let mut app = Application::new();
    app.router()
        .add_post("/count", |mut req: Request| async move {
            let mut chunks = Vec::new();
            let mut data = Vec::new();
            while let Some(chunk) = req.content().read_chunk().await? {
                chunks.push(chunk.len());
                data.extend_from_slice(&chunk);
            }
            assert!(req.content().is_done());
            assert!(!req.can_read_body());
            Ok::<_, web::Error>(Json(json!({
                "chunks": chunks.len(),
                "total": data.len(),
                "data": String::from_utf8_lossy(&data),
            })))
        });
    let c = TestClient::new(app).await.unwrap();

    // A chunked body sent in three pieces with pauses: the handler sees it before it ends.
    let stream = kettle::net::TcpStream::connect(c.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
              Connection: close\r\n\r\n5\r\nhello\r\n",
        )
        .await
        .unwrap();
    kettle::sleep(Duration::from_millis(50)).await;
    stream.write_all(b"1\r\n \r\n").await.unwrap();
    kettle::sleep(Duration::from_millis(50)).await;
    stream.write_all(b"5\r\nworld\r\n0\r\n\r\n").await.unwrap();
    let r = RawResponse::parse(&web_app_support::read_to_end(&stream).await);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["data"], "hello world");
    assert_eq!(v["total"], 11);
    assert!(v["chunks"].as_u64().unwrap() >= 3, "{v}");

    // With Content-Length, and an empty body.
    let r = c.post("/count", "abcdef").await.unwrap();
    assert_eq!(r.json::<Value>().unwrap()["data"], "abcdef");
    let r = c.post("/count", "").await.unwrap();
    assert_eq!(r.json::<Value>().unwrap()["chunks"], 0);
    c.close().await;
}

fn limited_streaming_app() -> Application {
    let mut app = Application::new();
    app.set_client_max_size(1000);
    app.router()
        .add_post("/count", |mut req: Request| async move {
            let mut total = 0;
            while let Some(chunk) = req.content().read_chunk().await? {
                total += chunk.len();
            }
            Ok::<_, web::Error>(Response::text(total.to_string()))
        })
        .add_post("/read", |mut req: Request| async move {
            let b = req.read().await?;
            Ok::<_, web::Error>(Response::text(b.len().to_string()))
        });
    app
}

/// aiohttp's `client_max_size` bounds what `read`/`text`/`json`/`post` buffer; a handler that
/// streams `request.content` may take any size.
#[kettle::test]
async fn streaming_a_chunked_body_is_not_bounded_by_client_max_size() {
    let c = TestClient::new(limited_streaming_app()).await.unwrap();
    let mut wire = b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                     Connection: close\r\n\r\n"
        .to_vec();
    for _ in 0..50 {
        wire.extend_from_slice(b"3e8\r\n");
        wire.extend_from_slice(&[b'x'; 1000]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let r = RawResponse::parse(&raw(c.addr(), &wire).await);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.body_text(), "50000");
    // read() refuses the same body.
    let wire = String::from_utf8(wire).unwrap().replace("/count", "/read");
    let r = RawResponse::parse(&raw(c.addr(), wire.as_bytes()).await);
    assert_eq!(r.status, 413);
    c.close().await;
}

/// The same with a declared length: the issue asks for a declared body over
/// `client_max_size` to be refused with 413 before any of it is read, so even a streaming
/// handler never sees it (aiohttp would let `content` stream it; see NOTES.md).
#[kettle::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_handler() {
    let c = TestClient::new(limited_streaming_app()).await.unwrap();
    let r = c.post("/count", vec![b'x'; 50_000]).await.unwrap();
    assert_eq!(r.status(), 413, "{}", r.text());
    c.close().await;
}

#[kettle::test]
async fn a_handler_that_ignores_the_body_leaves_the_connection_usable() {
    let mut app = Application::new();
    app.router()
        .add_post("/ignore", |_req: Request| async { "ignored" })
        .add_get("/", |_req: Request| async { "root" });
    let c = TestClient::new(app).await.unwrap();
    let r = c.post("/ignore", "x".repeat(10_000)).await.unwrap();
    assert_eq!(r.text(), "ignored");
    assert_eq!(c.get("/").await.unwrap().text(), "root");
    c.close().await;
}

struct Hits(Cell<u32>);
struct Greeting(&'static str);

#[kettle::test]
async fn typed_app_state_is_shared_by_every_request() {
    let mut app = Application::new();
    app.set_state(Hits(Cell::new(0))).set_state(Greeting("hi"));
    app.router().add_get("/", |req: Request| async move {
        let hits = req.state::<Hits>().unwrap();
        hits.0.set(hits.0.get() + 1);
        let greeting = req.state::<Greeting>().unwrap().0;
        // A type never stored is simply absent.
        assert!(req.state::<String>().is_none());
        assert!(req.app().state::<Hits>().is_some());
        Response::text(format!("{greeting} #{}", hits.0.get()))
    });
    let c = TestClient::new(app).await.unwrap();
    assert_eq!(c.get("/").await.unwrap().text(), "hi #1");
    assert_eq!(c.get("/").await.unwrap().text(), "hi #2");
    assert_eq!(c.runner().app().state::<Hits>().unwrap().0.get(), 2);
    c.close().await;
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// GETs `path` with `Connection: close` and returns the raw response.
async fn raw_get(c: &TestClient, path: &str) -> RawResponse {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    RawResponse::parse(&raw(c.addr(), req.as_bytes()).await)
}

#[kettle::test]
async fn status_reason_headers_and_bodies_on_the_wire() {
    let mut app = Application::new();
    app.router()
        .add_get("/created", |_r: Request| async {
            Response::text("made").with_status(StatusCode::CREATED)
        })
        .add_get("/reason", |_r: Request| async {
            let mut r = Response::text("fine");
            r.set_status(StatusCode::ACCEPTED);
            r.set_reason("Queued For Later");
            r
        })
        .add_get("/evil-reason", |_r: Request| async {
            let mut r = Response::text("x");
            r.set_reason("Bad\r\nX-Injected: 1");
            r
        })
        .add_get("/headers", |_r: Request| async {
            let mut r = Response::text("h")
                .with_header(
                    http::header::HeaderName::from_static("x-one"),
                    HeaderValue::from_static("1"),
                )
                .with_header(
                    http::header::HeaderName::from_static("x-multi"),
                    HeaderValue::from_static("a"),
                )
                .with_header(
                    http::header::HeaderName::from_static("x-multi"),
                    HeaderValue::from_static("b"),
                );
            r.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-store"));
            // Framing headers set by hand are ignored: the server owns framing.
            r.headers_mut()
                .insert("content-length", HeaderValue::from_static("999"));
            r.headers_mut()
                .insert("transfer-encoding", HeaderValue::from_static("chunked"));
            r
        })
        .add_get("/bytes", |_r: Request| async {
            Response::bytes(&b"\x00\x01\x02"[..])
        })
        .add_get("/html", |_r: Request| async { Response::html("<b>x</b>") })
        .add_get("/csv", |_r: Request| async {
            Response::text("a,b\n").with_content_type("text/csv")
        })
        .add_get("/latin", |_r: Request| async {
            Response::text("x").with_charset("iso-8859-1")
        })
        .add_get("/no-charset", |_r: Request| async {
            let mut r = Response::text("x");
            r.set_charset(None::<&str>);
            r
        })
        .add_get("/empty", |_r: Request| async { Response::new() });
    let c = TestClient::new(app).await.unwrap();

    let r = raw_get(&c, "/created").await;
    assert_eq!(r.status_line, "HTTP/1.1 201 Created");
    assert_eq!(r.body_text(), "made");
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("date").is_some());

    let r = raw_get(&c, "/reason").await;
    assert_eq!(r.status_line, "HTTP/1.1 202 Queued For Later");

    let r = raw_get(&c, "/evil-reason").await;
    assert_eq!(r.status_line, "HTTP/1.1 200 Bad  X-Injected: 1");
    assert_eq!(r.header("x-injected"), None);

    let r = raw_get(&c, "/headers").await;
    assert_eq!(r.header("x-one"), Some("1"));
    assert_eq!(r.all("x-multi"), ["a", "b"]);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-length"), Some("1"));
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body_text(), "h");

    let r = raw_get(&c, "/bytes").await;
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, b"\x00\x01\x02");

    for (path, ct) in [
        ("/html", Some("text/html; charset=utf-8")),
        ("/csv", Some("text/csv; charset=utf-8")),
        ("/latin", Some("text/plain; charset=iso-8859-1")),
        ("/no-charset", Some("text/plain")),
        ("/empty", None),
    ] {
        let r = raw_get(&c, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), ct, "{path}");
    }
    let r = raw_get(&c, "/empty").await;
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
    c.close().await;
}

#[kettle::test]
async fn a_content_type_header_set_by_hand_is_sent_once() {
    let mut app = Application::new();
    app.router()
        .add_get("/xml", |_r: Request| async {
            Response::text("<a/>")
                .with_header(CONTENT_TYPE, HeaderValue::from_static("application/xml"))
        })
        .add_get("/exc", |_r: Request| async {
            web::HTTPBadRequest()
                .with_text("{\"error\": 1}")
                .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        })
        .add_get("/stream", |req: Request| async move {
            let mut s = web::StreamResponse::new();
            s.set_content_type("text/plain");
            s.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            s.prepare(&req).await?;
            s.write("data: 1\n\n").await?;
            s.write_eof().await?;
            Ok::<_, web::Error>(s)
        });
    let c = TestClient::new(app).await.unwrap();
    let r = raw_get(&c, "/xml").await;
    assert_eq!(r.header("content-type"), Some("application/xml"));
    let r = raw_get(&c, "/exc").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = raw_get(&c, "/stream").await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    c.close().await;
}

#[kettle::test]
async fn a_charset_inside_the_content_type_is_sent_once() {
    let mut app = Application::new();
    app.router()
        .add_get("/text", |_r: Request| async {
            let r = Response::text("{}").with_content_type("application/json; charset=latin-1");
            assert_eq!(r.charset(), Some("latin-1"));
            r
        })
        .add_get("/bytes", |_r: Request| async {
            let r = Response::bytes("x")
                .with_content_type("text/plain; Charset=\"UTF-8\"; format=flowed");
            assert_eq!(r.charset(), Some("UTF-8"));
            r
        })
        .add_get("/stream", |req: Request| async move {
            let mut s = web::StreamResponse::new();
            s.set_charset("utf-8");
            s.set_content_type("text/csv; charset=iso-8859-1");
            s.prepare(&req).await?;
            s.write_eof().await?;
            Ok::<_, web::Error>(s)
        });
    let c = TestClient::new(app).await.unwrap();
    let r = raw_get(&c, "/text").await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=latin-1")
    );
    let r = raw_get(&c, "/bytes").await;
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; format=flowed; charset=UTF-8")
    );
    let r = raw_get(&c, "/stream").await;
    assert_eq!(
        r.header("content-type"),
        Some("text/csv; charset=iso-8859-1")
    );
    c.close().await;
}

#[derive(Serialize)]
struct User {
    id: u32,
    name: &'static str,
}

#[kettle::test]
async fn json_response_and_json_wrapper() {
    let mut app = Application::new();
    app.router()
        .add_get("/fn", |_r: Request| async {
            json_response(&json!({"ok": true, "list": [1, 2, 3], "text": "ü \"q\""}))
        })
        .add_get("/wrap", |_r: Request| async {
            Json(User {
                id: 7,
                name: "kettle",
            })
        })
        .add_get("/created", |_r: Request| async {
            (StatusCode::CREATED, Json(vec!["a", "b"]))
        })
        .add_get("/unserializable", |_r: Request| async {
            // A map with non-string keys has no JSON form.
            let mut m = std::collections::HashMap::new();
            m.insert((1, 2), "secret value");
            json_response(&m)
        });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/fn").await.unwrap();
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"ok": true, "list": [1, 2, 3], "text": "ü \"q\""})
    );
    let r = c.get("/wrap").await.unwrap();
    assert_eq!(r.text(), r#"{"id":7,"name":"kettle"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = c.get("/created").await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text(), r#"["a","b"]"#);
    let r = c.get("/unserializable").await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(!r.text().contains("secret"));
    c.close().await;
}

#[kettle::test]
async fn set_cookie_with_every_option_and_del_cookie() {
    let mut app = Application::new();
    app.router().add_get("/", |_r: Request| async {
        let mut r = Response::text("cookies");
        r.set_cookie("plain", "1", &CookieOptions::default())
            .unwrap();
        r.set_cookie(
            "full",
            "abc123",
            &CookieOptions::new()
                .max_age(3600)
                .expires(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
                .path("/app")
                .domain("example.com")
                .secure(true)
                .httponly(true)
                .samesite(SameSite::Strict),
        )
        .unwrap();
        r.set_cookie(
            "lax",
            "hello world",
            &CookieOptions::new().samesite(SameSite::Lax),
        )
        .unwrap();
        r.set_cookie(
            "none",
            "x",
            &CookieOptions::new().samesite(SameSite::None).secure(true),
        )
        .unwrap();
        let mut no_path = CookieOptions::new();
        no_path.path = None;
        r.set_cookie("nopath", "", &no_path).unwrap();
        r.del_cookie("session", None, None).unwrap();
        r.del_cookie("scoped", Some("/app"), Some("example.com"))
            .unwrap();
        // Injection attempts are refused, not sent.
        assert!(r
            .set_cookie("x", "1\r\nSet-Cookie: admin=1", &CookieOptions::new())
            .is_err());
        assert!(r.set_cookie("a;b", "1", &CookieOptions::new()).is_err());
        assert!(r
            .set_cookie("x", "1", &CookieOptions::new().path("/; Domain=evil"))
            .is_err());
        r
    });
    let c = TestClient::new(app).await.unwrap();
    let r = raw_get(&c, "/").await;
    assert_eq!(
        r.all("set-cookie"),
        [
            "plain=1; Path=/",
            "full=abc123; Domain=example.com; expires=Tue, 14 Nov 2023 22:13:20 GMT; \
             HttpOnly; Max-Age=3600; Path=/app; SameSite=Strict; Secure",
            "lax=\"hello world\"; Path=/; SameSite=Lax",
            "none=x; Path=/; SameSite=None; Secure",
            "nopath=",
            "session=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
            "scoped=; Domain=example.com; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; \
             Path=/app",
        ]
    );
    c.close().await;
}

#[kettle::test]
async fn cookies_round_trip_through_a_client() {
    let mut app = Application::new();
    app.router()
        .add_get("/set", |_r: Request| async {
            let mut r = Response::text("set");
            r.set_cookie("theme", "dark mode", &CookieOptions::new())
                .unwrap();
            r
        })
        .add_get("/get", |req: Request| async move {
            Response::text(req.cookies().get("theme").unwrap_or("-").to_string())
        });
    let c = TestClient::new(app).await.unwrap();
    let set = c.get("/set").await.unwrap();
    let cookie = set.header("set-cookie").unwrap();
    let pair = cookie.split(';').next().unwrap();
    let r = c
        .request(Method::GET, "/get")
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text(), "dark mode");
    c.close().await;
}

#[kettle::test]
async fn every_into_response_form() {
    let mut app = Application::new();
    app.router()
        .add_get("/str", |_r: Request| async { "static str" })
        .add_get("/string", |_r: Request| async { String::from("owned") })
        .add_get("/bytes", |_r: Request| async {
            Bytes::from_static(b"\xffbytes")
        })
        .add_get("/vec", |_r: Request| async { vec![1u8, 2, 3] })
        .add_get("/status", |_r: Request| async { StatusCode::NO_CONTENT })
        .add_get("/status-only", |_r: Request| async {
            StatusCode::IM_A_TEAPOT
        })
        .add_get("/tuple", |_r: Request| async {
            (StatusCode::ACCEPTED, "accepted")
        })
        .add_get("/tuple-resp", |_r: Request| async {
            (StatusCode::CREATED, Response::html("<i>new</i>"))
        })
        .add_get("/exception", |_r: Request| async { web::HTTPGone() })
        .add_get("/error", |_r: Request| async {
            web::Error::from(web::HTTPConflict().with_text("busy"))
        })
        .add_get("/ok", |_r: Request| async { Ok::<_, web::Error>("fine") })
        .add_get("/ok-tuple", |_r: Request| async {
            Ok::<_, HttpException>((StatusCode::CREATED, "made"))
        })
        .add_get("/err-http", |_r: Request| async {
            Err::<Response, _>(web::HTTPPaymentRequired())
        })
        .add_get("/err-io", |_r: Request| async {
            Err::<Response, _>(std::io::Error::other("db password is hunter2"))
        })
        .add_get("/err-parse", |req: Request| async move {
            let n: u32 = req.query().get("n").unwrap_or("x").parse()?;
            Ok::<_, web::Error>(format!("n={n}"))
        });
    let c = TestClient::new(app).await.unwrap();

    let check = |path: &'static str, status: u16, ct: Option<&'static str>, body: &'static [u8]| {
        (path, status, ct, body)
    };
    let cases = [
        check(
            "/str",
            200,
            Some("text/plain; charset=utf-8"),
            b"static str",
        ),
        check("/string", 200, Some("text/plain; charset=utf-8"), b"owned"),
        check(
            "/bytes",
            200,
            Some("application/octet-stream"),
            b"\xffbytes",
        ),
        check(
            "/vec",
            200,
            Some("application/octet-stream"),
            b"\x01\x02\x03",
        ),
        check("/status", 204, None, b""),
        check("/status-only", 418, None, b""),
        check(
            "/tuple",
            202,
            Some("text/plain; charset=utf-8"),
            b"accepted",
        ),
        check(
            "/tuple-resp",
            201,
            Some("text/html; charset=utf-8"),
            b"<i>new</i>",
        ),
        check(
            "/exception",
            410,
            Some("text/plain; charset=utf-8"),
            b"410: Gone",
        ),
        check("/error", 409, Some("text/plain; charset=utf-8"), b"busy"),
        check("/ok", 200, Some("text/plain; charset=utf-8"), b"fine"),
        check("/ok-tuple", 201, Some("text/plain; charset=utf-8"), b"made"),
        check(
            "/err-http",
            402,
            Some("text/plain; charset=utf-8"),
            b"402: Payment Required",
        ),
        check(
            "/err-io",
            500,
            Some("text/plain; charset=utf-8"),
            b"500 Internal Server Error\n\nServer got itself in trouble",
        ),
        check(
            "/err-parse?n=x",
            500,
            Some("text/plain; charset=utf-8"),
            b"500 Internal Server Error\n\nServer got itself in trouble",
        ),
        check(
            "/err-parse?n=5",
            200,
            Some("text/plain; charset=utf-8"),
            b"n=5",
        ),
    ];
    for (path, status, ct, body) in cases {
        let r = raw_get(&c, path).await;
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.header("content-type"), ct, "{path}");
        assert_eq!(r.body, body, "{path}: {:?}", r.body_text());
    }
    // 204 carries no Content-Length and no body at all.
    let r = raw_get(&c, "/status").await;
    assert_eq!(r.header("content-length"), None);
    c.close().await;
}

#[kettle::test]
async fn a_panicking_handler_is_a_500_without_detail_and_others_go_on() {
    let mut app = Application::new();
    app.router()
        .add_get("/panic", |_r: Request| async {
            if true {
                panic!("secret panic detail");
            }
            "unreachable"
        })
        .add_get("/", |_r: Request| async { "alive" });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/panic").await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(!r.text().contains("secret"), "{}", r.text());
    assert_eq!(c.get("/").await.unwrap().text(), "alive");
    c.close().await;
}

// ---------------------------------------------------------------------------------------------
// HTTP exceptions as values
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn http_exceptions_returned_from_handlers() {
    let mut app = Application::new();
    app.router()
        .add_get("/found", |_r: Request| async {
            Err::<Response, _>(web::HTTPFound("/login?next=%2F"))
        })
        .add_post("/see-other", |_r: Request| async {
            let r: Result<Response, web::Error> = Err(web::HTTPSeeOther("/done").into());
            r
        })
        .add_get("/moved", |_r: Request| async {
            web::HTTPMovedPermanently("https://example.com/new")
        })
        .add_get("/temp", |_r: Request| async {
            web::HTTPTemporaryRedirect("/elsewhere")
        })
        .add_get("/bad", |req: Request| async move {
            let id: u32 = req
                .query()
                .get("id")
                .unwrap_or("")
                .parse()
                .map_err(|_| web::HTTPBadRequest().with_text("id must be a number"))?;
            Ok::<_, web::Error>(format!("id {id}"))
        })
        .add_get("/forbidden", |_r: Request| async {
            Err::<Response, _>(web::HTTPForbidden())
        })
        .add_get("/notfound", |_r: Request| async {
            Err::<Response, _>(web::HTTPNotFound().with_text("no such user"))
        })
        .add_get("/method", |_r: Request| async {
            web::HTTPMethodNotAllowed(&Method::GET, &[Method::POST, Method::PUT])
        })
        .add_get("/too-large", |_r: Request| async {
            web::HTTPRequestEntityTooLarge(100, Some(250))
        })
        .add_get("/too-large-unknown", |_r: Request| async {
            web::HTTPRequestEntityTooLarge(100, None)
        })
        .add_get("/teapot", |_r: Request| async {
            HttpException::new(StatusCode::IM_A_TEAPOT)
                .with_reason("Short And Stout")
                .with_text("tip me over")
        })
        .add_get("/unavailable", |_r: Request| async {
            web::HTTPServiceUnavailable()
                .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("120"))
        })
        .add_get("/not-modified", |_r: Request| async {
            web::HTTPNotModified()
        })
        .add_get("/bad-location", |_r: Request| async {
            web::HTTPFound("/a\r\nX-Injected: 1")
        })
        .add_get("/unicode-location", |_r: Request| async {
            web::HTTPFound("/caf\u{e9}?q=\u{2615} x&already=%20")
        });
    let c = TestClient::new(app).await.unwrap();

    let r = raw_get(&c, "/found").await;
    assert_eq!(r.status_line, "HTTP/1.1 302 Found");
    assert_eq!(r.header("location"), Some("/login?next=%2F"));
    assert_eq!(r.body_text(), "302: Found");

    let bytes = raw(
        c.addr(),
        b"POST /see-other HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let r = RawResponse::parse(&bytes);
    assert_eq!(r.status_line, "HTTP/1.1 303 See Other");
    assert_eq!(r.header("location"), Some("/done"));

    let r = raw_get(&c, "/moved").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://example.com/new"));
    let r = raw_get(&c, "/temp").await;
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/elsewhere"));

    let r = raw_get(&c, "/bad?id=x").await;
    assert_eq!(r.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(r.body_text(), "id must be a number");
    let r = raw_get(&c, "/bad?id=3").await;
    assert_eq!(r.body_text(), "id 3");

    let r = raw_get(&c, "/forbidden").await;
    assert_eq!(r.status_line, "HTTP/1.1 403 Forbidden");
    assert_eq!(r.body_text(), "403: Forbidden");

    let r = raw_get(&c, "/notfound").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body_text(), "no such user");

    let r = raw_get(&c, "/method").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, PUT"));
    assert_eq!(r.body_text(), "405: Method GET is not allowed");

    let r = raw_get(&c, "/too-large").await;
    assert_eq!(r.status_line, "HTTP/1.1 413 Payload Too Large");
    assert_eq!(
        r.body_text(),
        "Maximum request body size 100 exceeded, actual body size 250"
    );
    let r = raw_get(&c, "/too-large-unknown").await;
    assert_eq!(r.body_text(), "Maximum request body size 100 exceeded");

    let r = raw_get(&c, "/teapot").await;
    assert_eq!(r.status_line, "HTTP/1.1 418 Short And Stout");
    assert_eq!(r.body_text(), "tip me over");

    let r = raw_get(&c, "/unavailable").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("120"));
    assert_eq!(r.body_text(), "503: Service Unavailable");

    let r = raw_get(&c, "/not-modified").await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);

    // A location that is not a plain-ASCII URI is percent-encoded as aiohttp (yarl) does:
    // line breaks cannot split the head, and the redirect still goes where it was meant to.
    let r = raw_get(&c, "/bad-location").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/a%0D%0AX-Injected:%201"));
    assert_eq!(r.header("x-injected"), None);
    let r = raw_get(&c, "/unicode-location").await;
    assert_eq!(
        r.header("location"),
        Some("/caf%C3%A9?q=%E2%98%95%20x&already=%20")
    );

    // As values, before any socket.
    let e = web::HTTPSeeOther("/x");
    assert_eq!(e.status(), StatusCode::SEE_OTHER);
    assert_eq!(e.headers()[LOCATION], "/x");
    assert_eq!(e.to_string(), "303: See Other");
    let err = web::Error::from(web::HTTPForbidden());
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    assert!(err.as_http().is_some());
    let err = web::Error::from(std::io::Error::other("x"));
    assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(err.as_http().is_none());
    c.close().await;
}

// ---------------------------------------------------------------------------------------------
// Middlewares
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn middlewares_run_outermost_first_and_see_the_response_last() {
    let order = log();
    let mut app = Application::new();
    for name in ["outer", "middle", "inner"] {
        let order = order.clone();
        app.add_middleware(move |req: Request, next: Next| {
            let order = order.clone();
            async move {
                order.borrow_mut().push(format!("{name} in"));
                let mut resp = next.run(req).await;
                order.borrow_mut().push(format!("{name} out"));
                // Each appends its name: the outermost writes last.
                let seen = resp
                    .headers()
                    .get("x-trail")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                resp.headers_mut().insert(
                    "x-trail",
                    HeaderValue::from_str(&format!("{seen}{name};")).unwrap(),
                );
                resp
            }
        });
    }
    let order2 = order.clone();
    app.router().add_get("/", move |_r: Request| {
        let order = order2.clone();
        async move {
            order.borrow_mut().push("handler".to_string());
            "body"
        }
    });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/").await.unwrap();
    assert_eq!(r.text(), "body");
    assert_eq!(r.header("x-trail"), Some("inner;middle;outer;"));
    assert_eq!(
        *order.borrow(),
        [
            "outer in",
            "middle in",
            "inner in",
            "handler",
            "inner out",
            "middle out",
            "outer out"
        ]
    );
    c.close().await;
}

#[kettle::test]
async fn a_middleware_can_short_circuit_and_the_handler_never_runs() {
    let calls = Rc::new(Cell::new(0));
    let mut app = Application::new();
    app.add_middleware(|req: Request, next: Next| async move {
        if req.headers().get("authorization").is_none() {
            return Err(web::HTTPUnauthorized()
                .with_header(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                )
                .into());
        }
        Ok::<_, web::Error>(next.run(req).await)
    });
    let calls2 = calls.clone();
    app.router().add_get("/secret", move |_r: Request| {
        let calls = calls2.clone();
        async move {
            calls.set(calls.get() + 1);
            "the secret"
        }
    });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/secret").await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(calls.get(), 0);
    let r = c
        .request(Method::GET, "/secret")
        .header("authorization", "Bearer t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text(), "the secret");
    assert_eq!(calls.get(), 1);
    c.close().await;
}

#[kettle::test]
async fn a_middleware_can_change_the_request_view_and_the_response() {
    let mut app = Application::new();
    // Reads the body before the handler does: the handler still gets it.
    app.add_middleware(|mut req: Request, next: Next| async move {
        let len = if req.method() == Method::POST {
            req.read().await?.len()
        } else {
            0
        };
        let mut resp = next.run(req).await;
        resp.set_status(StatusCode::ACCEPTED);
        resp.headers_mut().insert(
            "x-body-len",
            HeaderValue::from_str(&len.to_string()).unwrap(),
        );
        let body = format!("[{}]", String::from_utf8_lossy(resp.body()));
        resp.set_body(body);
        Ok::<_, web::Error>(resp)
    });
    app.router()
        .add_post("/echo", |mut req: Request| async move {
            let b = req.text().await?;
            Ok::<_, web::Error>(Response::text(b))
        });
    let c = TestClient::new(app).await.unwrap();
    let r = c.post("/echo", "hello").await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.header("x-body-len"), Some("5"));
    assert_eq!(r.text(), "[hello]");
    assert_eq!(r.header("content-length"), Some("7"));
    c.close().await;
}

#[kettle::test]
async fn middlewares_see_404_and_405_too() {
    let seen = log();
    let mut app = Application::new();
    let seen2 = seen.clone();
    app.add_middleware(move |req: Request, next: Next| {
        let seen = seen2.clone();
        async move {
            let path = req.path().to_string();
            let mut resp = next.run(req).await;
            seen.borrow_mut()
                .push(format!("{path} {}", resp.status().as_u16()));
            if resp.status() == StatusCode::NOT_FOUND {
                resp = Response::html("<h1>Custom 404</h1>").with_status(StatusCode::NOT_FOUND);
            }
            resp
        }
    });
    app.router().add_get("/", |_r: Request| async { "home" });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/missing").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text(), "<h1>Custom 404</h1>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = c.post("/", "").await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    c.get("/").await.unwrap();
    assert_eq!(*seen.borrow(), ["/missing 404", "/ 405", "/ 200"]);
    c.close().await;
}

#[kettle::test]
async fn a_middleware_sees_the_matched_route_and_can_build_urls() {
    let mut app = Application::new();
    app.add_middleware(|req: Request, next: Next| async move {
        let route = req.match_info().route_name().unwrap_or("-").to_string();
        let id = req.match_info().get("id").unwrap_or("-").to_string();
        let home = req.url_for("home", &[]).unwrap();
        let mut resp = next.run(req).await;
        resp.headers_mut().insert(
            "x-route",
            HeaderValue::from_str(&format!("{route} {id} {home}")).unwrap(),
        );
        resp
    });
    app.router()
        .add_route_named("GET", "/", "home", |_r: Request| async { "home" })
        .add_route_named("GET", r"/items/{id:\d+}", "item", |_r: Request| async {
            "item"
        });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/items/5").await.unwrap();
    assert_eq!(r.header("x-route"), Some("item 5 /"));
    let r = c.get("/").await.unwrap();
    assert_eq!(r.header("x-route"), Some("home - /"));
    let r = c.get("/nope").await.unwrap();
    assert_eq!(r.header("x-route"), Some("- - /"));
    c.close().await;
}

#[kettle::test]
async fn a_middleware_sees_handler_errors_as_responses() {
    let mut app = Application::new();
    app.add_middleware(|req: Request, next: Next| async move {
        let mut resp = next.run(req).await;
        if resp.status().is_server_error() {
            resp.headers_mut()
                .insert("x-alert", HeaderValue::from_static("1"));
        }
        resp
    });
    app.router().add_get("/", |_r: Request| async {
        Err::<Response, _>(std::io::Error::other("disk on fire"))
    });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/").await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.header("x-alert"), Some("1"));
    assert!(!r.text().contains("disk"));
    c.close().await;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle hooks
// ---------------------------------------------------------------------------------------------

struct Db(&'static str);

#[kettle::test]
async fn hooks_run_in_order_and_startup_can_set_state() {
    let events = log();
    let mut app = Application::new();
    for n in 1..=2 {
        let e = events.clone();
        app.on_startup(move |app: web::App| {
            let e = e.clone();
            async move {
                e.borrow_mut().push(format!("startup {n}"));
                if n == 1 {
                    app.set_state(Db("connected"));
                }
                Ok(())
            }
        });
        let e = events.clone();
        app.on_shutdown(move |_app: web::App| {
            let e = e.clone();
            async move {
                e.borrow_mut().push(format!("shutdown {n}"));
                Ok(())
            }
        });
        let e = events.clone();
        app.on_cleanup(move |app: web::App| {
            let e = e.clone();
            async move {
                // Cleanup still sees the state startup made.
                let db = app.state::<Db>().map(|d| d.0).unwrap_or("none");
                e.borrow_mut().push(format!("cleanup {n} {db}"));
                Ok(())
            }
        });
    }
    let e = events.clone();
    app.router().add_get("/", move |req: Request| {
        let e = e.clone();
        async move {
            e.borrow_mut().push("request".to_string());
            Response::text(req.state::<Db>().unwrap().0)
        }
    });
    let c = TestClient::new(app).await.unwrap();
    assert_eq!(*events.borrow(), ["startup 1", "startup 2"]);
    assert_eq!(c.get("/").await.unwrap().text(), "connected");
    c.close().await;
    assert_eq!(
        *events.borrow(),
        [
            "startup 1",
            "startup 2",
            "request",
            "shutdown 1",
            "shutdown 2",
            "cleanup 1 connected",
            "cleanup 2 connected"
        ]
    );
}

#[kettle::test]
async fn a_failing_startup_hook_aborts_the_start() {
    let events = log();
    let mut app = Application::new();
    let e = events.clone();
    app.on_startup(move |_app: web::App| {
        let e = e.clone();
        async move {
            e.borrow_mut().push("first".to_string());
            Err(std::io::Error::other("cannot reach the database").into())
        }
    });
    let e = events.clone();
    app.on_startup(move |_app: web::App| {
        let e = e.clone();
        async move {
            e.borrow_mut().push("second".to_string());
            Ok(())
        }
    });
    app.router().add_get("/", |_r: Request| async { "never" });
    let err = AppRunner::start(app, "127.0.0.1", 0).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot reach the database"),
        "{err}"
    );
    assert_eq!(*events.borrow(), ["first"]);
}

#[kettle::test]
async fn a_failing_shutdown_or_cleanup_hook_does_not_skip_the_others() {
    let events = log();
    let mut app = Application::new();
    for n in 1..=2 {
        let e = events.clone();
        app.on_shutdown(move |_app: web::App| {
            let e = e.clone();
            async move {
                e.borrow_mut().push(format!("shutdown {n}"));
                if n == 1 {
                    return Err(std::io::Error::other("shutdown failed").into());
                }
                Ok(())
            }
        });
        let e = events.clone();
        app.on_cleanup(move |_app: web::App| {
            let e = e.clone();
            async move {
                e.borrow_mut().push(format!("cleanup {n}"));
                if n == 1 {
                    return Err(web::HTTPInternalServerError().into());
                }
                Ok(())
            }
        });
    }
    let runner = AppRunner::start(app, "127.0.0.1", 0).await.unwrap();
    runner.shutdown().await;
    assert_eq!(
        *events.borrow(),
        ["shutdown 1", "shutdown 2", "cleanup 1", "cleanup 2"]
    );
}

#[kettle::test]
async fn on_shutdown_runs_while_a_request_is_in_flight_and_cleanup_after_it() {
    let events = log();
    let mut app = Application::new();
    let e = events.clone();
    app.on_shutdown(move |_app: web::App| {
        let e = e.clone();
        async move {
            e.borrow_mut().push("shutdown".to_string());
            Ok(())
        }
    });
    let e = events.clone();
    app.on_cleanup(move |_app: web::App| {
        let e = e.clone();
        async move {
            e.borrow_mut().push("cleanup".to_string());
            Ok(())
        }
    });
    let e = events.clone();
    app.router().add_get("/slow", move |_r: Request| {
        let e = e.clone();
        async move {
            e.borrow_mut().push("request start".to_string());
            kettle::sleep(Duration::from_millis(200)).await;
            e.borrow_mut().push("request end".to_string());
            "slow"
        }
    });
    let runner = AppRunner::start(app, "127.0.0.1", 0).await.unwrap();
    let addr = runner.addrs()[0];
    let client =
        kettle::spawn(async move { raw(addr, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await });
    kettle::sleep(Duration::from_millis(50)).await;
    runner.shutdown().await;
    let r = RawResponse::parse(&client.await.unwrap());
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), "slow");
    // The response to a request that was in flight at shutdown closes its connection.
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        *events.borrow(),
        ["request start", "shutdown", "request end", "cleanup"]
    );
}

#[kettle::test]
async fn handlers_run_concurrently() {
    let mut app = Application::new();
    app.router().add_get("/sleep", |_r: Request| async {
        kettle::sleep(Duration::from_millis(300)).await;
        "done"
    });
    let c = TestClient::new(app).await.unwrap();
    let addr = c.addr();
    let t0 = std::time::Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            kettle::spawn(async move {
                raw(
                    addr,
                    b"GET /sleep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let r = RawResponse::parse(&t.await.unwrap());
        assert_eq!(r.body_text(), "done");
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    c.close().await;
}

#[kettle::test]
async fn a_route_table_adds_every_route_with_its_name() {
    use kettle::web;
    let mut app = Application::new();
    app.router().add_routes([
        web::get("/", |_r: Request| async { "index" }),
        web::post("/items", |_r: Request| async { "created" }).name("items"),
        web::put("/items/{id}", |r: Request| async move {
            format!("put {}", r.match_info().get("id").unwrap())
        })
        .name("item"),
        web::patch("/items/{id}", |_r: Request| async { "patched" }),
        web::delete("/items/{id}", |_r: Request| async { "deleted" }),
        web::route(
            "*",
            "/any",
            |r: Request| async move { r.method().to_string() },
        ),
    ]);
    assert_eq!(
        app.router().url_for("item", &[("id", "7")]).unwrap(),
        "/items/7"
    );
    // A duplicate in a table is an error naming it; the routes before it stay.
    let err = app
        .router()
        .try_add_routes([
            web::get("/extra", |_r: Request| async { "extra" }),
            web::post("/items", |_r: Request| async { "again" }),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("POST"), "{err}");
    let c = TestClient::new(app).await.unwrap();
    assert_eq!(c.get("/").await.unwrap().text(), "index");
    assert_eq!(c.post("/items", "").await.unwrap().text(), "created");
    let r = c.request(Method::PUT, "/items/3").send().await.unwrap();
    assert_eq!(r.text(), "put 3");
    let r = c.request(Method::PATCH, "/items/3").send().await.unwrap();
    assert_eq!(r.text(), "patched");
    let r = c.request(Method::DELETE, "/items/3").send().await.unwrap();
    assert_eq!(r.text(), "deleted");
    let r = c.request(Method::OPTIONS, "/any").send().await.unwrap();
    assert_eq!(r.text(), "OPTIONS");
    assert_eq!(c.get("/extra").await.unwrap().text(), "extra");
    let r = c.request(Method::HEAD, "/").send().await.unwrap();
    assert_eq!((r.status(), r.body().is_empty()), (StatusCode::OK, true));
    c.close().await;
}
