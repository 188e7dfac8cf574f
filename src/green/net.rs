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
//! Every function here panics when called outside a green thread (use `kettle::net` from
//! async code).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::Duration;

use super::wait_named;

/// Addresses a green socket can be given: a `SocketAddr`, an `(ip, port)` pair, or a
/// `"host:port"` string (names are resolved off the loop, like [`lookup_host`]).
pub trait ToGreenAddrs {
    /// The addresses, resolving names if needed (from green code).
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

impl ToGreenAddrs for SocketAddr {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}

impl ToGreenAddrs for (IpAddr, u16) {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
}

impl ToGreenAddrs for (&str, u16) {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        lookup_host(self.0, self.1)
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

impl<T: ToGreenAddrs + ?Sized> ToGreenAddrs for &T {
    fn to_green_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_green_addrs()
    }
}

/// Resolves `host` (gevent's patched `getaddrinfo`): the resolver runs on the executor, so
/// only the calling green thread waits.
pub fn lookup_host(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    wait_named(
        "kettle::green::net::lookup_host",
        crate::net::lookup_host(host, port),
    )
}

/// Tries each address in turn, returning the first success or the last error.
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
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{function}: timed out after {d:?}"),
            )),
        },
    }
}

/// A listening TCP socket for green code.
#[derive(Debug)]
pub struct TcpListener {
    inner: crate::net::TcpListener,
}

impl TcpListener {
    /// Binds to the first of `addr`'s addresses that works.
    pub fn bind<A: ToGreenAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, crate::net::TcpListener::bind).map(|inner| TcpListener { inner })
    }

    /// Wraps Kettle's async listener.
    pub fn from_async(inner: crate::net::TcpListener) -> TcpListener {
        TcpListener { inner }
    }

    /// Waits for a connection, suspending only this green thread.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = wait_named(
            "kettle::green::net::TcpListener::accept",
            self.inner.accept(),
        )?;
        Ok((TcpStream::from_async(stream), addr))
    }

    /// Connections as they come (`for stream in listener.incoming()`), never ending.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The async listener underneath.
    pub fn as_async(&self) -> &crate::net::TcpListener {
        &self.inner
    }
}

/// A TCP connection for green code: `std::io::Read` + `Write` that suspend only the calling
/// green thread.
#[derive(Debug)]
pub struct TcpStream {
    inner: crate::net::TcpStream,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl TcpStream {
    /// Connects to the first of `addr`'s addresses that accepts.
    pub fn connect<A: ToGreenAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| {
            wait_named(
                "kettle::green::net::TcpStream::connect",
                crate::net::TcpStream::connect(a),
            )
        })
        .map(TcpStream::from_async)
    }

    /// Connects, giving up after `timeout` (`io::ErrorKind::TimedOut`).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
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
            inner,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// The async stream underneath.
    pub fn as_async(&self) -> &crate::net::TcpStream {
        &self.inner
    }

    /// A deadline for each read (`None`: wait as long as it takes), as std's.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// A deadline for each write.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.write_timeout.set(timeout);
        Ok(())
    }

    /// The read deadline.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout.get())
    }

    /// The write deadline.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    fn read_green(&self, buf: &mut [u8]) -> io::Result<usize> {
        wait_io(
            "kettle::green::net::TcpStream::read",
            self.read_timeout.get(),
            self.inner.read(buf),
        )
    }

    fn write_green(&self, buf: &[u8]) -> io::Result<usize> {
        wait_io(
            "kettle::green::net::TcpStream::write",
            self.write_timeout.get(),
            self.inner.write(buf),
        )
    }

    fn write_vectored_green(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        wait_io(
            "kettle::green::net::TcpStream::write_vectored",
            self.write_timeout.get(),
            self.inner.write_vectored(bufs),
        )
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

/// A UDP socket for green code.
#[derive(Debug)]
pub struct UdpSocket {
    inner: crate::net::UdpSocket,
    read_timeout: Cell<Option<Duration>>,
}

impl UdpSocket {
    /// Binds to the first of `addr`'s addresses that works.
    pub fn bind<A: ToGreenAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, crate::net::UdpSocket::bind).map(|inner| UdpSocket {
            inner,
            read_timeout: Cell::new(None),
        })
    }

    /// Sets the default peer for `send` and `recv`.
    pub fn connect<A: ToGreenAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.inner.connect(a))
    }

    /// Sends a datagram to `target`.
    pub fn send_to<A: ToGreenAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        each_addr(target, |a| {
            wait_named(
                "kettle::green::net::UdpSocket::send_to",
                self.inner.send_to(buf, a),
            )
        })
    }

    /// Receives a datagram and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        wait_io(
            "kettle::green::net::UdpSocket::recv_from",
            self.read_timeout.get(),
            self.inner.recv_from(buf),
        )
    }

    /// Sends a datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        wait_named("kettle::green::net::UdpSocket::send", self.inner.send(buf))
    }

    /// Receives a datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        wait_io(
            "kettle::green::net::UdpSocket::recv",
            self.read_timeout.get(),
            self.inner.recv(buf),
        )
    }

    /// A deadline for each receive.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The async socket underneath.
    pub fn as_async(&self) -> &crate::net::UdpSocket {
        &self.inner
    }
}
