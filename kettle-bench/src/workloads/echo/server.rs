//! The echo servers: Kettle (async tasks), Kettle green threads, tokio `current_thread`, and a
//! bare epoll loop (the floor).
//!
//! All of them do the same work per connection: read up to [`READ_BUF`] bytes, write them all
//! back, repeat until EOF; `TCP_NODELAY` is set on every accepted socket so no server waits on
//! Nagle's algorithm. Each serves until its [`StopFn`] is called (from the signal thread in the
//! `echo-server` process, directly in tests) and then returns `Ok`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use super::Server;
use crate::netbench::StopFn;
use crate::sys::{self, Epoll, EventFd};

/// Per-connection read buffer: large enough that a 64-byte message is always read in one call
/// and bulk transfers take few syscalls, small enough that thousands of connections stay cheap.
pub const READ_BUF: usize = 16 * 1024;

/// Runs `server` on 127.0.0.1:`port` (0 picks a free port). Once the listener is bound,
/// `on_ready` gets the actual port and the function that stops the server; `serve` returns
/// when the server has stopped, or with the error that prevented it from serving.
pub fn serve(server: Server, port: u16, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    match server {
        Server::Kettle => kettle(addr, on_ready),
        Server::KettleGreen => kettle_green(addr, on_ready),
        Server::Tokio => tokio(addr, on_ready),
        Server::Epoll => epoll(addr, on_ready),
    }
}

