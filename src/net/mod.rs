//! Networking: sockets registered with the event loop (the I/O half of asyncio).
//!
//! - TCP: [`TcpListener`] (bound with [`ListenOptions`] for backlog, `SO_REUSEADDR` and
//!   `SO_REUSEPORT`) and [`TcpStream`], with keep-alive, linger, buffer-size and TTL options
//!   and `connect_timeout`/`accept_timeout`;
//! - UDP: [`UdpSocket`];
//! - Unix-domain: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`].
//!
//! Sockets are non-blocking and registered edge-triggered with the loop's epoll selector; an
//! operation that would block parks the task until the next readiness edge. They implement
//! `futures_io::AsyncRead`/`AsyncWrite`, so other async libraries can use them.

mod options;
mod registered;
mod tcp;
mod udp;
mod unix;

pub use options::ListenOptions;
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
