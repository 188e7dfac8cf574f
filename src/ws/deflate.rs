//! permessage-deflate (RFC 7692): the offer and answer in the handshake, and each message's
//! payload compressed as raw DEFLATE ending in a sync flush whose last four bytes
//! (`00 00 ff ff`) are left off the wire.
//!
//! flate2 is already Kettle's (gzip responses and bodies), on its pure-Rust backend. That
//! backend always uses a 32 KiB window, so an offer asking *us* to compress with a smaller
//! one (`server_max_window_bits` < 15 on the server, `client_max_window_bits` < 15 answered
//! to the client) is declined; inflating works for any window.

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::close_code;
use super::frame::Violation;

/// The four bytes a sync flush ends with, left off the wire (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The parameters both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Params {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    /// Whether the offer named `server_max_window_bits` (the answer must then carry it).
    pub(crate) server_max_window_bits: bool,
}

impl Params {
    /// The `Sec-WebSocket-Extensions` value a server answers with.
    pub(crate) fn response_header(&self) -> String {
        let mut v = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            v.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            v.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits {
            v.push_str("; server_max_window_bits=15");
        }
        v
    }
}

/// What a client offers: the extension, telling the server it may limit our window (it
/// never needs to).
pub(crate) const CLIENT_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The extensions in a `Sec-WebSocket-Extensions` value: `(name, [(param, value)])`.
fn extensions(value: &str) -> impl Iterator<Item = (&str, Vec<(&str, Option<&str>)>)> {
    value.split(',').map(|ext| {
        let mut parts = ext.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let params = parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                None => (p, None),
            })
            .collect();
        (name, params)
    })
}

fn window_bits(v: Option<&str>) -> Option<u8> {
    v?.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

/// The server's choice among a client's offers (header values in order): the first
/// permessage-deflate offer it can honour, if any.
pub(crate) fn accept_offer<'a>(values: impl Iterator<Item = &'a str>) -> Option<Params> {
    for value in values {
        'offers: for (name, params) in extensions(value) {
            if !name.eq_ignore_ascii_case("permessage-deflate") {
                continue;
            }
            let mut p = Params::default();
            let mut seen = Vec::new();
            for (key, val) in params {
                if seen.contains(&key) {
                    continue 'offers;
                }
                seen.push(key);
                match key {
                    "server_no_context_takeover" if val.is_none() => {
                        p.server_no_context_takeover = true
                    }
                    "client_no_context_takeover" if val.is_none() => {
                        p.client_no_context_takeover = true
                    }
                    // We can only compress with the full window.
                    "server_max_window_bits" if window_bits(val) == Some(15) => {
                        p.server_max_window_bits = true
                    }
                    // The client may shrink its own window: we inflate any.
                    "client_max_window_bits" if val.is_none() || window_bits(val).is_some() => {}
                    _ => continue 'offers,
                }
            }
            return Some(p);
        }
    }
    None
}

/// The client's reading of a server's answer: `Ok(None)` without the extension, an error
/// for an answer it did not offer or cannot honour (the client must then fail the
/// connection, §5 of RFC 7692).
pub(crate) fn read_answer<'a>(
    values: impl Iterator<Item = &'a str>,
) -> Result<Option<Params>, String> {
    let mut found = None;
    for value in values {
        for (name, params) in extensions(value) {
            if name.is_empty() {
                continue;
            }
            if !name.eq_ignore_ascii_case("permessage-deflate") || found.is_some() {
                return Err(format!(
                    "the server answered with an extension not offered: {name}"
                ));
            }
            let mut p = Params::default();
            for (key, val) in params {
                match key {
                    "server_no_context_takeover" => p.server_no_context_takeover = true,
                    "client_no_context_takeover" => p.client_no_context_takeover = true,
                    "server_max_window_bits" if window_bits(val).is_some() => {}
                    "client_max_window_bits" if window_bits(val) == Some(15) => {}
                    _ => {
                        return Err(format!(
                            "the server's permessage-deflate parameter {key} cannot be honoured"
                        ))
                    }
                }
            }
            found = Some(p);
        }
    }
    Ok(found)
}

/// One end's compressor and decompressor.
pub(crate) struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Reset the compressor after each message (the peer keeps no window for us).
    reset_compress: bool,
    reset_decompress: bool,
}

impl Deflate {
    /// The state for a server (`server = true`) or client with the agreed parameters.
    pub(crate) fn new(params: Params, server: bool) -> Deflate {
        let (ours, theirs) = if server {
            (
                params.server_no_context_takeover,
                params.client_no_context_takeover,
            )
        } else {
            (
                params.client_no_context_takeover,
                params.server_no_context_takeover,
            )
        };
        Deflate {
            // Level 1: chat-sized messages gain little from more effort, and the CPU is
            // the loop's.
            compress: Compress::new(Compression::fast(), false),
            decompress: Decompress::new(false),
            reset_compress: ours,
            reset_decompress: theirs,
        }
    }

