//! `client-get`: N `GET /` requests from each HTTP client against the epoll floor server, and
//! what each client costs per request.
//!
//! The mirror image of `http-hello`: there the servers are measured under a fixed client
//! (wrk), here the clients are measured against a fixed server, the cheapest there is (the
//! bare-epoll `http-server --server epoll`, [`crate::workloads::http`]), so that a client's
//! cost is its own. Like the other network benchmarks it needs two processes on two cores:
//!
//! * `client-get [N] [--conns C] [--runs K] [--client ...] [--python-requests M]
//!   [--server-cpu S] [--client-cpu C]` starts the epoll server in a child pinned to the server
//!   core (once, for all runs), then runs each client in a child pinned to the client core, in
//!   turn (kettle, hyper, reqwest, aiohttp, aiohttp-uvloop, kettle, ...), and prints a line per
//!   run, the median per client, `ratio` lines and `target` lines.
//! * `client-get-run --client NAME --port P --requests N --warmup W --conns C [--cpu C]
//!   [--server-pid PID]` is one such child: one client's run against a server already
//!   listening, printing one result line.
//!
//! Every client does the same: `C` concurrent request loops sharing one client (session,
//! pool) whose connection limit is `C`, so there are `C` keep-alive connections, each loop
//! making one request at a time, checking that each response is 200 with the body
//! `Hello, World!` ([`load::check`]; anything else fails the run). A warm-up phase of
//! `max(C, requests / 10)` requests opens the connections and warms caches; the measured phase
//! that follows makes `requests` more. The clients:
//!
//! * `kettle`: Kettle's `ClientSession` ([`kettle_client`]).
//! * `hyper`: hyper 1.x's low-level HTTP/1 client, a connection per loop, on tokio
//!   `current_thread` ([`hyper_client`]).
//! * `reqwest`: reqwest on tokio `current_thread` ([`reqwest_client`]).
//! * `aiohttp`, `aiohttp-uvloop`: Python aiohttp's `ClientSession` on asyncio's loop and on
//!   uvloop's ([`aiohttp_client`]); skipped, with a message, where `python3` cannot import
//!   aiohttp (or uvloop). Python is two orders of magnitude slower per request, so these make
//!   `M` requests (`--python-requests`, default N/20); every figure is per request or per
//!   second, so the runs still compare.
//!
//! The result keys: `requests` (measured), `elapsed_s`, `req_per_s`, `client_cpu_us_per_req`
//! (the client process's user + system CPU time over the measured phase, all threads, from
//! `getrusage`, per request: the figure this benchmark is about), `server_cpu_us_per_req` (the
//! server's, from `/proc/PID/stat`), `client_cpu_util` and `server_cpu_util` (shares of one
//! core over the phase: a client near 1.0 is CPU-bound, which on one core it should be), and
//! the client process's `peak_rss_mb`. The server's count of answered requests must equal the
//! sum of every run's warm-up and measured requests, or the benchmark fails.
//!
//! Process CPU time leaves out what the kernel spends in softirq context on the loopback
//! packets (with IRQ time accounting it is charged to no process); that is the same per request
//! for every client, so the comparison holds, but the core is busier than `client_cpu_util`
//! says. Other load on the machine shows as `client_cpu_util` and `server_cpu_util` both well
//! below 1 (on an idle machine, 64 connections keep one side or the other busy all the time):
//! such runs measure the neighbours too.
//!
//! Ratios divide Kettle's medians by each other client's (or, without Kettle, the first
//! client's), as in the other workloads. The `target` lines check the goals of Kettle's client
//! against the anchors (issue 10): client CPU per request at most 0.8x reqwest's and at most
//! hyper's, and at least 10x aiohttp's requests per second. The reference figures, on
//! one core with 64 connections against the epoll floor: aiohttp 7.4 k req/s at 135 us client
//! CPU per request, aiohttp on uvloop 9.1 k req/s at 110 us.

