//! What the two-process network benchmarks (`echo`, `http-hello`, `ws-echo`, ...) share: the
//! server side of a `*-server` command (signals, pinning, the ready line), the parent's handle
//! on a server child process, option parsing, the CPU checks, latency percentiles, and the loop
//! that alternates servers over the runs and prints each group of lines with its median.
//!
//! Both benchmarks work the same way: the parent starts a server child (this executable re-run
//! as `echo-server` or `http-server`) pinned to one core, reads its `... port=P` line, puts a
//! load on it from another core, stops it with SIGTERM and checks that it exits with status 0.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::process::{Child, ChildStdout, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{self, Fields};
use crate::sys;

/// Stops a running server from any thread.
pub type StopFn = Box<dyn FnOnce() + Send>;

/// What a server calls once it listens: the actual port, and how to stop it.
pub type OnReady = Box<dyn FnOnce(u16, StopFn)>;

/// The server side of a `*-server` command. Blocks SIGTERM and SIGINT (first, before `serve`
/// creates any thread, so that every thread inherits the mask and no signal kills the process
/// instead of stopping the server), pins the process to `cpu` (if given: a multi-worker server
/// runs unpinned), and runs `serve` with an [`OnReady`] that prints `KEY=NAME port=P`, flushes
/// it (stdout may be the parent's pipe) and starts a thread that calls the server's
/// [`StopFn`] when a signal arrives. Returns what `serve` returned.
pub fn run_server<T>(
    cpu: Option<usize>,
    key: &str,
    name: &str,
    serve: impl FnOnce(OnReady) -> io::Result<T>,
) -> Result<T, String> {
    let signals =
        sys::StopSignals::block().map_err(|e| format!("cannot block SIGTERM/SIGINT: {e}"))?;
    if let Some(cpu) = cpu {
        harness::pin_to_cpu(cpu).map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
    }
    let line = Fields::new().with(key, name);
    let on_ready: OnReady = Box::new(move |port, stop| {
        println!("{}", line.with("port", port));
        let _ = io::stdout().flush();
        // Detached: it ends with the process if no signal ever comes.
        std::thread::spawn(move || {
            if signals.wait().is_ok() {
                stop();
            }
        });
    });
    serve(on_ready).map_err(|e| format!("the {name} server failed: {e}"))
}

/// Prints `kettle-bench: MSG` on stderr and returns the failure status.
pub fn fail(msg: &str) -> ExitCode {
    eprintln!("kettle-bench: {msg}");
    ExitCode::FAILURE
}

/// A server child process, stopped (SIGTERM) and reaped however the run ends.
pub struct ServerProcess {
    child: Child,
    stdout: Option<BufReader<ChildStdout>>,
    port: u16,
    name: String,
    waited: bool,
}

