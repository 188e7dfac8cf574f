//! `kettle::web` against other processes: the `web_app` example as a child (serves, then exits
//! 0 on SIGTERM), and `curl` as a client (HTTP/1.0 and 1.1, keep-alive reuse, uploads with
//! `Expect: 100-continue` and chunked bodies). The curl tests skip when curl is not
//! installed.

mod process_support;
mod web_proto_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use process_support::{free_port, start_example, Reaped};
use web_proto_support::*;

// --- the web_app example under SIGTERM ---------------------------------------------------------

#[test]
fn web_app_serves_and_exits_cleanly_on_sigterm() {
    let (mut child, port, banner) = start_example("web_app");
    assert_eq!(
        banner,
        format!("Server started at http://127.0.0.1:{port}...")
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let t0 = Instant::now();
    let mut c = Conn::open(addr);
    c.send_str(&get("/"));
    let r = c.response(false);
    let took = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<h1>Index</h1>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    // The seed's half-second sleep.
    assert!(took >= Duration::from_millis(450), "{took:?}");
    // The connection stays open (keep-alive) when the signal comes: it must not hold the
    // exit up.
    let pid = child.0.id() as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            t0.elapsed() < PROMPT,
            "web_app still running {:?} after SIGTERM",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "web_app exited with {status:?}");
    assert_eq!(status.code(), Some(0));
    c.expect_closed(PROMPT);
}

#[test]
fn web_app_finishes_a_request_in_flight_when_terminated() {
    let (mut child, port, _banner) = start_example("web_app");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Conn::open(addr);
    // /hello sleeps half a second; the signal arrives while it sleeps.
    c.send_str(&get("/hello/sig"));
    std::thread::sleep(Duration::from_millis(150));
    // SAFETY: sending a signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let r = c.response(false);
    assert_eq!(r.text(), "<h1>hello, sig!</h1>");
    assert!(r.closes());
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(t0.elapsed() < PROMPT, "web_app did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

// --- curl --------------------------------------------------------------------------------------

fn curl_available() -> bool {
    let found = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("curl is not installed: skipping");
    }
    found
}

fn curl(args: &[&str]) -> Output {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?} failed: {out:?}");
    out
}

fn start() -> (Server, Probe) {
    let (build, probe) = probe_app();
    (serve(options(), build), probe)
}

#[test]
fn curl_gets_with_http11_and_http10() {
    if !curl_available() {
        return;
    }
    let (server, _probe) = start();
    let url = format!("http://{}/", server.addr);
    let out = curl(&["--include", &url]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nHello, World!"), "{text}");
    let out = curl(&["--http1.0", "--include", &url]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");
    // HEAD.
    let out = curl(&["--head", &url]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Content-Length: 13\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}

#[test]
fn curl_reuses_one_keep_alive_connection_for_several_urls() {
    if !curl_available() {
        return;
    }
    let (server, _probe) = start();
    let urls: Vec<String> = (0..5)
        .map(|_| format!("http://{}/peer", server.addr))
        .collect();
    let out = curl(&urls.iter().map(String::as_str).collect::<Vec<_>>());
    let ports: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ports.len(), 5, "{ports:?}");
    assert!(
        ports.iter().all(|p| *p == ports[0]),
        "curl used more than one connection: client ports {ports:?}"
    );
}

#[test]
fn curl_uploads_with_100_continue_and_chunked() {
    if !curl_available() {
        return;
    }
    let (server, _probe) = start();
    let url = format!("http://{}/echo", server.addr);
    let body = "x".repeat(100_000);
    // curl sends Expect: 100-continue for large bodies; insist on it anyway.
    let out = curl(&[
        "--verbose",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &body,
        &url,
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), body);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("HTTP/1.1 100 Continue"), "{log}");
    // Chunked, from stdin.
    let mut child = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            &url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run curl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"chunked upload ").unwrap();
        stdin.write_all(&pattern(50_000)).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut expected = b"chunked upload ".to_vec();
    expected.extend(pattern(50_000));
    assert!(out.stdout == expected, "echo differs");
}

#[test]
fn curl_sees_413_for_an_oversized_upload() {
    if !curl_available() {
        return;
    }
    let (server, _probe) = start();
    let url = format!("http://{}/echo", server.addr);
    let body = "y".repeat(2 << 20);
    let path = std::env::temp_dir().join(format!("kettle-413-{}", std::process::id()));
    std::fs::write(&path, &body).unwrap();
    let out = Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "20",
            "--write-out",
            "%{http_code}",
            "--output",
            "/dev/null",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", path.display()))
        .arg(&url)
        .output()
        .expect("run curl");
    let _ = std::fs::remove_file(&path);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "413", "{out:?}");
}

// --- run_app itself, in a child process ----------------------------------------------------------

/// Set in the child: the port `run_app_child` serves on.
const CHILD_PORT: &str = "KETTLE_RUN_APP_CHILD_PORT";

/// Does nothing in a normal run. Run by `run_app_exits_cleanly_on_sigterm` in a child
/// process of this same test binary, where it serves the probe app with `web::run_app` until
/// a signal stops it, and passes if `run_app` returns `Ok`.
#[test]
fn run_app_child() {
    let Ok(port) = std::env::var(CHILD_PORT) else {
        return;
    };
    let (build, _probe) = probe_app();
    kettle::web::run_app(build(), "127.0.0.1", port.parse().unwrap()).expect("run_app");
}

#[test]
fn run_app_exits_cleanly_on_sigterm() {
    let port = free_port();
    let mut child = Reaped(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "run_app_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_PORT, port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the run_app child"),
    );
    // The child's output, line by line, read on a thread so a silent child cannot hang us.
    let out = BufReader::new(child.0.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let expected = format!("======== Running on http://127.0.0.1:{port} ========");
    // libtest may have printed "test run_app_child ... " on the same line.
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the child announces its address");
        if line.trim_end().ends_with(&expected) {
            break;
        }
    }
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Conn::open(addr);
    c.send_str(&get("/"));
    assert_eq!(c.response(false).text(), "Hello, World!");
    // A request in flight when the signal arrives still gets its answer.
    c.send_str(&get("/sleep/300"));
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: sending a signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let r = c.response(false);
    assert_eq!(r.text(), "slept 300");
    assert!(r.closes());
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            t0.elapsed() < PROMPT,
            "run_app did not return after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // The child has exited: its output ends soon.
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(PROMPT) {
        rest.push(line);
    }
    let rest = rest.join("\n");
    assert_eq!(status.code(), Some(0), "child output: {rest}");
    assert!(rest.contains("test result: ok. 1 passed"), "{rest}");
}