mod aiohttp_client;
mod hyper_client;
mod kettle_client;
mod load;
mod report;
mod reqwest_client;

use std::process::{ExitCode, Stdio};

use load::Measured;

use crate::harness::{self, Fields};
use crate::netbench::{self, fail, ServerProcess};

/// The usage lines for the two commands.
pub const USAGE: &str = "  client-get [N] [--conns C] [--runs K] [--client all|NAME[,NAME...]]
             [--python-requests M] [--server-cpu S] [--client-cpu C]
                each HTTP client (kettle, hyper, reqwest, aiohttp, aiohttp-uvloop) in a child
                on one core makes N GET / over C keep-alive connections (C loops sharing one
                client) to the epoll floor server on another; client CPU per request, req/s;
                medians, ratios, targets. defaults: N 200000, --conns 64, --runs 5, Python
                clients M = N/20, server on CPU 1, clients on CPU 0; aiohttp needs python3
                with aiohttp (and uvloop)
  client-get-run --client NAME --port P --requests N --warmup W --conns C [--cpu C]
                 [--server-pid PID]
                one client's run against a server on 127.0.0.1:P (what client-get runs)";

/// Which HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Kettle's `ClientSession`, the subject.
    Kettle,
    /// hyper 1.x's low-level HTTP/1 client on tokio `current_thread`.
    Hyper,
    /// reqwest on tokio `current_thread`.
    Reqwest,
    /// Python aiohttp on asyncio's own loop.
    Aiohttp,
    /// Python aiohttp on uvloop.
    AiohttpUvloop,
}

impl Client {
    /// Every client, in the order runs alternate and results print; `--client all`.
    pub const ALL: [Client; 5] = [
        Client::Kettle,
        Client::Hyper,
        Client::Reqwest,
        Client::Aiohttp,
        Client::AiohttpUvloop,
    ];

    /// The name on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Client::Kettle => "kettle",
            Client::Hyper => "hyper",
            Client::Reqwest => "reqwest",
            Client::Aiohttp => "aiohttp",
            Client::AiohttpUvloop => "aiohttp-uvloop",
        }
    }

    /// The client called `s`.
    fn from_name(s: &str) -> Result<Client, String> {
        match Client::ALL.into_iter().find(|c| c.name() == s) {
            Some(c) => Ok(c),
            None => Err(format!(
                "unknown client `{s}`; available: {}",
                Client::ALL.map(Client::name).join(", ")
            )),
        }
    }

    /// Whether it runs in Python (and so makes `--python-requests` requests).
    fn is_python(self) -> bool {
        matches!(self, Client::Aiohttp | Client::AiohttpUvloop)
    }

    /// Why it cannot run here, or `None` if it can: the Python ones need their packages.
    fn unavailable(self) -> Option<String> {
        use crate::python::missing;
        match self {
            Client::Aiohttp => missing(Some("aiohttp")),
            Client::AiohttpUvloop => missing(Some("aiohttp")).or_else(|| missing(Some("uvloop"))),
            _ => None,
        }
    }
}

/// `client-get-run` arguments: one client's run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    /// Which client.
    pub client: Client,
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// Requests in the measured phase.
    pub requests: u64,
    /// Requests in the warm-up phase before it (0: none).
    pub warmup: u64,
    /// Concurrent request loops, and the client's connection limit.
    pub conns: usize,
    /// The core to pin to.
    pub cpu: usize,
    /// The server process, whose CPU time is measured too if given.
    pub server_pid: Option<u32>,
}

impl RunArgs {
    /// The URL every request goes to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// `client-get` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Runs per client.
    pub runs: usize,
    /// The clients to measure, in this order.
    pub clients: Vec<Client>,
    /// Measured requests per run of a Rust client.
    pub requests: u64,
    /// Measured requests per run of a Python client.
    pub python_requests: u64,
    /// Connections (and request loops) per client.
    pub conns: usize,
    /// The core the server is pinned to.
    pub server_cpu: usize,
    /// The core every client is pinned to.
    pub client_cpu: usize,
}

