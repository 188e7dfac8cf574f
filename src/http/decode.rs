//! Request body framing: a decoder that takes body bytes out of the connection's read buffer
//! as they arrive, for a `Content-Length` body or a chunked one (RFC 9112 §7.1).
//!
//! Body data is split off the read buffer as `Bytes`, never copied. Every line the chunked
//! framing reads (size lines with extensions, trailers) is bounded, and a size that does not
//! fit in a `u64` is an error rather than a wrap-around: these are the places where a peer
//! could otherwise make the server buffer without end or misread where a message ends.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::head::Framing;

/// The longest chunk-size line we accept (size, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 4096;
/// The most trailer bytes and fields we accept after the last chunk.
const MAX_TRAILER_BYTES: usize = 8 * 1024;
const MAX_TRAILERS: usize = 32;

/// Why a body could not be decoded. The connection cannot be reused after one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyError(pub(crate) &'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Body bytes (never empty).
    Data(Bytes),
    /// The buffer holds no complete piece: read more from the peer.
    NeedMore,
    /// The body has ended.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `remaining` bytes of a `Content-Length` body.
    Length(u64),
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk with this many bytes left.
    Chunk(u64),
    /// Expecting the CRLF that ends a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer fields until an empty line; `bytes` seen so far.
    Trailers {
        bytes: usize,
    },
    Done,
    /// Everything until the peer closes (a response without length or chunking).
    UntilClose,
}

/// Decodes one request body.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    trailers: Option<HeaderMap>,
}

impl Decoder {
    pub(crate) fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size,
        };
        Decoder {
            state,
            trailers: None,
        }
    }

    /// A decoder for a response body delimited by the server closing the connection: every
    /// byte is body, and the caller ends it at EOF.
    pub(crate) fn until_close() -> Decoder {
        Decoder {
            state: State::UntilClose,
            trailers: None,
        }
    }

    /// Whether EOF is the body's end rather than a truncation.
    pub(crate) fn ends_at_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Whether the body has been read to its end.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// For a `Content-Length` body, how many bytes are still to come.
    pub(crate) fn remaining_length(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Trailer fields of a chunked body, once it is done (empty when there were none).
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Takes the next piece of body out of `buf`, at most `max` bytes of data.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut, max: usize) -> Result<Step, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = buf.len().min(max.max(1));
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                State::Length(remaining) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = take_len(remaining, buf.len(), max);
                    self.state = match remaining - n as u64 {
                        0 => State::Done,
                        left => State::Length(left),
                    };
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                State::Chunk(remaining) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = take_len(remaining, buf.len(), max);
                    self.state = match remaining - n as u64 {
                        0 => State::ChunkEnd,
                        left => State::Chunk(left),
                    };
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BodyError("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Size => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE, "chunk size line too long")?
                    else {
                        return Ok(Step::NeedMore);
                    };
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers { bytes: 0 }
                    } else {
                        State::Chunk(size)
                    };
                }
                State::Trailers { bytes } => {
                    let budget = MAX_TRAILER_BYTES - bytes;
                    let Some(line) = take_line(buf, budget, "trailers too large")? else {
                        return Ok(Step::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                        self.trailers.get_or_insert_with(HeaderMap::new);
                        return Ok(Step::Done);
                    }
                    let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                    if trailers.len() >= MAX_TRAILERS {
                        return Err(BodyError("too many trailer fields"));
                    }
                    let (name, value) = parse_trailer(&line)?;
                    trailers.append(name, value);
                    self.state = State::Trailers {
                        bytes: bytes + line.len() + 2,
                    };
                }
            }
        }
    }
}

fn take_len(remaining: u64, available: usize, max: usize) -> usize {
    remaining.min(available as u64).min(max.max(1) as u64) as usize
}

