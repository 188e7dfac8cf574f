//! UDP: one socket that sends and receives datagrams, to anyone or (connected) to one peer.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use super::options;
use super::registered::Registered;
use crate::runtime::reactor::Direction;
use crate::sys::socket;

/// A UDP socket registered with the event loop (asyncio's datagram endpoint, as a socket).
///
/// Every method takes `&self`, so one task may receive while another sends. Each receive gets
/// one whole datagram; a datagram longer than the buffer is truncated (the rest is lost), as
/// with any UDP socket.
///
/// ```
/// use kettle::net::UdpSocket;
/// kettle::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket {
    io: Registered<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (port 0 picks a free port), registered with the running loop.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let fd = socket::udp_socket(&addr)?;
        socket::bind(&fd, &addr)?;
        Ok(UdpSocket {
            io: Registered::new(std::net::UdpSocket::from(fd))?,
        })
    }

    /// Sets the default peer: [`send`](Self::send) goes to `addr`, and the kernel drops
    /// datagrams from anyone else. Connecting a UDP socket sends nothing, so this does not
    /// wait. An ICMP "port unreachable" from the peer shows up as a `ConnectionRefused` error
    /// on a later send or receive.
    ///
    /// ```
    /// use kettle::net::UdpSocket;
    /// kettle::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     a.connect(b.local_addr().unwrap()).unwrap();
    ///     b.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send(b"hi").await.unwrap();
    ///     let mut buf = [0u8; 8];
    ///     let n = b.recv(&mut buf).await.unwrap();
    ///     assert_eq!(&buf[..n], b"hi");
    /// });
    /// ```
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        self.io.get_ref().connect(addr)
    }

    /// Sends one datagram to `target`; returns the bytes sent (all of `buf`, or an error).
    /// Cancellation-safe.
    pub async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.io
            .io(Direction::Write, |s| s.send_to(buf, target))
            .await
    }

    /// Receives one datagram into `buf`; returns its length and sender. Cancellation-safe.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.io(Direction::Read, |s| s.recv_from(buf)).await
    }

    /// Sends one datagram to the connected peer (see [`connect`](Self::connect)).
    /// Cancellation-safe.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.io(Direction::Write, |s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer. Cancellation-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.io(Direction::Read, |s| s.recv(buf)).await
    }

    /// The poll form of [`send_to`](Self::send_to).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(Direction::Write, cx, |s| s.send_to(buf, target))
    }

    /// The poll form of [`recv_from`](Self::recv_from).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io.poll_io(Direction::Read, cx, |s| s.recv_from(buf))
    }

    /// The poll form of [`send`](Self::send).
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(Direction::Write, cx, |s| s.send(buf))
    }

    /// The poll form of [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(Direction::Read, cx, |s| s.recv(buf))
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer; a `NotConnected` error if [`connect`](Self::connect) was not called.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Allows (`SO_BROADCAST`) sending to broadcast addresses such as `255.255.255.255`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// Whether sending to broadcast addresses is allowed.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Sets the time-to-live (IPv4) or hop limit (IPv6) of outgoing datagrams.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        options::set_ttl(self.as_raw_fd(), &self.local_addr()?, ttl)
    }

    /// The time-to-live (IPv4) or hop limit (IPv6) of outgoing datagrams.
    pub fn ttl(&self) -> io::Result<u32> {
        options::ttl(self.as_raw_fd(), &self.local_addr()?)
    }

    /// Asks for a kernel receive buffer of `size` bytes (`SO_RCVBUF`; Linux doubles it and
    /// caps it at `net.core.rmem_max`). A bigger buffer drops fewer datagrams in bursts.
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        options::set_recv_buffer_size(self.as_raw_fd(), size)
    }

    /// The kernel receive buffer size (`SO_RCVBUF`).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        options::recv_buffer_size(self.as_raw_fd())
    }

    /// Asks for a kernel send buffer of `size` bytes (`SO_SNDBUF`; doubled and capped too).
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        options::set_send_buffer_size(self.as_raw_fd(), size)
    }

    /// The kernel send buffer size (`SO_SNDBUF`).
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        options::send_buffer_size(self.as_raw_fd())
    }

    /// Takes the socket's pending error (`SO_ERROR`), e.g. an ICMP error for an earlier send.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        socket::take_error(self.as_raw_fd())
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}