fn kettle(addr: SocketAddr, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    use kettle::net::TcpListener;
    use std::cell::RefCell;
    use std::rc::Rc;

    let lp = kettle::EventLoop::new()?;
    // A socket registers with the loop running on its thread, so the listener is bound inside a
    // short run of the loop; it stays registered after that run returns.
    let listener = lp.run_until_complete(async { TcpListener::bind(addr) })?;
    let handle = lp.handle();
    on_ready(
        listener.local_addr()?.port(),
        Box::new(move || drop(handle.stop())),
    );

    // An accept error (out of fds, say) ends the server; it comes out through this cell.
    let failure: Rc<RefCell<Option<io::Error>>> = Rc::default();
    let fail = failure.clone();
    let acceptor = lp.create_task(async move {
        let result: io::Result<()> = async {
            loop {
                let (conn, _) = listener.accept().await?;
                conn.set_nodelay(true)?;
                // Detached: a connection task ends at EOF, or is dropped when the loop closes.
                drop(kettle::spawn(async move {
                    let mut buf = vec![0u8; READ_BUF];
                    loop {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }));
            }
        }
        .await;
        if let Err(e) = result {
            *fail.borrow_mut() = Some(e);
            kettle::get_running_loop().stop();
        }
    });
    let ran = lp.run_forever();
    // The acceptor and the connection tasks are still pending; closing the loop drops them
    // (and so closes their sockets) before we return.
    drop(acceptor);
    lp.close().map_err(io::Error::other)?;
    ran.map_err(io::Error::other)?;
    match failure.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A green thread per connection, written as blocking code over `kettle::green::net` (std's
/// `Read` and `Write`), on the same loop setup as [`kettle`]: the listener is bound with the
/// async API in a short run of the loop (the green listener wraps it), and the acceptor is a
/// green thread of a task the loop runs until it is stopped.
fn kettle_green(addr: SocketAddr, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    use kettle::green;
    use std::cell::RefCell;
    use std::rc::Rc;

    let lp = kettle::EventLoop::new()?;
    let listener = lp.run_until_complete(async { kettle::net::TcpListener::bind(addr) })?;
    let listener = green::net::TcpListener::from_async(listener);
    let handle = lp.handle();
    on_ready(
        listener.local_addr()?.port(),
        Box::new(move || drop(handle.stop())),
    );

    // An accept error (out of fds, say) ends the server; it comes out through this cell.
    let failure: Rc<RefCell<Option<io::Error>>> = Rc::default();
    let fail = failure.clone();
    let acceptor = lp.create_task(async move {
        let accepted = green::spawn(move || -> io::Result<()> {
            loop {
                let (mut conn, _) = listener.accept()?;
                conn.set_nodelay(true)?;
                // Detached: a connection's green thread ends at EOF, or is killed (its stack
                // unwound, its socket closed) when the loop closes.
                drop(green::spawn(move || {
                    let mut buf = vec![0u8; READ_BUF];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }));
            }
        })
        .await;
        let error = match accepted {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(e) => io::Error::other(e),
        };
        *fail.borrow_mut() = Some(error);
        kettle::get_running_loop().stop();
    });
    let ran = lp.run_forever();
    drop(acceptor);
    lp.close().map_err(io::Error::other)?;
    ran.map_err(io::Error::other)?;
    match failure.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn tokio(addr: SocketAddr, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        on_ready(
            listener.local_addr()?.port(),
            // An error means the server already returned: nothing left to stop.
            Box::new(move || {
                let _ = stop_tx.send(());
            }),
        );
        loop {
            let conn = tokio::select! {
                accepted = listener.accept() => accepted?.0,
                _ = &mut stop_rx => return Ok(()),
            };
            conn.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut conn = conn;
                let mut buf = vec![0u8; READ_BUF];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    // Dropping the runtime drops the connection tasks still pending.
    drop(rt);
    result
}

/// One connection of the floor server.
struct Conn {
    stream: std::net::TcpStream,
    /// Echo bytes the kernel did not take yet. While any are left the connection waits for
    /// `OUT` only and reads nothing more: backpressure, as `write_all` gives the other servers.
    pending: Vec<u8>,
}

/// Epoll tokens: the listener, the stop eventfd, then connection `i` as `FIRST_CONN + i`.
const LISTENER: u64 = 0;
const STOP: u64 = 1;
const FIRST_CONN: u64 = 2;

/// The floor: one thread, one level-triggered epoll set, one read and one write per message
/// and no runtime at all, so what it costs per round trip is the kernel's share.
fn epoll(addr: SocketAddr, on_ready: impl FnOnce(u16, StopFn)) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let ep = Epoll::new()?;
    let stop = std::sync::Arc::new(EventFd::new()?);
    ep.add(listener.as_raw_fd(), sys::IN, LISTENER)?;
    ep.add(stop.as_raw_fd(), sys::IN, STOP)?;
    let stopper = stop.clone();
    on_ready(
        listener.local_addr()?.port(),
        Box::new(move || drop(stopper.notify())),
    );

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut events = sys::event_buffer(256);
    loop {
        let n = ep.wait(&mut events, None)?;
        for ev in &events[..n] {
            let token = ev.u64;
            match token {
                STOP => return Ok(()),
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
                        pending: Vec::new(),
                    });
                },
                _ => {
                    let i = (token - FIRST_CONN) as usize;
                    let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                        continue;
                    };
                    // With echo bytes pending the fd is watched for OUT only, so any event
                    // (writable, or an error or hang-up that the write will report) means
                    // "try the write".
                    let keep = if conn.pending.is_empty() {
                        echo_once(&ep, conn, token, &mut buf)
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

/// One read and its echo. `Ok(false)` at EOF; an error closes the connection too.
fn echo_once(ep: &Epoll, conn: &mut Conn, token: u64, buf: &mut [u8]) -> io::Result<bool> {
    let n = match (&conn.stream).read(buf) {
        Ok(0) => return Ok(false),
        Ok(n) => n,
        // A spurious wake-up: level-triggered epoll reports again when data arrives.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
        Err(e) => return Err(e),
    };
    let mut written = 0;
    while written < n {
        match (&conn.stream).write(&buf[written..n]) {
            Ok(0) => return Ok(false),
            Ok(w) => written += w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.pending.extend_from_slice(&buf[written..n]);
                ep.modify(conn.stream.as_raw_fd(), sys::OUT, token)?;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Writes what an earlier echo left over; back to reading once it is all out.
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
