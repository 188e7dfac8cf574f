//! RFC 6455 §5 frames, sans-I/O: parse a frame head out of a buffer with every rule the
//! RFC puts on it checked, write one, and mask a payload.
//!
//! ```text
//!  0               1               2               3
//!  F R R R opcode  M len7          extended length (0, 2 or 8 bytes)   masking key (0 or 4)
//! ```

use super::close_code;

/// Frame opcodes (RFC 6455 §5.2).
pub(crate) mod opcode {
    pub(crate) const CONTINUATION: u8 = 0x0;
    pub(crate) const TEXT: u8 = 0x1;
    pub(crate) const BINARY: u8 = 0x2;
    pub(crate) const CLOSE: u8 = 0x8;
    pub(crate) const PING: u8 = 0x9;
    pub(crate) const PONG: u8 = 0xA;
}

/// The largest head: 2 bytes, an 8-byte length and a 4-byte masking key.
pub(crate) const MAX_HEAD: usize = 14;

/// Control frames carry at most this much payload and are never fragmented (§5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which end of the connection this is: it decides which direction is masked (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}

/// A parsed frame head; the payload follows `head_len` bytes into the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHead {
    pub(crate) fin: bool,
    /// RSV1: with permessage-deflate, "this message is compressed" (on its first frame).
    pub(crate) rsv1: bool,
    pub(crate) opcode: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) len: u64,
    pub(crate) head_len: usize,
}

/// Why a frame head is refused: the close code to send and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

impl Violation {
    pub(crate) fn protocol(reason: &'static str) -> Violation {
        Violation {
            code: close_code::PROTOCOL_ERROR,
            reason,
        }
    }
}

