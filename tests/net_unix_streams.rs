//! asyncio streams over Unix-domain sockets through real socket files: `open_unix_connection`,
//! `start_unix_server`, the addresses `get_extra_info` reports for Unix and TCP connections,
//! and the server's socket file cleanup.

mod common;

#[path = "../examples/echo_server.rs"]
#[allow(dead_code)] // the example's `main` and constants
mod echo_server;

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use common::LATE;
use kettle::net::streams::{from_unix, start_unix_server_with, HandlerResult, ServerOptions};
use kettle::net::{
    ListenOptions, Server, SocketAddress, StreamError, StreamReader, StreamWriter, UnixStream,
};

/// A fresh directory for one test's socket files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("kettle-ustreams-{}-{test}", std::process::id()));
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

/// Starts a Unix server with `handler` at `path`.
async fn serve<H, Fut>(handler: H, path: &Path) -> Server
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    kettle::start_unix_server(handler, path).await.unwrap()
}

async fn connect(path: &Path) -> (StreamReader, StreamWriter) {
    kettle::open_unix_connection(path).await.unwrap()
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

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

// ---- round trips ----

#[kettle::test]
async fn echo_round_trip_through_start_unix_server_and_open_unix_connection() {
    let dir = TempDir::new("echo");
    let path = dir.path("echo.sock");
    let server = serve(line_echo, &path).await;
    assert!(server.is_serving());
    assert!(is_socket(&path));

    let (mut r, w) = connect(&path).await;
    let long = format!("{}\n", "y".repeat(50_000));
    for msg in ["hello\n", "over a unix socket\n", long.as_str()] {
        w.write(msg.as_bytes());
        w.drain().await.unwrap();
        assert_eq!(r.readline().await.unwrap(), msg.as_bytes());
    }
    // 1 MB in one write: far past the high-water mark and the kernel's buffers, so the
    // writer's background flusher sends it while this task reads the echo.
    let lines: Vec<String> = (0..10_000).map(|i| format!("{i:>99}\n")).collect();
    w.write(lines.concat().as_bytes());
    assert!(w.write_buffer_size() > 0);
    for line in &lines {
        assert_eq!(r.readline().await.unwrap(), line.as_bytes());
    }
    w.drain().await.unwrap();
    assert_eq!(w.write_buffer_size(), 0);
    w.close();
    assert!(w.is_closing());
    w.wait_closed().await.unwrap();
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
    assert!(!path.exists());
}

#[kettle::test]
async fn structured_reads_over_unix() {
    let dir = TempDir::new("reads");
    let path = dir.path("reads.sock");
    // The server sends its answer in pieces, with pauses, so reads span several arrivals.
    let server = serve(
        |_r, w: StreamWriter| async move {
            for piece in [
                &b"first li"[..],
                b"ne\nsecond",
                b" line\r\n\x00\x05hel",
                b"lo--END--tail",
            ] {
                w.write(piece);
                w.drain().await?;
                kettle::sleep(Duration::from_millis(10)).await;
            }
            w.close();
            w.wait_closed().await
        },
        &path,
    )
    .await;

    let (mut r, _w) = connect(&path).await;
    assert_eq!(r.readline().await.unwrap(), b"first line\n");
    assert_eq!(r.readuntil(b"\r\n").await.unwrap(), b"second line\r\n");
    let len = r.readexactly(2).await.unwrap();
    let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    assert_eq!(r.readexactly(len).await.unwrap(), b"hello");
    assert_eq!(r.readuntil(b"--END--").await.unwrap(), b"--END--");
    match r.readexactly(10).await {
        Err(StreamError::IncompleteRead { partial, expected }) => {
            assert_eq!(partial, b"tail");
            assert_eq!(expected, Some(10));
        }
        other => panic!("{other:?}"),
    }
    assert!(r.at_eof());
    assert_eq!(r.readline().await.unwrap(), b"");
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn write_eof_half_closes_a_unix_connection() {
    let dir = TempDir::new("eof");
    let path = dir.path("eof.sock");
    // Reads everything, then answers with its length: it needs the client's EOF to answer.
    let server = serve(
        |mut r: StreamReader, w: StreamWriter| async move {
            let all = r.read_to_end().await?;
            w.write(format!("{} bytes\n", all.len()).as_bytes());
            w.drain().await
        },
        &path,
    )
    .await;
    let (mut r, w) = connect(&path).await;
    assert!(w.can_write_eof());
    w.write(&[7u8; 100_000]);
    w.write_eof();
    assert_eq!(r.readline().await.unwrap(), b"100000 bytes\n");
    assert_eq!(r.read(10).await.unwrap(), b"");
    server.close();
}

#[kettle::test]
async fn from_unix_wraps_a_socketpair() {
    let (a, b) = UnixStream::pair().unwrap();
    let (ra, wa) = from_unix(a);
    let (mut rb, wb) = from_unix(b);
    let echo = kettle::spawn(line_echo(ra, wa));
    wb.write(b"paired\n");
    assert_eq!(rb.readline().await.unwrap(), b"paired\n");
    // Neither end of a socketpair has a path.
    assert_eq!(
        wb.get_extra_info("peername"),
        Some(SocketAddress::Unix(None))
    );
    assert_eq!(
        wb.get_extra_info("sockname"),
        Some(SocketAddress::Unix(None))
    );
    wb.write_eof();
    kettle::wait_for(echo, LATE)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[kettle::test]
async fn start_unix_server_with_applies_the_reader_limit() {
    let dir = TempDir::new("limit");
    let path = dir.path("limit.sock");
    let options = ServerOptions {
        listen: ListenOptions::new().backlog(4),
        limit: 8,
    };
    let server = start_unix_server_with(
        |mut r: StreamReader, w: StreamWriter| async move {
            assert_eq!(r.limit(), 8);
            let answer: &[u8] = match r.readline().await {
                Err(StreamError::LimitOverrun { .. }) => b"overrun\n",
                Ok(_) => b"fine\n",
                Err(_) => b"error\n",
            };
            w.write(answer);
        },
        &path,
        options,
    )
    .await
    .unwrap();
    let (mut r, w) = connect(&path).await;
    w.write(b"this line is longer than eight bytes\n");
    assert_eq!(r.readline().await.unwrap(), b"overrun\n");
    let (mut r, w) = connect(&path).await;
    w.write(b"short\n");
    assert_eq!(r.readline().await.unwrap(), b"fine\n");
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

// ---- addresses ----

/// What a handler saw: `peername`, `sockname`, and the reader's `peer_addr`.
type HandlerView = (SocketAddress, SocketAddress, Option<SocketAddress>);

#[kettle::test]
async fn unix_extra_info_reports_paths() {
    let dir = TempDir::new("names");
    let path = dir.path("names.sock");
    let seen: Rc<Cell<Option<HandlerView>>> = Rc::new(Cell::new(None));
    let server = {
        let seen = seen.clone();
        serve(
            move |r: StreamReader, w: StreamWriter| {
                seen.set(Some((
                    w.get_extra_info("peername").unwrap(),
                    w.get_extra_info("sockname").unwrap(),
                    r.peer_addr(),
                )));
                line_echo(r, w)
            },
            &path,
        )
        .await
    };
    assert_eq!(server.sockets(), [SocketAddress::Unix(Some(path.clone()))]);
    assert_eq!(server.sockets()[0].to_string(), path.display().to_string());
    assert_eq!(server.sockets()[0].port(), None);
    assert!(format!("{server:?}").contains("names.sock"));

    let (mut r, w) = connect(&path).await;
    // The client: its peer is the server's path; its own end is unnamed ('' in asyncio).
    let peer = w.get_extra_info("peername").unwrap();
    assert_eq!(peer, SocketAddress::Unix(Some(path.clone())));
    assert_eq!(peer.as_pathname(), Some(path.as_path()));
    assert_eq!(peer.to_string(), path.display().to_string());
    let me = w.get_extra_info("sockname").unwrap();
    assert_eq!(me, SocketAddress::Unix(None));
    assert_eq!(me.to_string(), "");
    assert_eq!(w.get_extra_info("nonsense"), None);
    assert_eq!(r.peer_addr(), Some(SocketAddress::Unix(Some(path.clone()))));
    // The transport is the Unix stream.
    let unix = w.transport().as_unix().expect("a Unix transport");
    assert_eq!(
        unix.peer_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    assert!(w.transport().as_tcp().is_none());
    assert_eq!(w.transport().peer_addr().unwrap(), peer);
    assert_eq!(w.transport().local_addr().unwrap(), me);

    w.write(b"ping\n");
    assert_eq!(r.readline().await.unwrap(), b"ping\n");
    // The server's handler: the other way round.
    let (h_peer, h_sock, h_reader_peer) = seen.take().expect("the handler ran");
    assert_eq!(h_peer, SocketAddress::Unix(None));
    assert_eq!(h_sock, SocketAddress::Unix(Some(path.clone())));
    assert_eq!(h_reader_peer, Some(SocketAddress::Unix(None)));

    // Addresses are remembered after the close.
    w.close();
    w.wait_closed().await.unwrap();
    assert_eq!(w.get_extra_info("peername"), Some(peer));
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

#[kettle::test]
async fn tcp_extra_info_reports_ip_and_port() {
    let seen: Rc<Cell<Option<(SocketAddress, SocketAddress)>>> = Rc::new(Cell::new(None));
    let server = {
        let seen = seen.clone();
        kettle::start_server(
            move |r: StreamReader, w: StreamWriter| {
                seen.set(Some((
                    w.get_extra_info("peername").unwrap(),
                    w.get_extra_info("sockname").unwrap(),
                )));
                line_echo(r, w)
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap()
    };
    let listening = server.sockets();
    assert_eq!(listening.len(), 1);
    let port = listening[0].port().unwrap();
    assert!(listening[0].is_inet());
    assert_eq!(listening[0].to_string(), format!("127.0.0.1:{port}"));

    let (mut r, w) = kettle::open_connection("127.0.0.1", port).await.unwrap();
    let peer = w.get_extra_info("peername").unwrap();
    assert_eq!(peer.to_string(), format!("127.0.0.1:{port}"));
    assert_eq!(peer, SocketAddr::from(([127, 0, 0, 1], port)));
    let me = w.get_extra_info("sockname").unwrap();
    let me_inet = me.as_inet().unwrap();
    assert_eq!(me.to_string(), format!("127.0.0.1:{}", me_inet.port()));
    assert_eq!(r.peer_addr(), Some(peer.clone()));
    let tcp = w.transport().as_tcp().expect("a TCP transport");
    assert_eq!(tcp.local_addr().unwrap(), me_inet);
    assert!(w.transport().as_unix().is_none());

    w.write(b"ping\n");
    assert_eq!(r.readline().await.unwrap(), b"ping\n");
    // The server's view mirrors the client's.
    let (h_peer, h_sock) = seen.take().expect("the handler ran");
    assert_eq!(h_peer, me);
    assert_eq!(h_sock, peer);
    server.close();
}

#[kettle::test]
async fn the_echo_server_example_works_over_unix_with_an_empty_peer_name() {
    let dir = TempDir::new("example");
    let path = dir.path("example.sock");
    let server = serve(echo_server::handle, &path).await;
    let (mut r, w) = connect(&path).await;
    w.write(b"hi");
    // asyncio formats an unnamed peer ('') the same way: nothing before " Your msg".
    let expected = b" Your msg hi";
    assert_eq!(r.readexactly(expected.len()).await.unwrap(), expected);
    w.close();
    assert!(r.read_to_end().await.unwrap().is_empty());
    server.close();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

// ---- closing ----

#[kettle::test]
async fn close_with_clients_connected_stops_accepting_and_waits_for_the_handlers() {
    let dir = TempDir::new("close");
    let path = dir.path("close.sock");
    let finished = Rc::new(Cell::new(0u32));
    let server = {
        let finished = finished.clone();
        serve(
            move |r, w| {
                let finished = finished.clone();
                async move {
                    let out = line_echo(r, w).await;
                    finished.set(finished.get() + 1);
                    out
                }
            },
            &path,
        )
        .await
    };
    let mut clients = Vec::new();
    for i in 0..3 {
        let (mut r, w) = connect(&path).await;
        let msg = format!("client {i}\n");
        w.write(msg.as_bytes());
        assert_eq!(r.readline().await.unwrap(), msg.as_bytes());
        clients.push((r, w));
    }
    assert_eq!(server.active_connections(), 3);

    server.close();
    assert!(!server.is_serving());
    assert!(server.sockets().is_empty());
    // The socket file is gone at once, so new clients find nothing to connect to.
    assert!(!path.exists());
    let err = kettle::open_unix_connection(&path).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    // The accepted connections go on being served.
    let (r, w) = &mut clients[1];
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
async fn abort_clients_ends_unix_handlers_and_their_connections() {
    let dir = TempDir::new("abort");
    let path = dir.path("abort.sock");
    let server = serve(line_echo, &path).await;
    let (mut r, _w) = connect(&path).await;
    while server.active_connections() == 0 {
        kettle::yield_now().await;
    }
    server.close();
    server.abort_clients();
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
    let eof = kettle::wait_for(r.read(10), LATE).await.unwrap().unwrap();
    assert!(eof.is_empty());
}

#[kettle::test]
async fn serve_forever_on_a_unix_server_closes_it_when_cancelled() {
    let dir = TempDir::new("forever");
    let path = dir.path("forever.sock");
    let server = serve(line_echo, &path).await;
    let s = server.clone();
    let forever = kettle::spawn(async move { s.serve_forever().await });
    kettle::sleep(Duration::from_millis(10)).await;
    assert!(!forever.done());
    forever.cancel();
    let _ = forever.await;
    assert!(!server.is_serving());
    assert!(!path.exists());
    kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
}

// ---- the socket file ----

#[kettle::test]
async fn the_socket_file_is_removed_on_close_and_the_path_can_be_reused() {
    let dir = TempDir::new("reuse");
    let path = dir.path("reuse.sock");
    for round in 0..3 {
        let server = serve(line_echo, &path).await;
        assert!(is_socket(&path), "round {round}");
        let (mut r, w) = connect(&path).await;
        w.write(b"again\n");
        assert_eq!(r.readline().await.unwrap(), b"again\n");
        w.close();
        server.close();
        assert!(!path.exists(), "round {round}");
        server.close(); // a second close changes nothing
        kettle::wait_for(server.wait_closed(), LATE).await.unwrap();
    }
}

#[kettle::test]
async fn a_file_that_replaced_the_socket_is_left_alone() {
    let dir = TempDir::new("replaced");
    let path = dir.path("replaced.sock");
    let server = serve(line_echo, &path).await;
    // Someone removes the socket file and puts something else there.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"not a socket").unwrap();
    server.close();
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    std::fs::remove_file(&path).unwrap();

    // Likewise a socket of another server at the same path.
    let first = serve(line_echo, &path).await;
    std::fs::remove_file(&path).unwrap();
    let second = serve(line_echo, &path).await;
    first.close();
    assert!(is_socket(&path), "the second server's socket must survive");
    let (mut r, w) = connect(&path).await;
    w.write(b"second\n");
    assert_eq!(r.readline().await.unwrap(), b"second\n");
    second.close();
    assert!(!path.exists());
}

#[kettle::test]
async fn a_path_in_use_is_an_error_and_is_left_alone() {
    let dir = TempDir::new("inuse");
    let path = dir.path("inuse.sock");
    let server = serve(line_echo, &path).await;
    let err = kettle::start_unix_server(line_echo, &path)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    // The failed start did not disturb the running server or its file.
    let (mut r, w) = connect(&path).await;
    w.write(b"still mine\n");
    assert_eq!(r.readline().await.unwrap(), b"still mine\n");
    server.close();
    assert!(!path.exists());

    // A regular file in the way is not removed either.
    std::fs::write(&path, b"data").unwrap();
    let err = kettle::start_unix_server(line_echo, &path)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
}

#[test]
fn the_socket_file_is_removed_when_the_loop_ends_without_close() {
    let dir = TempDir::new("unclosed");
    let path = dir.path("unclosed.sock");
    let p = path.clone();
    kettle::run(async move {
        let server = serve(line_echo, &p).await;
        let (mut r, w) = connect(&p).await;
        w.write(b"hi\n");
        assert_eq!(r.readline().await.unwrap(), b"hi\n");
        drop(server); // still serving: dropping the handle does not stop it
        assert!(is_socket(&p));
        let (mut r, w) = connect(&p).await;
        w.write(b"hi again\n");
        assert_eq!(r.readline().await.unwrap(), b"hi again\n");
    });
    assert!(!path.exists());
}

// ---- load ----

#[kettle::test]
async fn many_concurrent_unix_clients() {
    let dir = TempDir::new("many");
    let path = Rc::new(dir.path("many.sock"));
    let server = serve(line_echo, &path).await;
    let clients: Vec<_> = (0..200u32)
        .map(|i| {
            let path = path.clone();
            kettle::spawn(async move {
                let (mut r, w) = connect(&path).await;
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
    assert!(!path.exists());
}
