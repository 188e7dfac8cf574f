//! What `kettle::client` does with servers that break HTTP: every case is a scripted
//! raw-socket server that sends exactly the bytes under test. Each one must end in an error
//! of the right kind whose message names the problem, within a bounded amount of reading
//! (endless input is refused early, and the server sees the client go away), and must not
//! poison the session for the servers that behave.

mod client_support;

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use client_support::{
    proc_status_bytes, read_request, run_in_own_process, wait_for_close, write_forever, Script, MIB,
};
use kettle::client::{ClientSession, ClientTimeout};
use kettle::{Error, ErrorKind};

/// A session that cannot hang a test: whatever goes wrong ends within 10 s.
fn session() -> ClientSession {
    ClientSession::builder()
        .timeout(ClientTimeout::default().total(Duration::from_secs(10)))
        .build()
        .unwrap()
}

/// GET `url` and read the whole body.
async fn fetch(session: &ClientSession, url: &str) -> kettle::Result<Bytes> {
    session.get(url).send().await?.bytes().await
}

/// The error of fetching `url`, checked for `kind` and a message naming the problem.
async fn fails(session: &ClientSession, url: &str, kind: ErrorKind, names: &str) -> Error {
    let err = match fetch(session, url).await {
        Ok(body) => panic!(
            "{url}: expected {kind:?}, got a body of {} bytes",
            body.len()
        ),
        Err(e) => e,
    };
    assert_eq!(err.kind(), kind, "{url}: {err}");
    assert!(
        err.to_string().contains(names),
        "{url}: the message {:?} does not say {names:?}",
        err.to_string()
    );
    err
}

/// A server that behaves: `ok` to every request, keep-alive.
fn good_server() -> Script {
    Script::reply_each(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
}

async fn still_served(session: &ClientSession, good: &Script) {
    assert_eq!(&fetch(session, &good.url("/")).await.unwrap()[..], b"ok");
}

/// What an endless-sending script reports when it stops: bytes the socket took, and whether
/// it stopped because the client went away (rather than at the cap).
type Report = mpsc::Receiver<(usize, bool)>;

/// Bytes an endless script may send before it gives up on the client ever stopping.
const ENDLESS_CAP: usize = 256 * MIB as usize;

/// A server that answers with `prefix` and then `piece` over and over, until the client
/// closes the connection.
fn endless(prefix: &'static [u8], piece: Vec<u8>) -> (Script, Report) {
    let (tx, rx) = mpsc::channel();
    let script = Script::start(move |_, mut s| {
        if read_request(&mut s).is_none() || s.write_all(prefix).is_err() {
            return;
        }
        let _ = tx.send(write_forever(&mut s, &piece, ENDLESS_CAP));
    });
    (script, rx)
}

/// Waits for an endless script's report and checks the client stopped it long before the
/// cap, so it read (and kept) only a bounded amount.
fn stopped_early(report: &Report) -> usize {
    let (sent, gone) = report
        .recv_timeout(Duration::from_secs(20))
        .expect("the endless server never stopped");
    assert!(gone, "the client read all {sent} bytes without stopping");
    // What the client did not read sits in the two sockets' buffers, a few MiB at most.
    assert!(sent < 64 * MIB as usize, "{sent} bytes went out first");
    sent
}

// ---------------------------------------------------------------------------------------------
// Broken heads
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn garbage_instead_of_a_status_line_is_an_invalid_response() {
    let session = session();
    for (bytes, names) in [
        (&b"SSH-2.0-OpenSSH_9.6\r\n"[..], "malformed response head"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            "malformed response head",
        ),
        (b"HTTP/1.1 abc OK\r\n\r\n", "malformed response head"),
        (b"HTTP/2 200\r\n\r\n", "malformed response head"),
        (
            b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
            "malformed response head",
        ),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "malformed response head",
        ),
        (b"<html>hello</html>\r\n\r\n", "malformed response head"),
        (b"HTTP/1.1 099 Too Low\r\n\r\n", "invalid status code 99"),
    ] {
        let script = Script::reply_and_hold(bytes);
        let err = fails(
            &session,
            &script.url("/"),
            ErrorKind::InvalidResponse,
            names,
        )
        .await;
        assert!(err.status().is_none());
        drop(script);
    }
    // Nothing of these connections was kept.
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle), (0, 0));
    session.close().await;
}

