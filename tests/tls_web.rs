//! HTTPS from `kettle::web`: an `AppRunner` with `ServerOptions::tls`, on its own thread, served
//! to a Rust client over `TlsStream`, and to `curl` and `openssl s_client` when they are
//! installed. Certificates are made in the test.

mod process_support;
mod tls_support;
mod web_proto_support;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use kettle::net::TcpStream;
use kettle::tls::{is_tls_error, TlsConnector, TlsStream};
use kettle::web::{Application, FileResponse, Request, Response, StreamResponse};
use tls_support::{which, Pki, TempDir};
use web_proto_support::{options, serve, Server};

/// Generous bound for anything that must not hang.
const NO_HANG: Duration = Duration::from_secs(10);

/// The test application: who am I talking to, an echo, a large body, a file, a stream.
fn app(file: std::path::PathBuf) -> Application {
    let mut app = Application::new();
    app.router()
        .add_get("/", |req: Request| async move {
            format!("scheme={} secure={}", req.scheme(), req.secure())
        })
        .add_post("/echo", |mut req: Request| async move {
            let body = req.read().await.unwrap_or_default();
            Response::bytes(body)
        })
        .add_get("/big", |_req: Request| async {
            Response::bytes(big_body())
        })
        .add_get("/file", move |req: Request| {
            let file = file.clone();
            async move { FileResponse::new(&req, file) }
        })
        .add_get("/stream", |req: Request| async move {
            let mut resp = StreamResponse::new();
            resp.prepare(&req).await?;
            for i in 0..50 {
                resp.write(format!("chunk {i}\n")).await?;
            }
            resp.write_eof().await?;
            Ok::<_, kettle::web::Error>(resp)
        });
    app
}

fn big_body() -> Vec<u8> {
    (0..3_000_000u32).map(|i| (i % 251) as u8).collect()
}

/// A server with the test PKI's certificate, offering ALPN `http/1.1`, and a file to serve.
fn https_server(pki: &Pki, dir: &TempDir, opts: kettle::web::ServerOptions) -> Server {
    let file = dir.write("served.txt", &"file line\n".repeat(20_000));
    let acceptor = pki.acceptor().with_alpn(&[b"http/1.1"]);
    serve(opts.tls(acceptor), move || app(file))
}