impl ServerProcess {
    /// Runs this executable with `args` (a `*-server` command that must ask for port 0 and
    /// print a `port=P` line once it listens), waits for that line, and checks once that the
    /// port accepts a connection. `name` is for messages.
    pub fn start(name: &str, args: &[String]) -> Result<ServerProcess, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let mut child = std::process::Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {name} server: {e}"))?;
        let stdout = child.stdout.take().map(BufReader::new);
        let mut proc = ServerProcess {
            child,
            stdout,
            port: 0,
            name: name.to_string(),
            waited: false,
        };
        // The ready line carries the port. Lines before it that carry none are a library's
        // own banner (Kettle's `run_app_workers` prints where it serves) and are skipped. EOF
        // instead means the server died (its reason is already on stderr); dropping `proc`
        // then reaps it.
        let mut skipped = Vec::new();
        let port = loop {
            let mut line = String::new();
            match proc.stdout.as_mut().map(|out| out.read_line(&mut line)) {
                Some(Ok(n)) if n > 0 => {}
                _ => break None,
            }
            let port = Fields::parse(&line).and_then(|f| f.get("port")?.parse().ok());
            if port.is_some() {
                break port;
            }
            skipped.push(line);
        };
        proc.port =
            port.ok_or_else(|| format!("the {name} server did not start: {:?}", skipped.concat()))?;
        // Listening implies accepting (the backlog takes the connection), but check once so
        // that a server that cannot serve fails here, with a clear message.
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, proc.port);
        TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5))
            .map_err(|e| format!("the {name} server does not accept: {e}"))?;
        Ok(proc)
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, for reading its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit; an error unless the status is 0.
    /// Returns the lines the server printed on stdout after its ready line.
    pub fn stop(mut self) -> Result<Vec<String>, String> {
        sys::terminate(self.child.id())
            .map_err(|e| format!("cannot signal the {} server: {e}", self.name))?;
        let status = self.wait(Duration::from_secs(10))?;
        if !status.success() {
            return Err(format!(
                "the {} server exited with {status} after SIGTERM",
                self.name
            ));
        }
        // The process has exited, so this reads to EOF without blocking for long.
        let mut rest = Vec::new();
        if let Some(out) = self.stdout.take() {
            for line in out.lines() {
                rest.push(line.map_err(|e| format!("cannot read the server's output: {e}"))?);
            }
        }
        Ok(rest)
    }

    fn wait(&mut self, limit: Duration) -> Result<std::process::ExitStatus, String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.waited = true;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    return Err(format!(
                        "the {} server did not exit within {limit:?} of SIGTERM",
                        self.name
                    ))
                }
                Err(e) => return Err(format!("cannot wait for the {} server: {e}", self.name)),
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Only on the error paths: no server outlives the benchmark.
        if !self.waited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Splits `--opt V` / `--opt=V` pairs, rejecting unknown options, repeats and stray words.
pub fn options(
    command: &str,
    args: &[&String],
    allowed: &[&str],
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        if !name.starts_with("--") {
            return Err(format!("`{command}` takes no argument `{arg}`"));
        }
        if !allowed.contains(&name) {
            return Err(format!("unknown option `{name}` for `{command}`"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("option {name} given twice"));
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .ok_or_else(|| format!("option {name} needs a value"))?;
                i += 1;
                v.to_string()
            }
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// Checks that the server and client cores are usable (a usage error, status 2, if not) and
/// warns if they are the same core.
pub fn check_cpus(server_cpu: usize, client_cpu: usize) -> Result<(), ExitCode> {
    match harness::allowed_cpus() {
        Ok(cpus) => {
            for (what, cpu) in [("--server-cpu", server_cpu), ("--client-cpu", client_cpu)] {
                if !cpus.contains(&cpu) {
                    eprintln!("kettle-bench: {what} {cpu} is not available; usable: {cpus:?}");
                    return Err(ExitCode::from(2));
                }
            }
        }
        Err(e) => eprintln!("kettle-bench: cannot read the CPU affinity ({e}); trying anyway"),
    }
    if server_cpu == client_cpu {
        eprintln!("kettle-bench: warning: server and client share CPU {server_cpu}");
    }
    Ok(())
}

/// A goal for a median figure or a ratio of two: a `target` line's bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// A rate: it must reach this.
    AtLeast(f64),
    /// A cost: it must not exceed this.
    AtMost(f64),
}

impl Bound {
    /// `at_least=B met=yes` (or `at_most=B`, `met=no`) for `value` as printed; a value that is
    /// not a finite number (`nan`: a median missing) never meets it.
    pub fn judge(self, value: &str) -> String {
        let value = value.parse::<f64>().ok().filter(|r| r.is_finite());
        let (word, limit, met) = match self {
            Bound::AtLeast(b) => ("at_least", b, value.is_some_and(|r| r >= b)),
            Bound::AtMost(b) => ("at_most", b, value.is_some_and(|r| r <= b)),
        };
        format!("{word}={limit} met={}", if met { "yes" } else { "no" })
    }
}

/// Measures every server `runs` times, alternating (a, b, c, a, b, c, ...) so that slow drift in
/// the machine hits all alike, with progress and each line on stderr meanwhile. Returns the
/// lines grouped by server, in the order of `servers`; stops at the first failed run.
pub fn alternate<S: Copy>(
    workload: &str,
    runs: usize,
    servers: &[S],
    name: impl Fn(S) -> String,
    mut measure: impl FnMut(S) -> Result<Fields, String>,
) -> Result<Vec<Vec<Fields>>, String> {
    let mut lines: Vec<Vec<Fields>> = vec![Vec::new(); servers.len()];
    for run in 1..=runs {
        for (slot, &server) in servers.iter().enumerate() {
            eprintln!(
                "kettle-bench: {workload} run {run}/{runs} on {}",
                name(server)
            );
            let line = measure(server)?;
            eprintln!("  {line}");
            lines[slot].push(line);
        }
    }
    Ok(lines)
}

/// Prints each group's lines followed by its median line, and returns the medians.
pub fn print_with_medians(groups: &[Vec<Fields>]) -> Vec<Fields> {
    let mut medians = Vec::new();
    for group in groups {
        for line in group {
            println!("{line}");
        }
        let median = harness::median(group);
        println!("{median}");
        medians.push(median);
    }
    medians
}

/// Reports parameters that differ between runs (on stderr); true if there are none.
pub fn consistent(groups: &[Vec<Fields>]) -> bool {
    let all: Vec<&Fields> = groups.iter().flatten().collect();
    let problems = harness::inconsistencies(&all);
    if problems.is_empty() {
        return true;
    }
    eprintln!("kettle-bench: the runs disagree on their parameters:");
    for p in problems {
        eprintln!("  {p}");
    }
    false
}

/// The `q` quantile (nearest rank) of sorted nanosecond latencies, in microseconds.
pub fn percentile_us(sorted_ns: &[u32], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted_ns.len() as f64).ceil() as usize;
    sorted_ns[rank.clamp(1, sorted_ns.len()) - 1] as f64 / 1000.0
}

