//! The floor: a single-threaded, level-triggered raw-epoll loop that answers every request with
//! the fixed response, and does nothing else.
//!
//! Per ready connection it makes one `read`, counts the requests that read completed (by their
//! `\r\n\r\n` terminators; see [`RequestCounter`]), and answers them all with one `write` of as
//! many copies of the response. No parsing, no routing, no allocation per request: what it
//! costs per request is, near enough, the kernel's share, which is what the framework servers
//! are measured against.
//!
//! With N workers ([`serve_workers`], for `http-hello --workers N`) it is N such loops on N
//! threads, each with its own `SO_REUSEPORT` listener on the one port, so the kernel spreads
//! the connections among them and no two threads ever touch the same socket or data.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::response::{count_answered, HelloResponse, RequestCounter};
use super::{localhost, READ_BUF};
use crate::netbench::StopFn;
use crate::sys::{self, Epoll, EventFd};

/// One connection.
struct Conn {
    stream: std::net::TcpStream,
    requests: RequestCounter,
    /// Response bytes the kernel did not take yet. While any are left the connection waits for
    /// `OUT` only and reads nothing more: backpressure, as a `write_all` gives the others.
    pending: Vec<u8>,
}

/// Epoll tokens: the listener, the stop eventfd, then connection `i` as `FIRST_CONN + i`.
const LISTENER: u64 = 0;
const STOP: u64 = 1;
const FIRST_CONN: u64 = 2;

/// Serves on 127.0.0.1:`port` until stopped; see [`super::serve`].
pub fn serve(port: u16, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(localhost(port))?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(EventFd::new()?);
    let stopper = stop.clone();
    on_ready(
        listener.local_addr()?.port(),
        Box::new(move || drop(stopper.notify())),
    );
    event_loop(&listener, &stop).map(drop)
}

/// Serves on 127.0.0.1:`port` with `workers` loops on as many threads until stopped; returns
/// the requests each answered (see [`super::serve_workers`]). A loop that fails stops the
/// others, and its error is returned once all have ended.
pub fn serve_workers(
    port: u16,
    workers: usize,
    on_ready: impl FnOnce(u16, StopFn),
) -> io::Result<Vec<u64>> {
    let first = sys::reuseport_listener(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    let port = first.local_addr()?.port();
    let mut listeners = vec![first];
    for _ in 1..workers {
        listeners.push(sys::reuseport_listener(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            port,
        ))?);
    }
    // Level-triggered and never read: once notified, the eventfd stops every loop.
    let stop = Arc::new(EventFd::new()?);
    let mut threads = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let own_stop = stop.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("epoll-{i}"))
            .spawn(move || {
                let served = event_loop(&listener, &own_stop);
                if served.is_err() {
                    let _ = own_stop.notify();
                }
                served
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                let _ = stop.notify();
                return Err(e);
            }
        }
    }
    let stopper = stop.clone();
    on_ready(port, Box::new(move || drop(stopper.notify())));
    let mut counts = Vec::new();
    let mut failure = None;
    for thread in threads {
        match thread.join() {
            Ok(Ok(n)) => counts.push(n),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(io::Error::other("an epoll worker panicked"))),
        }
    }
    failure.map_or(Ok(counts), Err)
}

/// One loop: serves the non-blocking `listener`'s connections until `stop` is notified;
/// returns the requests it answered.
fn event_loop(listener: &std::net::TcpListener, stop: &EventFd) -> io::Result<u64> {
    let ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), sys::IN, LISTENER)?;
    ep.add(stop.as_raw_fd(), sys::IN, STOP)?;
    let mut answered = 0u64;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(READ_BUF);
    let mut response = HelloResponse::new();
    let mut events = sys::event_buffer(256);
    loop {
        let n = ep.wait(&mut events, None)?;
        for ev in &events[..n] {
            let token = ev.u64;
            match token {
                STOP => return Ok(answered),
                LISTENER => loop {
                    let stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // The connection died in the backlog, or fds ran out: drop this one.
                        Err(_) => break,
                    };
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let i = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    ep.add(stream.as_raw_fd(), sys::IN, FIRST_CONN + i as u64)?;
                    conns[i] = Some(Conn {
                        stream,
                        requests: RequestCounter::default(),
                        pending: Vec::new(),
                    });
                },
                _ => {
                    let i = (token - FIRST_CONN) as usize;
                    let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                        continue;
                    };
                    // With bytes pending the fd is watched for OUT only, so any event
                    // (writable, or an error or hang-up that the write will report) means
                    // "try the write".
                    let keep = if conn.pending.is_empty() {
                        match answer(&ep, conn, token, &mut buf, &mut out, &mut response) {
                            Ok(Some(requests)) => {
                                answered += requests as u64;
                                Ok(true)
                            }
                            Ok(None) => Ok(false),
                            Err(e) => Err(e),
                        }
                    } else {
                        flush(&ep, conn, token)
                    };
                    if !matches!(keep, Ok(true)) {
                        // Closing the fd removes it from the epoll set: no EPOLL_CTL_DEL needed.
                        conns[i] = None;
                        free.push(i);
                    }
                }
            }
        }
    }
}

/// One read, and one write answering every request it completed: how many, or `Ok(None)` at
/// EOF; an error closes the connection too.
fn answer(
    ep: &Epoll,
    conn: &mut Conn,
    token: u64,
    buf: &mut [u8],
    out: &mut Vec<u8>,
    response: &mut HelloResponse,
) -> io::Result<Option<usize>> {
    let n = match (&conn.stream).read(buf) {
        Ok(0) => return Ok(None),
        Ok(n) => n,
        // A spurious wake-up: level-triggered epoll reports again when data arrives.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(0)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Some(0)),
        Err(e) => return Err(e),
    };
    let requests = conn.requests.feed(&buf[..n]);
    if requests == 0 {
        return Ok(Some(0));
    }
    count_answered(requests as u64);
    out.clear();
    response.append(requests, out);
    let mut written = 0;
    while written < out.len() {
        match (&conn.stream).write(&out[written..]) {
            Ok(0) => return Ok(None),
            Ok(w) => written += w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.pending.extend_from_slice(&out[written..]);
                ep.modify(conn.stream.as_raw_fd(), sys::OUT, token)?;
                return Ok(Some(requests));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(requests))
}

/// Writes what an earlier answer left over; back to reading once it is all out.
fn flush(ep: &Epoll, conn: &mut Conn, token: u64) -> io::Result<bool> {
    while !conn.pending.is_empty() {
        match (&conn.stream).write(&conn.pending) {
            Ok(0) => return Ok(false),
            Ok(w) => {
                conn.pending.drain(..w);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    ep.modify(conn.stream.as_raw_fd(), sys::IN, token)?;
    Ok(true)
}
