//! Sub-applications (aiohttp's `app.add_subapp(prefix, subapp)`) through real sockets:
//! routing under the prefix and not beside it, nesting, middleware order, state and its
//! chained lookup, `url_for`, lifecycle hooks, 404/405/HEAD under a prefix, body limits and
//! prefix errors.

use std::cell::RefCell;
use std::rc::Rc;

use http::Method;
use kettle::web::router::RouteError;
use kettle::web::{self, Application, Next, Request, Response, TestClient};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// A handler answering `tag` and its path parameters, so a test sees which route ran.
fn answer(tag: &'static str) -> impl Fn(Request) -> std::future::Ready<Response> {
    move |req: Request| {
        let params: Vec<String> = req
            .match_info()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        std::future::ready(Response::text(format!("{tag} {}", params.join(","))))
    }
}

/// A middleware that logs `name` on the way in and out.
fn logging(name: &'static str, log: &Log) -> impl web::Middleware {
    let log = log.clone();
    move |req: Request, next: Next| {
        let log = log.clone();
        async move {
            log.borrow_mut().push(format!("{name} in"));
            let resp = next.run(req).await;
            log.borrow_mut().push(format!("{name} out"));
            resp
        }
    }
}

fn admin() -> Application {
    let mut admin = Application::new();
    admin
        .router()
        .add_get("", answer("admin bare"))
        .add_get("/", answer("admin index"))
        .add_get("/users/{id}", answer("admin user"));
    admin
}

#[kettle::test]
async fn routes_resolve_under_the_prefix_with_the_prefix_included() {
    let mut app = Application::new();
    app.router().add_get("/users/{id}", answer("root user"));
    app.add_subapp("/admin", admin());
    let c = TestClient::new(app).await.unwrap();

    assert_eq!(
        c.get("/admin/users/7").await.unwrap().text(),
        "admin user id=7"
    );
    assert_eq!(c.get("/admin/").await.unwrap().text(), "admin index ");
    assert_eq!(c.get("/users/7").await.unwrap().text(), "root user id=7");
    // Percent-encoded paths are compared decoded, as routes are.
    assert_eq!(
        c.get("/%61dmin/users/a%20b").await.unwrap().text(),
        "admin user id=a b"
    );
    c.close().await;
}

#[kettle::test]
async fn the_exact_prefix_is_the_subapps_empty_route() {
    let mut app = Application::new();
    app.add_subapp("/admin/", admin()); // the trailing slash is dropped
    let mut plain = Application::new();
    plain.router().add_get("/", answer("plain index"));
    app.add_subapp("/plain", plain);
    let c = TestClient::new(app).await.unwrap();

    assert_eq!(c.get("/admin").await.unwrap().text(), "admin bare ");
    assert_eq!(c.get("/admin?x=1").await.unwrap().text(), "admin bare ");
    // Without a "" route the bare prefix is the sub-application's 404, as in aiohttp.
    assert_eq!(c.get("/plain").await.unwrap().status(), 404);
    assert_eq!(c.get("/plain/").await.unwrap().text(), "plain index ");
    c.close().await;
}

#[kettle::test]
async fn paths_beside_the_prefix_stay_with_the_parent() {
    let events = log();
    let mut sub = admin();
    sub.add_middleware(logging("sub", &events));
    let mut app = Application::new();
    app.router()
        .add_get("/adminx", answer("root adminx"))
        .add_get("/{anything}", answer("root any"));
    app.add_subapp("/admin", sub);
    let c = TestClient::new(app).await.unwrap();

    assert_eq!(c.get("/adminx").await.unwrap().text(), "root adminx ");
    assert_eq!(
        c.get("/admin%2Fusers").await.unwrap().text(),
        "root any anything=admin/users",
        "an encoded slash does not separate the prefix"
    );
    assert_eq!(c.get("/adm").await.unwrap().text(), "root any anything=adm");
    assert_eq!(c.get("/adminx/users/1").await.unwrap().status(), 404);
    assert!(events.borrow().is_empty(), "{:?}", events.borrow());
    c.close().await;
}

