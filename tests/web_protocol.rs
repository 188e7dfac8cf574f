//! The HTTP/1.x connection layer of `kettle::web`, seen from a client on a real socket:
//! versions, keep-alive and `Connection: close` (and closing without a reset that would cut
//! the last response short), pipelining (order, flushing ahead of a waiting handler,
//! backpressure against a client that does not read), HEAD, `Date`, framing headers a
//! handler cannot override, streamed responses, request bodies (length and chunked,
//! trailers, extensions, 100-continue, drained or refused when unread), panicking handlers
//! and abandoned streamed responses, half-closed clients, clients that vanish mid-body, and
//! `TestClient` itself.

mod web_proto_support;

use std::time::{Duration, Instant, SystemTime};

use web_proto_support::*;

fn start() -> (Server, Probe) {
    let (build, probe) = probe_app();
    (serve(options(), build), probe)
}

// --- versions, keep-alive, Connection --------------------------------------------------------

#[test]
fn an_http11_get_gets_an_exact_keep_alive_response() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&get("/"));
    let r = c.response(false);
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(
        r.header("connection"),
        None,
        "1.1 keep-alive is the default"
    );
    assert_eq!(r.header_count("date"), 1);
    assert_eq!(r.text(), "Hello, World!");
    // Nothing else follows, and the connection stays usable.
    assert!(c.buf.is_empty());
    for _ in 0..3 {
        c.send_str(&get("/"));
        assert_eq!(c.response(false).text(), "Hello, World!");
    }
}

/// Reads as many bytes as `expected` describes (`<date>` stands for the 29-character date)
/// and returns them with the date masked the same way.
fn read_masked(c: &mut Conn, expected: &str) -> String {
    let raw = c.read_exact(expected.len() - "<date>".len() + 29);
    let text = String::from_utf8_lossy(&raw).into_owned();
    match text.find("Date: ") {
        Some(at) => format!("{}<date>{}", &text[..at + 6], &text[at + 6 + 29..]),
        None => text,
    }
}

#[test]
fn common_responses_are_byte_exact_whichever_way_the_head_is_built() {
    // The common response (200, no custom headers, small body) is assembled in one piece;
    // bodies too large for that, HEAD and HTTP/1.0 go through the same framing rules.
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&get("/"));
    let want =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\
         Date: <date>\r\n\r\nHello, World!";
    assert_eq!(read_masked(&mut c, want), want);
    c.send_str("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let want =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\
         Date: <date>\r\n\r\n";
    assert_eq!(read_masked(&mut c, want), want);
    c.send_str("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let want =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\
         Connection: keep-alive\r\nDate: <date>\r\n\r\nHello, World!";
    assert_eq!(read_masked(&mut c, want), want);
    // A body larger than the head buffer's room follows the head uncombined.
    c.send_str(&get("/big/5000"));
    let r = c.response(false);
    assert_eq!(r.header("content-length"), Some("5000"));
    assert_eq!(r.body, pattern(5000));
    assert!(c.buf.is_empty());
}

#[test]
fn the_date_header_is_an_imf_fixdate_of_now() {
    let (server, _probe) = start();
    let r = server.request(&get("/"));
    let date = r.header("date").expect("Date");
    assert_eq!(date.len(), 29, "{date:?}");
    assert!(date.ends_with(" GMT"), "{date:?}");
    let when = httpdate::parse_http_date(date).expect("a valid HTTP date");
    let now = SystemTime::now();
    let skew = now.duration_since(when).unwrap_or_else(|e| e.duration());
    assert!(
        skew < Duration::from_secs(5),
        "Date {date:?} is {skew:?} off"
    );
}

#[test]
fn http10_without_keep_alive_is_answered_then_closed() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str("GET /info HTTP/1.0\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "version=HTTP/1.0 keep_alive=false");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed(PROMPT);
}

#[test]
fn http10_with_keep_alive_says_so_and_stays_usable() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    for _ in 0..3 {
        c.send_str("GET /info HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.response(false);
        assert_eq!(r.text(), "version=HTTP/1.0 keep_alive=true");
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.header("content-length"), Some("32"));
    }
    // The last request without keep-alive ends it.
    c.send_str("GET / HTTP/1.0\r\n\r\n");
    assert!(c.response(false).closes());
    c.expect_closed(PROMPT);
}

