//! `https-hello`: `GET /` → `200 Hello, World!` over TLS on Kettle and hyper under wrk, in two
//! modes: requests on kept-alive connections, and one full TLS handshake per request.
//!
//! It is `http-hello` ([`super::http`]) with TLS, and reuses its servers, its response, its
//! wrk driver and its measurement ([`http::Measured`]); like it, it has two commands:
//!
//! * `https-server --port P --server kettle|hyper --cert PEM --key PEM [--cpu C]` serves
//!   HTTPS on 127.0.0.1:P with that certificate until SIGTERM or SIGINT, then prints
//!   `server=NAME answered=N tls_handshakes=H` and exits with status 0.
//! * `https-hello [--runs K] [--secs S] [--conns N] [--warmup S] [--server ...] [--mode ...]
//!   [--server-cpu C] [--client-cpu C]` makes a self-signed certificate, starts each server in
//!   a child pinned to the server core for each mode and run, puts
//!   `taskset -c CLIENT wrk -t1 -cN -dSs --latency [-H "Connection: close"]
//!   https://127.0.0.1:P/` on it from the client core, and prints a line per run, the median
//!   per mode and server, `ratio kettle/hyper` and `target` lines per mode.
//!
//! The servers, both answering exactly what they answer in `http-hello`:
//!
//! * `kettle`: the web framework (`Application`, router, `AppRunner`) with
//!   `ServerOptions::default().tls(acceptor)`, the `kettle` server of `http-hello` with TLS.
//! * `hyper`: hyper 1.x on tokio `current_thread` over tokio-rustls, the `hyper` server of
//!   `http-hello` with a TLS handshake at the start of each connection's task.
//!
//! Both get the same `rustls::ServerConfig`, built by [`tls::server_config`]: same rustls,
//! ring provider, certificate (ECDSA P-256) and defaults, resumption off. The comparison is of
//! what each puts around rustls (sockets, buffers, readiness, tasks, HTTP), not of crypto.
//!
//! The modes (`--mode all`, the default, runs both, alternating with the servers):
//!
//! * `keepalive`: wrk's connections stay open, so after 64 handshakes it is requests over TLS
//!   records. Keys as in `http-hello`: `req_per_s`, `server_cpu_us_per_req`, latencies.
//! * `handshake`: wrk sends `Connection: close`; each server answers with `connection: close`
//!   and closes, and wrk opens a new connection with a new handshake for its next request. With
//!   resumption off on the server, each of those handshakes is full (ECDHE key exchange and a
//!   certificate signature), so `handshakes_per_s` (= `req_per_s`) and
//!   `server_cpu_us_per_handshake` (= `server_cpu_us_per_req`: handshake, request, response
//!   and TCP connection set-up and teardown together) are what it measures. The run fails
//!   unless the server made at least one handshake per request it answered (its
//!   `tls_handshakes`, counted by the certificate resolver), which is the check that wrk
//!   really reconnected each time.
//!
//! `tls_handshakes` is the server's count over its whole life (warm-up included), so in
//! keep-alive mode it is about `conns` per wrk run. wrk's latencies start when it writes a
//! request, after the connection and handshake, so in handshake mode they leave those out.
//!
//! In both modes wrk, on its one core, is usually what bounds the rate (`client_cpu_util`
//! near 1): in handshake mode its OpenSSL 3 spends more CPU on a handshake than either
//! server does. The server's CPU per request or per handshake is then the figure that ranks
//! the servers, and the rate ratio mostly shows how evenly wrk was disturbed.
//!
//! `target` lines state issue 10's goal for each mode: Kettle's req/s (handshakes/s) at least
//! hyper's, and its server CPU per request (per handshake) at most hyper's.

mod tls;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kettle::tls::rustls::ServerConfig;

use super::http::{self, response, wrk, Measured, Server};
use crate::harness::{self, Fields};
use crate::netbench::{self, fail, Bound, OnReady, ServerProcess};

