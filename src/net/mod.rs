//! Networking: sockets registered with the event loop (the I/O half of asyncio).
//!
//! - TCP: [`TcpListener`] (bound with [`ListenOptions`] for backlog, `SO_REUSEADDR` and
//!   `SO_REUSEPORT`) and [`TcpStream`], with keep-alive, linger, buffer-size and TTL options
//!   and `connect_timeout`/`accept_timeout`;
//! - UDP: [`UdpSocket`];
//! - Unix-domain: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`];
//! - asyncio's streams ([`streams`]) over TCP and Unix-domain sockets: [`open_connection`],
//!   [`start_server`], [`open_unix_connection`], [`start_unix_server`], and over TLS
//!   [`open_connection_tls`], [`start_server_tls`]; [`StreamReader`],
//!   [`StreamWriter`], [`Server`], with [`SocketAddress`] for the addresses of either kind
//!   (`ip:port` or a path);
//! - [`lookup_host`], name resolution off the loop.
//!
//! Sockets are non-blocking and registered edge-triggered with the loop's epoll selector; an
//! operation that would block parks the task until the next readiness edge. They implement
//! `futures_io::AsyncRead`/`AsyncWrite`, so other async libraries can use them.

mod address;
mod lookup;
mod options;
mod registered;
pub mod streams;
mod tcp;
mod udp;
mod unix;

pub use address::SocketAddress;
pub use lookup::lookup_host;
pub use options::ListenOptions;
pub use streams::{
    open_connection, open_connection_tls, open_unix_connection, start_server, start_server_tls,
    start_unix_server, Server, StreamError, StreamReader, StreamWriter,
};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
