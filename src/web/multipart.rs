//! `multipart/form-data` bodies (RFC 7578): what `await request.post()` reads when a form
//! uploads files, and what an HTTP client sends for one.
//!
//! The server reads the whole body first (bounded by `client_max_size`), so [`parse`] works on
//! one [`Bytes`] buffer and hands out every field's content as a zero-copy slice of it: a
//! 50 MB upload is not copied again. Part headers are bounded by [`MultipartLimits`], and any
//! malformed input (truncated, oversized, garbage) is a [`MultipartError`] that says what was
//! wrong and where, never a panic.
//!
//! ```
//! use kettle::web::multipart::{boundary, encode, parse, FormField, MultipartLimits};
//!
//! let fields = vec![
//!     FormField::text("title", "Holiday"),
//!     FormField::file("photo", "beach.jpg", "image/jpeg", &b"\xff\xd8..."[..]),
//! ];
//! let body = encode(&fields, "XyZ");
//! let b = boundary("multipart/form-data; boundary=XyZ").unwrap();
//! let parsed = parse(body, &b, &MultipartLimits::default()).unwrap();
//! assert_eq!(parsed, fields);
//! assert_eq!(parsed[1].filename.as_deref(), Some("beach.jpg"));
//! ```
//!
//! # What the parser accepts
//!
//! - A preamble before the first boundary and an epilogue after the closing `--boundary--`
//!   are ignored; a body without the closing delimiter is an error.
//! - Delimiters inside the body must be `CRLF--boundary`: the boundary text anywhere else
//!   (mid-line, or after a bare LF) is data, and so is `CRLF--boundary` followed by anything
//!   other than `--`, optional spaces and a line end. A bare LF is accepted as the end of a
//!   boundary line or of a header line, as some hand-written clients send it; it is never
//!   accepted before a boundary, where it would change whether a file ends with a newline.
//! - Every part needs `Content-Disposition: form-data` with a `name`. `filename*` (RFC 5987,
//!   UTF-8 or ISO-8859-1) wins over `filename`; raw UTF-8 in quoted strings, which browsers
//!   send, is accepted; backslash escapes in quoted strings are undone (so a Windows path sent
//!   unescaped loses its backslashes, as it does in aiohttp). Header folding is rejected, and
//!   so are two `Content-Disposition` or `Content-Type` headers in a part or two `name`,
//!   `filename` or `filename*` parameters, because a proxy or firewall in front might read the
//!   other copy.
//! - `Content-Transfer-Encoding` is not applied (RFC 7578 deprecates it); the data is returned
//!   as sent.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use memchr::memmem;

/// The longest boundary RFC 2046 allows.
pub const MAX_BOUNDARY_LEN: usize = 70;

/// One field of a submitted form: a text input or an uploaded file.
///
/// `filename` and `content_type` come from the client and are untrusted: a filename may hold
/// `/`, `..` or control characters, so never use it as a path as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    /// The form control's name (`name=` in `Content-Disposition`).
    pub name: String,
    /// The uploaded file's name; `None` for a plain field, `Some("")` for a file input left
    /// empty (browsers still send the part).
    pub filename: Option<String>,
    /// The part's `Content-Type` if it had one; RFC 7578 means `text/plain` when absent.
    pub content_type: Option<String>,
    /// Every header of the part, `Content-Disposition` and `Content-Type` included.
    pub headers: HeaderMap,
    /// The content: a slice of the request body, shared rather than copied.
    pub data: Bytes,
}

impl FormField {
    /// A plain field, with the headers a browser would send for it.
    pub fn text(name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self::build(name.into(), None, None, value.into())
    }

    /// A file field, with the headers a browser would send for it.
    pub fn file(
        name: impl Into<String>,
        filename: impl Into<String>,
        content_type: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Self {
        Self::build(
            name.into(),
            Some(filename.into()),
            Some(content_type.into()),
            data.into(),
        )
    }

    fn build(
        name: String,
        filename: Option<String>,
        content_type: Option<String>,
        data: Bytes,
    ) -> Self {
        // The same bytes `encode` writes, so that parse(encode(x)) == x for these fields.
        // Control characters are percent-encoded first, so the conversions cannot fail; the
        // `if let` only keeps a panic path out of the code.
        let mut headers = HeaderMap::new();
        let disposition = content_disposition(&name, filename.as_deref());
        if let Ok(value) = HeaderValue::from_bytes(&disposition) {
            headers.insert(CONTENT_DISPOSITION, value);
        }
        if let Some(ct) = &content_type {
            if let Ok(value) = HeaderValue::from_bytes(&escape_controls(ct)) {
                headers.insert(CONTENT_TYPE, value);
            }
        }
        FormField {
            name,
            filename,
            content_type,
            headers,
            data,
        }
    }
}

/// Bounds on what a hostile body can make [`parse`] allocate.
///
/// The body's own size is bounded before it gets here (aiohttp's `client_max_size`); these
/// bound the per-part bookkeeping, which a body of tiny parts could otherwise multiply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartLimits {
    /// The most parts a body may have (default 1000).
    pub max_parts: usize,
    /// The most header bytes one part may have, counting line ends and the blank line that
    /// ends them (default 16 KiB).
    pub max_part_headers: usize,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            max_parts: 1000,
            max_part_headers: 16 * 1024,
        }
    }
}