#[kettle::test]
async fn an_endless_status_line_is_refused_after_8_kib() {
    let good = good_server();
    let (script, report) = endless(b"HTTP/1.1 200 ", vec![b'x'; 1024]);
    let session = session();
    let start = Instant::now();
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "status line longer than 8190 bytes",
    )
    .await;
    assert!(start.elapsed() < Duration::from_secs(5));
    stopped_early(&report);
    still_served(&session, &good).await;
    // The limit follows the session's setting.
    let short = ClientSession::builder().max_line_size(100).build().unwrap();
    let (script, report) = endless(b"HTTP/1.1 200 ", vec![b'x'; 10]);
    fails(
        &short,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "status line longer than 100 bytes",
    )
    .await;
    stopped_early(&report);
    session.close().await;
    short.close().await;
}

#[kettle::test]
async fn an_endless_header_line_is_refused_after_8_kib() {
    let (script, report) = endless(b"HTTP/1.1 200 OK\r\nX-Endless: ", vec![b'a'; 1024]);
    let session = session();
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "header line longer than 8190 bytes",
    )
    .await;
    stopped_early(&report);
    session.close().await;
}

#[kettle::test]
async fn an_endless_header_block_is_refused() {
    let session = session();
    // Long lines: the 64 KiB bound on the whole head (reached after 16 of them, long
    // before the 128 fields of the other bound).
    let mut line = b"X-Filler: ".to_vec();
    line.extend_from_slice(&[b'a'; 4000]);
    line.extend_from_slice(b"\r\n");
    let (script, report) = endless(b"HTTP/1.1 200 OK\r\n", line);
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "response head larger than 65536 bytes",
    )
    .await;
    stopped_early(&report);
    // Short lines: the bound on the number of fields.
    let (script, report) = endless(b"HTTP/1.1 200 OK\r\n", b"X-A: 1\r\n".to_vec());
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "more than 128 header fields",
    )
    .await;
    stopped_early(&report);
    // The head bound follows the session's setting.
    let small = ClientSession::builder()
        .max_head_size(4096)
        .build()
        .unwrap();
    let mut line = b"X-Filler: ".to_vec();
    line.extend_from_slice(&[b'a'; 500]);
    line.extend_from_slice(b"\r\n");
    let (script, report) = endless(b"HTTP/1.1 200 OK\r\n", line);
    fails(
        &small,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "response head larger than 4096 bytes",
    )
    .await;
    stopped_early(&report);
    session.close().await;
    small.close().await;
}

#[kettle::test]
async fn a_head_trickled_byte_by_byte_and_interim_responses_are_fine() {
    let script = Script::start(|_, mut s| {
        if read_request(&mut s).is_none() {
            return;
        }
        let wire =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Slow: yes\r\n\r\nhello";
        for b in wire {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        wait_for_close(&mut s);
    });
    let session = session();
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-slow"], "yes");
    assert_eq!(&resp.bytes().await.unwrap()[..], b"hello");
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Broken framing
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn ambiguous_or_invalid_framing_is_an_invalid_response() {
    let session = session();
    for (bytes, names) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
            "both Content-Length and Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "conflicting Content-Length values 5 and 6",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello", "invalid Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
            "transfer coding other than chunked",
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.0 response with Transfer-Encoding",
        ),
    ] {
        let script = Script::reply_and_hold(bytes);
        fails(&session, &script.url("/"), ErrorKind::InvalidResponse, names).await;
    }
    session.close().await;
}

