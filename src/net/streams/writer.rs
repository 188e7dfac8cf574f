//! `StreamWriter`: buffered writing with asyncio's flow control.
//!
//! # Design
//!
//! asyncio's `transport.write()` sends what the kernel takes at once and queues the rest, which
//! the event loop sends whenever the socket turns writable; `drain()` only waits while the queue
//! is above the high-water mark. The same here:
//!
//! 1. [`StreamWriter::write`] tries one non-blocking send when nothing is queued (the common
//!    case: the kernel takes it all, and no task or allocation is involved).
//! 2. Whatever the kernel does not take is appended to the writer's buffer, and a *flusher*
//!    task is spawned that sends the buffer as the socket becomes writable and exits when the
//!    buffer is empty. At most one flusher exists per connection; while it runs, `write` only
//!    appends (so bytes stay in order).
//! 3. Past the high-water mark (64 KiB) the writer is *paused*; the flusher un-pauses it once
//!    the buffer is at or below the low-water mark (16 KiB) and wakes the tasks waiting in
//!    [`StreamWriter::drain`].
//! 4. The first error (a peer that reset, a broken pipe) is stored: the buffer is discarded,
//!    later writes are dropped, and `drain`/`wait_closed` report the error.
//! 5. `write_eof` and `close` shut the socket down once the buffer is flushed: at once if it is
//!    empty, otherwise as the flusher's last act.
//!
//! The immediate send in `write` polls the socket with a no-op waker. That is safe because it
//! only happens when no flusher exists, and a flusher is started right after whenever anything
//! is left: its first poll replaces the no-op waker with its own.
//!
//! A flusher holds the connection open until the buffer is out, so dropping a writer (or
//! returning from a server handler) never loses written data, as with asyncio.
//!
//! Over TLS, a write the session took may still be buffered inside it (encrypted, not yet
//! sent): `write` starts a flusher whenever that is so, and the flusher's last act before
//! exiting is [`Transport::poll_flush`]. `write_eof` and `close` must send `close_notify`,
//! which may have to wait for the socket, so over TLS they always go through the flusher.

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::{Connection, Transport};
use crate::net::SocketAddress;

/// Default high-water mark: above it the writer is paused and `drain` waits.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// Default low-water mark: at or below it a paused writer resumes.
pub const DEFAULT_LOW_WATER: usize = 16 * 1024;

/// The writing half of a connection (asyncio's `StreamWriter`).
///
/// `write` never blocks and never fails on the spot; await [`drain`](Self::drain) after writing
/// to respect flow control and learn about errors. Cloning gives another handle to the same
/// writer (several tasks may write to one connection; each `write` is kept whole and in order).
///
/// ```
/// kettle::run(async {
///     // A server that upper-cases every line it gets.
///     let server = kettle::start_server(
///         |mut reader: kettle::net::StreamReader, writer: kettle::net::StreamWriter| async move {
///             loop {
///                 let line = reader.readline().await?;
///                 if line.is_empty() {
///                     break; // the client closed its side
///                 }
///                 writer.write(&line.to_ascii_uppercase());
///                 writer.drain().await?;
///             }
///             writer.close();
///             writer.wait_closed().await?;
///             Ok::<(), std::io::Error>(())
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     let port = server.sockets()[0].port().unwrap();
///
///     let (mut reader, writer) = kettle::open_connection("127.0.0.1", port).await.unwrap();
///     writer.write(b"hello\n");
///     writer.writelines([&b"kettle "[..], b"streams\n"]);
///     writer.drain().await.unwrap();
///     writer.write_eof(); // "no more requests": the server sees end of stream
///     assert_eq!(reader.readline().await.unwrap(), b"HELLO\n");
///     assert_eq!(reader.readline().await.unwrap(), b"KETTLE STREAMS\n");
///     assert_eq!(reader.readline().await.unwrap(), b""); // the server closed
///     writer.close();
///     writer.wait_closed().await.unwrap();
///     server.close();
///     server.wait_closed().await;
/// });
/// ```
#[derive(Clone)]
pub struct StreamWriter {
    /// The connection, shared with the reader and the flusher task.
    conn: Rc<Connection>,
    /// The buffer and flow-control state, shared with the flusher task and other handles.
    state: Rc<RefCell<State>>,
}

