//! One client connection: the socket (plain or TLS), its read buffer, and the client role of
//! the HTTP/1 codec driven over it: connect, write a request, read a response head.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::Method;

use super::error::{connect_error, io_error, timeout_error};
use super::pool::PoolKey;
use super::timeout::{until, Deadlines};
use crate::error::{Error, ErrorKind, Result};
use crate::http::response_head::{self, ResponseHead, ResponseLimits};
use crate::net::TcpStream;
use crate::sys::socket::{peek_idle, PeekState};
use crate::tls::{self, TlsConnector, TlsStream};

/// An idle connection younger than this is judged by the loop's readiness bits alone: the loop
/// reads epoll far more often than that, so a FIN would already show.
const TRUST_READINESS_FOR: Duration = Duration::from_millis(500);

/// Interim responses (100 Continue, 103 Early Hints) tolerated before the final one: a server
/// sending them without end would otherwise keep the client parsing forever.
const MAX_INTERIM: usize = 32;

/// Bytes of spare room kept for each read: responses of the common size arrive in one read.
const READ_SPARE: usize = 16 * 1024;

/// The socket under a connection.
pub(crate) enum Transport {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Tcp(s) => s,
            Transport::Tls(s) => s.get_ref(),
        }
    }

    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        spare: usize,
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => s.poll_read_buf(cx, buf, spare),
            Transport::Tls(s) => s.poll_read_buf(cx, buf, spare),
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => s.poll_write(cx, buf),
            Transport::Tls(s) => s.poll_write(cx, buf),
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tcp(_) => Poll::Ready(Ok(())),
            Transport::Tls(s) => s.poll_flush(cx),
        }
    }
}

/// A connection to one origin.
pub(crate) struct Connection {
    io: Transport,
    /// Bytes read but not yet parsed: the start of a response head, or body bytes.
    pub(crate) rbuf: BytesMut,
    /// Exchanges completed on this connection.
    pub(crate) exchanges: u64,
    /// Whether any byte of the current response has arrived (a request that failed before
    /// may be retried; one whose response had started may not).
    pub(crate) received: bool,
}

impl Connection {
    /// Opens a connection to `key`'s origin: resolve, connect (trying each address in the
    /// resolver's order), and for https the TLS handshake, all before `deadline`.
    pub(crate) async fn open(
        key: &PoolKey,
        tls: &TlsConnector,
        deadline: Option<Instant>,
        what: &Deadlines,
    ) -> Result<Connection> {
        let work = async {
            let addrs = crate::net::lookup_host(&key.host, key.port)
                .await
                .map_err(|e| connect_error(key, "cannot resolve the host", e))?;
            let mut last = None;
            let mut stream = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => {
                        stream = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let stream = match stream {
                Some(s) => s,
                None => {
                    let e = last.unwrap_or_else(|| io::Error::other("no address"));
                    return Err(connect_error(key, "", e));
                }
            };
            // Requests are written whole, so Nagle would only delay the body behind the head.
            let _ = stream.set_nodelay(true);
            let io = if key.tls {
                let tls_stream = tls.connect(&key.host, stream).await.map_err(|e| {
                    if tls::is_tls_error(&e) {
                        Error::with_source(
                            ErrorKind::Tls,
                            format!("TLS handshake with {key} failed"),
                            e,
                        )
                    } else {
                        connect_error(key, "connection lost during the TLS handshake", e)
                    }
                })?;
                Transport::Tls(Box::new(tls_stream))
            } else {
                Transport::Tcp(stream)
            };
            Ok(Connection {
                io,
                rbuf: BytesMut::with_capacity(READ_SPARE),
                exchanges: 0,
                received: false,
            })
        };
        match until(deadline, work).await {
            Ok(r) => r,
            Err(()) => Err(timeout_error(
                what,
                deadline,
                &format!("connecting to {key}"),
            )),
        }
    }

    /// The socket and the bytes read past the last response's head, for a protocol taking
    /// the connection over after a `101` (a WebSocket).
    pub(crate) fn into_upgraded(self) -> (crate::net::streams::Transport, BytesMut) {
        let io = match self.io {
            Transport::Tcp(s) => crate::net::streams::Transport::Tcp(s),
            Transport::Tls(s) => crate::net::streams::Transport::Tls(*s),
        };
        (io, self.rbuf)
    }

    /// Whether an idle connection still looks usable: no EOF, no error, and no bytes the
    /// server sent unasked (which could only be garbage or a stray response).
    ///
    /// The loop's readiness bits answer for free when no event arrived since the last read;
    /// only when one did, or when the connection sat idle long enough that the loop may not
    /// have looked at epoll lately, does a `MSG_PEEK` syscall ask the kernel.
    pub(crate) fn is_alive(&self, idle_for: Duration) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let tcp = self.io.tcp();
        if idle_for < TRUST_READINESS_FOR && !tcp.read_event_pending() {
            return true;
        }
        peek_idle(tcp.as_raw_fd()) == PeekState::Quiet
    }

