//! What `kettle::web` refuses, and how: size limits (414, 431, 413), HTTP versions (505) and
//! every request-smuggling vector (400). Each refusal must close the connection, and the
//! bytes after a refused request must never be served as another request: every test puts a
//! `GET /hit` behind the bad request and checks the handler never ran.

mod web_proto_support;

use std::time::{Duration, Instant};

use web_proto_support::*;

fn start() -> (Server, Probe) {
    let (build, probe) = probe_app();
    (serve(options(), build), probe)
}

/// Sends `raw` followed by a smuggled `GET /hit` in the same write; expects exactly one
/// response with `status` that closes the connection, and nothing served after it.
fn refused(server: &Server, raw: &[u8], status: u16) -> Response {
    let mut c = Conn::open(server.addr);
    let mut wire = raw.to_vec();
    wire.extend_from_slice(get("/hit").as_bytes());
    c.send(&wire);
    let r = c.response(false);
    assert_eq!(
        r.status,
        status,
        "{:?} got {}",
        String::from_utf8_lossy(raw),
        r.raw_head
    );
    assert!(
        r.closes(),
        "{:?}: no Connection: close",
        String::from_utf8_lossy(raw)
    );
    let rest = c.read_to_eof();
    assert!(
        rest.is_empty(),
        "{:?}: more after the refusal: {:?}",
        String::from_utf8_lossy(raw),
        String::from_utf8_lossy(&rest)
    );
    r
}

fn assert_no_hits(probe: &Probe) {
    // A smuggled request would have run by the time its connection closed.
    assert_eq!(probe.hits(), 0, "a smuggled request was served");
}

// --- 414, 431 -------------------------------------------------------------------------------

#[test]
fn a_request_line_over_the_limit_is_414() {
    let (server, probe) = start();
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    refused(&server, long.as_bytes(), 414);
    // At the limit is fine: 8190 bytes of request line.
    let path = "a".repeat(8190 - "GET / HTTP/1.1".len());
    let r = server.request(&format!("GET /{path} HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_eq!(r.status, 404);
    assert_no_hits(&probe);
}

#[test]
fn an_endless_request_line_is_414_before_it_ends() {
    let (server, probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("GET /{}", "a".repeat(20_000)));
    let r = c.response(false);
    assert_eq!(r.status, 414);
    assert!(r.closes());
    assert_no_hits(&probe);
}

#[test]
fn the_line_limit_follows_server_options() {
    let (build, _probe) = probe_app();
    let server = serve(options().max_line_size(100), build);
    let r = server.request(&format!(
        "GET /p/{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "b".repeat(80)
    ));
    assert_eq!(r.status, 200);
    let r = server.request(&format!(
        "GET /p/{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "b".repeat(100)
    ));
    assert_eq!(r.status, 414);
}

#[test]
fn headers_too_large_or_too_many_are_431() {
    let (server, probe) = start();
    // One huge field.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "v".repeat(40_000)
    );
    refused(&server, big.as_bytes(), 431);
    // Many fields adding up past 32 KiB.
    let fields: String = (0..90)
        .map(|i| format!("X-{i}: {}\r\n", "v".repeat(400)))
        .collect();
    refused(
        &server,
        format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n").as_bytes(),
        431,
    );
    // More than 100 fields, and more than the parser's 128.
    for n in [101, 129, 500] {
        let fields: String = (0..n).map(|i| format!("X-{i}: 1\r\n")).collect();
        refused(
            &server,
            format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n").as_bytes(),
            431,
        );
    }
    // 99 + Host = 100 is allowed.
    let fields: String = (0..99).map(|i| format!("X-{i}: 1\r\n")).collect();
    let r = server.request(&format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n"));
    assert_eq!(r.status, 200);
    assert_no_hits(&probe);
}

#[test]
fn an_endless_head_is_431_before_it_ends() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..100 {
        // The server may close while we are still sending.
        if std::io::Write::write_all(
            &mut c.stream,
            format!("X-{i}: {}\r\n", "v".repeat(1000)).as_bytes(),
        )
        .is_err()
        {
            break;
        }
    }
    let r = c.response(false);
    assert_eq!(r.status, 431);
}

#[test]
fn head_limits_follow_server_options() {
    let (build, _probe) = probe_app();
    let server = serve(options().max_head_size(1024).max_headers(5), build);
    let fields: String = (0..4).map(|i| format!("X-{i}: 1\r\n")).collect();
    assert_eq!(
        server
            .request(&format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n"))
            .status,
        200
    );
    let fields: String = (0..5).map(|i| format!("X-{i}: 1\r\n")).collect();
    assert_eq!(
        server
            .request(&format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n"))
            .status,
        431
    );
    let r = server.request(&format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "v".repeat(1100)
    ));
    assert_eq!(r.status, 431);
}

// --- 413 -------------------------------------------------------------------------------------

#[test]
fn a_declared_body_over_the_limit_is_413_before_any_of_it_is_sent() {
    let (server, probe) = start();
    let mut c = Conn::open(server.addr);
    let t0 = Instant::now();
    // Only the head: the answer cannot depend on reading the body.
    c.send_str("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 413);
    assert!(r.closes());
    assert!(t0.elapsed() < PROMPT, "413 took {:?}", t0.elapsed());
    c.expect_closed(PROMPT);
    // The same on a route that does not exist, and on GET: the limit is the server's.
    refused(
        &server,
        b"PUT /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n",
        413,
    );
    // Bytes that would be the body are never parsed as requests.
    refused(
        &server,
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n{}",
            get("/hit")
        )
        .as_bytes(),
        413,
    );
    assert_no_hits(&probe);
}

#[test]
fn client_max_size_sets_the_limit() {
    let (build, probe) = probe_app_with(|app| {
        app.set_client_max_size(10);
    });
    let server = serve(options(), build);
    let r =
        server.request("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "0123456789");
    refused(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n01234567890",
        413,
    );
    assert_no_hits(&probe);
}

#[test]
fn a_chunked_body_over_the_limit_is_413_on_read() {
    let (build, probe) = probe_app_with(|app| {
        app.set_client_max_size(100);
    });
    let server = serve(options(), build);
    // Within the limit, in several chunks.
    let ok = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n{}\r\n32\r\n{}\r\n0\r\n\r\n",
        "a".repeat(50),
        "b".repeat(50)
    );
    let r = server.request(&ok);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 100);
    // One byte over, split across chunks.
    let over = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n{}\r\n33\r\n{}\r\n0\r\n\r\n",
        "a".repeat(50),
        "b".repeat(51)
    );
    // If the server happened to decode the whole body before it saw the total, the framing is
    // intact and the connection may go on; otherwise it must close. Either way it stays in
    // step: the request behind it is served as itself or not at all.
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("{over}{}", get("/p/after")));
    let r = c.response(false);
    assert_eq!(r.status, 413);
    if r.closes() {
        assert_eq!(c.read_to_eof(), b"");
    } else {
        assert_eq!(c.response(false).text(), "after");
    }
    // Over in a single chunk, with the rest of the body never sent: the server answers
    // without waiting for it.
    let mut c = Conn::open(server.addr);
    c.send_str(&format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n{}",
        "c".repeat(200)
    ));
    let r = c.response(false);
    assert_eq!(r.status, 413);
    assert!(r.closes());
    // text() and json() share the limit.
    for path in ["/text", "/json"] {
        refused(
            &server,
            format!(
                "POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n{}\r\n0\r\n\r\n",
                "d".repeat(101)
            )
            .as_bytes(),
            413,
        );
    }
    assert_no_hits(&probe);
}

