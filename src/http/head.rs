//! Request heads: `httparse` finds the pieces, this module applies the rules a server must
//! enforce before trusting them — the framing checks that stop request smuggling, the size
//! limits that stop memory exhaustion, and the version check.
//!
//! No header map is built while parsing: once the head is complete its bytes are copied out
//! of the connection's read buffer into a buffer the connection reuses (a few dozen bytes:
//! cheaper than sharing the read buffer, whose reference counts are atomic), and the fields
//! are kept as positions in it. The `HeaderMap` is built from them only if a handler asks for the headers
//! ([`RequestHead::header_map`]); the few fields the server itself needs (framing, Host,
//! Connection, Expect) are recognised by name bytes during the parse.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::HeadLimits;

/// How the request body is framed (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length: n` (a missing length means 0 for requests).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Where one header field's name and value lie in the head's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldPos {
    name: (u32, u32),
    value: (u32, u32),
}

/// A parsed and validated request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    /// The head's bytes (request line and fields); the target and the fields point into it.
    bytes: Vec<u8>,
    /// The request target in origin form (`/path?query`), still percent-encoded, as a range
    /// of `bytes`. An absolute-form target (`http://host/path`) is reduced to its path and
    /// query. Checked to be UTF-8.
    target: (u32, u32),
    pub(crate) version: Version,
    /// The fields in the order received; names are valid header names and values valid
    /// header values (httparse's byte classes are exactly the `http` crate's).
    fields: Vec<FieldPos>,
    pub(crate) framing: Framing,
    /// Whether a `Content-Length` field was sent (framing says `Length(0)` either way).
    pub(crate) has_content_length: bool,
    /// What the client asked for: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` (HTTP/1.1): the client waits for a `100 Continue` before it
    /// sends the body.
    pub(crate) expect_continue: bool,
}

impl RequestHead {
    fn range(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.bytes[start as usize..end as usize]
    }

    /// The request target's bytes (UTF-8, checked by the parser).
    pub(crate) fn target(&self) -> &[u8] {
        self.range(self.target)
    }

    /// The request target as text. Called several times per request (routing, `path`,
    /// `query_string`), so the UTF-8 check made once in [`parse`] is not repeated.
    pub(crate) fn target_str(&self) -> &str {
        let target = self.target();
        debug_assert!(std::str::from_utf8(target).is_ok());
        // SAFETY: `parse` only builds a head whose target passed `str::from_utf8`, and
        // `bytes` and `target` are private and never changed afterwards.
        unsafe { std::str::from_utf8_unchecked(target) }
    }

    /// A copy of the request target, for keeping past the request.
    pub(crate) fn target_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.target())
    }

    /// The number of header fields.
    #[cfg(test)]
    pub(crate) fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The fields as `(name, value)` byte pairs, in the order received; names as sent
    /// (not lowercased).
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|f| (self.range(f.name), self.range(f.value)))
    }

    /// Builds the header map, reusing `spare`'s allocations when given one. The values are
    /// slices of one shared copy of the head.
    pub(crate) fn header_map(&self, spare: Option<HeaderMap>) -> HeaderMap {
        let mut map = match spare {
            Some(mut m) => {
                m.clear();
                m
            }
            None => HeaderMap::with_capacity(self.fields.len()),
        };
        let shared = Bytes::copy_from_slice(&self.bytes);
        for f in &self.fields {
            // Neither can fail: the parser accepted only bytes both types accept (see
            // `parse`); a field that somehow did not convert is left out, not a panic.
            let name = HeaderName::from_bytes(self.range(f.name));
            let value = HeaderValue::from_maybe_shared(
                shared.slice(f.value.0 as usize..f.value.1 as usize),
            );
            debug_assert!(name.is_ok() && value.is_ok(), "unconvertible field");
            if let (Ok(name), Ok(value)) = (name, value) {
                map.append(name, value);
            }
        }
        map
    }

    /// Gives back the field list's and the bytes' allocations for the connection's next head.
    pub(crate) fn take_buffers(&mut self) -> (Vec<FieldPos>, Vec<u8>) {
        (
            std::mem::take(&mut self.fields),
            std::mem::take(&mut self.bytes),
        )
    }
}

