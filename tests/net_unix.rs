//! Unix-domain sockets through real socket files in a per-test temporary directory.

mod common;

use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use common::LATE;
use kettle::net::{UnixDatagram, UnixListener, UnixStream};

/// A fresh directory for one test's socket files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kettle-unix-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server that echoes every byte back until the client closes.
fn spawn_echo_server(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
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
}

async fn read_to_end(s: &UnixStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await.unwrap() {
            0 => return got,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[kettle::test]
async fn stream_echo_round_trip() {
    let dir = TempDir::new("echo");
    let path = dir.path("echo.sock");
    spawn_echo_server(&path);
    let s = UnixStream::connect(&path).await.unwrap();
    assert_eq!(s.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    assert!(s.local_addr().unwrap().is_unnamed());
    for msg in [&b"hello"[..], b"kettle", &[0u8; 100_000]] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
}

#[kettle::test]
async fn many_concurrent_unix_clients() {
    let dir = TempDir::new("many");
    let path = dir.path("many.sock");
    spawn_echo_server(&path);
    let clients: Vec<_> = (0..100u32)
        .map(|i| {
            let path = path.clone();
            kettle::spawn(async move {
                let s = UnixStream::connect(&path).await.unwrap();
                let msg = format!("client {i}");
                s.write_all(msg.as_bytes()).await.unwrap();
                let mut back = vec![0u8; msg.len()];
                s.read_exact(&mut back).await.unwrap();
                assert_eq!(back, msg.as_bytes());
                i
            })
        })
        .collect();
    let ids = kettle::gather(clients).await.unwrap();
    assert_eq!(ids, (0..100).collect::<Vec<_>>());
}

#[kettle::test]
async fn listener_addresses() {
    let dir = TempDir::new("addrs");
    let path = dir.path("addrs.sock");
    let listener = UnixListener::bind(&path).unwrap();
    assert_eq!(
        listener.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    let client = UnixStream::connect(&path).await.unwrap();
    let (conn, peer) = listener.accept().await.unwrap();
    assert!(peer.is_unnamed(), "an unbound client has no name");
    assert_eq!(
        conn.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    drop(client);
    assert!(format!("{listener:?}").contains("UnixListener"));
}

#[kettle::test]
async fn pair_round_trip_and_eof() {
    let (a, b) = UnixStream::pair().unwrap();
    a.write_all(b"from a").await.unwrap();
    let mut buf = [0u8; 6];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"from a");
    b.write_all(b"from b").await.unwrap();
    a.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"from b");

    drop(a);
    let mut buf = [0u8; 8];
    assert_eq!(
        b.read(&mut buf).await.unwrap(),
        0,
        "EOF after the peer closed"
    );
    let err = b.read_exact(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[kettle::test]
async fn half_close_peer_reads_eof_and_can_still_answer() {
    let (client, server) = UnixStream::pair().unwrap();
    let server = kettle::spawn(async move {
        let got = read_to_end(&server).await;
        server
            .write_all(format!("got {} bytes", got.len()).as_bytes())
            .await
            .unwrap();
    });
    client.write_all(b"request").await.unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&client).await, b"got 7 bytes");
    server.await.unwrap();
}

/// A large transfer through a pair: the writer parks on a full buffer and is woken as the
/// reader drains it; the reader and the writer share the stream through an `Rc`.
#[kettle::test]
async fn large_transfer_with_backpressure() {
    let (a, b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let total = 4 * 1024 * 1024;
    let writer = {
        let a = a.clone();
        kettle::spawn(async move {
            let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            a.write_all(&data).await.unwrap();
            a.shutdown(Shutdown::Write).unwrap();
        })
    };
    kettle::sleep(Duration::from_millis(20)).await;
    assert!(!writer.done(), "4 MiB cannot fit in the socket buffers");
    let got = read_to_end(&b).await;
    assert_eq!(got.len(), total);
    assert!(got.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
    writer.await.unwrap();
}

#[kettle::test]
async fn connect_errors() {
    let dir = TempDir::new("errors");
    let missing = dir.path("missing.sock");
    let err = UnixStream::connect(&missing).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    // A socket file whose listener is gone refuses connections.
    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let err = UnixStream::connect(&stale).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);

    // ... and binding over it needs the file removed first.
    let err = UnixListener::bind(&stale).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);

    let err = UnixListener::bind(dir.path(&"x".repeat(200))).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// With the backlog full Linux refuses a non-blocking connect (`EAGAIN`); `connect` keeps
/// retrying until the server accepts, instead of failing.
#[kettle::test]
async fn connect_waits_while_the_backlog_is_full() {
    let dir = TempDir::new("backlog");
    let path = dir.path("backlog.sock");
    let listener = UnixListener::bind_with_backlog(&path, 1).unwrap();
    let clients: Vec<_> = (0..6u8)
        .map(|i| {
            let path = path.clone();
            kettle::spawn(async move {
                let s = UnixStream::connect(&path).await.unwrap();
                s.write_all(&[i]).await.unwrap();
                s
            })
        })
        .collect();
    kettle::sleep(Duration::from_millis(50)).await;
    let connected = clients.iter().filter(|c| c.done()).count();
    assert!(connected < 6, "a backlog of 1 cannot hold 6 connections");
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (conn, _) = kettle::wait_for(listener.accept(), LATE)
            .await
            .unwrap()
            .unwrap();
        let mut b = [0u8; 1];
        conn.read_exact(&mut b).await.unwrap();
        seen.push(b[0]);
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    kettle::gather(clients).await.unwrap();
}

#[kettle::test]
async fn futures_io_traits_are_implemented() {
    use futures_io::{AsyncRead, AsyncWrite};
    let (mut a, b) = UnixStream::pair().unwrap();
    let n = poll_fn(|cx| Pin::new(&mut a).poll_write(cx, b"trait"))
        .await
        .unwrap();
    assert_eq!(n, 5);
    poll_fn(|cx| Pin::new(&mut a).poll_flush(cx)).await.unwrap();
    poll_fn(|cx| Pin::new(&mut a).poll_close(cx)).await.unwrap();
    // Through `&UnixStream` as well.
    let mut r = &b;
    let mut buf = [0u8; 5];
    let mut filled = 0;
    while filled < 5 {
        filled += poll_fn(|cx| Pin::new(&mut r).poll_read(cx, &mut buf[filled..]))
            .await
            .unwrap();
    }
    assert_eq!(&buf, b"trait");
    // poll_close shut the write half: EOF.
    assert_eq!(
        poll_fn(|cx| Pin::new(&mut r).poll_read(cx, &mut buf))
            .await
            .unwrap(),
        0
    );
}

#[kettle::test]
async fn datagram_pair_keeps_boundaries_and_order() {
    let (a, b) = UnixDatagram::pair().unwrap();
    for msg in [&b"one"[..], b"two", &[7u8; 3000]] {
        a.send(msg).await.unwrap();
    }
    let mut buf = [0u8; 4096];
    for msg in [&b"one"[..], b"two", &[7u8; 3000]] {
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], msg);
    }
}

#[kettle::test]
async fn datagram_bound_sockets_answer_each_other() {
    let dir = TempDir::new("dgram");
    let (server_path, client_path) = (dir.path("server.sock"), dir.path("client.sock"));
    let server = UnixDatagram::bind(&server_path).unwrap();
    let client = UnixDatagram::bind(&client_path).unwrap();
    assert_eq!(
        server.local_addr().unwrap().as_pathname(),
        Some(server_path.as_path())
    );

    client.send_to(b"question", &server_path).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = server.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"question");
    let reply_to = from.as_pathname().expect("the client is bound").to_owned();
    assert_eq!(reply_to, client_path);
    server.send_to(b"answer", &reply_to).await.unwrap();
    let (n, from) = client.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"answer");
    assert_eq!(from.as_pathname(), Some(server_path.as_path()));
}

