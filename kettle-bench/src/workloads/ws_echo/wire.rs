//! The few pieces of the WebSocket protocol (RFC 6455) the load generator and the epoll floor
//! server speak themselves: the opening handshake's request, its `Sec-WebSocket-Accept` and
//! the check of its answer, a client frame (always masked), and a frame head as a server sends
//! it (never masked) for building the expected echo, for describing one that is not, and for
//! the floor's echoes.
//!
//! No extensions are offered, so no server may compress (`permessage-deflate` is negotiated
//! only when the client asks for it) and an echo of a text message is exactly one unmasked
//! text frame carrying the same payload.

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The path every server serves its echo on.
pub const PATH: &str = "/ws";

/// The GUID RFC 6455 appends to the client's key before hashing it.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The opcodes of RFC 6455: a later fragment of a message.
pub const CONTINUATION: u8 = 0x0;
/// The first (or only) frame of a text message.
pub const TEXT: u8 = 0x1;
/// The first (or only) frame of a binary message.
pub const BINARY: u8 = 0x2;
/// A close frame.
pub const CLOSE: u8 = 0x8;
/// A ping, to be answered by a pong with the same payload.
pub const PING: u8 = 0x9;
/// A pong.
pub const PONG: u8 = 0xA;

/// Close code 1000: a normal closure.
pub const NORMAL_CLOSURE: u16 = 1000;

/// The `Sec-WebSocket-Key` of connection `index`: 16 bytes in base64, different per connection
/// (the protocol asks for a random nonce; a load generator only needs it well-formed).
pub fn client_key(index: usize) -> String {
    let mut nonce = [0u8; 16];
    for (k, byte) in nonce.iter_mut().enumerate() {
        *byte = (index as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(k as u32 * 4) as u8
            ^ k as u8;
    }
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// The `Sec-WebSocket-Accept` a server must answer `key` with.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The opening handshake for `host` (`127.0.0.1:PORT`) with `key`.
pub fn handshake_request(host: &str, key: &str) -> String {
    format!(
        "GET {PATH} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Checks a response head (without its final blank line) to the handshake sent with `key`:
/// `101`, `Upgrade: websocket`, `Connection: upgrade` and the right `Sec-WebSocket-Accept`,
/// and no extension agreed.
pub fn check_handshake_response(head: &str, key: &str) -> Result<(), String> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("the handshake was answered with `{status}`"));
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, false);
    let expected = accept_for(key);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "bad header line `{line}` in the handshake's answer"
            ));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "connection" => {
                connection = value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            }
            "sec-websocket-accept" => accept = value == expected,
            "sec-websocket-extensions" => {
                return Err(format!(
                    "the server agreed to extensions nobody asked for: {value}"
                ))
            }
            _ => {}
        }
    }
    match (upgrade, connection, accept) {
        (true, true, true) => Ok(()),
        _ => Err(format!(
            "the handshake's answer lacks Upgrade: websocket, Connection: upgrade or the right \
             Sec-WebSocket-Accept ({expected}): {head:?}"
        )),
    }
}

/// The length of a frame head for a payload of `len` bytes, without the mask.
fn head_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Appends a frame head for `opcode` and a payload of `len` bytes, with the FIN bit and the
/// mask bit as given (the mask key itself is not written).
pub fn push_head(out: &mut Vec<u8>, fin: bool, opcode: u8, len: usize, masked: bool) {
    let fin_bit = if fin { 0x80 } else { 0 };
    let mask_bit = if masked { 0x80 } else { 0 };
    out.push(fin_bit | opcode);
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// A client frame: final, `opcode`, `payload` masked with `mask`. Returns the frame and the
/// offset of the payload in it, so that a caller can rewrite payload bytes in place with
/// [`mask_into`].
pub fn client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> (Vec<u8>, usize) {
    let mut frame = Vec::with_capacity(head_len(payload.len()) + 4 + payload.len());
    push_head(&mut frame, true, opcode, payload.len(), true);
    frame.extend_from_slice(&mask);
    let at = frame.len();
    frame.extend_from_slice(payload);
    mask_into(&mut frame[at..], 0, payload, mask);
    (frame, at)
}

/// Writes `plain`, masked with `mask` as payload bytes starting at payload offset `from`, into
/// `out` (which is that stretch of the frame's payload).
pub fn mask_into(out: &mut [u8], from: usize, plain: &[u8], mask: [u8; 4]) {
    for (k, (o, p)) in out.iter_mut().zip(plain).enumerate() {
        *o = p ^ mask[(from + k) % 4];
    }
}

/// What a server sends back for a text message with `payload`: one final, unmasked text frame.
pub fn server_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(head_len(payload.len()) + payload.len());
    push_head(&mut frame, true, TEXT, payload.len(), false);
    frame.extend_from_slice(payload);
    frame
}