#[kettle::test]
async fn bad_chunked_framing_is_an_invalid_response() {
    let session = session();
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (body, names) in [
        ("ffffffffffffffffff\r\n", "chunk size overflows"),
        ("zz\r\nhi\r\n0\r\n\r\n", "invalid chunk size"),
        ("-5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        ("5 x\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        ("5\nhello\r\n0\r\n\r\n", "not terminated by CRLF"),
        ("5\r\nhelloXX0\r\n\r\n", "chunk data not followed by CRLF"),
        ("0\r\nbroken trailer\r\n\r\n", "malformed trailer field"),
    ] {
        let wire: &'static [u8] = format!("{head}{body}").leak().as_bytes();
        let script = Script::reply_and_hold(wire);
        let err = fails(
            &session,
            &script.url("/"),
            ErrorKind::InvalidResponse,
            names,
        )
        .await;
        assert!(err.to_string().contains("bad body framing"), "{err}");
    }
    // Leading zeros do not count towards the 16 digits.
    let script = Script::reply_and_hold(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n000000000000000000000001\r\nx\r\n0\r\n\r\n",
    );
    assert_eq!(&fetch(&session, &script.url("/")).await.unwrap()[..], b"x");
    // A size with 16 significant digits fits: it fails only when the server closes short.
    let script = Script::reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nabc",
    );
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "closed the connection in the middle of the body",
    )
    .await;
    session.close().await;
}

#[kettle::test]
async fn an_endless_chunk_size_line_or_trailer_block_is_refused() {
    let session = session();
    let (script, report) = endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1",
        vec![b' '; 512],
    );
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "chunk size line too long",
    )
    .await;
    stopped_early(&report);
    let (script, report) = endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
        b"X-Trailer: aaaaaaaaaaaaaaaa\r\n".to_vec(),
    );
    let err = fetch(&session, &script.url("/")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("trailers too large") || msg.contains("too many trailer fields"),
        "{msg}"
    );
    stopped_early(&report);
    session.close().await;
}

#[kettle::test]
async fn an_endless_body_is_refused_by_max_body_size_and_can_still_be_streamed() {
    let session = ClientSession::builder()
        .max_body_size(MIB as usize)
        .timeout(ClientTimeout::default().total(Duration::from_secs(10)))
        .build()
        .unwrap();
    for prefix in [
        &b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n",
    ] {
        let (script, report) = endless(prefix, vec![b'z'; 16 * 1024]);
        fails(
            &session,
            &script.url("/"),
            ErrorKind::InvalidResponse,
            "larger than the 1048576-byte limit",
        )
        .await;
        stopped_early(&report);
    }
    // The chunked form: each chunk announced, none ever the last.
    let mut chunk = b"4000\r\n".to_vec();
    chunk.extend_from_slice(&[b'z'; 0x4000]);
    chunk.extend_from_slice(b"\r\n");
    let (script, report) = endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunk,
    );
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    // Streaming is not limited: read 8 MiB of it, then let go.
    let mut total = 0;
    while total < 8 * MIB as usize {
        let piece = resp.content().read_chunk().await.unwrap();
        assert!(!piece.is_empty());
        total += piece.len();
    }
    drop(resp);
    stopped_early(&report);
    session.close().await;
}

#[kettle::test]
async fn more_body_than_content_length_is_cut_and_the_connection_not_reused() {
    // The extra bytes arrive with the body.
    let script =
        Script::reply_each(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES");
    let session = session();
    for _ in 0..3 {
        assert_eq!(
            &fetch(&session, &script.url("/")).await.unwrap()[..],
            b"hello"
        );
    }
    kettle::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        script.accepts(),
        3,
        "a connection with stray bytes was reused"
    );
    assert_eq!(session.connector_stats().idle, 0);

    // The extra bytes arrive later, after the body was read and the connection pooled: a
    // whole stray response, which must never be taken for the answer to the next request.
    let script = Script::start(|n, mut s| {
        while read_request(&mut s).is_some() {
            let ok = s
                .write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn{n}").as_bytes(),
                )
                .is_ok();
            std::thread::sleep(Duration::from_millis(100));
            if !ok
                || s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY")
                    .is_err()
            {
                return;
            }
        }
    });
    let first = fetch(&session, &script.url("/")).await.unwrap();
    assert_eq!(&first[..], b"conn0");
    kettle::sleep(Duration::from_millis(400)).await;
    let second = fetch(&session, &script.url("/")).await.unwrap();
    assert_eq!(&second[..], b"conn1");
    session.close().await;
}

