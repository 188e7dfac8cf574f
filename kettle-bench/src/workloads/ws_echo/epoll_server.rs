//! The floor: a single-threaded, level-triggered raw-epoll loop that echoes WebSocket frames
//! and does nothing else, the WebSocket analogue of `http-hello`'s epoll server.
//!
//! A connection first makes the opening handshake: its request head is read until
//! `\r\n\r\n`, checked only for `GET` and a `Sec-WebSocket-Key`, and answered with a minimal
//! `101` (`Upgrade`, `Connection` and `Sec-WebSocket-Accept`; anything else gets a `400` and
//! is closed). Then, per ready connection, it makes one `read` into the connection's buffer,
//! answers every whole frame in it and writes all the answers with one `write`:
//!
//! * a data frame (text, binary or continuation) is echoed unmasked, with the same opcode and
//!   FIN bit, so a fragmented message comes back fragmented the same way;
//! * a ping is answered by a pong with its payload, a pong is ignored;
//! * a close frame is answered by a close frame with its status code, and the connection is
//!   closed once that is written;
//! * a frame that breaks the protocol (unmasked, reserved bits or opcode, a fragmented or long
//!   control frame, a payload over [`MAX_PAYLOAD`]) is answered by a close frame with code
//!   1002, and the connection is closed.
//!
//! A frame cut off by the end of a read stays at the start of the buffer until the next read
//! completes it; a frame longer than the buffer grows it, once. Text is not checked for UTF-8
//! and messages are not reassembled: it is the floor, what a message costs when the server
//! does nothing but the kernel's work and the framing. No allocation per message: the
//! connection's buffer, the shared output buffer and the backlog of unsent bytes keep their
//! capacity.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::wire::{self, BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT};
use crate::netbench::OnReady;
use crate::sys::{self, Epoll, EventFd};

/// Each connection's buffer to begin with: the largest request head it accepts, and room for
/// many small frames per read (the size of `http-hello`'s floor's read buffer).
const READ_BUF: usize = 16 * 1024;

/// The longest payload accepted, well above `ws-client`'s largest message (1 MiB).
const MAX_PAYLOAD: u64 = 16 << 20;

/// The RSV1-3 bits of a frame's first byte, which no extension was agreed to use.
const RSV: u8 = 0x70;

/// Close code 1002 (a protocol error), as a whole server close frame.
const PROTOCOL_ERROR_CLOSE: [u8; 4] = [0x80 | CLOSE, 2, 0x03, 0xEA];

/// The answer to a request that is not a WebSocket handshake.
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Epoll tokens: the listener, the stop eventfd, then connection `i` as `FIRST_CONN + i`.
const LISTENER: u64 = 0;
const STOP: u64 = 1;
const FIRST_CONN: u64 = 2;

/// One connection.
struct Conn {
    stream: TcpStream,
    /// What was read and not answered yet, in `buf[..filled]`: the request head so far until
    /// the handshake is done, then at most one incomplete frame. The part after `filled` is
    /// where the next read goes; it is never empty while the connection waits for `IN`.
    buf: Vec<u8>,
    /// How much of `buf` holds data.
    filled: usize,
    /// Whether the opening handshake has been answered.
    open: bool,
    /// Answer bytes the kernel did not take yet. While any are left the connection waits for
    /// `OUT` only and reads nothing more: backpressure, as in `http-hello`'s floor.
    pending: Vec<u8>,
    /// Whether the connection ends once its answers are written: they end with a close frame
    /// (or refuse the handshake).
    closing: bool,
}

/// Serves on 127.0.0.1:`port` (0 picks a free port) until stopped; see [`super::server::serve`].
pub fn serve(port: u16, on_ready: OnReady) -> io::Result<()> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(EventFd::new()?);
    let stopper = stop.clone();
    on_ready(
        listener.local_addr()?.port(),
        Box::new(move || drop(stopper.notify())),
    );
    event_loop(&listener, &stop)
}

