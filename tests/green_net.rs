//! `kettle::green::net`: blocking-style sockets for green threads over real sockets on
//! 127.0.0.1 — a green echo server under many green and plain-thread clients, `std::io`
//! adapters (`BufReader::read_line`, `io::copy`), timeouts, refused connections, name
//! resolution, UDP, EOF, and killing a green thread blocked in `accept`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kettle::green::{
    self,
    net::{TcpListener, TcpStream, UdpSocket},
};
use kettle::ErrorKind;

/// Starts a green echo server (a green thread per connection) on the current loop.
fn echo_server() -> (SocketAddr, green::GreenThread<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = green::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            green::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => stream.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
        }
    });
    (addr, server)
}

#[test]
fn a_green_echo_server_serves_many_green_and_plain_clients_at_once() {
    green::run(|| {
        let (addr, server) = echo_server();
        // Plain OS-thread clients, blocking for real, on another thread.
        let plain = std::thread::spawn(move || {
            (0..20)
                .map(|i| {
                    std::thread::spawn(move || {
                        let mut s = std::net::TcpStream::connect(addr).unwrap();
                        let msg = format!("plain client {i}\n").repeat(100);
                        s.write_all(msg.as_bytes()).unwrap();
                        let mut back = vec![0u8; msg.len()];
                        s.read_exact(&mut back).unwrap();
                        back == msg.as_bytes()
                    })
                })
                .all(|t| t.join().unwrap())
        });
        // Green clients on the same loop as the server.
        let clients: Vec<_> = (0..200)
            .map(|i| {
                green::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let msg: Vec<u8> = (0..10_000u32).map(|b| (b * 7 + i) as u8).collect();
                    // Write in pieces with a switch between them, so reads and writes of all
                    // clients interleave.
                    for piece in msg.chunks(3_000) {
                        s.write_all(piece).unwrap();
                        green::yield_now();
                    }
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    back == msg
                })
            })
            .collect();
        let results = green::joinall(clients);
        assert!(
            results.iter().all(|r| *r.as_ref().unwrap()),
            "every green client got its bytes back"
        );
        let plain_ok = green::wait(kettle::run_in_executor(move || plain.join().unwrap())).unwrap();
        assert!(plain_ok, "every plain client got its bytes back");
        server.kill();
    })
    .unwrap();
}

#[test]
fn bufreader_read_line_works_over_a_green_socket_with_slow_writes() {
    green::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The peer writes lines in odd pieces, pausing between them.
        let writer = green::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            for piece in [
                "first li",
                "ne\nsecond",
                " line\n",
                "third line\nlast without newline",
            ] {
                (&stream).write_all(piece.as_bytes()).unwrap();
                green::sleep(Duration::from_millis(15));
            }
        });
        let stream = TcpStream::connect(addr).unwrap();
        let lines: Vec<String> = BufReader::new(&stream)
            .lines()
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "first line",
                "second line",
                "third line",
                "last without newline"
            ]
        );
        writer.join().unwrap();
    })
    .unwrap();
}

#[test]
fn io_copy_moves_a_megabyte_through_a_green_socket() {
    green::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The server copies everything it receives into a checksum, then reports it.
        let server = green::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut sink = Checksum::default();
            let n = io::copy(&mut &stream, &mut sink).unwrap();
            (&stream)
                .write_all(format!("{n} {}", sink.0).as_bytes())
                .unwrap();
        });
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let stream = TcpStream::connect(addr).unwrap();
        assert_eq!(io::copy(&mut &data[..], &mut &stream).unwrap(), 1_000_000);
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        (&stream).read_to_string(&mut reply).unwrap();
        let expected: u64 = data.iter().map(|&b| b as u64).sum();
        assert_eq!(reply, format!("1000000 {expected}"));
        server.join().unwrap();
    })
    .unwrap();
}

/// A `Write` that sums the bytes it is given.
#[derive(Default)]
struct Checksum(u64);

impl Write for Checksum {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.iter().map(|&b| b as u64).sum::<u64>();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_read_timeout_is_timed_out_and_the_stream_stays_usable() {
    green::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(
            client.read_timeout().unwrap(),
            Some(Duration::from_millis(50))
        );
        let start = Instant::now();
        let err = client.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(start.elapsed() < Duration::from_secs(2));
        (&server_side).write_all(b"late").unwrap();
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        let zero = client.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), io::ErrorKind::InvalidInput);
    })
    .unwrap();
}

#[test]
fn connect_errors_addresses_names_and_eof() {
    green::run(|| {
        // Nobody listens on a port we just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = TcpStream::connect(("127.0.0.1".parse::<std::net::IpAddr>().unwrap(), port))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            TcpStream::connect("no-port-here").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A name, resolved off the loop.
        let client = TcpStream::connect(format!("localhost:{}", addr.port())).unwrap();
        let (server_side, peer) = listener.accept().unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        assert_eq!(client.local_addr().unwrap(), peer);
        assert_eq!(server_side.peer_addr().unwrap(), peer);
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        // The client closes its side: the server reads EOF, then can still write back.
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!((&server_side).read(&mut [0u8; 8]).unwrap(), 0);
        (&server_side).write_all(b"bye").unwrap();
        drop(server_side);
        let mut rest = String::new();
        (&client).read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "bye");
        assert!(!green::net::lookup_host("localhost", 80).unwrap().is_empty());
    })
    .unwrap();
}

#[test]
fn udp_datagrams_both_ways_and_a_receive_timeout() {
    green::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let echo = green::spawn(move || {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            b.send_to(&buf[..n], from).unwrap();
            b.connect(a_addr).unwrap();
            b.send(b"connected hello").unwrap();
        });
        a.send_to(b"ping", b_addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], b_addr));
        a.connect(b_addr).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"connected hello");
        echo.join().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(
            a.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    })
    .unwrap();
}

#[test]
fn killing_a_green_thread_blocked_in_accept_leaves_the_others_serving() {
    green::run(|| {
        let (addr, server) = echo_server();
        let idle = TcpListener::bind("127.0.0.1:0").unwrap();
        let acceptor = green::spawn(move || idle.accept().map(|_| ()));
        green::sleep(Duration::from_millis(10));
        acceptor.kill();
        assert_eq!(acceptor.join().unwrap_err().kind(), ErrorKind::Cancelled);
        // The echo server is unaffected.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"still here").unwrap();
        let mut back = [0u8; 10];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still here");
        server.kill();
    })
    .unwrap();
}

#[test]
fn async_clients_and_green_clients_share_a_green_server() {
    let served = kettle::run(async {
        // Green threads can be spawned from async code; the server is one.
        let (addr, server) = echo_server();
        let stream = kettle::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"async").await.unwrap();
        let mut back = [0u8; 5];
        stream.read_exact(&mut back).await.unwrap();
        let green_client = green::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"green").unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            b
        });
        let green_back = green_client.await.unwrap();
        server.kill();
        (back, green_back)
    });
    assert_eq!(&served.0, b"async");
    assert_eq!(&served.1, b"green");
}