#[test]
fn connection_close_is_honoured() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str("GET /info HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.text(), "version=HTTP/1.1 keep_alive=false");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed(PROMPT);
    // Tokens are case-insensitive and may come in a list.
    let mut c = Conn::open(server.addr);
    c.send_str("GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, CLOSE\r\n\r\n");
    assert!(c.response(false).closes());
    c.expect_closed(PROMPT);
}

#[test]
fn requests_pipelined_after_connection_close_are_not_served() {
    let (server, probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!(
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n{}",
        get("/hit")
    ));
    // Read only after the server has surely closed: the response must survive even
    // though the server closed with the second request unread.
    std::thread::sleep(Duration::from_millis(300));
    let r = c.response(false);
    assert_eq!(r.text(), "Hello, World!");
    assert!(r.closes());
    assert_eq!(c.read_to_eof(), b"", "exactly one response");
    assert_eq!(probe.hits(), 0);
}

#[test]
fn a_closing_response_is_not_cut_short_by_bytes_the_client_sends_after_it() {
    // The server closes after this response. Bytes the client sends meanwhile sit unread in
    // the server's socket; a plain close() with unread input sends a reset, which destroys
    // whatever of the response the kernel had not delivered yet.
    let (server, probe) = start();
    let n = 3_000_000;
    let mut c = Conn::open(server.addr);
    c.send_str(&format!(
        "GET /big/{n} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    ));
    std::thread::sleep(Duration::from_millis(100));
    c.send_str(&get("/hit"));
    // Read late: by now the server has queued the whole response and closed.
    std::thread::sleep(Duration::from_millis(300));
    let r = c.response(false);
    assert!(r.closes());
    assert!(r.body == pattern(n), "the response was cut short");
    assert_eq!(c.read_to_eof(), b"");
    assert_eq!(probe.hits(), 0);
}

// --- pipelining ------------------------------------------------------------------------------

#[test]
fn sixteen_pipelined_requests_get_sixteen_responses_in_order_on_one_connection() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    let batch: String = (0..16).map(|i| get(&format!("/p/{i}"))).collect();
    c.send_str(&batch);
    for i in 0..16 {
        let r = c.response(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), i.to_string());
        assert!(!r.closes());
    }
    assert!(c.is_open_and_silent(Duration::from_millis(100)));
    // And the connection goes on.
    c.send_str(&get("/p/next"));
    assert_eq!(c.response(false).text(), "next");
}

#[test]
fn a_slow_handler_in_a_pipeline_does_not_reorder_responses() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    let paths: Vec<String> = (0..16)
        .map(|i| match i {
            5 => "/sleep/300".to_string(),
            11 => "/sleep/50".to_string(),
            _ => format!("/p/{i}"),
        })
        .collect();
    let batch: String = paths.iter().map(|p| get(p)).collect();
    c.send_str(&batch);
    for (i, p) in paths.iter().enumerate() {
        let expected = match p.strip_prefix("/sleep/") {
            Some(ms) => format!("slept {ms}"),
            None => i.to_string(),
        };
        assert_eq!(c.response(false).text(), expected, "response {i}");
    }
}

#[test]
fn responses_before_a_waiting_handler_are_flushed_before_it_finishes() {
    let (server, probe) = start();
    let mut c = Conn::open(server.addr);
    let batch = format!(
        "{}{}{}{}{}",
        get("/p/0"),
        get("/p/1"),
        get("/p/2"),
        get("/gate"),
        get("/p/4")
    );
    c.send_str(&batch);
    assert_eq!(probe.event(PROMPT).as_deref(), Some("gate entered"));
    // The gate is closed: these can only arrive if they were flushed while /gate waits.
    for i in 0..3 {
        assert_eq!(c.response(false).text(), i.to_string());
    }
    assert!(c.is_open_and_silent(Duration::from_millis(100)));
    probe.open_gate();
    assert_eq!(c.response(false).text(), "gate passed");
    assert_eq!(c.response(false).text(), "4");
}

#[test]
fn pipelined_large_responses_arrive_whole_and_in_order_to_a_slow_reader() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    let sizes = [
        100_000usize,
        10,
        4096,
        4097,
        300_000,
        0,
        70_000,
        1,
        65_536,
        200_000,
    ];
    let batch: String = sizes.iter().map(|n| get(&format!("/big/{n}"))).collect();
    c.send_str(&batch);
    // Let the server fill the socket buffers and block on writing.
    std::thread::sleep(Duration::from_millis(200));
    for &n in &sizes {
        let r = c.response(false);
        assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
        assert!(r.body == pattern(n), "body of /big/{n} differs");
    }
}