/// Serves the non-blocking `listener`'s connections until `stop` is notified.
fn event_loop(listener: &TcpListener, stop: &EventFd) -> io::Result<()> {
    let ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), sys::IN, LISTENER)?;
    ep.add(stop.as_raw_fd(), sys::IN, STOP)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(READ_BUF);
    let mut events = sys::event_buffer(256);
    loop {
        let n = ep.wait(&mut events, None)?;
        for ev in &events[..n] {
            let token = ev.u64;
            match token {
                STOP => return Ok(()),
                LISTENER => loop {
                    let stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // The connection died in the backlog, or fds ran out: drop this one.
                        Err(_) => break,
                    };
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let i = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    ep.add(stream.as_raw_fd(), sys::IN, FIRST_CONN + i as u64)?;
                    conns[i] = Some(Conn {
                        stream,
                        buf: vec![0; READ_BUF],
                        filled: 0,
                        open: false,
                        pending: Vec::new(),
                        closing: false,
                    });
                },
                _ => {
                    let i = (token - FIRST_CONN) as usize;
                    let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                        continue;
                    };
                    // With bytes pending the fd is watched for OUT only, so any event
                    // (writable, or an error or hang-up that the write will report) means
                    // "try the write".
                    let keep = if conn.pending.is_empty() {
                        answer(&ep, conn, token, &mut out)
                    } else {
                        flush(&ep, conn, token)
                    };
                    if !matches!(keep, Ok(true)) {
                        // Closing the fd removes it from the epoll set: no EPOLL_CTL_DEL needed.
                        conns[i] = None;
                        free.push(i);
                    }
                }
            }
        }
    }
}

/// One read, and one write of the answers to everything it completed (the handshake, or
/// frames). `Ok(false)` when the connection is to be closed: at EOF, or once it has answered
/// a close frame; an error closes it too.
fn answer(ep: &Epoll, conn: &mut Conn, token: u64, out: &mut Vec<u8>) -> io::Result<bool> {
    let n = match (&conn.stream).read(&mut conn.buf[conn.filled..]) {
        Ok(0) => return Ok(false),
        Ok(n) => n,
        // A spurious wake-up: level-triggered epoll reports again when data arrives.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
        Err(e) => return Err(e),
    };
    conn.filled += n;
    out.clear();
    let mut start = 0;
    if !conn.open {
        match handshake(&conn.buf[..conn.filled], out) {
            Handshake::Incomplete if conn.filled < conn.buf.len() => return Ok(true),
            // A head that fills the buffer without ending is refused too.
            Handshake::Incomplete | Handshake::Refused => {
                out.extend_from_slice(BAD_REQUEST);
                conn.closing = true;
            }
            Handshake::Accepted { head_len } => {
                conn.open = true;
                start = head_len;
            }
        }
    }
    if !conn.closing {
        match answer_frames(&conn.buf[start..conn.filled], out) {
            Next::Close => conn.closing = true,
            Next::Read { used, need } => {
                // Keep the incomplete frame, at the start, and make room for all of it.
                let from = start + used;
                conn.buf.copy_within(from..conn.filled, 0);
                conn.filled -= from;
                if need > conn.buf.len() {
                    conn.buf.resize(need, 0);
                }
            }
        }
    }
    if out.is_empty() {
        return Ok(true);
    }
    let mut written = 0;
    while written < out.len() {
        match (&conn.stream).write(&out[written..]) {
            Ok(0) => return Ok(false),
            Ok(w) => written += w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.pending.extend_from_slice(&out[written..]);
                ep.modify(conn.stream.as_raw_fd(), sys::OUT, token)?;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(!conn.closing)
}

/// Writes what an earlier answer left over; back to reading once it is all out, or closed if
/// it ended with a close frame.
fn flush(ep: &Epoll, conn: &mut Conn, token: u64) -> io::Result<bool> {
    while !conn.pending.is_empty() {
        match (&conn.stream).write(&conn.pending) {
            Ok(0) => return Ok(false),
            Ok(w) => {
                conn.pending.drain(..w);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if conn.closing {
        return Ok(false);
    }
    ep.modify(conn.stream.as_raw_fd(), sys::IN, token)?;
    Ok(true)
}

/// Where the opening handshake stands.
#[derive(Debug, PartialEq, Eq)]
enum Handshake {
    /// The request head has not ended yet.
    Incomplete,
    /// Answered with a `101`; frames start `head_len` bytes into the connection's data.
    Accepted { head_len: usize },
    /// Not a WebSocket handshake.
    Refused,
}

/// Answers the request head at the start of `data` once it is whole: appends the `101` to
/// `out` if it is a `GET` with a `Sec-WebSocket-Key`.
fn handshake(data: &[u8], out: &mut Vec<u8>) -> Handshake {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Handshake::Incomplete;
    };
    let Ok(head) = std::str::from_utf8(&data[..end]) else {
        return Handshake::Refused;
    };
    let mut lines = head.split("\r\n");
    if !lines.next().is_some_and(|l| l.starts_with("GET ")) {
        return Handshake::Refused;
    }
    let key = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim())
    });
    let Some(key) = key else {
        return Handshake::Refused;
    };
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: ",
    );
    out.extend_from_slice(wire::accept_for(key).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    Handshake::Accepted { head_len: end + 4 }
}

/// What to do after answering a batch of frames.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Read more. The whole frames took the first `used` bytes; the rest is the start of the
    /// next frame, `need` bytes long in all (0 while its head is incomplete).
    Read { used: usize, need: usize },
    /// Close the connection once the answers are written: they end with a close frame,
    /// answering the peer's or refusing a frame that breaks the protocol.
    Close,
}

