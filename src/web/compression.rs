//! Response compression (aiohttp's `response.enable_compression()`): gzip, deflate or br as
//! the request's `Accept-Encoding` allows, for whole bodies big enough to gain from it.
//!
//! The request is gone by the time its response is written, so the protocol reads the
//! codings a request accepts into a bitmask when it parses the head ([`accepted`]); a
//! response that asked for compression is then encoded just before it is written
//! ([`apply`]). Streamed responses, files, 206 partial content, bodies under
//! [`MIN_SIZE`] and bodies that already have a `Content-Encoding` are left as they are.

use std::io::Write;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_ENCODING, VARY};
use http::StatusCode;

use super::handler::Next;
use super::request::Request;
use super::response::{Body, Response};

/// Bodies smaller than this are sent as they are: the gain would not pay for the work, and
/// a compressed tiny body can be larger than the original.
pub const MIN_SIZE: usize = 1024;

/// A content coding the server can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib-wrapped deflate (RFC 1950), as RFC 9110 defines it.
    Deflate,
    /// `br`: Brotli (RFC 7932), at quality 5, a middle setting suited to bodies made per
    /// request. It is never chosen by itself over gzip and deflate: aiohttp does not produce
    /// it, and gzip costs less CPU. So it is used when asked for with
    /// [`Response::enable_compression_with`], or when the client accepts nothing else.
    Br,
}

impl ContentCoding {
    fn bit(self) -> u8 {
        match self {
            ContentCoding::Gzip => 1,
            ContentCoding::Deflate => 2,
            ContentCoding::Br => 4,
        }
    }

    fn token(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Deflate => "deflate",
            ContentCoding::Br => "br",
        }
    }
}

/// The codings an `Accept-Encoding` value accepts, as a bitmask: `gzip`, `x-gzip`,
/// `deflate`, `br`, or `*` for all; a `q=0` parameter refuses one.
pub(crate) fn accepted<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> u8 {
    let mut mask = 0;
    for (name, value) in fields {
        if name.len() != 15 || !name.eq_ignore_ascii_case(b"accept-encoding") {
            continue;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim();
                p.len() >= 2
                    && p[..2].eq_ignore_ascii_case("q=")
                    && p[2..].trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            });
            let bits =
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    1
                } else if coding.eq_ignore_ascii_case("deflate") {
                    2
                } else if coding.eq_ignore_ascii_case("br") {
                    4
                } else if coding == "*" {
                    7
                } else {
                    0
                };
            if refused {
                mask &= !bits;
            } else {
                mask |= bits;
            }
        }
    }
    mask
}

/// Compresses `response` in place if it asked for it and qualifies, given the codings the
/// request accepted.
pub(crate) fn apply(response: &mut Response, accepted: u8) {
    let Some(wanted) = response.compression() else {
        return;
    };
    let status = response.status();
    if status == StatusCode::PARTIAL_CONTENT
        || !crate::http::encode::status_allows_body(status)
        || response.headers().contains_key(CONTENT_ENCODING)
    {
        return;
    }
    if !matches!(response.body, Body::Full(_)) {
        return;
    }
    // Whether or not it gets compressed, the response depends on Accept-Encoding.
    response
        .headers_mut()
        .append(VARY, HeaderValue::from_static("Accept-Encoding"));
    let Body::Full(body) = &response.body else {
        return;
    };
    if body.len() < MIN_SIZE {
        return;
    }
    let coding = match wanted {
        Some(c) if accepted & c.bit() != 0 => c,
        Some(_) => return,
        None if accepted & 1 != 0 => ContentCoding::Gzip,
        None if accepted & 2 != 0 => ContentCoding::Deflate,
        None if accepted & 4 != 0 => ContentCoding::Br,
        None => return,
    };
    let compressed = match encode(coding, body) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("response compression failed, sending it as it is: {e}");
            return;
        }
    };
    response.body = Body::Full(compressed);
    response
        .headers_mut()
        .insert(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
}

fn encode(coding: ContentCoding, body: &[u8]) -> std::io::Result<Bytes> {
    let level = flate2::Compression::default();
    let out = Vec::with_capacity(body.len() / 3 + 64);
    let out = match coding {
        ContentCoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(out, level);
            e.write_all(body)?;
            e.finish()?
        }
        ContentCoding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(out, level);
            e.write_all(body)?;
            e.finish()?
        }
        ContentCoding::Br => {
            // Quality 5 of 11, a 4 MiB window (lgwin 22, the format's default).
            let mut e = brotli::CompressorWriter::new(out, 4096, 5, 22);
            e.write_all(body)?;
            e.flush()?;
            e.into_inner()
        }
    };
    Ok(Bytes::from(out))
}

/// A middleware that enables compression on every response (aiohttp applications do this
/// with a middleware calling `enable_compression()`): add it with
/// `app.add_middleware(web::compression_middleware)`.
pub async fn compression_middleware(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response.enable_compression();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(value: &str) -> u8 {
        accepted([(&b"Accept-Encoding"[..], value.as_bytes())].into_iter())
    }

    #[test]
    fn accept_encoding_is_read_with_q_values() {
        assert_eq!(mask("gzip, deflate, br"), 7);
        assert_eq!(mask("br"), 4);
        assert_eq!(mask("GZIP;q=0.5"), 1);
        assert_eq!(mask("gzip;q=0, deflate"), 2);
        assert_eq!(mask("*"), 7);
        assert_eq!(mask("*, gzip;q=0"), 6);
        assert_eq!(mask("identity"), 0);
        assert_eq!(accepted([(&b"accept"[..], &b"gzip"[..])].into_iter()), 0);
    }
}
