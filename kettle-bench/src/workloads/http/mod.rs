//! `http-hello`: `GET /` → `200 Hello, World!` on several HTTP servers under wrk, and what each
//! costs per request.
//!
//! Like `echo`, it needs two processes on two cores, so it has its own commands:
//!
//! * `http-server --port P --server NAME [--workers N] [--cpu C]` serves on 127.0.0.1:P until
//!   SIGTERM or SIGINT, then prints `server=NAME answered=N` (the requests it answered) and
//!   exits with status 0. Port 0 picks a free port. Once it listens it prints
//!   `server=NAME port=P`. With `--workers N` it runs the server's N-worker form
//!   ([`serve_workers`]), unpinned unless `--cpu` is given, and adds `per_worker=a,b,...` to
//!   its exit line.
//! * `http-hello [--runs K] [--secs S] [--conns N] [--pipeline D] [--warmup S] [--server ...]
//!   [--server-cpu C] [--client-cpu C]` starts each server in a child pinned to the server
//!   core, puts `taskset -c CLIENT wrk -t1 -cN -dSs --latency` on it from the client core
//!   ([`wrk`]; with `--pipeline D` above 1, a Lua script sends D requests per write), and
//!   prints a line per run, the median per server, `ratio` lines and rankings.
//! * `http-hello --workers N` with N above 1 is issue 11's multi-core comparison instead: every
//!   server with N workers (and Kettle's also with one, as `kettle-1w`), nothing pinned, under
//!   `wrk -tN -c128`; see [`workers`].
//!
//! The servers, all answering with the same status, headers and body ([`response`]):
//!
//! * `kettle-raw`: Kettle's runtime without the web framework ([`kettle_server`], which says
//!   why; the framework server `kettle` goes there once it exists).
//! * `hyper`: hyper 1.x on tokio `current_thread` ([`hyper_server`]).
//! * `actix`: actix-web 4 with one worker ([`actix_server`]).
//! * `epoll`: the floor, a raw epoll loop writing the fixed response ([`epoll_server`]).
//!
//! The result keys: `requests` (responses wrk parsed in the measured run), `req_per_s`,
//! `p50_us`/`p99_us` (wrk's latency distribution; with pipelining, per batch), and
//! `server_cpu_us_per_req`: the server process's user + system CPU time (all its threads, from
//! `/proc/PID/stat`) between just before wrk starts and just after it exits, divided by
//! `requests`. It is the efficiency figure, meaningful whether or not the server's core is
//! saturated. `server_cpu_util` and `client_cpu_util` are the shares of one core the server
//! and wrk used over that time: wrk near 1.0 means wrk, not the server, bounds req/s.
//! `uncounted` is how many requests the server says it answered beyond what wrk counted (warm-up
//! included): at most one batch per connection per wrk run can be in flight when wrk stops, so
//! a larger difference fails the run; it is the check that wrk counts pipelined responses one
//! by one. `wrk_errors` sums wrk's socket errors, timeouts and non-2xx responses; any makes the
//! exit status 1.
//!
//! Ratios divide Kettle's medians by each anchor's: `kettle/actix`, `kettle/hyper`,
//! `kettle/epoll` (and `kettle/kettle-raw`: the framework's own cost) once the framework server
//! exists, and the same for `kettle-raw`. A run with neither Kettle server gets every server
//! over the `epoll` floor instead.

mod actix_server;
mod epoll_server;
pub mod hyper_server;
pub mod kettle_server;
pub mod response;
pub mod tokio_io;
mod workers;
pub mod wrk;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use crate::harness::{self, Fields};
use crate::netbench::{self, fail, OnReady, ServerProcess};
use crate::sys;

/// The usage lines for the two commands.
pub const USAGE: &str =
    "  http-server --port P --server kettle|kettle-raw|hyper|actix|epoll [--workers W]
              [--cpu C]
                HTTP server on 127.0.0.1:P (0: any free port) answering GET / with 200
                \"Hello, World!\" until SIGTERM/SIGINT; --workers W: its W-worker form (not
                kettle-raw), not pinned unless --cpu is given
  http-hello [--runs K] [--secs S] [--conns N] [--pipeline D] [--warmup S]
             [--server all|NAME[,NAME...]] [--server-cpu C] [--client-cpu C]
                each server in a child on one core, wrk on another (`wrk -t1 -cN -dSs`, D
                requests per write); server CPU per request, req/s, p99; medians, ratios
                defaults: --runs 5 --secs 10 --conns 64 --pipeline 1 --warmup 1 (seconds of
                wrk before each measured run), servers on CPU 0, wrk on CPU 1; needs wrk
                (Debian: apt-get install wrk) and taskset
  http-hello --workers W [--runs K] [--secs S] [--conns N] [--pipeline D] [--warmup S]
             [--server all|NAME[,NAME...]]
                W above 1: every server with W workers (kettle: run_app_workers, kettle-1w:
                the same with one worker, hyper on tokio multi_thread, actix, epoll: W loops
                on SO_REUSEPORT listeners), servers and `wrk -tW -cN` unpinned; requests per
                worker and their imbalance; ratios of kettle to each, issue 11's targets
                (kettle and kettle-1w need the kettle-workers feature); --conns default 128";