/// The longest warm-up of a closed-loop load, however long the run.
const MAX_WARMUP: Duration = Duration::from_secs(1);

/// One connection of a closed-loop load (`echo`, `ws-echo`): one round trip in flight, the
/// next begun as soon as the answer to the last is whole.
pub trait RoundTrip {
    /// Begins the next round trip at `now`: as much of the request written as the socket
    /// takes, waiting for `OUT` (through `ep`, as `token`) for the rest.
    fn start(&mut self, ep: &sys::Epoll, token: u64, now: Instant) -> io::Result<()>;
    /// The socket turned writable: writes more of the request.
    fn write_some(&mut self, ep: &sys::Epoll, token: u64) -> io::Result<()>;
    /// The socket turned readable (or failed): reads; true once the answer is whole (and
    /// checked).
    fn read_some(&mut self) -> io::Result<bool>;
    /// When the round trip in flight began.
    fn started(&self) -> Instant;
}

/// Writes `buf[*sent..]` to a non-blocking `stream` as far as the kernel takes it, and
/// watches for `OUT` (through `ep`, as `token`) exactly while some remains: the write half
/// of a [`RoundTrip`].
pub fn write_pending(
    stream: &TcpStream,
    buf: &[u8],
    sent: &mut usize,
    watching_out: &mut bool,
    ep: &sys::Epoll,
    token: u64,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while *sent < buf.len() {
        match (&*stream).write(&buf[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let want_out = *sent < buf.len();
    if want_out != *watching_out {
        let events = if want_out {
            sys::IN | sys::OUT
        } else {
            sys::IN
        };
        ep.modify(stream.as_raw_fd(), events, token)?;
        *watching_out = want_out;
    }
    Ok(())
}

/// What a closed-loop load measured over its window.
pub struct ClosedLoop {
    /// The window's length.
    pub elapsed: Duration,
    /// Every completed round trip's latency in nanoseconds, sorted.
    pub latencies: Vec<u32>,
    /// The server's CPU time over the window, if its pid was given.
    pub server_cpu: Option<Duration>,
    /// This process's CPU time over the window.
    pub client_cpu: Duration,
}

/// Drives `conns` (registered with `ep` for `IN`, each as its index) in a closed loop: a
/// warm-up of a tenth of `secs` (at most a second), then a `secs`-long window over which
/// round trips are counted and timed, and the server's (`server_pid`) and this process's
/// CPU time are read. `what` names a round trip in errors ("round trip", "message").
pub fn run_closed_loop<C: RoundTrip>(
    ep: &sys::Epoll,
    conns: &mut [C],
    secs: f64,
    server_pid: Option<u32>,
    what: &str,
) -> io::Result<ClosedLoop> {
    struct Window {
        start: Instant,
        server_cpu: Option<Duration>,
        client_cpu: Duration,
    }
    let window_len = Duration::from_secs_f64(secs);
    let warmup = (window_len / 10).min(MAX_WARMUP);
    let begin = Instant::now();
    let measure_from = begin + warmup;
    let mut end = measure_from + window_len;
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.start(ep, i as u64, begin)?;
    }

    let server_cpu = |pid: Option<u32>| pid.map(sys::process_cpu_time).transpose();
    let mut window: Option<Window> = None;
    // Latencies in nanoseconds (u32: up to 4.2 s), sized for a fast server so the vector
    // rarely grows while measuring.
    let mut latencies: Vec<u32> =
        Vec::with_capacity((secs * 200_000.0).clamp(1024.0, 50_000_000.0) as usize);
    let mut events = sys::event_buffer(conns.len().clamp(1, 1024));
    let mut now = Instant::now();
    while now < end {
        if window.is_none() && now >= measure_from {
            window = Some(Window {
                start: now,
                server_cpu: server_cpu(server_pid)?,
                client_cpu: sys::own_cpu_time()?,
            });
            // The window is `secs` long from when it actually started.
            end = now + window_len;
        }
        let deadline = if window.is_some() { end } else { measure_from };
        let n = ep.wait(&mut events, Some(deadline.saturating_duration_since(now)))?;
        now = Instant::now();
        for ev in &events[..n] {
            let conn = &mut conns[ev.u64 as usize];
            if ev.events & sys::OUT != 0 {
                conn.write_some(ep, ev.u64)?;
            }
            // IN, or an error or hang-up, which the read then reports.
            if ev.events & !sys::OUT != 0 && conn.read_some()? {
                now = Instant::now();
                if window.is_some() {
                    let ns = now.duration_since(conn.started()).as_nanos();
                    latencies.push(ns.min(u32::MAX as u128) as u32);
                }
                conn.start(ep, ev.u64, now)?;
            }
        }
    }

    let elapsed = now.duration_since(window.as_ref().map_or(now, |w| w.start));
    let server_cpu_end = server_cpu(server_pid)?;
    let client_cpu_end = sys::own_cpu_time()?;
    let Some(window) = window else {
        return Err(io::Error::other("the measured window never started"));
    };
    if latencies.is_empty() {
        return Err(io::Error::other(format!(
            "no {what} completed in the measured window: is the server stuck?"
        )));
    }
    latencies.sort_unstable();
    Ok(ClosedLoop {
        elapsed,
        latencies,
        server_cpu: window
            .server_cpu
            .zip(server_cpu_end)
            .map(|(before, after)| after.saturating_sub(before)),
        client_cpu: client_cpu_end.saturating_sub(window.client_cpu),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn bounds() {
        assert_eq!(Bound::AtLeast(1.1).judge("1.100"), "at_least=1.1 met=yes");
        assert_eq!(Bound::AtLeast(1.0).judge("0.999"), "at_least=1 met=no");
        assert_eq!(Bound::AtMost(1.05).judge("1.050"), "at_most=1.05 met=yes");
        assert_eq!(Bound::AtMost(0.1).judge("nan"), "at_most=0.1 met=no");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_us(&v, 0.50), 50.0);
        assert_eq!(percentile_us(&v, 0.99), 99.0);
        assert_eq!(percentile_us(&[7000], 0.99), 7.0);
        assert!(percentile_us(&[], 0.5).is_nan());
    }

    #[test]
    fn options_split_and_reject() {
        let args = strings("--a 1 --b=2");
        let refs: Vec<&String> = args.iter().collect();
        assert_eq!(
            options("x", &refs, &["--a", "--b"]),
            Ok(vec![("--a".into(), "1".into()), ("--b".into(), "2".into())])
        );
        for bad in ["--c 1", "--a", "--a 1 --a 2", "stray"] {
            let args = strings(bad);
            let refs: Vec<&String> = args.iter().collect();
            assert!(options("x", &refs, &["--a"]).is_err(), "{bad:?}");
        }
    }
}