#[kettle::test]
async fn a_server_that_closes_mid_response_is_an_invalid_response() {
    let session = session();
    for (bytes, names) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"[..],
            "(90 bytes of the body missing)",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "closed the connection in the middle of the body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            "closed the connection in the middle of the body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            "closed the connection in the middle of the response head",
        ),
    ] {
        let script = Script::reply(bytes);
        fails(
            &session,
            &script.url("/"),
            ErrorKind::InvalidResponse,
            names,
        )
        .await;
    }
    // Nothing at all: not a protocol error, an I/O one.
    let script = Script::reply(b"");
    fails(
        &session,
        &script.url("/"),
        ErrorKind::Io,
        "without responding",
    )
    .await;
    // Content arrives before the close: the part already read is handed out first.
    let script = Script::reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    let mut got = Vec::new();
    let err = loop {
        match resp.content().read_chunk().await {
            Ok(p) if p.is_empty() => panic!("a truncated body ended cleanly"),
            Ok(p) => got.extend_from_slice(&p),
            Err(e) => break e,
        }
    };
    assert_eq!(got, b"0123456789");
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    // And the error stays.
    assert!(resp.content().read_chunk().await.is_err());
    session.close().await;
}

#[kettle::test]
async fn endless_interim_responses_are_refused() {
    let (script, report) = endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n".to_vec());
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().total(Duration::from_secs(10)))
        .build()
        .unwrap();
    let start = Instant::now();
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "more than 32 interim (1xx) responses",
    )
    .await;
    assert!(start.elapsed() < Duration::from_secs(5));
    // Each interim head is dropped as soon as it is parsed: nothing piles up meanwhile.
    stopped_early(&report);
    session.close().await;
}

#[kettle::test]
async fn a_body_that_never_stops_arriving_ends_at_the_total_timeout() {
    // The bytes are always there, so no read ever waits: the total deadline must still end
    // the stream rather than only a timer that never gets a chance to fire.
    // No cap: loopback outruns a debug-build client, so only the client may end this.
    let script = Script::start(|_, mut s| {
        if read_request(&mut s).is_none() || s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").is_err() {
            return;
        }
        let piece = vec![b'x'; 64 * 1024];
        while s.write_all(&piece).is_ok() {}
    });
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().total(Duration::from_millis(500)))
        .build()
        .unwrap();
    // A task beside the reader: it only runs if the reading task yields to the loop.
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        kettle::spawn(async move {
            loop {
                kettle::sleep(Duration::from_millis(5)).await;
                ticks.set(ticks.get() + 1);
            }
        })
    };
    let start = Instant::now();
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    let mut got = 0usize;
    let err = loop {
        match resp.content().read_chunk().await {
            Ok(piece) if piece.is_empty() => panic!("an endless body ended after {got} bytes"),
            Ok(piece) => got += piece.len(),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("total timeout"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(got > 0);
    assert!(
        ticks.get() >= 5,
        "the reader kept the loop to itself: {} ticks in {:?}",
        ticks.get(),
        start.elapsed()
    );
    ticker.cancel();
    session.close().await;
}

#[kettle::test]
async fn an_unasked_for_101_does_not_leave_its_connection_in_the_pool() {
    // After its 101, the first connection answers in its "new protocol" (which happens to
    // look like HTTP): a request sent there would take that for its response.
    let script = Script::start(|n, mut s| {
        let reply: &[u8] = if n == 0 {
            if read_request(&mut s).is_none()
                || s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
                    .is_err()
            {
                return;
            }
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nswitched"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"
        };
        while read_request(&mut s).is_some() {
            if s.write_all(reply).is_err() {
                return;
            }
        }
    });
    let session = session();
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 101);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(session.connector_stats().idle, 0);
    assert_eq!(
        &fetch(&session, &script.url("/")).await.unwrap()[..],
        b"fresh"
    );
    session.close().await;
}

#[kettle::test]
async fn lenient_but_unambiguous_heads_are_accepted() {
    let session = session();
    for (wire, reason) in [
        (&b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"[..], ""),
        (b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok", ""),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "OK"),
        (
            b"HTTP/1.1 299 Custom Thing\r\nContent-Length: 2\r\n\r\nok",
            "Custom Thing",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\n\r\nok",
            "OK",
        ),
    ] {
        let script = Script::reply_and_hold(wire);
        let mut resp = session.get(&script.url("/")).send().await.unwrap();
        assert_eq!(resp.reason(), reason);
        assert_eq!(&resp.bytes().await.unwrap()[..], b"ok");
    }
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Bodies that cannot be decoded
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn a_body_that_is_not_what_its_encoding_says_is_an_invalid_response() {
    let session = session();
    for (wire, names) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\nnot gzip!!!!"[..],
            "cannot decompress",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: 12\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            "cannot decompress",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 12\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            "cannot decompress",
        ),
        // A gzip stream cut short (the first 10 bytes of a header and nothing after).
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
            "cannot decompress",
        ),
    ] {
        let script = Script::reply_and_hold(wire);
        fails(&session, &script.url("/"), ErrorKind::InvalidResponse, names).await;
    }
    // A charset nobody knows.
    let script = Script::reply_and_hold(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=klingon\r\nContent-Length: 2\r\n\r\nok",
    );
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    let err = resp.text().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert!(
        err.to_string().contains("unknown charset \"klingon\""),
        "{err}"
    );
    assert_eq!(&resp.bytes().await.unwrap()[..], b"ok");
    session.close().await;
}

/// A gzip body that inflates 1000-fold: `mib` MiB of zeros, as `mib` gzip members of one
/// MiB each (a gzip body may hold several members; compressing once keeps this fast).
fn gzip_bomb(mib: usize) -> &'static [u8] {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; MIB as usize]).unwrap();
    let gz = e.finish().unwrap().repeat(mib);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    );
    [head.into_bytes(), gz].concat().leak()
}

