//! [`TlsStream`]: a rustls session driven by a Kettle [`TcpStream`]'s readiness.
//!
//! rustls does no I/O of its own: it takes ciphertext (`read_tls`), turns it into plaintext
//! and handshake progress (`process_new_packets`), and leaves the records it wants sent in a
//! buffer for `write_tls`. This file is the glue, and it keeps four rules:
//!
//! 1. **Every buffer is bounded.** Ciphertext is read from the socket into a fixed
//!    [`READ_CHUNK`] buffer and handed to rustls from there; the socket is read again only
//!    once rustls took all of it. rustls refuses more ciphertext while 16 KiB of decrypted
//!    plaintext wait to be read, and its outgoing buffer is capped at [`WRITE_LIMIT`]: a
//!    write that finds it full flushes it to the socket first, and returns `Pending` if the
//!    socket is full too.
//! 2. **The reading task never takes over the write direction.** Processing what was read
//!    can make rustls want to send (an alert, a TLS 1.3 key update answer). The read path
//!    sends that at once with a write that registers no waker
//!    ([`TcpStream::try_write_vectored`]); if the socket is full the records stay queued,
//!    and the next `poll_write`/`poll_flush`/`poll_shutdown` sends them. A registering write
//!    would replace the waker of the task that owns the write direction (the reactor keeps
//!    one per direction), and that task would never hear of the next writable edge.
//! 3. **Errors are sticky.** The first TLS failure is kept and returned by every later read
//!    and write, after the alert it queued has been sent if the socket allows.
//! 4. **One borrow per poll.** The session sits in a `RefCell` borrowed for the length of one
//!    poll call, never across an `await`, so a reader task and a writer task can share the
//!    stream (`&self` methods, like `TcpStream`).
//!
//! The handshake is the same machinery in a loop: send what rustls wants to send, stop when
//! it is no longer handshaking, otherwise read and process more. It registers for whichever
//! direction it waits on, and dropping its future (a timeout) just closes the socket.

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, BufRead, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustls::pki_types::CertificateDer;

use super::error::TlsError;
use crate::net::TcpStream;

/// How much ciphertext one socket read takes: about one full-size TLS record (16 KiB of
/// payload plus header and tag), so a bulk transfer decrypts a record per `read(2)`.
const READ_CHUNK: usize = 16 * 1024 + 512;

/// The cap on encrypted records waiting to be sent (rustls' `set_buffer_limit`). A writer
/// that gets ahead of the socket by this much is made to wait.
const WRITE_LIMIT: usize = 64 * 1024;

/// A TLS connection over a Kettle [`TcpStream`], from
/// [`TlsConnector::connect`](super::TlsConnector::connect) or
/// [`TlsAcceptor::accept`](super::TlsAcceptor::accept); the handshake is complete when you
/// get one.
///
/// Like `TcpStream`, reads and writes take `&self`, so one task may read while another
/// writes (share it through an `Rc`; `&TlsStream` implements `AsyncRead`/`AsyncWrite`
/// too). It is `!Send`, like everything that lives on a loop.
///
/// - A read returns `Ok(0)` once the peer closed the TLS session with `close_notify`; a TCP
///   end without `close_notify` is an `UnexpectedEof` error, since the data may have been cut
///   short by an attacker (or a careless peer).
/// - A write encrypts into a bounded buffer and sends what the socket takes; call
///   [`flush`](Self::flush) to wait until everything is on the wire, and
///   [`shutdown`](Self::shutdown) to send `close_notify` and end the sending side.
/// - A TLS failure (a bad record, an alert from the peer) is an `InvalidData` error carrying
///   a [`TlsError`](super::TlsError), and every later operation returns it again.
/// - Dropping it closes the socket without `close_notify`, which the peer reads as a
///   truncation: call `shutdown` first to end cleanly.
pub struct TlsStream {
    /// The socket, outside the `RefCell` so its own `&self` calls need no borrow.
    tcp: TcpStream,
    /// rustls and the buffers around it. Boxed so that a `TlsStream` (and an enum of
    /// transports holding one) stays a few words wide.
    session: RefCell<Box<Session>>,
}

