//! Blocking-style sockets for green code: gevent's patched `socket`.
//!
//! Each call looks like `std::net`'s and blocks only the calling green thread; underneath it
//! is Kettle's async socket and [`wait`](super::wait). [`TcpStream`] implements
//! `std::io::Read` and `Write` (also through `&TcpStream`, as std's does), so
//! `std::io::BufReader`, `read_line`, `io::copy` and any code generic over `std::io` work
//! unchanged, concurrently with every other green thread.
//!
//! ```
//! use kettle::green::{self, net::{TcpListener, TcpStream}};
//! use std::io::{BufRead, BufReader, Write};
//!
//! green::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = green::spawn(move || {
//!         let (stream, _) = listener.accept().unwrap();
//!         let mut line = String::new();
//!         BufReader::new(&stream).read_line(&mut line).unwrap();
//!         (&stream).write_all(line.to_uppercase().as_bytes()).unwrap();
//!     });
//!     let mut client = TcpStream::connect(addr).unwrap();
//!     client.write_all(b"hello\n").unwrap();
//!     let mut reply = String::new();
//!     BufReader::new(&client).read_line(&mut reply).unwrap();
//!     assert_eq!(reply, "HELLO\n");
//!     server.join().unwrap();
//! })
//! .unwrap();
//! ```
//!
//! # Sharing a socket between green threads
//!
//! As with std's sockets and OS threads, several green threads may use one socket at once:
//! share it through an `Rc`, a `&` borrow, or [`TcpStream::try_clone`] (a second handle to
//! the same socket, as cheap as an `Rc` clone, since green threads never leave their loop's
//! OS thread). One green thread may read while another writes. Green threads that use the
//! *same direction* at once (two readers of one stream, several acceptors on one listener)
//! take turns in the order they arrived: each operation runs whole before the next starts.
//! That queue matters because the loop wakes one waiter per direction of a socket; without
//! it the second of two waiting readers would never be woken.
//!
//! # Differences from `std::net`
//!
//! - A timeout that passes is `io::ErrorKind::TimedOut` (std on Unix reports `WouldBlock`).
//!   Timeouts belong to the socket, so they are shared by every handle of it, as in std.
//! - There is no `set_nonblocking`: a green thread that must not wait spawns another green
//!   thread to do the waiting. There is no `peek`.
//! - Handles are not `Send`: a green socket belongs to the loop it was created on.
//!
//! Every function here that can wait panics when called outside a green thread (use
//! `kettle::net` from async code).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::rc::Rc;
use std::time::Duration;

use super::wait_named;
use crate::sync::Lock;

/// Addresses a green socket can be given: a `SocketAddr`, an `(ip, port)` pair, a list of
/// addresses, or a `"host:port"` string (names are resolved off the loop, like
/// [`lookup_host`]). The green counterpart of `std::net::ToSocketAddrs`, whose string forms
/// would resolve names while blocking the whole loop.
pub trait ToGreenAddrs {
    /// The addresses, resolving names if needed (from green code).
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

impl ToGreenAddrs for SocketAddr {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}

impl ToGreenAddrs for SocketAddrV4 {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V4(*self)])
    }
}

impl ToGreenAddrs for SocketAddrV6 {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V6(*self)])
    }
}

impl ToGreenAddrs for (IpAddr, u16) {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
}

impl ToGreenAddrs for (Ipv4Addr, u16) {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::from(*self)])
    }
}

impl ToGreenAddrs for (Ipv6Addr, u16) {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::from(*self)])
    }
}

impl ToGreenAddrs for (&str, u16) {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        lookup_host(self.0, self.1)
    }
}

impl ToGreenAddrs for (String, u16) {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        lookup_host(&self.0, self.1)
    }
}

impl ToGreenAddrs for str {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "expected host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        lookup_host(host, port)
    }
}

impl ToGreenAddrs for String {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_green_addrs()
    }
}

impl ToGreenAddrs for [SocketAddr] {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl ToGreenAddrs for Vec<SocketAddr> {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.clone())
    }
}

impl<T: ToGreenAddrs + ?Sized> ToGreenAddrs for &T {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_green_addrs()
    }
}