impl BenchArgs {
    /// The measured requests of one run of `client`.
    fn requests_for(&self, client: Client) -> u64 {
        if client.is_python() {
            self.python_requests
        } else {
            self.requests
        }
    }

    /// The parameters that make runs comparable, as result-line fields.
    fn params(&self) -> Fields {
        Fields::new().with("conns", self.conns)
    }
}

/// The warm-up before `requests` measured requests over `conns` connections: a tenth of the
/// run, and at least one request per connection so that all are open before the clock starts.
fn warmup_for(requests: u64, conns: usize) -> u64 {
    (requests / 10).max(conns as u64)
}

/// A parsed client-get command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h` or `--help` anywhere.
    Help,
    /// `client-get-run`.
    Run(RunArgs),
    /// `client-get`.
    Bench(BenchArgs),
}

const DEFAULT_REQUESTS: u64 = 200_000;
/// The Python clients' share of N by default: 20 times fewer requests keep their runs about as
/// long as the Rust clients'.
const PYTHON_DIVISOR: u64 = 20;
const DEFAULT_CONNS: usize = 64;
/// One fd each in the client and in the server; beyond this the run measures fd limits.
const MAX_CONNS: usize = 10_000;
/// A bound that keeps a typo from starting a run of days.
const MAX_REQUESTS: u64 = 1_000_000_000;

/// Parses the command line if it is a client-get command: `None` if neither `client-get` nor
/// `client-get-run` appears among the arguments. Options may come before or after the command
/// word, as `--opt V` or `--opt=V`; `client-get` also takes N as its one plain argument.
pub fn parse(args: &[String]) -> Option<Result<Command, String>> {
    let at = args
        .iter()
        .position(|a| matches!(a.as_str(), "client-get" | "client-get-run"))?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Some(Ok(Command::Help));
    }
    let rest: Vec<&String> = args[..at].iter().chain(&args[at + 1..]).collect();
    Some(parse_command(&args[at], &rest))
}

/// Splits the plain arguments (those that are neither an option nor an option's separate
/// value) from the options.
fn split_positional<'a>(args: &[&'a String]) -> (Vec<&'a String>, Vec<&'a String>) {
    let mut plain = Vec::new();
    let mut options = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        i += 1;
        if !arg.starts_with("--") {
            plain.push(arg);
            continue;
        }
        options.push(arg);
        // `--opt V`: the next word is the option's value, whatever it looks like.
        if !arg.contains('=') {
            if let Some(&value) = args.get(i) {
                options.push(value);
                i += 1;
            }
        }
    }
    (plain, options)
}

