//! One open WebSocket, either end: reading frames into messages, writing frames, ping/pong,
//! the heartbeat, and the close handshake. `web::WebSocketResponse` and
//! `client::ClientWebSocketResponse` are thin handles over a shared [`WsCore`].
//!
//! - **Reading** happens in whichever task calls `receive` (one at a time). Frames are parsed
//!   straight out of the read buffer, which never holds more than one frame beyond
//!   `max_msg_size`: a frame declaring more is refused from its head alone.
//! - **Writing** is serialised by an async lock, so frames from several tasks (a broadcast)
//!   never interleave and only one task at a time waits on the socket's write readiness. Each
//!   send waits until the kernel took the frame, so a peer that stops reading stalls its
//!   senders (bounded by `send_timeout`) instead of growing a queue.
//! - **Closing** is RFC 6455 §7: a close frame each way, then the TCP connection ends; every
//!   wait on the peer is bounded by `close_timeout`, and protocol violations close at once
//!   with their code.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::Shutdown;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::deflate::Deflate;
use super::frame::{self, opcode, Role, Violation};
use super::mask::MaskKeys;
use super::message::{close_code, CloseFrame, Message};
use crate::error::{Error, ErrorKind, Result};
use crate::net::streams::Transport;
use crate::sync::{Event, Lock};
use crate::web::ConnIo;

/// Free space offered to each socket read.
const READ_SPARE: usize = 16 * 1024;
/// Payloads up to this size are copied out of the read buffer; larger ones are split off it
/// without a copy. (Splitting makes the buffer shared, which costs more than copying a chat
/// message.)
const COPY_MAX: usize = 4096;
/// Frames `receive` handles without ever waiting for the socket before it lets the loop
/// run other tasks: a peer flooding messages or pings must not hold the loop.
const FRAME_BUDGET: u32 = 64;
/// The most read-buffer space reserved ahead of a frame's bytes.
const MAX_RESERVE: usize = 4 * 1024 * 1024;
/// A close reason is what fits in a control frame after the two-byte code.
const MAX_REASON: usize = frame::MAX_CONTROL_PAYLOAD - 2;

/// The socket under a WebSocket.
pub(crate) enum Io {
    /// The server side keeps the HTTP connection (its socket, and its server's shutdown
    /// signal).
    Server(Rc<ConnIo>),
    /// The client side owns its socket.
    Client(Transport),
}

impl Io {
    fn transport(&self) -> &Transport {
        match self {
            Io::Server(conn) => conn.transport(),
            Io::Client(t) => t,
        }
    }

    /// The server's shutdown signal, on the server side.
    fn server_closing(&self) -> Option<&Event> {
        match self {
            Io::Server(conn) => Some(conn.closing_signal()),
            Io::Client(_) => None,
        }
    }
}

/// The settings both ends share (aiohttp's `WebSocketResponse`/`ws_connect` arguments).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) autoping: bool,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) max_msg_size: usize,
    pub(crate) receive_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) compress: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            autoping: true,
            heartbeat: None,
            // aiohttp's default.
            max_msg_size: 4 * 1024 * 1024,
            receive_timeout: None,
            // aiohttp's `timeout` for the close handshake.
            close_timeout: Duration::from_secs(10),
            // aiohttp has none and waits on a peer that does not read forever; a bound here
            // turns that into an error the handler sees.
            send_timeout: Some(Duration::from_secs(30)),
            compress: true,
        }
    }
}

/// A message being reassembled from fragments.
#[derive(Default)]
struct Partial {
    /// TEXT or BINARY while a fragmented message is open; CONTINUATION (0) otherwise.
    opcode: u8,
    compressed: bool,
    data: BytesMut,
}

/// What the next frame in the buffer meant.
enum Incoming {
    Message(Message),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseFrame>),
}

/// Why a wait for bytes ended.
enum Woke {
    Data,
    Eof,
    Failed(io::Error),
    ServerClosing,
    Timer,
}

