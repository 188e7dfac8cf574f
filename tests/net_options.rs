//! Socket options, listener options, timeouts, resets and accept robustness, on 127.0.0.1.

mod common;

use std::io;
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{thread_cpu_time, LATE};
use kettle::net::{ListenOptions, TcpListener, TcpStream};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A connected (client, server-side) pair.
async fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(any_port()).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[kettle::test]
async fn keepalive_reads_back() {
    let (s, _peer) = connected_pair().await;
    assert_eq!(s.keepalive().unwrap(), None, "off by default");
    s.set_keepalive(Some(Duration::from_secs(42))).unwrap();
    assert_eq!(s.keepalive().unwrap(), Some(Duration::from_secs(42)));
    // Sub-second idle times round up to the kernel's one-second granularity.
    s.set_keepalive(Some(Duration::from_millis(1500))).unwrap();
    assert_eq!(s.keepalive().unwrap(), Some(Duration::from_secs(2)));
    s.set_keepalive(Some(Duration::ZERO)).unwrap();
    assert_eq!(s.keepalive().unwrap(), Some(Duration::from_secs(1)));
    s.set_keepalive(None).unwrap();
    assert_eq!(s.keepalive().unwrap(), None);
}

#[kettle::test]
async fn linger_reads_back() {
    let (s, _peer) = connected_pair().await;
    assert_eq!(s.linger().unwrap(), None, "off by default");
    s.set_linger(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(5)));
    s.set_linger(Some(Duration::from_millis(300))).unwrap();
    assert_eq!(
        s.linger().unwrap(),
        Some(Duration::from_secs(1)),
        "a short linger must not turn into the zero (reset) case"
    );
    s.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    s.set_linger(None).unwrap();
    assert_eq!(s.linger().unwrap(), None);
}

#[kettle::test]
async fn buffer_sizes_and_ttl_read_back() {
    let (s, _peer) = connected_pair().await;
    // Linux doubles the requested size for its bookkeeping.
    s.set_recv_buffer_size(100_000).unwrap();
    assert!(s.recv_buffer_size().unwrap() >= 100_000);
    s.set_send_buffer_size(50_000).unwrap();
    assert!(s.send_buffer_size().unwrap() >= 50_000);
    let err = s.set_send_buffer_size(usize::MAX).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

    s.set_ttl(33).unwrap();
    assert_eq!(s.ttl().unwrap(), 33);
    s.set_nodelay(true).unwrap();
    assert!(s.nodelay().unwrap());
    assert!(s.take_error().unwrap().is_none());
}

#[kettle::test]
async fn listen_options_defaults_and_builder() {
    let d = ListenOptions::default();
    assert_eq!(
        (d.backlog, d.reuse_address, d.reuse_port),
        (1024, true, false)
    );
    let o = ListenOptions::new()
        .backlog(7)
        .reuse_address(false)
        .reuse_port(true);
    assert_eq!(
        o,
        ListenOptions {
            backlog: 7,
            reuse_address: false,
            reuse_port: true
        }
    );
    let l = TcpListener::bind_with(any_port(), o).unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (_conn, peer) = l.accept().await.unwrap();
    assert_eq!(peer, s.local_addr().unwrap());
    let l2 = TcpListener::bind_with_backlog(any_port(), 3).unwrap();
    assert_ne!(l2.local_addr().unwrap().port(), 0);
}

/// `SO_REUSEPORT` lets one listener per loop share a port; the kernel spreads the
/// connections over them. Without it the second bind fails.
#[kettle::test]
async fn reuse_port_lets_two_listeners_share_a_port() {
    let options = ListenOptions::new().reuse_port(true);
    let a = Rc::new(TcpListener::bind_with(any_port(), options).unwrap());
    let addr = a.local_addr().unwrap();
    let b = Rc::new(TcpListener::bind_with(addr, options).unwrap());
    assert_eq!(b.local_addr().unwrap(), addr);

    let err = TcpListener::bind(addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);

    let accepted = Rc::new(std::cell::Cell::new([0u32; 2]));
    for (i, l) in [a, b].into_iter().enumerate() {
        let accepted = accepted.clone();
        kettle::spawn(async move {
            loop {
                let (conn, _) = l.accept().await.unwrap();
                let mut counts = accepted.get();
                counts[i] += 1;
                accepted.set(counts);
                conn.write_all(b"k").await.unwrap();
            }
        });
    }
    for _ in 0..40 {
        // Fresh source ports hash to either listener.
        let c = TcpStream::connect(addr).await.unwrap();
        let mut b = [0u8; 1];
        kettle::wait_for(c.read_exact(&mut b), LATE)
            .await
            .unwrap()
            .unwrap();
    }
    let counts = accepted.get();
    assert_eq!(counts[0] + counts[1], 40, "{counts:?}");
}

