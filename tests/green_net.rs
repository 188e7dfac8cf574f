//! `kettle::green::net` through real sockets on 127.0.0.1: blocking-style `std::io` code on
//! green threads, each suspending only itself, against green, async and plain `std::net`
//! peers.
//!
//! Covered: an echo server with a green thread per connection under 200 green clients and a
//! few OS-thread clients; `BufReader::read_line` over slowly arriving partial lines;
//! `io::copy`; reads and writes through `&TcpStream` and `try_clone`d handles; read and write
//! timeouts (`TimedOut`, the connection still usable); refused connections; connecting by
//! name; EOF; addresses; UDP in both modes with a receive timeout; green threads sharing one
//! socket (several acceptors, two readers, two UDP receivers) and the turn passing on when a
//! queued one is killed or times out; `shutdown` waking a blocked reader; killing green
//! threads blocked in `accept`, `read` and `write`, a panicking handler, and green threads
//! still blocked when the main one returns; green and async clients of one green server on
//! one loop.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kettle::green::{
    self,
    net::{lookup_host, TcpListener, TcpStream, UdpSocket},
    GreenThread,
};

/// Runs `body` as the main green thread of a fresh loop and returns its value.
fn green_main<T: 'static>(body: impl FnOnce() -> T + 'static) -> T {
    green::run(body).expect("the main green thread")
}

/// A port nobody listens on right now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Echoes everything `stream` sends until EOF, with `io::copy` between two borrows of the
/// one stream (a read half and a write half, as std allows).
fn echo(stream: TcpStream) -> io::Result<u64> {
    let (mut from, mut to) = (&stream, &stream);
    io::copy(&mut from, &mut to)
}

/// A green echo server: one green thread accepts, one green thread per connection echoes.
/// Returns its address and the acceptor (kill it to stop accepting).
fn echo_server() -> (SocketAddr, GreenThread<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = green::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.expect("accept");
            green::spawn(move || echo(stream));
        }
    });
    (addr, acceptor)
}

/// `len` bytes that differ per `seed` and per position, so a misplaced or foreign byte shows.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed * 7) as u8)
        .collect()
}

/// Waits from green code for an OS thread to finish, without blocking the loop.
fn join_os_thread<T: Send + 'static>(handle: std::thread::JoinHandle<T>) -> T {
    green::wait(kettle::run_in_executor(move || handle.join()))
        .expect("the executor ran the join")
        .expect("the OS thread did not panic")
}

#[test]
fn echo_server_serves_200_green_clients_and_os_thread_clients_at_once() {
    const GREEN_CLIENTS: u32 = 200;
    const STD_CLIENTS: u32 = 8;
    let served = green_main(|| {
        let (addr, acceptor) = echo_server();

        // Plain std::net clients on an OS thread, sharing the server with the green ones.
        let std_side = std::thread::spawn(move || {
            (0..STD_CLIENTS)
                .map(|i| {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    // Small enough to sit in the socket buffers while we write it all first.
                    let payload = pattern(10_000 + i, 8 * 1024 + i as usize);
                    s.write_all(&payload).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).unwrap();
                    back == payload
                })
                .filter(|ok| *ok)
                .count()
        });

        // Each green client writes from one green thread and reads from another, so a payload
        // larger than the socket buffers cannot deadlock; sizes vary up to ~100 KB.
        let clients: Vec<_> = (0..GREEN_CLIENTS)
            .map(|i| {
                green::spawn(move || {
                    let stream = TcpStream::connect(addr).unwrap();
                    let payload = Rc::new(pattern(i, 1 + (i as usize * 509) % 100_000));
                    let writer = {
                        let stream = stream.try_clone().unwrap();
                        let payload = payload.clone();
                        green::spawn(move || {
                            for chunk in payload.chunks(7_000) {
                                (&stream).write_all(chunk).unwrap();
                            }
                            stream.shutdown(Shutdown::Write).unwrap();
                        })
                    };
                    let mut back = Vec::new();
                    (&stream).read_to_end(&mut back).unwrap();
                    writer.join().unwrap();
                    assert_eq!(back.len(), payload.len(), "client {i}");
                    assert!(back == *payload, "client {i} got other bytes back");
                })
            })
            .collect();
        for (i, result) in green::joinall(clients).into_iter().enumerate() {
            result.unwrap_or_else(|e| panic!("green client {i}: {e}"));
        }
        let std_ok = join_os_thread(std_side);
        acceptor.kill();
        assert!(acceptor.join().unwrap_err().is_cancelled());
        std_ok
    });
    assert_eq!(served, STD_CLIENTS as usize);
}