/// Appends to `out` the answer to every whole frame at the start of `data`; see the module
/// doc for what each frame gets.
fn answer_frames(data: &[u8], out: &mut Vec<u8>) -> Next {
    let mut at = 0;
    loop {
        let rest = &data[at..];
        let Some(head) = wire::parse_head(rest) else {
            return Next::Read { used: at, need: 0 };
        };
        let control = head.opcode & 0x8 != 0;
        let known = matches!(
            head.opcode,
            CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG
        );
        if rest[0] & RSV != 0
            || !known
            || !head.masked
            || head.len > MAX_PAYLOAD
            || (control && (!head.fin || head.len > 125))
            || (head.opcode == CLOSE && head.len == 1)
        {
            out.extend_from_slice(&PROTOCOL_ERROR_CLOSE);
            return Next::Close;
        }
        // At most MAX_PAYLOAD plus a head: no overflow.
        let end = head.size + head.len as usize;
        if rest.len() < end {
            return Next::Read {
                used: at,
                need: end,
            };
        }
        let mut mask = [0; 4];
        mask.copy_from_slice(&rest[head.size - 4..head.size]);
        let payload = &rest[head.size..end];
        match head.opcode {
            PING => push_unmasked(out, true, PONG, payload, mask),
            PONG => {}
            CLOSE => {
                // The status code, if any, without the reason.
                push_unmasked(out, true, CLOSE, &payload[..payload.len().min(2)], mask);
                return Next::Close;
            }
            opcode => push_unmasked(out, head.fin, opcode, payload, mask),
        }
        at += end;
    }
}