// --- versions --------------------------------------------------------------------------------

#[test]
fn versions_other_than_10_and_11_are_505() {
    let (server, probe) = start();
    for line in [
        "GET / HTTP/2.0",
        "GET / HTTP/1.2",
        "GET / HTTP/0.9",
        "GET / HTTP/3.0",
        "PRI * HTTP/2.0",
    ] {
        refused(
            &server,
            format!("{line}\r\nHost: t\r\n\r\n").as_bytes(),
            505,
        );
    }
    assert_no_hits(&probe);
}

// --- smuggling --------------------------------------------------------------------------------

#[test]
fn content_length_and_transfer_encoding_together_are_400() {
    let (server, probe) = start();
    for raw in [
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        refused(&server, raw.as_bytes(), 400);
    }
    assert_no_hits(&probe);
}

#[test]
fn malformed_or_repeated_content_length_is_400() {
    let (server, probe) = start();
    for value in [
        "+5",
        "-5",
        "0x5",
        "5, 5",
        "5,5",
        "5 5",
        "5.0",
        "five",
        "",
        "99999999999999999999999",
        "18446744073709551616",
    ] {
        refused(
            &server,
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {value}\r\n\r\nhello")
                .as_bytes(),
            400,
        );
    }
    for pair in [("5", "5"), ("5", "6"), ("0", "5")] {
        refused(
            &server,
            format!(
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nContent-Length: {}\r\n\r\nhello",
                pair.0, pair.1
            )
            .as_bytes(),
            400,
        );
    }
    assert_no_hits(&probe);
}