#[kettle::test]
async fn nested_subapps_route_build_urls_and_chain_middlewares() {
    let events = log();
    let mut v1 = Application::new();
    v1.add_middleware(logging("v1", &events));
    v1.router()
        .add_route_named("GET", "/items/{id}", "item", |req: Request| async move {
            let id = req.match_info().get("id").unwrap().to_string();
            Response::text(req.app().url_for("item", &[("id", &id)]).unwrap())
        });
    let mut api = Application::new();
    api.add_middleware(logging("api", &events));
    api.router().add_get("/status", answer("api status"));
    api.add_subapp("/v1", v1);
    let mut app = Application::new();
    app.add_middleware(logging("root", &events));
    app.add_subapp("/api", api);
    let c = TestClient::new(app).await.unwrap();

    assert_eq!(
        c.get("/api/v1/items/3").await.unwrap().text(),
        "/api/v1/items/3"
    );
    assert_eq!(
        *events.borrow(),
        ["root in", "api in", "v1 in", "v1 out", "api out", "root out"]
    );
    events.borrow_mut().clear();
    assert_eq!(c.get("/api/status").await.unwrap().text(), "api status ");
    assert_eq!(
        *events.borrow(),
        ["root in", "api in", "api out", "root out"]
    );
    assert_eq!(c.get("/v1/items/3").await.unwrap().status(), 404);
    c.close().await;
}

#[kettle::test]
async fn parent_middlewares_run_first_and_subapp_ones_only_for_its_requests() {
    let events = log();
    let mut sub = Application::new();
    sub.add_middleware(logging("sub 1", &events))
        .add_middleware(logging("sub 2", &events));
    let e = events.clone();
    sub.router().add_get("/x", move |_req: Request| {
        e.borrow_mut().push("handler".into());
        async { "sub" }
    });
    let mut app = Application::new();
    app.add_middleware(logging("root 1", &events))
        .add_middleware(logging("root 2", &events));
    app.router().add_get("/x", answer("root"));
    app.add_subapp("/sub", sub);
    let c = TestClient::new(app).await.unwrap();

    assert_eq!(c.get("/sub/x").await.unwrap().text(), "sub");
    assert_eq!(
        *events.borrow(),
        [
            "root 1 in",
            "root 2 in",
            "sub 1 in",
            "sub 2 in",
            "handler",
            "sub 2 out",
            "sub 1 out",
            "root 2 out",
            "root 1 out"
        ]
    );
    events.borrow_mut().clear();
    assert_eq!(c.get("/x").await.unwrap().text(), "root ");
    assert_eq!(
        *events.borrow(),
        ["root 1 in", "root 2 in", "root 2 out", "root 1 out"]
    );
    events.borrow_mut().clear();
    // A 404 under the prefix is the sub-application's: its middlewares see it too.
    assert_eq!(c.get("/sub/nothing").await.unwrap().status(), 404);
    assert_eq!(events.borrow().len(), 8, "{:?}", events.borrow());
    c.close().await;
}