fn parse_command(command: &str, args: &[&String]) -> Result<Command, String> {
    let (plain, options) = if command == "client-get" {
        split_positional(args)
    } else {
        (Vec::new(), args.to_vec())
    };
    let allowed: &[&str] = match command {
        "client-get-run" => &[
            "--client",
            "--port",
            "--requests",
            "--warmup",
            "--conns",
            "--cpu",
            "--server-pid",
        ],
        _ => &[
            "--conns",
            "--runs",
            "--client",
            "--python-requests",
            "--server-cpu",
            "--client-cpu",
        ],
    };
    let opts = netbench::options(command, &options, allowed)?;
    let get = |name: &str| {
        opts.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let int = |what: &str, value: &str, min: u64, max: u64| -> Result<u64, String> {
        value
            .replace('_', "")
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("{what} needs an integer from {min} to {max}, got `{value}`"))
    };
    let opt_int = |name: &str, default: u64, min: u64, max: u64| match get(name) {
        None => Ok(default),
        Some(v) => int(name, v, min, max),
    };
    let cpu = |name: &str, default: usize| -> Result<usize, String> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name} needs a core number, got `{v}`")),
        }
    };
    let conns = opt_int("--conns", DEFAULT_CONNS as u64, 1, MAX_CONNS as u64)? as usize;

    if command == "client-get-run" {
        let required = |name: &str| get(name).ok_or_else(|| format!("`{command}` needs {name}"));
        return Ok(Command::Run(RunArgs {
            client: Client::from_name(required("--client")?)?,
            port: int("--port", required("--port")?, 1, u16::MAX as u64)? as u16,
            requests: int("--requests", required("--requests")?, 1, MAX_REQUESTS)?,
            warmup: int("--warmup", required("--warmup")?, 0, MAX_REQUESTS)?,
            conns,
            cpu: cpu("--cpu", 0)?,
            server_pid: match get("--server-pid") {
                None => None,
                Some(v) => Some(int("--server-pid", v, 1, i32::MAX as u64)? as u32),
            },
        }));
    }

    let requests = match plain.as_slice() {
        [] => DEFAULT_REQUESTS,
        [n] => int("N", n, 1, MAX_REQUESTS)?,
        [_, extra, ..] => return Err(format!("`{command}` takes one N, got also `{extra}`")),
    };
    let clients = match get("--client") {
        None | Some("all") => Client::ALL.to_vec(),
        Some(list) => {
            let mut clients = Vec::new();
            for name in list.split(',') {
                let client = Client::from_name(name)?;
                if clients.contains(&client) {
                    return Err(format!("client {name} named twice in --client"));
                }
                clients.push(client);
            }
            clients
        }
    };
    Ok(Command::Bench(BenchArgs {
        runs: opt_int("--runs", 5, 1, 1000)? as usize,
        clients,
        requests,
        python_requests: opt_int(
            "--python-requests",
            (requests / PYTHON_DIVISOR).max(1),
            1,
            MAX_REQUESTS,
        )?,
        conns,
        server_cpu: cpu("--server-cpu", 1)?,
        client_cpu: cpu("--client-cpu", 0)?,
    }))
}

/// Runs a parsed client-get command (not `Help`, which the caller prints) and returns the exit
/// code.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Help => ExitCode::SUCCESS,
        Command::Run(args) => run_client(&args),
        Command::Bench(args) => bench(&args),
    }
}

/// `client-get-run`: pin, run the client, print its result line.
fn run_client(args: &RunArgs) -> ExitCode {
    if let Err(e) = harness::pin_to_cpu(args.cpu) {
        return fail(&format!("cannot pin to CPU {}: {e}", args.cpu));
    }
    let client = args.client;
    let measured = match client {
        Client::Kettle => kettle_client::run(args),
        Client::Hyper => hyper_client::run(args),
        Client::Reqwest => reqwest_client::run(args),
        Client::Aiohttp | Client::AiohttpUvloop => aiohttp_client::run(client.name(), args),
    };
    let line = measured.and_then(|m| {
        let peak = match m.peak_rss_mb {
            Some(mib) => mib,
            None => harness::peak_rss_mib().map_err(|e| format!("cannot read peak RSS: {e}"))?,
        };
        Ok(result_line(client, args.conns, &m, peak))
    });
    match line {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("client-get {}: {e}", client.name())),
    }
}

/// The result line of one run: identity, parameters, measurements, peak RSS last.
fn result_line(client: Client, conns: usize, m: &Measured, peak_rss_mb: f64) -> Fields {
    let secs = m.elapsed.as_secs_f64();
    let requests = m.requests.max(1) as f64;
    let per_req_us = |cpu: std::time::Duration| cpu.as_secs_f64() * 1e6 / requests;
    let mut line = Fields::new()
        .with("client", client.name())
        .with("workload", "client-get")
        .with("conns", conns)
        .with("requests", m.requests)
        .elapsed(m.elapsed)
        .with("req_per_s", format_args!("{:.0}", m.requests as f64 / secs))
        .with(
            "client_cpu_us_per_req",
            format_args!("{:.3}", per_req_us(m.client_cpu)),
        );
    if let Some(server) = m.server_cpu {
        line.push(
            "server_cpu_us_per_req",
            format_args!("{:.3}", per_req_us(server)),
        );
    }
    line.push(
        "client_cpu_util",
        format_args!("{:.3}", m.client_cpu.as_secs_f64() / secs),
    );
    if let Some(server) = m.server_cpu {
        line.push(
            "server_cpu_util",
            format_args!("{:.3}", server.as_secs_f64() / secs),
        );
    }
    line.with("peak_rss_mb", format_args!("{peak_rss_mb:.1}"))
}

