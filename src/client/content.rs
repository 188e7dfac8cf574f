//! A response body as it streams in (aiohttp's `response.content`).
//!
//! The body owns the pool lease of its connection. Read to its end, it gives the connection
//! back for the next request; dropped before that, it closes it, since the unread rest would
//! otherwise be taken for the next response.

use std::future::{poll_fn, Future as _};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use super::decompress::Decompressor;
use super::error::invalid_response;
use super::pool::Lease;
use super::timeout::Deadlines;
use crate::error::{Error, ErrorKind, Result};
use crate::http::decode::{Decoder, Step};
use crate::time::Sleep;

/// Socket reads that may find bytes without waiting before the body yields to the loop once.
/// A fast server would otherwise keep a reading task running without a break, and every
/// other task on the loop waiting (tokio's cooperative budget does the same job).
const READ_BUDGET: u32 = 64;

/// The most body bytes handed out per piece when the caller sets no size.
const MAX_PIECE: usize = 64 * 1024;

/// The streaming body of a [`ClientResponse`](super::ClientResponse).
///
/// Read it piece by piece with [`read_chunk`](Content::read_chunk), in pieces of at most `n`
/// bytes with [`read`](Content::read) or [`iter_chunked`](Content::iter_chunked), line by line
/// with [`readline`](Content::readline), or hand it to code that wants a
/// [`Stream`](futures_core::Stream) of `Result<Bytes>` or an
/// [`AsyncRead`](futures_io::AsyncRead). The body is decompressed on the fly when the session
/// decompresses automatically.
///
/// ```no_run
/// # kettle::run(async {
/// let session = kettle::client::ClientSession::new();
/// let mut resp = session.get("http://127.0.0.1:8000/big").send().await?;
/// let mut total = 0;
/// loop {
///     let piece = resp.content().read_chunk().await?;
///     if piece.is_empty() {
///         break;
///     }
///     total += piece.len();
/// }
/// println!("{total} bytes");
/// session.close().await;
/// # kettle::Result::<()>::Ok(()) });
/// ```
pub struct Content {
    lease: Option<Lease>,
    decoder: Decoder,
    /// Boxed: a decoder's state is large, and most bodies have none.
    decompress: Option<Box<Decompressor>>,
    /// Whether any body byte went into `decompress`: an empty body is empty whatever its
    /// `Content-Encoding` says (as in aiohttp), not a truncated gzip or br stream.
    compressed: bool,
    deadlines: Deadlines,
    keep_alive: bool,
    /// Decoded bytes taken from the wire but not yet handed out.
    pending: Bytes,
    /// The timer of the current wait for bytes, armed on its first `Pending`.
    timer: Option<Sleep>,
    /// Socket reads in a row that found bytes without waiting (see [`READ_BUDGET`]).
    streak: u32,
    /// Set once the body ended (or failed): every later read returns empty (or the error).
    state: End,
    /// Where the body comes from, for error messages.
    url: String,
}

#[derive(Debug, Clone)]
enum End {
    Open,
    Eof,
    Failed(Error),
}

impl Content {
    pub(crate) fn new(
        lease: Lease,
        decoder: Decoder,
        decompress: Option<Box<Decompressor>>,
        deadlines: Deadlines,
        keep_alive: bool,
        url: String,
    ) -> Content {
        let mut content = Content {
            lease: Some(lease),
            decoder,
            decompress,
            compressed: false,
            deadlines,
            keep_alive,
            pending: Bytes::new(),
            timer: None,
            streak: 0,
            state: End::Open,
            url,
        };
        if content.decoder.is_done() {
            content.finish();
        }
        content
    }

    /// Whether the whole body has been read.
    pub fn at_eof(&self) -> bool {
        matches!(self.state, End::Eof) && self.pending.is_empty()
    }

    /// The next piece of the body as it arrived (at most 64 KiB); empty at the end.
    pub async fn read_chunk(&mut self) -> Result<Bytes> {
        self.read(MAX_PIECE).await
    }

    /// Up to `n` bytes of the body (at least one unless the body has ended); empty at the end.
    pub async fn read(&mut self, n: usize) -> Result<Bytes> {
        poll_fn(|cx| self.poll_piece(cx, n.max(1))).await
    }

