//! The reverse-proxy configs in `deploy/` run for real: two `web_app` processes behind nginx
//! (`deploy/nginx/kettle.conf`) and behind HAProxy (`deploy/haproxy/kettle.cfg`), each config
//! used as shipped with only its ports and paths changed (plus a response header naming the
//! backend, for the test to count). Through the proxy, requests spread over both processes;
//! one process then gets SIGTERM with requests in flight, and no client sees an error: its
//! requests in flight finish, new ones go to the other process, and it exits 0. With HAProxy
//! it is first drained through the runtime API, as the config says to; nginx gets no drain,
//! so only GETs are sent while the process stops (see the nginx test).
//!
//! Each test is skipped (and passes, saying so) where its proxy is not installed; `.ci/run`
//! installs both from Debian's packages.

mod process_support;
mod web_app_support;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kettle::Task;
use process_support::{free_port, start_example, Reaped};
use web_app_support::{raw, RawResponse, TempDir};

/// The response header the test's proxy adds: which backend answered (nginx's
/// `$upstream_addr`, HAProxy's server name). The shipped configs do not send it: clients have
/// no business knowing the backends' addresses.
const SERVED_BY: &str = "x-upstream";

/// Requests in flight on the process that gets SIGTERM are this many, sleeping 0.5 s each in
/// their handlers; SIGTERM comes this long after they were sent.
const IN_FLIGHT: usize = 10;
const SIGTERM_AFTER: Duration = Duration::from_millis(200);

/// `name` where Debian installs it (`/usr/sbin` is not on every user's PATH) or on PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `deploy/<rel>` as shipped, with each `(from, to)` replaced; every `from` must occur, so a
/// config edit that breaks the test's substitutions fails here rather than testing less.
fn shipped_config(rel: &str, substitutions: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in substitutions {
        assert!(
            text.contains(from),
            "{} no longer contains {from:?}",
            path.display()
        );
        text = text.replace(from, to);
    }
    text
}

/// Starts `web_app --port <free>`; returns it and its port.
fn start_backend() -> (Reaped, u16) {
    let (child, port, banner) = start_example("web_app");
    assert_eq!(
        banner,
        format!("Server started at http://127.0.0.1:{port}...")
    );
    (child, port)
}

/// A proxy process, stopped with SIGTERM when the test ends (SIGKILL would leave nginx's
/// worker running, still listening), with its log files for the failure messages.
struct Proxy {
    child: Reaped,
    name: &'static str,
    addr: SocketAddr,
    logs: Vec<PathBuf>,
}

