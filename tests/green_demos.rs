//! Runs seed 002's generator, greenlet and gevent demos as processes (built by `cargo test`
//! alongside the tests) and checks that each prints what the seed shows: exact lines where
//! the seed's output is fixed, the ordering rules where it is timing-dependent, and generous
//! time bounds where the point of the demo is how long it takes.
//!
//! `gevent_download` runs against plain `std::net` HTTP servers started here on 127.0.0.1:
//! a `Content-Length` body, a chunked one, a close-delimited one, a redirect, a 404, a port
//! that refuses, a server that never answers, one whose head never ends.

mod process_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use process_support::{example, free_port, Reaped};

/// What a demo did: its exit code, its stdout lines, its stderr, how long it ran.
struct Run {
    code: Option<i32>,
    lines: Vec<String>,
    stderr: String,
    elapsed: Duration,
}

/// Runs example `name` with `args`; kills it and fails the test if it runs past `limit`
/// (so a hung demo fails fast instead of hanging the suite).
fn run(name: &str, args: &[&str], limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Reaped(
        Command::new(example(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}")),
    );
    // Read the pipes on threads so a chatty child never blocks on a full one.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).map(|_| text)
        })
    };
    let stdout = drain(Box::new(child.0.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.0.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < limit,
            "{name} {args:?} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let text = stdout.join().unwrap().expect("utf-8 output");
    Run {
        code: status.code(),
        lines: text.lines().map(str::to_string).collect(),
        stderr: stderr.join().unwrap().expect("utf-8 errors"),
        elapsed,
    }
}

#[test]
fn producer_consumer_gen_prints_the_seeds_15_lines_exactly() {
    let out = run("producer_consumer_gen", &[], Duration::from_secs(20));
    assert_eq!(out.code, Some(0));
    let mut expected = Vec::new();
    for n in 1..=5 {
        expected.push(format!("[PRODUCER] Producing {n}..."));
        expected.push(format!("[CONSUMER] Consuming {n}..."));
        expected.push("[PRODUCER] Consumer return: 200 OK".to_string());
    }
    assert_eq!(out.lines, expected);
}

#[test]
fn greenlet_alternates_a_and_b_half_a_second_apart() {
    let out = run("greenlet", &["--rounds", "3"], Duration::from_secs(20));
    assert_eq!(out.code, Some(0));
    assert_eq!(
        out.lines,
        ["---A--", "---B--", "---A--", "---B--", "---A--", "---B--"]
    );
    // Five blocking sleeps of 0.5 s between the six lines (the last switch back ends gr1).
    assert!(
        out.elapsed >= Duration::from_secs(2) && out.elapsed < Duration::from_secs(6),
        "took {:?}",
        out.elapsed
    );
}

/// Splits `<Greenlet at 0x...: f(5)> I` into the greenlet part and `I`.
fn greenlet_line(line: &str) -> (&str, u32) {
    assert!(line.starts_with("<Greenlet at 0x"), "{line:?}");
    let (who, i) = line.rsplit_once(' ').unwrap();
    assert!(who.ends_with(": f(5)>"), "{line:?}");
    (who, i.parse().unwrap())
}

#[test]
fn gevent_spawn_runs_in_order_then_interleaves_by_round() {
    let out = run(
        "gevent_spawn",
        &["--sleep-ms", "100"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(0));
    let lines: Vec<&str> = out
        .lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(lines.len(), 30, "{lines:#?}");
    let parsed: Vec<(&str, u32)> = lines.iter().map(|l| greenlet_line(l)).collect();

    // Without sleeping: g1's five lines, then g2's, then g3's.
    let (first, second) = parsed.split_at(15);
    let order: Vec<&str> = (0..3).map(|g| first[g * 5].0).collect();
    assert!(order[0] != order[1] && order[1] != order[2] && order[0] != order[2]);
    for (k, (who, i)) in first.iter().enumerate() {
        assert_eq!((*who, *i), (order[k / 5], (k % 5) as u32), "{lines:#?}");
    }

    // With a sleep after each line: round by round, the three in the same order each round.
    let order: Vec<&str> = second[..3].iter().map(|(who, _)| *who).collect();
    assert!(order[0] != order[1] && order[1] != order[2] && order[0] != order[2]);
    for (k, (who, i)) in second.iter().enumerate() {
        assert_eq!((*who, *i), (order[k % 3], (k / 3) as u32), "{lines:#?}");
    }
    // Five rounds of 100 ms, shared: about half a second, nowhere near 1.5 s.
    let took = out.lines.last().unwrap();
    assert!(took.starts_with("# took "), "{took}");
    assert!(
        out.elapsed < Duration::from_millis(1400),
        "{:?}",
        out.elapsed
    );
}

/// Checks gevent_patch's output: ten lines per worker in order, interleaved.
fn check_patch_output(lines: &[String]) {
    assert_eq!(lines.len(), 20, "{lines:#?}");
    for name in ["work1", "work2"] {
        let mine: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with(name))
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("{name} {i}")).collect();
        assert_eq!(mine, expected, "{lines:#?}");
    }
    // Both print their first line before either's first sleep ends: never all of work1 and
    // then all of work2.
    assert_eq!(lines[..2], ["work1 0", "work2 0"], "{lines:#?}");
    let last_work1 = lines.iter().rposition(|l| l.starts_with("work1")).unwrap();
    let first_work2 = lines.iter().position(|l| l.starts_with("work2")).unwrap();
    assert!(first_work2 < last_work1, "{lines:#?}");
}

