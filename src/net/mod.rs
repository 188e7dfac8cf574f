//! Networking: sockets registered with the event loop (the I/O half of asyncio).
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