/// Why a head was refused; each maps to the status the client gets (and the connection is
/// closed after it, since the framing of what follows cannot be trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadError {
    pub(crate) status: StatusCode,
    pub(crate) reason: &'static str,
}

impl HeadError {
    fn new(status: StatusCode, reason: &'static str) -> HeadError {
        HeadError { status, reason }
    }

    fn bad(reason: &'static str) -> HeadError {
        HeadError::new(StatusCode::BAD_REQUEST, reason)
    }

    fn too_large() -> HeadError {
        HeadError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header fields too large",
        )
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.reason)
    }
}

/// The header array httparse fills; heads with more fields are refused with 431.
const MAX_HEADERS: usize = 128;

/// Reusable storage a connection keeps between requests, so that parsing a head allocates
/// nothing in the steady state.
#[derive(Default)]
pub(crate) struct Scratch {
    fields: Vec<FieldPos>,
    head: Vec<u8>,
    /// An emptied header map from an earlier request, its capacity kept.
    spare: Option<HeaderMap>,
}

impl Scratch {
    /// Takes back a finished request's buffers and (if one was built) header map.
    pub(crate) fn recycle(
        &mut self,
        (fields, head): (Vec<FieldPos>, Vec<u8>),
        headers: Option<HeaderMap>,
    ) {
        // Buffers that grew for an unusual request are not worth keeping.
        if fields.capacity() <= 64 {
            self.fields = fields;
        }
        if head.capacity() <= 4096 {
            self.head = head;
        }
        if let Some(mut headers) = headers.filter(|h| h.capacity() <= 64) {
            headers.clear();
            self.spare = Some(headers);
        }
    }