/// One run of `client` against the server: a `client-get-run` child, its line checked.
fn measure(client: Client, args: &BenchArgs, server: &ServerProcess) -> Result<Fields, String> {
    let requests = args.requests_for(client);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let output = std::process::Command::new(exe)
        .args(["client-get-run", "--client", client.name()])
        .args(["--port", &server.port().to_string()])
        .args(["--requests", &requests.to_string()])
        .args(["--warmup", &warmup_for(requests, args.conns).to_string()])
        .args(["--conns", &args.conns.to_string()])
        .args(["--cpu", &args.client_cpu.to_string()])
        .args(["--server-pid", &server.pid().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the {} client: {e}", client.name()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the {} client failed ({})",
            client.name(),
            output.status
        ));
    }
    let line = harness::last_line(&stdout).ok_or_else(|| {
        format!(
            "the {} client printed no result line: {stdout:?}",
            client.name()
        )
    })?;
    if line.get("requests") != Some(requests.to_string().as_str()) {
        return Err(format!(
            "the {} client was asked for {requests} requests but reports {line}",
            client.name()
        ));
    }
    if report::looks_disturbed(&line) {
        eprintln!(
            "kettle-bench: warning: neither the {} client nor the server kept its core busy \
             (client_cpu_util={}, server_cpu_util={}): other load on the machine?",
            client.name(),
            line.get("client_cpu_util").unwrap_or("?"),
            line.get("server_cpu_util").unwrap_or("?")
        );
    }
    Ok(line)
}

/// Stops the server and checks that it answered exactly `sent` requests (false, with a message,
/// if not): every request was made and checked by a client, so any difference means a client
/// counted requests that never reached the server, or made some it did not count.
fn server_answered(server: ServerProcess, sent: u64) -> bool {
    let answered = server.stop().map(|tail| {
        tail.iter()
            .filter_map(|l| Fields::parse(l))
            .find_map(|f| f.get("answered").and_then(|n| n.parse::<u64>().ok()))
    });
    match answered {
        Ok(Some(n)) if n == sent => true,
        Ok(Some(n)) => {
            eprintln!(
                "kettle-bench: the epoll server answered {n} requests but the clients made {sent}"
            );
            false
        }
        Ok(None) => {
            eprintln!("kettle-bench: the epoll server did not report its count");
            false
        }
        Err(e) => {
            eprintln!("kettle-bench: {e}");
            false
        }
    }
}