#[test]
fn read_line_assembles_lines_from_slow_partial_writes_while_others_run() {
    let (lines, ticks) = green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = green::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_nodelay(true).unwrap();
            for piece in ["hel", "lo\nwor", "ld\n", "\nla", "st"] {
                (&stream).write_all(piece.as_bytes()).unwrap();
                green::sleep(Duration::from_millis(20));
            }
            // Dropping the stream closes it: the reader's last line ends at EOF.
        });
        // Proves the loop keeps running other green threads while read_line waits.
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = {
            let ticks = ticks.clone();
            green::spawn(move || loop {
                green::sleep(Duration::from_millis(5));
                ticks.set(ticks.get() + 1);
            })
        };
        let stream = TcpStream::connect(addr).unwrap();
        let mut reader = BufReader::new(&stream);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).unwrap();
            assert_eq!(n, line.len());
            lines.push(line);
            if n == 0 {
                break;
            }
        }
        writer.join().unwrap();
        ticker.kill();
        (lines, ticks.get())
    });
    assert_eq!(lines, ["hello\n", "world\n", "\n", "last", ""]);
    assert!(ticks >= 3, "the ticker ran only {ticks} times in ~100 ms");
}

#[test]
fn io_copy_moves_a_megabyte_both_ways_exactly() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let data = Rc::new(pattern(99, 1 << 20));
        let sender = {
            let data = data.clone();
            green::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                let sent = io::copy(&mut &data[..], &mut stream).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                // Then everything comes back the other way.
                let mut back = Vec::new();
                let got = io::copy(&mut stream, &mut back).unwrap();
                (sent, got, back)
            })
        };
        let (mut conn, peer) = listener.accept().unwrap();
        assert_eq!(conn.peer_addr().unwrap(), peer);
        let mut received = Vec::new();
        assert_eq!(
            io::copy(&mut conn, &mut received).unwrap(),
            data.len() as u64
        );
        assert!(received == *data);
        io::copy(&mut &received[..], &mut conn).unwrap();
        drop(conn);
        let (sent, got, back) = sender.join().unwrap();
        assert_eq!(sent, data.len() as u64);
        assert_eq!(got, data.len() as u64);
        assert!(back == *data);
    });
}

#[test]
fn reads_and_writes_through_shared_references_and_clones() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();

        // `&TcpStream` is Read + Write, as with std.
        (&client).write_all(b"via a shared reference").unwrap();
        let mut buf = [0u8; 22];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"via a shared reference");

        // A clone is the same socket: written through one, read through another, and it
        // keeps the socket open after the original is dropped.
        let client2 = client.try_clone().unwrap();
        drop(client);
        let mut server2 = server.try_clone().unwrap();
        client2
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (&client2).write_all(b"clone").unwrap();
        let mut five = [0u8; 5];
        server2.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"clone");
        (&server).write_all(b"back").unwrap();
        let mut four = [0u8; 4];
        (&client2).read_exact(&mut four).unwrap();
        assert_eq!(&four, b"back");

        // Timeouts belong to the socket, as with std's try_clone.
        server
            .set_read_timeout(Some(Duration::from_millis(70)))
            .unwrap();
        assert_eq!(
            server2.read_timeout().unwrap(),
            Some(Duration::from_millis(70))
        );

        // Shutting down through one handle ends the direction for all.
        client2.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server2.read(&mut buf).unwrap(), 0);
        assert_eq!((&server).read(&mut buf).unwrap(), 0);

        // Vectored writes arrive in order.
        let parts = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")];
        let n = (&server).write_vectored(&parts).unwrap();
        assert_eq!(n, 4);
        let mut got = [0u8; 4];
        (&client2).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcd");
    });
}

#[test]
fn empty_reads_and_writes_return_zero_at_once_like_std() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let start = Instant::now();
        // No data is waiting; std returns Ok(0) for an empty buffer without waiting.
        assert_eq!((&server).read(&mut []).unwrap(), 0);
        assert_eq!((&client).write(&[]).unwrap(), 0);
        assert_eq!((&client).write_vectored(&[]).unwrap(), 0);
        assert!(start.elapsed() < Duration::from_secs(1));
        // And the stream is untouched by them.
        (&client).write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        (&server).read_exact(&mut one).unwrap();
        assert_eq!(&one, b"x");
    });
}

