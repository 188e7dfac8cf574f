//! # kettle-bench: Kettle and tokio side by side
//!
//! Runs the same workload on Kettle and on tokio's single-threaded (`current_thread`) runtime in
//! one invocation, on the same core, and prints how they compare. The network workloads (`echo`,
//! `http-hello`) add servers built on other libraries (hyper, actix-web) and runtime-free epoll
//! floors, each in its own process on one core with the load on another.
//!
//! ```text
//! cargo run --release -p kettle-bench -- WORKLOAD ARGS [--runs K] [--cpu C] [--runtime R]
//!
//!   spawn N       spawn N tasks, task i returning i; await them in order; report the sum
//!   sleep N       N concurrent tasks sleeping pseudo-random 0..=1000 ms; ideal elapsed = max delay
//!   pingpong N    N round trips between two tasks over two capacity-1 channels
//!
//!   echo          TCP echo servers (kettle, tokio, bare epoll) under a closed-loop client on
//!                 another core; server CPU per round trip, throughput, latency
//!                 (see `workloads/echo` and `--help` for its options)
//!   http-hello    GET / -> 200 "Hello, World!" on Kettle (for now its runtime without the web
//!                 framework: kettle-raw), hyper, actix-web and a bare-epoll floor under wrk on
//!                 another core, one request or 16 pipelined per write; server CPU per
//!                 request, req/s, p99 (see `workloads/http` and `--help` for its options)
//!
//!   --runs K               measurements per runtime (default 5)
//!   --cpu C                the core every measurement is pinned to (default 0)
//!   --runtime R            kettle, tokio or both (default both)
//! ```
//!
//! For example `cargo run --release -p kettle-bench -- spawn 1000000 --runs 5` prints (figures
//! from a 2-core VM; yours will differ)
//!
//! ```text
//! runtime=kettle workload=spawn n=1000000 elapsed_s=0.169448 sum=499999500000 peak_rss_mb=162.1
//! ...                                       (one line per run)
//! runtime=kettle workload=spawn stat=median runs=5 n=1000000 elapsed_s=0.167254 sum=499999500000 peak_rss_mb=162.3
//! runtime=tokio ...                         (the same for tokio)
//! ratio kettle/tokio elapsed=0.382 rss=0.504 workload=spawn n=1000000
//! ```
//!
//! Every result line is space-separated `key=value` pairs, so it can be grepped and parsed
//! without a schema. `elapsed_s` covers the workload only (not building or tearing down the
//! runtime); `peak_rss_mb` is the child process's peak resident set (`VmHWM`) in MiB; the
//! ratio line divides Kettle's medians by tokio's (below 1 means Kettle is faster or smaller).
//!
//! ## How it measures
//!
//! * Every run is a fresh child process (this executable re-run with a hidden flag), so each
//!   runtime's peak RSS is its own and no run inherits a warm allocator from the previous one.
//! * Children are pinned to one core with `sched_setaffinity`, so both runtimes see the same
//!   caches and the scheduler cannot migrate a run halfway.
//! * Runs alternate between the runtimes (kettle, tokio, kettle, tokio, ...) so that slow drift
//!   in the machine (thermal, other load) hits both alike; the lines are printed grouped by
//!   runtime at the end, with progress on stderr meanwhile.
//! * The median, not the mean, summarises the runs, so one disturbed run does not move it.
//! * Checksums (`sum`, `max_delay_ms`) must agree across all runs and both runtimes; if they do
//!   not, the program says so and exits with status 1, because a faster wrong answer is no
//!   result.
//!
//! Exit status: 0 on success, 1 if a measurement failed or the checksums disagree, 2 for a usage
//! error.

mod harness;
mod netbench;
mod sys;
mod workloads;

use std::process::ExitCode;

use harness::{Fields, Runtime};
use workloads::Workload;

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    /// `--help`.
    Help,
    /// The parent: measure `workload` on `runtimes`, `runs` times each, in children.
    Bench {
        workload: Workload,
        /// The workload name and its arguments, passed on verbatim to the children.
        workload_args: Vec<String>,
        runs: usize,
        cpu: usize,
        runtimes: Vec<Runtime>,
    },
    /// A child (hidden `--child-run RUNTIME`): one measurement in this process.
    Child {
        workload: Workload,
        runtime: Runtime,
        cpu: usize,
    },
    /// `echo`, `echo-server` or `echo-client`: two processes on two cores, run by their own
    /// module.
    Echo(workloads::echo::Command),
    /// `http-hello` or `http-server`: the same, for HTTP servers under wrk.
    Http(workloads::http::Command),
}