/// Parses the frame head at the start of `buf`: `Ok(None)` until all of it has arrived.
///
/// `max_len` (0 for none) refuses a frame whose *declared* length is too large before any of
/// its payload is read, so a peer cannot make us buffer it. `rsv1_ok` is whether
/// permessage-deflate was negotiated.
pub(crate) fn parse_head(
    buf: &[u8],
    role: Role,
    max_len: u64,
    rsv1_ok: bool,
) -> Result<Option<FrameHead>, Violation> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    let opcode = b0 & 0x0F;
    if b0 & 0x30 != 0 {
        return Err(Violation::protocol("reserved bits RSV2/RSV3 set"));
    }
    let is_control = opcode & 0x8 != 0;
    match opcode {
        opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {}
        opcode::CLOSE | opcode::PING | opcode::PONG => {}
        _ => return Err(Violation::protocol("unknown opcode")),
    }
    // RSV1 marks a compressed *message*, so only a data frame that starts one may carry it.
    if rsv1 && (!rsv1_ok || is_control || opcode == opcode::CONTINUATION) {
        return Err(Violation::protocol("reserved bit RSV1 set"));
    }
    if is_control && !fin {
        return Err(Violation::protocol("fragmented control frame"));
    }
    // Checked on the 7-bit length, before any extended length: 126 and 127 announce more
    // than a control frame may carry whatever follows.
    if is_control && usize::from(b1 & 0x7F) > MAX_CONTROL_PAYLOAD {
        return Err(Violation::protocol("control frame payload over 125 bytes"));
    }
    let masked = b1 & 0x80 != 0;
    match (role, masked) {
        (Role::Server, false) => return Err(Violation::protocol("unmasked client frame")),
        (Role::Client, true) => return Err(Violation::protocol("masked server frame")),
        _ => {}
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(Violation::protocol("64-bit length with its top bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if max_len != 0 && len > max_len {
        return Err(Violation {
            code: close_code::MESSAGE_TOO_BIG,
            reason: "message too big",
        });
    }
    let mask = if masked {
        let Some(k) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Some(FrameHead {
        fin,
        rsv1,
        opcode,
        mask,
        len,
        head_len: at,
    }))
}

/// Appends a frame head for a `len`-byte payload to `out`, with the shortest length encoding.
pub(crate) fn write_head(
    out: &mut impl Extend<u8>,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let mut head = [0u8; MAX_HEAD];
    head[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut at = match len {
        0..=125 => {
            head[1] = mask_bit | len as u8;
            2
        }
        126..=0xFFFF => {
            head[1] = mask_bit | 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = mask_bit | 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        head[at..at + 4].copy_from_slice(&key);
        at += 4;
    }
    out.extend(head[..at].iter().copied());
}

/// XORs `data` with the masking key (§5.3), eight bytes at a time: masking every byte of
/// every message is on the hot path of both ends.
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so the key lines up again at index 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(buf: &[u8], role: Role) -> Result<Option<FrameHead>, Violation> {
        parse_head(buf, role, 0, false)
    }

    #[test]
    fn rfc_examples_parse() {
        // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
        let h = head(&[0x81, 0x05, 0x48, 0x65], Role::Client)
            .unwrap()
            .unwrap();
        assert_eq!((h.fin, h.opcode, h.len, h.head_len), (true, 1, 5, 2));
        // The masked "Hello".
        let mut frame = vec![
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = head(&frame, Role::Server).unwrap().unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        apply_mask(&mut frame[h.head_len..], h.mask.unwrap());
        assert_eq!(&frame[h.head_len..], b"Hello");
        // 256 bytes binary in one unmasked frame: 16-bit length.
        let h = head(&[0x82, 0x7E, 0x01, 0x00], Role::Client)
            .unwrap()
            .unwrap();
        assert_eq!((h.len, h.head_len), (256, 4));
        // 64 KiB: 64-bit length.
        let h = head(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0], Role::Client)
            .unwrap()
            .unwrap();
        assert_eq!((h.len, h.head_len), (65536, 10));
    }

    #[test]
    fn incomplete_heads_wait() {
        for buf in [
            &[][..],
            &[0x81],
            &[0x82, 0xFE, 0x01],
            &[0x81, 0x85, 1, 2, 3],
        ] {
            assert_eq!(head(buf, Role::Server).ok(), Some(None), "{buf:?}");
        }
        assert_eq!(head(&[0x82, 0x7F, 0, 0, 0], Role::Client), Ok(None));
    }

    #[test]
    fn violations_carry_their_close_codes() {
        let masked = |b0: u8, b1: u8| vec![b0, b1 | 0x80, 0, 0, 0, 0];
        let cases: Vec<(Vec<u8>, u16, &str)> = vec![
            (vec![0x81, 0x05], 1002, "unmasked client frame"),
            (masked(0xC1, 1), 1002, "reserved bit RSV1 set"),
            (masked(0xA1, 1), 1002, "reserved bits RSV2/RSV3 set"),
            (masked(0x93, 1), 1002, "reserved bits RSV2/RSV3 set"),
            (masked(0x83, 0), 1002, "unknown opcode"),
            (masked(0x8B, 0), 1002, "unknown opcode"),
            (masked(0x09, 0), 1002, "fragmented control frame"),
            (
                masked(0x89, 126),
                1002,
                "control frame payload over 125 bytes",
            ),
        ];
        for (buf, code, reason) in cases {
            let err = head(&buf, Role::Server).unwrap_err();
            assert_eq!((err.code, err.reason), (code, reason), "{buf:x?}");
        }
        let top_bit = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            head(&top_bit, Role::Server).unwrap_err().reason,
            "64-bit length with its top bit set"
        );
        assert_eq!(
            head(&[0x81, 0x85, 0, 0, 0, 0], Role::Client)
                .unwrap_err()
                .reason,
            "masked server frame"
        );
        // Over the limit is refused from the head alone, before the payload arrives.
        let big = [0x82, 0xFF, 0, 0, 0, 0, 0x10, 0, 0, 0];
        let err = parse_head(&big, Role::Server, 4 << 20, false).unwrap_err();
        assert_eq!(err.code, 1009);
        // RSV1 is the compressed bit once permessage-deflate is on, on a message's first frame.
        assert!(parse_head(&masked(0xC1, 1), Role::Server, 0, true).is_ok());
        assert!(parse_head(&masked(0x40, 1), Role::Server, 0, true).is_err());
        assert!(parse_head(&masked(0xC9, 1), Role::Server, 0, true).is_err());
    }

    #[test]
    fn heads_round_trip_with_minimal_lengths() {
        for (len, head_len) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                write_head(&mut out, true, false, opcode::BINARY, len, mask);
                let extra = if mask.is_some() { 4 } else { 0 };
                assert_eq!(out.len(), head_len + extra);
                let role = if mask.is_some() {
                    Role::Server
                } else {
                    Role::Client
                };
                let h = head(&out, role).unwrap().unwrap();
                assert_eq!((h.len, h.mask, h.head_len), (len as u64, mask, out.len()));
            }
        }
        let mut out = Vec::new();
        write_head(&mut out, false, true, opcode::TEXT, 3, None);
        assert_eq!(out, [0x41, 0x03]);
    }

    #[test]
    fn masking_matches_the_bytewise_definition() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        for len in [0, 1, 7, 8, 9, 64, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, key);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(fast, slow, "len {len}");
            apply_mask(&mut fast, key);
            assert_eq!(fast, data);
        }
    }
}
