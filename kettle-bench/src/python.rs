//! The Python anchors: `kettle-bench/python/kettle_bench.py`, embedded in this executable and
//! run as `python3 -c SOURCE WORKLOAD N` (and `client-get`'s `client_get.py`, run the same way
//! with its own arguments).
//!
//! The script is embedded rather than looked up on disk so the benchmark works from wherever
//! the executable is; the file stays runnable by hand. It runs as a child of the measuring
//! child, which has already pinned itself, so the interpreter inherits the core. It prints the
//! same `key=value` fields as the Rust sides, its own peak RSS (`VmHWM`) last: the child passes
//! that through instead of its own, which would only measure the waiting Rust process.

use std::process::{Command, Stdio};

use crate::harness::{self, Fields};

/// The interpreter, looked up on `PATH` (so an activated virtualenv is used when there is one).
pub const PYTHON: &str = "python3";

/// The script's source.
const SCRIPT: &str = include_str!("../python/kettle_bench.py");

/// Why the interpreter cannot run the anchors here, or `None` if it can: `python3` must start
/// and, when `module` is given, import it (`gevent` for the green-thread anchors).
pub fn missing(module: Option<&str>) -> Option<String> {
    let code = match module {
        Some(m) => format!("import {m}"),
        None => String::new(),
    };
    match Command::new(PYTHON)
        .args(["-c", &code])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(_) => Some(match module {
            Some(m) => format!("{PYTHON} cannot import {m} (pip install {m})"),
            None => format!("{PYTHON} does not run"),
        }),
        Err(e) => Some(format!("cannot start {PYTHON}: {e}")),
    }
}

/// Runs `workload n` in the script and returns its result line (measurements, checksums, then
/// `peak_rss_mb`).
pub fn run(workload: &str, n: u64) -> Result<Fields, String> {
    run_script(workload, SCRIPT, &[workload, &n.to_string()])
}

/// Runs the Python `source` with `args` (its `sys.argv[1:]`) and returns the last line it
/// printed, which must end with `peak_rss_mb` like every result line. `what` names the run in
/// messages. Other workloads' scripts (`client-get`'s) run through here too.
pub fn run_script(what: &str, source: &str, args: &[&str]) -> Result<Fields, String> {
    let output = Command::new(PYTHON)
        .args(["-c", source])
        .args(args)
        .stdin(Stdio::null())
        // Inherited, so a traceback reaches the terminal as it happens.
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {PYTHON}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{PYTHON} {what} failed ({}); its output: {}",
            output.status,
            stdout.trim()
        ));
    }
    harness::last_line(&stdout)
        .filter(|line| line.get("peak_rss_mb").is_some())
        .ok_or_else(|| format!("{PYTHON} {what} printed no result line: {stdout:?}"))
}
