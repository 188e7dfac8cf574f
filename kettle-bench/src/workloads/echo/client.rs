//! The load generator: `conns` connections in a closed loop, on a bare epoll loop.
//!
//! It is written without any runtime so that it is the same client for every server, and so
//! that it costs as little as possible: the less CPU the client needs per round trip, the more
//! of the load is the server's. Each connection sends a `size`-byte message, waits for all of
//! it to come back, checks that it is the same bytes, and sends the next one.
//!
//! A warm-up (a tenth of the run, at most one second) lets connections, caches and the
//! servers' buffers settle; only round trips completed in the measured window that follows are
//! counted, and the server's CPU time is read at both ends of that window.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use super::ClientArgs;
use crate::harness::Fields;
use crate::netbench::{percentile_us, run_closed_loop, write_pending, RoundTrip};
use crate::sys::{self, Epoll};

struct Conn {
    stream: TcpStream,
    /// The message in flight; its first bytes carry a sequence number so that a stale or
    /// misrouted echo is caught.
    send: Vec<u8>,
    recv: Vec<u8>,
    sent: usize,
    received: usize,
    seq: u64,
    started: Instant,
    /// Whether the fd is watched for `OUT` too (only while part of a message is unsent).
    watching_out: bool,
}

impl RoundTrip for Conn {
    fn started(&self) -> Instant {
        self.started
    }

    /// Starts the next round trip: new sequence number, clock started, as much written as
    /// the kernel takes now.
    fn start(&mut self, ep: &Epoll, token: u64, now: Instant) -> io::Result<()> {
        self.seq += 1;
        for (byte, seq_byte) in self.send.iter_mut().zip(self.seq.to_le_bytes()) {
            *byte = seq_byte;
        }
        self.sent = 0;
        self.received = 0;
        self.started = now;
        self.write_some(ep, token)
    }

    /// Writes the unsent rest of the message; watches for `OUT` while some remains.
    fn write_some(&mut self, ep: &Epoll, token: u64) -> io::Result<()> {
        write_pending(
            &self.stream,
            &self.send,
            &mut self.sent,
            &mut self.watching_out,
            ep,
            token,
        )
    }

    /// Reads what has arrived of the echo. True when the whole message is back (and checked).
    fn read_some(&mut self) -> io::Result<bool> {
        // Never more than the rest of this message: the next one's bytes stay in the kernel.
        let want = self.send.len() - self.received;
        match (&self.stream).read(&mut self.recv[self.received..self.received + want]) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed a connection",
            )),
            Ok(n) => {
                self.received += n;
                if self.received < self.send.len() {
                    return Ok(false);
                }
                if self.recv != self.send {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the echo of message {} differs from what was sent",
                            self.seq
                        ),
                    ));
                }
                Ok(true)
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Runs the client and returns its result line (parameters, then measurements).
pub fn run(args: &ClientArgs) -> io::Result<Fields> {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, args.port);
    let ep = Epoll::new()?;
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        // A blocking connect keeps this simple; it only runs before the clock starts.
        let stream = TcpStream::connect(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}")))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        ep.add(stream.as_raw_fd(), sys::IN, i as u64)?;
        // Bytes after the sequence number differ per connection, so crossed wires show.
        let send: Vec<u8> = (0..args.size).map(|k| (k + i * 7) as u8).collect();
        conns.push(Conn {
            stream,
            recv: vec![0; args.size],
            send,
            sent: 0,
            received: 0,
            seq: 0,
            started: Instant::now(),
            watching_out: false,
        });
    }

    let measured = run_closed_loop(&ep, &mut conns, args.secs, args.server_pid, "round trip")?;
    let latencies = &measured.latencies;
    let round_trips = latencies.len();
    let secs_f = measured.elapsed.as_secs_f64();

    let mut out = Fields::new()
        .with("workload", "echo")
        .with_all(args.params())
        .with("round_trips", round_trips)
        .with(
            "rt_per_s",
            format_args!("{:.0}", round_trips as f64 / secs_f),
        )
        .with(
            "p50_us",
            format_args!("{:.1}", percentile_us(latencies, 0.50)),
        )
        .with(
            "p99_us",
            format_args!("{:.1}", percentile_us(latencies, 0.99)),
        );
    if let Some(used) = measured.server_cpu {
        out.push(
            "server_cpu_us_per_rt",
            format_args!("{:.3}", used.as_secs_f64() * 1e6 / round_trips as f64),
        );
        out.push(
            "server_cpu_util",
            format_args!("{:.3}", used.as_secs_f64() / secs_f),
        );
    }
    let client_used = measured.client_cpu;
    out.push(
        "client_cpu_util",
        format_args!("{:.3}", client_used.as_secs_f64() / secs_f),
    );
    Ok(out)
}