/// The TLS state of one connection.
struct Session {
    /// rustls' state machine for either end.
    conn: rustls::Connection,
    /// Ciphertext read from the socket that rustls has not taken yet: `inbuf[in_start..in_end]`.
    inbuf: Box<[u8]>,
    /// See `inbuf`.
    in_start: usize,
    /// See `inbuf`.
    in_end: usize,
    /// The socket reached end of stream (the peer's FIN).
    tcp_eof: bool,
    /// The handshake completed: errors now concern the connection, not the handshake.
    established: bool,
    /// Who the peer is, for error messages: the server's name, or `client ip:port`.
    peer: String,
    /// The first TLS failure, returned again by every later operation.
    failed: Option<TlsError>,
    /// `close_notify` is queued (by `poll_shutdown`): no more application data may follow.
    close_notify_queued: bool,
    /// The socket's sending side is shut down.
    write_shut: bool,
}

/// What one [`Session::poll_fill`] achieved.
enum Fill {
    /// rustls took some ciphertext and processed it.
    Fed,
    /// Nothing more will come: the socket is at end of stream (rustls was told), or rustls
    /// takes no more input (it received `close_notify`).
    End,
}

impl Session {
    /// "TLS handshake with X" or "TLS connection with X", for error messages.
    fn context(&self) -> String {
        if self.established {
            format!("TLS connection with {}", self.peer)
        } else {
            format!("TLS handshake with {}", self.peer)
        }
    }

