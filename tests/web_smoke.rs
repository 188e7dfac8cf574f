use kettle::web::{self, Application, Request, Response, TestClient};

#[kettle::test]
async fn smoke() {
    let mut app = Application::new();
    app.router()
        .add_get("/", |_r: Request| async { "Hello, World!" })
        .add_get("/hello/{name}", |r: Request| async move {
            Response::html(format!(
                "<h1>hello, {}!</h1>",
                r.match_info().get("name").unwrap()
            ))
        })
        .add_post("/echo", |mut r: Request| async move {
            let b = r.read().await?;
            Ok::<_, web::Error>(Response::bytes(b))
        });
    let c = TestClient::new(app).await.unwrap();
    let r = c.get("/").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text(), "Hello, World!");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = c.get("/hello/a%20b").await.unwrap();
    assert_eq!(r.text(), "<h1>hello, a b!</h1>");
    let r = c.post("/echo", "xyz").await.unwrap();
    assert_eq!(r.text(), "xyz");
    let r = c.get("/nope").await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.post("/", "").await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = c.request(http::Method::HEAD, "/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-length"), Some("13"));
    assert!(r.body().is_empty());
    c.close().await;
}