/// Appends a server frame (unmasked) with `fin`, `opcode` and `masked` unmasked with `mask`.
fn push_unmasked(out: &mut Vec<u8>, fin: bool, opcode: u8, masked: &[u8], mask: [u8; 4]) {
    wire::push_head(out, fin, opcode, masked.len(), false);
    let at = out.len();
    out.extend_from_slice(masked);
    let payload = &mut out[at..];
    // Eight bytes at a time (the mask twice over), then the tail byte by byte.
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (k, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[k % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        wire::client_frame(opcode, payload, MASK).0
    }

    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        wire::push_head(&mut out, fin, opcode, payload.len(), false);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn handshake_answers() {
        let key = wire::client_key(0);
        let request = wire::handshake_request("127.0.0.1:1", &key);
        let mut out = Vec::new();
        let partial = &request.as_bytes()[..request.len() - 1];
        assert_eq!(handshake(partial, &mut out), Handshake::Incomplete);
        assert!(out.is_empty());
        let with_frame = [request.as_bytes(), &frame(TEXT, b"hi")].concat();
        assert_eq!(
            handshake(&with_frame, &mut out),
            Handshake::Accepted {
                head_len: request.len()
            }
        );
        let answer = std::str::from_utf8(&out).unwrap();
        let head = answer.strip_suffix("\r\n\r\n").unwrap();
        assert_eq!(wire::check_handshake_response(head, &key), Ok(()));

        let mut out = Vec::new();
        let no_key = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(handshake(no_key.as_bytes(), &mut out), Handshake::Refused);
        let post = request.replacen("GET", "POST", 1);
        assert_eq!(handshake(post.as_bytes(), &mut out), Handshake::Refused);
        assert!(out.is_empty());
    }

    #[test]
    fn several_frames_and_a_partial_one() {
        let long: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let data = [
            frame(TEXT, b"hello"),
            frame(BINARY, &long),
            frame(PING, b"p"),
            frame(PONG, b"q"),
            frame(TEXT, b""),
        ]
        .concat();
        let next = frame(TEXT, b"cut off");
        for cut in [0, 1, 2, 6, next.len() - 1] {
            let mut out = Vec::new();
            let input = [&data[..], &next[..cut]].concat();
            // The head, mask key included, is 6 bytes.
            let need = if cut >= 6 { next.len() } else { 0 };
            assert_eq!(
                answer_frames(&input, &mut out),
                Next::Read {
                    used: data.len(),
                    need
                }
            );
            let expected = [
                server_frame(true, TEXT, b"hello"),
                server_frame(true, BINARY, &long),
                server_frame(true, PONG, b"p"),
                server_frame(true, TEXT, b""),
            ]
            .concat();
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn fragments_come_back_as_they_went() {
        let (mut first, _) = wire::client_frame(TEXT, b"frag", MASK);
        first[0] &= !0x80;
        let data = [first, frame(CONTINUATION, b"ment")].concat();
        let mut out = Vec::new();
        answer_frames(&data, &mut out);
        let expected = [
            server_frame(false, TEXT, b"frag"),
            server_frame(true, CONTINUATION, b"ment"),
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn close_and_protocol_errors() {
        let mut out = Vec::new();
        let data = [
            frame(TEXT, b"last"),
            frame(CLOSE, &[0x03, 0xE8, b'b', b'y', b'e']),
            frame(TEXT, b"ignored"),
        ]
        .concat();
        assert_eq!(answer_frames(&data, &mut out), Next::Close);
        let expected = [
            server_frame(true, TEXT, b"last"),
            server_frame(true, CLOSE, &[0x03, 0xE8]),
        ]
        .concat();
        assert_eq!(out, expected);

        let unmasked = server_frame(true, TEXT, b"x");
        let mut rsv = frame(TEXT, b"x");
        rsv[0] |= 0x40;
        let mut long_ping = frame(PING, &[0; 126]);
        long_ping.truncate(8);
        let mut huge = vec![0x80 | BINARY, 0x80 | 127];
        huge.extend_from_slice(&(MAX_PAYLOAD + 1).to_be_bytes());
        huge.extend_from_slice(&MASK);
        for bad in [
            unmasked,
            rsv,
            frame(0x3, b""),
            long_ping,
            frame(CLOSE, &[3]),
            huge,
        ] {
            let mut out = Vec::new();
            assert_eq!(answer_frames(&bad, &mut out), Next::Close, "{bad:?}");
            assert_eq!(out, PROTOCOL_ERROR_CLOSE);
        }
    }

    #[test]
    fn unmasking_every_length() {
        for len in 0..40 {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + i as u8).collect();
            let mut out = Vec::new();
            answer_frames(&frame(BINARY, &payload), &mut out);
            assert_eq!(out, server_frame(true, BINARY, &payload));
        }
    }
}