/// What the writer handles and the flusher share.
struct State {
    /// Bytes accepted by `write` but not yet taken by the kernel: `buf[pos..]`.
    buf: Vec<u8>,
    /// Start of the unsent bytes in `buf`.
    pos: usize,
    /// Pause `drain` callers when more than this is buffered.
    high: usize,
    /// Resume them when at most this is buffered.
    low: usize,
    /// Above the high-water mark and not yet back down to the low one.
    paused: bool,
    /// A flusher task exists (it will send everything in `buf`).
    flushing: bool,
    /// The first failure; once set the connection is considered lost.
    error: Option<StoredError>,
    /// `write_eof` was called: shut down the sending side after the buffer.
    eof_requested: bool,
    /// `close` was called: shut down both sides after the buffer.
    closing: bool,
    /// Something was written after `write_eof`; `drain` reports it.
    late_write: bool,
    /// The close (or the loss of the connection) has happened: `wait_closed` may return.
    closed: bool,
    /// Tasks in `drain` or `wait_closed`; all are woken on every change they may wait for.
    waiters: Vec<Waker>,
    /// Addresses captured at connection time; the kernel forgets the peer after a shutdown.
    peer: Option<SocketAddress>,
    /// See `peer`.
    local: Option<SocketAddress>,
}

/// An `io::Error` kept for repeated reporting (`io::Error` is not `Clone`).
#[derive(Clone)]
struct StoredError {
    kind: io::ErrorKind,
    message: String,
}

impl StoredError {
    fn from_io(e: &io::Error) -> StoredError {
        StoredError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    fn to_io(&self) -> io::Error {
        io::Error::new(self.kind, self.message.clone())
    }
}

impl State {
    fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn append(&mut self, data: &[u8]) {
        // Move the unsent tail to the front before growing, once the sent part dominates, so
        // the copy is amortised over what was sent.
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        if self.pending() > self.high {
            self.paused = true;
        }
    }

    /// Marks `n` bytes as sent; returns the wakers to wake if that un-paused the writer.
    fn sent(&mut self, n: usize) -> Vec<Waker> {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.pos = 0;
            self.buf.clear();
            // Keep a normal buffer for the next burst; give back what a huge burst grew.
            if self.buf.capacity() > 2 * self.high {
                self.buf = Vec::new();
            }
        }
        if self.paused && self.pending() <= self.low {
            self.paused = false;
            return std::mem::take(&mut self.waiters);
        }
        Vec::new()
    }

    /// Records the connection as lost; returns the wakers to wake.
    fn fail(&mut self, e: &io::Error) -> Vec<Waker> {
        if self.error.is_none() {
            self.error = Some(StoredError::from_io(e));
        }
        self.buf = Vec::new();
        self.pos = 0;
        self.paused = false;
        self.closed = true;
        std::mem::take(&mut self.waiters)
    }

    /// With the buffer empty, performs the shutdowns that `write_eof`/`close` asked for.
    /// Returns the wakers to wake.
    fn finish(&mut self, conn: &Connection) -> Vec<Waker> {
        if self.closing && !self.closed {
            // Both directions: a task blocked reading this connection sees end of stream,
            // as asyncio's reader does when its transport closes. A peer that already went
            // away (ENOTCONN) is no failure of ours to report.
            let _ = conn.stream.shutdown(Shutdown::Both);
            conn.closed.set(true);
            self.closed = true;
            return std::mem::take(&mut self.waiters);
        }
        if self.eof_requested && !self.closing {
            if let Err(e) = conn.stream.shutdown(Shutdown::Write) {
                if e.kind() != io::ErrorKind::NotConnected {
                    return self.fail(&e);
                }
            }
        }
        Vec::new()
    }

    fn add_waiter(&mut self, cx: &Context<'_>) {
        if !self.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.waiters.push(cx.waker().clone());
        }
    }
}

fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