#[test]
fn a_transfer_encoding_not_ending_in_chunked_is_400() {
    let (server, probe) = start();
    for value in [
        "identity",
        "chunked, identity",
        "gzip",
        "chunked, chunked",
        "xchunked",
        "chunked-false",
        "\"chunked\"",
        "",
        ",",
    ] {
        refused(
            &server,
            format!(
                "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {value}\r\n\r\n0\r\n\r\n"
            )
            .as_bytes(),
            400,
        );
    }
    // Split over two fields, the last one not chunked.
    refused(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        400,
    );
    // Transfer-Encoding is not HTTP/1.0.
    refused(
        &server,
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    // A coding we cannot decode before chunked is "not implemented", still closed.
    refused(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
    assert_no_hits(&probe);
}

#[test]
fn bad_or_overflowing_chunk_sizes_are_400() {
    let (server, probe) = start();
    for chunks in [
        "zz\r\nhi\r\n0\r\n\r\n",
        "-2\r\nhi\r\n0\r\n\r\n",
        "0x2\r\nhi\r\n0\r\n\r\n",
        "+2\r\nhi\r\n0\r\n\r\n",
        " 2\r\nhi\r\n0\r\n\r\n",
        "2 2\r\nhi\r\n0\r\n\r\n",
        "\r\nhi\r\n0\r\n\r\n",
        "10000000000000002\r\nhi\r\n0\r\n\r\n",
        "ffffffffffffffffff\r\nhi\r\n0\r\n\r\n",
        // Chunk data not followed by CRLF, or longer than declared.
        "2\r\nhiX\r\n0\r\n\r\n",
        "2\r\nhi0\r\n\r\n",
        // Bare LF as a line end.
        "2\nhi\r\n0\r\n\r\n",
        "2\r\nhi\r\n0\n\n",
        // A size line with a NUL, and an extension with a bare CR.
        "2\0\r\nhi\r\n0\r\n\r\n",
        "2;a=\rb\r\nhi\r\n0\r\n\r\n",
        // A malformed trailer.
        "2\r\nhi\r\n0\r\nno colon\r\n\r\n",
        "2\r\nhi\r\n0\r\nBad Name: 1\r\n\r\n",
    ] {
        let raw =
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}");
        refused(&server, raw.as_bytes(), 400);
    }
    assert_no_hits(&probe);
}

#[test]
fn oversized_chunk_lines_and_trailers_are_400() {
    let (server, probe) = start();
    let long_ext = format!("2;x={}\r\nhi\r\n0\r\n\r\n", "e".repeat(5000));
    let long_trailer = format!("2\r\nhi\r\n0\r\nX-T: {}\r\n\r\n", "t".repeat(9000));
    let many_trailers: String = (0..40).map(|i| format!("X-{i}: 1\r\n")).collect();
    let many_trailers = format!("2\r\nhi\r\n0\r\n{many_trailers}\r\n");
    for chunks in [long_ext, long_trailer, many_trailers] {
        let raw =
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}");
        refused(&server, raw.as_bytes(), 400);
    }
    // An endless size line is refused before it ends.
    let mut c = Conn::open(server.addr);
    c.send_str("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1");
    c.send(&[b' '; 8000]);
    let r = c.response(false);
    assert_eq!(r.status, 400);
    assert!(r.closes());
    assert_no_hits(&probe);
}

#[test]
fn obs_fold_is_400() {
    let (server, probe) = start();
    for raw in [
        "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: t\r\n\r\n",
    ] {
        refused(&server, raw.as_bytes(), 400);
    }
    assert_no_hits(&probe);
}

#[test]
fn whitespace_before_the_colon_is_400() {
    let (server, probe) = start();
    for raw in [
        "GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost\t: t\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ] {
        refused(&server, raw.as_bytes(), 400);
    }
    assert_no_hits(&probe);
}

#[test]
fn nul_cr_or_lf_inside_a_field_is_400() {
    let (server, probe) = start();
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\nb\r\n\r\n",
        // A bare LF that would make a second field for one reader and part of a value for
        // another (the llhttp CVE-2023-30589 shape).
        b"POST /echo HTTP/1.1\r\nHost: t\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\n\n",
        b"GET / HTTP/1.1\r\nX-\0: 1\r\nHost: t\r\n\r\n",
        b"GET /a\0b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a\rb HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        refused(&server, raw, 400);
    }
    assert_no_hits(&probe);
}

#[test]
fn a_missing_or_repeated_host_in_http11_is_400() {
    let (server, probe) = start();
    refused(&server, b"GET / HTTP/1.1\r\n\r\n", 400);
    refused(
        &server,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    );
    // HTTP/1.0 needs none.
    let r = server.request("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_no_hits(&probe);
}

#[test]
fn malformed_request_lines_are_400() {
    let (server, probe) = start();
    for raw in [
        &b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /  HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET foo HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET /caf\xc3 HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        refused(&server, raw, 400);
    }
    assert_no_hits(&probe);
}

#[test]
fn the_connection_is_closed_even_if_the_client_keeps_sending() {
    // After a refusal the server reads and drops for a moment (so its answer is not lost to
    // a reset), but never for long, and never serves what it reads.
    let (server, probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 400);
    let t0 = Instant::now();
    let mut writer = c.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let line = get("/hit");
        while t0.elapsed() < Duration::from_secs(8) {
            if std::io::Write::write_all(&mut writer, line.as_bytes()).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    });
    let _ = c.read_to_eof();
    assert!(t0.elapsed() < PROMPT, "closed after {:?}", t0.elapsed());
    assert!(
        flood.join().unwrap(),
        "the server never closed the connection"
    );
    assert_no_hits(&probe);
}