/// The usage lines for the two commands.
pub const USAGE: &str =
    "  https-server --port P --server kettle|hyper --cert PEM --key PEM [--cpu C]
                HTTPS server on 127.0.0.1:P (0: any free port) with that certificate and
                key, answering GET / with 200 \"Hello, World!\" until SIGTERM/SIGINT
  https-hello [--runs K] [--secs S] [--conns N] [--warmup S] [--server all|NAME[,NAME]]
              [--mode all|keepalive|handshake] [--server-cpu C] [--client-cpu C]
                kettle (web framework) and hyper + tokio-rustls, one rustls config (ring,
                no resumption, a self-signed ECDSA certificate made for the run), each in a
                child on one core, wrk on another: keepalive (`wrk -t1 -cN -dSs`) and
                handshake (the same with `-H \"Connection: close\"`: a full handshake per
                request); req/s or handshakes/s, server CPU per request or per handshake;
                medians, ratios, targets. defaults: --runs 5 --secs 10 --conns 64 --warmup 1
                --mode all, servers on CPU 0, wrk on CPU 1; needs wrk and taskset";

/// The servers with an HTTPS side, in the order runs alternate and results print: Kettle's
/// first, since the ratios divide its medians by hyper's.
const SERVERS: [Server; 2] = [Server::Kettle, Server::Hyper];

/// How wrk uses its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Kept alive: many requests per handshake.
    KeepAlive,
    /// `Connection: close`: one request, and one full handshake, per connection.
    Handshake,
}

impl Mode {
    /// Both, in the order they run and print.
    pub const ALL: [Mode; 2] = [Mode::KeepAlive, Mode::Handshake];

    /// The name on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keepalive",
            Mode::Handshake => "handshake",
        }
    }

    /// The headers wrk adds to each request.
    fn headers(self) -> &'static [&'static str] {
        match self {
            Mode::KeepAlive => &[],
            Mode::Handshake => &["Connection: close"],
        }
    }

    /// The keys of this mode's `ratio` lines: the rate, the server's CPU cost, the tail
    /// latency.
    fn ratio_keys(self) -> [&'static str; 3] {
        match self {
            Mode::KeepAlive => ["req_per_s", "server_cpu_us_per_req", "p99_us"],
            Mode::Handshake => ["handshakes_per_s", "server_cpu_us_per_handshake", "p99_us"],
        }
    }
}

/// `https-server` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerArgs {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Which server: one of [`SERVERS`].
    pub server: Server,
    /// The certificate chain's PEM file.
    pub cert: PathBuf,
    /// The private key's PEM file.
    pub key: PathBuf,
    /// The core to pin to.
    pub cpu: usize,
}

/// `https-hello` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Runs per server and mode.
    pub runs: usize,
    /// The servers to measure.
    pub servers: Vec<Server>,
    /// The modes to measure them in.
    pub modes: Vec<Mode>,
    /// wrk's connections (`-c`).
    pub conns: usize,
    /// wrk's duration in seconds (`-d`).
    pub secs: u64,
    /// Seconds of unmeasured wrk load, in the run's mode, before each measured run (0: none).
    pub warmup: u64,
    /// The core every server is pinned to.
    pub server_cpu: usize,
    /// The core wrk is pinned to.
    pub client_cpu: usize,
}

impl BenchArgs {
    /// The parameters that make runs of one mode comparable, as result-line fields.
    fn params(&self, mode: Mode) -> Fields {
        Fields::new()
            .with("mode", mode.name())
            .with("conns", self.conns)
            .with("secs", self.secs)
    }
}

/// A parsed https command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h` or `--help` anywhere.
    Help,
    /// `https-server`.
    Server(ServerArgs),
    /// `https-hello`.
    Bench(BenchArgs),
}

/// One fd each in wrk and in the server; beyond this the run measures fd limits instead.
const MAX_CONNS: usize = 10_000;

/// Parses the command line if it is an https command: `None` if neither `https-hello` nor
/// `https-server` appears among the arguments. Options may come before or after the command
/// word, as `--opt V` or `--opt=V`.
pub fn parse(args: &[String]) -> Option<Result<Command, String>> {
    let at = args
        .iter()
        .position(|a| matches!(a.as_str(), "https-hello" | "https-server"))?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Some(Ok(Command::Help));
    }
    let rest: Vec<&String> = args[..at].iter().chain(&args[at + 1..]).collect();
    Some(parse_command(&args[at], &rest))
}

/// The server called `name`, if it is one of [`SERVERS`].
fn server_named(name: &str) -> Result<Server, String> {
    SERVERS
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| format!("unknown HTTPS server `{name}`; available: kettle, hyper"))
}

