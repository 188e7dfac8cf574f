//! Running the project's example programs as processes, for the tests that check a demo's
//! output or signal handling: finding the built binary, a free port, a child that is killed
//! when the test ends, and starting a server example that prints a banner line.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// `target/<profile>/examples/<name>`, next to this test's own `deps/` directory (built by
/// `cargo test` with the tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test` (which builds the examples) or \
         `cargo build --examples` first",
        path.display()
    );
    path
}

/// Kills the child when the test ends, pass or fail, so no server outlives the test.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts example `name` with `--port <free port>` and reads the first line it prints (its
/// banner, printed once it listens). Returns the child, the port and the banner without its
/// line end.
pub fn start_example(name: &str) -> (Reaped, u16, String) {
    let port = free_port();
    let mut child = Reaped(
        Command::new(example(name))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}")),
    );
    let mut banner = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    banner.truncate(banner.trim_end().len());
    (child, port, banner)
}