/// Per-connection read buffer of the hand-written servers: a batch of pipelined requests is
/// always read in one call.
pub const READ_BUF: usize = 16 * 1024;

/// 127.0.0.1:`port`.
fn localhost(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Which HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The Kettle web framework through its public API: see [`kettle_server`].
    Kettle,
    /// Kettle's runtime without the framework.
    KettleRaw,
    /// hyper 1.x on tokio `current_thread`.
    Hyper,
    /// actix-web 4, one worker.
    Actix,
    /// The raw epoll floor.
    Epoll,
}

impl Server {
    /// The servers that exist, in the order runs alternate and results print; `--server all`.
    pub const ALL: [Server; 5] = [
        Server::Kettle,
        Server::KettleRaw,
        Server::Hyper,
        Server::Actix,
        Server::Epoll,
    ];

    /// The Kettle servers, whose ratios to the anchors are the point of the benchmark.
    const SUBJECTS: [Server; 2] = [Server::Kettle, Server::KettleRaw];

    /// What the Kettle servers are compared with.
    const ANCHORS: [Server; 3] = [Server::Actix, Server::Hyper, Server::Epoll];

    /// The name on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Server::Kettle => "kettle",
            Server::KettleRaw => "kettle-raw",
            Server::Hyper => "hyper",
            Server::Actix => "actix",
            Server::Epoll => "epoll",
        }
    }

    /// The server called `s`.
    fn from_name(s: &str) -> Result<Server, String> {
        let names = Server::ALL.map(Server::name).join(", ");
        match Server::ALL.into_iter().find(|sv| sv.name() == s) {
            Some(sv) => Ok(sv),
            None => Err(format!("unknown server `{s}`; available: {names}")),
        }
    }
}

/// Runs `server` on 127.0.0.1:`port` (0 picks a free port). Once it listens, `on_ready` gets
/// the actual port and the function that stops the server; `serve` returns when the server
/// has stopped, or with the error that prevented it from serving.
pub fn serve(server: Server, port: u16, on_ready: OnReady) -> io::Result<()> {
    match server {
        Server::Kettle => kettle_server::serve(port, on_ready),
        Server::KettleRaw => kettle_server::serve_raw(port, on_ready),
        Server::Hyper => hyper_server::serve(port, on_ready),
        Server::Actix => actix_server::serve(port, on_ready),
        Server::Epoll => epoll_server::serve(port, on_ready),
    }
}

/// [`serve`] in the server's multi-worker form, with `workers` workers (see [`workers`]):
/// Kettle's framework on that many event loops, hyper on tokio's `multi_thread` runtime,
/// actix with that many workers, the epoll floor with that many loops on `SO_REUSEPORT`
/// listeners. Returns the requests each worker answered (a worker that answered none may be
/// missing). `kettle-raw` has no such form: an `InvalidInput` error.
pub fn serve_workers(
    server: Server,
    port: u16,
    workers: usize,
    on_ready: OnReady,
) -> io::Result<Vec<u64>> {
    match server {
        Server::Kettle => kettle_server::serve_workers(port, workers, on_ready),
        Server::Hyper => hyper_server::serve_workers(port, workers, on_ready),
        Server::Actix => actix_server::serve_workers(port, workers, on_ready),
        Server::Epoll => epoll_server::serve_workers(port, workers, on_ready),
        Server::KettleRaw => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "kettle-raw has no multi-worker form",
        )),
    }
}

/// `http-server` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerArgs {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Which server.
    pub server: Server,
    /// The multi-worker form with this many workers ([`serve_workers`]); `None`: the
    /// single-core server ([`serve`]).
    pub workers: Option<usize>,
    /// The core to pin to; `None`: not pinned (the default with `--workers`).
    pub cpu: Option<usize>,
}

/// `http-hello` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Runs per server.
    pub runs: usize,
    /// The servers to measure.
    pub servers: Vec<Server>,
    /// wrk's connections (`-c`).
    pub conns: usize,
    /// wrk's duration in seconds (`-d`; wrk takes whole seconds).
    pub secs: u64,
    /// Requests per write: 1, or pipelined through the Lua script.
    pub pipeline: usize,
    /// Seconds of unmeasured wrk load before each measured run (0: none).
    pub warmup: u64,
    /// The core every server is pinned to.
    pub server_cpu: usize,
    /// The core wrk is pinned to.
    pub client_cpu: usize,
}

