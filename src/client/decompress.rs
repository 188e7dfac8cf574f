//! Undoing `Content-Encoding` as the body streams in: gzip, deflate (zlib-wrapped, or raw as
//! some servers send it) and br.
//!
//! Each piece of compressed input is decoded as it arrives, so memory follows the chunk size,
//! not the body size. One input piece can still expand a lot (deflate tops out near 1032:1),
//! which is why the connection reads at most 16 KiB at a time.

use std::io::{self, Write};

use bytes::Bytes;
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// The codings [`Decompressor::for_encoding`] knows, in `Accept-Encoding` form.
pub(crate) const ACCEPT_ENCODING: &str = "gzip, deflate, br";

/// A streaming decoder for one body.
pub(crate) enum Decompressor {
    Gzip(MultiGzDecoder<Vec<u8>>),
    /// `deflate` before its first two bytes say whether a zlib header is there.
    DeflateUndecided(Vec<u8>),
    Zlib(ZlibDecoder<Vec<u8>>),
    RawDeflate(DeflateDecoder<Vec<u8>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
}

impl Decompressor {
    /// A decoder for a `Content-Encoding` value; `None` for `identity` or a coding we do not
    /// know (the body is then handed over as it came, like aiohttp does).
    pub(crate) fn for_encoding(encoding: &str) -> Option<Decompressor> {
        let enc = encoding.trim();
        if enc.eq_ignore_ascii_case("gzip") || enc.eq_ignore_ascii_case("x-gzip") {
            Some(Decompressor::Gzip(MultiGzDecoder::new(Vec::new())))
        } else if enc.eq_ignore_ascii_case("deflate") {
            Some(Decompressor::DeflateUndecided(Vec::new()))
        } else if enc.eq_ignore_ascii_case("br") {
            Some(Decompressor::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(Vec::new(), 4096),
            )))
        } else {
            None
        }
    }

    /// Decodes `input`; returns what it produced (possibly nothing yet).
    pub(crate) fn feed(&mut self, input: &[u8]) -> io::Result<Bytes> {
        if let Decompressor::DeflateUndecided(head) = self {
            head.extend_from_slice(input);
            if head.len() < 2 {
                return Ok(Bytes::new());
            }
            let head = std::mem::take(head);
            // RFC 9110 says deflate means zlib-wrapped; some servers send raw deflate. A zlib
            // header has method 8 in the low nibble and a big-endian value divisible by 31.
            let zlib =
                head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
            *self = if zlib {
                Decompressor::Zlib(ZlibDecoder::new(Vec::new()))
            } else {
                Decompressor::RawDeflate(DeflateDecoder::new(Vec::new()))
            };
            return self.feed(&head);
        }
        match self {
            Decompressor::Gzip(d) => {
                d.write_all(input)?;
                Ok(take(d.get_mut()))
            }
            Decompressor::Zlib(d) => {
                d.write_all(input)?;
                Ok(take(d.get_mut()))
            }
            Decompressor::RawDeflate(d) => {
                d.write_all(input)?;
                Ok(take(d.get_mut()))
            }
            Decompressor::Brotli(d) => {
                d.write_all(input)?;
                Ok(take(d.get_mut()))
            }
            Decompressor::DeflateUndecided(_) => unreachable!("decided above"),
        }
    }

    /// Ends the stream: flushes what is left and checks the compressed data was complete.
    pub(crate) fn finish(&mut self) -> io::Result<Bytes> {
        match self {
            Decompressor::Gzip(d) => {
                d.try_finish()?;
                Ok(take(d.get_mut()))
            }
            Decompressor::Zlib(d) => {
                d.try_finish()?;
                Ok(take(d.get_mut()))
            }
            Decompressor::RawDeflate(d) => {
                d.try_finish()?;
                Ok(take(d.get_mut()))
            }
            Decompressor::Brotli(d) => {
                d.flush()?;
                let out = take(d.get_mut());
                // DecompressorWriter::close reports a stream that ended early.
                d.close()?;
                Ok(out)
            }
            Decompressor::DeflateUndecided(head) if head.is_empty() => Ok(Bytes::new()),
            Decompressor::DeflateUndecided(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "deflate body shorter than its header",
            )),
        }
    }
}

fn take(out: &mut Vec<u8>) -> Bytes {
    Bytes::from(std::mem::take(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn roundtrip(encoding: &str, compressed: &[u8], step: usize) -> Vec<u8> {
        let mut d = Decompressor::for_encoding(encoding).unwrap();
        let mut out = Vec::new();
        for piece in compressed.chunks(step) {
            out.extend_from_slice(&d.feed(piece).unwrap());
        }
        out.extend_from_slice(&d.finish().unwrap());
        out
    }

    fn sample() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| i.to_string().into_bytes())
            .collect()
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_in_any_piece_size() {
        let data = sample();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = ZlibEncoder::new(Vec::new(), Compression::default());
        zl.write_all(&data).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&data).unwrap();
        let raw = raw.finish().unwrap();
        for step in [1, 7, 1000, 1 << 20] {
            assert_eq!(roundtrip("gzip", &gz, step), data);
            assert_eq!(roundtrip("deflate", &zl, step), data);
            assert_eq!(roundtrip("deflate", &raw, step), data);
        }
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let mut d = Decompressor::for_encoding("gzip").unwrap();
        assert!(d.feed(b"this is not gzip at all").is_err());
        let data = sample();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut d = Decompressor::for_encoding("gzip").unwrap();
        let _ = d.feed(&gz[..gz.len() / 2]).unwrap();
        assert!(d.finish().is_err());
    }

    #[test]
    fn unknown_codings_pass_through() {
        assert!(Decompressor::for_encoding("identity").is_none());
        assert!(Decompressor::for_encoding("zstd").is_none());
    }
}
