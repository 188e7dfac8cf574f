//! TCP through real sockets on 127.0.0.1.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kettle::net::{TcpListener, TcpStream};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A server that echoes every byte back until the client closes; returns its address.
fn spawn_echo_server() -> SocketAddr {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    kettle::spawn(async move {
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            kettle::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[kettle::test]
async fn echo_round_trip() {
    let addr = spawn_echo_server();
    let s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(s.peer_addr().unwrap(), addr);
    s.set_nodelay(true).unwrap();
    assert!(s.nodelay().unwrap());
    for msg in [&b"hello"[..], b"kettle", &[0u8; 1000]] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
}

#[kettle::test]
async fn many_concurrent_clients() {
    let addr = spawn_echo_server();
    let clients: Vec<_> = (0..200u32)
        .map(|i| {
            kettle::spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                for round in 0..5u32 {
                    let msg = format!("client {i} round {round}");
                    s.write_all(msg.as_bytes()).await.unwrap();
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
                i
            })
        })
        .collect();
    let ids = kettle::gather(clients).await.unwrap();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
}

#[kettle::test]
async fn half_close_peer_reads_eof_and_can_still_answer() {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = kettle::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match conn.read(&mut buf).await.unwrap() {
                0 => break, // the client's FIN
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        conn.write_all(format!("got {} bytes", got.len()).as_bytes())
            .await
            .unwrap();
    });
    let s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"request").await.unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf).await.unwrap() {
            0 => break,
            n => reply.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(reply, b"got 7 bytes");
    server.await.unwrap();
}

#[kettle::test]
async fn connect_to_a_closed_port_is_refused() {
    // Bind then drop a listener to find a port nobody listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[kettle::test]
async fn writing_to_a_closed_peer_is_an_error_not_a_crash() {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (conn, _) = listener.accept().await.unwrap();
    drop(client);
    let chunk = [7u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(
            Instant::now() < deadline,
            "writes to a closed peer never failed"
        );
        if let Err(e) = conn.write_all(&chunk).await {
            break e;
        }
    };
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
}

/// A writer facing a reader that does not read waits (the loop keeps running other tasks),
/// and resumes when the reader drains; every byte arrives in order.
#[kettle::test]
async fn write_all_waits_for_a_slow_reader_and_loses_nothing() {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let total = 8 * 1024 * 1024;
    let writer = kettle::spawn(async move {
        let s = TcpStream::connect(addr).await.unwrap();
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        s.write_all(&data).await.unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    });
    let (conn, _) = listener.accept().await.unwrap();
    // Let the writer fill the socket buffers and park.
    kettle::sleep(Duration::from_millis(100)).await;
    assert!(!writer.done(), "8 MiB cannot fit in the socket buffers");
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, ((received + k) % 251) as u8, "byte {}", received + k);
        }
        received += n;
    }
    assert_eq!(received, total);
    writer.await.unwrap();
}

/// A reader shared by two tasks through an `Rc`: one reads while the other writes.
#[kettle::test]
async fn one_task_reads_while_another_writes() {
    let addr = spawn_echo_server();
    let s = Rc::new(TcpStream::connect(addr).await.unwrap());
    let reader = {
        let s = s.clone();
        kettle::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while got.len() < 3000 {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got
        })
    };
    for _ in 0..30 {
        s.write_all(&[1u8; 100]).await.unwrap();
        kettle::yield_now().await;
    }
    assert_eq!(reader.await.unwrap(), vec![1u8; 3000]);
}

#[kettle::test]
async fn futures_io_traits_are_implemented() {
    use futures_io::{AsyncRead, AsyncWrite};
    use std::future::poll_fn;
    use std::pin::Pin;
    let addr = spawn_echo_server();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let n = poll_fn(|cx| Pin::new(&mut s).poll_write(cx, b"trait"))
        .await
        .unwrap();
    assert_eq!(n, 5);
    let mut buf = [0u8; 5];
    let mut filled = 0;
    while filled < 5 {
        filled += poll_fn(|cx| Pin::new(&mut s).poll_read(cx, &mut buf[filled..]))
            .await
            .unwrap();
    }
    assert_eq!(&buf, b"trait");
    poll_fn(|cx| Pin::new(&mut s).poll_close(cx)).await.unwrap();
}

#[test]
fn sockets_need_a_running_loop() {
    let err = TcpListener::bind(any_port()).unwrap_err();
    assert!(
        err.to_string().contains("running kettle event loop"),
        "{err}"
    );
}

/// A read that returns fewer bytes than asked for makes the next read wait for the next edge
/// instead of trying again at once. These three cases check that nothing is lost by it: more
/// data later, a FIN that arrived together with the data, and a reset.
mod short_reads {
    use super::*;
    use std::io::Write;

    /// Connects a std (blocking) client to a kettle listener; returns both ends.
    async fn pair() -> (std::net::TcpStream, TcpStream) {
        let listener = TcpListener::bind(any_port()).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        (client, conn)
    }

    async fn read_within(conn: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        kettle::wait_for(conn.read(buf), Duration::from_secs(10))
            .await
            .expect("the read hung: a readiness edge was lost")
    }

    #[kettle::test]
    async fn data_that_arrives_later_is_still_read() {
        let (mut client, conn) = pair().await;
        let mut buf = [0u8; 1024];
        for round in 0..50u8 {
            client.write_all(&[round; 10]).unwrap();
            let n = read_within(&conn, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[round; 10][..n]);
            // A short read (n < 1024): the rest of the 10 bytes, if any, needs a new edge.
            let mut got = n;
            while got < 10 {
                got += read_within(&conn, &mut buf[got..]).await.unwrap();
            }
        }
    }

    #[kettle::test]
    async fn a_fin_queued_behind_the_data_is_seen() {
        let (mut client, conn) = pair().await;
        client.write_all(b"last words").unwrap();
        drop(client);
        // Let both the data and the FIN land before the first read, so one edge reports both.
        kettle::sleep(Duration::from_millis(50)).await;
        let mut buf = [0u8; 1024];
        let n = read_within(&conn, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"last words");
        assert_eq!(read_within(&conn, &mut buf).await.unwrap(), 0);
        assert_eq!(
            read_within(&conn, &mut buf).await.unwrap(),
            0,
            "EOF repeats"
        );
    }

    #[kettle::test]
    async fn a_reset_after_a_short_read_is_an_error() {
        let (mut client, conn) = pair().await;
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 1024];
        assert_eq!(read_within(&conn, &mut buf).await.unwrap(), 4);
        // SO_LINGER 0 turns the close into a RST.
        let client = TcpStream::from_std(client).unwrap();
        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let err = read_within(&conn, &mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