#[test]
fn gevent_patch_interleaves_two_workers_with_random_sleeps() {
    for args in [
        &["--max-sleep-ms", "20", "--seed", "7"][..],
        &["--max-sleep-ms", "20", "--seed", "0"][..],
        &["--max-sleep-ms", "20"][..],
    ] {
        let out = run("gevent_patch", args, Duration::from_secs(20));
        assert_eq!(out.code, Some(0), "{args:?}");
        check_patch_output(&out.lines);
        // At most ten sleeps of 20 ms each, side by side.
        assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    }
    let out = run("gevent_patch", &["--seed", "x"], Duration::from_secs(20));
    assert_eq!(out.code, Some(2), "a bad option is a usage error");
    assert!(out.lines.is_empty());
    assert!(
        out.stderr.starts_with("usage: gevent_patch"),
        "{}",
        out.stderr
    );
}

/// A plain `std::net` HTTP server for one test: each connection on its own thread reads the
/// request head, reports it, waits `delay`, writes what `respond` makes of the request head,
/// and closes. Returns the address and the channel of request heads.
fn http_server(
    delay: Duration,
    respond: impl Fn(&str) -> Vec<u8> + Send + Sync + Clone + 'static,
) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let (heads, respond) = (heads.clone(), respond.clone());
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut head = String::new();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let response = respond(&head);
                let _ = heads.send(head);
                std::thread::sleep(delay);
                let _ = conn.write_all(&response);
            });
        }
    });
    (addr, received)
}

