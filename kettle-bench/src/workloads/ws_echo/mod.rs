//! `ws-echo`: WebSocket echo servers under a closed-loop load, and what each costs per message.
//!
//! Like `echo`, it needs two processes on two cores, so it has its own three commands:
//!
//! * `ws-server --port P --server NAME [--cpu C]` serves `GET /ws` on 127.0.0.1:P until
//!   SIGTERM or SIGINT, then exits with status 0. Port 0 picks a free port. Once it listens it
//!   prints `server=NAME port=P`. The Python servers replace the process with `python3` after
//!   pinning it, so the server keeps the process id the parent measures.
//! * `ws-client --port P [--conns N] [--secs S] [--size B] [--cpu C] [--server-pid PID]` runs
//!   the load ([`client`]) and prints one result line.
//! * `ws-echo [--runs K] [--conns N] [--secs S] [--size B] [--server all|NAME[,NAME...]]
//!   [--server-cpu C] [--client-cpu C]` runs both for each server in turn (kettle, epoll,
//!   tungstenite, aiohttp, aiohttp-uvloop, kettle, ...), then prints every line, the median per
//!   server, `ratio` lines and `target` lines.
//!
//! The servers ([`server`]): `kettle` (`kettle::web::WebSocketResponse`), `epoll` (the floor:
//! a bare epoll loop doing the handshake and the framing and nothing else, [`epoll_server`]),
//! `tungstenite` (tokio-tungstenite on tokio `current_thread`), `aiohttp` and `aiohttp-uvloop`
//! (Python aiohttp's `web.WebSocketResponse` on asyncio's loop and on uvloop's). The Python servers
//! are skipped, with a message and a `stat=skipped` line, where `python3` cannot import
//! aiohttp (or uvloop).
//!
//! The load ([`client`]): N connections (default 64), each sending a masked `size`-byte text
//! message (default 64) and awaiting its echo, checked byte for byte, then the next.
//!
//! The result keys: `messages` echoed in the measured window, `msg_per_s`, `p50_us`/`p99_us`
//! (round-trip latency), `server_cpu_us_per_msg` (the server process's user + system CPU time
//! over the window, from `/proc/PID/stat`, per message: the efficiency figure, meaningful
//! whether or not the server's core is saturated), `client_cpu_us_per_msg` (the load
//! generator's, from `getrusage`), and `server_cpu_util` / `client_cpu_util` (shares of one
//! core used during the window; a client near 1.0 means the client, not the server, bounds
//! `msg_per_s`). A run in which both are well below 1 was waiting for the CPU (other load on
//! the machine) and is flagged with a warning.
//!
//! Both sides' CPU time is mostly system time, the kernel's TCP over loopback (about 90% for
//! the client and for Kettle's server): the client spends well under 1 us per message in user
//! space, so a server near the floor costs about what the client does, and `msg_per_s` of the
//! fastest servers is bounded by the client's core. Server CPU per message is what ranks them.
//!
//! Ratios divide Kettle's medians by each other server's (without Kettle in the run, the
//! first server's); `ratio kettle/epoll` is Kettle's cost over the floor's. The `target` lines check the goals: Kettle's server CPU per
//! message at most 0.8x tokio-tungstenite's, and its messages per second at least 10x
//! aiohttp's (on asyncio's loop).

mod client;
mod epoll_server;
mod server;
mod wire;

use std::process::{ExitCode, Stdio};

use crate::harness::{self, Fields};
use crate::netbench::{self, fail, Bound, ServerProcess};

/// The usage lines for the three commands.
pub const USAGE: &str =
    "  ws-server --port P --server kettle|epoll|tungstenite|aiohttp|aiohttp-uvloop [--cpu C]
                WebSocket echo server for GET /ws on 127.0.0.1:P (0: any free port) until
                SIGTERM/SIGINT
  ws-client --port P [--conns N] [--secs S] [--size B] [--cpu C] [--server-pid PID]
                closed-loop load: N WebSocket connections each sending a B-byte text message
                and awaiting the echo
  ws-echo [--runs K] [--conns N] [--secs S] [--size B] [--server all|NAME[,NAME...]]
          [--server-cpu C] [--client-cpu C]
                each server in a child on one core, the client on another; server CPU per
                message, messages/s, p99; medians, ratios, targets
                defaults: --runs 5 --conns 64 --secs 10 --size 64, servers on CPU 0 and the
                client on CPU 1; aiohttp needs python3 with aiohttp (and uvloop)";