#[test]
fn a_client_that_pipelines_but_does_not_read_cannot_make_the_server_buffer_everything() {
    // 50 requests for 2 MB each fit in one small write. A server that runs them all before
    // writing holds 100 MB for a client that may never read; it must write (and wait for
    // the client) as it goes, so it runs only as far ahead as the socket buffers allow.
    let (server, probe) = start();
    let mut c = Conn::open(server.addr);
    let n = 2_000_000;
    let batch: String = (0..50).map(|_| get(&format!("/hit-big/{n}"))).collect();
    c.send_str(&batch);
    std::thread::sleep(Duration::from_millis(500));
    let ran = probe.hits();
    assert!(
        ran < 25,
        "{ran} of 50 handlers ran for a client that read nothing"
    );
    // Reading lets the rest through, in order.
    for _ in 0..50 {
        assert!(c.response(false).body.len() == n);
    }
    assert_eq!(probe.hits(), 50);
}

#[test]
fn a_pipeline_split_mid_head_across_writes_is_served() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    let batch: String = (0..8).map(|i| get(&format!("/p/{i}"))).collect();
    let bytes = batch.as_bytes();
    for piece in bytes.chunks(7) {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(2));
    }
    for i in 0..8 {
        assert_eq!(c.response(false).text(), i.to_string());
    }
}

#[test]
fn blank_lines_between_pipelined_requests_are_tolerated() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("{}\r\n\r\n{}", get("/p/1"), get("/p/2")));
    assert_eq!(c.response(false).text(), "1");
    assert_eq!(c.response(false).text(), "2");
}

// --- HEAD ------------------------------------------------------------------------------------

#[test]
fn head_has_the_get_headers_and_no_body() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&get("/big/5000"));
    let g = c.response(false);
    // HEAD pipelined with a GET: if the HEAD response carried a body, the GET's status
    // line would not come next.
    c.send_str(&format!(
        "HEAD /big/5000 HTTP/1.1\r\nHost: t\r\n\r\n{}",
        get("/p/after")
    ));
    let h = c.response(true);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), g.header("content-length"));
    assert_eq!(h.header("content-type"), g.header("content-type"));
    let next = c.response(false);
    assert_eq!(next.text(), "after");
    // HEAD of a streamed response: no chunks either.
    c.send_str(&format!(
        "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n{}",
        get("/p/after2")
    ));
    let h = c.response(true);
    assert_eq!(h.status, 200);
    assert_eq!(c.response(false).text(), "after2");
}

#[test]
fn framing_headers_set_by_a_handler_cannot_desynchronize_the_connection() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("{}{}", get("/framing-headers"), get("/p/1")));
    let r = c.response(false);
    assert_eq!(r.header_count("content-length"), 1);
    assert_eq!(r.header("content-length"), Some("3"));
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("connection"), None);
    assert_eq!(r.text(), "abc");
    assert_eq!(c.response(false).text(), "1");
    // An HTTP/1.0 client without keep-alive is still told the connection closes.
    let mut c = Conn::open(server.addr);
    c.send_str("GET /framing-headers HTTP/1.0\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.header_count("connection"), 1);
    assert!(r.closes());
    c.expect_closed(PROMPT);
}

// --- streamed responses and versions -------------------------------------------------------

#[test]
fn a_streamed_response_is_chunked_for_11_and_close_delimited_for_10() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&get("/stream"));
    let r = c.response(false);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "abc");
    c.send_str(&get("/p/1"));
    assert_eq!(c.response(false).text(), "1");

    let mut c = Conn::open(server.addr);
    c.send_str("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("content-length"), None);
    assert!(r.closes());
    assert_eq!(r.text(), "abc");
}

// --- request bodies ----------------------------------------------------------------------------

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn post_chunked(path: &str, chunks: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}")
}

