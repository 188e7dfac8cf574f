//! The client's side of the codec: response heads in (RFC 9112 §4 and §6.3).
//!
//! A server is as hostile as any client, so everything a response head could use to make the
//! client buffer without end or misread where the body ends is checked here: the status line
//! and every field line are bounded, the whole head is bounded, and framing that two readers
//! could disagree on (`Content-Length` beside `Transfer-Encoding`, conflicting lengths, a
//! transfer coding we cannot undo) is an error rather than a guess.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// Bounds on a response head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseLimits {
    /// The status line and each field line, CRLF excluded (aiohttp's `max_line_size` and
    /// `max_field_size`, both 8190).
    pub(crate) max_line: usize,
    /// The whole head, status line and fields.
    pub(crate) max_head: usize,
}

impl Default for ResponseLimits {
    fn default() -> ResponseLimits {
        ResponseLimits {
            max_line: 8190,
            max_head: 64 * 1024,
        }
    }
}

/// The most header fields a response may have.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 128;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// No body at all: a `HEAD` response, 1xx, 204 or 304.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: ResponseFraming,
    /// Whether the connection may carry another request after this response.
    pub(crate) keep_alive: bool,
}

/// Parses one response head from the start of `buf`.
///
/// `Ok(None)` means the head has not all arrived (and is still within bounds); `Ok(Some((head,
/// len)))` gives the head and how many bytes of `buf` it took. `method` is the request's, since
/// a `HEAD` response has no body whatever its headers say.
pub(crate) fn parse(
    buf: &[u8],
    limits: &ResponseLimits,
    method: &Method,
) -> Result<Option<(ResponseHead, usize)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let parsed = match resp.parse(buf) {
        Ok(p) => p,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(format!(
                "response has more than {MAX_RESPONSE_HEADERS} header fields"
            ))
        }
        Err(e) => return Err(format!("malformed response head ({e})")),
    };
    let len = match parsed {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
    };
    if len > limits.max_head {
        return Err(format!(
            "response head larger than {} bytes",
            limits.max_head
        ));
    }
    if len > limits.max_line {
        // A head no longer than a line cannot hold a line that is too long.
        check_lines(&buf[..len], limits.max_line)?;
    }

    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| format!("invalid status code {code} in the response"))?;
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let reason = resp.reason.unwrap_or("").to_string();
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for field in resp.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| format!("invalid header name {:?}", field.name))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| format!("invalid value in header {:?}", field.name))?;
        headers.append(name, value);
    }
    let framing = framing(status, version, &headers, method)?;
    // After 101 the connection speaks another protocol: it can never carry HTTP again.
    let keep_alive = keep_alive(version, &headers)
        && framing != ResponseFraming::UntilClose
        && status != StatusCode::SWITCHING_PROTOCOLS;
    Ok(Some((
        ResponseHead {
            status,
            reason,
            version,
            headers,
            framing,
            keep_alive,
        },
        len,
    )))
}

/// An incomplete head may still be refused: a status line or field line that is already too
/// long, or a head already over its bound, would otherwise be buffered for as long as the
/// server cares to send it.
fn check_partial(buf: &[u8], limits: &ResponseLimits) -> Result<(), String> {
    if buf.len() > limits.max_head {
        return Err(format!(
            "response head larger than {} bytes",
            limits.max_head
        ));
    }
    check_lines(buf, limits.max_line)
}

/// Every line (the last may be unfinished) is at most `max_line` bytes.
fn check_lines(head: &[u8], max_line: usize) -> Result<(), String> {
    let mut rest = head;
    let mut first = true;
    loop {
        let (line, more) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max_line {
            return Err(if first {
                format!("status line longer than {max_line} bytes")
            } else {
                format!("header line longer than {max_line} bytes")
            });
        }
        first = false;
        match more {
            Some(m) => rest = m,
            None => return Ok(()),
        }
    }
}