    /// A recycled header map, if there is one.
    pub(crate) fn spare_headers(&mut self) -> Option<HeaderMap> {
        self.spare.take()
    }
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read more. On success the
/// head's bytes are removed from `buf` (what follows — body or the next pipelined request —
/// stays).
pub(crate) fn parse(
    buf: &mut BytesMut,
    limits: &HeadLimits,
    scratch: &mut Scratch,
) -> Result<Option<RequestHead>, HeadError> {
    // Tolerate the empty lines some clients send between pipelined requests (RFC 9112 §2.2).
    if matches!(buf.first(), Some(b'\r' | b'\n')) {
        let blank = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let _ = buf.split_to(blank);
    }
    if buf.is_empty() {
        return Ok(None);
    }

    let mut storage: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS] =
        [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(buf, &mut storage);
    // The request line's own limit (414) is checked before anything else is reported, and
    // also while the head is still incomplete, so a peer cannot make us buffer an endless
    // line. A complete head no longer than the limit cannot have a longer line.
    if !matches!(parsed, Ok(httparse::Status::Complete(len)) if len <= limits.max_line) {
        check_request_line(buf, limits)?;
    }
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > limits.max_head {
                Err(HeadError::too_large())
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::Version) => return Err(version_error(buf, req.path)),
        Err(e) => return Err(from_httparse(e)),
    };
    if len > limits.max_head || req.headers.len() > limits.max_headers {
        return Err(HeadError::too_large());
    }
    // httparse accepts a bare LF as a line end (RFC 9112 §2.2 lets a recipient do so), but a
    // proxy in front of us may not: `X: a\nTransfer-Encoding: chunked` is one field to it and
    // two to us, and the two disagree on where the body ends (request smuggling; Node's
    // CVE-2023-30589). Every line of the head must end in CRLF. In a head httparse accepted,
    // a CR can only stand right before an LF (tokens, the target and field values all
    // exclude it), so the lines all end in CRLF exactly when there are as many CRs as lines:
    // the request line, one per field, and the empty line.
    let crs = count_cr(&buf[..len]);
    if crs != req.headers.len() + 2 {
        return Err(HeadError::bad("line not terminated by CRLF"));
    }
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => {
            return Err(HeadError::new(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "HTTP version not supported",
            ))
        }
    };
    let method = req.method.unwrap_or_default();
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| HeadError::bad("bad method"))?;
    let base = buf.as_ptr() as usize;
    // Offsets fit in u32: the head is at most `max_head` bytes, checked above, and the
    // limits refuse a `max_head` of 4 GiB or more.
    let offset = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        (start as u32, (start + s.len()) as u32)
    };
    let target = origin_form(req.path.unwrap_or_default(), &method)?;
    // Most targets are ASCII (a vectorized check, inlined); only others need the decoder.
    if !target.is_ascii() && std::str::from_utf8(target).is_err() {
        return Err(HeadError::bad("request target is not UTF-8"));
    }
    let target = offset(target);

    // One pass over the fields: record where they are, and pick out the few that decide
    // framing and connection handling. httparse has checked every name is a token and every
    // value is HTAB / SP / VCHAR / obs-text, which are exactly the bytes `HeaderName` and
    // `HeaderValue` accept, so the map built later from these positions cannot fail.
    let mut fields = std::mem::take(&mut scratch.fields);
    fields.clear();
    let mut special = Special::default();
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.len() > MAX_NAME_LEN {
            return Err(HeadError::too_large());
        }
        special.see(name, h.value)?;
        fields.push(FieldPos {
            name: offset(name),
            value: offset(h.value),
        });
    }
    let framing = special.framing(version)?;
    special.check_host(version)?;
    let keep_alive = match version {
        Version::HTTP_11 => !special.close,
        _ => special.keep_alive && !special.close,
    };
    let expect_continue = special.expect_continue(version)?;
    let has_content_length = special.content_lengths > 0;
    drop(special);
    let mut bytes = std::mem::take(&mut scratch.head);
    bytes.clear();
    bytes.extend_from_slice(&buf[..len]);
    if len == buf.len() {
        // The usual case, nothing pipelined behind the head: keep the buffer's start where
        // it is, so the next read needs no compaction.
        buf.clear();
    } else {
        buf.advance(len);
    }

    Ok(Some(RequestHead {
        method,
        bytes,
        target,
        version,
        fields,
        framing,
        has_content_length,
        keep_alive,
        expect_continue,
    }))
}

/// The number of CR bytes in `bytes`, eight at a time: without branches per byte, for the
/// few dozen bytes of a typical head this is several times cheaper than a byte loop.
fn count_cr(bytes: &[u8]) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const CRS: u64 = 0x0d0d_0d0d_0d0d_0d0d;
    let mut chunks = bytes.chunks_exact(8);
    let mut n = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Bytes equal to CR become zero; then exactly the zero bytes get their high bit set
        // (no borrow crosses bytes, unlike the `x - 0x01..` trick, so the count is exact).
        let x = u64::from_le_bytes(word) ^ CRS;
        let zero_high = !(((x & LOW7) + LOW7) | x | LOW7);
        n += zero_high.count_ones() as usize;
    }
    n + chunks.remainder().iter().filter(|&&b| b == b'\r').count()
}

/// The longest header name `HeaderName` takes.
const MAX_NAME_LEN: usize = (1 << 16) - 1;

/// 414 as soon as the request line is known to be too long, even before its end arrives,
/// so a peer cannot make us buffer an endless line.
fn check_request_line(buf: &[u8], limits: &HeadLimits) -> Result<(), HeadError> {
    let window = &buf[..buf.len().min(limits.max_line + 2)];
    let line_len = match memchr::memchr(b'\n', window) {
        Some(i) => i.saturating_sub(usize::from(i > 0 && window[i - 1] == b'\r')),
        None if buf.len() > limits.max_line + 1 => usize::MAX,
        None => return Ok(()),
    };
    if line_len > limits.max_line {
        return Err(HeadError::new(
            StatusCode::URI_TOO_LONG,
            "request line too long",
        ));
    }
    Ok(())
}