/// Why a multipart body or its `Content-Type` was rejected.
///
/// Parts are numbered from 1 and offsets are bytes from the start of the body, so a message
/// such as "part 3 (at byte 2051): ..." points at the problem. `TooManyParts` and
/// `HeadersTooLarge` are the limits; everything else is malformed input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    /// The `Content-Type` is not `multipart/*`.
    NotMultipart {
        /// The start of the rejected media type.
        content_type: String,
    },
    /// The `Content-Type` has no `boundary` parameter.
    MissingBoundary,
    /// The boundary breaks RFC 2046's rules, or appears twice.
    InvalidBoundary {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `Content-Type` parameters cannot be read.
    MalformedContentType {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// The body has no `--boundary` line at all.
    NoOpeningBoundary,
    /// The body ends inside a part, before the closing `--boundary--`.
    UnexpectedEnd {
        /// The unfinished part.
        part: usize,
        /// Where that part's headers start.
        offset: usize,
    },
    /// The body has more parts than [`MultipartLimits::max_parts`].
    TooManyParts {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A part's headers are longer than [`MultipartLimits::max_part_headers`].
    HeadersTooLarge {
        /// The part.
        part: usize,
        /// Where its headers start.
        offset: usize,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A part's headers are malformed, or lack a usable `Content-Disposition`.
    InvalidPart {
        /// The part.
        part: usize,
        /// The offending header line, or the start of the part's headers.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MultipartError::*;
        match self {
            NotMultipart { content_type } => {
                write!(f, "content type {content_type:?} is not multipart/*")
            }
            MissingBoundary => f.write_str("multipart content type has no boundary parameter"),
            InvalidBoundary { reason } => write!(f, "invalid multipart boundary: {reason}"),
            MalformedContentType { reason } => {
                write!(f, "malformed multipart content type: {reason}")
            }
            NoOpeningBoundary => f.write_str("multipart body contains no --boundary line"),
            UnexpectedEnd { part, offset } => write!(
                f,
                "multipart body ends inside part {part} (at byte {offset}) without the closing \
                 --boundary--"
            ),
            TooManyParts { limit } => write!(f, "multipart body has more than {limit} parts"),
            HeadersTooLarge {
                part,
                offset,
                limit,
            } => write!(
                f,
                "multipart part {part} (at byte {offset}): headers exceed {limit} bytes"
            ),
            InvalidPart {
                part,
                offset,
                reason,
            } => write!(f, "multipart part {part} (at byte {offset}): {reason}"),
        }
    }
}

impl std::error::Error for MultipartError {}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 2046 `bchars`.
fn is_boundary_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

fn check_boundary(boundary: &[u8]) -> Result<(), MultipartError> {
    let reason = if boundary.is_empty() {
        "it is empty"
    } else if boundary.len() > MAX_BOUNDARY_LEN {
        "it is longer than 70 characters"
    } else if !boundary.iter().all(|&b| is_boundary_byte(b)) {
        "it has a character other than letters, digits, space and '()+_,-./:=?"
    } else if boundary.ends_with(b" ") {
        "it ends with a space"
    } else {
        return Ok(());
    };
    Err(MultipartError::InvalidBoundary { reason })
}

/// A header parameter: its name as sent and its value with quotes and escapes undone.
type Param<'a> = (&'a [u8], Vec<u8>);

/// The parameters after a header's first `;`, as `(name, unquoted value)`.
///
/// Quoted values may hold `;` and backslash escapes; empty parameters (`;;`) are skipped.
fn parse_params(input: &[u8]) -> Result<Vec<Param<'_>>, &'static str> {
    let n = input.len();
    let mut i = memchr::memchr(b';', input).unwrap_or(n);
    let mut params = Vec::new();
    while i < n {
        // `input[i]` is the ';' before a parameter.
        i += 1;
        while i < n && is_ows(input[i]) {
            i += 1;
        }
        if i == n || input[i] == b';' {
            continue;
        }
        let name_start = i;
        while i < n && is_token_byte(input[i]) {
            i += 1;
        }
        let name = &input[name_start..i];
        if name.is_empty() {
            return Err("a parameter name has a character that is not allowed");
        }
        while i < n && is_ows(input[i]) {
            i += 1;
        }
        if i == n || input[i] != b'=' {
            return Err("a parameter has no '=' and value");
        }
        i += 1;
        while i < n && is_ows(input[i]) {
            i += 1;
        }
        let mut value = Vec::new();
        if i < n && input[i] == b'"' {
            i += 1;
            loop {
                match input.get(i) {
                    None => return Err("a quoted parameter value is not closed"),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < n => {
                        value.push(input[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < n && input[i] != b';' && input[i] != b'"' && !is_ows(input[i]) {
                value.push(input[i]);
                i += 1;
            }
        }
        while i < n && is_ows(input[i]) {
            i += 1;
        }
        if i < n && input[i] != b';' {
            return Err("unexpected text after a parameter value");
        }
        params.push((name, value));
    }
    Ok(params)
}

/// The text before the first `;`, trimmed: the media type or disposition type.
fn leading_value(input: &[u8]) -> &[u8] {
    trim_ows(&input[..memchr::memchr(b';', input).unwrap_or(input.len())])
}

/// At most 64 characters of untrusted text, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(64).collect()
}

/// Extracts the `boundary` parameter from a `multipart/*` `Content-Type` header value.
///
/// The parameter name is case-insensitive and its value may be quoted. The boundary must
/// follow RFC 2046: 1 to 70 of letters, digits, space and `'()+_,-./:=?`, not ending in a
/// space. Two `boundary` parameters are rejected rather than guessed between, since another
/// parser in front of this one might guess differently.
///
/// ```
/// use kettle::web::multipart::boundary;
///
/// let ct = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW";
/// assert_eq!(boundary(ct).unwrap(), "----WebKitFormBoundary7MA4YWxkTrZu0gW");
/// assert_eq!(boundary("Multipart/Form-Data; Boundary=\"a b:c\"").unwrap(), "a b:c");
/// assert!(boundary("application/json").is_err());
/// ```
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let input = content_type.as_bytes();
    let media_type = leading_value(input);
    let is_multipart = media_type
        .get(..10)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"multipart/"));
    if !is_multipart {
        return Err(MultipartError::NotMultipart {
            content_type: excerpt(media_type),
        });
    }
    let params =
        parse_params(input).map_err(|reason| MultipartError::MalformedContentType { reason })?;
    let mut found = None;
    for (name, value) in params {
        if name.eq_ignore_ascii_case(b"boundary") {
            if found.is_some() {
                return Err(MultipartError::InvalidBoundary {
                    reason: "the content type has more than one boundary parameter",
                });
            }
            found = Some(value);
        }
    }
    let value = found.ok_or(MultipartError::MissingBoundary)?;
    check_boundary(&value)?;
    // check_boundary admits ASCII only.
    Ok(value.iter().map(|&b| b as char).collect())
}

/// How a `--boundary` candidate ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// A part starts at this offset.
    Part(usize),
    /// `--boundary--`: the body is over.
    Close,
}

/// Whether the bytes from `at`, right after `--boundary`, complete a delimiter line.
fn delimiter_end(buf: &[u8], at: usize) -> Option<After> {
    let rest = buf.get(at..)?;
    if rest.starts_with(b"--") {
        return Some(After::Close);
    }
    let pad = rest.iter().take_while(|&&b| is_ows(b)).count();
    match &rest[pad..] {
        [b'\r', b'\n', ..] => Some(After::Part(at + pad + 2)),
        [b'\n', ..] => Some(After::Part(at + pad + 1)),
        _ => None,
    }
}

/// The state of one parse: the body and the `CRLF--boundary` searcher.
struct Scanner<'a> {
    buf: &'a [u8],
    delimiter: &'a [u8],
    finder: memmem::Finder<'a>,
}

impl Scanner<'_> {
    /// The first real delimiter at or after `from`: where its CRLF starts, and what follows.
    fn next_delimiter(&self, mut from: usize) -> Option<(usize, After)> {
        while let Some(found) = self.finder.find(&self.buf[from..]) {
            let start = from + found;
            if let Some(after) = delimiter_end(self.buf, start + self.delimiter.len()) {
                return Some((start, after));
            }
            from = start + 1;
        }
        None
    }

    /// The opening delimiter, which may start the body without a CRLF before it.
    fn opening(&self) -> Result<After, MultipartError> {
        let dash_boundary = &self.delimiter[2..];
        if self.buf.starts_with(dash_boundary) {
            if let Some(after) = delimiter_end(self.buf, dash_boundary.len()) {
                return Ok(after);
            }
        }
        self.next_delimiter(0)
            .map(|(_, after)| after)
            .ok_or(MultipartError::NoOpeningBoundary)
    }

    /// Reads a part's header block starting at `start`; returns it and where the data begins.
    fn headers(
        &self,
        start: usize,
        part: usize,
        max: usize,
    ) -> Result<(HeaderMap, usize), MultipartError> {
        let limit = start.saturating_add(max).min(self.buf.len());
        let mut headers = HeaderMap::new();
        let mut pos = start;
        loop {
            let Some(len) = memchr::memchr(b'\n', &self.buf[pos..limit]) else {
                return Err(if limit < self.buf.len() {
                    MultipartError::HeadersTooLarge {
                        part,
                        offset: start,
                        limit: max,
                    }
                } else {
                    MultipartError::UnexpectedEnd {
                        part,
                        offset: start,
                    }
                });
            };
            let line_start = pos;
            let mut line = &self.buf[pos..pos + len];
            pos += len + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.is_empty() {
                return Ok((headers, pos));
            }
            let invalid = |reason: &str| MultipartError::InvalidPart {
                part,
                offset: line_start,
                reason: format!("{reason}: {:?}", excerpt(line)),
            };
            if is_ows(line[0]) {
                return Err(invalid("folded header lines are not supported"));
            }
            let colon = memchr::memchr(b':', line).ok_or_else(|| invalid("not a header line"))?;
            let name = HeaderName::from_bytes(&line[..colon])
                .map_err(|_| invalid("invalid header name"))?;
            let value = HeaderValue::from_bytes(trim_ows(&line[colon + 1..]))
                .map_err(|_| invalid("header value has control characters"))?;
            // HeaderMap panics past 32768 entries with plain `append`; a large
            // `max_part_headers` could get there.
            headers
                .try_append(name, value)
                .map_err(|_| invalid("too many header lines"))?;
        }
    }
}