impl BenchArgs {
    /// The parameters that make runs comparable, as result-line fields.
    pub fn params(&self) -> Fields {
        Fields::new()
            .with("pipeline", self.pipeline)
            .with("conns", self.conns)
            .with("secs", self.secs)
    }
}

/// A parsed http command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h` or `--help` anywhere.
    Help,
    /// `http-server`.
    Server(ServerArgs),
    /// `http-hello`.
    Bench(BenchArgs),
    /// `http-hello --workers N` with N above 1.
    Workers(workers::BenchArgs),
}

/// One fd each in wrk and in the server; beyond this the run measures fd limits instead.
const MAX_CONNS: usize = 10_000;
/// Requests per write; wrk keeps the whole batch string per connection.
const MAX_PIPELINE: usize = 256;
/// Workers per server: threads, each with its own event loop.
const MAX_WORKERS: usize = 256;

/// Parses the command line if it is an http command: `None` if neither `http-hello` nor
/// `http-server` appears among the arguments. Options may come before or after the command
/// word, as `--opt V` or `--opt=V`.
pub fn parse(args: &[String]) -> Option<Result<Command, String>> {
    let at = args
        .iter()
        .position(|a| matches!(a.as_str(), "http-hello" | "http-server"))?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Some(Ok(Command::Help));
    }
    let rest: Vec<&String> = args[..at].iter().chain(&args[at + 1..]).collect();
    Some(parse_command(&args[at], &rest))
}

fn parse_command(command: &str, args: &[&String]) -> Result<Command, String> {
    let allowed: &[&str] = match command {
        "http-server" => &["--port", "--server", "--workers", "--cpu"],
        _ => &[
            "--runs",
            "--secs",
            "--conns",
            "--pipeline",
            "--warmup",
            "--server",
            "--workers",
            "--server-cpu",
            "--client-cpu",
        ],
    };
    let opts = netbench::options(command, args, allowed)?;
    let get = |name: &str| {
        opts.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let int = |name: &str, default: u64, min: u64, max: u64| -> Result<u64, String> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{name} needs an integer from {min} to {max}, got `{v}`")),
        }
    };
    let cpu = |name: &str, default: usize| -> Result<usize, String> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name} needs a core number, got `{v}`")),
        }
    };

    if command == "http-server" {
        let port = match get("--port") {
            None => return Err("`http-server` needs --port P".into()),
            Some(v) => v
                .parse::<u16>()
                .map_err(|_| format!("--port needs a port number, got `{v}`"))?,
        };
        let server = match get("--server") {
            None => return Err("`http-server` needs --server NAME".into()),
            Some(v) => Server::from_name(v)?,
        };
        let workers = match get("--workers") {
            None => None,
            Some(_) => Some(int("--workers", 1, 1, MAX_WORKERS as u64)? as usize),
        };
        if workers.is_some() && server == Server::KettleRaw {
            return Err("kettle-raw has no multi-worker form (--workers)".into());
        }
        let cpu = match (get("--cpu"), workers) {
            (None, Some(_)) => None,
            _ => Some(cpu("--cpu", 0)?),
        };
        return Ok(Command::Server(ServerArgs {
            port,
            server,
            workers,
            cpu,
        }));
    }

    let runs = int("--runs", 5, 1, 1000)? as usize;
    let secs = int("--secs", 10, 1, 3600)?;
    let pipeline = int("--pipeline", 1, 1, MAX_PIPELINE as u64)? as usize;
    let warmup = int("--warmup", 1, 0, 60)?;
    let workers = int("--workers", 1, 1, MAX_WORKERS as u64)? as usize;
    if workers > 1 {
        for pinning in ["--server-cpu", "--client-cpu"] {
            if get(pinning).is_some() {
                return Err(format!(
                    "{pinning} pins, and --workers {workers} runs servers and wrk unpinned"
                ));
            }
        }
        return Ok(Command::Workers(workers::BenchArgs {
            runs,
            workers,
            entries: workers::entries(get("--server"))?,
            conns: int("--conns", workers::CONNS as u64, 1, MAX_CONNS as u64)? as usize,
            secs,
            pipeline,
            warmup,
        }));
    }

    let servers = match get("--server") {
        None | Some("all") => Server::ALL.to_vec(),
        Some(list) => {
            let mut servers = Vec::new();
            for name in list.split(',') {
                let server = Server::from_name(name)?;
                if servers.contains(&server) {
                    return Err(format!("server {name} named twice in --server"));
                }
                servers.push(server);
            }
            servers
        }
    };
    Ok(Command::Bench(BenchArgs {
        runs,
        servers,
        conns: int("--conns", 64, 1, MAX_CONNS as u64)? as usize,
        secs,
        pipeline,
        warmup,
        server_cpu: cpu("--server-cpu", 0)?,
        client_cpu: cpu("--client-cpu", 1)?,
    }))
}

