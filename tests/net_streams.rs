//! asyncio streams through real sockets on 127.0.0.1: `open_connection`, `start_server`,
//! `StreamReader`, `StreamWriter`, and the logic of the `echo_server` and `wget` examples.

mod common;

#[path = "../examples/echo_server.rs"]
#[allow(dead_code)] // the example's `main` and constants
mod echo_server;

#[path = "../examples/wget.rs"]
#[allow(dead_code)]
mod wget;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::LATE;
use futures_core::Stream;
use kettle::net::streams::{DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER};
use kettle::net::{Server, SocketAddress, StreamError, StreamReader, StreamWriter, TcpListener};
use kettle::sync::Event;

/// Starts a server on a free port of 127.0.0.1 with `handler`.
async fn serve<H, Fut>(handler: H) -> (Server, u16)
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: kettle::net::streams::HandlerResult,
{
    let server = kettle::start_server(handler, "127.0.0.1", 0).await.unwrap();
    let port = server.sockets()[0].port().unwrap();
    (server, port)
}

/// A raw server that, for its first connection, writes each piece in turn with a pause between
/// them (so they arrive as separate segments), then closes.
fn raw_server_sending(pieces: Vec<Vec<u8>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    kettle::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        conn.set_nodelay(true).unwrap();
        for p in pieces {
            conn.write_all(&p).await.unwrap();
            kettle::sleep(Duration::from_millis(20)).await;
        }
    });
    port
}

async fn connect(port: u16) -> (StreamReader, StreamWriter) {
    kettle::open_connection("127.0.0.1", port).await.unwrap()
}