/// Decodes an RFC 5987 `charset'language'percent-encoded` value.
fn decode_ext_value(value: &[u8]) -> Result<String, String> {
    let mut pieces = value.splitn(3, |&b| b == b'\'');
    let (Some(charset), Some(_language), Some(encoded)) =
        (pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(format!(
            "filename* is not charset'language'value: {:?}",
            excerpt(value)
        ));
    };
    let raw: Vec<u8> = percent_encoding::percent_decode(encoded).collect();
    if charset.eq_ignore_ascii_case(b"utf-8") {
        String::from_utf8(raw).map_err(|_| "filename* is not valid UTF-8".to_string())
    } else if charset.eq_ignore_ascii_case(b"iso-8859-1") {
        // ISO-8859-1 bytes are exactly the first 256 code points.
        Ok(raw.iter().map(|&b| b as char).collect())
    } else {
        Err(format!(
            "filename* has unsupported charset {:?} (only UTF-8 and ISO-8859-1)",
            excerpt(charset)
        ))
    }
}

/// A field without its data: what the headers say.
struct Described {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
}

/// Reads name, filename and content type from a part's headers.
fn describe(headers: &HeaderMap, part: usize, offset: usize) -> Result<Described, MultipartError> {
    let invalid = |reason: String| MultipartError::InvalidPart {
        part,
        offset,
        reason,
    };
    let single = |header: HeaderName| {
        let mut values = headers.get_all(&header).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid(format!("more than one {header} header")));
        }
        Ok(first)
    };
    let disposition = single(CONTENT_DISPOSITION)?
        .ok_or_else(|| invalid("no Content-Disposition header".to_string()))?
        .as_bytes();
    let kind = leading_value(disposition);
    if !kind.eq_ignore_ascii_case(b"form-data") {
        return Err(invalid(format!(
            "Content-Disposition is {:?}, expected form-data",
            excerpt(kind)
        )));
    }
    let params = parse_params(disposition)
        .map_err(|reason| invalid(format!("malformed Content-Disposition: {reason}")))?;
    let (mut name, mut filename, mut filename_ext) = (None, None, None);
    for (param, value) in params {
        let slot = if param.eq_ignore_ascii_case(b"name") {
            &mut name
        } else if param.eq_ignore_ascii_case(b"filename") {
            &mut filename
        } else if param.eq_ignore_ascii_case(b"filename*") {
            &mut filename_ext
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            // Two parsers could pick different copies; refuse instead of choosing.
            return Err(invalid(format!(
                "Content-Disposition has two {:?} parameters",
                excerpt(param)
            )));
        }
    }
    let utf8 = |bytes: Vec<u8>, what: &str| {
        String::from_utf8(bytes).map_err(|_| invalid(format!("the {what} is not valid UTF-8")))
    };
    let name = name.ok_or_else(|| invalid("Content-Disposition has no name".to_string()))?;
    let name = utf8(name, "field name")?;
    let filename = match (filename_ext, filename) {
        (Some(ext), _) => Some(decode_ext_value(&ext).map_err(invalid)?),
        (None, Some(plain)) => Some(utf8(plain, "filename")?),
        (None, None) => None,
    };
    let content_type = match single(CONTENT_TYPE)? {
        Some(value) => Some(utf8(value.as_bytes().to_vec(), "Content-Type")?),
        None => None,
    };
    Ok(Described {
        name,
        filename,
        content_type,
    })
}