/// Which WebSocket echo server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `kettle::web` with a `WebSocketResponse` handler.
    Kettle,
    /// The floor: a bare epoll loop that does the handshake and the framing, nothing else.
    Epoll,
    /// tokio-tungstenite on tokio `current_thread`.
    Tungstenite,
    /// Python aiohttp on asyncio's own loop.
    Aiohttp,
    /// Python aiohttp on uvloop.
    AiohttpUvloop,
}

impl Server {
    /// All of them, in the order runs alternate and results print; `--server all`.
    pub const ALL: [Server; 5] = [
        Server::Kettle,
        Server::Epoll,
        Server::Tungstenite,
        Server::Aiohttp,
        Server::AiohttpUvloop,
    ];

    /// The name on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Server::Kettle => "kettle",
            Server::Epoll => "epoll",
            Server::Tungstenite => "tungstenite",
            Server::Aiohttp => "aiohttp",
            Server::AiohttpUvloop => "aiohttp-uvloop",
        }
    }

    /// The server called `s`.
    fn from_name(s: &str) -> Result<Server, String> {
        let names = Server::ALL.map(Server::name).join(", ");
        Server::ALL
            .into_iter()
            .find(|sv| sv.name() == s)
            .ok_or_else(|| format!("unknown WebSocket server `{s}`; available: {names}"))
    }

    /// Whether it runs in `python3` rather than in this executable.
    fn is_python(self) -> bool {
        matches!(self, Server::Aiohttp | Server::AiohttpUvloop)
    }

    /// Why this server cannot run here, or `None` if it can.
    fn unavailable(self) -> Option<String> {
        use crate::python::missing;
        match self {
            Server::Aiohttp => missing(Some("aiohttp")),
            Server::AiohttpUvloop => missing(Some("aiohttp")).or_else(|| missing(Some("uvloop"))),
            _ => None,
        }
    }
}

/// `ws-server` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerArgs {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Which server.
    pub server: Server,
    /// The core to pin to.
    pub cpu: usize,
}

/// `ws-client` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientArgs {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// Concurrent connections, each with one message in flight.
    pub conns: usize,
    /// Length of the measured window in seconds (after the warm-up).
    pub secs: f64,
    /// Payload bytes per message.
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

/// `ws-echo` arguments.
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

/// A parsed ws-echo command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h` or `--help` anywhere.
    Help,
    /// `ws-server`.
    Server(ServerArgs),
    /// `ws-client`.
    Client(ClientArgs),
    /// `ws-echo`.
    Bench(BenchArgs),
}

const DEFAULT_CONNS: usize = 64;
const DEFAULT_SECS: f64 = 10.0;
const DEFAULT_SIZE: usize = 64;
/// Below every server's default message size limit (aiohttp's is 4 MiB).
const MAX_SIZE: usize = 1 << 20;
/// One fd each, and each with its own buffers; beyond this the run measures fd limits instead.
const MAX_CONNS: usize = 10_000;

/// Parses the command line if it is a ws-echo command: `None` if none of `ws-echo`,
/// `ws-server` or `ws-client` appears among the arguments. Options may come before or after
/// the command word, as `--opt V` or `--opt=V`.
pub fn parse(args: &[String]) -> Option<Result<Command, String>> {
    let at = args
        .iter()
        .position(|a| matches!(a.as_str(), "ws-echo" | "ws-server" | "ws-client"))?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Some(Ok(Command::Help));
    }
    let rest: Vec<&String> = args[..at].iter().chain(&args[at + 1..]).collect();
    Some(parse_command(&args[at], &rest))
}