#[test]
fn read_text_and_json_with_content_length() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&post("/echo", "hello body"));
    assert_eq!(c.response(false).text(), "hello body");
    c.send_str(&post("/text", "héllo"));
    assert_eq!(c.response(false).text(), "text:héllo");
    c.send_str(&post("/json", r#"{"a": [1, 2]}"#));
    let r = c.response(false);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"got":{"a":[1,2]}}"#);
    c.send_str(&post("/json", "{not json"));
    assert_eq!(c.response(false).status, 400);
    // An empty body.
    c.send_str(&post("/echo", ""));
    assert_eq!(c.response(false).body, b"");
    // Still one healthy connection.
    c.send_str(&get("/p/1"));
    assert_eq!(c.response(false).text(), "1");
}

#[test]
fn read_text_and_json_with_chunked_bodies() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&post_chunked(
        "/echo",
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    ));
    let r = c.response(false);
    assert_eq!(r.text(), "hello world");
    c.send_str(&post_chunked("/text", "3\r\nabc\r\n0\r\n\r\n"));
    assert_eq!(c.response(false).text(), "text:abc");
    c.send_str(&post_chunked("/json", "4\r\n[1, \r\n2\r\n2]\r\n0\r\n\r\n"));
    assert_eq!(c.response(false).text(), r#"{"got":[1,2]}"#);
    c.send_str(&post_chunked("/echo", "0\r\n\r\n"));
    assert_eq!(c.response(false).body, b"");
    // A large chunked body, in big chunks.
    let big = pattern(200_000);
    let mut wire = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in big.chunks(30_000) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    c.send(&wire);
    assert!(c.response(false).body == big);
    c.send_str(&get("/p/1"));
    assert_eq!(c.response(false).text(), "1");
}

#[test]
fn chunk_extensions_and_trailers_are_accepted() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&post_chunked(
        "/echo",
        "5;name=value\r\nhello\r\n1 ; quoted=\"a;b\"\r\n!\r\n0;last\r\nX-Checksum: abc\r\nX-Other: 2\r\n\r\n",
    ));
    let r = c.response(false);
    assert_eq!(r.text(), "hello!");
    assert_eq!(r.header("x-trailer-x-checksum"), Some("abc"));
    assert_eq!(r.header("x-trailer-x-other"), Some("2"));
    c.send_str(&get("/p/1"));
    assert_eq!(c.response(false).text(), "1");
}

#[test]
fn a_chunked_body_split_across_many_writes_is_reassembled() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    let wire = post_chunked(
        "/echo",
        "3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n1\r\nZ\r\n0\r\nT: 1\r\n\r\n",
    );
    // One byte per write, with pauses so they arrive as separate segments.
    for (i, b) in wire.as_bytes().iter().enumerate() {
        c.send(std::slice::from_ref(b));
        if i % 4 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let r = c.response(false);
    assert_eq!(r.text(), "abc0123456789abcdefZ");
    assert_eq!(r.header("x-trailer-t"), Some("1"));
    // The same over a body with Content-Length.
    let wire = post("/echo", "split into single bytes");
    for b in wire.as_bytes() {
        c.send(std::slice::from_ref(b));
    }
    assert_eq!(c.response(false).text(), "split into single bytes");
}

#[test]
fn a_body_and_the_next_request_in_one_write_are_kept_apart() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!(
        "{}{}{}",
        post("/echo", "GET /p/evil HTTP/1.1\r\nHost: t\r\n\r\n"),
        post_chunked("/echo", "3\r\nabc\r\n0\r\n\r\n"),
        get("/p/2")
    ));
    assert_eq!(
        c.response(false).text(),
        "GET /p/evil HTTP/1.1\r\nHost: t\r\n\r\n"
    );
    assert_eq!(c.response(false).text(), "abc");
    assert_eq!(c.response(false).text(), "2");
    assert!(c.is_open_and_silent(Duration::from_millis(100)));
}

#[test]
fn an_unread_small_body_is_drained_and_the_connection_kept() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("{}{}", post("/reject", "0123456789"), get("/p/1")));
    let r = c.response(false);
    assert_eq!(r.status, 403);
    assert!(!r.closes());
    assert_eq!(c.response(false).text(), "1");
}