const USAGE: &str = "\
usage: kettle-bench WORKLOAD ARGS [--runs K] [--cpu C] [--runtime kettle|tokio|both]

workloads:
";

const OPTIONS: &str = "
options:
  --runs K                 measurements per runtime, each in a fresh process (default 5)
  --cpu C                  pin every measurement to core C (default 0)
  --runtime R              kettle, tokio or both (default both)
  -h, --help               this message";

fn usage() -> String {
    format!(
        "{USAGE}{}\n{OPTIONS}\n\nnetwork (server and client in separate processes):\n{}\n{}",
        workloads::USAGE,
        workloads::echo::USAGE,
        workloads::http::USAGE
    )
}

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(s) => args.push(s),
            Err(bad) => return usage_error(&format!("argument {bad:?} is not valid UTF-8")),
        }
    }
    match parse(&args) {
        Ok(Command::Help)
        | Ok(Command::Echo(workloads::echo::Command::Help))
        | Ok(Command::Http(workloads::http::Command::Help)) => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        Ok(Command::Echo(echo)) => workloads::echo::run(echo),
        Ok(Command::Http(http)) => workloads::http::run(http),
        Ok(Command::Child {
            workload,
            runtime,
            cpu,
        }) => child(workload, runtime, cpu),
        Ok(Command::Bench {
            workload,
            workload_args,
            runs,
            cpu,
            runtimes,
        }) => bench(workload, &workload_args, runs, cpu, &runtimes),
        Err(msg) => usage_error(&msg),
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("kettle-bench: {msg}\n\n{}", usage());
    ExitCode::from(2)
}

/// Splits the global options from the workload and its arguments. Options may appear anywhere
/// (before or after the workload) as `--opt VALUE` or `--opt=VALUE`; everything else, including
/// options this function does not know, belongs to the workload, so a future `--port` needs no
/// change here.
fn parse(args: &[String]) -> Result<Command, String> {
    if let Some(echo) = workloads::echo::parse(args) {
        return echo.map(Command::Echo);
    }
    if let Some(http) = workloads::http::parse(args) {
        return http.map(Command::Http);
    }
    let mut runs = 5usize;
    let mut cpu = 0usize;
    let mut runtime_choice: Option<Vec<Runtime>> = None;
    let mut child_runtime = None;
    let mut rest = Vec::new();

    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !matches!(name, "--runs" | "--cpu" | "--runtime" | harness::CHILD_FLAG) {
            rest.push(arg.clone());
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .ok_or_else(|| format!("option {name} needs a value"))?;
                i += 1;
                v.clone()
            }
        };
        match name {
            "--runs" => {
                runs = value
                    .parse()
                    .ok()
                    .filter(|&k| k > 0)
                    .ok_or_else(|| format!("--runs needs a positive integer, got `{value}`"))?;
            }
            "--cpu" => {
                cpu = value
                    .parse()
                    .map_err(|_| format!("--cpu needs a core number, got `{value}`"))?;
            }
            "--runtime" => {
                runtime_choice = Some(match value.as_str() {
                    "both" => Runtime::ALL.to_vec(),
                    other => vec![Runtime::from_name(other).ok_or_else(|| {
                        format!("--runtime must be kettle, tokio or both, got `{other}`")
                    })?],
                });
            }
            _ => {
                child_runtime = Some(
                    Runtime::from_name(&value)
                        .ok_or_else(|| format!("bad child runtime `{value}`"))?,
                );
            }
        }
    }

    let (name, workload_args) = rest
        .split_first()
        .ok_or_else(|| "no workload given".to_string())?;
    let workload = Workload::parse(name, workload_args)?;

    if let Some(runtime) = child_runtime {
        return Ok(Command::Child {
            workload,
            runtime,
            cpu,
        });
    }
    Ok(Command::Bench {
        workload,
        workload_args: rest.clone(),
        runs,
        cpu,
        runtimes: runtime_choice.unwrap_or_else(|| Runtime::ALL.to_vec()),
    })
}