    /// The rest of the body, refusing to hold more than `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Bytes> {
        let mut out = BytesMut::new();
        loop {
            let piece = self.read_chunk().await?;
            if piece.is_empty() {
                return Ok(out.freeze());
            }
            if out.is_empty() && self.at_eof() {
                return Ok(piece);
            }
            if out.len() + piece.len() > limit {
                self.fail(invalid_response(format!(
                    "response body from {} is larger than the {limit}-byte limit",
                    self.url
                )));
                return Err(self.error());
            }
            out.extend_from_slice(&piece);
        }
    }

    /// One line, up to and including `\n` (the last line may lack it); empty at the end. A
    /// line longer than `limit` bytes is an error, and ends the body: the rest would start in
    /// the middle of a line.
    pub async fn readline(&mut self, limit: usize) -> Result<Bytes> {
        let mut line = BytesMut::new();
        loop {
            if self.pending.is_empty() {
                let piece = self.read_chunk().await?;
                if piece.is_empty() {
                    return Ok(line.freeze());
                }
                self.pending = piece;
            }
            let (take, done) = match memchr::memchr(b'\n', &self.pending) {
                Some(i) => (i + 1, true),
                None => (self.pending.len(), false),
            };
            if line.len() + take > limit {
                self.pending = Bytes::new();
                self.fail(invalid_response(format!(
                    "line longer than {limit} bytes in the body from {}",
                    self.url
                )));
                return Err(self.error());
            }
            line.extend_from_slice(&self.pending.split_to(take));
            if done {
                return Ok(line.freeze());
            }
        }
    }

    /// The body as a [`Stream`](futures_core::Stream) of pieces of at most `n` bytes
    /// (aiohttp's `iter_chunked`).
    pub fn iter_chunked(&mut self, n: usize) -> Chunks<'_> {
        Chunks {
            content: self,
            size: n.max(1),
        }
    }

    /// Reads and throws away the rest of the body, so the connection can be reused. A body
    /// larger than `limit` is not worth reading: the connection is closed instead.
    pub(crate) async fn drain(&mut self, limit: usize) {
        let mut seen = 0;
        while seen <= limit {
            match self.read_chunk().await {
                Ok(p) if p.is_empty() => return,
                Ok(p) => seen += p.len(),
                Err(_) => return,
            }
        }
        self.release(false);
    }

    /// Gives the connection up now: back to the pool if `reusable` and the body was read to
    /// its end, closed otherwise.
    pub(crate) fn release(&mut self, reusable: bool) {
        if let Some(lease) = self.lease.take() {
            lease.set_reusable(reusable && matches!(self.state, End::Eof));
        }
        if matches!(self.state, End::Open) {
            self.state = End::Failed(Error::with_message(
                ErrorKind::InvalidState,
                "the response was released before its body was read",
            ));
        }
    }

    fn error(&self) -> Error {
        match &self.state {
            End::Failed(e) => e.clone(),
            _ => Error::invalid_state("body not failed"),
        }
    }

    fn fail(&mut self, e: Error) {
        self.state = End::Failed(e);
        self.timer = None;
        // The connection is in an unknown state; closing it is the only safe thing.
        self.lease = None;
    }

    /// The body ended cleanly: the connection goes back if the server allows it and sent
    /// nothing beyond the body.
    fn finish(&mut self) {
        self.state = End::Eof;
        self.timer = None;
        if let Some(mut lease) = self.lease.take() {
            let clean = lease.conn().is_some_and(|c| {
                c.exchanges += 1;
                c.rbuf.is_empty()
            });
            if !clean {
                tracing::debug!(url = %self.url, "response had bytes beyond its body; closing the connection");
            }
            lease.set_reusable(self.keep_alive && clean);
        }
    }

    /// Up to `max` decoded bytes; empty at the end.
    fn poll_piece(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<Result<Bytes>> {
        loop {
            if !self.pending.is_empty() {
                let n = max.min(self.pending.len());
                return Poll::Ready(Ok(self.pending.split_to(n)));
            }
            match &self.state {
                End::Eof => return Poll::Ready(Ok(Bytes::new())),
                End::Failed(e) => return Poll::Ready(Err(e.clone())),
                End::Open => {}
            }
            match self.poll_wire(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.fail(e);
                }
                Poll::Ready(Ok(Some(raw))) => match self.decompress.as_mut() {
                    None => self.pending = raw,
                    Some(d) => {
                        self.compressed = true;
                        match d.feed(&raw) {
                            Ok(out) => self.pending = out,
                            Err(e) => self.fail(decode_error(&self.url, e)),
                        }
                    }
                },
                Poll::Ready(Ok(None)) => {
                    let tail = match self.decompress.as_mut() {
                        Some(d) if self.compressed => d.finish(),
                        _ => Ok(Bytes::new()),
                    };
                    match tail {
                        Ok(tail) => {
                            self.pending = tail;
                            self.finish();
                        }
                        Err(e) => self.fail(decode_error(&self.url, e)),
                    }
                }
            }
        }
    }

    /// The next framed piece off the wire (before decompression); `None` at the body's end.
    fn poll_wire(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        let Some(lease) = self.lease.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let Some(conn) = lease.conn() else {
            return Poll::Ready(Ok(None));
        };
        loop {
            match self.decoder.decode(&mut conn.rbuf, MAX_PIECE) {
                Ok(Step::Data(b)) => {
                    self.timer = None;
                    return Poll::Ready(Ok(Some(b)));
                }
                Ok(Step::Done) => return Poll::Ready(Ok(None)),
                Ok(Step::NeedMore) => {}
                Err(e) => {
                    return Poll::Ready(Err(invalid_response(format!(
                        "bad body framing from {}: {e}",
                        self.url
                    ))))
                }
            }
            // Checked before each read, not only while waiting: a server that always has
            // bytes ready would never let the timer fire.
            if self.deadlines.total_passed() {
                let what = format!("reading the body from {}", self.url);
                return Poll::Ready(Err(self.deadlines.read_error(&what)));
            }
            if self.streak >= READ_BUDGET {
                self.streak = 0;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match conn.poll_read_more(cx) {
                Poll::Ready(Ok(0)) => {
                    return if self.decoder.ends_at_close() {
                        self.keep_alive = false;
                        Poll::Ready(Ok(None))
                    } else {
                        let detail = match self.decoder.remaining_length() {
                            Some(left) => format!(" ({left} bytes of the body missing)"),
                            None => String::new(),
                        };
                        Poll::Ready(Err(invalid_response(format!(
                            "the server closed the connection in the middle of the body from {}{detail}",
                            self.url
                        ))))
                    };
                }
                Poll::Ready(Ok(_)) => {
                    self.timer = None;
                    self.streak += 1;
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(Error::with_source(
                        ErrorKind::Io,
                        format!("{e} reading the body from {}", self.url),
                        e,
                    )))
                }
                Poll::Pending => {
                    self.streak = 0;
                    if self.timer.is_none() {
                        match self.deadlines.read() {
                            None => return Poll::Pending,
                            Some(at) => self.timer = Some(crate::time::sleep_until(at)),
                        }
                    }
                    let timer = self.timer.as_mut().expect("armed above");
                    if Pin::new(timer).poll(cx).is_ready() {
                        let what = format!("reading the body from {}", self.url);
                        return Poll::Ready(Err(self.deadlines.read_error(&what)));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

fn decode_error(url: &str, e: io::Error) -> Error {
    Error::with_source(
        ErrorKind::InvalidResponse,
        format!("cannot decompress the body from {url}: {e}"),
        e,
    )
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("url", &self.url)
            .field("at_eof", &self.at_eof())
            .finish()
    }
}

impl futures_core::Stream for Content {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = self.get_mut();
        if matches!(this.state, End::Failed(_)) && this.pending.is_empty() {
            // A stream ends after its error rather than repeating it forever.
            let e = this.error();
            this.state = End::Eof;
            return Poll::Ready(Some(Err(e)));
        }
        match this.poll_piece(cx, MAX_PIECE) {
            Poll::Ready(Ok(b)) if b.is_empty() => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_io::AsyncRead for Content {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.poll_piece(cx, buf.len()) {
            Poll::Ready(Ok(b)) => {
                buf[..b.len()].copy_from_slice(&b);
                Poll::Ready(Ok(b.len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The stream of [`Content::iter_chunked`].
#[derive(Debug)]
pub struct Chunks<'a> {
    content: &'a mut Content,
    size: usize,
}

impl futures_core::Stream for Chunks<'_> {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = self.get_mut();
        if matches!(this.content.state, End::Eof) && this.content.pending.is_empty() {
            return Poll::Ready(None);
        }
        match this.content.poll_piece(cx, this.size) {
            Poll::Ready(Ok(b)) if b.is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(b)) => Poll::Ready(Some(Ok(b))),
            Poll::Ready(Err(e)) => {
                // End after reporting the error once.
                this.content.state = End::Eof;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