fn from_httparse(e: httparse::Error) -> HeadError {
    use httparse::Error as E;
    match e {
        E::TooManyHeaders => HeadError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too many header fields",
        ),
        E::Version => HeadError::new(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "HTTP version not supported",
        ),
        E::HeaderName => HeadError::bad("invalid header name"),
        E::HeaderValue => HeadError::bad("invalid header value"),
        E::NewLine | E::Status => HeadError::bad("malformed request line or header"),
        E::Token => HeadError::bad("invalid token in the request line"),
    }
}

/// httparse reports whatever stands where the version should as a version error. Only a
/// well-formed `HTTP/x.y` other than 1.0 and 1.1 is "not supported" (505); anything else —
/// `GET /  HTTP/1.1` (two spaces), `http/1.1`, `HTTP/1.1x` — is a malformed request line (400).
/// `path` is the target httparse found; the version starts after the space that follows it.
fn version_error(buf: &[u8], path: Option<&str>) -> HeadError {
    let version = path
        .map(|p| p.as_ptr() as usize - buf.as_ptr() as usize + p.len() + 1)
        .and_then(|start| buf.get(start..))
        .unwrap_or_default();
    // Judged on as much as has arrived: httparse stops at the first byte that cannot be
    // 1.0 or 1.1, so `HTTP/2` may be all there is so far.
    let shape_so_far = version.iter().zip(b"HTTP/9.9").all(|(&b, &s)| {
        if s == b'9' {
            b.is_ascii_digit()
        } else {
            b == s
        }
    });
    let ends_there = version.len() <= 8 || matches!(version[8], b'\r' | b'\n');
    if version.len() >= 6 && shape_so_far && ends_there {
        HeadError::new(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "HTTP version not supported",
        )
    } else {
        HeadError::bad("malformed HTTP version")
    }
}

/// Reduces the request target to origin form (`/path?query`); `*` is kept for OPTIONS.
fn origin_form<'a>(target: &'a str, method: &Method) -> Result<&'a [u8], HeadError> {
    if target.starts_with('/') || (target == "*" && method == Method::OPTIONS) {
        return Ok(target.as_bytes());
    }
    // absolute-form, which RFC 9112 §3.2.2 says a server must accept.
    let lower = target
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return Err(HeadError::bad("request target must be a path"));
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => Ok(&rest.as_bytes()[i..]),
        // `http://host?q` and `http://host` both mean the root.
        _ => Err(HeadError::bad("absolute-form target without a path")),
    }
}

/// The header fields that decide framing and connection handling, seen once each.
#[derive(Default)]
struct Special<'a> {
    content_length: Option<&'a [u8]>,
    content_lengths: usize,
    /// Whether any Transfer-Encoding field was present.
    te_present: bool,
    /// The codings of every Transfer-Encoding field, in order (lowercased).
    codings: Vec<String>,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    expect: Option<&'a [u8]>,
}