#[test]
fn a_read_timeout_is_timed_out_and_the_connection_stays_usable() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();

        assert_eq!(client.read_timeout().unwrap(), None);
        let err = client.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(
            client.read_timeout().unwrap(),
            Some(Duration::from_millis(50))
        );

        let mut buf = [0u8; 16];
        let start = Instant::now();
        let err = (&client).read(&mut buf).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(waited >= Duration::from_millis(45), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");

        // Twice in a row, then the data that arrives later is read whole.
        let err = (&client).read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let late = green::spawn(move || {
            green::sleep(Duration::from_millis(10));
            (&server).write_all(b"late").unwrap();
            server
        });
        let n = (&client).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"late");
        let server = late.join().unwrap();

        // Both directions still work, and closing is orderly.
        client.set_read_timeout(None).unwrap();
        (&client).write_all(b"bye").unwrap();
        let mut three = [0u8; 3];
        (&server).read_exact(&mut three).unwrap();
        assert_eq!(&three, b"bye");
        drop(client);
        assert_eq!((&server).read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn a_write_timeout_is_timed_out_and_loses_no_accounted_byte() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();

        // Nobody reads, so the buffers fill and a write times out; every byte a write
        // reported as sent must then arrive, and nothing else.
        let chunk = pattern(5, 64 * 1024);
        let mut sent = Vec::new();
        let err = loop {
            match (&client).write(&chunk) {
                Ok(n) => sent.extend_from_slice(&chunk[..n]),
                Err(e) => break e,
            }
            assert!(sent.len() < 256 << 20, "the send buffer never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(!sent.is_empty());

        client.shutdown(Shutdown::Write).unwrap();
        let mut received = Vec::new();
        (&server).read_to_end(&mut received).unwrap();
        assert_eq!(received.len(), sent.len());
        assert!(received == sent);
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    green_main(|| {
        let port = free_port();
        let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    });
}

#[test]
fn connecting_by_name_resolves_through_lookup_host() {
    green_main(|| {
        let (addr, acceptor) = echo_server();
        let port = addr.port();

        let resolved = lookup_host("localhost", port).unwrap();
        assert!(!resolved.is_empty());
        assert!(resolved
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == port));
        assert_eq!(
            lookup_host("127.0.0.1", port).unwrap(),
            vec![addr],
            "a literal needs no resolver"
        );

        // "localhost" may resolve to ::1 first, where nothing listens: the next address is
        // tried, as std does.
        let by_string = format!("localhost:{port}");
        for stream in [
            TcpStream::connect(by_string.as_str()).unwrap(),
            TcpStream::connect(&by_string).unwrap(),
            TcpStream::connect(("localhost", port)).unwrap(),
            TcpStream::connect(("localhost".to_string(), port)).unwrap(),
            TcpStream::connect(format!("127.0.0.1:{port}")).unwrap(),
            TcpStream::connect(&[addr][..]).unwrap(),
        ] {
            assert_eq!(stream.peer_addr().unwrap(), addr);
            (&stream).write_all(b"named").unwrap();
            let mut back = [0u8; 5];
            (&stream).read_exact(&mut back).unwrap();
            assert_eq!(&back, b"named");
        }

        for bad in ["localhost", "localhost:http", "localhost:70000"] {
            let err = TcpStream::connect(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}: {err}");
        }
        acceptor.kill();
    });
}

#[test]
fn addresses_match_on_both_ends() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        let client = TcpStream::connect(addr).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        assert_eq!(server.local_addr().unwrap(), addr);
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
        assert_eq!(peer, client.local_addr().unwrap());

        // The options std users reach for.
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        client.set_ttl(42).unwrap();
        assert_eq!(client.ttl().unwrap(), 42);
        assert!(client.take_error().unwrap().is_none());
        let debug = format!("{client:?}");
        assert!(debug.contains(&addr.to_string()), "{debug}");
    });
}