/// Resolves `host` (gevent's patched `getaddrinfo`): the resolver runs on the executor, so
/// only the calling green thread waits. IP literals are answered without a lookup; an empty
/// answer is a `NotFound` error.
pub fn lookup_host(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    wait_named(
        "kettle::green::net::lookup_host",
        crate::net::lookup_host(host, port),
    )
}

/// Tries each address in turn, returning the first success or the last error (as std does,
/// so `"localhost:PORT"` reaches a server on 127.0.0.1 even when `::1` is tried first).
fn each_addr<A, T>(addrs: A, mut f: impl FnMut(SocketAddr) -> io::Result<T>) -> io::Result<T>
where
    A: ToGreenAddrs,
{
    let mut last = None;
    for addr in addrs.to_green_addrs()? {
        match f(addr) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "no addresses to connect or bind to",
        )
    }))
}

/// Runs `fut` from green code with an optional deadline; a deadline that passes is
/// `io::ErrorKind::TimedOut`.
fn wait_io<F, T>(function: &str, timeout: Option<Duration>, fut: F) -> io::Result<T>
where
    F: Future<Output = io::Result<T>>,
{
    match timeout {
        None => wait_named(function, fut),
        Some(d) => match wait_named(function, crate::time::wait_for(fut, d)) {
            Ok(result) => result,
            // `wait_for` fails only when its deadline passes.
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{function}: timed out after {d:?}"),
            )),
        },
    }
}

/// Runs `op` once it is `turn`'s turn, under `timeout` (which covers the wait for the turn
/// too: a reader queued behind a slow one times out like one waiting for bytes).
///
/// The uncontended case takes the turn without building a waiting future.
fn take_turn<F, T>(
    function: &str,
    turn: &Lock,
    timeout: Option<Duration>,
    op: impl FnOnce() -> F,
) -> io::Result<T>
where
    F: Future<Output = io::Result<T>>,
{
    match turn.try_acquire() {
        Some(_turn) => wait_io(function, timeout, op()),
        None => wait_io(function, timeout, async {
            let _turn = turn.acquire().await;
            op().await
        }),
    }
}

fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        // std refuses a zero timeout the same way.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

/// The state every handle of one listener shares.
struct ListenerShared {
    inner: crate::net::TcpListener,
    /// Green threads accepting at once take turns (see the module docs).
    accept_turn: Lock,
}

/// A listening TCP socket for green code (`std::net::TcpListener`'s interface).
///
/// Several green threads may accept on one listener at once (through `&`, an `Rc` or
/// [`try_clone`](Self::try_clone)); each connection goes to one of them, in the order they
/// started waiting.
pub struct TcpListener {
    shared: Rc<ListenerShared>,
}

