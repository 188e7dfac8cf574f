//! One HTTP/1.x connection, start to end (aiohttp's `web_protocol`): read a head, run the
//! application, write the response, repeat while keep-alive allows.
//!
//! - **Pipelining.** Responses are queued in the connection's output buffer and written with
//!   one `writev` when the next read would wait, so a batch of pipelined requests costs one
//!   write syscall. If a handler has to wait while earlier responses are queued, those are
//!   flushed first so they are not held up by it.
//! - **Timeouts.** A head must arrive completely within `header_timeout` of its first byte
//!   (slowloris), an idle keep-alive connection is closed after `keepalive_timeout`, and a
//!   body read that gets no data for `body_timeout` fails. Each is a timer on this task only;
//!   stalled connections never delay others.
//! - **Errors.** A bad head gets its status (400/413/414/431/505/...) and the connection is
//!   closed, since what follows cannot be framed. A handler's panic becomes a 500 for that
//!   request only.
//! - **Shutdown.** When the server starts closing, connections waiting for a request (idle, or
//!   part-way through a head) close at once; a request in flight finishes and its response
//!   says `Connection: close`.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version};

use super::app::App;
use super::body::{BodyReader, ReadError};
use super::error::internal_error;
use super::handler::LocalBoxFuture;
use super::out_queue::OutQueue;
use super::request::{Request, RequestSlot};
use super::response::{Body, Response};
use crate::http::decode::{Decoder, Step};
use crate::http::encode::{self, Connection, Length};
use crate::http::head::{self, Framing};
use crate::http::HeadLimits;
use crate::net::streams::Transport;
use crate::sync::Event;

/// The read buffer's initial size.
const READ_BUF: usize = 16 * 1024;
/// The least free space a read is offered; the buffer grows (or compacts) to keep it.
/// Smaller than `READ_BUF`, so a buffer whose requests have all been consumed is reused
/// in place instead of reallocated for every read.
const READ_SPARE: usize = 4096;
/// After the handler, an unread body this small is read and dropped so the connection can
/// be kept; a larger one closes the connection instead.
const DRAIN_LIMIT: u64 = 256 * 1024;
/// How long a connection waiting for a request when shutdown begins may take to show it
/// (see `wait_for_bytes`).
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(200);

/// The longest a closing connection keeps reading (and dropping) what the client still
/// sends, so that closing does not reset the connection under its last response.
const LINGER: Duration = Duration::from_secs(1);

/// Per-server settings the connections share.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub(crate) limits: HeadLimits,
    pub(crate) header_timeout: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) body_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            limits: HeadLimits::default(),
            header_timeout: Duration::from_secs(30),
            // aiohttp's default.
            keepalive_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// What every connection of one server shares: settings and the shutdown signal.
pub(crate) struct ServerShared {
    pub(crate) config: ServerConfig,
    pub(crate) closing: Event,
    pub(crate) active: Cell<usize>,
    pub(crate) in_flight: Cell<usize>,
    /// Set whenever `active` drops to zero, for the graceful shutdown to wait on.
    pub(crate) idle: Event,
    /// Set when shutdown begins: the acceptors take what is queued in the kernel and stop.
    pub(crate) stop_accepting: Event,
}

/// The state of the body of the request being served.
struct BodyState {
    seq: u64,
    decoder: Decoder,
    declared: Option<u64>,
    continue_pending: bool,
    trailers: Option<HeaderMap>,
}

/// A connection's socket and buffers, shared by the connection task, the request's body
/// reader and a streaming response.
pub(crate) struct ConnIo {
    /// TCP, or TLS over TCP for an HTTPS server: one `match` per socket call.
    stream: Transport,
    rbuf: RefCell<BytesMut>,
    scratch: RefCell<head::Scratch>,
    /// The last request's allocation (empty), for the next request.
    spare_request: Cell<Option<RequestSlot>>,
    out: RefCell<OutQueue>,
    body: RefCell<Option<BodyState>>,
    shared: Rc<ServerShared>,
    /// Whether the current response may keep the connection open.
    keep_alive: Cell<bool>,
    version: Cell<Version>,
    is_head: Cell<bool>,
    /// A streaming response for an HTTP/1.0 client is delimited by closing.
    must_close: Cell<bool>,
    /// A `StreamResponse` already sent this request's head.
    head_sent: Cell<bool>,
}