#[test]
fn eof_reads_zero_every_time_and_the_other_direction_goes_on() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (&client).write_all(b"last words").unwrap();
        client.shutdown(Shutdown::Write).unwrap();

        let mut all = Vec::new();
        (&server).read_to_end(&mut all).unwrap();
        assert_eq!(all, b"last words");
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            assert_eq!((&server).read(&mut buf).unwrap(), 0);
        }
        // Half-closed: the server can still answer.
        (&server).write_all(b"reply").unwrap();
        drop(server);
        let mut reply = String::new();
        (&client).read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "reply");
        assert_eq!((&client).read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn udp_send_to_recv_from_and_connected_send_recv() {
    green_main(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());

        // b waits in recv_from on its own green thread while a sends.
        let echo = green::spawn(move || {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(b.send_to(&buf[..n], from).unwrap(), n);
            (b, from, buf[..n].to_vec())
        });
        green::sleep(Duration::from_millis(5));
        assert_eq!(a.send_to(b"ping", b_addr).unwrap(), 4);
        let mut buf = [0u8; 64];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], b_addr));
        let (b, seen_from, seen) = echo.join().unwrap();
        assert_eq!((seen_from, seen.as_slice()), (a_addr, &b"ping"[..]));

        // Datagram boundaries are kept: two sends are two receives.
        a.send_to(b"one", b_addr).unwrap();
        a.send_to(b"two!", b_addr).unwrap();
        let (n1, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n1], b"one");
        let (n2, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n2], b"two!");

        // Connected mode, with a name for the address.
        let err = a.peer_addr().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        a.connect(format!("localhost:{}", b_addr.port())).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        b.connect(a_addr).unwrap();
        assert_eq!(a.send(b"connected").unwrap(), 9);
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"connected");
        b.send(b"reply").unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"reply");
    });
}

#[test]
fn udp_recv_timeout_is_timed_out_and_the_socket_stays_usable() {
    green_main(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_read_timeout(Some(Duration::from_millis(40))).unwrap();
        assert_eq!(a.read_timeout().unwrap(), Some(Duration::from_millis(40)));
        let mut buf = [0u8; 16];
        let start = Instant::now();
        let err = a.recv_from(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= Duration::from_millis(35));
        a.connect(b.local_addr().unwrap()).unwrap();
        let err = a.recv(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");

        b.send_to(b"after", a.local_addr().unwrap()).unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
        let err = a.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn udp_to_a_closed_port_is_refused_on_the_next_recv() {
    green_main(|| {
        // A UDP port nobody is bound to: bind one, note it, release it.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        a.connect(("127.0.0.1", port)).unwrap();
        a.send(b"anyone?").unwrap();
        let err = a.recv(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn several_green_threads_accept_on_one_listener() {
    let accepted = green_main(|| {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        // Four acceptors, each taking two connections; all wait on the listener at once.
        let acceptors: Vec<_> = (0..4u8)
            .map(|id| {
                let listener = listener.clone();
                green::spawn(move || {
                    for _ in 0..2 {
                        let (stream, _) = listener.accept().unwrap();
                        (&stream).write_all(&[id]).unwrap();
                    }
                })
            })
            .collect();
        green::sleep(Duration::from_millis(10));
        let mut ids = Vec::new();
        for _ in 0..8 {
            let c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut id = [0u8; 1];
            (&c).read_exact(&mut id).unwrap();
            ids.push(id[0]);
        }
        for a in green::joinall(acceptors) {
            a.unwrap();
        }
        ids
    });
    let mut sorted = accepted.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 0, 1, 1, 2, 2, 3, 3], "{accepted:?}");
}

#[test]
fn two_green_threads_reading_one_stream_take_turns() {
    let got = green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let server = server.try_clone().unwrap();
                green::spawn(move || {
                    let mut b = [0u8; 1];
                    let start = Instant::now();
                    (&server).read_exact(&mut b).unwrap();
                    (b[0], start.elapsed())
                })
            })
            .collect();
        green::sleep(Duration::from_millis(10));
        (&client).write_all(b"a").unwrap();
        green::sleep(Duration::from_millis(10));
        (&client).write_all(b"b").unwrap();
        green::joinall(readers)
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    // First come, first served, and neither waits for its timeout.
    assert_eq!(got[0].0, b'a');
    assert_eq!(got[1].0, b'b');
    assert!(
        got.iter().all(|(_, t)| *t < Duration::from_secs(2)),
        "{got:?}"
    );
}

/// Sets a flag when dropped: shows a killed green thread's destructors ran.
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn killing_a_green_thread_blocked_in_accept_cancels_it_and_the_rest_keep_serving() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let dropped = Rc::new(Cell::new(false));
        let acceptor = {
            let dropped = dropped.clone();
            green::spawn(move || {
                let _guard = SetOnDrop(dropped);
                for stream in listener.incoming() {
                    green::spawn(move || echo(stream.unwrap()));
                }
            })
        };
        let early = TcpStream::connect(addr).unwrap();
        (&early).write_all(b"before").unwrap();
        let mut buf = [0u8; 6];
        (&early).read_exact(&mut buf).unwrap();

        // A joiner that is not the killer sees the cancellation too.
        let task = acceptor.task_ref();
        let joiner = green::spawn(move || acceptor.join());
        green::sleep(Duration::from_millis(5));
        assert!(task.cancel());
        let err = joiner.join().unwrap().unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert!(dropped.get(), "the killed green thread's stack was unwound");

        // The listener died with its green thread: new connections are refused...
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        // ...while the connection it had handed off is still served.
        (&early).write_all(b"after").unwrap();
        let mut buf = [0u8; 5];
        (&early).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"after");
    });
}

