//! `echo`: a TCP echo server on each runtime under a closed-loop load, and what it costs.
//!
//! Unlike the other workloads this one needs two processes on two cores: the server (pinned to
//! one core) and the load generator (pinned to another), so it has its own three commands:
//!
//! * `echo-server --port P [--runtime kettle|kettle-green|tokio|epoll] [--cpu C]` serves on
//!   127.0.0.1:P
//!   until SIGTERM or SIGINT, then exits with status 0. Port 0 picks a free port. Once it
//!   listens it prints `runtime=R port=P`, so a parent knows where to connect.
//! * `echo-client --port P [--conns N] [--secs S] [--size B] [--cpu C] [--server-pid PID]`
//!   runs the load ([`client`]) and prints one result line.
//! * `echo [--runs K] [--conns N] [--secs S] [--size B] [--runtime all|R[,R...]]` runs both
//!   for each server runtime in turn (kettle, kettle-green, tokio, epoll, kettle, ...), then
//!   prints every line, the median per runtime and the ratios of Kettle to tokio and to the
//!   epoll floor, and of Kettle's green-thread server to its async one and to the floor.
//!
//! The result keys: `round_trips` completed in the measured window, `rt_per_s` (throughput),
//! `p50_us`/`p99_us` (round-trip latency), `server_cpu_us_per_rt` (the server process's user +
//! system CPU time over the window, per round trip: the efficiency figure, meaningful whether
//! or not the server's core is saturated), `server_cpu_util` and `client_cpu_util` (share of
//! one core used during the window; a client near 1.0 means the client, not the server, bounds
//! the throughput).
//!
//! `kettle` and `kettle-green` run the same loop: a task per connection written with `async`
//! against a green thread per connection written as blocking `std::io` code, so
//! `ratio kettle-green/kettle` is what the green-thread style costs a server.
//!
//! The `epoll` server is the floor: no runtime, one `epoll_wait` per batch of ready
//! connections and one `read` and one `write` per message, so its cost is the kernel's.

mod client;
mod server;

use std::process::{ExitCode, Stdio};

use crate::harness::{self, Fields};
use crate::netbench::{self, fail, ServerProcess};

/// The usage lines for the three commands.
pub const USAGE: &str =
    "  echo-server --port P [--runtime kettle|kettle-green|tokio|epoll] [--cpu C]
                echo server on 127.0.0.1:P (0: any free port) until SIGTERM/SIGINT
  echo-client --port P [--conns N] [--secs S] [--size B] [--cpu C] [--server-pid PID]
                closed-loop load: N connections each sending B bytes and awaiting the echo
  echo [--runs K] [--conns N] [--secs S] [--size B] [--runtime all|R[,R...]]
       [--server-cpu C] [--client-cpu C]
                each server in a child on one core, the client on another; medians, ratios
                defaults: --runs 5 --conns 64 --secs 10 --size 64, servers on CPU 0 and
                clients on CPU 1 (--cpu for echo-server and echo-client)";

/// Which echo server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Kettle: a `TcpListener` and a task per connection.
    Kettle,
    /// Kettle's green threads: `kettle::green::net` and a green thread per connection, written
    /// as blocking `std::io` code.
    KettleGreen,
    /// tokio's `current_thread` runtime, the same design.
    Tokio,
    /// No runtime: a level-triggered epoll loop (the floor).
    Epoll,
}

impl Server {
    /// All of them, in the order runs alternate and results print.
    pub const ALL: [Server; 4] = [
        Server::Kettle,
        Server::KettleGreen,
        Server::Tokio,
        Server::Epoll,
    ];

    /// The name on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Server::Kettle => "kettle",
            Server::KettleGreen => "kettle-green",
            Server::Tokio => "tokio",
            Server::Epoll => "epoll",
        }
    }

    fn from_name(s: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|rt| rt.name() == s)
    }
}

/// `echo-server` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerArgs {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Which server.
    pub server: Server,
    /// The core to pin to.
    pub cpu: usize,
}

/// `echo-client` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientArgs {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// Concurrent connections, each with one message in flight.
    pub conns: usize,
    /// Length of the measured window in seconds (after the warm-up).
    pub secs: f64,
    /// Message size in bytes.
    pub size: usize,
    /// The core to pin to.
    pub cpu: usize,
    /// The server process, whose CPU time is measured if given.
    pub server_pid: Option<u32>,
}