/// The shared state of one WebSocket.
pub(crate) struct WsCore {
    io: Io,
    role: Role,
    opts: Options,
    protocol: Option<String>,
    rbuf: RefCell<BytesMut>,
    out: RefCell<BytesMut>,
    write_lock: Lock,
    partial: RefCell<Partial>,
    deflate: Option<RefCell<Deflate>>,
    masks: RefCell<MaskKeys>,
    /// A task is inside `receive` (or `close`'s wait for the peer's close).
    reading: Cell<bool>,
    close_sent: Cell<bool>,
    /// When the peer's close is due, once ours is sent.
    close_deadline: Cell<Option<Instant>>,
    closed: Cell<bool>,
    close_code: Cell<Option<u16>>,
    /// Set once closed, for a `close` waiting on another task's `receive`.
    done: Rc<Event>,
    /// When the last bytes arrived (for the heartbeat).
    last_rx: Cell<Instant>,
    /// A heartbeat ping is out; its pong is due by then.
    pong_due: Cell<Option<Instant>>,
    /// Frames handled since the reader last had to wait (see `FRAME_BUDGET`).
    streak: Cell<u32>,
}

impl WsCore {
    pub(crate) fn new(
        io: Io,
        role: Role,
        opts: Options,
        protocol: Option<String>,
        rbuf: BytesMut,
        deflate: Option<Deflate>,
    ) -> WsCore {
        WsCore {
            io,
            role,
            opts,
            protocol,
            rbuf: RefCell::new(rbuf),
            out: RefCell::new(BytesMut::new()),
            write_lock: Lock::new(),
            partial: RefCell::new(Partial::default()),
            deflate: deflate.map(RefCell::new),
            masks: RefCell::new(MaskKeys::new()),
            reading: Cell::new(false),
            close_sent: Cell::new(false),
            close_deadline: Cell::new(None),
            closed: Cell::new(false),
            close_code: Cell::new(None),
            done: Rc::new(Event::new()),
            last_rx: Cell::new(Instant::now()),
            pong_due: Cell::new(None),
            streak: Cell::new(0),
        }
    }

    /// Set once the WebSocket is closed or dropped, for a watcher that must not keep it
    /// alive.
    pub(crate) fn done_signal(&self) -> Rc<Event> {
        self.done.clone()
    }

    /// The server's handler returned while the WebSocket was open: queues a close frame
    /// (1000) on the connection, which the server writes before it ends the connection, as
    /// aiohttp does. Nothing if a close already went out, or another task is in the middle
    /// of writing (a frame cannot be cut into).
    pub(crate) fn close_on_return(&self) {
        let Io::Server(conn) = &self.io else {
            return;
        };
        if self.closed.get()
            || self.close_sent.get()
            || self.write_lock.locked()
            || !self.out.borrow().is_empty()
        {
            return;
        }
        self.close_sent.set(true);
        self.close_code.set(Some(close_code::NORMAL));
        self.finish();
        let mut frame = BytesMut::new();
        let payload = close_payload(close_code::NORMAL, "");
        self.push_frame(&mut frame, false, opcode::CLOSE, &payload);
        conn.queue(&frame);
    }

    pub(crate) fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub(crate) fn closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn close_code(&self) -> Option<u16> {
        self.close_code.get()
    }

    pub(crate) fn compressed(&self) -> bool {
        self.deflate.is_some()
    }

    // --- sending -------------------------------------------------------------------------

    /// Sends one data message.
    pub(crate) async fn send(&self, op: u8, payload: &[u8]) -> Result<()> {
        self.check_open().await?;
        self.write_frame(op, payload).await
    }

    /// Sends a ping or pong (at most 125 bytes).
    pub(crate) async fn send_control(&self, op: u8, payload: &[u8]) -> Result<()> {
        if payload.len() > frame::MAX_CONTROL_PAYLOAD {
            return Err(Error::websocket(
                "a ping or pong payload is at most 125 bytes",
                None,
            ));
        }
        self.check_open().await?;
        self.write_frame(op, payload).await
    }