/// A response read off a `TlsStream`: status, headers (lowercased names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response with a `Content-Length` or chunked body; `buf` keeps what follows.
async fn read_reply(tls: &TlsStream, buf: &mut Vec<u8>) -> io::Result<Reply> {
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    buf.drain(..head_end);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = reply.header("content-length") {
        let len: usize = len.parse().unwrap();
        while buf.len() < len {
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        reply.body = buf.drain(..len).collect();
    } else {
        // Chunked: enough for the test's stream (read to the terminating chunk).
        while !buf.ends_with(b"0\r\n\r\n") {
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        reply.body = std::mem::take(buf);
    }
    Ok(reply)
}

async fn connect_tls(pki: &Pki, addr: SocketAddr) -> io::Result<TlsStream> {
    let connector = TlsConnector::builder()
        .webpki_roots(false)
        .add_root_pem(pki.ca_pem.as_bytes())?
        .alpn_protocols(&[b"http/1.1"])
        .build()?;
    let tcp = TcpStream::connect(addr).await?;
    kettle::wait_for(connector.connect("localhost", tcp), NO_HANG)
        .await
        .expect("the handshake hung")
}

#[test]
fn get_and_post_with_keep_alive_over_tls() {
    let pki = Pki::new();
    let dir = TempDir::new("web-keepalive");
    let server = https_server(&pki, &dir, options());
    let addr = server.addr;
    kettle::run(async move {
        let tls = connect_tls(&pki, addr).await.unwrap();
        assert_eq!(tls.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
        let mut buf = Vec::new();

        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let reply = read_reply(&tls, &mut buf).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"scheme=https secure=true");

        // Same connection: a POST whose body the handler echoes.
        let body = "x".repeat(100_000);
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(req.as_bytes()).await.unwrap();
        let reply = read_reply(&tls, &mut buf).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, body.as_bytes());

        // Pipelined: two requests in one write, two responses in order.
        tls.write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\nGET /big HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .await
        .unwrap();
        assert_eq!(read_reply(&tls, &mut buf).await.unwrap().status, 200);
        let big = read_reply(&tls, &mut buf).await.unwrap();
        assert!(big.body == big_body(), "the 3 MB body arrived intact");

        // A file (sendfile on TCP) goes through the TLS session.
        tls.write_all(b"GET /file HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let file = read_reply(&tls, &mut buf).await.unwrap();
        assert_eq!(file.status, 200);
        assert_eq!(file.body, "file line\n".repeat(20_000).as_bytes());

        // A streamed (chunked) response.
        tls.write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let streamed = read_reply(&tls, &mut buf).await.unwrap();
        assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
        let text = String::from_utf8(streamed.body).unwrap();
        assert!(
            text.contains("chunk 0\n") && text.contains("chunk 49\n"),
            "{text}"
        );

        // Connection: close ends with close_notify, a clean end of stream.
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let last = read_reply(&tls, &mut buf).await.unwrap();
        assert_eq!(last.header("connection"), Some("close"));
        let mut rest = [0u8; 16];
        assert_eq!(tls.read(&mut rest).await.unwrap(), 0);
    });
}

#[test]
fn a_failed_handshake_does_not_stop_the_server() {
    let pki = Pki::new();
    let dir = TempDir::new("web-failed");
    let opts = options().header_timeout(Duration::from_millis(300));
    let server = https_server(&pki, &dir, opts);
    let addr = server.addr;
    kettle::run(async move {
        // Plain HTTP to the HTTPS port: refused during the handshake, connection closed.
        let plain = TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut sink = [0u8; 1024];
        let closed = kettle::wait_for(
            async {
                while let Ok(n) = plain.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            },
            NO_HANG,
        )
        .await;
        assert!(closed.is_ok(), "the server kept a plain-text client open");

        // A client that does not trust the certificate.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = TlsConnector::new()
            .connect("localhost", tcp)
            .await
            .unwrap_err();
        assert!(is_tls_error(&err), "{err:?}");

        // A client that connects and never starts the handshake is dropped after the
        // header timeout.
        let silent = TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        let ended = kettle::wait_for(silent.read(&mut sink), NO_HANG).await;
        assert!(matches!(ended, Ok(Ok(0)) | Ok(Err(_))), "{ended:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));

        // And a good client is served after all that.
        let tls = connect_tls(&pki, addr).await.unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let reply = read_reply(&tls, &mut Vec::new()).await.unwrap();
        assert_eq!(reply.status, 200);
    });
}

#[test]
fn a_plain_server_says_http() {
    let dir = TempDir::new("web-plain");
    let file = dir.write("served.txt", "x");
    let server = serve(options(), move || app(file));
    let reply = server.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(reply.body, b"scheme=http secure=false");
}

#[test]
fn curl_speaks_https_to_the_server() {
    let Some(curl) = which("curl") else {
        eprintln!("curl not found; skipping");
        return;
    };
    let pki = Pki::new();
    let dir = TempDir::new("web-curl");
    let ca = dir.write("ca.pem", &pki.ca_pem);
    let server = https_server(&pki, &dir, options());
    let port = server.addr.port();
    let url = |path: &str| format!("https://localhost:{port}{path}");
    // Two transfers in one run (`--next` starts the second one's options afresh) share a
    // keep-alive connection; --resolve keeps "localhost" (and so SNI and the name check)
    // while connecting to the IPv4 address the server is on.
    let common = |cmd: &mut Command| {
        cmd.args(["--silent", "--show-error", "--max-time", "10", "--cacert"])
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("localhost:{port}:127.0.0.1"))
            .args(["--write-out", "|%{http_code}|%{num_connects}\n"]);
    };
    let mut cmd = Command::new(&curl);
    common(&mut cmd);
    cmd.arg(url("/")).arg("--next");
    common(&mut cmd);
    cmd.args(["--data-binary", "posted by curl"])
        .arg(url("/echo"));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], "scheme=https secure=true|200|1");
    assert_eq!(
        lines[1], "posted by curl|200|0",
        "the second request reused the connection"
    );

    // curl refuses the server without the CA.
    let refused = Command::new(&curl)
        .args(["--silent", "--max-time", "10"])
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg(url("/"))
        .status()
        .unwrap();
    assert_eq!(
        refused.code(),
        Some(60),
        "curl's 'peer certificate cannot be authenticated'"
    );
    // And the server goes on serving.
    let again = Command::new(&curl)
        .args(["--silent", "--max-time", "10", "--cacert"])
        .arg(&ca)
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg(url("/file"))
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(again.stdout, "file line\n".repeat(20_000).as_bytes());
}