#[kettle::test]
async fn a_gzip_bomb_is_refused_by_max_body_size_without_inflating_it_all() {
    let script = Script::reply_and_hold(gzip_bomb(256));
    let session = ClientSession::builder()
        .max_body_size(MIB as usize)
        .build()
        .unwrap();
    let start = Instant::now();
    fails(
        &session,
        &script.url("/"),
        ErrorKind::InvalidResponse,
        "larger than the 1048576-byte limit",
    )
    .await;
    // Inflating all 256 MiB takes seconds in a debug build; the refusal comes long before.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    session.close().await;
}

#[test]
fn a_gzip_bomb_streams_in_bounded_memory() {
    run_in_own_process("gzip_bomb_in_a_process_of_its_own");
}

#[kettle::test]
#[ignore = "run in a process of its own by a_gzip_bomb_streams_in_bounded_memory"]
async fn gzip_bomb_in_a_process_of_its_own() {
    const INFLATED: u64 = 128 * MIB;
    let bomb = gzip_bomb(128);
    let script = Script::reply_and_hold(bomb);
    let session = session();
    let Some(hwm_before) = proc_status_bytes("VmHWM") else {
        eprintln!("skipped: no /proc/self/status to read memory use from");
        return;
    };
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    let mut total = 0u64;
    loop {
        let piece = resp.content().read_chunk().await.unwrap();
        if piece.is_empty() {
            break;
        }
        total += piece.len() as u64;
    }
    assert_eq!(total, INFLATED);
    let growth = proc_status_bytes("VmHWM")
        .unwrap_or(0)
        .saturating_sub(hwm_before);
    eprintln!(
        "a {} KiB gzip body inflated to 128 MiB; peak RSS grew by {} MiB",
        bomb.len() / 1024,
        growth / MIB
    );
    // One piece off the wire inflates at most ~1000-fold, so the peak follows the read
    // size, not the body: well under half of what holding the body would take.
    assert!(
        growth < INFLATED / 2,
        "peak RSS grew by {} MiB",
        growth / MIB
    );
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Silence
// ---------------------------------------------------------------------------------------------

/// Reads the request and then says nothing until the client goes away.
fn silent() -> Script {
    Script::start(|_, mut s| {
        if read_request(&mut s).is_some() {
            wait_for_close(&mut s);
        }
    })
}

#[kettle::test]
async fn a_server_silent_before_the_head_times_out_while_others_are_served() {
    let good = good_server();
    let stall = silent();
    let session = session();
    let order = Rc::new(RefCell::new(Vec::new()));

    for (timeout, names) in [
        (
            ClientTimeout::none().sock_read(Duration::from_millis(400)),
            "sock_read timeout (400ms) passed waiting for the response",
        ),
        (
            ClientTimeout::none().total(Duration::from_millis(400)),
            "total timeout (400ms) passed waiting for the response",
        ),
    ] {
        order.borrow_mut().clear();
        let stalled = {
            let (session, url, order) = (session.clone(), stall.url("/"), order.clone());
            kettle::spawn(async move {
                let start = Instant::now();
                let r = session.get(&url).timeout(timeout).send().await;
                order.borrow_mut().push("stalled");
                (r.map(|_| ()), start.elapsed())
            })
        };
        // Meanwhile, the same session keeps serving a server that answers.
        for _ in 0..5 {
            still_served(&session, &good).await;
        }
        order.borrow_mut().push("good");
        let (result, took) = stalled.await.unwrap();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains(names), "{err}");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(*order.borrow(), ["good", "stalled"]);
    }
    let stats = session.connector_stats();
    assert_eq!(
        stats.busy, 0,
        "the timed-out requests kept their connections"
    );
    assert_eq!(stats.idle, 1);
    session.close().await;
}