    /// Sending is over once a close is on its way. A server shutting down starts the close
    /// here too, so a handler that only sends (and never receives) still says 1001 and ends.
    async fn check_open(&self) -> Result<()> {
        if self.closed.get() || self.close_sent.get() {
            return Err(Error::websocket(
                "the WebSocket is closing or closed",
                self.close_code.get(),
            ));
        }
        if self.io.server_closing().is_some_and(Event::is_set) {
            let _ = self
                .send_close(close_code::GOING_AWAY, "server shutting down")
                .await;
            return Err(Error::websocket(
                "the server is shutting down",
                Some(close_code::GOING_AWAY),
            ));
        }
        Ok(())
    }

    /// Encodes one frame (compressing, masking) into the output buffer and writes it out.
    async fn write_frame(&self, op: u8, payload: &[u8]) -> Result<()> {
        let _turn = self.write_lock.acquire().await;
        // A close may have gone out while this task waited for its turn.
        if self.close_sent.get() || self.closed.get() {
            return Err(Error::websocket(
                "the WebSocket is closing or closed",
                self.close_code.get(),
            ));
        }
        self.encode(op, payload);
        self.flush_out(self.opts.send_timeout).await
    }

    fn encode(&self, op: u8, payload: &[u8]) {
        let compressed;
        let (payload, rsv1) = match &self.deflate {
            Some(d) if self.opts.compress && (op == opcode::TEXT || op == opcode::BINARY) => {
                compressed = d.borrow_mut().compress(payload);
                (&compressed[..], true)
            }
            _ => (payload, false),
        };
        self.push_frame(&mut self.out.borrow_mut(), rsv1, op, payload);
    }

    /// Appends one whole frame to `out`, masked on the client side.
    fn push_frame(&self, out: &mut BytesMut, rsv1: bool, op: u8, payload: &[u8]) {
        let key = match self.role {
            Role::Server => None,
            Role::Client => Some(self.masks.borrow_mut().next_key()),
        };
        frame::write_head(out, true, rsv1, op, payload.len(), key);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = key {
            frame::apply_mask(&mut out[start..], key);
        }
    }

