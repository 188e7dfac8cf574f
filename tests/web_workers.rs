//! One application on several loops: `AppGroup` / `run_app_workers` and `web_app --workers`.
//! Connections spread over the loops, graceful shutdown with requests in flight on every
//! loop (and connections still queued in the kernel) loses none, a failing worker, SIGTERM.

mod process_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kettle::client::ClientSession;
use kettle::web::{AppGroup, Application, ListenerMode, Request, ServerOptions};

/// An app whose `/` answers with the index of the worker serving it, and whose `/slow`
/// does so after `slow`.
fn app(worker: usize, slow: Duration) -> Application {
    let mut app = Application::new();
    app.router().add_get("/", move |_req: Request| async move {
        assert_eq!(kettle::worker_index(), Some(worker));
        worker.to_string()
    });
    app.router()
        .add_get("/slow", move |_req: Request| async move {
            kettle::sleep(slow).await;
            worker.to_string()
        });
    app.router()
        .add_get("/block", move |_req: Request| async move {
            // Holds the whole loop, so connections meanwhile queue in the kernel.
            std::thread::sleep(Duration::from_millis(400));
            worker.to_string()
        });
    app
}

/// `n` requests to `path`, each on a new connection, `concurrency` at a time; returns how
/// many each worker answered.
fn count_per_worker(
    addr: SocketAddr,
    path: &str,
    n: usize,
    concurrency: usize,
    workers: usize,
) -> Vec<usize> {
    let url = format!("http://{addr}{path}");
    kettle::run(async move {
        let session = ClientSession::builder()
            .header("Connection", "close")
            .build()
            .unwrap();
        let next = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let counts = std::rc::Rc::new(std::cell::RefCell::new(vec![0usize; workers]));
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (session, url, next, counts) =
                    (session.clone(), url.clone(), next.clone(), counts.clone());
                kettle::spawn(async move {
                    while next.get() < n {
                        next.set(next.get() + 1);
                        let mut resp = session.get(&url).send().await.unwrap();
                        assert_eq!(resp.status(), 200);
                        let w: usize = resp.text().await.unwrap().parse().unwrap();
                        counts.borrow_mut()[w] += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        session.close().await;
        let counts = counts.borrow().clone();
        counts
    })
}

#[test]
fn reuse_port_spreads_a_thousand_connections_within_a_quarter_of_even() {
    let group = AppGroup::start(
        |w| app(w, Duration::ZERO),
        "127.0.0.1",
        0,
        ServerOptions::default().workers(2),
    )
    .unwrap();
    assert_eq!(group.workers(), 2);
    let counts = count_per_worker(group.addrs()[0], "/", 1000, 16, 2);
    eprintln!("SO_REUSEPORT, 1000 connections: {counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 1000);
    for c in &counts {
        assert!((375..=625).contains(c), "uneven: {counts:?}");
    }
    group.shutdown().unwrap();
}

#[test]
fn a_shared_listener_serves_every_connection_on_some_worker() {
    let group = AppGroup::start(
        |w| app(w, Duration::from_millis(2)),
        "127.0.0.1",
        0,
        ServerOptions::default()
            .workers(2)
            .listener_mode(ListenerMode::Shared),
    )
    .unwrap();
    let counts = count_per_worker(group.addrs()[0], "/slow", 400, 16, 2);
    eprintln!("EPOLLEXCLUSIVE, 400 connections: {counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 400);
    group.shutdown().unwrap();
}

#[test]
fn graceful_shutdown_finishes_requests_in_flight_on_every_worker() {
    let shutdowns = Arc::new(AtomicUsize::new(0));
    let cleanups = Arc::new(AtomicUsize::new(0));
    let (s, c) = (shutdowns.clone(), cleanups.clone());
    let group = AppGroup::start(
        move |w| {
            let mut app = app(w, Duration::from_millis(600));
            let (s, c) = (s.clone(), c.clone());
            app.on_shutdown(move |_app| {
                let s = s.clone();
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            });
            app.on_cleanup(move |_app| {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            });
            app
        },
        "127.0.0.1",
        0,
        ServerOptions::default().workers(2),
    )
    .unwrap();
    let addr = group.addrs()[0];
    // Forty slow requests on forty connections: both workers have some in flight.
    let clients: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut out = String::new();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let _ = s.read_to_string(&mut out);
                out
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    group.shutdown().unwrap();
    let waited = t0.elapsed();
    let mut per_worker = [0usize; 2];
    for c in clients {
        let out = c.join().unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "lost: {out:?}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
        per_worker[out.trim_end().chars().last().unwrap().to_digit(10).unwrap() as usize] += 1;
    }
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
    assert!(
        waited >= Duration::from_millis(200),
        "shutdown did not wait: {waited:?}"
    );
    assert_eq!(shutdowns.load(Ordering::SeqCst), 2);
    assert_eq!(cleanups.load(Ordering::SeqCst), 2);
}

#[test]
fn connections_queued_in_the_kernel_at_shutdown_are_served_not_reset() {
    for mode in [ListenerMode::ReusePort, ListenerMode::Shared] {
        let group = AppGroup::start(
            |w| app(w, Duration::ZERO),
            "127.0.0.1",
            0,
            ServerOptions::default().workers(1).listener_mode(mode),
        )
        .unwrap();
        let addr = group.addrs()[0];
        // The one worker is stuck in a blocking handler; meanwhile ten clients connect and
        // send their request, which the kernel queues, and shutdown is requested.
        let blocker = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /block HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        });
        std::thread::sleep(Duration::from_millis(100));
        let queued: Vec<TcpStream> = (0..10)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s
            })
            .collect();
        group.shutdown().unwrap();
        assert!(blocker.join().unwrap().starts_with("HTTP/1.1 200 OK"));
        for (i, mut s) in queued.into_iter().enumerate() {
            let mut out = String::new();
            let r = s.read_to_string(&mut out);
            assert!(
                r.is_ok() && out.starts_with("HTTP/1.1 200 OK"),
                "{mode:?} client {i}: {r:?} {out:?}"
            );
        }
    }
}

#[test]
fn a_worker_that_cannot_start_fails_the_group_with_its_index() {
    let err = AppGroup::start(
        |w| {
            let mut app = app(w, Duration::ZERO);
            if w == 1 {
                app.on_startup(|_app| async { Err(std::io::Error::other("no database").into()) });
            }
            app
        },
        "127.0.0.1",
        0,
        ServerOptions::default().workers(2),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("worker 1") && text.contains("no database"),
        "{text}"
    );

    let err = AppGroup::start(
        |w| {
            if w == 0 {
                panic!("the factory burnt the tea");
            }
            app(w, Duration::ZERO)
        },
        "127.0.0.1",
        0,
        ServerOptions::default().workers(2),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("the factory burnt the tea"),
        "{err}"
    );

    // A port in use is reported before any worker starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = AppGroup::start(
        |w| app(w, Duration::ZERO),
        "127.0.0.1",
        port,
        ServerOptions::default().workers(2),
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn web_app_with_workers_serves_and_exits_0_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let port = process_support::free_port();
    let mut child = process_support::Reaped(
        Command::new(process_support::example("web_app"))
            .args(["--port", &port.to_string(), "--workers", "2"])
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
        format!("Server started at http://127.0.0.1:{port}... (2 workers)")
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // A request in flight when SIGTERM arrives still gets its answer.
    let in_flight = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /hello/tea HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.read_to_string(&mut out);
        out
    });
    std::thread::sleep(Duration::from_millis(150));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let out = in_flight.join().unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200 OK") && out.ends_with("<h1>hello, tea!</h1>"),
        "{out}"
    );
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_echo_server_runs_a_stream_server_on_every_loop() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let port = process_support::free_port();
    let mut child = process_support::Reaped(
        Command::new(process_support::example("echo_server_workers"))
            .args(["--port", &port.to_string(), "--workers", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    assert_eq!(
        banner.trim_end(),
        format!("Serving on 127.0.0.1:{port} with 2 workers")
    );
    for i in 0..60 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let me = s.local_addr().unwrap();
        s.write_all(format!("tea {i}").as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!("{me} Your msg tea {i}")
        );
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.0.wait().unwrap().success());
    let counts: Vec<usize> = out
        .lines()
        .map(|l| {
            let l = l.unwrap();
            l.split(' ').nth(3).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(counts.len(), 2);
    assert_eq!(counts.iter().sum::<usize>(), 60);
    assert!(
        counts.iter().all(|&c| c > 0),
        "one loop got every client: {counts:?}"
    );
}

#[test]
fn a_keep_alive_request_that_arrives_as_shutdown_begins_is_answered() {
    let group = AppGroup::start(
        |w| app(w, Duration::ZERO),
        "127.0.0.1",
        0,
        ServerOptions::default().workers(1),
    )
    .unwrap();
    let addr = group.addrs()[0];
    // A keep-alive connection that has had one answer and now sits idle.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    let n = idle.read(&mut first).unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200 OK"));
    // The loop is stuck in a blocking handler while the idle connection sends its next
    // request (as a proxy reusing it would) and shutdown is requested.
    let blocker = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /block HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    std::thread::sleep(Duration::from_millis(100));
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    group.shutdown().unwrap();
    assert!(blocker.join().unwrap().starts_with("HTTP/1.1 200 OK"));
    let mut out = String::new();
    let r = idle.read_to_string(&mut out);
    assert!(
        r.is_ok() && out.starts_with("HTTP/1.1 200 OK"),
        "{r:?} {out:?}"
    );
    assert!(
        out.to_ascii_lowercase().contains("connection: close"),
        "{out}"
    );
}