/// Takes one CRLF-terminated line (CRLF removed) off `buf`; `Ok(None)` if it has not all
/// arrived. A line longer than `limit` is an error even before its end arrives.
fn take_line(
    buf: &mut BytesMut,
    limit: usize,
    too_long: &'static str,
) -> Result<Option<Bytes>, BodyError> {
    let window = &buf[..buf.len().min(limit)];
    let Some(lf) = memchr::memchr(b'\n', window) else {
        return if buf.len() >= limit {
            Err(BodyError(too_long))
        } else {
            Ok(None)
        };
    };
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(BodyError("line not terminated by CRLF"));
    }
    let line = buf.split_to(lf + 1).freeze();
    Ok(Some(line.slice(..lf - 1)))
}

/// `1*HEXDIG [ BWS ";" extensions ]`, at most 16 hex digits so the size fits a `u64`.
fn parse_chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(BodyError("invalid chunk size"));
    }
    let significant = line[..digits].iter().skip_while(|&&b| b == b'0').count();
    if significant > 16 {
        return Err(BodyError("chunk size overflows"));
    }
    let rest = &line[digits..];
    let ext = rest.trim_ascii_start();
    if !(rest.is_empty() || ext.first() == Some(&b';'))
        || rest.iter().any(|&b| b == 0 || b == b'\r')
    {
        return Err(BodyError("invalid chunk size"));
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
        size = (size << 4) | d;
    }
    Ok(size)
}

fn parse_trailer(line: &[u8]) -> Result<(HeaderName, HeaderValue), BodyError> {
    let colon = memchr::memchr(b':', line).ok_or(BodyError("malformed trailer field"))?;
    let name = HeaderName::from_bytes(&line[..colon])
        .map_err(|_| BodyError("invalid trailer field name"))?;
    let value = line[colon + 1..].trim_ascii();
    let value = HeaderValue::from_bytes(value).map_err(|_| BodyError("invalid trailer value"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes all of `input`, fed `step` bytes at a time; returns the body and trailers.
    fn decode_all(
        framing: Framing,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, usize), BodyError> {
        let mut d = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match d.decode(&mut buf, 1 << 20)? {
                Step::Data(b) => body.extend_from_slice(&b),
                Step::Done => break,
                Step::NeedMore => {
                    if fed == input.len() {
                        return Err(BodyError("truncated"));
                    }
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
        let trailers = d.take_trailers().map_or(0, |t| t.len());
        assert_eq!(
            &input[fed - buf.len()..fed],
            &buf[..],
            "leftover is the next request"
        );
        Ok((body, trailers))
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let (body, _) = decode_all(Framing::Length(5), b"helloGET /", 3).unwrap();
        assert_eq!(body, b"hello");
    }

    #[test]
    fn chunked_bodies_at_every_split() {
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..input.len() {
            let (body, trailers) = decode_all(Framing::Chunked, input, step).unwrap();
            assert_eq!(body, b"hello world", "step {step}");
            assert_eq!(trailers, 1);
        }
    }

    #[test]
    fn bad_chunked_framing_is_an_error() {
        for bad in [
            &b"zz\r\nhi\r\n0\r\n\r\n"[..],
            b"-1\r\n",
            b"11111111111111111\r\n",
            b"2\r\nhiXX0\r\n\r\n",
            b"2\nhi\r\n0\r\n\r\n",
            b"2 x\r\nhi\r\n0\r\n\r\n",
            b"0\r\nbad trailer\r\n\r\n",
        ] {
            assert!(decode_all(Framing::Chunked, bad, 64).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn long_lines_are_refused_before_they_end() {
        let mut d = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&vec![b'1'; 1][..]);
        buf.extend_from_slice(&[b' '; MAX_CHUNK_LINE]);
        assert!(d.decode(&mut buf, 1024).is_err());
        let mut d = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"0\r\n"[..]);
        buf.extend_from_slice(format!("X: {}", "a".repeat(MAX_TRAILER_BYTES)).as_bytes());
        assert!(d.decode(&mut buf, 1024).is_err());
    }

    #[test]
    fn large_sizes_with_leading_zeros_are_fine() {
        let (body, _) = decode_all(
            Framing::Chunked,
            b"00000000000000000002\r\nhi\r\n0\r\n\r\n",
            7,
        )
        .unwrap();
        assert_eq!(body, b"hi");
    }
}