/// Parses a complete `multipart/form-data` body into its fields, in body order.
///
/// `boundary` is the value from [`boundary`] (without the leading `--`). Each field's `data`
/// is a slice of `body`. See the [module documentation](self) for the accepted syntax.
///
/// # Errors
///
/// A [`MultipartError`] if the boundary is invalid, the body has no opening or closing
/// delimiter, a part's headers are malformed or lack `Content-Disposition: form-data` with a
/// name, or a limit is exceeded.
pub fn parse(
    body: Bytes,
    boundary: &str,
    limits: &MultipartLimits,
) -> Result<Vec<FormField>, MultipartError> {
    check_boundary(boundary.as_bytes())?;
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"\r\n--");
    delimiter.extend_from_slice(boundary.as_bytes());
    let scanner = Scanner {
        buf: &body,
        delimiter: &delimiter,
        finder: memmem::Finder::new(&delimiter),
    };

    let mut fields = Vec::new();
    let mut after = scanner.opening()?;
    while let After::Part(start) = after {
        if fields.len() >= limits.max_parts {
            return Err(MultipartError::TooManyParts {
                limit: limits.max_parts,
            });
        }
        let part = fields.len() + 1;
        let (headers, data_start) = scanner.headers(start, part, limits.max_part_headers)?;
        // Check the headers before scanning what may be megabytes of data.
        let described = describe(&headers, part, start)?;
        let (data_end, next) =
            scanner
                .next_delimiter(data_start)
                .ok_or(MultipartError::UnexpectedEnd {
                    part,
                    offset: start,
                })?;
        fields.push(FormField {
            name: described.name,
            filename: described.filename,
            content_type: described.content_type,
            headers,
            data: body.slice(data_start..data_end),
        });
        after = next;
    }
    Ok(fields)
}