/// A line echo handler: answers each line with itself until the client closes.
async fn line_echo(mut r: StreamReader, w: StreamWriter) -> Result<(), StreamError> {
    loop {
        let line = r.readline().await?;
        if line.is_empty() {
            return Ok(());
        }
        w.write(&line);
        w.drain().await?;
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

// ---- round trips ----

#[kettle::test]
async fn echo_round_trip_through_start_server_and_open_connection() {
    let (server, port) = serve(line_echo).await;
    let (mut r, w) = connect(port).await;
    assert_eq!(
        w.get_extra_info("peername"),
        Some(SocketAddress::Inet(SocketAddr::from((
            [127, 0, 0, 1],
            port
        ))))
    );
    assert_eq!(
        w.get_extra_info("sockname"),
        Some(w.transport().local_addr().unwrap())
    );
    assert_eq!(
        w.get_extra_info("sockname").unwrap().as_inet(),
        Some(w.transport().as_tcp().unwrap().local_addr().unwrap())
    );
    assert_eq!(w.get_extra_info("nonsense"), None);
    let big = format!("{}\n", "x".repeat(50_000));
    for msg in ["hello\n", "kettle streams\n", big.as_str()] {
        w.write(msg.as_bytes());
        w.drain().await.unwrap();
        assert_eq!(r.readline().await.unwrap(), msg.as_bytes());
    }
    w.close();
    assert!(w.is_closing());
    w.wait_closed().await.unwrap();
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn many_concurrent_clients() {
    let (server, port) = serve(line_echo).await;
    let clients: Vec<_> = (0..200u32)
        .map(|i| {
            kettle::spawn(async move {
                let (mut r, w) = connect(port).await;
                for round in 0..5u32 {
                    let msg = format!("client {i} round {round}\n");
                    w.write(msg.as_bytes());
                    w.drain().await.unwrap();
                    assert_eq!(r.readline().await.unwrap(), msg.as_bytes());
                }
                w.close();
                w.wait_closed().await.unwrap();
                i
            })
        })
        .collect();
    let ids = kettle::wait_for(kettle::gather(clients), LATE * 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn open_connection_resolves_names_and_reports_refusals() {
    let (server, port) = serve(line_echo).await;
    // "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
    let (mut r, w) = kettle::open_connection("localhost", port).await.unwrap();
    w.write(b"via name\n");
    assert_eq!(r.readline().await.unwrap(), b"via name\n");

    let err = kettle::open_connection("127.0.0.1", closed_port())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");

    let addrs = kettle::net::lookup_host("localhost", 7).await.unwrap();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 7));
    server.close();
}

#[kettle::test]
async fn lookup_of_a_name_runs_off_the_loop() {
    // A name lookup goes through the executor; the loop keeps ticking meanwhile.
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let ticker = kettle::spawn(async move {
        loop {
            t.set(t.get() + 1);
            kettle::sleep(Duration::from_millis(1)).await;
        }
    });
    let addrs = kettle::net::lookup_host("localhost", 80).await.unwrap();
    assert!(!addrs.is_empty());
    kettle::sleep(Duration::from_millis(5)).await;
    assert!(ticks.get() > 0);
    ticker.cancel();
    // An invalid name is an error, not a panic.
    assert!(kettle::net::lookup_host("no such host.invalid", 80)
        .await
        .is_err());
}

#[kettle::test]
async fn start_server_on_a_name_listens_on_one_port_for_all_its_addresses() {
    let server = kettle::start_server(line_echo, "localhost", 0)
        .await
        .unwrap();
    let socks = server.sockets();
    assert!(!socks.is_empty());
    assert!(socks
        .iter()
        .all(|a| a.is_inet() && a.port() == socks[0].port()));
    for addr in socks.iter().map(|a| a.as_inet().unwrap()) {
        let (mut r, w) = kettle::open_connection(&addr.ip().to_string(), addr.port())
            .await
            .unwrap();
        w.write(b"hi\n");
        assert_eq!(r.readline().await.unwrap(), b"hi\n");
    }
    server.close();
}

#[kettle::test]
async fn start_server_reports_a_port_in_use() {
    let (server, port) = serve(line_echo).await;
    let err = kettle::start_server(line_echo, "127.0.0.1", port)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    server.close();
}

#[kettle::test]
async fn from_tcp_wraps_a_plain_connection() {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = kettle::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        let (r, w) = kettle::net::streams::from_tcp(conn);
        line_echo(r, w).await
    });
    let client = kettle::net::TcpStream::connect(addr).await.unwrap();
    let (mut r, w) = kettle::net::streams::from_tcp(client);
    w.write(b"wrapped\n");
    assert_eq!(r.readline().await.unwrap(), b"wrapped\n");
    w.write_eof();
    kettle::wait_for(server, LATE)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[kettle::test]
async fn servers_sharing_a_port_with_reuse_port_split_the_clients() {
    use kettle::net::streams::{start_server_with, ServerOptions};
    use kettle::net::ListenOptions;
    let options = ServerOptions {
        listen: ListenOptions::new().reuse_port(true),
        limit: 100,
    };
    let counts = [Rc::new(Cell::new(0u32)), Rc::new(Cell::new(0u32))];
    let handler = |count: Rc<Cell<u32>>| {
        move |r: StreamReader, w: StreamWriter| {
            count.set(count.get() + 1);
            assert_eq!(r.limit(), 100);
            line_echo(r, w)
        }
    };
    let a = start_server_with(handler(counts[0].clone()), "127.0.0.1", 0, options)
        .await
        .unwrap();
    let port = a.sockets()[0].port().unwrap();
    let b = start_server_with(handler(counts[1].clone()), "127.0.0.1", port, options)
        .await
        .unwrap();
    for i in 0..50 {
        let (mut r, w) = connect(port).await;
        let msg = format!("{i}\n");
        w.write(msg.as_bytes());
        assert_eq!(r.readline().await.unwrap(), msg.as_bytes());
    }
    assert_eq!(counts[0].get() + counts[1].get(), 50);
    // The kernel hashes connections over both listeners.
    assert!(counts[0].get() > 0 && counts[1].get() > 0);
    a.close();
    b.close();
}

// ---- reader edge cases ----

#[kettle::test]
async fn separators_split_across_writes_are_found() {
    let port = raw_server_sending(vec![
        b"hel".to_vec(),
        b"lo\nwor".to_vec(),
        b"ld\r".to_vec(),
        b"\nrest".to_vec(),
    ]);
    let (mut r, _w) = connect(port).await;
    assert_eq!(r.readline().await.unwrap(), b"hello\n");
    assert_eq!(r.readuntil(b"\r\n").await.unwrap(), b"world\r\n");
    assert!(!r.at_eof());
    // At EOF, readline returns the unterminated rest, then nothing.
    assert_eq!(r.readline().await.unwrap(), b"rest");
    assert!(r.at_eof());
    assert_eq!(r.readline().await.unwrap(), b"");
    assert_eq!(r.read(10).await.unwrap(), b"");
}

#[kettle::test]
async fn readexactly_reports_the_partial_bytes_when_the_stream_ends() {
    let port = raw_server_sending(vec![b"abc".to_vec(), b"de".to_vec()]);
    let (mut r, _w) = connect(port).await;
    assert_eq!(r.readexactly(0).await.unwrap(), b"");
    assert_eq!(r.readexactly(3).await.unwrap(), b"abc");
    match r.readexactly(10).await {
        Err(StreamError::IncompleteRead { partial, expected }) => {
            assert_eq!(partial, b"de");
            assert_eq!(expected, Some(10));
        }
        other => panic!("expected IncompleteRead, got {other:?}"),
    }
    assert!(r.at_eof());
    // As an io::Error it is UnexpectedEof.
    let e: io::Error = r.readexactly(1).await.unwrap_err().into();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
}

#[kettle::test]
async fn readuntil_without_its_separator_returns_the_rest_as_incomplete() {
    let port = raw_server_sending(vec![b"no terminator".to_vec()]);
    let (mut r, _w) = connect(port).await;
    match r.readuntil(b"\r\n").await {
        Err(StreamError::IncompleteRead { partial, expected }) => {
            assert_eq!(partial, b"no terminator");
            assert_eq!(expected, None);
        }
        other => panic!("expected IncompleteRead, got {other:?}"),
    }
    assert!(r.at_eof());
}

#[kettle::test]
async fn limit_overrun_keeps_the_data_readable() {
    let mut line = vec![b'x'; 40];
    line.push(b'\n');
    let port = raw_server_sending(vec![line.clone(), b"tail\n".to_vec()]);
    let (mut r, _w) = connect(port).await;
    r.set_limit(16);
    let mut got = Vec::new();
    let mut overruns = 0;
    loop {
        match r.readline().await {
            Ok(l) => {
                got.extend(l);
                break;
            }
            Err(StreamError::LimitOverrun { consumed }) => {
                overruns += 1;
                // Bounded: no more than the limit plus the separator is ever buffered.
                assert!(r.buffered().len() <= 16 + 1, "{}", r.buffered().len());
                assert!(consumed > 0 && consumed <= r.buffered().len());
                // Nothing was lost: the bytes are still there to be consumed.
                got.extend(r.readexactly(consumed).await.unwrap());
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(overruns >= 2, "{overruns}");
    assert_eq!(got, line);
    assert_eq!(r.readline().await.unwrap(), b"tail\n");
    let e: io::Error = StreamError::LimitOverrun { consumed: 3 }.into();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
}

#[kettle::test]
async fn separator_found_past_the_limit_is_an_overrun_that_consumes_nothing() {
    let mut data = vec![b'y'; 30];
    data.extend_from_slice(b"\nnext\n");
    let port = raw_server_sending(vec![data]);
    let (mut r, _w) = connect(port).await;
    // With the default limit one read buffers the whole segment.
    assert_eq!(r.readexactly(1).await.unwrap(), b"y");
    assert!(r.buffered().len() > 16);
    r.set_limit(16);
    match r.readuntil(b"\n").await {
        Err(StreamError::LimitOverrun { consumed }) => assert_eq!(consumed, 29),
        other => panic!("expected LimitOverrun, got {other:?}"),
    }
    assert_eq!(
        r.readexactly(30).await.unwrap(),
        [&[b'y'; 29][..], b"\n"].concat()
    );
    assert_eq!(r.readline().await.unwrap(), b"next\n");
}

#[kettle::test]
async fn lines_yield_each_line_then_end() {
    let port = raw_server_sending(vec![b"a\nb".to_vec(), b"\n\nc".to_vec()]);
    let (mut r, _w) = connect(port).await;
    let mut lines = r.lines();
    let mut all = Vec::new();
    while let Some(line) = next(&mut lines).await {
        all.push(line.unwrap());
    }
    assert_eq!(all, [&b"a\n"[..], b"b\n", b"\n", b"c"]);
    assert!(next(&mut lines).await.is_none());
}

#[kettle::test]
async fn lines_end_after_an_overrun() {
    let port = raw_server_sending(vec![vec![b'z'; 100]]);
    let (mut r, _w) = connect(port).await;
    r.set_limit(10);
    let mut lines = r.lines();
    assert!(matches!(
        next(&mut lines).await,
        Some(Err(StreamError::LimitOverrun { .. }))
    ));
    assert!(next(&mut lines).await.is_none());
    // The data is still there.
    assert_eq!(r.read(5).await.unwrap(), b"zzzzz");
}

#[kettle::test]
async fn read_returns_at_most_n_and_read_to_end_the_rest() {
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let port = raw_server_sending(vec![payload.clone()]);
    let (mut r, _w) = connect(port).await;
    assert_eq!(r.read(0).await.unwrap(), b"");
    let first = r.read(1000).await.unwrap();
    assert!(!first.is_empty() && first.len() <= 1000);
    // Never more than the limit buffered by plain reads.
    assert!(r.buffered().len() <= r.limit());
    let rest = r.read_to_end().await.unwrap();
    assert_eq!([first, rest].concat(), payload);
    assert!(r.at_eof());
    assert_eq!(r.read_to_end().await.unwrap(), b"");
}

#[kettle::test]
async fn a_cancelled_read_loses_nothing() {
    let port = raw_server_sending(vec![b"par".to_vec(), b"tial\n".to_vec()]);
    let (mut r, _w) = connect(port).await;
    // Time out while only "par" has arrived.
    let first = kettle::wait_for(r.readline(), Duration::from_millis(10)).await;
    assert!(first.unwrap_err().is_timeout());
    assert_eq!(r.readline().await.unwrap(), b"partial\n");
}

// ---- writer: flow control, errors, shutdown ----

#[kettle::test]
async fn drain_waits_while_the_peer_does_not_read_and_resumes_when_it_does() {
    const CHUNK: usize = 32 * 1024;
    // Far more than the kernel's socket buffers can absorb, so the writer must wait.
    const TOTAL: usize = 64 * 1024 * 1024;
    let release = Event::new();
    let received = Rc::new(Cell::new(0usize));
    let (server, port) = {
        let release = release.clone();
        let received = received.clone();
        serve(move |mut r: StreamReader, _w: StreamWriter| {
            let release = release.clone();
            let received = received.clone();
            async move {
                release.wait().await;
                loop {
                    let chunk = r.read(usize::MAX).await.unwrap();
                    if chunk.is_empty() {
                        break;
                    }
                    received.set(received.get() + chunk.len());
                }
            }
        })
        .await
    };
    let (_r, w) = connect(port).await;
    let sent = Rc::new(Cell::new(0usize));
    let max_buffered = Rc::new(Cell::new(0usize));
    let writer = {
        let (w, sent, max_buffered) = (w.clone(), sent.clone(), max_buffered.clone());
        kettle::spawn(async move {
            let chunk = vec![7u8; CHUNK];
            while sent.get() < TOTAL {
                w.write(&chunk);
                max_buffered.set(max_buffered.get().max(w.write_buffer_size()));
                w.drain().await.unwrap();
                sent.set(sent.get() + CHUNK);
            }
            w.write_eof();
        })
    };
    // Wait until the writer stalls in drain.
    let t0 = Instant::now();
    let mut last = usize::MAX;
    let mut still = 0;
    while still < 5 {
        kettle::sleep(Duration::from_millis(20)).await;
        assert!(t0.elapsed() < LATE * 5, "the writer never stalled");
        if sent.get() == last {
            still += 1;
        } else {
            (last, still) = (sent.get(), 0);
        }
    }
    assert!(sent.get() < TOTAL, "drain never waited");
    assert!(!writer.done());
    // Stalled because paused: above the low-water mark, bounded by the high one.
    assert!(w.write_buffer_size() > DEFAULT_LOW_WATER);
    assert!(max_buffered.get() <= DEFAULT_HIGH_WATER + CHUNK);
    assert_eq!(received.get(), 0);

    release.set();
    kettle::wait_for(writer, LATE * 10).await.unwrap().unwrap();
    assert!(max_buffered.get() <= DEFAULT_HIGH_WATER + CHUNK);
    server.close();
    kettle::wait_for(server.wait_closed(), LATE * 5)
        .await
        .unwrap();
    assert_eq!(received.get(), TOTAL);
}

#[kettle::test]
async fn writing_to_a_peer_that_is_gone_fails_in_drain() {
    // The handler drops both halves at once: the server closes the connection.
    let (server, port) = serve(|_r: StreamReader, _w: StreamWriter| async {}).await;
    let (_r, w) = connect(port).await;
    let t0 = Instant::now();
    let err = loop {
        w.write(&[1u8; 4096]);
        match w.drain().await {
            Ok(()) => kettle::sleep(Duration::from_millis(1)).await,
            Err(e) => break e,
        }
        assert!(
            t0.elapsed() < LATE,
            "writes to a closed peer kept succeeding"
        );
    };
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
    assert!(w.is_closing());
    // The error sticks: every later drain and wait_closed reports it; writes are no-ops.
    w.write(b"more");
    assert_eq!(w.write_buffer_size(), 0);
    assert_eq!(w.drain().await.unwrap_err().kind(), err.kind());
    assert_eq!(w.wait_closed().await.unwrap_err().kind(), err.kind());
    server.close();
}

#[kettle::test]
async fn write_eof_half_closes_and_the_answer_still_arrives() {
    let (server, port) = serve(|mut r: StreamReader, w: StreamWriter| async move {
        let request = r.read_to_end().await?;
        w.write(format!("got {} bytes", request.len()).as_bytes());
        w.close();
        w.wait_closed().await
    })
    .await;
    let (mut r, w) = connect(port).await;
    assert!(w.can_write_eof());
    w.write(&[b'q'; 100_000]);
    w.write_eof();
    // Writing after write_eof is refused, reported by drain.
    w.write(b"late");
    assert_eq!(
        w.drain().await.unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    assert_eq!(r.read_to_end().await.unwrap(), b"got 100000 bytes");
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn close_flushes_first_and_wakes_a_blocked_reader() {
    let (server, port) = serve(|mut r: StreamReader, w: StreamWriter| async move {
        // Echo everything back in one piece once the client has sent it all.
        let all = r.read_to_end().await?;
        w.write(&all);
        w.drain().await
    })
    .await;
    let (r, w) = connect(port).await;
    let reader = kettle::spawn(async move {
        let mut r = r;
        r.read(10).await
    });
    kettle::sleep(Duration::from_millis(10)).await;
    assert!(!reader.done());
    let big = vec![3u8; 4 * 1024 * 1024];
    w.write(&big);
    w.close();
    // A blocked reader of this connection sees end of stream.
    let got = kettle::wait_for(reader, LATE).await.unwrap().unwrap();
    assert_eq!(got.unwrap(), b"");
    kettle::wait_for(w.wait_closed(), LATE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.write_buffer_size(), 0);
    // The server did get every byte before the close (it echoes, but we no longer read).
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn abort_discards_the_buffer_of_a_stuck_connection() {
    let hold = Event::new();
    let (server, port) = {
        let hold = hold.clone();
        serve(move |r: StreamReader, w: StreamWriter| {
            let hold = hold.clone();
            async move {
                // Never reads; keeps the connection until told.
                hold.wait().await;
                drop((r, w));
            }
        })
        .await
    };
    let (_r, w) = connect(port).await;
    w.write(&vec![0u8; 32 * 1024 * 1024]);
    assert!(w.write_buffer_size() > 0);
    w.close();
    // The peer never reads, so the close cannot finish...
    assert!(
        kettle::wait_for(w.wait_closed(), Duration::from_millis(100))
            .await
            .is_err()
    );
    // ...until aborted.
    w.abort();
    assert_eq!(w.write_buffer_size(), 0);
    kettle::wait_for(w.wait_closed(), LATE)
        .await
        .unwrap()
        .unwrap();
    hold.set();
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn writes_from_several_handles_stay_whole_and_in_order() {
    let (server, port) = serve(line_echo).await;
    let (mut r, w) = connect(port).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let w = w.clone();
            kettle::spawn(async move {
                for j in 0..50 {
                    w.write(format!("{i}:{j}\n").as_bytes());
                    w.drain().await.unwrap();
                }
            })
        })
        .collect();
    kettle::gather(tasks).await.unwrap();
    let mut last = [None::<u32>; 10];
    for _ in 0..500 {
        let line = String::from_utf8(r.readline().await.unwrap()).unwrap();
        let (i, j) = line.trim_end().split_once(':').unwrap();
        let (i, j): (usize, u32) = (i.parse().unwrap(), j.parse().unwrap());
        assert_eq!(last[i].map_or(0, |l| l + 1), j, "out of order: {line}");
        last[i] = Some(j);
    }
    server.close();
}

#[kettle::test]
async fn set_write_buffer_limits_moves_the_marks() {
    let (server, port) = serve(line_echo).await;
    let (_r, w) = connect(port).await;
    assert_eq!(
        w.write_buffer_limits(),
        (DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER)
    );
    w.set_write_buffer_limits(100, 500);
    assert_eq!(w.write_buffer_limits(), (100, 100));
    w.set_write_buffer_limits(0, 0);
    w.write(b"x\n");
    w.drain().await.unwrap();
    server.close();
}

// ---- server lifetime ----

#[kettle::test]
async fn closing_a_server_with_connected_clients_waits_for_their_handlers() {
    let finished = Rc::new(Cell::new(0u32));
    let (server, port) = {
        let finished = finished.clone();
        serve(move |r, w| {
            let finished = finished.clone();
            async move {
                let out = line_echo(r, w).await;
                finished.set(finished.get() + 1);
                out
            }
        })
        .await
    };
    let mut clients = Vec::new();
    for i in 0..3 {
        let (mut r, w) = connect(port).await;
        let msg = format!("client {i}\n");
        w.write(msg.as_bytes());
        assert_eq!(r.readline().await.unwrap(), msg.as_bytes());
        clients.push((r, w));
    }
    assert_eq!(server.active_connections(), 3);

    server.close();
    assert!(!server.is_serving());
    assert!(server.sockets().is_empty());
    // The listening socket is closed at once: new clients are refused.
    let refused = kettle::open_connection("127.0.0.1", port)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    // The accepted connections go on being served.
    let (r, w) = &mut clients[0];
    w.write(b"still there\n");
    assert_eq!(r.readline().await.unwrap(), b"still there\n");
    // wait_closed waits for the handlers...
    assert!(
        kettle::wait_for(server.wait_closed(), Duration::from_millis(100))
            .await
            .is_err()
    );
    assert_eq!(finished.get(), 0);
    // ...which finish when their clients leave.
    for (_r, w) in &clients {
        w.close();
    }
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
    assert_eq!(finished.get(), 3);
    assert_eq!(server.active_connections(), 0);
}

#[kettle::test]
async fn abort_clients_ends_the_handlers_and_their_connections() {
    let (server, port) = serve(line_echo).await;
    let (mut r, _w) = connect(port).await;
    while server.active_connections() == 0 {
        kettle::yield_now().await;
    }
    server.close();
    server.abort_clients();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
    // The handler's reader and writer were dropped: the client sees end of stream.
    let eof = kettle::wait_for(r.read(10), LATE).await.unwrap().unwrap();
    assert!(eof.is_empty());
}

#[kettle::test]
async fn a_panicking_handler_does_not_stop_the_server() {
    let calls = Rc::new(Cell::new(0u32));
    let (server, port) = {
        let calls = calls.clone();
        serve(move |r, w| {
            calls.set(calls.get() + 1);
            let first = calls.get() == 1;
            async move {
                if first {
                    panic!("handler bug (expected by the test)");
                }
                line_echo(r, w).await
            }
        })
        .await
    };
    let (mut r1, _w1) = connect(port).await;
    assert_eq!(r1.read(10).await.unwrap(), b""); // the panicked handler's connection closed
    let (mut r2, w2) = connect(port).await;
    w2.write(b"ok\n");
    assert_eq!(r2.readline().await.unwrap(), b"ok\n");
    w2.close();
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn serve_forever_returns_on_close_and_closes_when_cancelled() {
    let (server, _port) = serve(line_echo).await;
    let s = server.clone();
    let forever = kettle::spawn(async move { s.serve_forever().await });
    kettle::sleep(Duration::from_millis(10)).await;
    assert!(!forever.done());
    server.close();
    kettle::wait_for(forever, LATE).await.unwrap().unwrap();

    let (server, _port) = serve(line_echo).await;
    let s = server.clone();
    let forever = kettle::spawn(async move { s.serve_forever().await });
    kettle::sleep(Duration::from_millis(10)).await;
    assert!(server.is_serving());
    forever.cancel();
    let _ = forever.await;
    assert!(!server.is_serving());
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
    assert!(format!("{server:?}").contains("serving: false"));
}

// ---- the examples' logic ----

#[kettle::test]
async fn echo_server_answers_in_the_seed_format() {
    let (server, port) = serve(echo_server::handle).await;
    let clients: Vec<_> = (0..20)
        .map(|i| {
            kettle::spawn(async move {
                let (mut r, w) = connect(port).await;
                let me = w.get_extra_info("sockname").unwrap();
                for round in 0..3 {
                    let msg = format!("message {i}.{round}");
                    w.write(msg.as_bytes());
                    w.drain().await.unwrap();
                    let expected = format!("{me} Your msg {msg}");
                    let got = r.readexactly(expected.len()).await.unwrap();
                    assert_eq!(String::from_utf8(got).unwrap(), expected);
                }
                w.close();
                // The handler closes its side when it sees ours closed.
                assert!(r.read_to_end().await.unwrap().is_empty());
            })
        })
        .collect();
    kettle::wait_for(kettle::gather(clients), LATE * 2)
        .await
        .unwrap()
        .unwrap();
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[test]
fn echo_server_arguments() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(echo_server::parse_port(&args(&[])), Ok(9999));
    assert_eq!(
        echo_server::parse_port(&args(&["--port", "7000"])),
        Ok(7000)
    );
    assert_eq!(echo_server::parse_port(&args(&["--port=7001"])), Ok(7001));
    assert!(echo_server::parse_port(&args(&["--port"])).is_err());
    assert!(echo_server::parse_port(&args(&["--port", "x"])).is_err());
    assert!(echo_server::parse_port(&args(&["-v"])).is_err());
    assert_eq!(
        echo_server::reply("1.2.3.4:5", b"hi \xff"),
        "1.2.3.4:5 Your msg hi \u{fffd}"
    );
}

#[test]
fn wget_targets() {
    assert_eq!(
        wget::parse_target("example.com"),
        Ok(("example.com".into(), 80))
    );
    assert_eq!(
        wget::parse_target("127.0.0.1:8080"),
        Ok(("127.0.0.1".into(), 8080))
    );
    assert_eq!(wget::parse_target("[::1]:81"), Ok(("::1".into(), 81)));
    assert_eq!(wget::parse_target("::1"), Ok(("::1".into(), 80)));
    assert!(wget::parse_target("host:port").is_err());
    assert!(wget::parse_target(":80").is_err());
}

/// A tiny HTTP/1.0 server: records each request head, answers with fixed headers, closes.
async fn http_server(requests: Rc<RefCell<Vec<String>>>) -> (Server, u16) {
    serve(move |mut r: StreamReader, w: StreamWriter| {
        let requests = requests.clone();
        async move {
            let mut head = String::new();
            loop {
                let line = r.readline().await?;
                head.push_str(&String::from_utf8_lossy(&line));
                if line == b"\r\n" || line.is_empty() {
                    break;
                }
            }
            requests.borrow_mut().push(head);
            w.write(
                b"HTTP/1.0 200 OK\r\nServer: kettle-test\r\nContent-Length: 5\r\n\
                  Connection: close\r\n\r\nhello",
            );
            w.close();
            w.wait_closed().await?;
            Ok::<(), StreamError>(())
        }
    })
    .await
}

#[kettle::test]
async fn wget_prints_headers_and_reports_failures_without_stopping_the_others() {
    let requests = Rc::new(RefCell::new(Vec::new()));
    let (http, http_port) = http_server(requests.clone()).await;
    // A server that accepts and never answers: the per-host timeout must end it.
    let (silent, silent_port) = serve(|r: StreamReader, w: StreamWriter| async move {
        kettle::sleep(Duration::from_secs(60)).await;
        drop((r, w));
    })
    .await;
    let ok = format!("127.0.0.1:{http_port}");
    let refused = format!("127.0.0.1:{}", closed_port());
    let hangs = format!("127.0.0.1:{silent_port}");
    let targets = vec![refused.clone(), ok.clone(), hangs.clone()];

    let lines = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink: wget::Sink = {
        let lines = lines.clone();
        Rc::new(RefCell::new(move |l: String| lines.borrow_mut().push(l)))
    };
    let timeout = Duration::from_millis(300);
    let t0 = Instant::now();
    wget::wget_all(&targets, timeout, sink).await;
    let elapsed = t0.elapsed();
    // Concurrent: the whole run takes one timeout, not the sum of the hosts' times.
    assert!(
        elapsed >= timeout && elapsed < timeout + LATE,
        "{elapsed:?}"
    );

    let lines = lines.borrow();
    // Every host is announced before any answer arrives, as in the seed's output.
    assert_eq!(
        lines[..3],
        targets
            .iter()
            .map(|t| format!("wget {t}..."))
            .collect::<Vec<_>>()
    );
    let headers: Vec<&String> = lines.iter().filter(|l| l.contains(" header > ")).collect();
    assert_eq!(
        headers,
        [
            format!("{ok} header > HTTP/1.0 200 OK"),
            format!("{ok} header > Server: kettle-test"),
            format!("{ok} header > Content-Length: 5"),
            format!("{ok} header > Connection: close"),
        ]
        .iter()
        .collect::<Vec<_>>()
    );
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains(" failed: ")).collect();
    assert_eq!(failed.len(), 2, "{lines:?}");
    assert!(
        failed[0].starts_with(&format!("wget {refused} failed: ")),
        "{lines:?}"
    );
    assert!(
        failed[1].starts_with(&format!("wget {hangs} failed: timed out")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3 + 4 + 2);
    assert_eq!(
        *requests.borrow(),
        [format!("GET / HTTP/1.0\r\nHost: {ok}\r\n\r\n")]
    );
    http.close();
    silent.close();
    silent.abort_clients();
}