impl StreamWriter {
    pub(super) fn new(conn: Rc<Connection>) -> StreamWriter {
        let peer = conn.stream.peer_addr().ok();
        let local = conn.stream.local_addr().ok();
        StreamWriter {
            conn,
            state: Rc::new(RefCell::new(State {
                buf: Vec::new(),
                pos: 0,
                high: DEFAULT_HIGH_WATER,
                low: DEFAULT_LOW_WATER,
                paused: false,
                flushing: false,
                error: None,
                eof_requested: false,
                closing: false,
                late_write: false,
                closed: false,
                waiters: Vec::new(),
                peer,
                local,
            })),
        }
    }

    /// Queues `data` for sending (asyncio's `write`). Never blocks and never fails here: what
    /// the kernel does not take at once is buffered and sent in the background, and an error
    /// is reported by the next [`drain`](Self::drain).
    ///
    /// Data written after [`close`](Self::close) is still sent before the close happens (as
    /// in asyncio); once the connection is closed or lost, writes are silently discarded.
    /// After [`write_eof`](Self::write_eof) the data is discarded and `drain` reports a
    /// `BrokenPipe` error (asyncio raises at the write).
    pub fn write(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut st = self.state.borrow_mut();
        if st.error.is_some() {
            return;
        }
        if st.eof_requested {
            // asyncio raises here; `write` reports through `drain` instead.
            st.late_write = true;
            return;
        }
        if st.closed {
            // Closed already: like asyncio's write on a lost connection, a silent no-op.
            return;
        }
        let mut rest = data;
        if st.pending() == 0 && !st.flushing {
            // Nothing queued and no flusher: try the kernel right away (see the module docs for
            // why a no-op waker is safe here).
            let mut cx = Context::from_waker(Waker::noop());
            loop {
                match self.conn.stream.poll_write(&mut cx, rest) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        rest = &rest[n..];
                        if rest.is_empty() && !self.conn.stream.has_pending_output() {
                            return;
                        }
                        if rest.is_empty() {
                            // TLS took it all but could not send it all: the flusher will.
                            break;
                        }
                    }
                    Poll::Ready(Ok(_)) => {
                        let wakers = st.fail(&io::ErrorKind::WriteZero.into());
                        drop(st);
                        wake_all(wakers);
                        return;
                    }
                    Poll::Ready(Err(e)) => {
                        let wakers = st.fail(&e);
                        drop(st);
                        wake_all(wakers);
                        return;
                    }
                    Poll::Pending => break,
                }
            }
        }
        st.append(rest);
        if !st.flushing {
            st.flushing = true;
            drop(st);
            self.start_flusher();
        }
    }

    /// Writes each buffer in turn (asyncio's `writelines`).
    pub fn writelines<I, B>(&self, buffers: I)
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        for b in buffers {
            self.write(b.as_ref());
        }
    }

    /// Waits until the buffer is small enough to write more (asyncio's `drain`): returns at
    /// once while the buffer has stayed under the high-water mark; once above it, waits until
    /// the background sending brings it down to the low-water mark. Returns the connection's
    /// error if it failed (e.g. the peer reset it). Calling it after every `write` keeps memory
    /// bounded by the high-water mark plus one write.
    ///
    /// Cancellation-safe: nothing is lost by dropping it; the data is sent regardless.
    pub async fn drain(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if let Some(e) = &st.error {
                return Poll::Ready(Err(e.to_io()));
            }
            if st.late_write {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "write() after write_eof()",
                )));
            }
            if !st.paused {
                return Poll::Ready(Ok(()));
            }
            st.add_waiter(cx);
            Poll::Pending
        })
        .await
    }

    /// Sends end-of-stream once the buffer is flushed (asyncio's `write_eof`): the peer reads
    /// EOF, and this side can still read its answer. Further writes are errors.
    pub fn write_eof(&self) {
        let mut st = self.state.borrow_mut();
        if st.eof_requested || st.closing || st.error.is_some() {
            return;
        }
        st.eof_requested = true;
        if !st.flushing {
            self.finish_or_flush(st);
        }
    }

    /// Whether [`write_eof`](Self::write_eof) is supported (always: TCP and Unix stream sockets
    /// both can shut down their sending side).
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes the connection once the buffer is flushed (asyncio's `close`): both directions
    /// are shut down, so a task reading this connection sees end of stream. The socket itself
    /// is released when the reader and every writer handle are dropped. Await
    /// [`wait_closed`](Self::wait_closed) to know when the close happened.
    pub fn close(&self) {
        let mut st = self.state.borrow_mut();
        if st.closing {
            return;
        }
        st.closing = true;
        if !st.flushing {
            self.finish_or_flush(st);
        }
    }

    /// With no flusher running: performs the requested shutdown now, or, over TLS (where
    /// `close_notify` must be sent first, and the socket may be full), leaves it to a new
    /// flusher.
    fn finish_or_flush(&self, mut st: std::cell::RefMut<'_, State>) {
        if self.conn.stream.is_tls() {
            st.flushing = true;
            drop(st);
            self.start_flusher();
            return;
        }
        let wakers = st.finish(&self.conn);
        drop(st);
        wake_all(wakers);
    }

    /// Closes the connection at once, discarding anything still buffered (asyncio's
    /// `transport.abort()`): for a peer that stopped reading, where [`close`](Self::close)
    /// would wait for the buffer forever. [`wait_closed`](Self::wait_closed) then returns
    /// `Ok`.
    pub fn abort(&self) {
        let wakers = {
            let mut st = self.state.borrow_mut();
            if st.closed {
                return;
            }
            st.buf = Vec::new();
            st.pos = 0;
            st.paused = false;
            st.closing = true;
            st.closed = true;
            // A flusher parked on writability is woken by the shutdown's readiness edge, finds
            // the buffer empty, and exits (releasing its handle on the socket).
            let _ = self.conn.stream.shutdown(Shutdown::Both);
            self.conn.closed.set(true);
            std::mem::take(&mut st.waiters)
        };
        wake_all(wakers);
    }

    /// Waits until the connection is closed (asyncio's `wait_closed`): after
    /// [`close`](Self::close), once the buffer is flushed and the socket shut down; or once
    /// the connection is lost. Returns the error that lost it, if any.
    pub async fn wait_closed(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if st.closed {
                return Poll::Ready(match &st.error {
                    Some(e) => Err(e.to_io()),
                    None => Ok(()),
                });
            }
            st.add_waiter(cx);
            Poll::Pending
        })
        .await
    }

    /// True once [`close`](Self::close) was called or the connection was lost (asyncio's
    /// `is_closing`).
    pub fn is_closing(&self) -> bool {
        let st = self.state.borrow();
        st.closing || st.error.is_some()
    }

    /// Connection details by asyncio's names: `"peername"` (the remote address) and
    /// `"sockname"` (the local one), as the connection had them when it was set up (the
    /// kernel may forget a TCP peer after a shutdown; this does not). Anything else is `None`.
    ///
    /// For TCP both are [`SocketAddress::Inet`], displayed as `ip:port`. For a Unix-domain
    /// connection they are [`SocketAddress::Unix`]: the server's path, and
    /// `SocketAddress::Unix(None)` (displayed as the empty string, asyncio's `''`) for the
    /// client's end, which binds no path. So a client sees `peername` = the path and
    /// `sockname` = unnamed, and the server's handler the other way round.
    ///
    /// ```
    /// use kettle::net::SocketAddress;
    /// kettle::run(async {
    ///     let server = kettle::start_server(|_r, _w| async {}, "127.0.0.1", 0).await.unwrap();
    ///     let port = server.sockets()[0].port().unwrap();
    ///     let (_r, w) = kettle::open_connection("127.0.0.1", port).await.unwrap();
    ///     let peer = w.get_extra_info("peername").unwrap();
    ///     assert_eq!(peer.to_string(), format!("127.0.0.1:{port}"));
    ///     assert_eq!(peer, SocketAddress::Inet(([127, 0, 0, 1], port).into()));
    ///     assert!(w.get_extra_info("sockname").unwrap().is_inet());
    ///     assert_eq!(w.get_extra_info("compression"), None);
    /// });
    /// ```
    pub fn get_extra_info(&self, name: &str) -> Option<SocketAddress> {
        let st = self.state.borrow();
        match name {
            "peername" => st.peer.clone(),
            "sockname" => st.local.clone(),
            _ => None,
        }
    }

    /// The underlying socket (asyncio's `writer.transport`): a [`Transport`], which is either
    /// [`Transport::Tcp`] or [`Transport::Unix`]. Use
    /// [`as_tcp`](Transport::as_tcp)/[`as_unix`](Transport::as_unix) or a `match` to reach the
    /// socket, e.g. for socket options. Reading or writing it directly bypasses the reader's and
    /// this writer's buffers and ordering.
    pub fn transport(&self) -> &Transport {
        &self.conn.stream
    }

    /// How many bytes are buffered, not yet taken by the kernel (asyncio's
    /// `transport.get_write_buffer_size()`).
    pub fn write_buffer_size(&self) -> usize {
        self.state.borrow().pending()
    }

    /// The (high, low) water marks.
    pub fn write_buffer_limits(&self) -> (usize, usize) {
        let st = self.state.borrow();
        (st.high, st.low)
    }

    /// Sets the water marks (asyncio's `transport.set_write_buffer_limits`); `low` is capped
    /// at `high`. A high mark of 0 makes `drain` wait until everything is sent.
    pub fn set_write_buffer_limits(&self, high: usize, low: usize) {
        let wakers = {
            let mut st = self.state.borrow_mut();
            st.high = high;
            st.low = low.min(high);
            if st.pending() > st.high {
                st.paused = true;
                Vec::new()
            } else if st.paused && st.pending() <= st.low {
                st.paused = false;
                std::mem::take(&mut st.waiters)
            } else {
                Vec::new()
            }
        };
        wake_all(wakers);
    }

    fn start_flusher(&self) {
        if crate::try_get_running_loop().is_none() {
            // Outside a loop nothing could ever send the buffer.
            let e = io::Error::other("the connection's event loop is not running");
            let wakers = self.state.borrow_mut().fail(&e);
            wake_all(wakers);
            return;
        }
        let conn = self.conn.clone();
        let state = self.state.clone();
        // Detached: the task ends by itself once the buffer is empty or the connection failed.
        drop(crate::spawn(flush(conn, state)));
    }
}