struct Name(&'static str);
struct RootOnly(&'static str);

#[kettle::test]
async fn state_is_the_matched_apps_and_config_looks_upwards() {
    let seen = log();
    let mut sub = Application::new();
    sub.set_state(Name("sub"));
    let s = seen.clone();
    sub.add_middleware(move |req: Request, next: Next| {
        // In the sub-application's middleware, req.app() is the sub-application.
        s.borrow_mut()
            .push(format!("sub mw: {}", req.state::<Name>().unwrap().0));
        next.run(req)
    });
    sub.router().add_get("/who", |req: Request| async move {
        let own = req.state::<Name>().map(|n| n.0).unwrap_or("-");
        let root_via_state = req.state::<RootOnly>().map(|n| n.0).unwrap_or("-");
        let root_via_config = req.config::<RootOnly>().map(|n| n.0).unwrap_or("-");
        let name_via_config = req.config::<Name>().map(|n| n.0).unwrap_or("-");
        let parent = req.app().parent().unwrap();
        let subapp = req.match_info().subapp().is_some();
        Response::text(format!(
            "{own} {root_via_state} {root_via_config} {name_via_config} {} {subapp}",
            parent.state::<Name>().unwrap().0
        ))
    });
    let mut app = Application::new();
    app.set_state(Name("root")).set_state(RootOnly("root only"));
    let s = seen.clone();
    app.add_middleware(move |req: Request, next: Next| {
        // In the parent's middleware req.app() is the parent (aiohttp's current_app), and
        // config() already starts at the matched sub-application.
        s.borrow_mut().push(format!(
            "root mw: {} / {}",
            req.state::<Name>().unwrap().0,
            req.config::<Name>().unwrap().0
        ));
        next.run(req)
    });
    app.router().add_get("/who", |req: Request| async move {
        let name = req.config::<Name>().unwrap().0;
        let subapp = req.match_info().subapp().is_some();
        Response::text(format!("{name} {} {subapp}", req.app().parent().is_none()))
    });
    app.add_subapp("/sub", sub);
    let c = TestClient::new(app).await.unwrap();

    assert_eq!(
        c.get("/sub/who").await.unwrap().text(),
        "sub - root only sub root true"
    );
    assert_eq!(*seen.borrow(), ["root mw: root / sub", "sub mw: sub"]);
    assert_eq!(c.get("/who").await.unwrap().text(), "root true false");
    c.close().await;
}

#[kettle::test]
async fn url_for_in_a_subapp_includes_the_prefix_and_names_are_per_app() {
    let mut sub = Application::new();
    sub.router()
        .add_route_named("GET", "/page/{n}", "page", |req: Request| async move {
            let n = req.match_info().get("n").unwrap().to_string();
            Response::text(format!(
                "{} {}",
                req.url_for("page", &[("n", &n)]).unwrap(),
                req.app().parent().unwrap().url_for("page", &[]).unwrap()
            ))
        })
        .add_route_named("GET", "", "home", answer("home"));
    let mut app = Application::new();
    // The same name in the parent is another route: each application has its own names.
    app.router()
        .add_route_named("GET", "/page", "page", answer("root page"));
    app.add_subapp("/docs", sub);
    let c = TestClient::new(app).await.unwrap();

    assert_eq!(
        c.get("/docs/page/a%20b").await.unwrap().text(),
        "/docs/page/a%20b /page"
    );
    c.close().await;
}

#[kettle::test]
async fn each_apps_hooks_run_once_with_its_own_app() {
    let events = log();
    let hooks = |app: &mut Application, name: &'static str, events: &Log| {
        let e = events.clone();
        app.on_startup(move |app: web::App| {
            let e = e.clone();
            async move {
                e.borrow_mut().push(format!("startup {name}"));
                app.set_state(Name(name));
                Ok(())
            }
        });
        let e = events.clone();
        app.on_shutdown(move |app: web::App| {
            let e = e.clone();
            async move {
                let own = app.state::<Name>().unwrap().0;
                e.borrow_mut().push(format!("shutdown {name} ({own})"));
                Ok(())
            }
        });
        let e = events.clone();
        app.on_cleanup(move |_app: web::App| {
            let e = e.clone();
            async move {
                e.borrow_mut().push(format!("cleanup {name}"));
                Ok(())
            }
        });
    };
    let mut inner = Application::new();
    hooks(&mut inner, "inner", &events);
    inner.router().add_get("/name", |req: Request| async move {
        req.state::<Name>().unwrap().0
    });
    let mut sub = Application::new();
    hooks(&mut sub, "sub", &events);
    sub.add_subapp("/inner", inner);
    let mut app = Application::new();
    hooks(&mut app, "root before", &events);
    app.add_subapp("/sub", sub);
    hooks(&mut app, "root after", &events);
    let c = TestClient::new(app).await.unwrap();
    assert_eq!(c.get("/sub/inner/name").await.unwrap().text(), "inner");
    c.close().await;

    assert_eq!(
        *events.borrow(),
        [
            "startup root before",
            "startup sub",
            "startup inner",
            "startup root after",
            "shutdown root before (root after)",
            "shutdown sub (sub)",
            "shutdown inner (inner)",
            "shutdown root after (root after)",
            "cleanup root before",
            "cleanup sub",
            "cleanup inner",
            "cleanup root after",
        ]
    );
}

#[kettle::test]
async fn a_failing_subapp_startup_hook_aborts_the_start() {
    let mut sub = Application::new();
    sub.on_startup(|_app| async { Err(std::io::Error::other("no database").into()) });
    let mut app = Application::new();
    app.add_subapp("/sub", sub);
    let Err(err) = TestClient::new(app).await else {
        panic!("the start must fail");
    };
    assert!(err.to_string().contains("no database"), "{err}");
}

#[kettle::test]
async fn not_found_and_method_not_allowed_under_the_prefix() {
    let mut app = Application::new();
    // Registered before the mount: wins over the sub-application for its path.
    app.router().add_get("/admin/status", answer("root status"));
    app.add_subapp("/admin", admin());
    // Registered after the mount: the sub-application answers its path (404).
    app.router().add_get("/admin/late", answer("root late"));
    let c = TestClient::new(app).await.unwrap();

    let r = c.get("/admin/nothing").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text(), "404: Not Found");
    let r = c.post("/admin/users/1", "").await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(c.get("/admin/status").await.unwrap().text(), "root status ");
    assert_eq!(c.get("/admin/late").await.unwrap().status(), 404);
    // A parent route registered before the mount that does not take the method leaves the
    // request to the sub-application.
    let r = c.post("/admin/status", "").await.unwrap();
    assert_eq!(r.status(), 404);
    c.close().await;
}