#[test]
fn an_unread_large_body_closes_the_connection_but_the_response_arrives() {
    let (build, _probe) = probe_app_with(|app| {
        app.set_client_max_size(64 << 20);
    });
    let server = serve(options(), build);
    let mut c = Conn::open(server.addr);
    let body = pattern(2 << 20);
    c.send_str(&format!(
        "POST /reject HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    // The client pushes its body while the server answers without reading it; the
    // server may stop reading, so the client's write may fail part-way.
    let mut writer = c.stream.try_clone().unwrap();
    let pusher = std::thread::spawn(move || {
        use std::io::Write;
        let _ = writer.write_all(&body);
    });
    let r = c.response(false);
    assert_eq!(r.status, 403);
    assert!(r.closes());
    let _ = c.read_to_eof();
    pusher.join().unwrap();
}

// --- Expect: 100-continue ---------------------------------------------------------------------

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    // The client sends nothing more until it has the interim response.
    assert_eq!(c.read_exact(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send_str("hello");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello");
    assert!(!r.closes());
    // Chunked, too, and the connection is still in step.
    c.send_str(
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(c.read_exact(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send_str("2\r\nok\r\n0\r\n\r\n");
    assert_eq!(c.response(false).text(), "ok");
    c.send_str(&get("/p/1"));
    assert_eq!(c.response(false).text(), "1");
}

#[test]
fn expect_100_continue_with_the_body_already_sent_needs_no_interim_response() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    );
    // Either a 100 first or not; the final response must be the echo, and no stray
    // interim response may follow it.
    let mut r = c.response(false);
    if r.status == 100 {
        r = c.response(false);
    }
    assert_eq!(r.text(), "hello");
    c.send_str(&get("/p/1"));
    assert_eq!(c.response(false).text(), "1");
}

#[test]
fn a_handler_that_rejects_without_reading_sends_no_100_and_closes() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(
        "POST /reject HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
    );
    let r = c.response(false);
    assert_eq!(r.status, 403, "no 100 Continue before the final response");
    assert!(
        r.closes(),
        "the body may still come: only closing keeps framing"
    );
    c.expect_closed(PROMPT);
}

#[test]
fn no_100_continue_is_sent_after_the_final_response_has_begun() {
    // A handler that starts streaming its response before reading the body: a 100 sent
    // then would land inside the response body. The client has its final head and sends
    // the body on its own.
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(
        "POST /stream-echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let mut head = Vec::new();
    while find(&head, b"\r\n\r\n").is_none() {
        head.extend(c.read_exact(1));
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    c.send_str("hello");
    c.shutdown_write();
    let rest = String::from_utf8(c.read_to_eof()).unwrap();
    assert!(!rest.contains("100 Continue"), "{rest:?}");
    assert_eq!(rest, "5\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn expect_100_continue_over_the_size_limit_gets_413_without_100() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n",
    );
    let r = c.response(false);
    assert_eq!(r.status, 413);
    assert!(r.closes());
}

#[test]
fn http10_expect_is_ignored() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str("POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hi");
}

// --- panics -----------------------------------------------------------------------------------

#[test]
fn a_panicking_handler_gets_500_and_the_connection_goes_on() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("{}{}", get("/panic"), get("/p/1")));
    let r = c.response(false);
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("handler panicked"), "no detail leaks");
    assert_eq!(c.response(false).text(), "1");
    // Other connections never noticed.
    assert_eq!(server.request(&get("/")).status, 200);
}

#[test]
fn a_handler_that_panics_before_returning_its_future_gets_500() {
    let (server, _probe) = start();
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("{}{}", get("/panic-sync"), get("/p/1")));
    let r = c.response(false);
    assert_eq!(r.status, 500);
    assert_eq!(c.response(false).text(), "1");
    assert_eq!(server.request(&get("/")).status, 200);
}

// --- half-closed and vanishing clients --------------------------------------------------------

#[test]
fn a_client_that_half_closes_after_its_request_gets_the_response() {
    let (server, _probe) = start();
    for path in ["/", "/sleep/100", "/big/300000"] {
        let mut c = Conn::open(server.addr);
        c.send_str(&get(path));
        c.shutdown_write();
        let r = c.response(false);
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.body.is_empty());
        // Then the server closes its side too.
        c.expect_closed(PROMPT);
    }
    // Two pipelined requests and a POST with its body, then EOF.
    let mut c = Conn::open(server.addr);
    c.send_str(&format!(
        "{}{}",
        get("/sleep/50"),
        post("/echo", "last words")
    ));
    c.shutdown_write();
    assert_eq!(c.response(false).text(), "slept 50");
    assert_eq!(c.response(false).text(), "last words");
    c.expect_closed(PROMPT);
}