/// A whole response with a `Content-Length` body.
fn with_length(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A chunked response whose chunks have the given sizes, with an extension and a trailer.
fn chunked(sizes: &[usize]) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for (k, size) in sizes.iter().enumerate() {
        let ext = if k == 0 { ";name=value" } else { "" };
        r.extend_from_slice(format!("{size:X}{ext}\r\n").as_bytes());
        r.extend(std::iter::repeat_n(b'c', *size));
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    r
}

#[test]
fn gevent_download_counts_every_framing_and_reports_failures_while_others_succeed() {
    let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    let no_delay = Duration::ZERO;
    let (length_addr, length_heads) = http_server(no_delay, move |_| with_length(&big));
    let (chunked_addr, _) = http_server(no_delay, |_| chunked(&[10, 4096, 1, 70_000]));
    let (close_addr, _) = http_server(no_delay, |_| {
        let mut r = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\n".to_vec();
        r.extend(std::iter::repeat_n(b'x', 777));
        r
    });
    let (redirect_addr, redirect_heads) = http_server(no_delay, |head| {
        if head.starts_with("GET /old ") {
            b"HTTP/1.1 302 Found\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            with_length(b"moved here")
        }
    });
    let (missing_addr, _) = http_server(no_delay, |_| {
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec()
    });
    let urls = [
        format!("http://{length_addr}/file?x=1"),
        format!("http://{chunked_addr}/chunked"),
        format!("http://localhost:{}/", close_addr.port()),
        format!("http://{redirect_addr}/old"),
        format!("http://{missing_addr}/nothing"),
        format!("http://127.0.0.1:{}/", free_port()),
        "https://127.0.0.1/".to_string(),
    ];
    let args: Vec<&str> = urls.iter().map(String::as_str).collect();
    let out = run("gevent_download", &args, Duration::from_secs(30));
    assert_eq!(out.code, Some(1), "some URLs failed: {:#?}", out.lines);

    let has = |line: &str| out.lines.iter().any(|l| l == line);
    for url in &urls {
        assert!(has(&format!("GET: {url}")), "{url}: {:#?}", out.lines);
    }
    let received = [
        (&urls[0], 300_000),
        (&urls[1], 10 + 4096 + 1 + 70_000),
        (&urls[2], 777),
        (&urls[3], 10),
    ];
    for (url, n) in received {
        assert!(
            has(&format!("{n} bytes received from {url}.")),
            "{url}: {:#?}",
            out.lines
        );
    }
    let failed = |url: &str| {
        out.lines
            .iter()
            .find(|l| l.starts_with(&format!("download {url} failed: ")))
            .unwrap_or_else(|| panic!("no failure line for {url}: {:#?}", out.lines))
            .clone()
    };
    assert!(failed(&urls[4]).contains("HTTP Error 404: Not Found"));
    assert!(failed(&urls[5]).to_lowercase().contains("refused"));
    assert!(failed(&urls[6]).contains("https is not supported"));
    assert_eq!(out.lines.len(), 2 * urls.len(), "{:#?}", out.lines);

    // The request is a proper HTTP/1.1 GET.
    let head = length_heads.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(head.starts_with("GET /file?x=1 HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nHost: {length_addr}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    let first = redirect_heads.recv_timeout(Duration::from_secs(5)).unwrap();
    let second = redirect_heads.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(first.starts_with("GET /old "), "{first}");
    assert!(second.starts_with("GET /new "), "{second}");
}

#[test]
fn gevent_download_fetches_concurrently() {
    let delay = Duration::from_millis(300);
    let urls: Vec<String> = (0..3)
        .map(|i| {
            let (addr, _) = http_server(delay, move |_| with_length(&vec![b'z'; 1000 + i]));
            format!("http://{addr}/{i}")
        })
        .collect();
    let args: Vec<&str> = urls.iter().map(String::as_str).collect();
    let out = run("gevent_download", &args, Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{:#?} {}", out.lines, out.stderr);
    // All three requests start before any finishes...
    for (k, url) in urls.iter().enumerate() {
        assert_eq!(out.lines[k], format!("GET: {url}"), "{:#?}", out.lines);
    }
    let mut done: Vec<&str> = out.lines[3..].iter().map(String::as_str).collect();
    done.sort();
    let mut expected: Vec<String> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| format!("{} bytes received from {url}.", 1000 + i))
        .collect();
    expected.sort();
    assert_eq!(done, expected);
    // ...and three 300 ms waits overlap: one after the other they would take 900 ms.
    assert!(out.elapsed >= delay, "{:?}", out.elapsed);
    assert!(
        out.elapsed < Duration::from_millis(800),
        "{:?}",
        out.elapsed
    );
}

#[test]
fn gevent_download_gives_up_on_a_silent_server_and_an_endless_head() {
    // Accepts and reads the request, then says nothing for far longer than the timeout.
    let (silent, _) = http_server(Duration::from_secs(20), |_| Vec::new());
    // A head that never ends: header lines well past the 64 KiB bound.
    let (endless, _) = http_server(Duration::ZERO, |_| {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..10_000 {
            r.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "f".repeat(20)).as_bytes());
        }
        r
    });
    let urls = [format!("http://{silent}/"), format!("http://{endless}/")];
    let out = run(
        "gevent_download",
        &["--timeout-ms", "400", &urls[0], &urls[1]],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "{:#?}", out.lines);
    let line = |url: &str| {
        out.lines
            .iter()
            .find(|l| l.starts_with(&format!("download {url} failed: ")))
            .unwrap_or_else(|| panic!("no failure line for {url}: {:#?}", out.lines))
            .clone()
    };
    assert!(line(&urls[0]).contains("timed out"), "{}", line(&urls[0]));
    assert!(line(&urls[1]).contains("longer than"), "{}", line(&urls[1]));
    assert!(
        out.elapsed >= Duration::from_millis(400) && out.elapsed < Duration::from_secs(5),
        "{:?}",
        out.elapsed
    );
}
