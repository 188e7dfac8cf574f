//! What every client of `client-get` shares: how a phase's requests are dealt out to the
//! request loops ([`Tickets`]), what counts as a right answer ([`check`]), and the measured
//! window with the CPU times read at both of its ends ([`Span`], [`Measured`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys;
use crate::workloads::http::response::BODY;

/// The requests a phase still has to make, shared by its request loops. Each loop takes a
/// ticket before each request and stops when none is left, so a phase makes exactly its count
/// however the loops interleave, and no loop idles while others still have a queue of their own
/// (which a fixed share per loop would cause at the end of every phase).
///
/// Atomic so the tokio clients can share it between `tokio::spawn`ed tasks (which must be
/// `Send`, even on a `current_thread` runtime); uncontended on one thread, a compare-and-swap
/// costs nanoseconds against microseconds per request.
#[derive(Debug)]
pub struct Tickets {
    /// How many requests are still to be made.
    left: AtomicU64,
}

impl Tickets {
    /// `count` tickets.
    pub fn new(count: u64) -> Tickets {
        Tickets {
            left: AtomicU64::new(count),
        }
    }

    /// Takes one ticket: true if there was one, so the caller makes one more request.
    pub fn take(&self) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Checks one response: status 200 and exactly the body the server sends (`Hello, World!`).
/// A client that got anything else has measured something else, so the run fails.
pub fn check(status: u16, body: &[u8]) -> Result<(), String> {
    if status == 200 && body == BODY {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
    Err(format!(
        "expected 200 {:?}, got {status} with a {}-byte body {shown:?}",
        String::from_utf8_lossy(BODY),
        body.len()
    ))
}

/// What one client measured over its measured phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Requests made (and checked) in the measured phase.
    pub requests: u64,
    /// Wall-clock time of the measured phase.
    pub elapsed: Duration,
    /// The client process's user + system CPU time over the phase (all its threads).
    pub client_cpu: Duration,
    /// The server process's user + system CPU time over the phase, when its pid was given.
    pub server_cpu: Option<Duration>,
    /// The peak RSS in MiB of a client that ran in a process of its own (Python); `None` for the
    /// Rust clients, whose child process reads its own.
    pub peak_rss_mb: Option<f64>,
}

/// The measured window of a Rust client: started after the warm-up phase, finished after the
/// measured one. Own CPU time comes from `getrusage` (microseconds), the server's from
/// `/proc/PID/stat` (clock ticks, hence runs of seconds).
#[derive(Debug)]
pub struct Span {
    /// When the window opened.
    started: Instant,
    /// This process's CPU time then.
    own_cpu: Duration,
    /// The server's pid and its CPU time then, if the server is being measured too.
    server: Option<(u32, Duration)>,
}

impl Span {
    /// Opens the window, reading the CPU times of this process and of the server (if
    /// `server_pid` is given).
    pub fn start(server_pid: Option<u32>) -> Result<Span, String> {
        let server = match server_pid {
            Some(pid) => Some((pid, server_cpu(pid)?)),
            None => None,
        };
        let own_cpu = own_cpu()?;
        Ok(Span {
            started: Instant::now(),
            own_cpu,
            server,
        })
    }

    /// Closes the window after `requests` requests (the reads in the reverse order of
    /// [`start`](Self::start), so that neither read lands inside the other's window).
    pub fn finish(self, requests: u64) -> Result<Measured, String> {
        let elapsed = self.started.elapsed();
        let client_cpu = own_cpu()?.saturating_sub(self.own_cpu);
        let server_cpu = match self.server {
            Some((pid, before)) => Some(server_cpu(pid)?.saturating_sub(before)),
            None => None,
        };
        Ok(Measured {
            requests,
            elapsed,
            client_cpu,
            server_cpu,
            peak_rss_mb: None,
        })
    }
}

fn own_cpu() -> Result<Duration, String> {
    sys::own_cpu_time().map_err(|e| format!("cannot read this process's CPU time: {e}"))
}

fn server_cpu(pid: u32) -> Result<Duration, String> {
    sys::process_cpu_time(pid).map_err(|e| format!("cannot read the server's CPU time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_run_out_exactly() {
        let t = Tickets::new(3);
        assert_eq!((0..5).filter(|_| t.take()).count(), 3);
        assert!(!Tickets::new(0).take());
    }

    #[test]
    fn only_the_hello_response_passes() {
        assert_eq!(check(200, b"Hello, World!"), Ok(()));
        assert!(check(404, b"Hello, World!").is_err());
        assert!(check(200, b"Hello, World").is_err());
        let long = vec![b'x'; 1000];
        let msg = check(500, &long).unwrap_err();
        assert!(msg.contains("500") && msg.contains("1000-byte"), "{msg}");
    }

    #[test]
    fn a_span_measures_this_process() {
        let span = Span::start(Some(std::process::id())).unwrap();
        // Some CPU work, so the window is not empty.
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let m = span.finish(7).unwrap();
        assert_eq!(m.requests, 7);
        assert!(m.elapsed > Duration::ZERO);
        assert!(m.server_cpu.is_some());
        assert_eq!(
            Span::start(None).unwrap().finish(1).unwrap().server_cpu,
            None
        );
    }
}