#[test]
fn a_client_that_disconnects_mid_body_fails_the_read_and_the_server_survives() {
    let (server, probe) = start();
    {
        let mut c = Conn::open(server.addr);
        c.send_str("POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nonly part");
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = probe.event(PROMPT).expect("the handler saw the end");
    assert!(e.starts_with("body error: "), "{e}");
    {
        let mut c = Conn::open(server.addr);
        c.send_str(&post_chunked("/count", "5\r\nhello\r\n"));
        std::thread::sleep(Duration::from_millis(50));
        c.shutdown_write();
        // The handler fails with a 400 it may still deliver to the half-closed client.
        let rest = c.read_to_eof();
        if !rest.is_empty() {
            assert!(rest.starts_with(b"HTTP/1.1 400 "), "{rest:?}");
        }
    }
    let e = probe.event(PROMPT).expect("the handler saw the end");
    assert!(e.starts_with("body error: "), "{e}");
    let t0 = Instant::now();
    assert_eq!(server.request(&get("/")).status, 200);
    assert!(t0.elapsed() < PROMPT);
}

#[test]
fn a_streamed_response_abandoned_after_its_head_closes_the_connection() {
    // Once a streamed head is out, a 500 (or any other response) can no longer be sent:
    // writing one would land inside the chunked body. The only honest end is to close
    // without the last chunk, so the client sees an incomplete body.
    let (server, probe) = start();
    for what in ["panic", "error", "replace"] {
        let mut c = Conn::open(server.addr);
        c.send_str(&format!(
            "{}{}",
            get(&format!("/stream-then/{what}")),
            get("/hit")
        ));
        let all = c.read_to_eof();
        let text = String::from_utf8_lossy(&all).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{what}: {text}");
        assert!(
            text.contains("Transfer-Encoding: chunked\r\n"),
            "{what}: {text}"
        );
        assert_eq!(
            count_status_lines(&all),
            1,
            "{what}: a second response inside the body: {text}"
        );
        assert!(
            text.ends_with("\r\n\r\n7\r\npartial\r\n"),
            "{what}: the body must end unterminated: {text}"
        );
    }
    assert_eq!(probe.hits(), 0);
}

// --- TestClient --------------------------------------------------------------------------------

mod test_client {
    use std::time::Duration;

    use kettle::web::{ServerOptions, TestClient};

    use super::web_proto_support::probe_app;

    #[kettle::test]
    async fn reuses_its_connection_and_reconnects_after_the_server_closed_it() {
        let (build, _probe) = probe_app();
        let options = ServerOptions::default().keepalive_timeout(Duration::from_millis(100));
        let client = TestClient::with_options(build(), options).await.unwrap();
        let r = client.get("/p/1").await.unwrap();
        assert_eq!(r.text(), "1");
        assert_eq!(client.runner().active_connections(), 1);
        // The server closes the idle connection; the client must notice and reconnect
        // rather than fail the next request.
        kettle::sleep(Duration::from_millis(400)).await;
        assert_eq!(client.runner().active_connections(), 0);
        let r = client.get("/p/2").await.unwrap();
        assert_eq!(r.text(), "2");
        let r = client.get("/p/3").await.unwrap();
        assert_eq!(r.text(), "3");
        assert_eq!(client.runner().active_connections(), 1);
        client.close().await;
    }

    #[kettle::test]
    async fn sends_bodies_heads_and_explicit_lengths() {
        let (build, _probe) = probe_app();
        let client = TestClient::new(build()).await.unwrap();
        let r = client.post("/echo", "abc").await.unwrap();
        assert_eq!(r.text(), "abc");
        // A Content-Length given by hand is not sent twice.
        let r = client
            .request(http::Method::POST, "/echo")
            .header("Content-Length", "3")
            .body("xyz")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text(), "xyz");
        let r = client
            .request(http::Method::HEAD, "/big/10")
            .send()
            .await
            .unwrap();
        assert_eq!(r.header("content-length"), Some("10"));
        assert!(r.body().is_empty());
        let r = client.get("/stream").await.unwrap();
        assert_eq!(r.text(), "abc");
        let r = client.get("/panic").await.unwrap();
        assert_eq!(r.status(), 500);
        let r = client.get("/").await.unwrap();
        assert_eq!(r.text(), "Hello, World!");
        client.close().await;
    }
}