#[test]
fn openssl_s_client_speaks_https_to_the_server() {
    let Some(openssl) = which("openssl") else {
        eprintln!("openssl not found; skipping");
        return;
    };
    let pki = Pki::new();
    let dir = TempDir::new("web-openssl");
    let ca = dir.write("ca.pem", &pki.ca_pem);
    let server = https_server(&pki, &dir, options());
    let mut child = Command::new(openssl)
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-alpn",
            "http/1.1",
        ])
        .arg("-connect")
        .arg(server.addr.to_string())
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(&ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two requests on one connection; the second closes it, which ends s_client.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let deadline = std::time::Instant::now() + NO_HANG;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "s_client did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.matches("HTTP/1.1 200 OK").count(),
        2,
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(stdout.matches("scheme=https secure=true").count(), 2);
    assert!(!stderr.contains("verify error"), "{stderr}");
}

#[test]
fn shutdown_does_not_wait_for_idle_tls_connections_or_pending_handshakes() {
    let pki = Pki::new();
    let dir = TempDir::new("web-shutdown");
    // The default 30 s header timeout: shutdown must not wait for it.
    let mut server = https_server(&pki, &dir, options());
    let addr = server.addr;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        kettle::run(async move {
            // One idle keep-alive connection after a request, one that never handshakes.
            let tls = connect_tls(&pki, addr).await.unwrap();
            tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            read_reply(&tls, &mut Vec::new()).await.unwrap();
            let _silent = TcpStream::connect(addr).await.unwrap();
            kettle::sleep(Duration::from_millis(50)).await;
            ready_tx.send(()).unwrap();
            // Hold both open until the test is done.
            kettle::run_in_executor(move || done_rx.recv()).await.ok();
        });
    });
    ready_rx.recv().unwrap();
    server.begin_shutdown();
    let took = server
        .wait_shutdown(Duration::from_secs(5))
        .expect("shutdown waited for idle connections");
    assert!(took < Duration::from_secs(5), "{took:?}");
    done_tx.send(()).unwrap();
    client.join().unwrap();
}

#[test]
fn the_web_app_example_serves_https_with_tls_cert_key() {
    use std::io::{BufRead, BufReader};
    let pki = Pki::new();
    let dir = TempDir::new("web-example");
    let cert = dir.write("cert.pem", &pki.cert_pem);
    let key = dir.write("key.pem", &pki.key_pem);
    let port = process_support::free_port();
    let mut child = process_support::Reaped(
        Command::new(process_support::example("web_app"))
            .args(["--port", &port.to_string(), "--tls"])
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut banner = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert_eq!(
        banner.trim_end(),
        format!("Server started at https://127.0.0.1:{port}...")
    );
    kettle::run(async move {
        let tls = connect_tls(&pki, ([127, 0, 0, 1], port).into())
            .await
            .unwrap();
        tls.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap();
        let reply = read_reply(&tls, &mut Vec::new()).await.unwrap();
        assert_eq!(reply.body, b"hello");
    });
}