impl TcpListener {
    /// Binds to the first of `addr`'s addresses that works (port 0 picks a free port), with
    /// `SO_REUSEADDR` and a backlog of 1024 like [`crate::net::TcpListener::bind`].
    pub fn bind<A: ToGreenAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, crate::net::TcpListener::bind).map(TcpListener::from_async)
    }

    /// Wraps Kettle's async listener (for options [`bind`](Self::bind) does not offer, such
    /// as [`crate::net::ListenOptions`]).
    pub fn from_async(inner: crate::net::TcpListener) -> TcpListener {
        TcpListener {
            shared: Rc::new(ListenerShared {
                inner,
                accept_turn: Lock::new(),
            }),
        }
    }

    /// Waits for a connection, suspending only this green thread.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = take_turn(
            "kettle::green::net::TcpListener::accept",
            &self.shared.accept_turn,
            None,
            || self.shared.inner.accept(),
        )?;
        Ok((TcpStream::from_async(stream), addr))
    }

    /// Connections as they come (`for stream in listener.incoming()`), never ending. As in
    /// std, a failed accept is yielded as an error and the iteration goes on.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Another handle to the same listener, sharing its accept queue. It never fails; the
    /// `Result` is std's signature.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            shared: self.shared.clone(),
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.inner.local_addr()
    }

    /// The async listener underneath.
    pub fn as_async(&self) -> &crate::net::TcpListener {
        &self.shared.inner
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// The iterator of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

/// The state every handle of one TCP stream shares, like the one socket behind std's
/// `try_clone`d handles.
struct StreamShared {
    inner: crate::net::TcpStream,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    /// Green threads using one direction at once take turns (see the module docs).
    read_turn: Lock,
    write_turn: Lock,
}

/// A TCP connection for green code: `std::io::Read` + `Write` that suspend only the calling
/// green thread, and `std::net::TcpStream`'s other methods.
///
/// The socket closes when the last handle to it is dropped (handles come from
/// [`try_clone`](Self::try_clone)); [`shutdown`](Self::shutdown) ends a direction for every
/// handle at once.
pub struct TcpStream {
    shared: Rc<StreamShared>,
}

impl TcpStream {
    /// Connects to the first of `addr`'s addresses that accepts; the last address's error if
    /// none does (`ConnectionRefused` when nothing listens).
    pub fn connect<A: ToGreenAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| {
            wait_named(
                "kettle::green::net::TcpStream::connect",
                crate::net::TcpStream::connect(a),
            )
        })
        .map(TcpStream::from_async)
    }

    /// Connects, giving up after `timeout` (`io::ErrorKind::TimedOut`; a zero timeout is
    /// `InvalidInput`, as in std).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        check_timeout(Some(timeout))?;
        wait_io(
            "kettle::green::net::TcpStream::connect_timeout",
            Some(timeout),
            crate::net::TcpStream::connect(*addr),
        )
        .map(TcpStream::from_async)
    }

    /// Wraps Kettle's async stream.
    pub fn from_async(inner: crate::net::TcpStream) -> TcpStream {
        TcpStream {
            shared: Rc::new(StreamShared {
                inner,
                read_timeout: Cell::new(None),
                write_timeout: Cell::new(None),
                read_turn: Lock::new(),
                write_turn: Lock::new(),
            }),
        }
    }

    /// The async stream underneath.
    pub fn as_async(&self) -> &crate::net::TcpStream {
        &self.shared.inner
    }

    /// Another handle to the same socket (std's `try_clone`): reads, writes, timeouts and
    /// shutdown are shared, and the socket closes when the last handle is dropped. Typically
    /// one handle goes to a green thread that writes while another reads. It never fails (no
    /// file descriptor is duplicated); the `Result` is std's signature.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            shared: self.shared.clone(),
        })
    }

    /// A deadline for each read (`None`: wait as long as it takes), as std's. A zero
    /// duration is refused with `InvalidInput`, as in std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.shared.read_timeout.set(timeout);
        Ok(())
    }

    /// A deadline for each write (one `write` call; `write_all` may make several).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.shared.write_timeout.set(timeout);
        Ok(())
    }

    /// The read deadline.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.read_timeout.get())
    }

    /// The write deadline.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.write_timeout.get())
    }

    /// Shuts down the read half, the write half (the peer reads EOF) or both, for every
    /// handle of the socket.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.shared.inner.shutdown(how)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.inner.local_addr()
    }

    /// Disables (true) or enables Nagle's algorithm (`TCP_NODELAY`).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.shared.inner.set_nodelay(on)
    }

    /// Whether Nagle's algorithm is disabled (`TCP_NODELAY`).
    pub fn nodelay(&self) -> io::Result<bool> {
        self.shared.inner.nodelay()
    }

    /// Sets the time-to-live of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.shared.inner.set_ttl(ttl)
    }

    /// The time-to-live of outgoing packets.
    pub fn ttl(&self) -> io::Result<u32> {
        self.shared.inner.ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.shared.inner.take_error()
    }

    fn read_green(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            // std answers at once; the async read would wait for readability first.
            return Ok(0);
        }
        let s = &*self.shared;
        take_turn(
            "kettle::green::net::TcpStream::read",
            &s.read_turn,
            s.read_timeout.get(),
            || s.inner.read(buf),
        )
    }

    fn write_green(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let s = &*self.shared;
        take_turn(
            "kettle::green::net::TcpStream::write",
            &s.write_turn,
            s.write_timeout.get(),
            || s.inner.write(buf),
        )
    }

    fn write_vectored_green(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        let s = &*self.shared;
        take_turn(
            "kettle::green::net::TcpStream::write_vectored",
            &s.write_turn,
            s.write_timeout.get(),
            || s.inner.write_vectored(bufs),
        )
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

impl io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_green(buf)
    }
}

