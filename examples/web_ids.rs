//! Seed 003's aiohttp server on 0.0.0.0:9977: `GET /` answers its path with status 201,
//! `GET /{id}` answers the id.
//!
//! ```text
//! cargo run --example web_ids
//! curl -i http://127.0.0.1:9977/            # 201, body "/"
//! curl http://127.0.0.1:9977/12301?name=1   # "12301"
//! ```

use kettle::web::{self, Application, Request, Response, StatusCode};

/// `GET /`: the request path, status 201.
pub async fn indexhandle(req: Request) -> Response {
    Response::text(req.path()).with_status(StatusCode::CREATED)
}

/// `GET /{id}`: the id (the seed prints match_info and the query string too).
pub async fn handle(req: Request) -> Response {
    println!("{:?}", req.match_info().iter().collect::<Vec<_>>());
    println!("{}", req.query_string());
    Response::text(req.match_info().get("id").unwrap_or("0000"))
}

/// The seed's application.
pub fn app() -> Application {
    let mut app = Application::new();
    app.router()
        .add_get("/", indexhandle)
        .add_get("/{id}", handle);
    app
}

fn main() {
    if let Err(e) = web::run_app(app(), "0.0.0.0", 9977) {
        eprintln!("web_ids: {e}");
        std::process::exit(1);
    }
}
