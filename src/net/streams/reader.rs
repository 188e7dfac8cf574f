//! `StreamReader`: buffered, line- and separator-aware reading from a TCP or Unix-domain
//! connection.
//!
//! Data is pulled from the socket on demand, straight into the reader's own buffer, by the
//! `poll_*` functions below. Every state they need lives in the reader (not in the future), so
//! each read is cancellation-safe: a read dropped mid-wait leaves whatever arrived in the buffer
//! for the next one. The same functions drive the `async fn`s and the [`Lines`] stream.
//!
//! The buffer is a zero-initialised `Vec` holding the unread bytes at `pos..end`. Reading
//! appends after `end`; consuming advances `pos`. The unread bytes are moved to the front only
//! when more room is needed, so consuming a line costs no copying.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use super::{Connection, StreamError};
use crate::net::SocketAddress;

/// The default buffer limit, as asyncio's (`2**16`).
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// The smallest read issued to the socket (when the caller's bound allows it): small enough that
/// an idle connection costs little memory, big enough that a burst needs few system calls.
const MIN_READ: usize = 8 * 1024;

/// The reading half of a connection (asyncio's `StreamReader`).
///
/// Obtained from [`open_connection`](crate::open_connection) or
/// [`open_unix_connection`](crate::open_unix_connection), a [`start_server`](crate::start_server)
/// or [`start_unix_server`](crate::start_unix_server) handler, or
/// [`from_tcp`](super::from_tcp)/[`from_unix`](super::from_unix).
///
/// ```
/// kettle::run(async {
///     let server = kettle::start_server(
///         |_reader, writer: kettle::net::StreamWriter| async move {
///             writer.write(b"first line\nsecond line\nno newline at the end");
///             writer.close();
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     let port = server.sockets()[0].port().unwrap();
///
///     let (mut reader, _writer) = kettle::open_connection("127.0.0.1", port).await.unwrap();
///     assert_eq!(reader.readline().await.unwrap(), b"first line\n");
///     assert_eq!(reader.readuntil(b"line").await.unwrap(), b"second line");
///     assert_eq!(reader.readexactly(1).await.unwrap(), b"\n");
///     assert_eq!(reader.read_to_end().await.unwrap(), b"no newline at the end");
///     assert!(reader.at_eof());
///     server.close();
/// });
/// ```
///
/// # Limit and memory
///
/// The *limit* (default [`DEFAULT_LIMIT`], 64 KiB) bounds how much
/// [`readuntil`](Self::readuntil) and [`readline`](Self::readline) buffer while looking for
/// their separator: a chunk longer than the limit fails with [`StreamError::LimitOverrun`]
/// instead of growing the buffer without end. [`read`](Self::read) never buffers more than
/// the limit either. Only the calls that ask for a size hold more:
/// [`readexactly(n)`](Self::readexactly) buffers up to `n` bytes, and
/// [`read_to_end`](Self::read_to_end) the whole rest of the stream.
///
/// # Cancellation
///
/// Every read is cancellation-safe: bytes are taken from the buffer only by the poll that
/// returns them, so dropping a read mid-wait (a timeout, a cancelled task) loses nothing.
pub struct StreamReader {
    /// The connection, shared with the [`StreamWriter`](super::StreamWriter) of the same pair.
    conn: Rc<Connection>,
    /// Storage; bytes `pos..end` are unread, bytes `end..` are free room for the next read.
    buf: Vec<u8>,
    /// Start of the unread bytes.
    pos: usize,
    /// End of the unread bytes.
    end: usize,
    /// The peer closed its side (a read returned 0), or a read failed: no more data will come.
    eof: bool,
    /// How many unread bytes a separator search has already looked at without finding the
    /// separator, so that a long chunk arriving in small pieces is scanned once, not once per
    /// piece. Reset whenever a new search starts or bytes are consumed.
    scanned: usize,
    /// Bound on what `readuntil`/`readline`/`read` buffer.
    limit: usize,
}

impl StreamReader {
    pub(super) fn new(conn: Rc<Connection>) -> StreamReader {
        StreamReader {
            conn,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
            scanned: 0,
            limit: DEFAULT_LIMIT,
        }
    }

