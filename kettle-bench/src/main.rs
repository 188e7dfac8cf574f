//! # kettle-bench: Kettle and its anchors side by side
//!
//! Runs the same workload on Kettle and on its anchors in one invocation, on the same core, and
//! prints how they compare. The async workloads compare Kettle's event loop with tokio's
//! single-threaded (`current_thread`) runtime; the green-thread workloads compare Kettle's
//! generators and green threads with corosensei's bare coroutine switch (the floor), the `may`
//! crate (one worker), CPython generators and gevent. The network workloads (`echo`,
//! `http-hello`, `https-hello`) add servers built on other libraries (hyper, tokio-rustls,
//! actix-web) and runtime-free epoll floors, each in its own process on one core with the load
//! on another; `client-get` turns that around and measures HTTP clients (Kettle's, hyper's,
//! reqwest, Python aiohttp) against the epoll floor server.
//!
//! ```text
//! cargo run --release -p kettle-bench -- WORKLOAD ARGS [--runs K] [--cpu C] [--runtime R]
//!
//!   spawn N           spawn N tasks, task i returning i; await them in order; report the sum
//!   sleep N           N concurrent tasks sleeping pseudo-random 0..=1000 ms; ideal elapsed =
//!                     max delay
//!   pingpong N        N round trips between two tasks over two capacity-1 channels
//!                     (these three on kettle and tokio)
//!   gen-switch N      N send/yield round trips into a generator (kettle, corosensei, python)
//!   greenlet-switch N N greenlet switches there and back (kettle, python-greenlet)
//!   green-spawn N     spawn N green threads, thread i returning i; join all; report the sum
//!                     (kettle-green, may, python-gevent)
//!   green-sleep N     N green threads sleeping the delays of `sleep` (kettle-green, may,
//!                     python-gevent)
//!   green-pingpong N  pingpong between two green threads, beside pingpong's two async tasks
//!                     (kettle-green, kettle)
//!
//!   echo          TCP echo servers (kettle, kettle-green, tokio, bare epoll) under a
//!                 closed-loop client on another core; server CPU per round trip, throughput,
//!                 latency (see `workloads/echo` and `--help` for its options)
//!   http-hello    GET / -> 200 "Hello, World!" on Kettle (its web framework, and its runtime
//!                 without the framework: kettle-raw), hyper, actix-web and a bare-epoll floor
//!                 under wrk on another core, one request or 16 pipelined per write; server
//!                 CPU per request, req/s, p99 (see `workloads/http` and `--help` for its
//!                 options). With `--workers N` (N above 1) every server runs N workers
//!                 (Kettle's also one, as kettle-1w), unpinned beside an unpinned
//!                 `wrk -tN -c128`: requests per worker and their imbalance too, and issue
//!                 11's targets (`workloads/http/workers.rs`)
//!   https-hello   the same over TLS on kettle (the web framework with ServerOptions::tls)
//!                 and hyper with tokio-rustls, one rustls config (ring, resumption off) for
//!                 both, in two modes: keepalive (req/s, server CPU per request) and
//!                 handshake (`Connection: close`, a full handshake per request:
//!                 handshakes/s, server CPU per handshake); ratio and target lines per mode
//!                 (see `workloads/https` and `--help` for its options)
//!   client-get [N]  N GET / (default 200000; Python clients N/20) from each HTTP client
//!                 (kettle, hyper, reqwest, aiohttp, aiohttp-uvloop) over 64 keep-alive
//!                 connections, the client on one core (0), the epoll floor server on another
//!                 (1); client CPU per request, req/s, and Kettle's targets against them (see
//!                 `workloads/client_get` and `--help` for its options)
//!   ws-echo       WebSocket echo servers (kettle's web::WebSocketResponse, a bare epoll
//!                 floor, tokio-tungstenite on current_thread, Python aiohttp on asyncio and
//!                 on uvloop) under a closed-loop client on another core (N connections,
//!                 64-byte text messages); server CPU per message, messages/s, p99, and
//!                 Kettle's ratios to the floor and targets against the others
//!                 (see `workloads/ws_echo` and `--help` for its options)
//!
//!   --runs K               measurements per runtime (default 5)
//!   --cpu C                the core every measurement is pinned to (default 0)
//!   --runtime R            all (default; `both` is the same), or a comma-separated list of
//!                          the workload's runtimes
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
//! runtime); `ns_per_rt` (the round-trip workloads) is `elapsed_s` per round trip;
//! `peak_rss_mb` is the measuring process's peak resident set (`VmHWM`) in MiB. A workload's
//! first runtime is Kettle's side, and there is one ratio line for each other runtime,
//! dividing Kettle's medians by that runtime's (below 1 means Kettle is faster or smaller):
//! `elapsed` and `rss` for most workloads, `ns_per_rt` for `gen-switch`, `ns_per_rt` and `rss`
//! for `green-pingpong`.
//!
//! ## How it measures
//!
//! * Every run is a fresh child process (this executable re-run with a hidden flag), so each
//!   runtime's peak RSS is its own and no run inherits a warm allocator from the previous one.
//!   The Python anchors run `kettle-bench/python/kettle_bench.py` (embedded in the executable)
//!   in a `python3` started by that child, which reports the interpreter's own `VmHWM`.
//! * Children are pinned to one core with `sched_setaffinity`, so all runtimes see the same
//!   caches and the scheduler cannot migrate a run halfway. Helper threads (may's worker and
//!   timer threads) inherit the pin and share that core.
//! * Runs alternate between the runtimes (kettle, tokio, kettle, tokio, ...) so that slow drift
//!   in the machine (thermal, other load) hits all alike; the lines are printed grouped by
//!   runtime at the end, with progress on stderr meanwhile.
//! * The median, not the mean, summarises the runs, so one disturbed run does not move it.
//! * Checksums (`sum`, `max_delay_ms`, `delay_sum_ms`) must agree across all runs and all
//!   runtimes; if they do not, the program says so and exits with status 1, because a faster
//!   wrong answer is no result.
//! * An anchor this machine cannot run (python3 missing, gevent not installed) is skipped with
//!   a message and a `stat=skipped` line. A runtime whose child fails (may cannot allocate a
//!   stack for each of 100,000 coroutines, for one) gets a `stat=failed` line and is not run
//!   again; the other runtimes are still measured and compared.
//!
//! Exit status: 0 on success, 1 if a measurement failed or the checksums disagree (after
//! printing all that was measured), 2 for a usage error.