    /// The sticky failure as an `io::Error`, if there is one.
    fn check_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(e.clone().into_io(io::ErrorKind::InvalidData)),
            None => Ok(()),
        }
    }

    /// Records a failure (keeping the first) and returns it as an `io::Error`.
    fn fail(&mut self, tcp: &TcpStream, err: TlsError, kind: io::ErrorKind) -> io::Error {
        let err = self.failed.get_or_insert(err).clone();
        // The alert rustls queued for the peer is its only way to learn why we give up.
        let _ = self.try_flush(tcp);
        err.into_io(kind)
    }

    /// Gives rustls more ciphertext, reading the socket if the buffer is empty, and
    /// processes it. `Pending` (read waker registered) if the socket has nothing.
    fn poll_fill(&mut self, tcp: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<Fill>> {
        if self.in_start == self.in_end && !self.tcp_eof {
            match ready!(tcp.poll_read(cx, &mut self.inbuf)) {
                Ok(0) => self.tcp_eof = true,
                Ok(n) => {
                    self.in_start = 0;
                    self.in_end = n;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // An empty slice at end of stream is how rustls learns of the EOF (`read_tls`
        // returning 0 marks it), which it needs to tell a clean close from a truncation.
        let mut pending = &self.inbuf[self.in_start..self.in_end];
        let taken = match self.conn.read_tls(&mut pending) {
            Ok(n) => n,
            Err(e) => {
                // The deframer refuses input it cannot frame (a record longer than TLS
                // allows): the byte stream is not TLS.
                let err = TlsError::other(self.context(), e.to_string());
                return Poll::Ready(Err(self.fail(tcp, err, io::ErrorKind::InvalidData)));
            }
        };
        self.in_start += taken;
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        }
        if let Err(e) = self.conn.process_new_packets() {
            let err = TlsError::from_rustls(self.context(), e);
            return Poll::Ready(Err(self.fail(tcp, err, io::ErrorKind::InvalidData)));
        }
        Poll::Ready(Ok(if taken == 0 { Fill::End } else { Fill::Fed }))
    }

    /// Sends queued records until none are left; `Pending` (write waker registered) while
    /// the socket is full.
    fn poll_send(&mut self, tcp: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut sink = Registering { tcp, cx };
            match self.conn.write_tls(&mut sink) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what the socket takes right now without registering a waker (rule 2 of the
    /// module docs); what it does not take stays queued.
    fn try_flush(&mut self, tcp: &TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Unregistered { tcp }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The socket as rustls' `io::Write`, registering the task for writability when full.
struct Registering<'a, 'b, 'c> {
    tcp: &'a TcpStream,
    cx: &'b mut Context<'c>,
}

impl Write for Registering<'_, '_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tcp.poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self.tcp.poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The socket as rustls' `io::Write`, without touching the reactor (see `try_flush`).
struct Unregistered<'a> {
    tcp: &'a TcpStream,
}

impl Write for Unregistered<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.try_write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsStream {
    /// Wraps `tcp` in a session that has not started its handshake.
    fn new(tcp: TcpStream, mut conn: rustls::Connection, peer: String) -> TlsStream {
        conn.set_buffer_limit(Some(WRITE_LIMIT));
        TlsStream {
            tcp,
            session: RefCell::new(Box::new(Session {
                conn,
                inbuf: vec![0; READ_CHUNK].into_boxed_slice(),
                in_start: 0,
                in_end: 0,
                tcp_eof: false,
                established: false,
                peer,
                failed: None,
                close_notify_queued: false,
                write_shut: false,
            })),
        }
    }

    /// Runs the whole handshake of `conn` over `tcp`. Cancellation-safe in the sense that
    /// matters for timeouts: dropping the future drops (closes) the socket.
    pub(crate) async fn handshake(
        tcp: TcpStream,
        conn: rustls::Connection,
        peer: String,
    ) -> io::Result<TlsStream> {
        let stream = TlsStream::new(tcp, conn, peer);
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.session.borrow_mut();
        let s = &mut **guard;
        loop {
            // Flights go out before waiting for the peer's answer to them; after the last
            // handshake message this also sends a TLS 1.3 server's session tickets.
            ready!(s.poll_send(&self.tcp, cx))?;
            if !s.conn.is_handshaking() {
                s.established = true;
                return Poll::Ready(Ok(()));
            }
            match ready!(s.poll_fill(&self.tcp, cx))? {
                Fill::Fed => {}
                Fill::End => {
                    let err = TlsError::other(
                        s.context(),
                        "the peer closed the connection before the handshake completed",
                    );
                    return Poll::Ready(Err(s.fail(&self.tcp, err, io::ErrorKind::UnexpectedEof)));
                }
            }
        }
    }

    /// Reads plaintext, handing each available chunk (at most `max` bytes in all) to `sink`.
    /// Returns the bytes handed over; `Ok(0)` after `close_notify`.
    fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        mut sink: impl FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        let mut guard = self.session.borrow_mut();
        let s = &mut **guard;
        let mut ended = false;
        loop {
            let mut total = 0;
            let mut reader = s.conn.reader();
            let outcome = loop {
                match reader.fill_buf() {
                    // Empty only once the peer's close_notify has been read past.
                    Ok([]) => break Ok(()),
                    Ok(chunk) => {
                        let n = chunk.len().min(max - total);
                        sink(&chunk[..n]);
                        reader.consume(n);
                        total += n;
                        if total == max {
                            break Ok(());
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            match outcome {
                Ok(()) => return Poll::Ready(Ok(total)),
                Err(_) if total > 0 => return Poll::Ready(Ok(total)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Poll::Ready(Err(unclean_eof(s)))
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
            s.check_failed()?;
            if ended {
                // rustls saw the end yet still asks for more: treat it as the truncation it is.
                return Poll::Ready(Err(unclean_eof(s)));
            }
            let filled = ready!(s.poll_fill(&self.tcp, cx));
            if s.conn.wants_write() {
                let _ = s.try_flush(&self.tcp);
            }
            if let Fill::End = filled? {
                ended = true;
            }
        }
    }

    /// Encrypts through `write` (a plaintext write into rustls) and sends, within the
    /// outgoing buffer's cap.
    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&mut rustls::Connection) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let mut guard = self.session.borrow_mut();
        let s = &mut **guard;
        s.check_failed()?;
        if s.close_notify_queued {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the TLS stream was shut down",
            )));
        }
        // Two rounds at most: the first may find the buffer full, and once it has been sent
        // whole the second always has room.
        for _ in 0..2 {
            let n = write(&mut s.conn)?;
            let sent = s.poll_send(&self.tcp, cx);
            if let Poll::Ready(Err(e)) = sent {
                return Poll::Ready(Err(e));
            }
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
            if sent.is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
    }

    /// Polls for a read into `buf`. `Ok(0)`: the peer closed the session cleanly
    /// (`close_notify`), or `buf` is empty. A TCP end without `close_notify` is an
    /// `UnexpectedEof` error.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut filled = 0;
        self.poll_read_with(cx, buf.len(), |chunk| {
            buf[filled..filled + chunk.len()].copy_from_slice(chunk);
            filled += chunk.len();
        })
    }

    /// Reads what is available into the spare capacity of `buf`, reserving `min_spare` bytes
    /// first when less is free, and returns how many bytes were appended (`0`: the peer
    /// closed the session). The same contract as
    /// [`TcpStream::poll_read_buf`](crate::net::TcpStream::poll_read_buf); the plaintext is
    /// copied straight from rustls' buffer, without zero-filling.
    pub fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
        min_spare: usize,
    ) -> Poll<io::Result<usize>> {
        if buf.capacity() - buf.len() < min_spare {
            buf.reserve(min_spare);
        }
        let room = buf.capacity() - buf.len();
        self.poll_read_with(cx, room, |chunk| buf.extend_from_slice(chunk))
    }

    /// Polls for a write of `buf`: encrypts what fits in the outgoing buffer and sends what
    /// the socket takes. Returns how many plaintext bytes were taken; `Pending` only when the
    /// buffer is full and the socket would block.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_write_with(cx, |conn| conn.writer().write(buf))
    }

    /// [`poll_write`](Self::poll_write) from several buffers.
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        self.poll_write_with(cx, |conn| conn.writer().write_vectored(bufs))
    }

    /// Polls until every encrypted record (and any alert or key update a read produced) has
    /// been handed to the kernel.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.session.borrow_mut();
        let s = &mut **guard;
        s.check_failed()?;
        s.poll_send(&self.tcp, cx)
    }

    /// Starts a TLS 1.3 key update: what we send from now on uses new keys, and the peer is
    /// asked to renew its own, which it does (answering with its own update) when it next
    /// reads. The message is queued with the outgoing records, so the next write or
    /// [`flush`](Self::flush) sends it. For long-lived connections that want to limit how
    /// much data one key protects. A TLS error on TLS 1.2 (which has no key update).
    pub fn refresh_traffic_keys(&self) -> io::Result<()> {
        let mut guard = self.session.borrow_mut();
        let s = &mut **guard;
        s.check_failed()?;
        s.conn
            .refresh_traffic_keys()
            .map_err(|e| TlsError::from_rustls(s.context(), e).into_io(io::ErrorKind::InvalidData))
    }

    /// Whether encrypted records (or an alert) are waiting to be sent: what
    /// [`poll_flush`](Self::poll_flush) would send.
    pub fn has_pending_output(&self) -> bool {
        self.session.borrow().conn.wants_write()
    }

    /// Polls the end of the sending side: queues `close_notify`, sends everything, then shuts
    /// the socket's write half (the peer reads a clean end of stream). Reading goes on
    /// working. Repeating it is harmless.
    pub fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.session.borrow_mut();
        let s = &mut **guard;
        if s.failed.is_none() {
            if !s.close_notify_queued {
                s.conn.send_close_notify();
                s.close_notify_queued = true;
            }
            ready!(s.poll_send(&self.tcp, cx))?;
        }
        if !s.write_shut {
            s.write_shut = true;
            match self.tcp.shutdown(Shutdown::Write) {
                // The peer is gone already: nothing left to end.
                Err(e) if e.kind() != io::ErrorKind::NotConnected => {
                    return Poll::Ready(Err(e));
                }
                _ => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads into `buf` (see [`poll_read`](Self::poll_read)). Cancellation-safe.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the stream ends first. Not
    /// cancellation-safe: bytes read before a cancellation are lost with the future.
    pub async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Reads into the spare capacity of `buf` (see [`poll_read_buf`](Self::poll_read_buf)).
    /// Cancellation-safe.
    pub async fn read_buf(&self, buf: &mut bytes::BytesMut, min_spare: usize) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_buf(cx, buf, min_spare)).await
    }

    /// Writes some of `buf`, returning how much was taken. Cancellation-safe.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes all of `buf` and sends it: returns once everything is in the kernel's hands
    /// (so no [`flush`](Self::flush) is needed after it). Not cancellation-safe: a
    /// cancelled call may have sent part of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        self.flush().await
    }

    /// Waits until every encrypted record has been handed to the kernel. Cancellation-safe.
    pub async fn flush(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Sends `close_notify` and shuts down the sending side (see
    /// [`poll_shutdown`](Self::poll_shutdown)).
    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_shutdown(cx)).await
    }

    /// The TCP stream underneath, for addresses and socket options. Reading or writing it
    /// directly would corrupt the TLS session.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// The protocol both ends agreed on through ALPN (e.g. `b"http/1.1"`), if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.session
            .borrow()
            .conn
            .alpn_protocol()
            .map(<[u8]>::to_vec)
    }

    /// The TLS version in use (`TLSv1_3` or `TLSv1_2`).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.session.borrow().conn.protocol_version()
    }

    /// The cipher suite in use.
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.session.borrow().conn.negotiated_cipher_suite()
    }

    /// The certificate chain the peer presented, leaf first: the server's on a client; a
    /// client certificate on a server that asked for one.
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.session
            .borrow()
            .conn
            .peer_certificates()
            .map(<[CertificateDer<'static>]>::to_vec)
    }

    /// On a server: the name the client asked for with SNI (`None` if it sent none, as
    /// clients do for IP addresses). On a client: the name given to `connect`.
    pub fn server_name(&self) -> Option<String> {
        let s = self.session.borrow();
        match &s.conn {
            rustls::Connection::Server(c) => c.server_name().map(str::to_string),
            rustls::Connection::Client(_) => Some(s.peer.clone()),
        }
    }

    /// Whether this is the server end of the connection.
    pub fn is_server(&self) -> bool {
        matches!(self.session.borrow().conn, rustls::Connection::Server(_))
    }
}

/// The error for a socket that ended without the peer's `close_notify`.
fn unclean_eof(s: &Session) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "{} ended without close_notify: the data may be truncated",
            s.context()
        ),
    )
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TlsStream");
        d.field("tcp", &self.tcp);
        if let Ok(s) = self.session.try_borrow() {
            d.field("peer", &s.peer)
                .field("version", &s.conn.protocol_version())
                .field("failed", &s.failed.is_some());
        }
        d.finish()
    }
}

impl futures_io::AsyncRead for &TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        TlsStream::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for &TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        TlsStream::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        TlsStream::poll_write_vectored(self.get_mut(), cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TlsStream::poll_flush(self.get_mut(), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TlsStream::poll_shutdown(self.get_mut(), cx)
    }
}

impl futures_io::AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        TlsStream::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        TlsStream::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        TlsStream::poll_write_vectored(self.get_mut(), cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TlsStream::poll_flush(self.get_mut(), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TlsStream::poll_shutdown(self.get_mut(), cx)
    }
}
