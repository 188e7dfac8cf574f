//! The load generator: `conns` WebSocket connections in a closed loop, on a bare epoll loop.
//!
//! Like `echo`'s client it uses no runtime and no WebSocket library, so that it is the same
//! client for every server and as cheap as a client can be (one `read` and one `write` per
//! message, a share of one `epoll_wait`): the less CPU it needs per message, the more of the
//! load is the server's. It speaks the protocol through [`super::wire`]: each connection makes
//! the opening handshake (blocking, before the clock starts), then sends a masked text frame of
//! `size` bytes, waits for the whole echo, checks that it is exactly the unmasked text frame
//! with the same payload, and sends the next message. The payload starts with the message's
//! sequence number in hex, so a stale or misrouted echo is caught; the rest differs per
//! connection. The mask key is fixed per connection, which is all a load generator needs.
//!
//! A warm-up (a tenth of the run, at most one second) lets connections, caches and the
//! servers' buffers settle; only messages echoed in the measured window that follows are
//! counted, and the server's CPU time is read at both ends of that window. Afterwards every
//! connection sends a close frame (code 1000) and must get the server's close frame back: the
//! servers end their handlers cleanly, and one that cannot close fails the run.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::wire;
use super::ClientArgs;
use crate::harness::Fields;
use crate::netbench::{percentile_us, run_closed_loop, write_pending, RoundTrip};
use crate::sys::{self, Epoll};

/// How long the handshakes, and then the closing handshakes, may take all together.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Leading payload bytes that carry the sequence number (hex digits).
const SEQ_DIGITS: usize = 16;

struct Conn {
    stream: TcpStream,
    /// The masked frame in flight.
    frame: Vec<u8>,
    /// Where the payload starts in `frame`.
    payload_at: usize,
    /// The connection's mask key.
    mask: [u8; 4],
    /// The echo expected for the frame in flight: its unmasked text frame.
    expected: Vec<u8>,
    /// Where the payload starts in `expected`.
    expected_at: usize,
    recv: Vec<u8>,
    sent: usize,
    received: usize,
    seq: u64,
    started: Instant,
    /// Whether the fd is watched for `OUT` too (only while part of a frame is unsent).
    watching_out: bool,
}