/// A frame head as read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The FIN bit: the last frame of its message.
    pub fin: bool,
    /// The opcode (low four bits of the first byte).
    pub opcode: u8,
    /// Whether a mask key follows (a server must not mask).
    pub masked: bool,
    /// The payload length.
    pub len: u64,
    /// Bytes before the payload: the head and the mask key, if any.
    pub size: usize,
}

/// Parses the frame head at the start of `buf`; `None` if `buf` holds only part of it.
pub fn parse_head(buf: &[u8]) -> Option<Head> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut size) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as u64,
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (n as u64, 2),
    };
    if masked {
        size += 4;
        buf.get(..size)?;
    }
    Some(Head {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        masked,
        len,
        size,
    })
}

/// What is wrong with `got`, the bytes received where `expected` (a whole frame) should have
/// been, for an error message.
pub fn describe_mismatch(got: &[u8], expected: &[u8]) -> String {
    match (parse_head(got), parse_head(expected)) {
        (Some(g), Some(e)) if g != e => format!(
            "a frame with fin={} opcode={} masked={} length={} where fin={} opcode={} \
             masked={} length={} was expected",
            g.fin, g.opcode, g.masked, g.len, e.fin, e.opcode, e.masked, e.len
        ),
        (Some(_), Some(_)) => {
            let at = got.iter().zip(expected).position(|(a, b)| a != b);
            format!(
                "the right frame head but a different payload (first difference at byte {at:?})"
            )
        }
        _ => "a frame too short to parse".to_string(),
    }
}

/// Whether `buf`, which starts at a frame boundary, holds a whole close frame after any number
/// of whole data frames (an echo still in flight when the close was sent).
pub fn holds_close(mut buf: &[u8]) -> bool {
    while let Some(head) = parse_head(buf) {
        let Some(end) = usize::try_from(head.len)
            .ok()
            .and_then(|len| head.size.checked_add(len))
            .filter(|&end| end <= buf.len())
        else {
            return false;
        };
        if head.opcode == CLOSE {
            return true;
        }
        buf = &buf[end..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_accept_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let key = client_key(3);
        assert_eq!(key.len(), 24);
        assert_ne!(key, client_key(4));
    }

    #[test]
    fn handshake_answers() {
        let key = client_key(0);
        let good = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, \
             Upgrade\r\nSec-WebSocket-Accept: {}",
            accept_for(&key)
        );
        assert_eq!(check_handshake_response(&good, &key), Ok(()));
        assert!(check_handshake_response(&good, &client_key(1)).is_err());
        assert!(check_handshake_response("HTTP/1.1 400 Bad Request", &key).is_err());
        let deflate = format!("{good}\r\nSec-WebSocket-Extensions: permessage-deflate");
        assert!(check_handshake_response(&deflate, &key).is_err());
    }

    #[test]
    fn frames_and_heads() {
        let mask = [1, 2, 3, 4];
        for len in [0usize, 64, 125, 126, 200, 0xFFFF, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let (frame, at) = client_frame(TEXT, &payload, mask);
            let head = parse_head(&frame).unwrap();
            assert_eq!((head.fin, head.opcode, head.masked), (true, TEXT, true));
            assert_eq!((head.len, head.size), (len as u64, at));
            let unmasked: Vec<u8> = frame[at..]
                .iter()
                .enumerate()
                .map(|(k, b)| b ^ mask[k % 4])
                .collect();
            assert_eq!(unmasked, payload);

            let echo = server_text_frame(&payload);
            let head = parse_head(&echo).unwrap();
            assert!(!head.masked);
            assert_eq!(head.size + len, echo.len());
            assert_eq!(&echo[head.size..], &payload[..]);
        }
        let (frame, _) = client_frame(TEXT, &[0; 64], mask);
        assert_eq!(frame.len(), 2 + 4 + 64);
        assert_eq!(&frame[..2], &[0x81, 0x80 | 64]);
        assert_eq!(server_text_frame(&[0; 64]).len(), 66);
        assert_eq!(parse_head(&[0x81]), None);
        assert_eq!(parse_head(&[0x81, 126, 0]), None);
    }

    #[test]
    fn mismatches_and_close() {
        let expected = server_text_frame(b"hello");
        let mut binary = expected.clone();
        binary[0] = 0x82;
        assert!(describe_mismatch(&binary, &expected).contains("opcode=2"));
        let other = server_text_frame(b"hellp");
        assert!(describe_mismatch(&other, &expected).contains("Some(6)"));

        let close = [0x88, 2, 0x03, 0xE8];
        assert!(holds_close(&close));
        let after_echo = [expected.clone(), close.to_vec()].concat();
        assert!(holds_close(&after_echo));
        assert!(!holds_close(&expected));
        assert!(!holds_close(&after_echo[..after_echo.len() - 1]));
    }
}
