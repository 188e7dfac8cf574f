//! Seeds 001/002's aiohttp server: `GET /` and `GET /hello/{name}`, each after the seed's
//! `sleep(0.5)`, plus `POST /echo`, which answers the request body, and `GET /health`, which
//! answers `ok` at once for a load balancer's health checks (`deploy/` in the repository).
//!
//! ```text
//! cargo run --example web_app                      # http://127.0.0.1:8000
//! cargo run --example web_app -- --host 0.0.0.0 --port 8080
//! curl http://127.0.0.1:8000/hello/kettle
//! curl -d 'some body' http://127.0.0.1:8000/echo
//! curl http://127.0.0.1:8000/health
//!
//! # HTTPS, with a certificate chain and key in PEM files:
//! cargo run --example web_app -- --tls cert.pem key.pem
//! curl --cacert ca.pem https://localhost:8000/hello/kettle
//!
//! # One loop per core: each worker builds its own Application
//! cargo run --example web_app -- --workers 2
//! ```
//!
//! A hundred concurrent requests all finish after about half a second, not fifty: while one
//! handler sleeps, the loop serves the others. Ctrl+C (or SIGTERM) stops it gracefully, every
//! worker finishing its requests in flight first.

use std::time::Duration;

use kettle::tls::TlsAcceptor;
use kettle::web::{self, AppGroup, AppRunner, Application, Request, Response, ServerOptions};

/// The seed's `asyncio.sleep(0.5)`.
pub const DELAY: Duration = Duration::from_millis(500);

/// `GET /`.
pub async fn index(_req: Request) -> Response {
    kettle::sleep(DELAY).await;
    Response::html("<h1>Index</h1>")
}

/// `GET /hello/{name}`.
pub async fn hello(req: Request) -> Response {
    kettle::sleep(DELAY).await;
    let name = req.match_info().get("name").unwrap_or("");
    Response::html(format!("<h1>hello, {}!</h1>", escape(name)))
}

/// `POST /echo`: the body back, with its content type.
pub async fn echo(mut req: Request) -> Result<Response, web::Error> {
    let body = req.read().await?;
    let content_type = req.content_type();
    Ok(Response::bytes(body).with_content_type(content_type))
}

/// `GET /health` (and `HEAD`): `ok`, without sleeping or touching anything, so a proxy may
/// ask every second or two. A process that answers is accepting and serving requests; one that
/// is shutting down has stopped listening, so the check fails and the proxy stops sending.
pub async fn health(_req: Request) -> Response {
    Response::text("ok")
}

/// The name comes from the URL; HTML-escape it so a link cannot inject markup.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The seed's application.
pub fn app() -> Application {
    let mut app = Application::new();
    app.router()
        .add_route("GET", "/", index)
        .add_route("GET", "/hello/{name}", hello)
        .add_post("/echo", echo)
        .add_get("/health", health);
    app
}

/// What the command line asks for.
struct Args {
    host: String,
    port: u16,
    /// `--tls CERT KEY`: PEM paths of the certificate chain and its private key.
    tls: Option<(String, String)>,
    /// `--workers N`: serve on N loops (threads) instead of the main one.
    workers: Option<usize>,
}

/// `--host H`, `--port P`, `--tls CERT KEY` and `--workers N`.
fn parse_args(args: &[String]) -> Result<Args, String> {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 8000u16);
    let mut tls = None;
    let mut workers = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--host" => host = it.next().ok_or("--host needs a value")?.clone(),
            "--port" => {
                let v = it.next().ok_or("--port needs a value")?;
                port = v.parse().map_err(|_| format!("invalid port {v:?}"))?;
            }
            "--tls" => {
                let cert = it
                    .next()
                    .ok_or("--tls needs a certificate and a key path")?;
                let key = it
                    .next()
                    .ok_or("--tls needs a key path after the certificate")?;
                tls = Some((cert.clone(), key.clone()));
            }
            "--workers" => {
                let v = it.next().ok_or("--workers needs a value")?;
                match v.parse() {
                    Ok(n) if n > 0 => workers = Some(n),
                    _ => return Err(format!("invalid worker count {v:?}")),
                }
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} \
                     (usage: web_app [--host H] [--port P] [--tls CERT KEY] [--workers N])"
                ))
            }
        }
    }
    Ok(Args {
        host,
        port,
        tls,
        workers,
    })
}

#[kettle::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Args {
        host,
        port,
        tls,
        workers,
    } = parse_args(&args).unwrap_or_else(|e| {
        eprintln!("web_app: {e}");
        std::process::exit(2);
    });
    let mut options = ServerOptions::default();
    if let Some((cert, key)) = tls {
        match TlsAcceptor::from_pem_files(&cert, &key) {
            Ok(acceptor) => options = options.tls(acceptor.with_alpn(&[b"http/1.1"])),
            Err(e) => {
                eprintln!("web_app: {e}");
                std::process::exit(2);
            }
        }
    }
    let scheme = if options.is_tls() { "https" } else { "http" };
    let mut signals = kettle::signal::Signals::new(&[libc::SIGINT, libc::SIGTERM])
        .expect("install signal handlers");
    if let Some(n) = workers {
        // Every worker loop builds its own Application (it is !Send). Starting blocks this
        // loop for a moment, which has nothing else to do yet.
        let group = match AppGroup::start(|_| app(), &host, port, options.workers(n)) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("web_app: cannot serve on {host}:{port}: {e}");
                std::process::exit(1);
            }
        };
        for addr in group.addrs() {
            println!("Server started at {scheme}://{addr}... ({n} workers)");
        }
        let _ = signals.recv().await;
        if let Err(e) = group.shutdown() {
            eprintln!("web_app: {e}");
            std::process::exit(1);
        }
        return;
    }
    let runner = match AppRunner::start_with(app(), &host, port, options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("web_app: cannot serve on {host}:{port}: {e}");
            std::process::exit(1);
        }
    };
    for addr in runner.addrs() {
        println!("Server started at {scheme}://{addr}...");
    }
    let _ = signals.recv().await;
    runner.shutdown().await;
}