impl Conn {
    /// Connects, makes the opening handshake and builds connection `index`'s message.
    fn open(addr: SocketAddrV4, index: usize, size: usize) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}")))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let key = wire::client_key(index);
        stream.write_all(wire::handshake_request(&addr.to_string(), &key).as_bytes())?;
        // The server says nothing after its answer until it is sent a message, so everything
        // up to the blank line is the answer and nothing may follow it.
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the handshake",
                ));
            }
            head.extend_from_slice(&chunk[..n]);
            if head.len() > 16 * 1024 {
                return Err(io::Error::other("the handshake's answer is over 16 KiB"));
            }
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                if end + 4 != head.len() {
                    return Err(io::Error::other(
                        "the server sent data after its handshake answer, unasked",
                    ));
                }
            }
        }
        let head = String::from_utf8_lossy(&head[..head.len() - 4]).into_owned();
        wire::check_handshake_response(&head, &key).map_err(io::Error::other)?;
        stream.set_read_timeout(None)?;
        stream.set_nonblocking(true)?;

        // ASCII letters: a valid UTF-8 text message, different per connection.
        let payload: Vec<u8> = (0..size)
            .map(|k| b'a' + ((k + index * 7) % 26) as u8)
            .collect();
        let mask = ((index as u32).wrapping_mul(0x9E37_79B9) | 0x0101_0101).to_le_bytes();
        let (frame, payload_at) = wire::client_frame(wire::TEXT, &payload, mask);
        let expected = wire::server_text_frame(&payload);
        Ok(Conn {
            stream,
            frame,
            payload_at,
            mask,
            expected_at: expected.len() - size,
            recv: vec![0; expected.len()],
            expected,
            sent: 0,
            received: 0,
            seq: 0,
            started: Instant::now(),
            watching_out: false,
        })
    }

    /// Sends a close frame (1000); the first half of the closing handshake.
    fn send_close(&mut self) -> io::Result<()> {
        let (close, _) =
            wire::client_frame(wire::CLOSE, &wire::NORMAL_CLOSURE.to_be_bytes(), self.mask);
        // The rest of a frame still unsent goes first, so the server sees whole frames.
        let rest = self.frame[self.sent..].to_vec();
        self.stream.set_nonblocking(false)?;
        self.stream.write_all(&rest)?;
        self.stream.write_all(&close)
    }

    /// Reads until the server's close frame has arrived (after the echo in flight, if any),
    /// or `deadline`. True if it came.
    fn await_close(&mut self, deadline: Instant) -> io::Result<bool> {
        let mut got = self.recv[..self.received].to_vec();
        let mut chunk = [0u8; 4096];
        while !wire::holds_close(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl RoundTrip for Conn {
    fn started(&self) -> Instant {
        self.started
    }

    /// Starts the next round trip: new sequence number in the payload, clock started, as
    /// much written as the kernel takes now.
    fn start(&mut self, ep: &Epoll, token: u64, now: Instant) -> io::Result<()> {
        self.seq += 1;
        let hex = format!("{:016x}", self.seq);
        let digits = &hex.as_bytes()[..SEQ_DIGITS.min(self.expected.len() - self.expected_at)];
        let at = self.payload_at;
        wire::mask_into(&mut self.frame[at..], 0, digits, self.mask);
        let at = self.expected_at;
        self.expected[at..at + digits.len()].copy_from_slice(digits);
        self.sent = 0;
        self.received = 0;
        self.started = now;
        self.write_some(ep, token)
    }

    /// Writes the unsent rest of the frame; watches for `OUT` while some remains.
    fn write_some(&mut self, ep: &Epoll, token: u64) -> io::Result<()> {
        write_pending(
            &self.stream,
            &self.frame,
            &mut self.sent,
            &mut self.watching_out,
            ep,
            token,
        )
    }

    /// Reads what has arrived of the echo. True when the whole frame is back (and checked).
    fn read_some(&mut self) -> io::Result<bool> {
        // Never more than the rest of this echo: anything after it stays in the kernel.
        let want = self.expected.len() - self.received;
        match (&self.stream).read(&mut self.recv[self.received..self.received + want]) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed a connection",
            )),
            Ok(n) => {
                self.received += n;
                if self.received < self.expected.len() {
                    return Ok(false);
                }
                if self.recv != self.expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the echo of message {} is wrong: {}",
                            self.seq,
                            wire::describe_mismatch(&self.recv, &self.expected)
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
        let conn = Conn::open(addr, i, args.size)
            .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
        ep.add(conn.stream.as_raw_fd(), sys::IN, i as u64)?;
        conns.push(conn);
    }

    let measured = run_closed_loop(&ep, &mut conns, args.secs, args.server_pid, "message")?;

    // The closing handshakes, after the clock: all close frames out first, then the answers.
    for conn in &mut conns {
        conn.send_close()?;
    }
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut unclosed = 0;
    for conn in &mut conns {
        if !conn.await_close(deadline)? {
            unclosed += 1;
        }
    }
    if unclosed > 0 {
        return Err(io::Error::other(format!(
            "the server answered no close frame on {unclosed} of {} connections",
            conns.len()
        )));
    }

    let latencies = &measured.latencies;
    let messages = latencies.len();
    let secs_f = measured.elapsed.as_secs_f64();
    let client_used = measured.client_cpu;
    let per_msg_us = |cpu: Duration| cpu.as_secs_f64() * 1e6 / messages as f64;

    let mut out = Fields::new()
        .with("workload", "ws-echo")
        .with_all(args.params())
        .with("messages", messages)
        .with("msg_per_s", format_args!("{:.0}", messages as f64 / secs_f))
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
            "server_cpu_us_per_msg",
            format_args!("{:.3}", per_msg_us(used)),
        );
        out.push(
            "server_cpu_util",
            format_args!("{:.3}", used.as_secs_f64() / secs_f),
        );
    }
    out.push(
        "client_cpu_us_per_msg",
        format_args!("{:.3}", per_msg_us(client_used)),
    );
    out.push(
        "client_cpu_util",
        format_args!("{:.3}", client_used.as_secs_f64() / secs_f),
    );
    Ok(out)
}