#[kettle::test]
async fn head_works_wherever_get_does_under_a_subapp() {
    let mut inner = Application::new();
    inner.router().add_get("/deep", answer("deep"));
    let mut sub = admin();
    sub.add_subapp("/inner", inner);
    let mut app = Application::new();
    app.add_subapp("/admin", sub);
    let c = TestClient::new(app).await.unwrap();

    for path in ["/admin/users/1", "/admin", "/admin/inner/deep"] {
        let get = c.get(path).await.unwrap();
        let head = c.request(Method::HEAD, path).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        assert!(head.body().is_empty(), "{path}");
        assert_eq!(head.header("content-length"), get.header("content-length"));
    }
    c.close().await;
}

#[kettle::test]
async fn each_app_applies_its_own_client_max_size() {
    let echo_len = |mut req: Request| async move { req.read().await.map(|b| b.len().to_string()) };
    let mut big = Application::new();
    big.set_client_max_size(64);
    big.router().add_post("/up", echo_len);
    let mut small = Application::new();
    small.set_client_max_size(4);
    small.router().add_post("/up", echo_len);
    let mut app = Application::new();
    app.set_client_max_size(16);
    app.router().add_post("/up", echo_len);
    app.add_subapp("/big", big).add_subapp("/small", small);
    let c = TestClient::new(app).await.unwrap();

    let body = "x".repeat(32);
    assert_eq!(c.post("/big/up", body.clone()).await.unwrap().text(), "32");
    assert_eq!(c.post("/up", body.clone()).await.unwrap().status(), 413);
    assert_eq!(c.post("/small/up", "12345").await.unwrap().status(), 413);
    assert_eq!(c.post("/small/up", "1234").await.unwrap().text(), "4");
    // Above every application's limit: refused before routing.
    assert_eq!(
        c.post("/big/up", "x".repeat(65)).await.unwrap().status(),
        413
    );
    c.close().await;
}

#[test]
fn bad_prefixes_are_refused() {
    let mut app = Application::new();
    for bad in ["", "/", "///", "admin", "/users/{id}"] {
        let err = app.try_add_subapp(bad, Application::new()).unwrap_err();
        assert!(
            matches!(err, RouteError::InvalidPrefix { .. }),
            "{bad:?}: {err}"
        );
    }
    let err = app.try_add_subapp("/a{", Application::new()).unwrap_err();
    assert!(matches!(err, RouteError::Pattern(_)), "{err}");

    app.try_add_subapp("/api", Application::new()).unwrap();
    for shadowed in ["/api", "/api/", "/api/v1"] {
        let err = app
            .try_add_subapp(shadowed, Application::new())
            .unwrap_err();
        assert_eq!(
            err,
            RouteError::ShadowedPrefix {
                prefix: shadowed.trim_end_matches('/').into(),
                by: "/api".into()
            }
        );
    }
    // Beside it, or a prefix that merely starts with the same letters, is fine.
    app.try_add_subapp("/apix", Application::new()).unwrap();
    assert_eq!(
        app.try_add_subapp("", Application::new())
            .unwrap_err()
            .to_string(),
        "invalid sub-application prefix \"\": it must not be empty or '/'"
    );
}

#[test]
#[should_panic(expected = "cannot add sub-application at \"admin\"")]
fn add_subapp_panics_on_a_bad_prefix() {
    Application::new().add_subapp("admin", Application::new());
}