    /// Writes the output buffer out, within `limit`. A failure or timeout leaves the stream
    /// mid-frame, so the connection is dropped.
    ///
    /// The timer is armed only once the socket pushes back: a send the kernel takes at once
    /// (nearly all of them) costs no timer.
    async fn flush_out(&self, limit: Option<Duration>) -> Result<()> {
        let mut timer: Option<std::pin::Pin<Box<crate::Sleep>>> = None;
        let result = poll_fn(|cx| loop {
            let mut out = self.out.borrow_mut();
            let polled = if out.is_empty() {
                match self.io.transport().poll_flush(cx) {
                    Poll::Ready(r) => {
                        return Poll::Ready(r.map_err(|e| self.io_error("sending", e)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            } else {
                self.io.transport().poll_write(cx, &out)
            };
            match polled {
                Poll::Ready(Ok(0)) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(self.io_error("sending", e)));
                }
                Poll::Ready(Ok(n)) => out.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.io_error("sending", e))),
                Poll::Pending => {
                    let Some(d) = limit else {
                        return Poll::Pending;
                    };
                    let t = timer.get_or_insert_with(|| Box::pin(crate::sleep(d)));
                    if t.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(Error::with_message(
                            ErrorKind::Timeout,
                            format!(
                                "the peer took nothing sent for {:.1}s; WebSocket dropped",
                                d.as_secs_f64()
                            ),
                        )));
                    }
                    return Poll::Pending;
                }
            }
        })
        .await;
        if result.is_err() {
            self.abort(close_code::ABNORMAL);
        }
        result
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::with_source(ErrorKind::Io, format!("WebSocket {what}: {e}"), e)
    }

    /// Encodes our close frame into the output buffer (once); the caller holds the write
    /// lock and flushes it.
    fn queue_close(&self, code: u16, reason: &str) {
        if self.close_sent.replace(true) {
            return;
        }
        self.close_deadline
            .set(Some(Instant::now() + self.opts.close_timeout));
        if self.close_code.get().is_none() {
            self.close_code.set(Some(code));
        }
        // Not through `encode`: control frames are never compressed.
        let payload = close_payload(code, reason);
        self.push_frame(&mut self.out.borrow_mut(), false, opcode::CLOSE, &payload);
    }

    /// Sends our close frame (once) and waits until it is written.
    async fn send_close(&self, code: u16, reason: &str) -> Result<()> {
        let _turn = self.write_lock.acquire().await;
        if self.closed.get() {
            return Ok(());
        }
        self.queue_close(code, reason);
        self.flush_out(Some(self.opts.close_timeout)).await
    }

    /// Ends the connection without (further) handshake: the peer sees the socket close.
    fn abort(&self, code: u16) {
        if self.close_code.get().is_none() {
            self.close_code.set(Some(code));
        }
        self.finish();
        let _ = self.io.transport().shutdown(Shutdown::Both);
    }

    /// The close handshake is over (or abandoned).
    fn finish(&self) {
        self.closed.set(true);
        self.close_deadline.set(None);
        self.pong_due.set(None);
        self.done.set();
    }

    // --- closing ---------------------------------------------------------------------------

    /// Starts the close handshake and waits for the peer's close (up to `close_timeout`).
    pub(crate) async fn close(&self, code: u16, reason: &str) -> Result<()> {
        if self.closed.get() {
            return Ok(());
        }
        if !close_code::is_valid_on_wire(code) {
            return Err(Error::websocket(
                format!("{code} is not a close code that may be sent"),
                None,
            ));
        }
        if !self.close_sent.get() {
            self.send_close(code, reason).await?;
        }
        if self.reading.get() {
            // Another task is receiving: it will meet the peer's close (or the deadline).
            let _ = crate::wait_for(self.done.wait(), self.opts.close_timeout).await;
            if !self.closed.get() {
                self.abort(close_code::ABNORMAL);
            }
            return Ok(());
        }
        let _reading = ReadingGuard::enter(self)?;
        loop {
            match self.read_message().await {
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => continue,
                Err(e) if self.closed.get() && e.kind() != ErrorKind::Timeout => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    // --- receiving -------------------------------------------------------------------------

    /// The next message (aiohttp's `receive`), under `receive_timeout`.
    pub(crate) async fn receive(&self) -> Result<Message> {
        let _reading = ReadingGuard::enter(self)?;
        match self.opts.receive_timeout {
            None => self.read_message().await,
            Some(d) => match crate::wait_for(self.read_message(), d).await {
                Ok(r) => r,
                Err(_) => Err(Error::with_message(
                    ErrorKind::Timeout,
                    format!("no WebSocket message within {:.1}s", d.as_secs_f64()),
                )),
            },
        }
    }

    fn closed_error(&self) -> Error {
        Error::websocket("the WebSocket is closed", self.close_code.get())
    }

    async fn read_message(&self) -> Result<Message> {
        loop {
            // Counted across calls: an echo loop whose every receive and send completes at
            // once would otherwise never give the loop back either.
            let streak = self.streak.get() + 1;
            self.streak.set(streak);
            if streak > FRAME_BUDGET {
                self.streak.set(0);
                crate::yield_now().await;
            }
            if self.closed.get() {
                return Err(self.closed_error());
            }
            let event = match self.next_event() {
                Ok(e) => e,
                Err(v) => return Err(self.fail(v).await),
            };
            match event {
                Some(Incoming::Message(m)) => {
                    if self.close_sent.get() {
                        // We are closing: data after our close is dropped (aiohttp's close
                        // reads until the peer's close the same way).
                        continue;
                    }
                    return Ok(m);
                }
                Some(Incoming::Ping(p)) => {
                    if self.opts.autoping {
                        if !self.close_sent.get() {
                            self.write_frame(opcode::PONG, &p).await?;
                        }
                        continue;
                    }
                    return Ok(Message::Ping(p));
                }
                Some(Incoming::Pong(p)) => {
                    self.pong_due.set(None);
                    if self.opts.autoping {
                        continue;
                    }
                    return Ok(Message::Pong(p));
                }
                Some(Incoming::Close(frame)) => {
                    self.on_peer_close(frame.as_ref()).await;
                    return Ok(Message::Close(frame));
                }
                None => {}
            }
            match self.wait_for_bytes().await {
                Woke::Data => {}
                Woke::Eof => {
                    self.abort(close_code::ABNORMAL);
                    return Err(Error::websocket(
                        "the connection closed without a close frame",
                        Some(close_code::ABNORMAL),
                    ));
                }
                Woke::Failed(e) => {
                    self.abort(close_code::ABNORMAL);
                    return Err(self.io_error("receiving", e));
                }
                Woke::ServerClosing => {
                    // Graceful shutdown: say so, then wait (bounded) for the peer's close.
                    self.send_close(close_code::GOING_AWAY, "server shutting down")
                        .await?;
                }
                Woke::Timer => self.on_timer().await?,
            }
        }
    }

    /// The peer's close frame arrived: answer it (echoing its code) unless we began, then end
    /// the connection. The server closes TCP first (§7.1.1); the client waits for that.
    async fn on_peer_close(&self, frame: Option<&CloseFrame>) {
        let code = frame.map_or(close_code::NO_STATUS, |f| f.code);
        if !self.close_sent.get() {
            let reply = frame.map_or(close_code::NORMAL, |f| f.code);
            let _ = self.send_close(reply, "").await;
        }
        // The peer's code is the one the handshake ended with.
        self.close_code.set(Some(code));
        match self.role {
            Role::Server => {
                self.finish();
                let _ = self.io.transport().shutdown(Shutdown::Write);
            }
            Role::Client => {
                // Give the server a moment to close first, then close regardless.
                let deadline = Instant::now() + self.opts.close_timeout.min(Duration::from_secs(1));
                let _ = crate::wait_for(
                    async {
                        loop {
                            self.rbuf.borrow_mut().clear();
                            let n = poll_fn(|cx| {
                                self.io.transport().poll_read_buf(
                                    cx,
                                    &mut self.rbuf.borrow_mut(),
                                    READ_SPARE,
                                )
                            })
                            .await;
                            if !matches!(n, Ok(n) if n > 0) {
                                return;
                            }
                        }
                    },
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await;
                self.finish();
                let _ = self.io.transport().shutdown(Shutdown::Both);
            }
        }
    }

    /// A rule was broken: close with its code at once (no wait for the peer's answer), and
    /// give the caller the error.
    async fn fail(&self, v: Violation) -> Error {
        tracing::debug!(code = v.code, reason = v.reason, "closing a WebSocket");
        let already = self.close_sent.get();
        if !already {
            let _ = self.send_close(v.code, v.reason).await;
        }
        self.close_code.set(Some(v.code));
        self.abort(v.code);
        Error::websocket(v.reason, Some(v.code))
    }

    /// A deadline passed while waiting: the close handshake's, the heartbeat's pong, or the
    /// next heartbeat ping.
    async fn on_timer(&self) -> Result<()> {
        let now = Instant::now();
        if self.close_deadline.get().is_some_and(|d| now >= d) {
            self.abort(close_code::ABNORMAL);
            return Err(Error::with_message(
                ErrorKind::Timeout,
                "the peer did not answer the close within close_timeout",
            ));
        }
        let Some(beat) = self.opts.heartbeat else {
            return Ok(());
        };
        if let Some(due) = self.pong_due.get() {
            if now >= due {
                self.abort(close_code::ABNORMAL);
                return Err(Error::with_message(
                    ErrorKind::Timeout,
                    format!(
                        "no pong within {:.1}s of a heartbeat ping; WebSocket dropped",
                        (beat / 2).as_secs_f64()
                    ),
                ));
            }
            return Ok(());
        }
        if now >= self.last_rx.get() + beat && !self.close_sent.get() {
            self.pong_due.set(Some(now + beat / 2));
            self.write_frame(opcode::PING, b"").await?;
        }
        Ok(())
    }

    /// The next deadline the reader must wake for, if any.
    fn next_deadline(&self) -> Option<Instant> {
        let beat = self.opts.heartbeat.map(|b| match self.pong_due.get() {
            Some(due) => due,
            None => self.last_rx.get() + b,
        });
        match (self.close_deadline.get(), beat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Waits for more bytes, the server's shutdown, or the next deadline.
    async fn wait_for_bytes(&self) -> Woke {
        let deadline = self.next_deadline();
        let mut timer = deadline.map(|d| Box::pin(crate::sleep_until(d)));
        let closing = self.io.server_closing().filter(|_| !self.close_sent.get());
        let mut closing_wait = pin!(closing.map(|e| e.wait()));
        let mut waited = false;
        let woke = poll_fn(|cx| {
            let read =
                self.io
                    .transport()
                    .poll_read_buf(cx, &mut self.rbuf.borrow_mut(), READ_SPARE);
            match read {
                Poll::Ready(Ok(0)) => return Poll::Ready(Woke::Eof),
                Poll::Ready(Ok(_)) => return Poll::Ready(Woke::Data),
                Poll::Ready(Err(e)) => return Poll::Ready(Woke::Failed(e)),
                Poll::Pending => {}
            }
            if let Some(w) = closing_wait.as_mut().as_pin_mut() {
                if w.poll(cx).is_ready() {
                    return Poll::Ready(Woke::ServerClosing);
                }
            }
            if let Some(t) = &mut timer {
                if t.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::Timer);
                }
            }
            waited = true;
            Poll::Pending
        })
        .await;
        if waited {
            self.streak.set(0);
        }
        if matches!(woke, Woke::Data) && self.opts.heartbeat.is_some() {
            self.last_rx.set(crate::time::clock::recent());
        }
        woke
    }

    /// Takes the next complete frame out of the read buffer and says what it means; `None`
    /// until one has arrived. Data frames are joined into messages here.
    fn next_event(&self) -> std::result::Result<Option<Incoming>, Violation> {
        let mut rbuf = self.rbuf.borrow_mut();
        let max = self.opts.max_msg_size as u64;
        loop {
            let Some(head) = frame::parse_head(&rbuf, self.role, max, self.deflate.is_some())?
            else {
                return Ok(None);
            };
            // Below 2^63 (parse_head refuses the top bit), so no overflow on 64-bit Linux.
            let total = head.head_len.saturating_add(head.len as usize);
            if rbuf.len() < total {
                // Room for the rest of the frame, so it arrives in as few reads as possible;
                // in steps, so that a frame declaring exabytes under `max_msg_size(0)` (no
                // limit) grows the buffer only as its bytes really arrive.
                let missing = (total - rbuf.len()).min(MAX_RESERVE);
                rbuf.reserve(missing);
                return Ok(None);
            }
            if let Some(key) = head.mask {
                frame::apply_mask(&mut rbuf[head.head_len..total], key);
            }
            let payload = if head.len as usize <= COPY_MAX {
                let p = BytesMut::from(&rbuf[head.head_len..total]);
                rbuf.advance(total);
                p
            } else {
                let mut p = rbuf.split_to(total);
                p.advance(head.head_len);
                p
            };
            match head.opcode {
                opcode::PING => return Ok(Some(Incoming::Ping(payload.freeze()))),
                opcode::PONG => return Ok(Some(Incoming::Pong(payload.freeze()))),
                opcode::CLOSE => return parse_close(&payload).map(|f| Some(Incoming::Close(f))),
                opcode::TEXT | opcode::BINARY => {
                    let mut partial = self.partial.borrow_mut();
                    if partial.opcode != opcode::CONTINUATION {
                        return Err(Violation::protocol(
                            "a new message began inside a fragmented one",
                        ));
                    }
                    if head.fin {
                        drop(partial);
                        return self
                            .finish_message(head.opcode, head.rsv1, payload)
                            .map(|m| Some(Incoming::Message(m)));
                    }
                    *partial = Partial {
                        opcode: head.opcode,
                        compressed: head.rsv1,
                        data: payload,
                    };
                }
                _ => {
                    // CONTINUATION (parse_head refused every other opcode).
                    let mut partial = self.partial.borrow_mut();
                    if partial.opcode == opcode::CONTINUATION {
                        return Err(Violation::protocol(
                            "a continuation frame with no message started",
                        ));
                    }
                    if max != 0 && (partial.data.len() + payload.len()) as u64 > max {
                        return Err(Violation {
                            code: close_code::MESSAGE_TOO_BIG,
                            reason: "message too big",
                        });
                    }
                    partial.data.extend_from_slice(&payload);
                    if head.fin {
                        let done = std::mem::take(&mut *partial);
                        drop(partial);
                        return self
                            .finish_message(done.opcode, done.compressed, done.data)
                            .map(|m| Some(Incoming::Message(m)));
                    }
                }
            }
        }
    }

    /// A whole message: decompressed if it was, and text checked to be UTF-8.
    fn finish_message(
        &self,
        op: u8,
        compressed: bool,
        data: BytesMut,
    ) -> std::result::Result<Message, Violation> {
        let data = match (&self.deflate, compressed) {
            (Some(d), true) => d.borrow_mut().decompress(&data, self.opts.max_msg_size)?,
            _ => data,
        };
        if op == opcode::TEXT {
            match String::from_utf8(data.into()) {
                Ok(text) => Ok(Message::Text(text)),
                Err(_) => Err(Violation {
                    code: close_code::INVALID_PAYLOAD,
                    reason: "invalid UTF-8 in a text message",
                }),
            }
        } else {
            Ok(Message::Binary(data.freeze()))
        }
    }
}

impl Drop for WsCore {
    fn drop(&mut self) {
        // Releases a shutdown watcher (see `web::WebSocketResponse::prepare`).
        self.done.set();
    }
}

/// Marks the WebSocket as being read by one task; a second concurrent reader is an error
/// (aiohttp's "Concurrent call to receive() is not allowed").
struct ReadingGuard<'a>(&'a WsCore);

impl<'a> ReadingGuard<'a> {
    fn enter(core: &'a WsCore) -> Result<ReadingGuard<'a>> {
        if core.reading.replace(true) {
            return Err(Error::invalid_state(
                "another task is already receiving on this WebSocket",
            ));
        }
        Ok(ReadingGuard(core))
    }
}

impl Drop for ReadingGuard<'_> {
    fn drop(&mut self) {
        self.0.reading.set(false);
    }
}

/// A close frame's payload: the code, then the reason cut to fit (at a character boundary).
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// Reads a close frame's payload (§5.5.1): empty, or a valid code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> std::result::Result<Option<CloseFrame>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::protocol("a close frame with a 1-byte payload")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !close_code::is_valid_on_wire(code) {
                return Err(Violation::protocol("an invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Violation {
                code: close_code::INVALID_PAYLOAD,
                reason: "invalid UTF-8 in a close reason",
            })?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_string(),
            }))
        }
    }
}

