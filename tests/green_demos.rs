//! The coroutine demos run as processes: seed 001/002's generator producer/consumer with
//! Python's exact output, the greenlet A/B program, gevent's spawn and monkey-patch programs,
//! and concurrent downloads from local servers.

mod process_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use process_support::example;

/// Runs example `name` with `args` to completion; its stdout lines, exit code and run time.
fn run(name: &str, args: &[&str]) -> (Vec<String>, Option<i32>, Duration) {
    let start = Instant::now();
    let out = Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let elapsed = start.elapsed();
    let lines = String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(str::to_string)
        .collect();
    (lines, out.status.code(), elapsed)
}

#[test]
fn producer_consumer_gen_prints_pythons_output_exactly() {
    let (lines, code, _) = run("producer_consumer_gen", &[]);
    assert_eq!(code, Some(0));
    let expected: Vec<String> = (1..=5)
        .flat_map(|n| {
            [
                format!("[PRODUCER] Producing {n}..."),
                format!("[CONSUMER] Consuming {n}..."),
                "[PRODUCER] Consumer return: 200 OK".to_string(),
            ]
        })
        .collect();
    assert_eq!(lines, expected);
}

#[test]
fn greenlet_alternates_a_and_b_half_a_second_apart() {
    let (lines, code, elapsed) = run("greenlet", &["--rounds", "3"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        lines,
        ["---A--", "---B--", "---A--", "---B--", "---A--", "---B--"]
    );
    // Five half-second sleeps run between the six lines (the last one after B's last line
    // happens before the program returns): about 2.5–3 s, generously bounded.
    assert!(elapsed >= Duration::from_millis(2400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    let (_, code, _) = run("greenlet", &["--rounds", "x"]);
    assert_eq!(code, Some(2), "a bad argument is a usage error");
}

#[test]
fn gevent_spawn_runs_in_order_then_interleaves() {
    let (lines, code, elapsed) = run("gevent_spawn", &["--sleep-ms", "100"]);
    assert_eq!(code, Some(0));
    let body: Vec<&String> = lines.iter().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(body.len(), 30, "{lines:?}");
    let who = |line: &str| {
        line.rsplit_once(' ')
            .map(|(g, i)| (g.to_string(), i.to_string()))
            .unwrap()
    };
    for line in &body {
        assert!(
            line.starts_with("<Greenlet at 0x") && line.contains(": f(5)> "),
            "{line}"
        );
    }
    // Part one: g1's five lines, then g2's, then g3's.
    let first: Vec<(String, String)> = body[..15].iter().map(|l| who(l)).collect();
    for g in 0..3 {
        for i in 0..5 {
            assert_eq!(first[g * 5 + i].0, first[g * 5].0);
            assert_eq!(first[g * 5 + i].1, i.to_string());
        }
    }
    assert!(first[0].0 != first[5].0 && first[5].0 != first[10].0);
    // Part two: round by round, each of the three once per round.
    let second: Vec<(String, String)> = body[15..].iter().map(|l| who(l)).collect();
    for round in 0..5 {
        let names: Vec<&String> = second[round * 3..round * 3 + 3]
            .iter()
            .map(|(g, _)| g)
            .collect();
        assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2]);
        assert!(second[round * 3..round * 3 + 3]
            .iter()
            .all(|(_, i)| *i == round.to_string()));
    }
    // Five rounds of 100 ms sleeps, overlapping: ~0.5 s, not 1.5 s.
    assert!(elapsed < Duration::from_millis(1400), "{elapsed:?}");
}

#[test]
fn gevent_patch_interleaves_two_workers() {
    let (lines, code, _) = run("gevent_patch", &["--max-sleep-ms", "30"]);
    assert_eq!(code, Some(0));
    assert_eq!(lines.len(), 20, "{lines:?}");
    for worker in ["work1", "work2"] {
        let mine: Vec<&String> = lines.iter().filter(|l| l.starts_with(worker)).collect();
        let expected: Vec<String> = (0..10).map(|i| format!("{worker} {i}")).collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "each counts 0..10 in order"
        );
    }
    // Both start before either sleeps, so the first two lines are one of each: interleaved.
    assert_eq!(lines[0], "work1 0");
    assert_eq!(lines[1], "work2 0");
}

/// A one-shot HTTP server on a std thread: answers every connection after `delay` with
/// `response`; returns its URL.
fn serve(response: &'static [u8], delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/page", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                std::thread::sleep(delay);
                let _ = stream.write_all(response);
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
            });
        }
    });
    url
}

#[test]
fn gevent_download_fetches_concurrently_and_reports_failures() {
    let delay = Duration::from_millis(400);
    let sized = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
        delay,
    );
    let chunked = serve(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n",
        delay,
    );
    let until_close = serve(b"HTTP/1.0 200 OK\r\n\r\n0123456789abcdef", delay);
    let refused = format!("http://127.0.0.1:{}/", process_support::free_port());
    let (lines, code, elapsed) = run(
        "gevent_download",
        &[&sized, &chunked, &until_close, &refused],
    );
    assert_eq!(code, Some(1), "one URL failed: {lines:?}");
    for url in [&sized, &chunked, &until_close, &refused] {
        assert!(lines.contains(&format!("GET: {url}")), "{lines:?}");
    }
    assert!(
        lines.contains(&format!("11 bytes received from {sized}.")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("12 bytes received from {chunked}.")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("16 bytes received from {until_close}.")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("failed: {refused}: "))),
        "{lines:?}"
    );
    // All GET lines come first (every green thread starts before any answer arrives), and the
    // three 400 ms answers overlap.
    assert!(
        lines[..4].iter().all(|l| l.starts_with("GET: ")),
        "{lines:?}"
    );
    assert!(elapsed < Duration::from_millis(1100), "{elapsed:?}");

    let (_, code, _) = run("gevent_download", &[&sized]);
    assert_eq!(code, Some(0));
}
