//! Driving wrk: finding it, the pipelining script, the command line, and reading its report.
//!
//! wrk is the load generator the issue asks for (Debian's `wrk` package, 4.1). It runs as
//! `taskset -c CLIENT wrk -t1 -cN -dSs --latency [-s SCRIPT] http://127.0.0.1:P/`, or for
//! `https-hello` with an `https://` URL and perhaps `-H "Connection: close"`; `http-hello
//! --workers W` runs `wrk -tW` unpinned instead.
//!
//! What its numbers mean here:
//!
//! * `requests` and `Requests/sec` count responses wrk parsed completely, one per response,
//!   pipelined or not, over wrk's whole run (connecting included). Responses the server sent
//!   but wrk had not parsed when its time was up are not counted.
//! * The latency distribution is recorded once per batch: with pipelining, from the write of
//!   16 requests to the last of their 16 responses. `p99` is therefore a batch latency there.
//! * wrk fails a request after its 2 s timeout, and counts connection errors, both shown in
//!   the report and summed into `wrk_errors`.

use std::path::PathBuf;

/// The pipelining script. wrk calls `init` once per thread, then `request()` whenever a
/// connection may send: it returns `DEPTH` GET requests formatted by `wrk.format` (with
/// wrk's Host header) as one string, so they go out in one write, and wrk then expects
/// `DEPTH` responses before sending the next batch. `DEPTH` is replaced by the `--pipeline`
/// value when the script is written.
pub const PIPELINE_LUA: &str = r#"-- kettle-bench http-hello: DEPTH pipelined GET / requests per write.
local depth = DEPTH
local batch

init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format("GET", "/")
   end
   batch = table.concat(r)
end

request = function()
   return batch
end
"#;

/// The script for `depth` requests per write.
pub fn pipeline_script(depth: usize) -> String {
    PIPELINE_LUA.replace("DEPTH", &depth.to_string())
}

/// A temporary file, removed when dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    /// Writes `contents` to a new file in the temporary directory named after `stem`, this
    /// process and `tag`.
    pub fn create(stem: &str, tag: &str, contents: &str) -> std::io::Result<TempFile> {
        let path = std::env::temp_dir().join(format!("{stem}-{}-{tag}.lua", std::process::id()));
        std::fs::write(&path, contents)?;
        Ok(TempFile(path))
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The full path of the executable `name` on `PATH`, if there is one.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The wrk command line (without `taskset`) for `threads` threads sharing `conns`
/// connections for `secs` seconds against 127.0.0.1:`port`, with the pipelining script if
/// given.
pub fn args(
    threads: usize,
    conns: usize,
    secs: u64,
    port: u16,
    script: Option<&std::path::Path>,
) -> Vec<String> {
    command(
        threads,
        conns,
        secs,
        &format!("http://127.0.0.1:{port}/"),
        &[],
        script,
    )
}

/// The wrk command line (without `taskset`) for `threads` threads sharing `conns` connections
/// for `secs` seconds against `url` (`https://` makes wrk speak TLS, through the OpenSSL it
/// links), adding each of `headers` (`Name: value`) to every request, with a Lua script if
/// given.
pub fn command(
    threads: usize,
    conns: usize,
    secs: u64,
    url: &str,
    headers: &[&str],
    script: Option<&std::path::Path>,
) -> Vec<String> {
    let mut args = vec![
        format!("-t{threads}"),
        format!("-c{conns}"),
        format!("-d{secs}s"),
        "--latency".to_string(),
    ];
    for header in headers {
        args.push("-H".to_string());
        args.push(header.to_string());
    }
    if let Some(script) = script {
        args.push("-s".to_string());
        args.push(script.display().to_string());
    }
    args.push(url.to_string());
    args
}

/// What this benchmark reads from a wrk report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Responses parsed (`N requests in ...`).
    pub requests: u64,
    /// `Requests/sec`.
    pub req_per_s: f64,
    /// The 50% and 99% lines of the latency distribution, in microseconds.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// Socket errors (connect, read, write, timeout) plus non-2xx/3xx responses.
    pub errors: u64,
}

