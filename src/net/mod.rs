//! Networking: sockets registered with the event loop (the I/O half of asyncio).
//!
//! Sockets are non-blocking and registered edge-triggered with the loop's epoll selector; an
//! operation that would block parks the task until the next readiness edge. They implement
//! `futures_io::AsyncRead`/`AsyncWrite`, so other async libraries can use them.

mod lookup;
pub mod streams;
mod tcp;

pub use lookup::lookup_host;
pub use streams::{open_connection, start_server, Server, StreamError, StreamReader, StreamWriter};
pub use tcp::{TcpListener, TcpStream};