mod harness;
mod netbench;
mod python;
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
    /// `https-hello` or `https-server`: the same over TLS.
    Https(workloads::https::Command),
    /// `client-get` or `client-get-run`: the same, for HTTP clients against the epoll server.
    ClientGet(workloads::client_get::Command),
    /// `ws-echo`, `ws-server` or `ws-client`: the same, for WebSocket echo servers.
    WsEcho(workloads::ws_echo::Command),
}

const USAGE: &str = "\
usage: kettle-bench WORKLOAD ARGS [--runs K] [--cpu C] [--runtime all|NAME[,NAME...]]

workloads:
";

const OPTIONS: &str = "
options:
  --runs K                 measurements per runtime, each in a fresh process (default 5)
  --cpu C                  pin every measurement to core C (default 0)
  --runtime R              all of the workload's runtimes (the default; `both` means the
                           same), or a comma-separated list of them, measured in that order
  -h, --help               this message";

fn usage() -> String {
    format!(
        "{USAGE}{}{OPTIONS}\n\nnetwork (server and client in separate processes):\n{}\n{}\n{}\n{}\n{}",
        workloads::usage(),
        workloads::echo::USAGE,
        workloads::http::USAGE,
        workloads::https::USAGE,
        workloads::client_get::USAGE,
        workloads::ws_echo::USAGE
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
        | Ok(Command::Http(workloads::http::Command::Help))
        | Ok(Command::Https(workloads::https::Command::Help))
        | Ok(Command::ClientGet(workloads::client_get::Command::Help))
        | Ok(Command::WsEcho(workloads::ws_echo::Command::Help)) => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        Ok(Command::Echo(echo)) => workloads::echo::run(echo),
        Ok(Command::Http(http)) => workloads::http::run(http),
        Ok(Command::Https(https)) => workloads::https::run(https),
        Ok(Command::ClientGet(get)) => workloads::client_get::run(get),
        Ok(Command::WsEcho(ws)) => workloads::ws_echo::run(ws),
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
    if let Some(https) = workloads::https::parse(args) {
        return https.map(Command::Https);
    }
    if let Some(get) = workloads::client_get::parse(args) {
        return get.map(Command::ClientGet);
    }
    if let Some(ws) = workloads::ws_echo::parse(args) {
        return ws.map(Command::WsEcho);
    }
    let mut runs = 5usize;
    let mut cpu = 0usize;
    let mut runtime_choice: Option<String> = None;
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
            "--runtime" => runtime_choice = Some(value),
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
        if !workload.runtimes().contains(&runtime) {
            return Err(format!("`{name}` does not run on {runtime}"));
        }
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
        runtimes: choose_runtimes(&workload, runtime_choice.as_deref())?,
    })
}