impl<'a> Special<'a> {
    /// Looks at one field; names are compared as bytes, case-insensitively, length first.
    fn see(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), HeadError> {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => self.hosts += 1,
            6 if name.eq_ignore_ascii_case(b"expect") => self.expect = Some(value),
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                self.content_length = Some(value);
                self.content_lengths += 1;
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.te_present = true;
                let value = std::str::from_utf8(value)
                    .map_err(|_| HeadError::bad("invalid Transfer-Encoding"))?;
                for coding in value.split(',') {
                    self.codings
                        .push(coding.trim_matches([' ', '\t']).to_ascii_lowercase());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// RFC 9112 §6.3 and the smuggling rules: one well-formed Content-Length, or a
    /// Transfer-Encoding ending in chunked, never both.
    fn framing(&self, version: Version) -> Result<Framing, HeadError> {
        let length = match (self.content_lengths, self.content_length) {
            (0, _) | (_, None) => None,
            (1, Some(v)) => Some(parse_content_length(v)?),
            _ => return Err(HeadError::bad("repeated Content-Length")),
        };
        if !self.te_present {
            return Ok(Framing::Length(length.unwrap_or(0)));
        }
        if length.is_some() {
            return Err(HeadError::bad("both Content-Length and Transfer-Encoding"));
        }
        if version == Version::HTTP_10 {
            return Err(HeadError::bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings = &self.codings;
        if codings.last().map(String::as_str) != Some("chunked") {
            return Err(HeadError::bad("Transfer-Encoding must end with chunked"));
        }
        if codings.iter().any(|c| c.is_empty()) {
            return Err(HeadError::bad("empty transfer coding"));
        }
        if codings.len() > 1 {
            // Chunked twice is forbidden; compression codings we do not decode.
            if codings[..codings.len() - 1].iter().any(|c| c == "chunked") {
                return Err(HeadError::bad("chunked applied more than once"));
            }
            return Err(HeadError::new(
                StatusCode::NOT_IMPLEMENTED,
                "transfer coding not implemented",
            ));
        }
        Ok(Framing::Chunked)
    }

    fn check_host(&self, version: Version) -> Result<(), HeadError> {
        match (self.hosts, version) {
            (2.., _) => Err(HeadError::bad("repeated Host")),
            (0, Version::HTTP_11) => Err(HeadError::bad("missing Host in an HTTP/1.1 request")),
            _ => Ok(()),
        }
    }

    fn expect_continue(&self, version: Version) -> Result<bool, HeadError> {
        let Some(value) = self.expect else {
            return Ok(false);
        };
        if value.eq_ignore_ascii_case(b"100-continue") {
            // HTTP/1.0 clients cannot expect interim responses (RFC 9110 §10.1.1): ignore it.
            return Ok(version == Version::HTTP_11);
        }
        Err(HeadError::new(
            StatusCode::EXPECTATION_FAILED,
            "unsupported expectation",
        ))
    }
}

/// `1*DIGIT`, nothing else: no sign, no hex, no spaces inside, no list of values.
fn parse_content_length(v: &[u8]) -> Result<u64, HeadError> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::bad("malformed Content-Length"));
    }
    let mut n: u64 = 0;
    for &d in v {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| HeadError::bad("Content-Length overflows"))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Option<RequestHead>, HeadError> {
        let mut buf = BytesMut::from(s);
        parse(&mut buf, &HeadLimits::default(), &mut Scratch::default())
    }

    fn status(s: &str) -> StatusCode {
        parse_str(s).unwrap_err().status
    }

    #[test]
    fn a_simple_get_is_parsed_without_its_body() {
        let mut buf = BytesMut::from("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nNEXT");
        let head = parse(&mut buf, &HeadLimits::default(), &mut Scratch::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.target(), b"/a?b=1");
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.header_map(None)["x-a"], "1");
        assert_eq!(head.field_count(), 2);
        assert_eq!(head.framing, Framing::Length(0));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn every_field_httparse_accepts_converts_to_the_header_map() {
        // Names: every token byte; values: every byte httparse allows (HTAB, SP, VCHAR,
        // obs-text). The lazily built map must hold all of them, unchanged.
        let token: Vec<u8> = (0u8..=255)
            .filter(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
            .collect();
        let value: Vec<u8> = (0u8..=255)
            .filter(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
            .filter(|&b| b != b' ' && b != b'\t')
            .collect();
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        raw.extend_from_slice(&token);
        raw.extend_from_slice(b": a \tb");
        raw.extend_from_slice(&value);
        raw.extend_from_slice(b"\r\n\r\n");
        let head = parse(
            &mut BytesMut::from(&raw[..]),
            &HeadLimits::default(),
            &mut Scratch::default(),
        )
        .unwrap()
        .unwrap();
        let map = head.header_map(None);
        assert_eq!(map.len(), 2);
        let name = String::from_utf8(token).unwrap().to_ascii_lowercase();
        let mut want = b"a \tb".to_vec();
        want.extend_from_slice(&value);
        assert_eq!(map[name.as_str()].as_bytes(), &want[..]);
        let fields: Vec<_> = head.fields().collect();
        assert_eq!(fields[0], (&b"Host"[..], &b"x"[..]));
    }

    #[test]
    fn count_cr_is_exact_at_every_length_and_byte() {
        for len in 0..40 {
            for b in [0u8, 1, 0x0c, 0x0d, 0x0e, 0x8d, 0xff, b'\n'] {
                let mut v: Vec<u8> = (0..len)
                    .map(|i| if i % 3 == 0 { b'\r' } else { b })
                    .collect();
                let want = v.iter().filter(|&&x| x == b'\r').count();
                assert_eq!(count_cr(&v), want, "len {len} byte {b:#x}");
                v.reverse();
                assert_eq!(count_cr(&v), want);
            }
        }
    }

    #[test]
    fn recycled_storage_is_reused_and_cleared() {
        let mut scratch = Scratch::default();
        let mut buf = BytesMut::from("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n");
        let mut head = parse(&mut buf, &HeadLimits::default(), &mut scratch)
            .unwrap()
            .unwrap();
        let map = head.header_map(None);
        scratch.recycle(head.take_buffers(), Some(map));
        let mut buf = BytesMut::from("GET / HTTP/1.1\r\nHost: y\r\n\r\n");
        let head = parse(&mut buf, &HeadLimits::default(), &mut scratch)
            .unwrap()
            .unwrap();
        let map = head.header_map(scratch.spare_headers());
        assert_eq!(map.len(), 1);
        assert_eq!(map["host"], "y");
        assert!(!head.has_content_length);
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        assert!(parse_str("GET / HTTP/1.1\r\nHost: x\r\n")
            .unwrap()
            .is_none());
        assert!(parse_str("GET / HT").unwrap().is_none());
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let h = |s: &str| parse_str(s).unwrap().unwrap().keep_alive;
        assert!(!h("GET / HTTP/1.0\r\n\r\n"));
        assert!(h("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!h("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        assert!(h("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    }

    #[test]
    fn limits_give_414_and_431() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
        assert_eq!(status(&long), StatusCode::URI_TOO_LONG);
        // Known too long before the line even ends.
        assert_eq!(
            status(&format!("GET /{}", "a".repeat(9000))),
            StatusCode::URI_TOO_LONG
        );
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(40_000)
        );
        assert_eq!(status(&big), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let partial = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}", "a".repeat(40_000));
        assert_eq!(
            status(&partial),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(status(&many), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[test]
    fn smuggling_vectors_are_400() {
        for bad in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET foo HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\n\n",
            "GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / http/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1x\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.x\r\nHost: x\r\n\r\n",
            "GET / HTTP/2.0x\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(status(bad), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn other_versions_are_505_and_codings_501() {
        assert_eq!(
            status("GET / HTTP/2.0\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            status("GET / HTTP/1.2\r\nHost: x\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        // Known before the line ends.
        assert_eq!(
            status("GET / HTTP/2"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            status("GET / HTTP/0.9\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn framing_and_expect() {
        let h = parse_str("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.expect_continue);
        let h = parse_str("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 42\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(42));
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n"),
            StatusCode::EXPECTATION_FAILED
        );
    }

    #[test]
    fn absolute_form_targets_become_paths() {
        let h = parse_str("GET http://example.com/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.target(), b"/a/b?c");
        let h = parse_str("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.target(), b"*");
    }

    #[test]
    fn targets_are_utf8_checked_once() {
        let mut buf = BytesMut::from(&b"GET /caf\xc3\xa9?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
        let h = parse(&mut buf, &HeadLimits::default(), &mut Scratch::default())
            .unwrap()
            .unwrap();
        assert_eq!(h.target_str(), "/caf\u{e9}?q=1");
        let mut buf = BytesMut::from(&b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
        let err = parse(&mut buf, &HeadLimits::default(), &mut Scratch::default()).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        let h = parse_str("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.target(), b"/");
    }
}