/// Runs a parsed http command (not `Help`, which the caller prints) and returns the exit code.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Help => ExitCode::SUCCESS,
        Command::Server(args) => run_server(&args),
        Command::Bench(args) => bench(&args),
        Command::Workers(args) => workers::bench(&args),
    }
}

fn run_server(args: &ServerArgs) -> ExitCode {
    let server = args.server;
    let served = netbench::run_server(args.cpu, "server", server.name(), |on_ready| {
        match args.workers {
            None => serve(server, args.port, on_ready).map(|()| None),
            Some(n) => serve_workers(server, args.port, n, on_ready).map(Some),
        }
    });
    match served {
        Ok(per_worker) => {
            // The parent compares this with what wrk counted.
            let mut total = Fields::new()
                .with("server", server.name())
                .with("answered", response::answered());
            if let Some(counts) = per_worker {
                let counts: Vec<String> = counts.iter().map(u64::to_string).collect();
                total.push("per_worker", counts.join(","));
            }
            println!("{total}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("http-server: {e}")),
    }
}

/// The programs a bench needs beyond this one.
struct Tools {
    /// The pipelining script, when `--pipeline` is above 1.
    script: Option<wrk::TempFile>,
}

impl Tools {
    /// Checks that wrk and taskset are installed and writes the script for `pipeline`
    /// requests per write.
    fn prepare(pipeline: usize) -> Result<Tools, String> {
        check_wrk("http-hello")?;
        let script = if pipeline > 1 {
            let text = wrk::pipeline_script(pipeline);
            Some(
                wrk::TempFile::create("kettle-bench-pipeline", &pipeline.to_string(), &text)
                    .map_err(|e| format!("cannot write the wrk script: {e}"))?,
            )
        } else {
            None
        };
        Ok(Tools { script })
    }
}

/// Checks that wrk and taskset are on `PATH`; the error says how to install what is missing.
/// `workload` names the benchmark in the message.
pub(crate) fn check_wrk(workload: &str) -> Result<(), String> {
    if wrk::find_in_path("wrk").is_none() {
        return Err(format!(
            "wrk is not installed (or not on PATH): {workload} drives its load with wrk; \
             install it (Debian/Ubuntu: `sudo apt-get install wrk`) and run again"
        ));
    }
    if wrk::find_in_path("taskset").is_none() {
        return Err(format!(
            "taskset is not on PATH: {workload} pins wrk to --client-cpu with it; install \
             util-linux"
        ));
    }
    Ok(())
}

/// One `taskset -c CPU wrk ARGS` run, pinned to the client core `cpu` (or a plain `wrk ARGS`
/// run without one); its report. Prints the command line.
pub(crate) fn run_wrk(cpu: Option<usize>, wrk_args: &[String]) -> Result<wrk::Report, String> {
    let mut command = match cpu {
        Some(cpu) => {
            let cpu = cpu.to_string();
            eprintln!("  taskset -c {cpu} wrk {}", wrk_args.join(" "));
            let mut c = std::process::Command::new("taskset");
            c.args(["-c", &cpu, "wrk"]);
            c
        }
        None => {
            eprintln!("  wrk {}", wrk_args.join(" "));
            std::process::Command::new("wrk")
        }
    };
    let output = command
        .args(wrk_args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run taskset/wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            stdout.trim()
        ));
    }
    wrk::parse(&stdout)
}

/// What the load on one server child gave: the measured wrk run, and the CPU times around it.
pub(crate) struct Measured {
    /// wrk's report of the measured run.
    pub report: wrk::Report,
    /// wrk runs against this server, the warm-up included: each may leave requests in flight.
    pub wrk_runs: u64,
    /// Responses wrk counted over all of those runs, to compare with the server's own count.
    pub wrk_counted: u64,
    /// The server's CPU time (user + system, all its threads) over the measured run, seconds.
    pub server_cpu: f64,
    /// wrk's CPU time over the measured run, seconds.
    pub wrk_cpu: f64,
    /// The measured run's wall-clock time, seconds.
    pub elapsed: f64,
}

impl Measured {
    /// Loads the server `proc`: an unmeasured wrk run with `warmup` (if any), then the
    /// measured one with `measured`, both pinned to `client_cpu` (if given), reading the
    /// server's and wrk's CPU times just before and just after the latter.
    pub(crate) fn load(
        proc: &ServerProcess,
        client_cpu: Option<usize>,
        warmup: Option<&[String]>,
        measured: &[String],
    ) -> Result<Measured, String> {
        let mut wrk_runs = 0u64;
        let mut wrk_counted = 0u64;
        if let Some(warmup) = warmup {
            let warm = run_wrk(client_cpu, warmup)?;
            wrk_runs += 1;
            wrk_counted += warm.requests;
        }

        let cpu_err = |e: io::Error| format!("cannot read CPU times: {e}");
        let start = Instant::now();
        let server_before = sys::process_cpu_time(proc.pid()).map_err(cpu_err)?;
        let wrk_before = sys::children_cpu_time().map_err(cpu_err)?;
        let report = run_wrk(client_cpu, measured)?;
        // wrk has been reaped, and no other child was meanwhile: the difference is wrk's.
        let wrk_after = sys::children_cpu_time().map_err(cpu_err)?;
        let server_after = sys::process_cpu_time(proc.pid()).map_err(cpu_err)?;
        let elapsed = start.elapsed().as_secs_f64();
        wrk_runs += 1;
        wrk_counted += report.requests;
        Ok(Measured {
            report,
            wrk_runs,
            wrk_counted,
            server_cpu: server_after.saturating_sub(server_before).as_secs_f64(),
            wrk_cpu: wrk_after.saturating_sub(wrk_before).as_secs_f64(),
            elapsed,
        })
    }