/// Percent-encodes control characters, which cannot appear in a header (CR and LF would end
/// it), the way browsers encode newlines in field names.
fn escape_controls(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b < 0x20 || b == 0x7F {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// Writes `text` as a quoted string: backslash-escaped `"` and `\`, raw UTF-8 as browsers
/// send (RFC 7578 §4.2 forbids `filename*` in requests), control characters
/// percent-encoded.
fn push_quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for b in escape_controls(text) {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn content_disposition(name: &str, filename: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + name.len() + filename.map_or(0, str::len));
    out.extend_from_slice(b"form-data; name=");
    push_quoted(&mut out, name);
    if let Some(filename) = filename {
        out.extend_from_slice(b"; filename=");
        push_quoted(&mut out, filename);
    }
    out
}

/// Serialises fields as a `multipart/form-data` body delimited by `boundary`; send it with
/// `Content-Type: multipart/form-data; boundary=...`.
///
/// `Content-Disposition` is written from `name` and `filename`, and `Content-Type` from
/// `content_type`; those two are skipped in `headers`, whose other entries are written as
/// they are. Control characters in the name, filename or content type are percent-encoded
/// (they cannot appear in a header), so only those do not survive [`parse`] unchanged.
///
/// The boundary must not occur in any field's data, or the receiver will cut the data there;
/// [`random_boundary`] makes that vanishingly unlikely for data not crafted against it.
pub fn encode(fields: &[FormField], boundary: &str) -> Bytes {
    let overhead: usize = fields
        .iter()
        .map(|f| {
            96 + 2 * boundary.len() + f.name.len() + f.filename.as_ref().map_or(0, String::len)
        })
        .sum();
    let data: usize = fields.iter().map(|f| f.data.len()).sum();
    let mut out = BytesMut::with_capacity(data + overhead + boundary.len() + 8);
    for field in fields {
        out.put_slice(b"--");
        out.put_slice(boundary.as_bytes());
        out.put_slice(b"\r\nContent-Disposition: ");
        out.put_slice(&content_disposition(&field.name, field.filename.as_deref()));
        out.put_slice(b"\r\n");
        if let Some(ct) = &field.content_type {
            out.put_slice(b"Content-Type: ");
            out.put_slice(&escape_controls(ct));
            out.put_slice(b"\r\n");
        }
        for (name, value) in &field.headers {
            if name == CONTENT_DISPOSITION || name == CONTENT_TYPE {
                continue;
            }
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&field.data);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"--\r\n");
    out.freeze()
}

/// A fresh boundary for [`encode`]: a fixed prefix and 32 hex digits.
///
/// The digits come from the standard library's randomly keyed hasher mixed with a counter and
/// the clock; they are unpredictable enough that ordinary data never contains them, but not a
/// cryptographic secret.
pub fn random_boundary() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut out = String::from("----KettleFormBoundary");
    for _ in 0..2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(nanos);
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MultipartLimits {
        MultipartLimits::default()
    }

    fn parse_str(body: &str, boundary: &str) -> Result<Vec<FormField>, MultipartError> {
        parse(Bytes::from(body.to_string()), boundary, &limits())
    }

    fn part_error(result: Result<Vec<FormField>, MultipartError>) -> (usize, String) {
        match result {
            Err(MultipartError::InvalidPart { part, reason, .. }) => (part, reason),
            other => panic!("expected InvalidPart, got {other:?}"),
        }
    }

    #[test]
    fn boundary_forms() {
        let ok = |ct: &str| boundary(ct).unwrap();
        assert_eq!(ok("multipart/form-data; boundary=abc"), "abc");
        assert_eq!(ok("multipart/form-data;boundary=abc"), "abc");
        assert_eq!(ok("multipart/form-data; boundary=\"abc\""), "abc");
        assert_eq!(ok("MULTIPART/FORM-DATA; BOUNDARY=abc"), "abc");
        assert_eq!(ok("multipart/mixed; boundary = abc ;"), "abc");
        assert_eq!(
            ok("multipart/form-data; charset=\"utf-8; x\"; boundary=a'()+_,-./:=?z"),
            "a'()+_,-./:=?z"
        );
        assert_eq!(
            ok("multipart/form-data; boundary=\"with space\""),
            "with space"
        );
        assert_eq!(ok("multipart/form-data; boundary=\"esc\\aped\""), "escaped");
        let longest = "b".repeat(70);
        assert_eq!(
            ok(&format!("multipart/form-data; boundary={longest}")),
            longest
        );
    }

    #[test]
    fn boundary_errors() {
        let err = |ct: &str| boundary(ct).unwrap_err();
        assert!(matches!(
            err("text/plain; boundary=x"),
            MultipartError::NotMultipart { .. }
        ));
        assert!(matches!(err(""), MultipartError::NotMultipart { .. }));
        assert!(matches!(
            err("multipart"),
            MultipartError::NotMultipart { .. }
        ));
        assert_eq!(err("multipart/form-data"), MultipartError::MissingBoundary);
        assert_eq!(
            err("multipart/form-data; charset=utf-8"),
            MultipartError::MissingBoundary
        );
        for ct in [
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; boundary=\"ends in space \"",
            "multipart/form-data; boundary=\"semi;colon\"",
            "multipart/form-data; boundary=caf\u{e9}",
            "multipart/form-data; boundary=a; boundary=b",
        ] {
            assert!(
                matches!(err(ct), MultipartError::InvalidBoundary { .. }),
                "{ct}"
            );
        }
        let too_long = format!("multipart/form-data; boundary={}", "b".repeat(71));
        assert!(err(&too_long).to_string().contains("70"));
        for ct in [
            "multipart/form-data; boundary=\"unclosed",
            "multipart/form-data; boundary",
            "multipart/form-data; boundary=a b",
            "multipart/form-data; =x",
        ] {
            assert!(
                matches!(err(ct), MultipartError::MalformedContentType { .. }),
                "{ct}"
            );
        }
    }

    #[test]
    fn browser_body() {
        let body = "-----------------------------9051914041544843365972754266\r\n\
            Content-Disposition: form-data; name=\"text\"\r\n\
            \r\n\
            text default\r\n\
            -----------------------------9051914041544843365972754266\r\n\
            Content-Disposition: form-data; name=\"file1\"; filename=\"a.txt\"\r\n\
            Content-Type: text/plain\r\n\
            \r\n\
            Content of a.txt.\r\n\
            \r\n\
            -----------------------------9051914041544843365972754266\r\n\
            Content-Disposition: form-data; name=\"file2\"; filename=\"a.html\"\r\n\
            Content-Type: text/html\r\n\
            \r\n\
            <!DOCTYPE html><title>Content of a.html.</title>\r\n\
            \r\n\
            -----------------------------9051914041544843365972754266--\r\n";
        let fields = parse_str(
            body,
            "---------------------------9051914041544843365972754266",
        )
        .unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].name, "text");
        assert_eq!(fields[0].filename, None);
        assert_eq!(fields[0].content_type, None);
        assert_eq!(fields[0].data, "text default");
        assert_eq!(fields[1].name, "file1");
        assert_eq!(fields[1].filename.as_deref(), Some("a.txt"));
        assert_eq!(fields[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(fields[1].data, "Content of a.txt.\r\n");
        assert_eq!(
            fields[2].data,
            "<!DOCTYPE html><title>Content of a.html.</title>\r\n"
        );
        assert_eq!(fields[2].headers.len(), 2);
        assert_eq!(fields[2].headers[CONTENT_TYPE], "text/html");
    }

    #[test]
    fn data_is_a_slice_of_the_body() {
        let body = encode(
            &[FormField::file(
                "f",
                "big.bin",
                "application/octet-stream",
                vec![7u8; 100_000],
            )],
            "zz",
        );
        let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        let fields = parse(body.clone(), "zz", &limits()).unwrap();
        let data = &fields[0].data;
        assert_eq!(data.len(), 100_000);
        assert!(range.contains(&(data.as_ptr() as usize)));
        assert!(range.contains(&(data.as_ptr() as usize + data.len() - 1)));
    }

    #[test]
    fn preamble_and_epilogue() {
        let body = "This is the preamble. --b is not at a line start.\r\n\
            --b\r\n\
            Content-Disposition: form-data; name=a\r\n\
            \r\n\
            1\r\n\
            --b--\r\n\
            This is the epilogue.\r\n--b\r\nContent-Disposition: form-data; name=z\r\n\r\n";
        let fields = parse_str(body, "b").unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(
            (fields[0].name.as_str(), &fields[0].data[..]),
            ("a", &b"1"[..])
        );
        // Epilogue without a line end, and none at all.
        assert_eq!(
            parse_str(
                "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--",
                "b"
            )
            .unwrap()
            .len(),
            1
        );
        assert_eq!(parse_str("--b--", "b").unwrap(), []);
        assert_eq!(parse_str("preamble\r\n--b--\r\n", "b").unwrap(), []);
    }

    #[test]
    fn boundary_text_inside_data() {
        let data = "x--b y\n--b\r\n--bb\r\n--b-\r\n--b x\r\n--b\tx";
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=f; filename=t\r\n\r\n{data}\r\n--b--\r\n"
        );
        let fields = parse_str(&body, "b").unwrap();
        assert_eq!(fields[0].data, data);
        // Transport padding after a delimiter is allowed.
        let body = "--b \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b  \r\n\
            Content-Disposition: form-data; name=c\r\n\r\n2\r\n--b--";
        let fields = parse_str(body, "b").unwrap();
        assert_eq!(
            (&fields[0].data[..], &fields[1].data[..]),
            (&b"1"[..], &b"2"[..])
        );
    }

    #[test]
    fn empty_parts() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\n\r\n\
            --b\r\nContent-Disposition: form-data; name=file; filename=\"\"\r\n\
            Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n";
        let fields = parse_str(body, "b").unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].name, "");
        assert!(fields[0].data.is_empty());
        assert_eq!(fields[1].filename.as_deref(), Some(""));
        assert!(fields[1].data.is_empty());
        // A part with no headers at all has no name.
        let (part, reason) = part_error(parse_str("--b\r\n\r\ndata\r\n--b--", "b"));
        assert_eq!(part, 1);
        assert!(reason.contains("no Content-Disposition"), "{reason}");
    }

    #[test]
    fn quoted_and_escaped_names() {
        let body =
            "--b\r\nContent-Disposition: form-data; name=\"a \\\"quoted\\\" \\\\ name; x\"\r\n\
            \r\nv\r\n--b\r\ncontent-disposition: FORM-DATA ; NAME = plain ; Filename=\"x.txt\"\r\n\
            \r\nw\r\n--b--";
        let fields = parse_str(body, "b").unwrap();
        assert_eq!(fields[0].name, "a \"quoted\" \\ name; x");
        assert_eq!(fields[1].name, "plain");
        assert_eq!(fields[1].filename.as_deref(), Some("x.txt"));
    }

    #[test]
    fn unicode_filenames() {
        let part = |disposition: &str| {
            let body = format!("--b\r\nContent-Disposition: {disposition}\r\n\r\nd\r\n--b--");
            parse_str(&body, "b").map(|mut f| f.remove(0).filename)
        };
        assert_eq!(
            part("form-data; name=f; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt")
                .unwrap()
                .as_deref(),
            Some("\u{20ac} rates.txt")
        );
        // filename* wins wherever it appears, quoted or not, with a language tag.
        assert_eq!(
            part("form-data; filename*=\"utf-8'en'%C3%A9t%C3%A9\"; name=f; filename=x")
                .unwrap()
                .as_deref(),
            Some("\u{e9}t\u{e9}")
        );
        assert_eq!(
            part("form-data; name=f; filename*=iso-8859-1''caf%E9")
                .unwrap()
                .as_deref(),
            Some("caf\u{e9}")
        );
        // Raw UTF-8 in the quoted string, as browsers send.
        assert_eq!(
            part("form-data; name=f; filename=\"\u{65e5}\u{672c}.png\"")
                .unwrap()
                .as_deref(),
            Some("\u{65e5}\u{672c}.png")
        );
        for bad in [
            "form-data; name=f; filename*=UTF-8''%FF",
            "form-data; name=f; filename*=KOI8-R''x",
            "form-data; name=f; filename*=nonsense",
        ] {
            assert!(part(bad).is_err(), "{bad}");
        }
        let body =
            b"--b\r\nContent-Disposition: form-data; name=f; filename=\"\xff\"\r\n\r\nd\r\n--b--";
        let (_, reason) = part_error(parse(Bytes::from_static(body), "b", &limits()));
        assert!(reason.contains("UTF-8"), "{reason}");
    }

    #[test]
    fn disposition_errors() {
        let check = |headers: &str, expect: &str| {
            let body = format!("--b\r\nContent-Disposition: form-data; name=ok\r\n\r\n1\r\n--b\r\n{headers}\r\n\r\nd\r\n--b--");
            let (part, reason) = part_error(parse_str(&body, "b"));
            assert_eq!(part, 2);
            assert!(reason.contains(expect), "{headers}: {reason}");
        };
        check("Content-Disposition: form-data", "no name");
        check("Content-Disposition: form-data; filename=a", "no name");
        check(
            "Content-Disposition: attachment; name=a",
            "expected form-data",
        );
        check("Content-Disposition: form-data; name=a; name=b", "two");
        check(
            "Content-Disposition: form-data; name=a; filename=x; FILENAME=y",
            "two",
        );
        check("Content-Disposition: form-data; name=\"a", "not closed");
        check(
            "Content-Disposition: form-data; name=a b",
            "unexpected text",
        );
        check(
            "Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b",
            "more than one content-disposition",
        );
        check(
            "Content-Disposition: form-data; name=a\r\nContent-Type: a\r\nContent-Type: b",
            "more than one content-type",
        );
        check("X-Other: 1", "no Content-Disposition");
        check("Content-Disposition form-data", "not a header line");
        check("Bad Name: x", "invalid header name");
        check(
            "Content-Disposition: form-data; name=a\r\n folded",
            "folded",
        );
        check(
            "Content-Disposition: form-data; name=a\r\nX: a\rb",
            "control characters",
        );
    }

    #[test]
    fn error_messages_say_where() {
        let body = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b\r\nnot a header\r\n\r\n--b--";
        let err = parse_str(body, "b").unwrap_err();
        let at = body.find("not a header").unwrap();
        assert_eq!(
            err.to_string(),
            format!("multipart part 2 (at byte {at}): not a header line: \"not a header\"")
        );
        let err = parse_str(
            "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1",
            "b",
        )
        .unwrap_err();
        assert_eq!(err, MultipartError::UnexpectedEnd { part: 1, offset: 5 });
        assert!(err.to_string().contains("part 1"));
    }

    #[test]
    fn bare_lf_in_headers() {
        let body = "--b\nContent-Disposition: form-data; name=a\nContent-Type: text/plain\n\n\
            line one\nline two\r\n--b\n\
            Content-Disposition: form-data; name=c\r\n\n2\n\r\n--b--\n";
        let fields = parse_str(body, "b").unwrap();
        assert_eq!(fields[0].data, "line one\nline two");
        assert_eq!(fields[0].content_type.as_deref(), Some("text/plain"));
        assert_eq!(fields[1].data, "2\n");
        // Before a boundary, a bare LF does not delimit.
        assert!(matches!(
            parse_str(
                "--b\nContent-Disposition: form-data; name=a\n\nx\n--b--\n",
                "b"
            ),
            Err(MultipartError::UnexpectedEnd { part: 1, .. })
        ));
    }

    #[test]
    fn missing_delimiters() {
        assert_eq!(parse_str("", "b"), Err(MultipartError::NoOpeningBoundary));
        assert_eq!(
            parse_str("just text", "b"),
            Err(MultipartError::NoOpeningBoundary)
        );
        assert_eq!(
            parse_str("--bb\r\n", "b"),
            Err(MultipartError::NoOpeningBoundary)
        );
        assert!(matches!(
            parse_str(
                "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b\r\n",
                "b"
            ),
            Err(MultipartError::UnexpectedEnd { part: 2, .. })
        ));
        assert!(matches!(
            parse_str(
                "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n",
                "b"
            ),
            Err(MultipartError::UnexpectedEnd { part: 1, .. })
        ));
        assert!(matches!(
            parse_str("--b--", ""),
            Err(MultipartError::InvalidBoundary { .. })
        ));
        assert!(matches!(
            parse_str("--b--", "a\r\nb"),
            Err(MultipartError::InvalidBoundary { .. })
        ));
    }

    #[test]
    fn too_many_parts() {
        let fields: Vec<FormField> = (0..5)
            .map(|i| FormField::text(format!("f{i}"), "v"))
            .collect();
        let body = encode(&fields, "b");
        let small = MultipartLimits {
            max_parts: 4,
            ..limits()
        };
        assert_eq!(
            parse(body.clone(), "b", &small),
            Err(MultipartError::TooManyParts { limit: 4 })
        );
        let exact = MultipartLimits {
            max_parts: 5,
            ..limits()
        };
        assert_eq!(parse(body, "b", &exact).unwrap(), fields);
        let none = MultipartLimits {
            max_parts: 0,
            ..limits()
        };
        assert_eq!(parse(Bytes::from_static(b"--b--"), "b", &none).unwrap(), []);
        assert_eq!(MultipartLimits::default().max_parts, 1000);
    }

    #[test]
    fn oversized_part_headers() {
        let header_block = "Content-Disposition: form-data; name=a\r\nX-Pad: 123\r\n\r\n";
        let body = format!("--b\r\n{header_block}data\r\n--b--");
        let fits = MultipartLimits {
            max_part_headers: header_block.len(),
            ..limits()
        };
        assert_eq!(parse_str(&body, "b").unwrap().len(), 1);
        assert_eq!(
            parse(Bytes::from(body.clone()), "b", &fits).unwrap().len(),
            1
        );
        let short = MultipartLimits {
            max_part_headers: header_block.len() - 1,
            ..limits()
        };
        assert_eq!(
            parse(Bytes::from(body), "b", &short),
            Err(MultipartError::HeadersTooLarge {
                part: 1,
                offset: 5,
                limit: header_block.len() - 1
            })
        );
        // An endless header line is cut off at the default limit.
        let endless = format!("--b\r\nX: {}", "a".repeat(100_000));
        assert!(matches!(
            parse_str(&endless, "b"),
            Err(MultipartError::HeadersTooLarge { limit: 16384, .. })
        ));
        // Many tiny header lines with a huge limit: an error, not HeaderMap's panic.
        let many: String = (0..40_000).map(|i| format!("h{i}:\r\n")).collect();
        let many = format!("--b\r\n{many}\r\n--b--");
        let huge = MultipartLimits {
            max_part_headers: usize::MAX,
            ..limits()
        };
        let (_, reason) = part_error(parse(Bytes::from(many), "b", &huge));
        assert!(reason.contains("too many"), "{reason}");
    }

    fn sample_fields() -> Vec<FormField> {
        let mut with_header = FormField::text("extra", "x");
        with_header
            .headers
            .append("x-custom", HeaderValue::from_static("one"));
        with_header
            .headers
            .append("x-custom", HeaderValue::from_static("two"));
        vec![
            FormField::text("title", "Hello, world"),
            FormField::text("", ""),
            FormField::text("quote\"back\\slash; x=y", "text\r\nwith lines\r\n"),
            FormField::text("\u{540d}\u{524d}", "\u{5024}"),
            FormField::file(
                "upload",
                "r\u{e9}sum\u{e9} \"v2\".pdf",
                "application/pdf",
                &b"%PDF\0\xff\r\n-- x--b\n--b--"[..],
            ),
            FormField::file("empty", "", "application/octet-stream", Bytes::new()),
            with_header,
        ]
    }

    #[test]
    fn round_trip() {
        let fields = sample_fields();
        for boundary in [
            "b",
            "----KettleFormBoundary0123456789abcdef",
            "with space:=?",
            &random_boundary(),
        ] {
            let body = encode(&fields, boundary);
            assert_eq!(
                parse(body, boundary, &limits()).unwrap(),
                fields,
                "{boundary}"
            );
        }
        assert_eq!(parse(encode(&[], "b"), "b", &limits()).unwrap(), []);
    }

    #[test]
    fn encode_escapes_control_characters() {
        let mut field = FormField::file("a\r\nX-Injected: 1", "f\n.txt", "text/plain\r\nX: y", "d");
        field.content_type = Some("text/plain\r\nX: y".into());
        let body = encode(&[field], "b");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("name=\"a%0D%0AX-Injected: 1\"; filename=\"f%0A.txt\""),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/plain%0D%0AX: y\r\n"),
            "{text}"
        );
        let parsed = parse(body, "b", &limits()).unwrap();
        assert_eq!(parsed[0].name, "a%0D%0AX-Injected: 1");
        assert_eq!(parsed[0].headers.len(), 2);
    }

    #[test]
    fn random_boundaries_are_valid_and_distinct() {
        let a = random_boundary();
        let b = random_boundary();
        assert_ne!(a, b);
        assert!(a.len() <= MAX_BOUNDARY_LEN);
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={a}")).unwrap(),
            a
        );
    }

    #[test]
    fn truncated_at_every_offset() {
        let body = encode(&sample_fields(), "bound");
        let close = body.len() - 2; // `--bound--` ends here; the CRLF after it is epilogue.
        for len in 0..body.len() {
            let result = parse(body.slice(..len), "bound", &limits());
            if len < close {
                assert!(result.is_err(), "prefix of {len} bytes parsed: {result:?}");
            } else {
                assert_eq!(result.unwrap(), sample_fields());
            }
        }
    }

    /// Garbage and mutated bodies: every input yields Ok or Err, never a panic, and whatever
    /// parses respects the limits.
    #[test]
    fn fuzz_no_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = encode(&sample_fields(), "b");
        let fragments: [&[u8]; 10] = [
            b"\r\n",
            b"\n",
            b"--",
            b"--b",
            b"\r\n--b",
            b"\r\n--b--",
            b"\"",
            b";",
            b"\\",
            b": ",
        ];
        let small = MultipartLimits {
            max_parts: 3,
            max_part_headers: 64,
        };
        for round in 0..6_000 {
            let mut input: Vec<u8> = if round % 3 == 0 {
                (0..next() % 200).map(|_| next() as u8).collect()
            } else {
                valid.to_vec()
            };
            for _ in 0..=next() % 6 {
                let at = (next() as usize) % (input.len() + 1);
                match next() % 4 {
                    0 if at < input.len() => input[at] = next() as u8,
                    1 => {
                        let fragment = fragments[(next() % 10) as usize];
                        input.splice(at..at, fragment.iter().copied());
                    }
                    2 => input.truncate(at),
                    _ if at < input.len() => {
                        input.remove(at);
                    }
                    _ => {}
                }
            }
            let body = Bytes::from(input);
            for limits in [&limits(), &small] {
                if let Ok(fields) = parse(body.clone(), "b", limits) {
                    assert!(fields.len() <= limits.max_parts);
                    for field in &fields {
                        assert!(field.data.len() <= body.len());
                    }
                }
            }
            let text = String::from_utf8_lossy(&body);
            let _ = boundary(&text);
            let _ = boundary(&format!("multipart/form-data; {text}"));
        }
    }
}