/// RFC 9112 §6.3, with the ambiguous cases refused.
fn framing(
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    method: &Method,
) -> Result<ResponseFraming, String> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(ResponseFraming::Empty);
    }
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if has_length {
            return Err(
                "response has both Content-Length and Transfer-Encoding (a smuggling vector)"
                    .to_string(),
            );
        }
        if version == Version::HTTP_10 {
            return Err("HTTP/1.0 response with Transfer-Encoding".to_string());
        }
        return match last_coding(headers) {
            Some(c) if c.eq_ignore_ascii_case("chunked") => {
                if coding_count(headers) > 1 {
                    Err("response uses a transfer coding besides chunked".to_string())
                } else {
                    Ok(ResponseFraming::Chunked)
                }
            }
            _ => Err("response uses a transfer coding other than chunked".to_string()),
        };
    }
    if has_length {
        return content_length(headers).map(ResponseFraming::Length);
    }
    Ok(ResponseFraming::UntilClose)
}

fn codings(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

fn last_coding(headers: &HeaderMap) -> Option<&str> {
    codings(headers).last()
}

fn coding_count(headers: &HeaderMap) -> usize {
    codings(headers).count()
}

/// One length, however many times it is repeated; different lengths are an error.
fn content_length(headers: &HeaderMap) -> Result<u64, String> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(format!(
                    "invalid Content-Length {:?}",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "invalid Content-Length".to_string())?;
            match found {
                Some(m) if m != n => {
                    return Err(format!("conflicting Content-Length values {m} and {n}"))
                }
                _ => found = Some(n),
            }
        }
    }
    found.ok_or_else(|| "empty Content-Length".to_string())
}

fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut close = false;
    let mut keep = false;
    for value in headers.get_all(header::CONNECTION) {
        for token in value.to_str().unwrap_or("").split(',') {
            let token = token.trim();
            close |= token.eq_ignore_ascii_case("close");
            keep |= token.eq_ignore_ascii_case("keep-alive");
        }
    }
    !close && (version == Version::HTTP_11 || keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_get(raw: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
        parse(raw, &ResponseLimits::default(), &Method::GET)
    }

    fn head(raw: &[u8]) -> ResponseHead {
        parse_get(raw).unwrap().unwrap().0
    }

    #[test]
    fn a_plain_response() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello";
        let (h, len) = parse_get(raw).unwrap().unwrap();
        assert_eq!(len, raw.len() - 5);
        assert_eq!(h.status, 200);
        assert_eq!(h.reason, "OK");
        assert_eq!(h.framing, ResponseFraming::Length(5));
        assert!(h.keep_alive);
        assert_eq!(h.headers["x-a"], "1");
    }

    #[test]
    fn framing_rules() {
        assert_eq!(
            head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing,
            ResponseFraming::Chunked
        );
        let close = head(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(close.framing, ResponseFraming::UntilClose);
        assert!(!close.keep_alive);
        assert_eq!(
            head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").framing,
            ResponseFraming::Empty
        );
        let (h, _) = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            &ResponseLimits::default(),
            &Method::HEAD,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, ResponseFraming::Empty);
        assert_eq!(
            head(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n").framing,
            ResponseFraming::Length(3)
        );
    }

    #[test]
    fn keep_alive_rules() {
        assert!(
            !head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n").keep_alive
        );
        assert!(
            !head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
        );
        assert!(!head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(
            head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(parse_get(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse_get(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").is_err());
        assert!(parse_get(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_get(b"\x16\x03\x01\x02\x00").is_err());
    }

    #[test]
    fn endless_lines_are_refused_before_they_end() {
        let mut status = b"HTTP/1.1 200 ".to_vec();
        status.extend(std::iter::repeat_n(b'x', 9000));
        assert!(parse_get(&status).unwrap_err().contains("status line"));
        let mut field = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        field.extend(std::iter::repeat_n(b'x', 9000));
        assert!(parse_get(&field).unwrap_err().contains("header line"));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        while many.len() < 70 * 1024 {
            many.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(parse_get(&many).is_err());
        assert!(parse_get(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n")
            .unwrap()
            .is_none());
    }
}