impl ClientArgs {
    /// The parameters that make runs comparable, as result-line fields.
    pub fn params(&self) -> Fields {
        Fields::new()
            .with("conns", self.conns)
            .with("size", self.size)
            .with("secs", self.secs)
    }
}

/// `echo` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Runs per server.
    pub runs: usize,
    /// The servers to measure.
    pub servers: Vec<Server>,
    /// The load, as passed to each client (`port` and `server_pid` are filled in per run).
    pub load: ClientArgs,
    /// The core every server is pinned to.
    pub server_cpu: usize,
}

/// A parsed echo command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h` or `--help` anywhere.
    Help,
    /// `echo-server`.
    Server(ServerArgs),
    /// `echo-client`.
    Client(ClientArgs),
    /// `echo`.
    Bench(BenchArgs),
}

const DEFAULT_CONNS: usize = 64;
const DEFAULT_SECS: f64 = 10.0;
const DEFAULT_SIZE: usize = 64;
/// Large enough for bulk-transfer experiments, small enough that `conns` buffers fit in memory.
const MAX_SIZE: usize = 16 << 20;
/// One fd each, and each with its own buffers; beyond this the run measures fd limits instead.
const MAX_CONNS: usize = 10_000;

/// Parses the command line if it is an echo command: `None` if none of `echo`, `echo-server`
/// or `echo-client` appears among the arguments (the other workloads' parser takes it then).
/// Options may come before or after the command word, as `--opt V` or `--opt=V`.
pub fn parse(args: &[String]) -> Option<Result<Command, String>> {
    let at = args
        .iter()
        .position(|a| matches!(a.as_str(), "echo" | "echo-server" | "echo-client"))?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Some(Ok(Command::Help));
    }
    let rest: Vec<&String> = args[..at].iter().chain(&args[at + 1..]).collect();
    Some(parse_command(&args[at], &rest))
}

fn parse_command(command: &str, args: &[&String]) -> Result<Command, String> {
    let allowed: &[&str] = match command {
        "echo-server" => &["--port", "--runtime", "--cpu"],
        "echo-client" => &[
            "--port",
            "--conns",
            "--secs",
            "--size",
            "--cpu",
            "--server-pid",
        ],
        _ => &[
            "--runs",
            "--conns",
            "--secs",
            "--size",
            "--runtime",
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

    let port = |required_nonzero: bool| -> Result<Option<u16>, String> {
        match get("--port") {
            None => Err(format!("`{command}` needs --port P")),
            Some(v) => match v.parse::<u16>() {
                Ok(0) if required_nonzero => Err(format!("`{command}`: --port must not be 0")),
                Ok(p) => Ok(Some(p)),
                Err(_) => Err(format!("--port needs a port number, got `{v}`")),
            },
        }
    };
    let count = |name: &str, default: usize, max: usize| -> Result<usize, String> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse::<usize>()
                .ok()
                .filter(|&n| (1..=max).contains(&n))
                .ok_or_else(|| format!("{name} needs an integer from 1 to {max}, got `{v}`")),
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
    let load = |port: u16, cpu_default: usize| -> Result<ClientArgs, String> {
        let secs = match get("--secs") {
            None => DEFAULT_SECS,
            Some(v) => v
                .parse::<f64>()
                .ok()
                // Also bounds the latency vector and keeps Duration::from_secs_f64 from panicking.
                .filter(|s| s.is_finite() && *s >= 0.001 && *s <= 3600.0)
                .ok_or_else(|| format!("--secs needs seconds from 0.001 to 3600, got `{v}`"))?,
        };
        Ok(ClientArgs {
            port,
            conns: count("--conns", DEFAULT_CONNS, MAX_CONNS)?,
            secs,
            size: count("--size", DEFAULT_SIZE, MAX_SIZE)?,
            cpu: cpu("--cpu", cpu_default)?,
            server_pid: match get("--server-pid") {
                None => None,
                Some(v) => Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|&p| p > 0 && p <= i32::MAX as u32)
                        .ok_or_else(|| format!("--server-pid needs a process id, got `{v}`"))?,
                ),
            },
        })
    };

    match command {
        "echo-server" => Ok(Command::Server(ServerArgs {
            port: port(false)?.unwrap_or(0),
            server: match get("--runtime") {
                None => Server::Kettle,
                Some(v) => Server::from_name(v).ok_or_else(|| {
                    format!(
                        "echo-server --runtime must be kettle, kettle-green, tokio or epoll, \
                         got `{v}`"
                    )
                })?,
            },
            cpu: cpu("--cpu", 0)?,
        })),
        "echo-client" => Ok(Command::Client(load(port(true)?.unwrap_or(0), 1)?)),
        _ => Ok(Command::Bench(BenchArgs {
            runs: count("--runs", 5, 1000)?,
            servers: match get("--runtime") {
                None | Some("all") => Server::ALL.to_vec(),
                Some(list) => {
                    let mut servers = Vec::new();
                    for v in list.split(',') {
                        let server = Server::from_name(v).ok_or_else(|| {
                            format!(
                                "echo --runtime takes all or a comma-separated list of kettle, \
                                 kettle-green, tokio and epoll; got `{v}`"
                            )
                        })?;
                        if servers.contains(&server) {
                            return Err(format!("echo --runtime names {v} twice"));
                        }
                        servers.push(server);
                    }
                    servers
                }
            },
            load: ClientArgs {
                cpu: cpu("--client-cpu", 1)?,
                ..load(0, 1)?
            },
            server_cpu: cpu("--server-cpu", 0)?,
        })),
    }
}