#[kettle::test]
async fn datagram_unbound_and_connected() {
    let dir = TempDir::new("dgram-connect");
    let path = dir.path("server.sock");
    let server = UnixDatagram::bind(&path).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    assert_eq!(
        client.peer_addr().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    client.connect(&path).unwrap();
    assert_eq!(
        client.peer_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    client.send(b"via connect").await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = server.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"via connect");
    assert!(from.is_unnamed());
    assert!(format!("{client:?}").contains("UnixDatagram"));
}

/// Unlike UDP, a Unix datagram sender waits for room in the receiver's queue instead of
/// dropping datagrams; it resumes once the receiver drains.
#[kettle::test]
async fn datagram_sender_waits_for_a_full_receiver() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let a = Rc::new(a);
    let mut sent = 0u32;
    loop {
        match kettle::wait_for(a.send(&sent.to_be_bytes()), Duration::from_millis(20)).await {
            Ok(r) => {
                r.unwrap();
                sent += 1;
            }
            Err(e) => {
                assert!(e.is_timeout());
                break;
            }
        }
        assert!(sent < 1_000_000, "the receiver's queue never filled");
    }
    let more = {
        let a = a.clone();
        kettle::spawn(async move { a.send(b"last").await.unwrap() })
    };
    let mut buf = [0u8; 8];
    for i in 0..sent {
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], i.to_be_bytes(), "datagram {i}");
    }
    let n = b.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"last");
    kettle::wait_for(more, LATE).await.unwrap().unwrap();
}

#[kettle::test]
async fn datagram_poll_variants() {
    let (a, b) = UnixDatagram::pair().unwrap();
    poll_fn(|cx| a.poll_send(cx, b"p")).await.unwrap();
    let mut buf = [0u8; 4];
    let n = poll_fn(|cx| b.poll_recv(cx, &mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"p");
    a.shutdown(Shutdown::Both).unwrap();
    assert!(a.take_error().unwrap().is_none());
}

#[test]
fn unix_sockets_need_a_running_loop() {
    let err = UnixStream::pair().unwrap_err();
    assert!(
        err.to_string().contains("running kettle event loop"),
        "{err}"
    );
}