    /// A message's payload, compressed.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            let before = self.compress.total_in();
            // In-memory compression into a Vec with spare room cannot fail.
            self.compress
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate into memory");
            consumed += (self.compress.total_in() - before) as usize;
            // Room left over means the flush finished rather than ran out of space.
            if consumed == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(256));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset_compress {
            self.compress.reset();
        }
        out
    }

    /// A compressed message's payload, inflated; more than `max` bytes (0: no limit) is
    /// refused as soon as it is produced, so a small bomb cannot fill memory.
    pub(crate) fn decompress(&mut self, data: &[u8], max: usize) -> Result<BytesMut, Violation> {
        let too_big = Violation {
            code: close_code::MESSAGE_TOO_BIG,
            reason: "message too big",
        };
        let mut out: Vec<u8> = Vec::with_capacity((data.len() * 3).clamp(64, 64 * 1024));
        for input in [data, &TAIL[..]] {
            let mut consumed = 0;
            loop {
                if out.len() == out.capacity() {
                    out.reserve(out.capacity().min(1 << 20));
                }
                let before_in = self.decompress.total_in();
                let status = self
                    .decompress
                    .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| Violation {
                        code: close_code::INVALID_PAYLOAD,
                        reason: "invalid compressed data",
                    })?;
                consumed += (self.decompress.total_in() - before_in) as usize;
                if max != 0 && out.len() > max {
                    return Err(too_big);
                }
                // Done when the input is in and the output had room to spare; a stream
                // that produces nothing more from all of its input is truncated, which
                // the same test ends (what it gave so far is what there is).
                if status == Status::StreamEnd
                    || consumed == input.len() && out.len() < out.capacity()
                {
                    break;
                }
            }
        }
        if self.reset_decompress {
            self.decompress.reset(false);
        }
        Ok(BytesMut::from(&out[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7692_hello_decompresses() {
        // §7.2.3.1: "Hello" compressed, without the tail.
        let mut d = Deflate::new(Params::default(), true);
        let out = d
            .decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 0)
            .unwrap();
        assert_eq!(&out[..], b"Hello");
        // §7.2.3.2: the same again with the shared window (context takeover).
        let out = d.decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], 0).unwrap();
        assert_eq!(&out[..], b"Hello");
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        for params in [
            Params::default(),
            Params {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: false,
            },
        ] {
            let mut server = Deflate::new(params, true);
            let mut client = Deflate::new(params, false);
            for msg in [
                &b"hello hello hello"[..],
                b"",
                &[7u8; 100_000],
                b"hello again",
            ] {
                let wire = server.compress(msg);
                assert!(!wire.ends_with(&TAIL) || msg.is_empty());
                assert_eq!(&client.decompress(&wire, 0).unwrap()[..], msg);
            }
        }
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let mut server = Deflate::new(Params::default(), true);
        let bomb = server.compress(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 64 * 1024);
        let mut client = Deflate::new(Params::default(), false);
        assert_eq!(client.decompress(&bomb, 1 << 20).unwrap_err().code, 1009);
        let mut fresh = Deflate::new(Params::default(), false);
        assert_eq!(
            fresh
                .decompress(&[0xff, 0xff, 0xff, 0xff], 0)
                .unwrap_err()
                .code,
            1007
        );
    }

    #[test]
    fn negotiation() {
        let p = accept_offer(["permessage-deflate; client_max_window_bits"].into_iter()).unwrap();
        assert_eq!(p, Params::default());
        assert_eq!(p.response_header(), "permessage-deflate");
        // A smaller server window cannot be honoured: the next offer is taken.
        let p = accept_offer(
            [
                "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_no_context_takeover",
            ]
            .into_iter(),
        )
        .unwrap();
        assert!(p.server_no_context_takeover);
        assert_eq!(
            p.response_header(),
            "permessage-deflate; server_no_context_takeover"
        );
        assert!(accept_offer(["x-webkit-deflate-frame"].into_iter()).is_none());
        assert!(accept_offer(["permessage-deflate; bogus"].into_iter()).is_none());
        let p =
            accept_offer(["permessage-deflate; server_max_window_bits=15"].into_iter()).unwrap();
        assert!(p.response_header().ends_with("server_max_window_bits=15"));

        assert_eq!(read_answer([].into_iter()), Ok(None));
        assert!(read_answer(["permessage-deflate"].into_iter())
            .unwrap()
            .is_some());
        assert!(read_answer(["permessage-deflate; client_max_window_bits=9"].into_iter()).is_err());
        assert!(read_answer(["other-ext"].into_iter()).is_err());
    }
}