#[kettle::test]
async fn accept_timeout_without_a_client_times_out_and_keeps_the_listener() {
    let listener = TcpListener::bind(any_port()).unwrap();
    let start = Instant::now();
    let err = listener
        .accept_timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_millis(50) + LATE, "{took:?}");

    // The listener still accepts afterwards.
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect_timeout(addr, LATE).await.unwrap();
    let (_conn, peer) = listener.accept_timeout(LATE).await.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
}

#[kettle::test]
async fn connect_timeout_succeeds_and_reports_refusal() {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let s = TcpStream::connect_timeout(addr, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(s.peer_addr().unwrap(), addr);

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = TcpStream::connect_timeout(closed, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

/// `set_linger(Some(0))` then drop sends an RST: the peer's read fails with
/// `ConnectionReset` instead of seeing EOF.
#[kettle::test]
async fn linger_zero_resets_the_peer() {
    let (client, server) = connected_pair().await;
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client);
    let mut buf = [0u8; 16];
    let err = kettle::wait_for(server.read(&mut buf), LATE)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
}

const EMFILE_CHILD: &str = "KETTLE_TEST_EMFILE_CHILD";
const CHILD_OK: &str = "emfile child: ok";

/// When the process runs out of fds, `accept` logs, backs off and retries instead of
/// failing or spinning, and succeeds once fds are free again.
///
/// Lowering `RLIMIT_NOFILE` and filling the fd table would break every other test running in
/// this process, so the test re-runs this binary filtered to itself, with an environment
/// variable that makes the child do the real work.
#[test]
fn accept_survives_running_out_of_fds() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        emfile_child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "accept_survives_running_out_of_fds",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(EMFILE_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains(CHILD_OK),
        "the child did not run:\n{stdout}"
    );
    // One warning per 100 ms back-off during the ~300 ms without fds: logged, not spinning.
    let warnings = stdout.matches("retrying in").count();
    assert!(
        (1..=10).contains(&warnings),
        "{warnings} warnings:\n{stdout}"
    );
}

fn emfile_child() {
    tracing_subscriber::fmt()
        .with_writer(io::stdout)
        .with_ansi(false)
        .init();
    // A low soft limit, so filling the fd table takes a few hundred opens at most.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit.rlim_cur = limit.rlim_cur.min(256);
    // SAFETY: `limit` is a valid rlimit; lowering the soft limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);

    kettle::run(async {
        let listener = TcpListener::bind(any_port()).unwrap();
        let addr = listener.local_addr().unwrap();
        // The kernel completes the handshake and queues the connection before any accept;
        // the client's own fd is taken now, while there are fds to take.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let mut hog = Vec::new();
        let exhausted = loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hog.push(f),
                Err(e) => break e,
            }
        };
        assert_eq!(exhausted.raw_os_error(), Some(libc::EMFILE), "{exhausted}");

        let accept = kettle::spawn(async move {
            let accepted = listener.accept().await;
            (accepted, listener)
        });
        let cpu_before = thread_cpu_time();
        kettle::sleep(Duration::from_millis(300)).await;
        let cpu = thread_cpu_time() - cpu_before;
        assert!(!accept.done(), "accept cannot succeed without a free fd");
        assert!(cpu < Duration::from_millis(150), "accept spun: {cpu:?} CPU");

        drop(hog);
        let (accepted, listener) = kettle::wait_for(accept, LATE).await.unwrap().unwrap();
        let (conn, peer) = accepted.expect("accept recovers once fds are free");
        assert_eq!(peer, client.local_addr().unwrap());
        drop(conn);

        // The listener was kept and still works.
        let again = TcpStream::connect(addr).await.unwrap();
        let (_conn, peer) = kettle::wait_for(listener.accept(), LATE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(peer, again.local_addr().unwrap());
    });
    println!("{CHILD_OK}");
}