#[test]
fn killing_a_green_thread_blocked_in_read_closes_its_connection_only() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handlers = Rc::new(RefCell::new(Vec::new()));
        let dropped = Rc::new(Cell::new(0u32));
        let acceptor = {
            let (handlers, dropped) = (handlers.clone(), dropped.clone());
            green::spawn(move || {
                for stream in listener.incoming() {
                    let stream = stream.unwrap();
                    let flag = Rc::new(Cell::new(false));
                    let dropped = dropped.clone();
                    handlers.borrow_mut().push(green::spawn(move || {
                        let _guard = SetOnDrop(flag);
                        let r = echo(stream);
                        dropped.set(dropped.get() + 1);
                        r
                    }));
                }
            })
        };
        let victim = TcpStream::connect(addr).unwrap();
        let survivor = TcpStream::connect(addr).unwrap();
        for mut c in [&victim, &survivor] {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.write_all(b"hi").unwrap();
            let mut two = [0u8; 2];
            c.read_exact(&mut two).unwrap();
        }
        // Both handlers now wait in read; kill the first.
        let first = handlers.borrow_mut().remove(0);
        assert!(!first.dead());
        assert!(first.kill());
        let err = first.join().unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert_eq!(dropped.get(), 0, "killed, not returned");

        // Its connection was dropped during the unwinding: the peer sees EOF.
        let mut buf = [0u8; 4];
        assert_eq!((&victim).read(&mut buf).unwrap(), 0);
        // The other handler is untouched.
        (&survivor).write_all(b"still").unwrap();
        let mut five = [0u8; 5];
        (&survivor).read_exact(&mut five).unwrap();
        assert_eq!(&five, b"still");
        // So is the acceptor.
        let late = TcpStream::connect(addr).unwrap();
        (&late).write_all(b"new").unwrap();
        let mut three = [0u8; 3];
        (&late).read_exact(&mut three).unwrap();
        assert_eq!(&three, b"new");
        acceptor.kill();
    });
}

#[test]
fn green_and_async_clients_share_one_green_server_on_one_loop() {
    let results = green_main(|| {
        let (addr, acceptor) = echo_server();
        let async_clients: Vec<_> = (0..20u32)
            .map(|i| {
                kettle::spawn(async move {
                    let s = kettle::net::TcpStream::connect(addr).await?;
                    let msg = format!("async {i}");
                    s.write_all(msg.as_bytes()).await?;
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).await?;
                    Ok::<_, io::Error>(back == msg.as_bytes())
                })
            })
            .collect();
        let green_clients: Vec<_> = (0..20u32)
            .map(|i| {
                green::spawn(move || {
                    let s = TcpStream::connect(addr).unwrap();
                    let msg = format!("green {i}");
                    (&s).write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    (&s).read_exact(&mut back).unwrap();
                    back == msg.as_bytes()
                })
            })
            .collect();
        let mut ok = Vec::new();
        for t in async_clients {
            ok.push(green::wait(t).unwrap().unwrap());
        }
        for r in green::joinall(green_clients) {
            ok.push(r.unwrap());
        }
        acceptor.kill();
        ok
    });
    assert_eq!(results.len(), 40);
    assert!(results.iter().all(|ok| *ok));
}