#[kettle::test]
async fn a_server_that_never_reads_an_upload_times_out_the_send() {
    // Reads the head and nothing more: a large body fills the socket buffers and stalls.
    let script = Script::start(|_, mut s| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if !matches!(std::io::Read::read(&mut s, &mut byte), Ok(1)) {
                return;
            }
            head.push(byte[0]);
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().total(Duration::from_millis(500)))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = session
        .post(&script.url("/upload"))
        .body(vec![b'u'; 64 * MIB as usize])
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("sending the request"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(session.connector_stats().busy, 0);
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Bad redirects
// ---------------------------------------------------------------------------------------------

/// A keep-alive server that redirects each request to `location(path, host)`, counting them.
fn redirector(
    location: impl Fn(&str, &str) -> String + Send + Sync + 'static,
) -> (Script, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let script = Script::start(move |_, mut s| {
        while let Some(req) = read_request(&mut s) {
            seen.fetch_add(1, Ordering::SeqCst);
            let path = req.line().split(' ').nth(1).unwrap_or("/").to_string();
            let host = req.header("host").unwrap_or("").to_string();
            let resp = format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {}\r\nContent-Length: 5\r\n\r\nmoved",
                location(&path, &host)
            );
            if s.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    });
    (script, count)
}

#[kettle::test]
async fn a_redirect_to_itself_is_too_many_redirects() {
    let session = session();
    let (script, count) = redirector(|path, _| path.to_string());
    let err = fails(
        &session,
        &script.url("/self"),
        ErrorKind::TooManyRedirects,
        "more than 10 redirects",
    )
    .await;
    assert!(err.to_string().contains("/self"), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 11);
    // The same loop through an absolute URL.
    let (script, count) = redirector(|path, host| format!("http://{host}{path}"));
    fails(
        &session,
        &script.url("/abs"),
        ErrorKind::TooManyRedirects,
        "more than 10 redirects",
    )
    .await;
    assert_eq!(count.load(Ordering::SeqCst), 11);
    // Every redirect body was drained: one connection per server.
    assert_eq!(script.accepts(), 1);
    session.close().await;
}

#[kettle::test]
async fn an_endless_redirect_chain_stops_at_max_redirects() {
    let (script, count) = redirector(|path, _| {
        let n: u64 = path.trim_start_matches('/').parse().unwrap_or(0);
        format!("/{}", n + 1)
    });
    let session = ClientSession::builder().max_redirects(5).build().unwrap();
    let err = fails(
        &session,
        &script.url("/0"),
        ErrorKind::TooManyRedirects,
        "more than 5 redirects",
    )
    .await;
    assert!(err.to_string().contains("to /6"), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 6);
    session.close().await;
}

#[kettle::test]
async fn a_redirect_to_another_scheme_or_a_broken_location_is_an_invalid_url() {
    let session = session();
    for (location, names) in [
        ("ftp://127.0.0.1/file", "unsupported URL scheme \"ftp\""),
        ("file:///etc/passwd", "unsupported URL scheme \"file\""),
        (
            "javascript:alert(1)",
            "unsupported URL scheme \"javascript\"",
        ),
        ("http://[::1/", "invalid redirect location"),
        ("http://", "invalid redirect location"),
    ] {
        let (script, count) = redirector(move |_, _| location.to_string());
        fails(&session, &script.url("/"), ErrorKind::InvalidUrl, names).await;
        assert_eq!(count.load(Ordering::SeqCst), 1, "{location}");
    }
    // A 3xx without a Location is an answer, not a redirect.
    let script = Script::reply_and_hold(b"HTTP/1.1 302 Found\r\nContent-Length: 4\r\n\r\nhere");
    let mut resp = session.get(&script.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.text().await.unwrap(), "here");
    session.close().await;
}

// ---------------------------------------------------------------------------------------------
// Nobody there, and URLs that cannot be requested
// ---------------------------------------------------------------------------------------------

#[kettle::test]
async fn a_refused_connection_is_a_connect_error() {
    // A port that was just free: nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let session = session();
    let url = format!("http://127.0.0.1:{port}/");
    let start = Instant::now();
    let err = fails(
        &session,
        &url,
        ErrorKind::Connect,
        &format!("127.0.0.1:{port}"),
    )
    .await;
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let stats = session.connector_stats();
    assert_eq!((stats.busy, stats.idle, stats.opened), (0, 0, 0));
    // The failed attempt left the slot free.
    let good = good_server();
    still_served(&session, &good).await;
    session.close().await;
}

#[kettle::test]
async fn header_values_with_line_breaks_are_refused_before_sending() {
    let script = good_server();
    let session = session();
    for (name, value) in [
        ("X-Injected", "a\r\nInjected: 1"),
        ("X-Injected", "a\nb"),
        ("Bad Name", "x"),
        ("", "x"),
    ] {
        let err = session
            .get(&script.url("/"))
            .header(name, value)
            .send()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("invalid header"),
            "{name:?}: {err}"
        );
    }
    let err = ClientSession::builder()
        .header("X-Injected", "a\r\nInjected: 1")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("invalid header"), "{err}");
    kettle::sleep(Duration::from_millis(100)).await;
    assert_eq!(script.accepts(), 0, "a request with a bad header went out");
    session.close().await;
}