impl io::Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_green(buf)
    }
}

impl io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_green(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_green(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Writes go straight to the kernel; there is nothing to flush.
        Ok(())
    }
}

impl io::Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_green(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_green(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The state every handle of one UDP socket shares.
struct UdpShared {
    inner: crate::net::UdpSocket,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    recv_turn: Lock,
    send_turn: Lock,
}

/// A UDP socket for green code (`std::net::UdpSocket`'s interface). Several green threads
/// may receive (or send) on one socket at once; they take turns, one datagram each.
pub struct UdpSocket {
    shared: Rc<UdpShared>,
}

impl UdpSocket {
    /// Binds to the first of `addr`'s addresses that works.
    pub fn bind<A: ToGreenAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, crate::net::UdpSocket::bind).map(UdpSocket::from_async)
    }

    /// Wraps Kettle's async socket.
    pub fn from_async(inner: crate::net::UdpSocket) -> UdpSocket {
        UdpSocket {
            shared: Rc::new(UdpShared {
                inner,
                read_timeout: Cell::new(None),
                write_timeout: Cell::new(None),
                recv_turn: Lock::new(),
                send_turn: Lock::new(),
            }),
        }
    }

    /// Another handle to the same socket, sharing its timeouts (std's `try_clone`). It
    /// never fails; the `Result` is std's signature.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            shared: self.shared.clone(),
        })
    }

    /// Sets the default peer for `send` and `recv` (and filters out datagrams from anyone
    /// else), using the first of `addr`'s addresses that works.
    pub fn connect<A: ToGreenAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.shared.inner.connect(a))
    }

    /// Sends a datagram to `target`; returns the bytes sent.
    pub fn send_to<A: ToGreenAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let s = &*self.shared;
        each_addr(target, |a| {
            take_turn(
                "kettle::green::net::UdpSocket::send_to",
                &s.send_turn,
                s.write_timeout.get(),
                || s.inner.send_to(buf, a),
            )
        })
    }

    /// Receives a datagram and its sender. A datagram longer than `buf` is truncated to it.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let s = &*self.shared;
        take_turn(
            "kettle::green::net::UdpSocket::recv_from",
            &s.recv_turn,
            s.read_timeout.get(),
            || s.inner.recv_from(buf),
        )
    }

    /// Sends a datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let s = &*self.shared;
        take_turn(
            "kettle::green::net::UdpSocket::send",
            &s.send_turn,
            s.write_timeout.get(),
            || s.inner.send(buf),
        )
    }

    /// Receives a datagram from the connected peer. An ICMP "port unreachable" for an earlier
    /// datagram is reported here as `ConnectionRefused`, as in std.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &*self.shared;
        take_turn(
            "kettle::green::net::UdpSocket::recv",
            &s.recv_turn,
            s.read_timeout.get(),
            || s.inner.recv(buf),
        )
    }

    /// A deadline for each receive (`TimedOut` when it passes).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.shared.read_timeout.set(timeout);
        Ok(())
    }

    /// A deadline for each send (sends rarely wait: only while the send buffer is full).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.shared.write_timeout.set(timeout);
        Ok(())
    }

    /// The receive deadline.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.read_timeout.get())
    }

    /// The send deadline.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.write_timeout.get())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.inner.local_addr()
    }

    /// The connected peer's address (`NotConnected` before [`connect`](Self::connect)).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared.inner.peer_addr()
    }

    /// Allows (`SO_BROADCAST`) sending to broadcast addresses.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.shared.inner.set_broadcast(on)
    }

    /// Whether sending to broadcast addresses is allowed.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.shared.inner.broadcast()
    }

    /// Sets the time-to-live of outgoing datagrams.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.shared.inner.set_ttl(ttl)
    }

    /// The time-to-live of outgoing datagrams.
    pub fn ttl(&self) -> io::Result<u32> {
        self.shared.inner.ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.shared.inner.take_error()
    }

    /// The async socket underneath.
    pub fn as_async(&self) -> &crate::net::UdpSocket {
        &self.shared.inner
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}