/// A comma-separated list of distinct names, or `all` (or nothing) for `every`.
fn pick<T: Copy + PartialEq>(
    option: &str,
    value: Option<&str>,
    every: &[T],
    named: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let Some(list) = value.filter(|v| *v != "all") else {
        return Ok(every.to_vec());
    };
    let mut picked = Vec::new();
    for name in list.split(',') {
        let item = named(name)?;
        if picked.contains(&item) {
            return Err(format!("{name} named twice in {option}"));
        }
        picked.push(item);
    }
    Ok(picked)
}

fn parse_command(command: &str, args: &[&String]) -> Result<Command, String> {
    let allowed: &[&str] = match command {
        "https-server" => &["--port", "--server", "--cert", "--key", "--cpu"],
        _ => &[
            "--runs",
            "--secs",
            "--conns",
            "--warmup",
            "--server",
            "--mode",
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

    if command == "https-server" {
        let required = |name: &str| get(name).ok_or_else(|| format!("`{command}` needs {name}"));
        let port = required("--port")?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("--port needs a port number, got `{port}`"))?;
        return Ok(Command::Server(ServerArgs {
            port,
            server: server_named(required("--server")?)?,
            cert: PathBuf::from(required("--cert")?),
            key: PathBuf::from(required("--key")?),
            cpu: cpu("--cpu", 0)?,
        }));
    }

    let mode_named = |name: &str| {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| format!("unknown mode `{name}`; available: keepalive, handshake"))
    };
    Ok(Command::Bench(BenchArgs {
        runs: int("--runs", 5, 1, 1000)? as usize,
        servers: pick("--server", get("--server"), &SERVERS, server_named)?,
        modes: pick("--mode", get("--mode"), &Mode::ALL, mode_named)?,
        conns: int("--conns", 64, 1, MAX_CONNS as u64)? as usize,
        secs: int("--secs", 10, 1, 3600)?,
        warmup: int("--warmup", 1, 0, 60)?,
        server_cpu: cpu("--server-cpu", 0)?,
        client_cpu: cpu("--client-cpu", 1)?,
    }))
}

/// Runs a parsed https command (not `Help`, which the caller prints) and returns the exit code.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Help => ExitCode::SUCCESS,
        Command::Server(args) => run_server(&args),
        Command::Bench(args) => bench(&args),
    }
}

/// Runs `server` over HTTPS with `config` on 127.0.0.1:`port` (0 picks a free port); as
/// [`http::serve`] otherwise.
pub fn serve(
    server: Server,
    port: u16,
    config: Arc<ServerConfig>,
    on_ready: OnReady,
) -> io::Result<()> {
    match server {
        Server::Kettle => {
            let acceptor = kettle::tls::TlsAcceptor::from_config(config);
            let options = kettle::web::ServerOptions::default().tls(acceptor);
            http::kettle_server::serve_with(port, options, on_ready)
        }
        Server::Hyper => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            http::hyper_server::serve_with(port, Some(acceptor), on_ready)
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {} server has no HTTPS side", other.name()),
        )),
    }
}