/// One measurement: pin, run, print one result line with the peak RSS last.
fn child(workload: Workload, runtime: Runtime, cpu: usize) -> ExitCode {
    if let Err(e) = harness::pin_to_cpu(cpu) {
        eprintln!("kettle-bench: cannot pin to CPU {cpu}: {e}");
        return ExitCode::FAILURE;
    }
    let result = workload.run(runtime);
    let peak = match harness::peak_rss_mib() {
        Ok(mib) => format!("{mib:.1}"),
        Err(e) => {
            eprintln!("kettle-bench: cannot read peak RSS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let line = Fields::new()
        .with("runtime", runtime)
        .with("workload", workload.name())
        .with_all(workload.params())
        .with_all(result)
        .with("peak_rss_mb", peak);
    println!("{line}");
    ExitCode::SUCCESS
}

/// The parent: runs the children, then prints the run lines, medians and the ratio.
fn bench(
    workload: Workload,
    workload_args: &[String],
    runs: usize,
    cpu: usize,
    runtimes: &[Runtime],
) -> ExitCode {
    match harness::allowed_cpus() {
        Ok(cpus) if !cpus.contains(&cpu) => {
            return usage_error(&format!("--cpu {cpu} is not available; usable: {cpus:?}"));
        }
        Ok(_) => {}
        Err(e) => eprintln!("kettle-bench: cannot read the CPU affinity ({e}); trying anyway"),
    }

    let mut lines: Vec<Vec<Fields>> = vec![Vec::new(); runtimes.len()];
    for run in 1..=runs {
        for (slot, &rt) in runtimes.iter().enumerate() {
            eprintln!("kettle-bench: {} run {run}/{runs} on {rt}", workload.name());
            match harness::run_child(rt, cpu, workload_args) {
                Ok(line) => lines[slot].push(line),
                Err(e) => {
                    eprintln!("kettle-bench: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }

    let mut medians = Vec::new();
    for runtime_lines in &lines {
        for line in runtime_lines {
            println!("{line}");
        }
        let median = harness::median(runtime_lines);
        println!("{median}");
        medians.push(median);
    }

    if let [kettle, tokio] = &medians[..] {
        if runtimes == Runtime::ALL {
            println!(
                "ratio kettle/tokio elapsed={} rss={} {}",
                harness::ratio(kettle, tokio, "elapsed_s"),
                harness::ratio(kettle, tokio, "peak_rss_mb"),
                Fields::new()
                    .with("workload", workload.name())
                    .with_all(workload.params())
            );
        }
    }

    let all: Vec<&Fields> = lines.iter().flatten().collect();
    let problems = harness::inconsistencies(&all);
    if !problems.is_empty() {
        eprintln!("kettle-bench: the runs disagree on their results, the timings are void:");
        for p in problems {
            eprintln!("  {p}");
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Command, String> {
        let args: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    #[test]
    fn defaults_and_options_anywhere() {
        assert_eq!(
            parse_str("--runs=3 spawn 10 --cpu 1 --runtime tokio"),
            Ok(Command::Bench {
                workload: Workload::Spawn { n: 10 },
                workload_args: vec!["spawn".into(), "10".into()],
                runs: 3,
                cpu: 1,
                runtimes: vec![Runtime::Tokio],
            })
        );
        assert_eq!(
            parse_str("sleep 5"),
            Ok(Command::Bench {
                workload: Workload::Sleep { n: 5 },
                workload_args: vec!["sleep".into(), "5".into()],
                runs: 5,
                cpu: 0,
                runtimes: Runtime::ALL.to_vec(),
            })
        );
    }

    #[test]
    fn child_flag() {
        assert_eq!(
            parse_str("--child-run kettle --cpu 0 pingpong 7"),
            Ok(Command::Child {
                workload: Workload::PingPong { n: 7 },
                runtime: Runtime::Kettle,
                cpu: 0,
            })
        );
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "",
            "teapot 3",
            "spawn",
            "spawn x",
            "spawn 3 --runs",
            "spawn 3 --runs 0",
            "spawn 3 --cpu -1",
            "spawn 3 --runtime go",
            "spawn 3 --port 80",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(parse_str("spawn 3 --help"), Ok(Command::Help));
    }
}