fn parse_command(command: &str, args: &[&String]) -> Result<Command, String> {
    let allowed: &[&str] = match command {
        "ws-server" => &["--port", "--server", "--cpu"],
        "ws-client" => &[
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
            "--server",
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
    let port = |nonzero: bool| -> Result<u16, String> {
        match get("--port") {
            None => Err(format!("`{command}` needs --port P")),
            Some(v) => match v.parse::<u16>() {
                Ok(0) if nonzero => Err(format!("`{command}`: --port must not be 0")),
                Ok(p) => Ok(p),
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
        "ws-server" => Ok(Command::Server(ServerArgs {
            port: port(false)?,
            server: match get("--server") {
                None => return Err("`ws-server` needs --server NAME".into()),
                Some(v) => Server::from_name(v)?,
            },
            cpu: cpu("--cpu", 0)?,
        })),
        "ws-client" => Ok(Command::Client(load(port(true)?, 1)?)),
        _ => Ok(Command::Bench(BenchArgs {
            runs: count("--runs", 5, 1000)?,
            servers: match get("--server") {
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
            },
            load: ClientArgs {
                cpu: cpu("--client-cpu", 1)?,
                ..load(0, 1)?
            },
            server_cpu: cpu("--server-cpu", 0)?,
        })),
    }
}

/// Runs a parsed ws-echo command (not `Help`, which the caller prints) and returns the exit
/// code.
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
    if server.is_python() {
        // Pinned here, inherited across exec; no signals blocked (see exec_python).
        if let Err(e) = harness::pin_to_cpu(args.cpu) {
            return fail(&format!("cannot pin to CPU {}: {e}", args.cpu));
        }
        let e = server::exec_python(server, args.port);
        return fail(&format!(
            "ws-server: cannot run {} for {}: {e}",
            crate::python::PYTHON,
            server.name()
        ));
    }
    let served = netbench::run_server(Some(args.cpu), "server", server.name(), |on_ready| {
        server::serve(server, args.port, on_ready)
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("ws-server: {e}")),
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
        Err(e) => fail(&format!("ws-client: {e}")),
    }
}

/// One run: a server, the client against it, the server stopped.
fn measure(server: Server, args: &BenchArgs) -> Result<Fields, String> {
    let server_args: Vec<String> = [
        "ws-server",
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
    let load = &args.load;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let output = std::process::Command::new(exe)
        .args(["ws-client", "--port", &proc.port().to_string()])
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
    if looks_disturbed(&line) {
        eprintln!(
            "kettle-bench: warning: neither the {} server nor the client kept its core busy \
             (server_cpu_util={}, client_cpu_util={}): other load on the machine?",
            server.name(),
            line.get("server_cpu_util").unwrap_or("?"),
            line.get("client_cpu_util").unwrap_or("?")
        );
    }
    Ok(Fields::new().with("server", server.name()).with_all(line))
}

/// Whether a run looks disturbed by other load: with 64 connections in a closed loop on an
/// idle machine, the server or the client is busy all the time, so both well below one core
/// means the two were waiting for the CPU, not for each other.
fn looks_disturbed(line: &Fields) -> bool {
    let util = |key: &str| line.get(key).and_then(|v| v.parse::<f64>().ok());
    matches!(
        (util("server_cpu_util"), util("client_cpu_util")),
        (Some(s), Some(c)) if s < 0.8 && c < 0.8
    )
}

/// The goals: (anchor, key, bound on kettle/anchor).
const TARGETS: &[(Server, &str, Bound)] = &[
    (
        Server::Tungstenite,
        "server_cpu_us_per_msg",
        Bound::AtMost(0.8),
    ),
    (Server::Aiohttp, "msg_per_s", Bound::AtLeast(10.0)),
];

/// The keys of a `ratio` line.
const RATIO_KEYS: [&str; 3] = ["server_cpu_us_per_msg", "msg_per_s", "p99_us"];

/// `ratio A/B KEY=... workload=ws-echo PARAMS` for the subject (Kettle if measured, else the
/// first server measured) over every other server.
fn ratio_lines(medians: &[(Server, Fields)], params: &Fields) -> Vec<String> {
    let subject = medians
        .iter()
        .find(|(s, _)| *s == Server::Kettle)
        .or(medians.first());
    let Some((subject, mine)) = subject else {
        return Vec::new();
    };
    let about = Fields::new()
        .with("workload", "ws-echo")
        .with_all(params.clone());
    medians
        .iter()
        .filter(|(s, _)| s != subject)
        .map(|(other, theirs)| {
            let mut line = format!("ratio {}/{}", subject.name(), other.name());
            for key in RATIO_KEYS {
                line += &format!(" {key}={}", harness::ratio(mine, theirs, key));
            }
            format!("{line} {about}")
        })
        .collect()
}

/// `target kettle/ANCHOR key=KEY ratio=R at_most|at_least=B met=yes|no` for each of
/// [`TARGETS`] whose two servers have medians.
fn target_lines(medians: &[(Server, Fields)]) -> Vec<String> {
    let median_of = |s: Server| medians.iter().find(|(m, _)| *m == s).map(|(_, f)| f);
    let Some(kettle) = median_of(Server::Kettle) else {
        return Vec::new();
    };
    TARGETS
        .iter()
        .filter_map(|&(anchor, key, bound)| {
            let ratio = harness::ratio(kettle, median_of(anchor)?, key);
            Some(format!(
                "target kettle/{} key={key} ratio={ratio} {}",
                anchor.name(),
                bound.judge(&ratio)
            ))
        })
        .collect()
}

fn bench(args: &BenchArgs) -> ExitCode {
    if let Err(code) = netbench::check_cpus(args.server_cpu, args.load.cpu) {
        return code;
    }
    let mut servers = Vec::new();
    let mut skipped = Vec::new();
    for &server in &args.servers {
        match server.unavailable() {
            Some(why) => {
                eprintln!("kettle-bench: skipping {}: {why}", server.name());
                skipped.push(server);
            }
            None => servers.push(server),
        }
    }
    if servers.is_empty() {
        return fail("ws-echo: none of the servers asked for can run here");
    }
    let lines = match netbench::alternate(
        "ws-echo",
        args.runs,
        &servers,
        |s| s.name().to_string(),
        |s| measure(s, args),
    ) {
        Ok(lines) => lines,
        Err(e) => return fail(&e),
    };
    let medians: Vec<(Server, Fields)> = servers
        .iter()
        .copied()
        .zip(netbench::print_with_medians(&lines))
        .collect();
    let params = args.load.params();
    for &server in &skipped {
        let line = Fields::new()
            .with("server", server.name())
            .with("workload", "ws-echo")
            .with("stat", "skipped")
            .with_all(params.clone());
        println!("{line}");
    }
    for line in ratio_lines(&medians, &params) {
        println!("{line}");
    }
    for line in target_lines(&medians) {
        println!("{line}");
    }
    if netbench::consistent(&lines) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netbench::StopFn;
    use std::io::{BufRead, BufReader};
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
    fn not_a_ws_command() {
        assert_eq!(parse_str("echo --runs 3"), None);
        assert_eq!(parse_str("spawn 10"), None);
    }

    #[test]
    fn server_and_client_args() {
        assert_eq!(
            ok("--cpu=1 ws-server --server aiohttp-uvloop --port=0"),
            Command::Server(ServerArgs {
                port: 0,
                server: Server::AiohttpUvloop,
                cpu: 1,
            })
        );
        assert_eq!(
            ok("ws-client --port 9 --conns 2 --secs 0.5 --size 1_000 --server-pid 77"),
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
            ok("ws-echo --runs 3 --secs 5"),
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
        match ok("ws-echo --server tungstenite,kettle --client-cpu 3 --server-cpu 2") {
            Command::Bench(b) => {
                assert_eq!(b.servers, [Server::Tungstenite, Server::Kettle]);
                assert_eq!((b.server_cpu, b.load.cpu), (2, 3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ok("ws-echo --conns 5 -h"), Command::Help);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "ws-server",
            "ws-server --port 0",
            "ws-server --port 1 --server go",
            "ws-server --port 70000 --server kettle",
            "ws-server --port 1 --server kettle --conns 4",
            "ws-client --port 0",
            "ws-client --port 1 --secs 0",
            "ws-client --port 1 --size 0",
            "ws-client --port 1 --size 2000000",
            "ws-client --port 1 --server-pid x",
            "ws-echo --runs 0",
            "ws-echo --runtime kettle",
            "ws-echo --server kettle,kettle",
            "ws-echo --server kettle,",
            "ws-echo extra",
        ] {
            assert!(
                matches!(parse_str(bad), Some(Err(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    fn medians(spec: &[(Server, &str)]) -> Vec<(Server, Fields)> {
        spec.iter()
            .map(|&(s, f)| (s, Fields::parse(f).unwrap()))
            .collect()
    }

    #[test]
    fn disturbed_runs_have_both_sides_idle() {
        let line = |s: &str| Fields::parse(s).unwrap();
        assert!(looks_disturbed(&line(
            "server_cpu_util=0.43 client_cpu_util=0.41"
        )));
        assert!(!looks_disturbed(&line(
            "server_cpu_util=0.98 client_cpu_util=0.76"
        )));
        assert!(!looks_disturbed(&line("client_cpu_util=0.3")));
    }

    #[test]
    fn ratios_and_targets() {
        let params = Fields::new().with("conns", 64);
        let m = medians(&[
            (
                Server::Tungstenite,
                "server_cpu_us_per_msg=4 msg_per_s=200000 p99_us=400",
            ),
            (
                Server::Kettle,
                "server_cpu_us_per_msg=3 msg_per_s=250000 p99_us=300",
            ),
            (
                Server::Aiohttp,
                "server_cpu_us_per_msg=40 msg_per_s=20000 p99_us=4000",
            ),
        ]);
        assert_eq!(
            ratio_lines(&m, &params),
            [
                "ratio kettle/tungstenite server_cpu_us_per_msg=0.750 msg_per_s=1.250 \
                 p99_us=0.750 workload=ws-echo conns=64",
                "ratio kettle/aiohttp server_cpu_us_per_msg=0.075 msg_per_s=12.500 \
                 p99_us=0.075 workload=ws-echo conns=64",
            ]
        );
        assert_eq!(
            target_lines(&m),
            [
                "target kettle/tungstenite key=server_cpu_us_per_msg ratio=0.750 at_most=0.8 \
                 met=yes",
                "target kettle/aiohttp key=msg_per_s ratio=12.500 at_least=10 met=yes",
            ]
        );
        let without_kettle = [m[0].clone(), m[2].clone()];
        assert_eq!(
            ratio_lines(&without_kettle, &params),
            [
                "ratio tungstenite/aiohttp server_cpu_us_per_msg=0.100 msg_per_s=10.000 \
              p99_us=0.100 workload=ws-echo conns=64"
            ]
        );
        assert!(target_lines(&without_kettle).is_empty());
    }

    /// Runs the client briefly against a server on `port` and checks its line.
    fn short_load(name: &str, port: u16, server_pid: u32) {
        sized_load(name, port, server_pid, 200);
    }

    /// The same with `size`-byte messages.
    fn sized_load(name: &str, port: u16, server_pid: u32, size: usize) {
        let line = client::run(&ClientArgs {
            port,
            conns: 3,
            secs: 0.2,
            size,
            cpu: 1,
            server_pid: Some(server_pid),
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let messages: u64 = line.get("messages").unwrap().parse().unwrap();
        assert!(messages > 0, "{name}: {line}");
        assert!(line.get("server_cpu_us_per_msg").is_some(), "{line}");
        assert_eq!(line.get("size"), Some(size.to_string().as_str()));
    }

    /// Starts a Rust server on a thread; its port, its stop function and the thread.
    fn start(server: Server) -> (u16, StopFn, std::thread::JoinHandle<std::io::Result<()>>) {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            server::serve(
                server,
                0,
                Box::new(move |port, stop| ready_tx.send((port, stop)).unwrap()),
            )
        });
        let (port, stop) = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{} did not start", server.name()));
        (port, stop, thread)
    }

    /// A short load against each Rust server in this process: the handshake, checked echoes
    /// (16-bit frame lengths, as 200 bytes need) and the closing handshake; every server stops
    /// when asked.
    #[test]
    fn in_process_servers_echo() {
        for server in [Server::Kettle, Server::Epoll, Server::Tungstenite] {
            if let Some(why) = server.unavailable() {
                eprintln!("not testing {}: {why}", server.name());
                continue;
            }
            let (port, stop, thread) = start(server);
            short_load(server.name(), port, std::process::id());
            stop();
            thread.join().unwrap().unwrap();
        }
    }

    /// The floor against messages from 1 byte to more than its 16 KiB starting buffer (so
    /// frames span reads, grow the buffer and fill the socket buffers) with 64-bit lengths,
    /// checked byte for byte by the client, on one server in turn.
    #[test]
    fn epoll_floor_echoes_every_size() {
        let (port, stop, thread) = start(Server::Epoll);
        for size in [1, 125, 126, 20_000, 70_000] {
            sized_load("epoll", port, std::process::id(), size);
        }
        stop();
        thread.join().unwrap().unwrap();
    }

    /// The same against the Python server where python3 has aiohttp: the script's ready line
    /// and its SIGTERM exit are the contract with `ws-server`.
    #[test]
    fn python_server_echoes() {
        if let Some(why) = Server::Aiohttp.unavailable() {
            eprintln!("not testing aiohttp: {why}");
            return;
        }
        let mut child = std::process::Command::new(crate::python::PYTHON)
            .args(["-c", include_str!("../../../python/ws_server.py")])
            .args(["aiohttp", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        let fields = Fields::parse(&ready).unwrap_or_else(|| panic!("{ready:?}"));
        assert_eq!(fields.get("server"), Some("aiohttp"));
        let port: u16 = fields.get("port").unwrap().parse().unwrap();
        short_load("aiohttp", port, child.id());
        crate::sys::terminate(child.id()).unwrap();
        assert!(child.wait().unwrap().success());
    }
}