    /// Checks the server's count `answered` (from its exit line) against wrk's: never fewer,
    /// and more by at most `per_run_in_flight` per wrk run (the requests wrk may have sent
    /// and not seen answered when its time was up). `server` is for messages.
    pub(crate) fn check_answered(
        &self,
        server: &str,
        answered: u64,
        per_run_in_flight: u64,
    ) -> Result<(), String> {
        let in_flight = self.wrk_runs * per_run_in_flight;
        let counted = self.wrk_counted;
        if answered < counted || answered - counted > in_flight {
            return Err(format!(
                "the {server} server answered {answered} requests but wrk counted {counted} \
                 responses (at most {in_flight} may be in flight when wrk stops)"
            ));
        }
        if self.report.requests == 0 {
            return Err(format!("wrk completed no request on {server}"));
        }
        Ok(())
    }

    /// The result keys from `requests` on (see the module docs), given the server's count.
    pub(crate) fn fields(&self, answered: u64) -> Fields {
        let report = &self.report;
        Fields::new()
            .with("requests", report.requests)
            .with("req_per_s", format_args!("{:.0}", report.req_per_s))
            .with("p50_us", format_args!("{:.1}", report.p50_us))
            .with("p99_us", format_args!("{:.1}", report.p99_us))
            .with(
                "server_cpu_us_per_req",
                format_args!("{:.3}", self.server_cpu * 1e6 / report.requests as f64),
            )
            .with(
                "server_cpu_util",
                format_args!("{:.3}", self.server_cpu / self.elapsed),
            )
            .with(
                "client_cpu_util",
                format_args!("{:.3}", self.wrk_cpu / self.elapsed),
            )
            .with("uncounted", answered.saturating_sub(self.wrk_counted))
            .with("wrk_errors", report.errors)
    }
}

/// The line a server child printed on exit with its `answered` count (and whatever else it
/// reports), from the lines [`ServerProcess::stop`] returned.
pub(crate) fn exit_report(server: &str, tail: &[String]) -> Result<(Fields, u64), String> {
    tail.iter()
        .filter_map(|l| Fields::parse(l))
        .find_map(|f| {
            let answered = f.get("answered")?.parse::<u64>().ok()?;
            Some((f, answered))
        })
        .ok_or_else(|| format!("the {server} server did not report its count"))
}