impl ConnIo {
    fn new(stream: Transport, shared: Rc<ServerShared>) -> ConnIo {
        ConnIo {
            stream,
            rbuf: RefCell::new(BytesMut::with_capacity(READ_BUF)),
            scratch: RefCell::new(head::Scratch::default()),
            spare_request: Cell::new(None),
            out: RefCell::new(OutQueue::default()),
            body: RefCell::new(None),
            shared,
            keep_alive: Cell::new(true),
            version: Cell::new(Version::HTTP_11),
            is_head: Cell::new(false),
            must_close: Cell::new(false),
            head_sent: Cell::new(false),
        }
    }

    /// Reads more into the read buffer; `Ok(0)` at EOF.
    fn read_more(&self) -> impl Future<Output = io::Result<usize>> + '_ {
        poll_fn(|cx| self.poll_read_more(cx))
    }

    fn poll_read_more(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.stream
            .poll_read_buf(cx, &mut self.rbuf.borrow_mut(), READ_SPARE)
    }

    /// Writes everything queued, with as few `writev` calls as the kernel allows.
    ///
    /// Each poll builds the iovecs, writes and drops what was written in one step, so two
    /// flushes in flight at once (the connection's and a streaming response's) never send
    /// the same bytes twice. What is queued when this is called is what it writes (plain
    /// functions returning futures, not `async fn`s: these run for every request, and each
    /// `async` layer costs a state machine of its own).
    pub(crate) fn flush(&self) -> impl Future<Output = io::Result<()>> + '_ {
        self.out.borrow_mut().seal();
        poll_fn(|cx| self.poll_flush(cx))
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut out = self.out.borrow_mut();
            if out.is_empty() {
                // Plain TCP: done. TLS: the session may still hold encrypted records.
                return self.stream.poll_flush(cx);
            }
            let polled = match out.contiguous() {
                Some(bytes) => self.stream.poll_write(cx, bytes),
                None => {
                    let mut iovecs = OutQueue::iovec_array();
                    let n = out.slices(&mut iovecs);
                    self.stream.poll_write_vectored(cx, &iovecs[..n])
                }
            };
            let written = match polled {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(w)) => w,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            out.advance(written);
        }
    }

    /// Appends bytes to the output queue (copied; for heads and small pieces).
    pub(crate) fn queue(&self, bytes: &[u8]) {
        self.out.borrow_mut().buf().extend_from_slice(bytes);
    }

    /// Appends a body piece; large ones are queued without a copy.
    pub(crate) fn queue_bytes(&self, bytes: Bytes) {
        self.out.borrow_mut().push_bytes(bytes);
    }

    /// Runs `f` on the output buffer (to encode a head into it).
    pub(crate) fn with_out<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        f(self.out.borrow_mut().buf())
    }

    /// A finished request's head buffers and header map, kept for the next head.
    pub(crate) fn recycle_head(
        &self,
        buffers: (Vec<head::FieldPos>, Vec<u8>),
        headers: Option<HeaderMap>,
    ) {
        if let Ok(mut s) = self.scratch.try_borrow_mut() {
            s.recycle(buffers, headers);
        }
    }

    /// A finished request's allocation, for the next one.
    pub(crate) fn recycle_request(&self, slot: RequestSlot) {
        self.spare_request.set(Some(slot));
    }

    /// The allocation of the last finished request, if any.
    pub(crate) fn spare_request(&self) -> Option<RequestSlot> {
        self.spare_request.take()
    }

    /// A recycled header map for a request that builds one.
    pub(crate) fn spare_headers(&self) -> Option<HeaderMap> {
        self.scratch
            .try_borrow_mut()
            .ok()
            .and_then(|mut s| s.spare_headers())
    }

    pub(crate) fn version(&self) -> Version {
        self.version.get()
    }

    /// The socket, for a protocol that takes the connection over (a WebSocket).
    pub(crate) fn transport(&self) -> &Transport {
        &self.stream
    }

    /// The server's shutdown signal.
    pub(crate) fn closing_signal(&self) -> &Event {
        &self.shared.closing
    }

    /// What the server's connections share (its shutdown signal), for a task that must not
    /// keep this connection alive.
    pub(crate) fn server_shared(&self) -> Rc<ServerShared> {
        self.shared.clone()
    }

    /// Takes what has been read past the current request's head, for a protocol taking the
    /// connection over: after a `101` those bytes are already the new protocol's.
    pub(crate) fn take_read_buffer(&self) -> BytesMut {
        std::mem::take(&mut *self.rbuf.borrow_mut())
    }

    /// Whether the connection is TLS (HTTPS).
    pub(crate) fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    pub(crate) fn is_head(&self) -> bool {
        self.is_head.get()
    }

    /// The `Connection` header the current response carries.
    pub(crate) fn connection_header(&self) -> Connection {
        if !self.keep_alive.get() || self.must_close.get() || self.shared.closing.is_set() {
            Connection::Close
        } else if self.version.get() == Version::HTTP_10 {
            Connection::KeepAlive
        } else {
            Connection::Default
        }
    }

    /// A streamed body of unknown length for an HTTP/1.0 client ends with the connection.
    pub(crate) fn set_must_close(&self) {
        self.must_close.set(true);
    }

    /// A streamed response is sending its head: no other response may follow for this
    /// request.
    pub(crate) fn set_head_sent(&self) {
        self.head_sent.set(true);
    }

    // --- the body of the current request -------------------------------------------------

    pub(crate) fn body_done(&self, seq: u64) -> bool {
        match &*self.body.borrow() {
            Some(b) if b.seq == seq => b.decoder.is_done(),
            _ => true,
        }
    }

    pub(crate) fn body_trailers(&self, seq: u64) -> Option<HeaderMap> {
        match &*self.body.borrow() {
            Some(b) if b.seq == seq => b.trailers.clone(),
            _ => None,
        }
    }

    pub(crate) fn declared_length(&self, seq: u64) -> Option<u64> {
        match &*self.body.borrow() {
            Some(b) if b.seq == seq => b.declared,
            _ => None,
        }
    }

    pub(crate) fn decode_body(&self, seq: u64, max: usize) -> Result<Step, ReadError> {
        let mut body = self.body.borrow_mut();
        let Some(b) = body.as_mut().filter(|b| b.seq == seq) else {
            return Ok(Step::Done);
        };
        let step = b
            .decoder
            .decode(&mut self.rbuf.borrow_mut(), max)
            .map_err(|e| ReadError::Bad(format!("bad request body: {e}")))?;
        if step == Step::Done && b.trailers.is_none() {
            b.trailers = b.decoder.take_trailers();
        }
        Ok(step)
    }

    /// The body needs more bytes: send `100 Continue` if the client waits for it, then read.
    pub(crate) async fn read_body_more(&self, seq: u64) -> Result<(), ReadError> {
        let send_continue = match &mut *self.body.borrow_mut() {
            Some(b) if b.seq == seq => std::mem::take(&mut b.continue_pending),
            _ => false,
        };
        // Not once a streamed response has sent its head: an interim response after the
        // final one would be read as body. That client already has its final status and
        // decides on its own whether to send the body (RFC 9110 §10.1.1).
        if send_continue && !self.head_sent.get() {
            self.queue(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush()
                .await
                .map_err(|e| ReadError::Bad(format!("cannot send 100 Continue: {e}")))?;
        }
        let timeout = self.shared.config.body_timeout;
        match crate::wait_for(self.read_more(), timeout).await {
            Ok(Ok(0)) => Err(ReadError::Bad(
                "the client closed the connection in the middle of the body".into(),
            )),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ReadError::Bad(format!("reading the body failed: {e}"))),
            Err(_) => Err(ReadError::Bad(format!(
                "no body data for {}s",
                timeout.as_secs_f64()
            ))),
        }
    }

    /// After the handler: reads and drops what is left of a small body. Returns whether the
    /// connection can carry another request.
    async fn finish_body(&self, seq: u64) -> bool {
        let (done, pending_continue, remaining) = match &*self.body.borrow() {
            Some(b) if b.seq == seq => (
                b.decoder.is_done(),
                b.continue_pending,
                b.decoder.remaining_length(),
            ),
            _ => (true, false, Some(0)),
        };
        if done {
            return true;
        }
        // The client is still waiting for permission to send: it will not send the body,
        // but it may send it anyway later; closing is the only safe framing.
        if pending_continue {
            return false;
        }
        if remaining.is_none_or(|r| r > DRAIN_LIMIT) {
            return false;
        }
        loop {
            match self.next_body_piece(seq, usize::MAX).await {
                Ok(Some(_)) => continue,
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    /// The next piece (at most `max` bytes) of request `seq`'s body, reading as needed;
    /// `None` at its end. Shared by the request's `BodyReader` and the drain above.
    pub(crate) async fn next_body_piece(
        &self,
        seq: u64,
        max: usize,
    ) -> Result<Option<Bytes>, ReadError> {
        loop {
            match self.decode_body(seq, max)? {
                Step::Data(b) => return Ok(Some(b)),
                Step::Done => return Ok(None),
                Step::NeedMore => self.read_body_more(seq).await?,
            }
        }
    }
}

/// Why waiting for the next head ended without one.
enum Wait {
    Eof,
    TimedOut,
    Closing,
    Failed,
}

/// Serves one connection until it closes.
pub(crate) async fn serve(
    stream: Transport,
    peer: Option<SocketAddr>,
    app: App,
    shared: Rc<ServerShared>,
) {
    let conn = Rc::new(ConnIo::new(stream, shared.clone()));
    let limits = shared.config.limits;
    let mut seq: u64 = 0;
    // The connection's idle/head timer, re-armed lazily (see `wait_for_bytes`).
    let mut timer = pin!(crate::sleep_until(
        Instant::now() + shared.config.keepalive_timeout
    ));
    // Registered with the shutdown signal once for the connection's life, not once per wait.
    let mut closing = pin!(shared.closing.wait());
    loop {
        // 1. The next head, reading as needed.
        let mut head_started: Option<Instant> = None;
        let head = loop {
            let parsed = head::parse(
                &mut conn.rbuf.borrow_mut(),
                &limits,
                &mut conn.scratch.borrow_mut(),
            );
            match parsed {
                Ok(Some(h)) => break h,
                Err(e) => {
                    send_error(&conn, e.status, e.reason).await;
                    return;
                }
                Ok(None) => {}
            }
            if conn.flush().await.is_err() {
                return;
            }
            // The header timeout runs from when part of a head is first seen (a head that
            // arrives whole never needs the time).
            let idle = conn.rbuf.borrow().is_empty();
            if !idle && head_started.is_none() {
                head_started = Some(crate::time::clock::recent());
            }
            let waited = wait_for_bytes(
                &conn,
                idle,
                seq == 0,
                head_started,
                timer.as_mut(),
                closing.as_mut(),
            );
            match waited.await {
                Ok(()) => {}
                Err(Wait::TimedOut) if !idle => {
                    send_error(&conn, StatusCode::REQUEST_TIMEOUT, "request head timed out").await;
                    return;
                }
                Err(_) => return,
            }
        };

        // 2. Framing decisions that need no handler.
        let declared = match head.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        };
        // The largest limit of any (sub-)application: routing has not happened yet, and
        // `read` applies the answering application's own limit.
        let max = app.body_limit();
        if let Some(n) = declared.filter(|&n| n > max) {
            let text = super::exceptions::HTTPRequestEntityTooLarge(max, Some(n)).text();
            send_error(&conn, StatusCode::PAYLOAD_TOO_LARGE, &text).await;
            return;
        }
        seq += 1;
        *conn.body.borrow_mut() = Some(BodyState {
            seq,
            decoder: Decoder::new(head.framing),
            declared,
            continue_pending: head.expect_continue,
            trailers: None,
        });
        conn.keep_alive.set(head.keep_alive);
        conn.version.set(head.version);
        conn.is_head.set(head.method == Method::HEAD);
        conn.must_close.set(false);
        conn.head_sent.set(false);
        let access = AccessLog::start(&head, peer);

        // 3. The application.
        let body = BodyReader::new(conn.clone(), seq);
        // Read now: the request is gone by the time its response may want compressing.
        let accepts = super::compression::accepted(head.fields());
        let request = Request::new(head, peer, app.clone(), body, conn.clone());
        shared.in_flight.set(shared.in_flight.get() + 1);
        let response = run_handler(&conn, || app.handle(request)).await;
        shared.in_flight.set(shared.in_flight.get() - 1);

        // 4. What is left of the body, then the response.
        // Usually the body is empty or was read whole: no future to build for that.
        let reusable = conn.body_done(seq) || conn.finish_body(seq).await;
        if !reusable {
            conn.keep_alive.set(false);
        }
        let mut response = response;
        super::compression::apply(&mut response, accepts);
        let (status, size, file) = write_response(&conn, response);
        access.finish((status, size));
        if let Some((file, offset, len)) = file {
            if send_file(&conn, file, offset, len).await.is_err() {
                return;
            }
        }
        if conn.connection_header() == Connection::Close {
            if conn.flush().await.is_ok() {
                close_lingering(&conn).await;
            }
            return;
        }
        // Backpressure for pipelining: a batch of small requests may ask for far more than it
        // weighs (50 × GET of 2 MB in 2 KB). Write once enough is queued, waiting for the
        // client if it does not read, instead of running the whole batch into memory first.
        // Small responses still leave in one write per 64 KiB; a large one was going to be
        // written on its own anyway, so this adds no syscall.
        if conn.out.borrow().is_full() && conn.flush().await.is_err() {
            return;
        }
    }
}

/// Waits until more bytes are buffered. Idle connections end after the keep-alive timeout; a
/// head in progress must complete within the header timeout. Both end at once on shutdown:
/// no request is in flight yet, so there is nothing to finish (as aiohttp), and waiting out
/// a slow client's header timeout would hold the whole shutdown up.
///
/// `timer` is the connection's one timer, re-armed lazily: a wait whose deadline is later than
/// the armed one (the usual case: each keep-alive wait ends later than the last) keeps it, and
/// when it fires early it is moved to the real deadline. So a busy keep-alive connection
/// touches the timer heap about once per keep-alive period, not once per request.
fn wait_for_bytes<'a, 'b>(
    conn: &'a ConnIo,
    idle: bool,
    first: bool,
    started: Option<Instant>,
    mut timer: Pin<&'a mut crate::Sleep>,
    mut closing: Pin<&'a mut crate::sync::EventWait<'b>>,
) -> impl Future<Output = Result<(), Wait>> + use<'a, 'b> {
    let config = &conn.shared.config;
    // The loop's wake-up time rather than a clock read: these deadlines are seconds long.
    let mut deadline = match started {
        Some(t) => t + config.header_timeout,
        None if idle => crate::time::clock::recent() + config.keepalive_timeout,
        None => crate::time::clock::recent() + config.header_timeout,
    };
    // A connection that has not had its first request yet was accepted while the server was
    // still taking connections (the acceptors drain the kernel's queue on shutdown). Its
    // request is probably in the socket already, reported by the loop's next look at epoll,
    // so it gets a short grace to arrive instead of being closed unanswered. (A connection
    // back from a response during shutdown has said `Connection: close` and does not wait.)
    let mut graced = false;
    if first && conn.shared.closing.is_set() {
        deadline = deadline.min(Instant::now() + FIRST_REQUEST_GRACE);
        graced = true;
    }
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    let closing_already = conn.shared.closing.is_set() && !first;
    poll_fn(move |cx| {
        if closing_already {
            return Poll::Ready(Err(Wait::Closing));
        }
        if let Poll::Ready(r) = conn.poll_read_more(cx) {
            return Poll::Ready(match r {
                Ok(0) => Err(Wait::Eof),
                Ok(_) => Ok(()),
                Err(_) => Err(Wait::Failed),
            });
        }
        if closing.as_mut().poll(cx).is_ready() {
            // Shutdown began while this connection waited for a request. Bytes of one may
            // already be in the socket, unseen because the loop has not looked at epoll yet
            // (a proxy reusing the connection just then): a short grace lets them show, and
            // they are served, rather than the connection reset with a request in it.
            if !graced {
                graced = true;
                deadline = deadline.min(Instant::now() + FIRST_REQUEST_GRACE);
                timer.as_mut().reset(deadline);
            }
        }
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(Err(Wait::TimedOut));
            }
            // An earlier wait's deadline: move on to this one's.
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    })
}