    /// The buffer limit (see the type's documentation).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the buffer limit (at least 1); asyncio's `limit=` argument of
    /// `open_connection`/`start_server`.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Reads up to `n` bytes (asyncio's `read(n)`): whatever is buffered, or else what the next
    /// arrival brings, at most `n` and at most the limit. An empty `Vec` means end of stream
    /// (or `n == 0`). To read everything up to the end (asyncio's `read(-1)`) use
    /// [`read_to_end`](Self::read_to_end).
    ///
    /// ```
    /// # kettle::run(async {
    /// # let server = kettle::start_server(|_r, w: kettle::net::StreamWriter| async move {
    /// #     w.write(b"hello"); w.close(); }, "127.0.0.1", 0).await.unwrap();
    /// # let port = server.sockets()[0].port().unwrap();
    /// let (mut reader, _writer) = kettle::open_connection("127.0.0.1", port).await.unwrap();
    /// let mut got = Vec::new();
    /// loop {
    ///     let chunk = reader.read(2).await.unwrap();
    ///     if chunk.is_empty() {
    ///         break; // the peer closed
    ///     }
    ///     assert!(chunk.len() <= 2);
    ///     got.extend(chunk);
    /// }
    /// assert_eq!(got, b"hello");
    /// # });
    /// ```
    pub async fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
        poll_fn(|cx| self.poll_read_some(cx, n)).await
    }

    /// Reads until the peer closes its side and returns everything (asyncio's `read(-1)`).
    /// Memory grows with the rest of the stream: use it for responses known to be small.
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        poll_fn(|cx| self.poll_read_to_end(cx)).await
    }

    /// Reads one line, up to and including `\n` (asyncio's `readline()`). At the end of the
    /// stream it returns the unterminated rest, and then empty `Vec`s.
    ///
    /// A line longer than the limit fails with [`StreamError::LimitOverrun`]; unlike asyncio,
    /// which discards the line, the bytes stay in the buffer, to be read with
    /// [`read`](Self::read) or [`readexactly`](Self::readexactly) (the error says how many can
    /// be consumed), or dropped by closing the connection. I/O errors come as
    /// [`StreamError::Io`].
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        self.scanned = 0;
        poll_fn(|cx| self.poll_readline(cx)).await
    }

    /// Reads up to and including the first occurrence of `separator` (asyncio's
    /// `readuntil`).
    ///
    /// - If the stream ends first, [`StreamError::IncompleteRead`] carries the bytes that were
    ///   left (`expected: None`); they are consumed.
    /// - If the separator does not start within the first `limit` bytes,
    ///   [`StreamError::LimitOverrun`] is returned and **nothing is consumed**: the data is
    ///   still in the buffer for the next read. Its `consumed` field is the number of bytes that
    ///   may be consumed before trying again (as in asyncio).
    ///
    /// # Panics
    /// If `separator` is empty.
    pub async fn readuntil(&mut self, separator: &[u8]) -> Result<Vec<u8>, StreamError> {
        assert!(!separator.is_empty(), "readuntil: the separator is empty");
        self.scanned = 0;
        poll_fn(|cx| self.poll_readuntil(cx, separator)).await
    }

    /// Reads exactly `n` bytes (asyncio's `readexactly`). If the stream ends first,
    /// [`StreamError::IncompleteRead`] carries the bytes that did arrive (`expected:
    /// Some(n)`); they are consumed. The buffer grows to `n` bytes if needed.
    ///
    /// ```
    /// use kettle::net::StreamError;
    /// # kettle::run(async {
    /// # let server = kettle::start_server(|_r, w: kettle::net::StreamWriter| async move {
    /// #     w.write(b"\x00\x03abcde"); w.close(); }, "127.0.0.1", 0).await.unwrap();
    /// # let port = server.sockets()[0].port().unwrap();
    /// let (mut reader, _writer) = kettle::open_connection("127.0.0.1", port).await.unwrap();
    /// // A length-prefixed frame: two bytes of length, then the payload.
    /// let len = reader.readexactly(2).await.unwrap();
    /// let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    /// assert_eq!(reader.readexactly(len).await.unwrap(), b"abc");
    /// // Only two bytes are left: the read fails, carrying them.
    /// match reader.readexactly(3).await {
    ///     Err(StreamError::IncompleteRead { partial, expected }) => {
    ///         assert_eq!(partial, b"de");
    ///         assert_eq!(expected, Some(3));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # });
    /// ```
    pub async fn readexactly(&mut self, n: usize) -> Result<Vec<u8>, StreamError> {
        poll_fn(|cx| self.poll_readexactly(cx, n)).await
    }

    /// True when the peer has closed its side and the buffer is empty (asyncio's `at_eof()`).
    /// End of stream is only known once a read has seen it.
    pub fn at_eof(&self) -> bool {
        self.eof && self.pos == self.end
    }

    /// The bytes buffered but not yet read.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// The lines of the stream as a [`futures_core::Stream`] (asyncio's `async for line in
    /// reader`). Each item is what [`readline`](Self::readline) returns, newline included; the
    /// stream ends at the end of the connection, and after yielding an error.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    /// use futures_core::Stream;
    /// # kettle::run(async {
    /// # let server = kettle::start_server(|_r, w: kettle::net::StreamWriter| async move {
    /// #     w.write(b"a\nb\nc"); w.close(); }, "127.0.0.1", 0).await.unwrap();
    /// # let port = server.sockets()[0].port().unwrap();
    /// let (mut reader, _writer) = kettle::open_connection("127.0.0.1", port).await.unwrap();
    /// let mut lines = reader.lines();
    /// let mut all = Vec::new();
    /// while let Some(line) = poll_fn(|cx| Pin::new(&mut lines).poll_next(cx)).await {
    ///     all.push(line.unwrap());
    /// }
    /// assert_eq!(all, [&b"a\n"[..], b"b\n", b"c"]);
    /// # });
    /// ```
    pub fn lines(&mut self) -> Lines<'_> {
        Lines {
            reader: self,
            started: false,
            done: false,
        }
    }

    /// The connection's remote address, if it is still known: `ip:port` for TCP; for a Unix
    /// connection the server's path on the client side and (usually)
    /// [`SocketAddress::Unix(None)`](SocketAddress::Unix) on the server side. Unlike
    /// [`StreamWriter::get_extra_info`](super::StreamWriter::get_extra_info), which remembers
    /// the addresses of the connection's start, this asks the kernel, which may have forgotten
    /// a TCP peer once the connection is shut down.
    pub fn peer_addr(&self) -> Option<SocketAddress> {
        self.conn.stream.peer_addr().ok()
    }

    // ---- poll functions: all state in `self`, so each is restartable after `Pending` ----

    fn poll_read_some(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<io::Result<Vec<u8>>> {
        if n == 0 {
            return Poll::Ready(Ok(Vec::new()));
        }
        if self.pos == self.end && !self.eof {
            // Take what the socket has, up to the limit: the rest stays buffered for the next
            // read instead of costing a system call per small read.
            ready!(self.poll_fill(cx, self.limit))?;
        }
        let take = n.min(self.end - self.pos);
        Poll::Ready(Ok(self.consume(take)))
    }

    fn poll_read_to_end(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Vec<u8>>> {
        while !self.eof {
            // Grow in limit-sized steps; the result is the whole stream anyway.
            let want = (self.end - self.pos).max(self.limit);
            ready!(self.poll_fill(cx, want))?;
        }
        let all = self.end - self.pos;
        Poll::Ready(Ok(self.consume(all)))
    }

    fn poll_readline(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, StreamError>> {
        match ready!(self.poll_readuntil(cx, b"\n")) {
            // asyncio: at EOF a line is whatever is left, without the newline.
            Err(StreamError::IncompleteRead { partial, .. }) => Poll::Ready(Ok(partial)),
            other => Poll::Ready(other),
        }
    }

    fn poll_readuntil(
        &mut self,
        cx: &mut Context<'_>,
        sep: &[u8],
    ) -> Poll<Result<Vec<u8>, StreamError>> {
        let seplen = sep.len();
        loop {
            let avail = self.end - self.pos;
            if let Some(at) = self.find(sep) {
                if at > self.limit {
                    // Found, but the chunk before it is too long; leave it all buffered.
                    return Poll::Ready(Err(StreamError::LimitOverrun { consumed: at }));
                }
                return Poll::Ready(Ok(self.consume(at + seplen)));
            }
            // Not found. Bytes that could still be the start of the separator are the last
            // `seplen - 1`; everything before them is known not to start it.
            let settled = (avail + 1).saturating_sub(seplen);
            if settled > self.limit {
                return Poll::Ready(Err(StreamError::LimitOverrun { consumed: settled }));
            }
            if self.eof {
                let partial = self.consume(avail);
                return Poll::Ready(Err(StreamError::IncompleteRead {
                    partial,
                    expected: None,
                }));
            }
            // Read no more than the point where the overrun would be certain, so the buffer
            // stays within limit + separator length.
            let room = self.limit + seplen - avail;
            if let Err(e) = ready!(self.poll_fill(cx, room)) {
                return Poll::Ready(Err(StreamError::Io(e)));
            }
        }
    }

    fn poll_readexactly(
        &mut self,
        cx: &mut Context<'_>,
        n: usize,
    ) -> Poll<Result<Vec<u8>, StreamError>> {
        loop {
            let avail = self.end - self.pos;
            if avail >= n {
                return Poll::Ready(Ok(self.consume(n)));
            }
            if self.eof {
                let partial = self.consume(avail);
                return Poll::Ready(Err(StreamError::IncompleteRead {
                    partial,
                    expected: Some(n),
                }));
            }
            // Read ahead up to the limit when `n` is small, as for `read`.
            if let Err(e) = ready!(self.poll_fill(cx, n.max(self.limit) - avail)) {
                return Poll::Ready(Err(StreamError::Io(e)));
            }
        }
    }

    /// Reads once from the socket, at most `max` (≥ 1) bytes, appending to the buffer. Returns
    /// how many arrived; 0 means end of stream, which is remembered (asyncio: once at EOF, a
    /// reader stays there). A failed read also ends the stream: the error is returned once and
    /// later reads see EOF, because the connection is unusable after it.
    fn poll_fill(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        if self.eof || self.conn.closed.get() {
            self.eof = true;
            return Poll::Ready(Ok(0));
        }
        let room = self.make_room(max.max(1));
        let slot = &mut self.buf[self.end..self.end + room];
        let got = ready!(self.conn.stream.poll_read(cx, slot));
        match got {
            Ok(_) | Err(_) if self.conn.closed.get() => {
                // Closed by our writer while we waited: end of stream (see `Connection`).
                self.eof = true;
                Poll::Ready(Ok(0))
            }
            Ok(0) => {
                self.eof = true;
                Poll::Ready(Ok(0))
            }
            Ok(n) => {
                self.end += n;
                Poll::Ready(Ok(n))
            }
            Err(e) => {
                self.eof = true;
                Poll::Ready(Err(e))
            }
        }
    }

    /// Makes free room after `end` for a read of up to `max` bytes and returns its size
    /// (between 1 and `max`). Moves the unread bytes to the front first when that frees enough;
    /// otherwise grows the buffer, by at least doubling, but never past `end + max`: the
    /// caller's bound is what keeps the buffer bounded.
    fn make_room(&mut self, max: usize) -> usize {
        // Aim for a reasonably large read, but never more than the caller allows.
        let want = max.min(MIN_READ.max(self.buf.len()));
        if self.buf.len() - self.end < want && self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.end < want {
            self.buf.resize(self.end + want, 0);
        }
        (self.buf.len() - self.end).min(max)
    }

    /// Where `sep` starts in the unread bytes, searching only what was not searched before.
    fn find(&mut self, sep: &[u8]) -> Option<usize> {
        let data = &self.buf[self.pos..self.end];
        let from = self.scanned.min(data.len());
        let found = if sep.len() == 1 {
            data[from..].iter().position(|&b| b == sep[0])
        } else {
            data[from..].windows(sep.len()).position(|w| w == sep)
        };
        match found {
            Some(i) => Some(from + i),
            None => {
                // The last `len - 1` bytes may be the start of a separator still arriving.
                self.scanned = (data.len() + 1).saturating_sub(sep.len());
                None
            }
        }
    }

    /// Takes `n` unread bytes out of the buffer.
    fn consume(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        self.scanned = 0;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            // A past readexactly or read_to_end may have grown the buffer far beyond what the
            // connection normally needs; give that memory back once it is empty.
            if self.buf.len() > 2 * self.limit.max(MIN_READ) {
                self.buf = Vec::new();
            }
        }
        out
    }
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("peer", &self.peer_addr())
            .field("buffered", &(self.end - self.pos))
            .field("eof", &self.eof)
            .field("limit", &self.limit)
            .finish()
    }
}

/// The lines of a [`StreamReader`], from [`StreamReader::lines`]: a [`futures_core::Stream`]
/// of `Result<Vec<u8>, StreamError>`. It ends at the end of the connection, and after yielding
/// an error (so a line over the limit does not repeat forever).
pub struct Lines<'a> {
    /// The reader the lines come from.
    reader: &'a mut StreamReader,
    /// A line is being assembled (its separator search has been reset).
    started: bool,
    /// The stream has ended.
    done: bool,
}

impl futures_core::Stream for Lines<'_> {
    type Item = Result<Vec<u8>, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.started {
            // A new line: the remembered scan position may belong to another search.
            this.reader.scanned = 0;
            this.started = true;
        }
        let item = ready!(this.reader.poll_readline(cx));
        this.started = false;
        match item {
            Ok(line) if line.is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Ok(line) => Poll::Ready(Some(Ok(line))),
            Err(e) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl futures_core::FusedStream for Lines<'_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl fmt::Debug for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lines").field("done", &self.done).finish()
    }
}