/// One run: a server, wrk against it (warm-up, then the measured run), the server stopped.
fn measure(server: Server, args: &BenchArgs, tools: &Tools) -> Result<Fields, String> {
    let server_args: Vec<String> = [
        "http-server",
        "--port",
        "0",
        "--server",
        server.name(),
        "--cpu",
        &args.server_cpu.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let proc = ServerProcess::start(server.name(), &server_args)?;
    let script = tools.script.as_ref().map(|s| s.path());
    let wrk_args = |secs| wrk::args(1, args.conns, secs, proc.port(), script);
    let warmup = (args.warmup > 0).then(|| wrk_args(args.warmup));
    let measured = Measured::load(
        &proc,
        Some(args.client_cpu),
        warmup.as_deref(),
        &wrk_args(args.secs),
    )?;
    let tail = proc.stop()?;
    let (_, answered) = exit_report(server.name(), &tail)?;
    // At most one batch per connection is unanswered in wrk's eyes when it stops.
    measured.check_answered(server.name(), answered, (args.conns * args.pipeline) as u64)?;
    Ok(Fields::new()
        .with("server", server.name())
        .with("workload", "http-hello")
        .with_all(args.params())
        .with_all(measured.fields(answered)))
}

/// The ratios to print, as (numerator, denominator): each Kettle server present over each
/// anchor present (and the framework over the raw runtime); with no Kettle server in the run,
/// every other server over the epoll floor.
fn ratio_pairs(present: &[Server]) -> Vec<(Server, Server)> {
    let mut pairs = Vec::new();
    for subject in Server::SUBJECTS.into_iter().filter(|s| present.contains(s)) {
        for anchor in Server::ANCHORS.into_iter().filter(|a| present.contains(a)) {
            pairs.push((subject, anchor));
        }
        if subject == Server::Kettle && present.contains(&Server::KettleRaw) {
            pairs.push((subject, Server::KettleRaw));
        }
    }
    if pairs.is_empty() && present.contains(&Server::Epoll) {
        for &other in present.iter().filter(|&&s| s != Server::Epoll) {
            pairs.push((other, Server::Epoll));
        }
    }
    pairs
}

/// `ratio A/B ...`: the median server CPU per request, req/s and p99 of `a` over `b`'s, then
/// `about` (what the run was).
fn ratio_line(a: (&str, &Fields), b: (&str, &Fields), about: &Fields) -> String {
    format!(
        "ratio {}/{} server_cpu_us_per_req={} req_per_s={} p99_us={} {about}",
        a.0,
        b.0,
        harness::ratio(a.1, b.1, "server_cpu_us_per_req"),
        harness::ratio(a.1, b.1, "req_per_s"),
        harness::ratio(a.1, b.1, "p99_us"),
    )
}

/// The servers (by name) ordered best first by the median `key` (`lower_is_better` for costs
/// and latencies), as `rank key=KEY best_first=a,b,c`.
fn rank_line(medians: &[(&str, Fields)], key: &str, lower_is_better: bool) -> String {
    let mut ranked: Vec<(f64, &str)> = medians
        .iter()
        .filter_map(|(s, f)| f.get(key)?.parse::<f64>().ok().map(|v| (v, *s)))
        .collect();
    ranked.sort_by(|a, b| {
        let order = a.0.total_cmp(&b.0);
        if lower_is_better {
            order
        } else {
            order.reverse()
        }
    });
    let names: Vec<&str> = ranked.iter().map(|(_, s)| *s).collect();
    format!("rank key={key} best_first={}", names.join(","))
}

/// The three rank lines: server CPU per request, req/s, p99.
fn print_ranks(medians: &[(&str, Fields)]) {
    println!("{}", rank_line(medians, "server_cpu_us_per_req", true));
    println!("{}", rank_line(medians, "req_per_s", false));
    println!("{}", rank_line(medians, "p99_us", true));
}

/// Reports (on stderr) the runs in which wrk saw errors; true if there were none.
fn no_wrk_errors(lines: &[Vec<Fields>]) -> bool {
    let with_errors: Vec<String> = lines
        .iter()
        .flatten()
        .filter(|l| l.get("wrk_errors").is_some_and(|e| e != "0"))
        .map(|l| l.to_string())
        .collect();
    if with_errors.is_empty() {
        return true;
    }
    eprintln!("kettle-bench: wrk reported errors (timeouts, socket errors or non-2xx) in:");
    for l in with_errors {
        eprintln!("  {l}");
    }
    false
}

fn bench(args: &BenchArgs) -> ExitCode {
    if let Err(code) = netbench::check_cpus(args.server_cpu, args.client_cpu) {
        return code;
    }
    let tools = match Tools::prepare(args.pipeline) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let lines = match netbench::alternate(
        "http-hello",
        args.runs,
        &args.servers,
        |s| format!("{} (pipeline {})", s.name(), args.pipeline),
        |s| measure(s, args, &tools),
    ) {
        Ok(lines) => lines,
        Err(e) => return fail(&e),
    };
    let medians: Vec<(Server, Fields)> = args
        .servers
        .iter()
        .copied()
        .zip(netbench::print_with_medians(&lines))
        .collect();
    let median_of = |s: Server| medians.iter().find(|(m, _)| *m == s).map(|(_, f)| f);
    let about = Fields::new()
        .with("workload", "http-hello")
        .with_all(args.params());
    for (a, b) in ratio_pairs(&args.servers) {
        if let (Some(ma), Some(mb)) = (median_of(a), median_of(b)) {
            println!("{}", ratio_line((a.name(), ma), (b.name(), mb), &about));
        }
    }
    if medians.len() > 1 {
        let named: Vec<(&str, Fields)> =
            medians.iter().map(|(s, f)| (s.name(), f.clone())).collect();
        print_ranks(&named);
    }

    let consistent = netbench::consistent(&lines);
    if no_wrk_errors(&lines) && consistent {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
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

    #[test]
    fn not_an_http_command() {
        assert_eq!(parse_str("echo --runs 3"), None);
        assert_eq!(parse_str("spawn 10"), None);
    }

    #[test]
    fn server_args() {
        assert_eq!(
            ok("http-server --port 0 --server hyper"),
            Command::Server(ServerArgs {
                port: 0,
                server: Server::Hyper,
                workers: None,
                cpu: Some(0),
            })
        );
        assert_eq!(
            ok("--cpu=1 http-server --server=kettle-raw --port=8080"),
            Command::Server(ServerArgs {
                port: 8080,
                server: Server::KettleRaw,
                workers: None,
                cpu: Some(1),
            })
        );
        // Workers run unpinned unless a core is given.
        assert_eq!(
            ok("http-server --port 0 --server actix --workers 2"),
            Command::Server(ServerArgs {
                port: 0,
                server: Server::Actix,
                workers: Some(2),
                cpu: None,
            })
        );
        match ok("http-server --port 0 --server kettle --workers 1 --cpu 1") {
            Command::Server(a) => assert_eq!((a.workers, a.cpu), (Some(1), Some(1))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn workers_bench_args() {
        use workers::Entry;
        match ok("http-hello --workers 2 --runs 3 --secs 5 --server hyper,actix,epoll") {
            Command::Workers(w) => assert_eq!(
                w,
                workers::BenchArgs {
                    runs: 3,
                    workers: 2,
                    entries: vec![Entry::Hyper, Entry::Actix, Entry::Epoll],
                    conns: 128,
                    secs: 5,
                    pipeline: 1,
                    warmup: 1,
                }
            ),
            other => panic!("{other:?}"),
        }
        match ok("--workers=4 http-hello --conns 256 --pipeline 16") {
            Command::Workers(w) => {
                assert_eq!((w.workers, w.conns, w.pipeline, w.runs), (4, 256, 16, 5));
                assert_eq!(w.entries, workers::entries(None).unwrap());
            }
            other => panic!("{other:?}"),
        }
        // One worker is the single-core comparison, pinned as ever.
        assert!(matches!(
            ok("http-hello --workers 1 --server-cpu 1"),
            Command::Bench(BenchArgs { server_cpu: 1, .. })
        ));
    }

    #[test]
    fn bench_args_and_defaults() {
        assert_eq!(
            ok("http-hello"),
            Command::Bench(BenchArgs {
                runs: 5,
                servers: Server::ALL.to_vec(),
                conns: 64,
                secs: 10,
                pipeline: 1,
                warmup: 1,
                server_cpu: 0,
                client_cpu: 1,
            })
        );
        match ok("http-hello --runs 1 --secs 3 --pipeline 16 --server epoll,hyper --warmup 0") {
            Command::Bench(b) => {
                assert_eq!(b.servers, [Server::Epoll, Server::Hyper]);
                assert_eq!((b.runs, b.secs, b.pipeline, b.warmup), (1, 3, 16, 0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ok("http-hello --conns 5 --help"), Command::Help);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "http-server",
            "http-server --port 1",
            "http-server --server hyper",
            "http-server --port 70000 --server hyper",
            "http-server --port 1 --server tomcat",
            "http-server --port 1 --server hyper --runs 2",
            "http-hello --runs 0",
            "http-hello --secs 0.5",
            "http-hello --pipeline 0",
            "http-hello --pipeline 1000",
            "http-hello --conns 0",
            "http-hello --server hyper,hyper",
            "http-hello --server all,hyper",
            "http-hello --port 8080",
            "http-hello extra",
            "http-server --port 0 --server kettle-raw --workers 2",
            "http-server --port 0 --server hyper --workers 0",
            "http-hello --workers 0",
            "http-hello --workers 2 --server-cpu 0",
            "http-hello --workers 2 --client-cpu 1",
            "http-hello --workers 2 --server kettle-raw",
            "http-hello --workers 2 --server hyper,hyper",
        ] {
            assert!(
                matches!(parse_str(bad), Some(Err(_))),
                "{bad:?} should be rejected"
            );
        }
        assert!(matches!(
            parse_str("http-hello --server kettle"),
            Some(Ok(_))
        ));
    }

    #[test]
    fn ratios_and_ranks() {
        use Server::*;
        assert_eq!(
            ratio_pairs(&[KettleRaw, Hyper, Actix, Epoll]),
            [(KettleRaw, Actix), (KettleRaw, Hyper), (KettleRaw, Epoll)]
        );
        // The three ratios the issue asks for, then the framework's own cost, then the raw
        // runtime's.
        assert_eq!(
            ratio_pairs(&[Kettle, KettleRaw, Hyper, Actix, Epoll])[..4],
            [
                (Kettle, Actix),
                (Kettle, Hyper),
                (Kettle, Epoll),
                (Kettle, KettleRaw)
            ]
        );
        assert_eq!(
            ratio_pairs(&[Hyper, Actix, Epoll]),
            [(Hyper, Epoll), (Actix, Epoll)]
        );
        assert!(ratio_pairs(&[Hyper, Actix]).is_empty());

        let m = |s: Server, v: &str| (s.name(), Fields::parse(&format!("x={v}")).unwrap());
        let medians = [m(Hyper, "2.0"), m(Epoll, "1.0"), m(Actix, "3.5")];
        assert_eq!(
            rank_line(&medians, "x", true),
            "rank key=x best_first=epoll,hyper,actix"
        );
        assert_eq!(
            rank_line(&medians, "x", false),
            "rank key=x best_first=actix,hyper,epoll"
        );
    }

    /// A client for exactly what the servers send: it reads one response at a time, keeping
    /// whatever follows it for the next.
    struct Client {
        stream: TcpStream,
        buf: Vec<u8>,
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    impl Client {
        fn connect(port: u16) -> Client {
            let stream = TcpStream::connect(localhost(port)).unwrap();
            stream.set_nodelay(true).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            Client {
                stream,
                buf: Vec::new(),
            }
        }

        fn fill(&mut self, what: &str) {
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("reading {what}: {e}"));
            assert!(
                n > 0,
                "the server closed the connection while we read {what}"
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }

        /// One response, checked against the expected status, headers and body.
        fn expect_hello(&mut self, server: Server) {
            let head_end = loop {
                if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                self.fill("a response head");
            };
            let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
            self.buf.drain(..head_end + 4);
            let mut lines = head.split("\r\n");
            assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{server:?}: {head}");
            let mut headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (name, value) = l.split_once(':').expect("a header line");
                    (name.to_ascii_lowercase(), value.trim().to_string())
                })
                .collect();
            headers.sort();
            let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                ["content-length", "content-type", "date"],
                "{server:?}: {head}"
            );
            assert_eq!(headers[0].1, "13", "{server:?}");
            assert_eq!(headers[1].1, "text/plain; charset=utf-8", "{server:?}");
            assert!(
                httpdate::parse_http_date(&headers[2].1).is_ok(),
                "{server:?}: {head}"
            );
            while self.buf.len() < 13 {
                self.fill("a body");
            }
            assert_eq!(&self.buf[..13], b"Hello, World!", "{server:?}");
            self.buf.drain(..13);
        }

        /// Nothing more arrives (checked for a short while).
        fn expect_silence(&mut self, server: Server) {
            assert!(
                self.buf.is_empty(),
                "{server:?}: extra bytes {:?}",
                self.buf
            );
            self.stream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut byte = [0u8; 1];
            match self.stream.read(&mut byte) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                other => panic!("{server:?}: expected nothing more, got {other:?}"),
            }
        }
    }

    /// Every server answers one request, 16 pipelined in one write (16 responses, in order,
    /// nothing more), a request split across two writes (inside its terminator), and one on a
    /// second connection, with exactly the expected status, headers and body; and stops when
    /// asked.
    #[test]
    fn every_server_answers_exactly() {
        for server in Server::ALL {
            let before = response::answered();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                serve(
                    server,
                    0,
                    Box::new(move |port, stop| ready_tx.send((port, stop)).unwrap()),
                )
            });
            let (port, stop) = ready_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{server:?} did not start"));
            exchange_exactly(server, port);
            stop();
            thread.join().unwrap().unwrap();
            // Other tests' servers may count too, so only a lower bound holds here.
            assert!(response::answered() - before >= 19, "{server:?}");
        }
    }

    /// The same of every multi-worker form with two workers (Kettle's when built with
    /// `kettle-workers`), which also report how many requests their workers answered.
    #[test]
    fn every_multi_worker_server_answers_exactly() {
        let kettle = kettle_server::HAS_WORKERS.then_some(Server::Kettle);
        for server in [Server::Hyper, Server::Actix, Server::Epoll]
            .into_iter()
            .chain(kettle)
        {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                serve_workers(
                    server,
                    0,
                    2,
                    Box::new(move |port, stop| ready_tx.send((port, stop)).unwrap()),
                )
            });
            let (port, stop) = ready_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{server:?} did not start"));
            exchange_exactly(server, port);
            stop();
            let per_worker = thread.join().unwrap().unwrap();
            // hyper's and actix's counts are per thread of the process, other tests' included;
            // the floor's and Kettle's are the server's own.
            if matches!(server, Server::Epoll | Server::Kettle) {
                assert_eq!(per_worker.len(), 2, "{server:?}");
                assert_eq!(per_worker.iter().sum::<u64>(), 19, "{server:?}");
            } else {
                assert!(per_worker.iter().sum::<u64>() >= 19, "{server:?}");
            }
        }
    }

    /// The exchanges of [`every_server_answers_exactly`] with the server on `port`.
    fn exchange_exactly(server: Server, port: u16) {
        let mut c = Client::connect(port);
        c.stream.write_all(REQUEST).unwrap();
        c.expect_hello(server);

        let sixteen = REQUEST.repeat(16);
        c.stream.write_all(&sixteen).unwrap();
        for _ in 0..16 {
            c.expect_hello(server);
        }

        let cut = REQUEST.len() - 2;
        c.stream.write_all(&REQUEST[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        c.stream.write_all(&REQUEST[cut..]).unwrap();
        c.expect_hello(server);
        c.expect_silence(server);

        let mut second = Client::connect(port);
        second.stream.write_all(REQUEST).unwrap();
        second.expect_hello(server);
    }
}