/// Runs a parsed echo command (not `Help`, which the caller prints) and returns the exit code.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Help => ExitCode::SUCCESS,
        Command::Server(args) => run_server(&args),
        Command::Client(args) => run_client(&args),
        Command::Bench(args) => bench(&args),
    }
}

fn run_server(args: &ServerArgs) -> ExitCode {
    let server = args.server;
    let served = netbench::run_server(Some(args.cpu), "runtime", server.name(), |on_ready| {
        server::serve(server, args.port, on_ready)
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("echo server: {e}")),
    }
}

fn run_client(args: &ClientArgs) -> ExitCode {
    if let Err(e) = harness::pin_to_cpu(args.cpu) {
        return fail(&format!("cannot pin to CPU {}: {e}", args.cpu));
    }
    match client::run(args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("echo client: {e}")),
    }
}

/// One run: a server, the client against it, the server stopped.
fn measure(server: Server, args: &BenchArgs) -> Result<Fields, String> {
    let server_args: Vec<String> = ["echo-server", "--port", "0", "--runtime", server.name()]
        .iter()
        .map(|s| s.to_string())
        .chain(["--cpu".to_string(), args.server_cpu.to_string()])
        .collect();
    let proc = ServerProcess::start(server.name(), &server_args)?;
    let load = &args.load;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let output = std::process::Command::new(exe)
        .args(["echo-client", "--port", &proc.port().to_string()])
        .args(["--conns", &load.conns.to_string()])
        .args(["--secs", &load.secs.to_string()])
        .args(["--size", &load.size.to_string()])
        .args(["--cpu", &load.cpu.to_string()])
        .args(["--server-pid", &proc.pid().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the client: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the client against {} failed ({})",
            server.name(),
            output.status
        ));
    }
    let line = harness::last_line(&stdout)
        .ok_or_else(|| format!("the client printed no result line: {stdout:?}"))?;
    proc.stop()?;
    Ok(Fields::new().with("runtime", server.name()).with_all(line))
}

/// The ratio lines, each server over each of its anchors when both were measured: Kettle over
/// tokio and the floor, then the green-thread server over the async one and the floor.
const RATIOS: &[(Server, &[Server])] = &[
    (Server::Kettle, &[Server::Tokio, Server::Epoll]),
    (Server::KettleGreen, &[Server::Kettle, Server::Epoll]),
];