/// The runtimes `--runtime` asks for: `all` (or `both`, its older name, or no option) for every
/// runtime of the workload in its own order, else a comma-separated list of the workload's
/// runtimes, measured in the order given.
fn choose_runtimes(workload: &Workload, choice: Option<&str>) -> Result<Vec<Runtime>, String> {
    let own = workload.runtimes();
    let all = || own.to_vec();
    let Some(choice) = choice.filter(|c| !matches!(*c, "all" | "both")) else {
        return Ok(all());
    };
    let mut chosen = Vec::new();
    for name in choice.split(',') {
        let runtime = Runtime::from_name(name)
            .filter(|rt| own.contains(rt))
            .ok_or_else(|| {
                let names: Vec<&str> = own.iter().map(|rt| rt.name()).collect();
                format!(
                    "--runtime for `{}` takes all or a comma-separated list of {}; got `{name}`",
                    workload.name(),
                    names.join(", ")
                )
            })?;
        if chosen.contains(&runtime) {
            return Err(format!("--runtime names {runtime} twice"));
        }
        chosen.push(runtime);
    }
    Ok(chosen)
}

/// One measurement: pin, run, print one result line with the peak RSS last.
fn child(workload: Workload, runtime: Runtime, cpu: usize) -> ExitCode {
    if let Err(e) = harness::pin_to_cpu(cpu) {
        eprintln!("kettle-bench: cannot pin to CPU {cpu}: {e}");
        return ExitCode::FAILURE;
    }
    let result = match workload.run(runtime) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("kettle-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut line = Fields::new()
        .with("runtime", runtime)
        .with("workload", workload.name())
        .with_all(workload.params())
        .with_all(result);
    // A runtime that ran in a process of its own (Python) reported that process's peak; this
    // process only waited for it.
    if line.get("peak_rss_mb").is_none() {
        match harness::peak_rss_mib() {
            Ok(mib) => line.push("peak_rss_mb", format_args!("{mib:.1}")),
            Err(e) => {
                eprintln!("kettle-bench: cannot read peak RSS: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{line}");
    ExitCode::SUCCESS
}

/// What became of one runtime in a comparison.
#[derive(Default)]
struct Group {
    /// The result lines of its successful runs.
    lines: Vec<Fields>,
    /// The run that failed, after which the runtime was not run again.
    failed_run: Option<usize>,
    /// Why it was not run at all (an optional anchor missing from this machine).
    skipped: Option<String>,
}

/// The parent: runs the children, then prints the run lines, medians and the ratios.
///
/// A runtime that cannot run here (an optional Python anchor) is skipped with a message, and
/// one whose child fails is reported as failed and not run again; either way the others are
/// still measured and compared. A failure makes the exit status 1 once everything is printed.
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

    let mut groups: Vec<Group> = runtimes
        .iter()
        .map(|rt| Group {
            skipped: rt.unavailable(),
            ..Group::default()
        })
        .collect();
    for (group, rt) in groups.iter().zip(runtimes) {
        if let Some(why) = &group.skipped {
            eprintln!("kettle-bench: skipping {rt}: {why}");
        }
    }
    for run in 1..=runs {
        for (group, &rt) in groups.iter_mut().zip(runtimes) {
            if group.skipped.is_some() || group.failed_run.is_some() {
                continue;
            }
            eprintln!("kettle-bench: {} run {run}/{runs} on {rt}", workload.name());
            match harness::run_child(rt, cpu, workload_args) {
                Ok(line) => group.lines.push(line),
                Err(e) => {
                    eprintln!("kettle-bench: {e}; {rt} is not run again");
                    group.failed_run = Some(run);
                }
            }
        }
    }

    // Lines that say what happened to a runtime besides its results: identity, then the
    // parameters, like a median line.
    let status_line = |rt: Runtime, stat: &str| {
        Fields::new()
            .with("runtime", rt)
            .with("workload", workload.name())
            .with("stat", stat)
    };
    let mut medians: Vec<(Runtime, Fields)> = Vec::new();
    for (group, &rt) in groups.iter().zip(runtimes) {
        for line in &group.lines {
            println!("{line}");
        }
        if group.skipped.is_some() {
            println!("{}", status_line(rt, "skipped").with_all(workload.params()));
        } else if let Some(run) = group.failed_run {
            let line = status_line(rt, "failed")
                .with("run", run)
                .with_all(workload.params());
            println!("{line}");
        } else {
            let median = harness::median(&group.lines);
            println!("{median}");
            medians.push((rt, median));
        }
    }

    // The workload's first runtime over each other one, when both have medians.
    let subject = workload.runtimes()[0];
    if let Some((_, mine)) = medians.iter().find(|(rt, _)| *rt == subject) {
        for (other, theirs) in medians.iter().filter(|(rt, _)| *rt != subject) {
            let mut line = format!("ratio {subject}/{other}");
            for (label, key) in workload.ratio_keys() {
                line += &format!(" {label}={}", harness::ratio(mine, theirs, key));
            }
            let about = Fields::new()
                .with("workload", workload.name())
                .with_all(workload.params());
            println!("{line} {about}");
        }
    }

    let mut status = ExitCode::SUCCESS;
    let failed: Vec<&str> = groups
        .iter()
        .zip(runtimes)
        .filter(|(g, _)| g.failed_run.is_some())
        .map(|(_, rt)| rt.name())
        .collect();
    if !failed.is_empty() {
        eprintln!("kettle-bench: failed on {}", failed.join(", "));
        status = ExitCode::FAILURE;
    }
    if groups.iter().all(|g| g.lines.is_empty()) {
        eprintln!("kettle-bench: nothing was measured");
        status = ExitCode::FAILURE;
    }
    let all: Vec<&Fields> = groups.iter().flat_map(|g| &g.lines).collect();
    let problems = harness::inconsistencies(&all);
    if !problems.is_empty() {
        eprintln!("kettle-bench: the runs disagree on their results, the timings are void:");
        for p in problems {
            eprintln!("  {p}");
        }
        status = ExitCode::FAILURE;
    }
    status
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
                runtimes: vec![Runtime::Kettle, Runtime::Tokio],
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
    fn runtimes_per_workload() {
        let runtimes = |s: &str| match parse_str(s) {
            Ok(Command::Bench { runtimes, .. }) => runtimes,
            other => panic!("{s:?} gave {other:?}"),
        };
        assert_eq!(runtimes("spawn 3 --runtime both"), runtimes("spawn 3"));
        assert_eq!(runtimes("spawn 3 --runtime all"), runtimes("spawn 3"));
        assert_eq!(
            runtimes("sleep 3 --runtime tokio,kettle"),
            [Runtime::Tokio, Runtime::Kettle]
        );
        assert_eq!(
            runtimes("gen-switch 3 --runtime=python,corosensei"),
            [Runtime::Python, Runtime::Corosensei]
        );
        assert_eq!(runtimes("green-sleep 3 --runtime may"), [Runtime::May]);
    }

    #[test]
    fn network_commands_go_to_their_modules() {
        assert!(matches!(
            parse_str("client-get 1000 --runs 1"),
            Ok(Command::ClientGet(workloads::client_get::Command::Bench(_)))
        ));
        assert!(matches!(
            parse_str("--cpu 1 client-get-run --client reqwest --port 1 --requests 1 --warmup 0"),
            Ok(Command::ClientGet(workloads::client_get::Command::Run(_)))
        ));
        assert!(matches!(
            parse_str("client-get --help"),
            Ok(Command::ClientGet(workloads::client_get::Command::Help))
        ));
        assert!(matches!(parse_str("http-hello"), Ok(Command::Http(_))));
        assert!(matches!(
            parse_str("https-hello --mode handshake"),
            Ok(Command::Https(workloads::https::Command::Bench(_)))
        ));
        assert!(matches!(
            parse_str("https-server --help"),
            Ok(Command::Https(workloads::https::Command::Help))
        ));
        assert!(matches!(parse_str("echo"), Ok(Command::Echo(_))));
        assert!(matches!(
            parse_str("ws-echo --runs 3 --secs 5 --server tungstenite"),
            Ok(Command::WsEcho(workloads::ws_echo::Command::Bench(_)))
        ));
        assert!(parse_str("client-get --runtime tokio").is_err());
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
            "spawn 3 --runtime may",
            "spawn 3 --runtime kettle,kettle",
            "spawn 3 --runtime kettle,",
            "gen-switch 3 --runtime tokio",
            "--child-run may spawn 3",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(parse_str("spawn 3 --help"), Ok(Command::Help));
    }
}