/// `client-get`: the server, every run of every client, then the lines, medians, ratios and
/// targets. Exit status 1 if a run failed, the server's count disagrees or the runs disagree
/// on their parameters.
fn bench(args: &BenchArgs) -> ExitCode {
    if let Err(code) = netbench::check_cpus(args.server_cpu, args.client_cpu) {
        return code;
    }
    let mut clients = Vec::new();
    let mut skipped = Vec::new();
    for &client in &args.clients {
        match client.unavailable() {
            Some(why) => {
                eprintln!("kettle-bench: skipping {}: {why}", client.name());
                skipped.push(client);
            }
            None => clients.push(client),
        }
    }
    if clients.is_empty() {
        return fail("client-get: none of the clients asked for can run here");
    }

    let server_args: Vec<String> = [
        "http-server",
        "--port",
        "0",
        "--server",
        "epoll",
        "--cpu",
        &args.server_cpu.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let server = match ServerProcess::start("epoll", &server_args) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // Every request any client makes, warm-up included: what the server must have answered.
    let mut sent = 0u64;
    let lines = netbench::alternate(
        "client-get",
        args.runs,
        &clients,
        |c| c.name().to_string(),
        |c| {
            let line = measure(c, args, &server)?;
            let requests = args.requests_for(c);
            sent += requests + warmup_for(requests, args.conns);
            Ok(line)
        },
    );
    let lines = match lines {
        Ok(lines) => lines,
        // Dropping `server` kills it.
        Err(e) => return fail(&e),
    };
    let mut ok = server_answered(server, sent);

    let medians: Vec<(Client, Fields)> = clients
        .iter()
        .copied()
        .zip(netbench::print_with_medians(&lines))
        .collect();
    for &client in &skipped {
        let line = Fields::new()
            .with("client", client.name())
            .with("workload", "client-get")
            .with("stat", "skipped")
            .with_all(args.params());
        println!("{line}");
    }
    for line in report::ratio_lines(&medians, &args.params()) {
        println!("{line}");
    }
    for line in report::target_lines(&medians) {
        println!("{line}");
    }

    ok &= netbench::consistent(&lines);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse_str(s: &str) -> Option<Result<Command, String>> {
        let args: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    fn ok(s: &str) -> Command {
        match parse_str(s) {
            Some(Ok(c)) => c,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    fn bench_args(s: &str) -> BenchArgs {
        match ok(s) {
            Command::Bench(b) => b,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn not_a_client_get_command() {
        assert_eq!(parse_str("http-hello --runs 3"), None);
        assert_eq!(parse_str("spawn 10"), None);
    }

    #[test]
    fn bench_defaults() {
        assert_eq!(
            ok("client-get"),
            Command::Bench(BenchArgs {
                runs: 5,
                clients: Client::ALL.to_vec(),
                requests: 200_000,
                python_requests: 10_000,
                conns: 64,
                server_cpu: 1,
                client_cpu: 0,
            })
        );
        assert_eq!(ok("client-get --conns 5 --help"), Command::Help);
    }

    #[test]
    fn bench_n_and_options_in_any_order() {
        let b = bench_args("--runs 3 client-get --conns=8 100_000 --client reqwest,aiohttp");
        assert_eq!(b.requests, 100_000);
        assert_eq!(b.python_requests, 5_000);
        assert_eq!((b.runs, b.conns), (3, 8));
        assert_eq!(b.clients, [Client::Reqwest, Client::Aiohttp]);
        // The value of a separate option is never taken for N.
        let b = bench_args("client-get --python-requests 7 30 --server-cpu 0 --client-cpu 1");
        assert_eq!((b.requests, b.python_requests), (30, 7));
        assert_eq!((b.server_cpu, b.client_cpu), (0, 1));
        // N/20 rounds down, but never to no request at all.
        assert_eq!(bench_args("client-get 10").python_requests, 1);
        assert_eq!(bench_args("client-get --client all").clients, Client::ALL);
        assert_eq!(b.requests_for(Client::Hyper), 30);
        assert_eq!(b.requests_for(Client::AiohttpUvloop), 7);
    }

    #[test]
    fn run_args() {
        assert_eq!(
            ok(
                "client-get-run --client hyper --port 8080 --requests 100 --warmup 0 --conns 2 \
                --server-pid 42"
            ),
            Command::Run(RunArgs {
                client: Client::Hyper,
                port: 8080,
                requests: 100,
                warmup: 0,
                conns: 2,
                cpu: 0,
                server_pid: Some(42),
            })
        );
        match ok("client-get-run --client=aiohttp-uvloop --port=1 --requests=1 --warmup=1 --cpu=1")
        {
            Command::Run(r) => {
                assert_eq!((r.client, r.conns, r.cpu), (Client::AiohttpUvloop, 64, 1));
                assert_eq!(r.server_pid, None);
                assert_eq!(r.url(), "http://127.0.0.1:1/");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "client-get 0",
            "client-get x",
            "client-get 10 20",
            "client-get --conns 0",
            "client-get --conns 10001",
            "client-get --runs 0",
            "client-get --runs",
            "client-get --client curl",
            "client-get --client hyper,hyper",
            "client-get --client all,hyper",
            "client-get --python-requests 0",
            "client-get --server-cpu x",
            "client-get --port 80",
            "client-get-run --port 1 --requests 1 --warmup 0",
            "client-get-run --client hyper --requests 1 --warmup 0",
            "client-get-run --client hyper --port 0 --requests 1 --warmup 0",
            "client-get-run --client hyper --port 1 --warmup 0",
            "client-get-run --client hyper --port 1 --requests 1",
            "client-get-run --client hyper --port 1 --requests 1 --warmup 0 --server-pid 0",
            "client-get-run --client hyper --port 1 --requests 1 --warmup 0 extra",
            "client-get-run --client hyper --port 1 --requests 1 --warmup 0 --runs 2",
        ] {
            assert!(
                matches!(parse_str(bad), Some(Err(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn warmup_opens_every_connection() {
        assert_eq!(warmup_for(200_000, 64), 20_000);
        assert_eq!(warmup_for(100, 64), 64);
    }

    #[test]
    fn result_lines_are_per_request() {
        let m = Measured {
            requests: 1000,
            elapsed: Duration::from_millis(500),
            client_cpu: Duration::from_millis(450),
            server_cpu: Some(Duration::from_millis(100)),
            peak_rss_mb: None,
        };
        assert_eq!(
            result_line(Client::Reqwest, 64, &m, 12.25).to_string(),
            "client=reqwest workload=client-get conns=64 requests=1000 elapsed_s=0.500000 \
             req_per_s=2000 client_cpu_us_per_req=450.000 server_cpu_us_per_req=100.000 \
             client_cpu_util=0.900 server_cpu_util=0.200 peak_rss_mb=12.2"
        );
        let no_server = Measured {
            server_cpu: None,
            ..m
        };
        let line = result_line(Client::Hyper, 64, &no_server, 1.0);
        assert_eq!(line.get("server_cpu_us_per_req"), None);
        assert_eq!(line.get("client_cpu_util"), Some("0.900"));
    }

    /// The clients against the epoll floor in this process: every request answered and checked,
    /// over several connections, and the server counts at least warm-up plus measured requests.
    /// aiohttp too where python3 has it (its script's arguments and line are the contract
    /// checked there).
    #[test]
    fn clients_get_hello_from_the_floor() {
        use crate::workloads::http::{self, response, Server};

        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            http::serve(
                Server::Epoll,
                0,
                Box::new(move |port, stop| ready_tx.send((port, stop)).unwrap()),
            )
        });
        let (port, stop) = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the epoll server did not start");
        type RunFn = fn(&RunArgs) -> Result<Measured, String>;
        let mut clients: Vec<(Client, RunFn)> = vec![
            (Client::Hyper, hyper_client::run),
            (Client::Reqwest, reqwest_client::run),
        ];
        match Client::Aiohttp.unavailable() {
            None => clients.push((Client::Aiohttp, |args| aiohttp_client::run("aiohttp", args))),
            Some(why) => eprintln!("not testing aiohttp: {why}"),
        }
        for (client, run) in clients {
            let args = RunArgs {
                client,
                port,
                requests: 300,
                warmup: 7,
                conns: 5,
                cpu: 0,
                server_pid: Some(std::process::id()),
            };
            let before = response::answered();
            let m = run(&args).unwrap_or_else(|e| panic!("{client:?}: {e}"));
            assert_eq!(m.requests, 300, "{client:?}");
            assert!(m.server_cpu.is_some(), "{client:?}");
            // Other tests' servers may count too, so only a lower bound holds here.
            assert!(response::answered() - before >= 307, "{client:?}");
        }
        stop();
        thread.join().unwrap().unwrap();
    }
}