#[kettle::test]
async fn invalid_urls_are_refused_before_connecting() {
    let session = session();
    for (url, names) in [
        ("", "\"\""),
        ("not a url", "\"not a url\""),
        ("/relative/without/base", "\"/relative/without/base\""),
        ("//example.com/no-scheme", "\"//example.com/no-scheme\""),
        ("http://", "\"http://\""),
        ("http://exa mple.com/", "\"http://exa mple.com/\""),
        ("http://[::1/", "\"http://[::1/\""),
        ("http://127.0.0.1:99999/", "\"http://127.0.0.1:99999/\""),
        ("ftp://example.com/file", "unsupported URL scheme \"ftp\""),
        ("file:///etc/passwd", "unsupported URL scheme \"file\""),
        (
            "mailto:tea@example.com",
            "unsupported URL scheme \"mailto\"",
        ),
        ("ws://example.com/socket", "unsupported URL scheme \"ws\""),
    ] {
        let err = session.get(url).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{url:?}: {err}");
        assert!(
            err.to_string().contains(names),
            "{url:?}: the message {:?} does not say {names:?}",
            err.to_string()
        );
    }
    assert_eq!(session.connector_stats().opened, 0);
    for base in ["not a url", "ftp://example.com/", "http://"] {
        let err = ClientSession::builder().base_url(base).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{base:?}: {err}");
    }
    session.close().await;
}
