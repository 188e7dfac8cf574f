//! Runs the seed demos (built by `cargo test` alongside the tests) and checks that each prints
//! what its seed shows.

mod process_support;

use std::process::Command;
use std::time::{Duration, Instant};

use process_support::{example, free_port, start_example};

fn run(name: &str) -> (Vec<String>, Duration) {
    let path = example(name);
    let t0 = Instant::now();
    let out = Command::new(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let elapsed = t0.elapsed();
    assert!(out.status.success(), "{name} failed: {out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    (text.lines().map(str::to_string).collect(), elapsed)
}

#[test]
fn producer_consumer_matches_seed_001_line_for_line() {
    let (lines, _) = run("producer_consumer");
    let mut expected = Vec::new();
    for n in 1..=5 {
        expected.push(format!("[PRODUCER] Producing {n}..."));
        expected.push(format!("[CONSUMER] Consuming {n}..."));
        expected.push("[PRODUCER] Consumer return: 200 OK".to_string());
    }
    assert_eq!(lines, expected);
}

#[test]
fn hello_prints_both_greetings_then_both_farewells_on_one_thread() {
    let (lines, elapsed) = run("hello");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with("Hello world! (") && lines[1].starts_with("Hello world! ("));
    assert!(lines[2].starts_with("Hello again! (") && lines[3].starts_with("Hello again! ("));
    let thread = |l: &str| l[l.find('(').unwrap()..].to_string();
    assert!(
        lines.iter().all(|l| thread(l) == thread(&lines[0])),
        "{lines:?}"
    );
    // One second of sleeping, shared: not two.
    assert!(elapsed >= Duration::from_secs(1));
    assert!(elapsed < Duration::from_millis(1900), "took {elapsed:?}");
}

#[test]
fn a_b_interleave_alternates() {
    let (lines, _) = run("a_b_interleave");
    assert_eq!(
        lines,
        ["a.x 0", "b.x a", "a.x 1", "b.x b", "a.x 2", "b.x c"]
    );
}

#[test]
fn echo_server_answers_each_client_with_its_own_address() {
    use std::io::{Read, Write};
    // Bound for the whole test: dropping it kills the server.
    let (_server, port, banner) = start_example("echo_server");
    assert_eq!(banner, format!("Serving on 127.0.0.1:{port}"));

    let clients: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for (i, mut c) in clients.iter().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let me = c.local_addr().unwrap();
        let msg = format!("hello {i}");
        c.write_all(msg.as_bytes()).unwrap();
        let expected = format!("{me} Your msg {msg}");
        let mut reply = vec![0u8; expected.len()];
        c.read_exact(&mut reply).unwrap();
        assert_eq!(String::from_utf8(reply).unwrap(), expected);
    }
}

#[test]
fn wget_prints_every_header_line_and_survives_an_unreachable_host() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request).unwrap();
        conn.write_all(b"HTTP/1.0 200 OK\r\nServer: test\r\nX-Seed: 001\r\n\r\nbody")
            .unwrap();
    });
    let down = format!("127.0.0.1:{}", free_port());
    let out = Command::new(example("wget"))
        .args([up.to_string(), down.clone()])
        .output()
        .expect("run wget");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mine: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with(&up.to_string()))
        .collect();
    assert_eq!(
        mine,
        [
            format!("{up} header > HTTP/1.0 200 OK"),
            format!("{up} header > Server: test"),
            format!("{up} header > X-Seed: 001"),
        ]
    );
    assert!(
        lines.contains(&format!("wget {up}...").as_str()),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("wget {down} failed:"))),
        "{lines:?}"
    );
}