/// Runs the handler, turning a panic into a 500. If it has to wait while responses are
/// queued, those are flushed first.
///
/// `start` creates the handler's future. It runs inside `catch_unwind` too: a handler that
/// is a plain `fn` returning a future (or a router/middleware bug) can panic before any
/// future exists, and that panic would otherwise end the connection task with no response.
fn run_handler<'a>(
    conn: &'a ConnIo,
    start: impl FnOnce() -> LocalBoxFuture<Response>,
) -> impl Future<Output = Response> + 'a {
    let mut handler = std::panic::catch_unwind(AssertUnwindSafe(start)).map_err(|panic| {
        let msg = panic_message(&panic);
        tracing::error!(panic = %msg, "handler panicked; answering 500");
    });
    let mut flushing = false;
    let mut flushed = false;
    poll_fn(move |cx| {
        let Ok(handler) = &mut handler else {
            return Poll::Ready(internal_error());
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Ready(r)) => return Poll::Ready(r),
            Ok(Poll::Pending) => {}
            Err(panic) => {
                let msg = panic_message(&panic);
                tracing::error!(panic = %msg, "handler panicked; answering 500");
                return Poll::Ready(internal_error());
            }
        }
        if flushed {
            return Poll::Pending;
        }
        if !flushing {
            if conn.out.borrow().is_empty() {
                return Poll::Pending;
            }
            conn.out.borrow_mut().seal();
            flushing = true;
        }
        if conn.poll_flush(cx).is_ready() {
            // Errors surface again at the next flush. The handler was polled above in this
            // same poll, so its waker is registered and no wake-up can be lost.
            flushed = true;
        }
        Poll::Pending
    })
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// A file region still to send after its head.
type FileBody = (std::fs::File, u64, u64);