/// Reads wrk's report (its stdout, run with `--latency`).
pub fn parse(out: &str) -> Result<Report, String> {
    let mut requests = None;
    let mut req_per_s = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut errors = 0u64;
    let mut in_distribution = false;
    for line in out.lines() {
        let line = line.trim();
        if line == "Latency Distribution" {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            if let Some((pct, value)) = line.split_once('%') {
                let us = parse_time_us(value.trim())
                    .ok_or_else(|| format!("cannot read the latency in {line:?}"))?;
                match pct.trim() {
                    "50" => p50 = Some(us),
                    "99" => p99 = Some(us),
                    _ => {}
                }
                continue;
            }
            in_distribution = false;
        }
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            req_per_s = rest.trim().parse::<f64>().ok();
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            requests = n.trim().parse::<u64>().ok();
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in rest.split(',') {
                let n = part
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok());
                errors += n.ok_or_else(|| format!("cannot read {line:?}"))?;
            }
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += rest
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("cannot read {line:?}"))?;
        }
    }
    let missing = |what: &str| format!("no {what} in wrk's output:\n{out}");
    Ok(Report {
        requests: requests.ok_or_else(|| missing("request count"))?,
        req_per_s: req_per_s.ok_or_else(|| missing("Requests/sec"))?,
        p50_us: p50.ok_or_else(|| missing("50% latency"))?,
        p99_us: p99.ok_or_else(|| missing("99% latency"))?,
        errors,
    })
}

/// A wrk time (`512.00us`, `1.25ms`, `2.00s`, `1.50m`, `1.00h`) in microseconds.
fn parse_time_us(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
Running 3s test @ http://127.0.0.1:40001/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   412.33us  101.27us   5.10ms   90.11%
    Req/Sec   155.02k     6.10k  162.40k    83.33%
  Latency Distribution
     50%  398.00us
     75%  430.00us
     90%  480.00us
     99%    1.02ms
  463012 requests in 3.00s, 64.47MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec: 154311.87
Transfer/sec:     21.49MB
";

    #[test]
    fn reads_a_report() {
        assert_eq!(
            parse(REPORT),
            Ok(Report {
                requests: 463012,
                req_per_s: 154311.87,
                p50_us: 398.0,
                p99_us: 1020.0,
                errors: 7,
            })
        );
        let clean = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(parse(&clean).map(|r| r.errors), Ok(0));
        assert!(parse("Running 3s test\n").is_err());
    }

    #[test]
    fn time_units() {
        assert_eq!(parse_time_us("512.00us"), Some(512.0));
        assert_eq!(parse_time_us("1.25ms"), Some(1250.0));
        assert_eq!(parse_time_us("2.00s"), Some(2e6));
        assert_eq!(parse_time_us("1.50m"), Some(90e6));
        assert_eq!(parse_time_us("3.00"), None);
        assert_eq!(parse_time_us("3.00ns"), None);
    }

    #[test]
    fn script_and_command_line() {
        let s = pipeline_script(16);
        assert!(s.contains("local depth = 16\n"), "{s}");
        assert!(s.contains("wrk.format(\"GET\", \"/\")"));
        assert!(!s.contains("DEPTH"));
        assert_eq!(
            args(1, 64, 10, 8080, Some(std::path::Path::new("/tmp/p.lua"))).join(" "),
            "-t1 -c64 -d10s --latency -s /tmp/p.lua http://127.0.0.1:8080/"
        );
        assert_eq!(
            args(2, 128, 3, 1, None).join(" "),
            "-t2 -c128 -d3s --latency http://127.0.0.1:1/"
        );
        // One argument per header, spaces and all.
        let tls = command(
            1,
            64,
            5,
            "https://127.0.0.1:2/",
            &["Connection: close"],
            None,
        );
        assert_eq!(
            tls,
            [
                "-t1",
                "-c64",
                "-d5s",
                "--latency",
                "-H",
                "Connection: close",
                "https://127.0.0.1:2/"
            ]
        );
    }
}