fn run_server(args: &ServerArgs) -> ExitCode {
    let server = args.server;
    let served = netbench::run_server(Some(args.cpu), "server", server.name(), |on_ready| {
        let config = tls::server_config_from_files(&args.cert, &args.key)?;
        serve(server, args.port, config, on_ready)
    });
    match served {
        Ok(()) => {
            // The parent compares these with what wrk counted.
            let total = Fields::new()
                .with("server", server.name())
                .with("answered", response::answered())
                .with("tls_handshakes", tls::handshakes());
            println!("{total}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("https-server: {e}")),
    }
}

/// One run: a server with the certificate in `certs`, wrk against it in `mode` (warm-up, then
/// the measured run), the server stopped, the counts checked.
fn measure(
    mode: Mode,
    server: Server,
    args: &BenchArgs,
    certs: &tls::CertFiles,
) -> Result<Fields, String> {
    let path = |p: &std::path::Path| p.display().to_string();
    let server_args: Vec<String> = vec![
        "https-server".into(),
        "--port".into(),
        "0".into(),
        "--server".into(),
        server.name().into(),
        "--cert".into(),
        path(certs.cert()),
        "--key".into(),
        path(certs.key()),
        "--cpu".into(),
        args.server_cpu.to_string(),
    ];
    let proc = ServerProcess::start(server.name(), &server_args)?;
    let url = format!("https://127.0.0.1:{}/", proc.port());
    let wrk_args = |secs| wrk::command(1, args.conns, secs, &url, mode.headers(), None);
    let warmup = (args.warmup > 0).then(|| wrk_args(args.warmup));
    let measured = Measured::load(
        &proc,
        Some(args.client_cpu),
        warmup.as_deref(),
        &wrk_args(args.secs),
    )?;
    let tail = proc.stop()?;
    let (report, answered) = http::exit_report(server.name(), &tail)?;
    // At most one request per connection is unanswered in wrk's eyes when it stops.
    measured.check_answered(server.name(), answered, args.conns as u64)?;
    let handshakes = report
        .get("tls_handshakes")
        .and_then(|h| h.parse::<u64>().ok())
        .ok_or_else(|| format!("the {} server did not report its handshakes", server.name()))?;
    check_handshakes(mode, handshakes, answered)?;

    let mut line = Fields::new()
        .with("server", server.name())
        .with("workload", "https-hello")
        .with_all(args.params(mode))
        .with_all(measured.fields(answered))
        .with("tls_handshakes", handshakes);
    if mode == Mode::Handshake {
        // One request per connection and handshake: the same figures under the names this
        // mode is about.
        let requests = measured.report.requests as f64;
        line.push(
            "handshakes_per_s",
            format_args!("{:.0}", measured.report.req_per_s),
        );
        line.push(
            "server_cpu_us_per_handshake",
            format_args!("{:.3}", measured.server_cpu * 1e6 / requests),
        );
    }
    Ok(line)
}

/// In handshake mode, every request the server answered must have come on a connection of its
/// own, with a handshake of its own: fewer handshakes than answers means wrk kept connections
/// alive and the run did not measure handshakes.
fn check_handshakes(mode: Mode, handshakes: u64, answered: u64) -> Result<(), String> {
    if mode == Mode::Handshake && handshakes < answered {
        return Err(format!(
            "handshake mode: the server made {handshakes} TLS handshakes for {answered} \
             requests; wrk reused connections despite `Connection: close`"
        ));
    }
    Ok(())
}

/// Issue 10's goals per mode: (key, bound on kettle/hyper).
fn targets(mode: Mode) -> [(&'static str, Bound); 2] {
    let [rate, cost, _] = mode.ratio_keys();
    [(rate, Bound::AtLeast(1.0)), (cost, Bound::AtMost(1.0))]
}

/// The `ratio kettle/hyper` line and the `target` lines of one mode, from its two medians.
fn report_lines(mode: Mode, args: &BenchArgs, kettle: &Fields, hyper: &Fields) -> Vec<String> {
    let mut ratio = format!("ratio kettle/hyper mode={}", mode.name());
    for key in mode.ratio_keys() {
        ratio += &format!(" {key}={}", harness::ratio(kettle, hyper, key));
    }
    let about = Fields::new()
        .with("workload", "https-hello")
        .with("conns", args.conns)
        .with("secs", args.secs);
    let mut lines = vec![format!("{ratio} {about}")];
    for (key, bound) in targets(mode) {
        let ratio = harness::ratio(kettle, hyper, key);
        lines.push(format!(
            "target kettle/hyper mode={} key={key} ratio={ratio} {}",
            mode.name(),
            bound.judge(&ratio)
        ));
    }
    lines
}

fn bench(args: &BenchArgs) -> ExitCode {
    if let Err(code) = netbench::check_cpus(args.server_cpu, args.client_cpu) {
        return code;
    }
    if let Err(e) = http::check_wrk("https-hello") {
        return fail(&e);
    }
    let certs = match tls::CertFiles::generate() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    // Every (mode, server) pair is one group of runs; all alternate within each run.
    let groups: Vec<(Mode, Server)> = args
        .modes
        .iter()
        .flat_map(|&m| args.servers.iter().map(move |&s| (m, s)))
        .collect();
    let lines = match netbench::alternate(
        "https-hello",
        args.runs,
        &groups,
        |(m, s)| format!("{} ({})", s.name(), m.name()),
        |(m, s)| measure(m, s, args, &certs),
    ) {
        Ok(lines) => lines,
        Err(e) => return fail(&e),
    };
    let medians = netbench::print_with_medians(&lines);

    let mut ok = true;
    for &mode in &args.modes {
        let median_of = |s: Server| {
            groups
                .iter()
                .zip(&medians)
                .find(|((m, gs), _)| *m == mode && *gs == s)
                .map(|(_, f)| f)
        };
        if let (Some(k), Some(h)) = (median_of(Server::Kettle), median_of(Server::Hyper)) {
            for line in report_lines(mode, args, k, h) {
                println!("{line}");
            }
        }
        // The parameters must agree within a mode (they differ between modes by design).
        let of_mode: Vec<Vec<Fields>> = groups
            .iter()
            .zip(&lines)
            .filter(|((m, _), _)| *m == mode)
            .map(|(_, l)| l.clone())
            .collect();
        ok &= netbench::consistent(&of_mode);
    }

    let with_errors: Vec<String> = lines
        .iter()
        .flatten()
        .filter(|l| l.get("wrk_errors").is_some_and(|e| e != "0"))
        .map(|l| l.to_string())
        .collect();
    if !with_errors.is_empty() {
        eprintln!("kettle-bench: wrk reported errors (timeouts, socket errors or non-2xx) in:");
        for l in with_errors {
            eprintln!("  {l}");
        }
        ok = false;
    }
    if ok {
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
    fn not_an_https_command() {
        assert_eq!(parse_str("http-hello --runs 3"), None);
        assert_eq!(parse_str("http-server --port 1 --server hyper"), None);
    }

    #[test]
    fn server_args() {
        assert_eq!(
            ok("https-server --port 0 --server hyper --cert /c.pem --key=/k.pem --cpu 1"),
            Command::Server(ServerArgs {
                port: 0,
                server: Server::Hyper,
                cert: "/c.pem".into(),
                key: "/k.pem".into(),
                cpu: 1,
            })
        );
    }

    #[test]
    fn bench_args_and_defaults() {
        assert_eq!(
            ok("https-hello"),
            Command::Bench(BenchArgs {
                runs: 5,
                servers: vec![Server::Kettle, Server::Hyper],
                modes: vec![Mode::KeepAlive, Mode::Handshake],
                conns: 64,
                secs: 10,
                warmup: 1,
                server_cpu: 0,
                client_cpu: 1,
            })
        );
        match ok("--runs 3 https-hello --secs 5 --mode handshake --server hyper,kettle") {
            Command::Bench(b) => {
                assert_eq!(b.servers, [Server::Hyper, Server::Kettle]);
                assert_eq!(b.modes, [Mode::Handshake]);
                assert_eq!((b.runs, b.secs), (3, 5));
            }
            other => panic!("{other:?}"),
        }
        match ok("https-hello --mode=keepalive,handshake --server all") {
            Command::Bench(b) => {
                assert_eq!(b.modes, Mode::ALL);
                assert_eq!(b.servers, SERVERS);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ok("https-hello --mode teapot --help"), Command::Help);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "https-server",
            "https-server --port 0 --server hyper --cert c",
            "https-server --port 0 --server hyper --key k",
            "https-server --port 0 --cert c --key k",
            "https-server --port 0 --server epoll --cert c --key k",
            "https-server --port x --server hyper --cert c --key k",
            "https-server --port 0 --server hyper --cert c --key k --runs 2",
            "https-hello --server kettle-raw",
            "https-hello --server actix",
            "https-hello --server kettle,kettle",
            "https-hello --mode pipeline",
            "https-hello --mode handshake,handshake",
            "https-hello --mode all,handshake",
            "https-hello --pipeline 16",
            "https-hello --runs 0",
            "https-hello --conns 0",
            "https-hello extra",
        ] {
            assert!(
                matches!(parse_str(bad), Some(Err(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn handshake_check_and_report_lines() {
        assert!(check_handshakes(Mode::Handshake, 1000, 1000).is_ok());
        assert!(check_handshakes(Mode::Handshake, 1064, 1000).is_ok());
        assert!(check_handshakes(Mode::Handshake, 128, 1000).is_err());
        assert!(check_handshakes(Mode::KeepAlive, 128, 1000).is_ok());

        let args = match ok("https-hello --secs 5") {
            Command::Bench(b) => b,
            other => panic!("{other:?}"),
        };
        let f = |s: &str| Fields::parse(s).unwrap();
        let kettle = f("handshakes_per_s=1100 server_cpu_us_per_handshake=90 p99_us=100");
        let hyper = f("handshakes_per_s=1000 server_cpu_us_per_handshake=100 p99_us=200");
        assert_eq!(
            report_lines(Mode::Handshake, &args, &kettle, &hyper),
            [
                "ratio kettle/hyper mode=handshake handshakes_per_s=1.100 \
                 server_cpu_us_per_handshake=0.900 p99_us=0.500 workload=https-hello conns=64 \
                 secs=5",
                "target kettle/hyper mode=handshake key=handshakes_per_s ratio=1.100 \
                 at_least=1 met=yes",
                "target kettle/hyper mode=handshake key=server_cpu_us_per_handshake \
                 ratio=0.900 at_most=1 met=yes",
            ]
        );
        let kettle = f("req_per_s=90 server_cpu_us_per_req=5");
        let hyper = f("req_per_s=100 server_cpu_us_per_req=4");
        let lines = report_lines(Mode::KeepAlive, &args, &kettle, &hyper);
        assert!(lines[0].contains(" p99_us=nan "), "{}", lines[0]);
        assert!(lines[1].ends_with("key=req_per_s ratio=0.900 at_least=1 met=no"));
        assert!(lines[2].ends_with("key=server_cpu_us_per_req ratio=1.250 at_most=1 met=no"));
    }

    /// Sends `GET /` (with `Connection: close` if `close`) over `tls` and reads the response:
    /// its head (lower-cased) and body.
    fn get(tls: &mut impl ReadWrite, close: bool) -> (String, Vec<u8>) {
        let connection = if close { "Connection: close\r\n" } else { "" };
        let request = format!("GET / HTTP/1.1\r\nHost: localhost\r\n{connection}\r\n");
        tls.write_all(request.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = tls.read(&mut chunk).unwrap();
            assert!(n > 0, "the connection closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec())
            .unwrap()
            .to_ascii_lowercase();
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < response::BODY.len() {
            let mut chunk = [0u8; 64];
            let n = tls.read(&mut chunk).unwrap();
            assert!(n > 0, "the connection closed in the body");
            body.extend_from_slice(&chunk[..n]);
        }
        (head, body)
    }

    /// `Read + Write`, for the client stream.
    trait ReadWrite: Read + Write {}
    impl<T: Read + Write> ReadWrite for T {}

    /// Both servers over TLS: two requests on one kept-alive connection, then one with
    /// `Connection: close`, which the server must announce and act on (a clean TLS close);
    /// every connection counted as one handshake.
    #[test]
    fn both_servers_serve_https_and_close_when_asked() {
        use kettle::tls::rustls::{ClientConnection, StreamOwned};

        let (cert, key) = tls::tests::pems();
        let client = tls::tests::client_config(&cert);
        for server in SERVERS {
            let config = tls::server_config(cert.as_bytes(), key.as_bytes()).unwrap();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                serve(
                    server,
                    0,
                    config,
                    Box::new(move |port, stop| ready_tx.send((port, stop)).unwrap()),
                )
            });
            let (port, stop) = ready_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{server:?} did not start"));
            let connect = || {
                let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let name = "localhost".try_into().unwrap();
                let conn = ClientConnection::new(client.clone(), name).unwrap();
                StreamOwned::new(conn, tcp)
            };
            let before = tls::handshakes();

            let mut kept = connect();
            for _ in 0..2 {
                let (head, body) = get(&mut kept, false);
                assert!(
                    head.starts_with("http/1.1 200 ok\r\n"),
                    "{server:?}: {head}"
                );
                assert!(!head.contains("connection: close"), "{server:?}: {head}");
                assert_eq!(body, response::BODY, "{server:?}");
            }

            let mut closing = connect();
            let (head, body) = get(&mut closing, true);
            assert!(head.contains("\r\nconnection: close"), "{server:?}: {head}");
            assert_eq!(body, response::BODY, "{server:?}");
            // close_notify, then the end of the TCP stream: a read of 0, not an error.
            let mut rest = Vec::new();
            closing.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "{server:?}: {rest:?}");

            // Other tests' servers may count too, so only a lower bound holds here.
            assert!(tls::handshakes() - before >= 2, "{server:?}");
            drop(kept);
            stop();
            thread.join().unwrap().unwrap();
        }
    }
}