/// The flusher task: sends the buffer as the socket allows, then performs any pending shutdown
/// and exits.
async fn flush(conn: Rc<Connection>, state: Rc<RefCell<State>>) {
    poll_fn(|cx| {
        let mut st = state.borrow_mut();
        loop {
            if st.error.is_some() {
                break;
            }
            if st.pending() == 0 {
                // What TLS still buffers goes out too, ending with close_notify when the
                // sending side is to be shut down (`finish` then shuts the socket). Both are
                // immediate no-ops on plain sockets, whose shutdown is all `finish`'s.
                let sent = if (st.closing || st.eof_requested) && conn.stream.is_tls() {
                    conn.stream.poll_shutdown_write(cx)
                } else {
                    conn.stream.poll_flush(cx)
                };
                match sent {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => {
                        let wakers = st.fail(&e);
                        drop(st);
                        wake_all(wakers);
                        st = state.borrow_mut();
                        continue;
                    }
                    Poll::Ready(Ok(())) => {}
                }
                let wakers = st.finish(&conn);
                st.flushing = false;
                drop(st);
                wake_all(wakers);
                return Poll::Ready(());
            }
            let pos = st.pos;
            match conn.stream.poll_write(cx, &st.buf[pos..]) {
                Poll::Ready(Ok(0)) => {
                    let wakers = st.fail(&io::ErrorKind::WriteZero.into());
                    drop(st);
                    wake_all(wakers);
                    st = state.borrow_mut();
                }
                Poll::Ready(Ok(n)) => {
                    let wakers = st.sent(n);
                    if !wakers.is_empty() {
                        drop(st);
                        wake_all(wakers);
                        st = state.borrow_mut();
                    }
                }
                Poll::Ready(Err(e)) => {
                    let wakers = st.fail(&e);
                    drop(st);
                    wake_all(wakers);
                    st = state.borrow_mut();
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        st.flushing = false;
        Poll::Ready(())
    })
    .await
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("StreamWriter")
            .field("peer", &st.peer)
            .field("buffered", &st.pending())
            .field("paused", &st.paused)
            .field("closing", &st.closing)
            .field("error", &st.error.as_ref().map(|e| &e.message))
            .finish()
    }
}