impl Proxy {
    /// Runs `cmd` (output to `dir/<name>.out`) and waits until it accepts connections on
    /// `port`.
    async fn start(
        name: &'static str,
        mut cmd: Command,
        port: u16,
        dir: &TempDir,
        mut logs: Vec<PathBuf>,
    ) -> Proxy {
        let out_path = dir.path().join(format!("{name}.out"));
        let out = std::fs::File::create(&out_path).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = Reaped(cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}")));
        logs.push(out_path);
        let mut proxy = Proxy {
            child,
            name,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(proxy.addr).is_err() {
            if let Some(status) = proxy.child.0.try_wait().unwrap() {
                panic!("{name} exited with {status}:\n{}", proxy.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{name} is not listening on {port} after 10 s:\n{}",
                proxy.logs()
            );
            kettle::sleep(Duration::from_millis(20)).await;
        }
        proxy
    }

    /// Everything the proxy logged, for a failure message.
    fn logs(&self) -> String {
        self.logs
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                format!("--- {}\n{text}", p.display())
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.child.0.try_wait().ok().flatten().is_none() {
            sigterm(&self.child);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if std::thread::panicking() {
            eprintln!("{} logs:\n{}", self.name, self.logs());
        }
    }
}

fn sigterm(child: &Reaped) {
    let pid = child.0.id() as libc::pid_t;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

/// Waits (10 s at most) for a child sent SIGTERM to exit.
async fn exit_status(child: &mut Reaped) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit 10 s after SIGTERM");
        kettle::sleep(Duration::from_millis(20)).await;
    }
}

/// Which requests a batch sends.
#[derive(Clone, Copy)]
enum Mix {
    /// In turn the health check, a page whose handler sleeps 0.5 s, and an upload echoed back.
    All,
    /// The health check and the page: what a proxy may send again to another backend when
    /// the first one closed the connection under it (not a POST: nginx cannot know whether
    /// the backend ran it).
    Idempotent,
    /// The page only.
    Slow,
}

/// Request `i` of the test and the body it must get back.
fn request(i: usize, mix: Mix) -> (String, String) {
    let head = |line: &str, extra: &str| {
        format!("{line}\r\nHost: kettle.test\r\nConnection: close\r\n{extra}\r\n")
    };
    let kind = match mix {
        Mix::All => i % 3,
        Mix::Idempotent => i % 2,
        Mix::Slow => 1,
    };
    match kind {
        0 => (head("GET /health HTTP/1.1", ""), "ok".to_string()),
        1 => (
            head(&format!("GET /hello/user{i} HTTP/1.1"), ""),
            format!("<h1>hello, user{i}!</h1>"),
        ),
        _ => {
            let body = format!("upload {i}");
            let extra = format!(
                "Content-Type: text/plain\r\nContent-Length: {}\r\n",
                body.len()
            );
            (head("POST /echo HTTP/1.1", &extra) + &body, body)
        }
    }
}

/// Sends requests `ids` through `proxy` all at once, checks that each got 200 and its own
/// body, and returns which backend served each: the proxy's `SERVED_BY`, where nginx lists
/// every backend it tried (`A, B`: A failed, B answered).
fn send_batch(proxy: SocketAddr, ids: Range<usize>, mix: Mix) -> Task<Vec<String>> {
    kettle::spawn(async move {
        let tasks: Vec<_> = ids
            .map(|i| {
                kettle::spawn(async move {
                    let (req, expected) = request(i, mix);
                    let r = RawResponse::parse(&raw(proxy, req.as_bytes()).await);
                    (i, expected, r)
                })
            })
            .collect();
        let mut served_by = Vec::new();
        for t in tasks {
            let (i, expected, r) = t.await.unwrap();
            assert_eq!(r.status, 200, "request {i}: {r:?}");
            assert_eq!(r.body_text(), expected, "request {i}");
            let by = r
                .header(SERVED_BY)
                .unwrap_or_else(|| panic!("no {SERVED_BY}: {r:?}"));
            served_by.push(by.to_string());
        }
        served_by
    })
}

async fn batch(proxy: SocketAddr, ids: Range<usize>, mix: Mix) -> Vec<String> {
    send_batch(proxy, ids, mix).await.unwrap()
}

/// How many of the requests `backend` answered.
fn count(served_by: &[String], backend: &str) -> usize {
    served_by
        .iter()
        .filter(|b| b.rsplit(", ").next() == Some(backend))
        .count()
}

/// Waits (5 s at most) until `port` refuses connections: a `web_app` that got SIGTERM has
/// closed its listener.
async fn wait_refused(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "port {port} still accepts");
        kettle::sleep(Duration::from_millis(5)).await;
    }
}

#[kettle::test]
async fn nginx_balances_and_survives_a_backend_sigterm() {
    let Some(nginx) = find_program("nginx") else {
        println!("nginx is not installed: skipped (apt-get install nginx-light)");
        return;
    };
    let t0 = Instant::now();
    let (mut a, port_a) = start_backend();
    let (_b, port_b) = start_backend();
    let dir = TempDir::new("nginx");
    let listen = free_port();
    let site = shipped_config(
        "nginx/kettle.conf",
        &[
            ("127.0.0.1:8001", format!("127.0.0.1:{port_a}")),
            ("127.0.0.1:8002", format!("127.0.0.1:{port_b}")),
            ("listen 8080;", format!("listen 127.0.0.1:{listen};")),
        ],
    );
    let site_path = dir.write("kettle.conf", site);
    let d = dir.path().display();
    // The shipped file is http-context, as in /etc/nginx/conf.d/; this is the nginx.conf
    // around it, with every path nginx writes in the temp dir. As root, workers would run as
    // `nobody`, who cannot enter the temp dir: keep them root.
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let main = format!(
        "{user}\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n\
             access_log {d}/access.log;\n\
             client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             add_header {SERVED_BY} $upstream_addr always;\n\
             include {};\n\
         }}\n",
        site_path.display()
    );
    let conf = dir.write("nginx.conf", main);
    let mut cmd = Command::new(nginx);
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"]);
    let logs = vec![dir.path().join("error.log")];
    let proxy = Proxy::start("nginx", cmd, listen, &dir, logs).await;
    let (a_name, b_name) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));

    // Round-robin over both processes.
    let served = batch(proxy.addr, 0..40, Mix::All).await;
    let (on_a, on_b) = (count(&served, &a_name), count(&served, &b_name));
    assert_eq!(on_a + on_b, 40, "{served:?}");
    assert!(on_a > 0 && on_b > 0, "not balanced: {served:?}");

    // SIGTERM to one process while requests are in flight on both, and no drain first.
    let slow = send_batch(proxy.addr, 100..100 + IN_FLIGHT, Mix::Slow);
    kettle::sleep(SIGTERM_AFTER).await;
    sigterm(&a);
    // While it finishes its requests it refuses new connections. A request nginx sends on
    // one of its kept-alive connections to A within A's short shutdown grace is still
    // answered by A (with `Connection: close`); anything else fails over to B. Either way
    // every request succeeds (`batch` checks each status and body). Idempotent requests only:
    // nginx does not pass a POST on when a connection fails under it, which is why the config
    // says to drain first.
    wait_refused(port_a).await;
    let during = batch(proxy.addr, 40..52, Mix::Idempotent).await;
    let failed_over = format!("{a_name}, {b_name}");
    assert!(
        during
            .iter()
            .all(|s| *s == a_name || *s == b_name || *s == failed_over),
        "{during:?}"
    );
    // Its requests in flight were answered, not cut.
    let slow = slow.await.unwrap();
    assert!(count(&slow, &a_name) > 0, "none in flight on A: {slow:?}");
    let status = exit_status(&mut a).await;
    assert!(status.success(), "web_app after SIGTERM: {status:?}");

    // And the survivor serves everything.
    let after = batch(proxy.addr, 52..70, Mix::All).await;
    assert_eq!(count(&after, &b_name), after.len(), "{after:?}");
    println!("nginx: {:?}", t0.elapsed());
}