/// Queues the response's head and in-memory body. Returns the status and body size for the
/// access log, and a file body to send after the head.
fn write_response(conn: &ConnIo, response: Response) -> (StatusCode, u64, Option<FileBody>) {
    let status = response.status();
    if conn.head_sent.get() && !matches!(response.body, Body::Sent { .. }) {
        // A streamed response already sent its head (and maybe part of its body), then the
        // handler panicked, failed or returned something else. Writing this response now
        // would put a second head inside the first response's body, and the client would
        // read the rest of the connection out of step. Close instead, without ending the
        // body, so the client sees it incomplete.
        tracing::error!(
            status = status.as_u16(),
            "a response after a streamed response had begun; closing the connection"
        );
        conn.keep_alive.set(false);
        return (status, 0, None);
    }
    let allows_body = encode::status_allows_body(status) && !conn.is_head();
    let (length, size) = match &response.body {
        Body::Sent { finished } => {
            if !finished {
                conn.keep_alive.set(false);
            }
            return (status, 0, None);
        }
        Body::Full(b) => (b.len() as u64, b.len() as u64),
        Body::File { len, .. } => (*len, *len),
    };
    let framing = if encode::status_allows_body(status) {
        Length::Known(length)
    } else {
        Length::Unframed
    };
    let connection = conn.connection_header();
    // The common case (200, nothing custom in the head, a small body in memory) is
    // assembled whole on the stack and appended with one copy.
    let plain = match response.plain_content_type_line() {
        Some(ct_line) if status == StatusCode::OK => Some(ct_line),
        _ => None,
    };
    let body_written = conn.with_out(|out| {
        if let Some(ct_line) = plain {
            let mut head = encode::HeadBuf::new();
            head.push(b"HTTP/1.1 200 OK\r\n");
            head.push(ct_line);
            head.end(framing, connection, false);
            let inline = matches!(&response.body, Body::Full(b) if allows_body && head.try_push(b));
            out.extend_from_slice(head.as_slice());
            return inline;
        }
        let has_date =
            encode::head_start(out, status, response.custom_reason(), response.headers());
        response.content_type_line(out);
        encode::head_end(out, framing, connection, has_date);
        false
    });
    let file = match response.body {
        Body::Full(b) if allows_body && !b.is_empty() && !body_written => {
            conn.queue_bytes(b);
            None
        }
        Body::File { file, offset, len } if allows_body && len > 0 => Some((file, offset, len)),
        _ => None,
    };
    (status, size, file)
}