#[test]
fn green_calls_outside_a_green_thread_panic_with_the_function_name() {
    let panic = std::panic::catch_unwind(|| {
        kettle::run(async {
            let _ = TcpStream::connect("127.0.0.1:9");
        })
    })
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("kettle::green::net::TcpStream::connect"),
        "{message}"
    );
}

#[test]
fn a_killed_or_timed_out_reader_in_the_queue_passes_the_turn_on() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let server = Rc::new(server);
        let reader = |server: Rc<TcpStream>| {
            move || {
                let mut b = [0u8; 1];
                (&*server).read_exact(&mut b).map(|()| b[0])
            }
        };
        // First in line holds the turn while it waits for bytes; the second is queued.
        let first = green::spawn(reader(server.clone()));
        let queued = green::spawn(reader(server.clone()));
        green::sleep(Duration::from_millis(10));
        assert!(queued.kill());
        assert!(queued.join().unwrap_err().is_cancelled());
        (&client).write_all(b"1").unwrap();
        assert_eq!(first.join().unwrap().unwrap(), b'1');

        // Killing the one holding the turn hands it to the next in line.
        let holder = green::spawn(reader(server.clone()));
        let next = green::spawn(reader(server.clone()));
        green::sleep(Duration::from_millis(10));
        assert!(holder.kill());
        assert!(holder.join().unwrap_err().is_cancelled());
        (&client).write_all(b"2").unwrap();
        assert_eq!(next.join().unwrap().unwrap(), b'2');

        // A queued reader's timeout counts its time in the queue; the holder is unaffected.
        let holder = green::spawn(reader(server.clone()));
        green::sleep(Duration::from_millis(5));
        server
            .set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        let mut b = [0u8; 1];
        let err = (&*server).read(&mut b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        server.set_read_timeout(None).unwrap();
        (&client).write_all(b"3").unwrap();
        assert_eq!(holder.join().unwrap().unwrap(), b'3');
    });
}

#[test]
fn shutting_a_socket_down_wakes_its_blocked_reader_with_eof() {
    let (n, waited) = green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let handle = server.try_clone().unwrap();
        let reader = green::spawn(move || {
            let start = Instant::now();
            let mut buf = [0u8; 8];
            let n = (&server).read(&mut buf).unwrap();
            (n, start.elapsed())
        });
        green::sleep(Duration::from_millis(20));
        // The std way to unblock a reader from elsewhere.
        handle.shutdown(Shutdown::Both).unwrap();
        reader.join().unwrap()
    });
    assert_eq!(n, 0);
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn two_green_threads_receiving_on_one_udp_socket_each_get_a_datagram() {
    let mut got = green_main(|| {
        let socket = Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let socket = socket.try_clone().unwrap();
                green::spawn(move || {
                    let mut buf = [0u8; 16];
                    let n = socket.recv(&mut buf).unwrap();
                    String::from_utf8(buf[..n].to_vec()).unwrap()
                })
            })
            .collect();
        green::sleep(Duration::from_millis(10));
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"first", addr).unwrap();
        sender.send_to(b"second", addr).unwrap();
        green::joinall(receivers)
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    got.sort();
    assert_eq!(got, ["first", "second"]);
}

#[test]
fn killing_a_writer_blocked_on_a_full_socket_closes_it() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let written = Rc::new(Cell::new(0usize));
        let writer = {
            let written = written.clone();
            green::spawn(move || {
                let chunk = [7u8; 64 * 1024];
                loop {
                    let n = (&client).write(&chunk)?;
                    written.set(written.get() + n);
                }
                #[allow(unreachable_code)]
                Ok::<(), io::Error>(())
            })
        };
        // Nobody reads, so the writer ends up suspended in write.
        let mut last = 0;
        loop {
            green::sleep(Duration::from_millis(20));
            if written.get() == last {
                break;
            }
            last = written.get();
        }
        assert!(!writer.dead());
        assert!(writer.kill());
        assert!(writer.join().unwrap_err().is_cancelled());
        // Everything written arrives, then EOF: the killed thread's stream was closed.
        let mut received = Vec::new();
        (&server).read_to_end(&mut received).unwrap();
        assert_eq!(received.len(), written.get());
        assert!(received.iter().all(|b| *b == 7));
    });
}

