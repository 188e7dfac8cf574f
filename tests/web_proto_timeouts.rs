//! Time in `kettle::web`'s connections: the head timeout against slowloris, the keep-alive idle
//! timeout, the body read timeout, stalled connections that must not slow anyone else down,
//! and the graceful shutdown (in-flight requests finish with `Connection: close`, idle
//! connections close at once, new ones are refused, stuck handlers are cancelled).
//!
//! Timeouts are configured short (200 ms) and asserted generously (within 5 s), and never
//! "not before" more than the configured time minus a margin, so load cannot make them flaky.

mod web_proto_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use web_proto_support::*;

const SHORT: Duration = Duration::from_millis(200);

// --- the head timeout ------------------------------------------------------------------------

#[test]
fn a_slowloris_head_gets_408_within_the_header_timeout() {
    let (build, probe) = probe_app();
    let server = serve(options().header_timeout(SHORT), build);
    let mut c = Conn::open(server.addr);
    let head = b"GET /hit HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n";
    let mut writer = c.stream.try_clone().unwrap();
    let t0 = Instant::now();
    // One byte every 20 ms, as long as the server lets us: the head is never complete.
    let trickle = std::thread::spawn(move || {
        for b in head.iter().cycle().take(2000) {
            if writer.write_all(std::slice::from_ref(b)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let r = c.response(false);
    let took = t0.elapsed();
    assert_eq!(r.status, 408);
    assert!(r.closes());
    assert!(
        took >= SHORT - Duration::from_millis(50),
        "408 after {took:?}"
    );
    assert!(took < SHORT + PROMPT, "408 after {took:?}");
    let _ = c.read_to_eof();
    assert!(t0.elapsed() < SHORT + PROMPT);
    drop(c);
    trickle.join().unwrap();
    assert_eq!(probe.hits(), 0);
}

#[test]
fn a_partial_head_then_silence_gets_408() {
    let (build, _probe) = probe_app();
    let server = serve(options().header_timeout(SHORT), build);
    let t0 = Instant::now();
    let mut c = Conn::open(server.addr);
    c.send_str("GET / HTTP/1.1\r\nHo");
    let r = c.response(false);
    assert_eq!(r.status, 408);
    assert!(t0.elapsed() < SHORT + PROMPT);
    c.expect_closed(PROMPT);
}

#[test]
fn the_header_timeout_does_not_cut_off_a_connection_that_sends_whole_requests() {
    // Requests spread over more than the header timeout in total, each one complete.
    let (build, _probe) = probe_app();
    let server = serve(options().header_timeout(SHORT), build);
    let mut c = Conn::open(server.addr);
    for i in 0..6 {
        c.send_str(&get(&format!("/p/{i}")));
        assert_eq!(c.response(false).text(), i.to_string());
        std::thread::sleep(Duration::from_millis(80));
    }
}

#[test]
fn many_slowloris_clients_each_get_408_on_time() {
    let (build, _probe) = probe_app();
    let server = serve(options().header_timeout(SHORT), build);
    let t0 = Instant::now();
    let mut conns: Vec<Conn> = (0..50)
        .map(|_| {
            let mut c = Conn::open(server.addr);
            c.send_str("GET / HTTP/1.1\r\nHost: t\r\n");
            c
        })
        .collect();
    for c in &mut conns {
        assert_eq!(c.response(false).status, 408);
    }
    assert!(t0.elapsed() < SHORT + PROMPT, "took {:?}", t0.elapsed());
}

// --- keep-alive -------------------------------------------------------------------------------

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout() {
    let (build, _probe) = probe_app();
    let server = serve(options().keepalive_timeout(SHORT), build);
    let mut c = Conn::open(server.addr);
    // Timed from before the request: the server's idle wait starts after it, so the close
    // cannot come earlier than this plus the timeout, however late this thread runs.
    let t0 = Instant::now();
    c.send_str(&get("/"));
    assert_eq!(c.response(false).status, 200);
    c.expect_closed(SHORT + PROMPT);
    let took = t0.elapsed();
    assert!(
        took >= SHORT - Duration::from_millis(20),
        "closed after {took:?}"
    );
}

#[test]
fn a_connection_that_never_sends_is_closed_too() {
    let (build, _probe) = probe_app();
    let server = serve(
        options().keepalive_timeout(SHORT).header_timeout(SHORT),
        build,
    );
    let mut c = Conn::open(server.addr);
    c.expect_closed(SHORT + PROMPT);
}

#[test]
fn each_request_restarts_the_keepalive_timer() {
    let (build, _probe) = probe_app();
    let server = serve(
        options().keepalive_timeout(Duration::from_millis(400)),
        build,
    );
    let mut c = Conn::open(server.addr);
    // Twelve requests 100 ms apart: 1.2 s in all, three times the idle timeout.
    for i in 0..12 {
        c.send_str(&get(&format!("/p/{i}")));
        assert_eq!(c.response(false).text(), i.to_string());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_handler_slower_than_the_keepalive_timeout_is_not_cut_off() {
    let (build, _probe) = probe_app();
    let server = serve(
        options().keepalive_timeout(SHORT).header_timeout(SHORT),
        build,
    );
    let mut c = Conn::open(server.addr);
    c.send_str(&get("/sleep/600"));
    assert_eq!(c.response(false).text(), "slept 600");
    c.send_str(&get("/p/1"));
    assert_eq!(c.response(false).text(), "1");
}

// --- the body timeout --------------------------------------------------------------------------

#[test]
fn a_stalled_body_fails_the_read_after_the_body_timeout() {
    let (build, probe) = probe_app();
    let server = serve(options().body_timeout(SHORT), build);
    for head in [
        "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
        "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    ] {
        let t0 = Instant::now();
        let mut c = Conn::open(server.addr);
        c.send_str(head);
        let r = c.response(false);
        assert_eq!(r.status, 400);
        assert!(r.closes());
        assert!(t0.elapsed() < SHORT + PROMPT);
        let e = probe.event(PROMPT).expect("the handler's read failed");
        assert!(e.starts_with("body error: "), "{e}");
        c.expect_closed(PROMPT);
    }
    // A body that trickles in, each piece well within the timeout, is fine.
    let mut c = Conn::open(server.addr);
    c.send_str("POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n");
    for piece in ["ab", "cd", "ef"] {
        std::thread::sleep(Duration::from_millis(100));
        c.send_str(piece);
    }
    assert_eq!(c.response(false).text(), "6");
}

// --- stalled connections do not delay others ------------------------------------------------------

#[test]
fn three_hundred_stalled_connections_never_delay_a_normal_request() {
    let (build, probe) = probe_app();
    let server = serve(options(), build);
    let mut stalled: Vec<TcpStream> = Vec::new();
    for i in 0..300 {
        let mut s = connect(server.addr);
        match i % 3 {
            // Silent.
            0 => {}
            // Half a head.
            1 => s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Par").unwrap(),
            // A head and part of a body the handler is waiting for.
            _ => s
                .write_all(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npart")
                .unwrap(),
        }
        stalled.push(s);
    }
    // Normal requests, each on a new connection, and several on one.
    for _ in 0..5 {
        let t0 = Instant::now();
        let r = server.request(&get("/"));
        assert_eq!(r.status, 200);
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(3), "a request took {took:?}");
    }
    let mut c = Conn::open(server.addr);
    let t0 = Instant::now();
    for i in 0..20 {
        c.send_str(&get(&format!("/p/{i}")));
        assert_eq!(c.response(false).text(), i.to_string());
    }
    assert!(t0.elapsed() < Duration::from_secs(3));
    // The stalled ones are all still open and waiting, none answered.
    for s in &mut stalled[..30] {
        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let mut b = [0u8; 1];
        let r = std::io::Read::read(s, &mut b);
        assert!(r.is_err(), "a stalled connection got {r:?}");
    }
    assert!(probe.event(Duration::from_millis(10)).is_none());
}

// --- graceful shutdown ------------------------------------------------------------------------

#[test]
fn shutdown_finishes_in_flight_requests_closes_idle_ones_and_refuses_new_ones() {
    let (build, probe) = probe_app();
    let mut server = serve(options().shutdown_timeout(Duration::from_secs(30)), build);
    // A keep-alive connection, idle after one request.
    let mut idle = Conn::open(server.addr);
    idle.send_str(&get("/"));
    assert_eq!(idle.response(false).status, 200);
    // A connection that has not sent anything yet.
    let mut silent = Conn::open(server.addr);
    // A request in flight, held at the gate.
    let mut busy = Conn::open(server.addr);
    busy.send_str(&get("/gate"));
    assert_eq!(probe.event(PROMPT).as_deref(), Some("gate entered"));

    let t0 = Instant::now();
    server.begin_shutdown();
    // Idle connections close at once, while the gate is still shut.
    idle.expect_closed(PROMPT);
    silent.expect_closed(PROMPT);
    // New connections are refused once the listener is closed.
    assert!(
        eventually(PROMPT, || TcpStream::connect(server.addr).is_err()),
        "the listener still accepts"
    );
    // The request in flight is still running: let it finish.
    assert!(server.wait_shutdown(Duration::from_millis(100)).is_none());
    probe.open_gate();
    let r = busy.response(false);
    assert_eq!(r.text(), "gate passed");
    assert!(
        r.closes(),
        "the last response must say the connection closes"
    );
    busy.expect_closed(PROMPT);
    let took = server.wait_shutdown(PROMPT).expect("shutdown returned");
    assert!(took < PROMPT + Duration::from_secs(1), "{took:?}");
    assert!(t0.elapsed() < 2 * PROMPT);
}

#[test]
fn shutdown_cancels_a_stuck_handler_after_the_shutdown_timeout() {
    let (build, probe) = probe_app();
    let mut server = serve(options().shutdown_timeout(SHORT), build);
    let mut stuck = Conn::open(server.addr);
    stuck.send_str(&get("/forever"));
    assert_eq!(probe.event(PROMPT).as_deref(), Some("forever entered"));
    server.begin_shutdown();
    let took = server
        .wait_shutdown(SHORT + PROMPT)
        .expect("shutdown returned despite the stuck handler");
    assert!(took >= SHORT - Duration::from_millis(50), "{took:?}");
    // The client gets no response, only the close.
    stuck.expect_closed(PROMPT);
}

#[test]
fn shutdown_with_nothing_running_returns_at_once() {
    let (build, _probe) = probe_app();
    let mut server = serve(options().shutdown_timeout(Duration::from_secs(30)), build);
    assert_eq!(server.request(&get("/")).status, 200);
    // That connection got Connection-less keep-alive; it was closed by the client (dropped).
    server.begin_shutdown();
    let took = server.wait_shutdown(PROMPT).expect("shutdown returned");
    assert!(took < PROMPT, "{took:?}");
}

#[test]
fn a_pipelined_request_behind_the_in_flight_one_is_not_started_after_shutdown() {
    // Once the in-flight response says Connection: close, what the client pipelined behind
    // it is dropped unserved.
    let (build, probe) = probe_app();
    let mut server = serve(options().shutdown_timeout(Duration::from_secs(30)), build);
    let mut c = Conn::open(server.addr);
    c.send_str(&format!("{}{}", get("/gate"), get("/hit")));
    assert_eq!(probe.event(PROMPT).as_deref(), Some("gate entered"));
    server.begin_shutdown();
    std::thread::sleep(Duration::from_millis(50));
    probe.open_gate();
    let r = c.response(false);
    assert_eq!(r.text(), "gate passed");
    assert!(r.closes());
    assert_eq!(c.read_to_eof(), b"");
    assert!(server.wait_shutdown(PROMPT).is_some());
    assert_eq!(probe.hits(), 0);
}

#[test]
fn shutdown_closes_a_connection_with_a_partial_head_at_once() {
    // No request is in flight on it (there is none yet), so there is nothing to wait for:
    // waiting out the 30 s header timeout would hold the whole shutdown up.
    let (build, probe) = probe_app();
    let mut server = serve(options().shutdown_timeout(Duration::from_secs(30)), build);
    let mut partial = Conn::open(server.addr);
    partial.send_str("GET /hit HTTP/1.1\r\nHost: t\r\n");
    // Make sure the server has read it before the shutdown begins.
    let mut other = Conn::open(server.addr);
    other.send_str(&get("/"));
    assert_eq!(other.response(false).status, 200);
    std::thread::sleep(Duration::from_millis(50));
    server.begin_shutdown();
    let t0 = Instant::now();
    let _ = partial.read_to_eof();
    assert!(t0.elapsed() < PROMPT, "closed after {:?}", t0.elapsed());
    let took = server.wait_shutdown(PROMPT).expect("shutdown returned");
    assert!(took < PROMPT, "{took:?}");
    assert_eq!(probe.hits(), 0);
}