/// One command to HAProxy's runtime API on `socket`; returns its answer.
async fn haproxy_command(socket: &Path, command: &str) -> String {
    let s = kettle::net::UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.write_all(format!("{command}\n").as_bytes())
        .await
        .unwrap();
    // Without `prompt`, HAProxy answers one command and closes.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = kettle::wait_for(s.read(&mut buf), Duration::from_secs(5))
            .await
            .expect("runtime API answer in time")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[kettle::test]
async fn haproxy_balances_drains_and_survives_a_backend_sigterm() {
    let Some(haproxy) = find_program("haproxy") else {
        println!("haproxy is not installed: skipped (apt-get install haproxy)");
        return;
    };
    let t0 = Instant::now();
    let (mut a, port_a) = start_backend();
    let (_b, port_b) = start_backend();
    let dir = TempDir::new("haproxy");
    let listen = free_port();
    let socket = dir.path().join("admin.sock");
    let cfg = shipped_config(
        "haproxy/kettle.cfg",
        &[
            ("127.0.0.1:8001", format!("127.0.0.1:{port_a}")),
            ("127.0.0.1:8002", format!("127.0.0.1:{port_b}")),
            ("bind :8080", format!("bind 127.0.0.1:{listen}")),
            ("/run/haproxy/admin.sock", socket.display().to_string()),
            (
                "    balance roundrobin\n",
                format!("    balance roundrobin\n    http-response set-header {SERVED_BY} %[srv_name]\n"),
            ),
        ],
    );
    let cfg = dir.write("haproxy.cfg", cfg);
    let mut cmd = Command::new(haproxy);
    cmd.arg("-f").arg(&cfg).arg("-db");
    let proxy = Proxy::start("haproxy", cmd, listen, &dir, Vec::new()).await;

    // Round-robin over both processes.
    let served = batch(proxy.addr, 0..40, Mix::All).await;
    let (on_a, on_b) = (count(&served, "k1"), count(&served, "k2"));
    assert_eq!(on_a + on_b, 40, "{served:?}");
    assert!(on_a > 0 && on_b > 0, "not balanced: {served:?}");

    // Drain k1 while requests are in flight on both, then SIGTERM it (its requests still in
    // flight): new requests go to k2 at once.
    let slow = send_batch(proxy.addr, 100..100 + IN_FLIGHT, Mix::Slow);
    kettle::sleep(SIGTERM_AFTER).await;
    let answer = haproxy_command(&socket, "set server kettle/k1 state drain").await;
    assert_eq!(answer.trim(), "", "runtime API: {answer:?}");
    sigterm(&a);
    let during = batch(proxy.addr, 40..52, Mix::All).await;
    assert_eq!(count(&during, "k2"), during.len(), "{during:?}");
    // It finished what it had in flight, and exits 0.
    let slow = slow.await.unwrap();
    assert!(count(&slow, "k1") > 0, "none in flight on k1: {slow:?}");
    let status = exit_status(&mut a).await;
    assert!(status.success(), "web_app after SIGTERM: {status:?}");

    // And the survivor serves everything.
    let after = batch(proxy.addr, 52..70, Mix::All).await;
    assert_eq!(count(&after, "k2"), after.len(), "{after:?}");
    println!("haproxy: {:?}", t0.elapsed());
}