/// Sends a file region after its head: `sendfile(2)` on plain TCP, read and write (to be
/// encrypted) on TLS.
async fn send_file(conn: &ConnIo, file: std::fs::File, offset: u64, len: u64) -> io::Result<()> {
    conn.flush().await?;
    let mut offset = offset;
    let end = offset + len;
    while offset < end {
        let left = end - offset;
        let n = conn.stream.sendfile(&file, &mut offset, left).await?;
        if n == 0 {
            // The file shrank under us: the promised length cannot be met, so the
            // connection cannot be reused.
            conn.keep_alive.set(false);
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// Answers a request that cannot be served and closes the connection.
async fn send_error(conn: &ConnIo, status: StatusCode, reason: &str) {
    conn.keep_alive.set(false);
    let body = format!("{}: {}", status.as_u16(), reason);
    conn.with_out(|out| {
        encode::head_start(out, status, None, &HeaderMap::new());
        out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        encode::head_end(
            out,
            Length::Known(body.len() as u64),
            Connection::Close,
            false,
        );
        out.extend_from_slice(body.as_bytes());
    });
    tracing::info!(target: "kettle::web::access", status = status.as_u16(), reason, "request refused");
    if let Ok(Ok(())) = crate::wait_for(conn.flush(), Duration::from_secs(5)).await {
        close_lingering(conn).await;
    }
}

/// Ends a connection whose last response has been handed to the kernel: half-closes our
/// side (the client sees EOF after the response; over TLS after a `close_notify`), then
/// reads and drops whatever the client still sends until it closes too, for at most
/// [`LINGER`].
///
/// Closing a socket that has unread input makes the kernel send a reset, and a reset throws
/// away the part of the response not yet delivered: a large response, or any response on a
/// slow link, arrives truncated. The unread input is common on this path: a pipelined
/// request behind `Connection: close`, or an upload the handler answered without reading.
/// (nginx's "lingering close".) Not on the keep-alive path: only when a connection ends.
async fn close_lingering(conn: &ConnIo) {
    let _ = crate::wait_for(
        async {
            // Immediate on TCP; on TLS it first sends close_notify, which a client that
            // stopped reading can hold up, so it shares the linger bound. A failure here
            // does not matter: the reads below end as soon as the connection is gone.
            let _ = conn.stream.shutdown_write().await;
            loop {
                conn.rbuf.borrow_mut().clear();
                match conn.read_more().await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        },
        LINGER,
    )
    .await;
}

/// One access-log line per request, through `tracing` (target `kettle::web::access`).
/// Nothing is recorded (not even the clock read) when no subscriber wants the line.
struct AccessLog {
    request: Option<LoggedRequest>,
}

struct LoggedRequest {
    start: Instant,
    method: Method,
    target: Bytes,
    version: Version,
    peer: Option<SocketAddr>,
}

impl AccessLog {
    fn start(head: &head::RequestHead, peer: Option<SocketAddr>) -> AccessLog {
        let enabled = tracing::enabled!(target: "kettle::web::access", tracing::Level::INFO);
        AccessLog {
            request: enabled.then(|| LoggedRequest {
                start: Instant::now(),
                method: head.method.clone(),
                target: head.target_bytes(),
                version: head.version,
                peer,
            }),
        }
    }

    fn finish(self, (status, size): (StatusCode, u64)) {
        let Some(r) = self.request else {
            return;
        };
        tracing::info!(
            target: "kettle::web::access",
            remote = %r.peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "-".into()),
            request = %format_args!(
                "{} {} {:?}",
                r.method,
                String::from_utf8_lossy(&r.target),
                r.version
            ),
            status = status.as_u16(),
            size,
            elapsed_us = r.start.elapsed().as_micros() as u64,
            // Which loop of a multi-worker server answered ("-" for a single loop).
            worker = %crate::worker_index().map_or_else(|| "-".to_string(), |w| w.to_string()),
        );
    }
}
