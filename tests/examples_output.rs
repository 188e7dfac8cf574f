//! Runs the seed demos (built by `cargo test` alongside the tests) and checks that each prints
//! what its seed shows.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// `target/<profile>/examples/<name>`, next to this test's own `deps/` directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    profile_dir.join("examples").join(name)
}

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
