//! Response framing: the status line and headers, `Content-Length` or chunked framing, and
//! the `Connection` header that tells the client whether the connection stays open.
//!
//! Heads are appended to the connection's output buffer; small bodies are appended after
//! them so a batch of pipelined responses leaves in one write.

use bytes::BufMut;
use http::header::{self, HeaderMap};
use http::StatusCode;

use super::date;

/// How the body that follows a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    /// `Content-Length: n`.
    Known(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the status forbids a body (1xx, 204, 304), or an HTTP/1.0 client gets a body
    /// delimited by closing the connection.
    Unframed,
}

/// What the response says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connection {
    /// HTTP/1.1 default: nothing to say.
    Default,
    /// `Connection: keep-alive` (an HTTP/1.0 client that asked for it).
    KeepAlive,
    /// `Connection: close`.
    Close,
}

/// Whether a response with this status may carry a body (RFC 9110 §6.4.1).
pub(crate) fn status_allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Appends a response head. Framing headers in `headers` (`Content-Length`,
/// `Transfer-Encoding`, `Connection`) are ignored: the server owns framing, and a handler
/// that set them by hand must not desynchronize the connection. `extra` is written as is
/// (already formatted `Name: value\r\n` lines, e.g. the content type).
#[cfg(test)]
pub(crate) fn head(
    out: &mut Vec<u8>,
    status: StatusCode,
    reason: Option<&str>,
    headers: &HeaderMap,
    extra: &[u8],
    length: Length,
    connection: Connection,
) {
    let has_date = head_start(out, status, reason, headers);
    out.put_slice(extra);
    head_end(out, length, connection, has_date);
}

/// Appends the status line and `headers`; the caller may then add lines of its own (the
/// content type) before [`head_end`]. Framing headers in `headers` (`Content-Length`,
/// `Transfer-Encoding`, `Connection`) are skipped: the server owns framing, and a handler
/// that set them by hand must not desynchronize the connection. Returns whether `headers`
/// has its own `Date`, for [`head_end`].
pub(crate) fn head_start(
    out: &mut Vec<u8>,
    status: StatusCode,
    reason: Option<&str>,
    headers: &HeaderMap,
) -> bool {
    if status == StatusCode::OK && reason.is_none() {
        out.put_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(status.as_str().as_bytes());
        out.put_u8(b' ');
        let reason = reason.or(status.canonical_reason()).unwrap_or("Unknown");
        // A reason with CR or LF would split the head; the public API refuses those, this
        // is the last line of defence.
        for b in reason.bytes() {
            out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        out.put_slice(b"\r\n");
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    !headers.is_empty() && headers.contains_key(header::DATE)
}

/// Appends the framing headers, `Date` (unless the handler set one), `Connection` and the
/// blank line that ends the head.
pub(crate) fn head_end(out: &mut Vec<u8>, length: Length, connection: Connection, has_date: bool) {
    let mut tail = HeadBuf::new();
    tail.end(length, connection, has_date);
    out.put_slice(tail.as_slice());
}

/// Room for a whole common response: status line, a ready-made `Content-Type` line, the
/// tail [`HeadBuf::end`] writes (at most ~100 bytes) and a small body.
const HEAD_BUF: usize = 320;

/// A response head (and possibly a small body) assembled on the stack and appended to the
/// output with one copy: each fixed line is a copy the compiler inlines, where appending
/// line by line cost a library call per line.
pub(crate) struct HeadBuf {
    buf: [u8; HEAD_BUF],
    len: usize,
}

impl HeadBuf {
    pub(crate) fn new() -> HeadBuf {
        HeadBuf {
            buf: [0; HEAD_BUF],
            len: 0,
        }
    }

    /// Appends bytes the caller knows fit: fixed lines, whose total is bounded by
    /// construction (see [`HEAD_BUF`]).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Appends `bytes` if they fit; returns whether they did.
    pub(crate) fn try_push(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > HEAD_BUF - self.len {
            return false;
        }
        self.push(bytes);
        true
    }

    fn push_decimal(&mut self, n: u64) {
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut rest = n;
        for slot in self.buf[self.len..self.len + digits].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.len += digits;
    }

    /// The framing line, `Connection`, `Date` (unless the handler set one) and the blank
    /// line that ends the head: at most 16 + 20 + 2 + 24 + 39 bytes.
    pub(crate) fn end(&mut self, length: Length, connection: Connection, has_date: bool) {
        match length {
            Length::Known(n) => {
                self.push(b"Content-Length: ");
                self.push_decimal(n);
                self.push(b"\r\n");
            }
            Length::Chunked => self.push(b"Transfer-Encoding: chunked\r\n"),
            Length::Unframed => {}
        }
        match connection {
            Connection::Default => {}
            Connection::KeepAlive => self.push(b"Connection: keep-alive\r\n"),
            Connection::Close => self.push(b"Connection: close\r\n"),
        }
        if has_date {
            self.push(b"\r\n");
        } else {
            // `Date: ...\r\n\r\n`, the end of the head included.
            date::with_line(|line| self.push(line));
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Appends the framing that precedes a chunk of `len` bytes (`len` > 0).
pub(crate) fn chunk_header(out: &mut Vec<u8>, len: usize) {
    let mut hex = [0u8; 16];
    let mut i = hex.len();
    let mut n = len;
    loop {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&hex[i..]);
    out.put_slice(b"\r\n");
}

/// The CRLF after a chunk's data.
pub(crate) const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk and the empty trailer section.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_has_status_headers_length_and_date() {
        let mut out = Vec::new();
        let mut headers = HeaderMap::new();
        headers.insert("x-a", "1".parse().unwrap());
        headers.insert(header::CONTENT_LENGTH, "999".parse().unwrap());
        head(
            &mut out,
            StatusCode::NOT_FOUND,
            None,
            &headers,
            b"Content-Type: text/plain\r\n",
            Length::Known(13),
            Connection::Close,
        );
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\nx-a: 1\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\nDate: "), "{text}");
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        assert!(!text.contains("999"));
    }

    #[test]
    fn digits_and_chunk_sizes() {
        for n in [0u64, 7, 9, 10, 99, 100, 12345, 10u64.pow(19), u64::MAX] {
            let mut tail = HeadBuf::new();
            tail.push_decimal(n);
            assert_eq!(tail.as_slice(), n.to_string().as_bytes());
        }
        // The longest tail fits: a 20-digit length, keep-alive, and the Date line.
        let mut out = Vec::new();
        head_end(
            &mut out,
            Length::Known(u64::MAX),
            Connection::KeepAlive,
            false,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "Content-Length: 18446744073709551615\r\nConnection: keep-alive\r\nDate: "
            ),
            "{text}"
        );
        assert!(text.ends_with(" GMT\r\n\r\n"));
        // The largest fixed head plus the longest tail leave room for a small body.
        let mut head = HeadBuf::new();
        head.push(b"HTTP/1.1 200 OK\r\n");
        head.push(b"Content-Type: application/octet-stream\r\n");
        head.end(Length::Known(u64::MAX), Connection::KeepAlive, false);
        assert!(head.try_push(&[b'x'; 100]));
        assert!(!head.try_push(&[b'x'; HEAD_BUF]));
        let mut out = Vec::new();
        chunk_header(&mut out, 0x1a2b);
        assert_eq!(&out[..], b"1a2b\r\n");
    }

    #[test]
    fn custom_reasons_cannot_split_the_head() {
        let mut out = Vec::new();
        head(
            &mut out,
            StatusCode::OK,
            Some("Fine\r\nX-Evil: 1"),
            &HeaderMap::new(),
            b"",
            Length::Known(0),
            Connection::Default,
        );
        assert!(out.starts_with(b"HTTP/1.1 200 Fine  X-Evil: 1\r\n"));
    }
}