/// A future that is `Send`-free and boxed, for the `Stream` impls of the handles.
pub(crate) type NextMessage = std::pin::Pin<Box<dyn Future<Output = Option<Result<Message>>>>>;

/// The next item of a WebSocket as a `Stream`: messages until the close, an error once.
pub(crate) fn next_item(core: Rc<WsCore>) -> NextMessage {
    Box::pin(async move {
        if core.closed() {
            return None;
        }
        match core.receive().await {
            Ok(Message::Close(_)) => None,
            Ok(m) => Some(Ok(m)),
            Err(e) => Some(Err(e)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payloads() {
        assert_eq!(close_payload(1000, "bye"), [0x03, 0xE8, b'b', b'y', b'e']);
        let long = "é".repeat(100);
        let p = close_payload(1001, &long);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        assert_eq!(parse_close(&[]), Ok(None));
        assert_eq!(parse_close(&[0x03]).unwrap_err().code, 1002);
        for bad in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(
                parse_close(&bad.to_be_bytes()).unwrap_err().code,
                1002,
                "{bad}"
            );
        }
        for good in [1000u16, 1001, 1011, 3000, 4999] {
            assert_eq!(
                parse_close(&good.to_be_bytes()).unwrap().unwrap().code,
                good
            );
        }
        let bad_utf8 = [0x03, 0xE8, 0xff, 0xfe];
        assert_eq!(parse_close(&bad_utf8).unwrap_err().code, 1007);
    }
}