fn bench(args: &BenchArgs) -> ExitCode {
    if let Err(code) = netbench::check_cpus(args.server_cpu, args.load.cpu) {
        return code;
    }
    let lines = match netbench::alternate(
        "echo",
        args.runs,
        &args.servers,
        |s| s.name().to_string(),
        |s| measure(s, args),
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
    for (subject, others) in RATIOS {
        let Some(mine) = median_of(*subject) else {
            continue;
        };
        for &other in *others {
            if let Some(theirs) = median_of(other) {
                println!(
                    "ratio {}/{} server_cpu_us_per_rt={} rt_per_s={} p99_us={} {}",
                    subject.name(),
                    other.name(),
                    harness::ratio(mine, theirs, "server_cpu_us_per_rt"),
                    harness::ratio(mine, theirs, "rt_per_s"),
                    harness::ratio(mine, theirs, "p99_us"),
                    Fields::new()
                        .with("workload", "echo")
                        .with_all(args.load.params())
                );
            }
        }
    }

    if !netbench::consistent(&lines) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn not_an_echo_command() {
        assert_eq!(parse_str("spawn 10 --runs 3"), None);
        assert_eq!(parse_str(""), None);
    }

    #[test]
    fn server_args() {
        assert_eq!(
            ok("echo-server --port 8080"),
            Command::Server(ServerArgs {
                port: 8080,
                server: Server::Kettle,
                cpu: 0
            })
        );
        assert_eq!(
            ok("--cpu=1 echo-server --runtime epoll --port=0"),
            Command::Server(ServerArgs {
                port: 0,
                server: Server::Epoll,
                cpu: 1
            })
        );
    }

    #[test]
    fn client_args() {
        assert_eq!(
            ok("echo-client --port 9 --conns 2 --secs 0.5 --size 1_000 --server-pid 77"),
            Command::Client(ClientArgs {
                port: 9,
                conns: 2,
                secs: 0.5,
                size: 1000,
                cpu: 1,
                server_pid: Some(77),
            })
        );
    }

    #[test]
    fn bench_args_and_defaults() {
        assert_eq!(
            ok("echo --runs 3 --secs 5"),
            Command::Bench(BenchArgs {
                runs: 3,
                servers: Server::ALL.to_vec(),
                load: ClientArgs {
                    port: 0,
                    conns: 64,
                    secs: 5.0,
                    size: 64,
                    cpu: 1,
                    server_pid: None,
                },
                server_cpu: 0,
            })
        );
        match ok("echo --runtime tokio --client-cpu 3 --server-cpu 2") {
            Command::Bench(b) => {
                assert_eq!(b.servers, [Server::Tokio]);
                assert_eq!((b.server_cpu, b.load.cpu), (2, 3));
            }
            other => panic!("{other:?}"),
        }
        match ok("echo --runtime kettle-green,kettle") {
            Command::Bench(b) => assert_eq!(b.servers, [Server::KettleGreen, Server::Kettle]),
            other => panic!("{other:?}"),
        }
        assert_eq!(ok("echo --conns 5 -h"), Command::Help);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "echo-server",
            "echo-server --port",
            "echo-server --port 70000",
            "echo-server --port 1 --runtime go",
            "echo-server --port 1 --conns 4",
            "echo-server --port 1 extra",
            "echo-server --port 1 --port 2",
            "echo-client --port 0",
            "echo-client --port 1 --secs 0",
            "echo-client --port 1 --secs nan",
            "echo-client --port 1 --secs inf",
            "echo-client --port 1 --size 0",
            "echo-client --port 1 --conns -1",
            "echo-client --port 1 --server-pid 0",
            "echo-client --port 1 --server-pid x",
            "echo --runs 0",
            "echo --cpu 1",
            "echo --port 5",
            "echo --runtime epol",
            "echo --runtime kettle,kettle",
            "echo --runtime kettle,",
            "echo --server-cpu x",
        ] {
            assert!(
                matches!(parse_str(bad), Some(Err(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    /// A few round trips against each server, all in this process: the servers echo, the
    /// client counts and checks, and every server stops when asked.
    #[test]
    fn in_process_round_trips() {
        for server in Server::ALL {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                server::serve(server, 0, |port, stop| {
                    ready_tx.send((port, stop)).unwrap();
                })
            });
            let (port, stop) = ready_rx.recv().expect("the server did not start");
            let result = client::run(&ClientArgs {
                port,
                conns: 2,
                secs: 0.2,
                size: 100,
                cpu: 1,
                server_pid: Some(std::process::id()),
            });
            stop();
            thread.join().unwrap().unwrap();
            let line = result.unwrap();
            let rts: u64 = line.get("round_trips").unwrap().parse().unwrap();
            assert!(rts > 0, "{}: {line}", server.name());
            assert!(line.get("server_cpu_us_per_rt").is_some(), "{line}");
            assert_eq!(line.get("conns"), Some("2"));
        }
    }
}