    /// Writes all of `parts` (head and body pieces) before `deadline`.
    pub(crate) async fn write_all(
        &self,
        parts: &[&[u8]],
        deadline: Option<Instant>,
        deadlines: &Deadlines,
    ) -> Result<()> {
        let work = async {
            for part in parts {
                let mut written = 0;
                while written < part.len() {
                    let n = poll_fn(|cx| self.io.poll_write(cx, &part[written..])).await?;
                    if n == 0 {
                        return Err(io::Error::from(io::ErrorKind::WriteZero));
                    }
                    written += n;
                }
            }
            poll_fn(|cx| self.io.poll_flush(cx)).await
        };
        match until(deadline, work).await {
            Ok(r) => r.map_err(|e| io_error("sending the request", e)),
            Err(()) => Err(timeout_error(deadlines, deadline, "sending the request")),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF.
    pub(crate) fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let poll = self.io.poll_read_buf(cx, &mut self.rbuf, READ_SPARE);
        if let Poll::Ready(Ok(n)) = poll {
            self.received |= n > 0;
        }
        poll
    }

    /// Reads more bytes before the next read deadline; `Ok(0)` at EOF.
    pub(crate) async fn read_more(&mut self, deadlines: &Deadlines, what: &str) -> Result<usize> {
        // A server that always has bytes ready never makes the read wait, so the deadline is
        // also checked up front: otherwise `until` would never get to look at it.
        if deadlines.total_passed() {
            return Err(deadlines.read_error(what));
        }
        let deadline = deadlines.read();
        match until(deadline, poll_fn(|cx| self.poll_read_more(cx))).await {
            Ok(r) => r.map_err(|e| {
                if tls::is_tls_error(&e) {
                    Error::with_source(ErrorKind::Tls, format!("TLS failure {what}"), e)
                } else {
                    io_error(what, e)
                }
            }),
            Err(()) => Err(deadlines.read_error(what)),
        }
    }

    /// Reads the response head to `method`, skipping interim (1xx) responses other than 101
    /// (at most [`MAX_INTERIM`] of them).
    pub(crate) async fn read_head(
        &mut self,
        method: &Method,
        limits: &ResponseLimits,
        deadlines: &Deadlines,
    ) -> Result<ResponseHead> {
        self.received = !self.rbuf.is_empty();
        let mut interim = 0;
        loop {
            match response_head::parse(&self.rbuf, limits, method) {
                Ok(Some((head, len))) => {
                    let _ = self.rbuf.split_to(len);
                    if head.status.is_informational() && head.status != 101 {
                        interim += 1;
                        if interim > MAX_INTERIM {
                            return Err(Error::with_message(
                                ErrorKind::InvalidResponse,
                                format!("more than {MAX_INTERIM} interim (1xx) responses"),
                            ));
                        }
                        continue;
                    }
                    return Ok(head);
                }
                Ok(None) => {}
                Err(msg) => return Err(Error::with_message(ErrorKind::InvalidResponse, msg)),
            }
            if self
                .read_more(deadlines, "waiting for the response")
                .await?
                == 0
            {
                return Err(if self.received {
                    Error::with_message(
                        ErrorKind::InvalidResponse,
                        "the server closed the connection in the middle of the response head",
                    )
                } else {
                    Error::with_source(
                        ErrorKind::Io,
                        "the server closed the connection without responding",
                        io::Error::from(io::ErrorKind::UnexpectedEof),
                    )
                });
            }
        }
    }
}