#[test]
fn a_panicking_connection_handler_closes_its_socket_and_the_server_goes_on() {
    green_main(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handlers = Rc::new(RefCell::new(Vec::new()));
        let acceptor = {
            let handlers = handlers.clone();
            green::spawn(move || {
                for stream in listener.incoming() {
                    let stream = stream.unwrap();
                    handlers.borrow_mut().push(green::spawn(move || {
                        let mut line = String::new();
                        BufReader::new(&stream).read_line(&mut line).unwrap();
                        if line == "panic\n" {
                            panic!("the handler gave up");
                        }
                        (&stream).write_all(line.as_bytes()).unwrap();
                    }));
                }
            })
        };
        let bad = TcpStream::connect(addr).unwrap();
        (&bad).write_all(b"panic\n").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!((&bad).read(&mut buf).unwrap(), 0, "closed while unwinding");
        let handler = handlers.borrow_mut().remove(0);
        let err = handler.join().unwrap_err();
        assert_eq!(err.kind(), kettle::ErrorKind::Panicked);

        let good = TcpStream::connect(addr).unwrap();
        (&good).write_all(b"fine\n").unwrap();
        let mut reply = String::new();
        BufReader::new(&good).read_line(&mut reply).unwrap();
        assert_eq!(reply, "fine\n");
        acceptor.kill();
    });
}

#[test]
fn green_threads_blocked_in_io_when_the_main_one_returns_are_unwound() {
    let (accept_dropped, read_dropped) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let (a, r) = (accept_dropped.clone(), read_dropped.clone());
    let peer_saw = green_main(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A plain std peer (connecting to loopback does not wait), kept past the loop to see
        // the reader's socket close.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        green::spawn(move || {
            let _guard = SetOnDrop(a);
            listener.accept().map(|_| ())
        });
        green::spawn(move || {
            let _guard = SetOnDrop(r);
            let mut buf = [0u8; 1];
            (&server).read(&mut buf)
        });
        green::sleep(Duration::from_millis(10));
        client
    });
    assert!(accept_dropped.get() && read_dropped.get());
    let mut peer = peer_saw;
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(peer.read(&mut [0u8; 1]).unwrap(), 0);
}

/// Waits on the loop in its destructor, as a "say goodbye on close" guard would.
struct GreenWaitOnDrop;

impl Drop for GreenWaitOnDrop {
    fn drop(&mut self) {
        green::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_kill_unwinds_even_while_another_green_thread_is_suspended_mid_panic() {
    green_main(|| {
        // Panics, and waits in a destructor while unwinding.
        let panicking = green::spawn(|| {
            let _guard = GreenWaitOnDrop;
            panic!("unwinding slowly");
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let dropped = Rc::new(Cell::new(false));
        let acceptor = {
            let dropped = dropped.clone();
            green::spawn(move || {
                let _guard = SetOnDrop(dropped);
                listener.accept().map(|_| ())
            })
        };
        green::sleep(Duration::from_millis(20));
        assert!(acceptor.kill());
        assert!(acceptor.join().unwrap_err().is_cancelled());
        let refused = TcpStream::connect(addr).map(|_| ()).map_err(|e| e.kind());
        // Joined before asserting: a failed assertion would close the loop while that green
        // thread is suspended mid-unwind, and its teardown then aborts the process (the same
        // panicking() confusion).
        let err = panicking.join().unwrap_err();
        assert!(dropped.get(), "the killed green thread's destructors ran");
        assert_eq!(
            refused,
            Err(io::ErrorKind::ConnectionRefused),
            "listener closed"
        );
        assert_eq!(err.kind(), kettle::ErrorKind::Panicked);
    });
}

#[test]
fn closing_the_loop_while_a_destructor_waits_neither_aborts_nor_hangs() {
    // The green thread is torn down with its loop; its destructor's wait cannot be served
    // any more (the loop is gone), so the thread is set aside instead of aborting.
    let finished = green::run(|| {
        drop(green::spawn(|| {
            let _guard = GreenWaitOnDrop;
            green::sleep(Duration::from_secs(10));
        }));
        green::sleep(Duration::from_millis(20));
        "main done"
    });
    assert_eq!(finished.unwrap(), "main done");
}
