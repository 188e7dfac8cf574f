//! One loop holds 10,000 concurrent connections.
//!
//! Client and server sockets together need about 20,000 file descriptors, more than one
//! process may have here, so the clients run in a child process: this same test binary,
//! re-run with `KETTLE_SCALE_CLIENT` set.

use std::cell::Cell;
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;

use kettle::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 10_000;
const CLIENT_ENV: &str = "KETTLE_SCALE_CLIENT";

/// Raises this process's soft descriptor limit to at least `want`; false if the hard limit is
/// lower.
fn raise_nofile(want: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a live rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return false;
        }
        if lim.rlim_cur >= want {
            return true;
        }
        if lim.rlim_max < want {
            return false;
        }
        lim.rlim_cur = want;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
    }
}

/// The child: opens every connection, does one round trip on each, and holds them all open
/// until all are done, so the server sees them at the same time.
fn client(addr: SocketAddr) {
    assert!(
        raise_nofile(CONNECTIONS as u64 + 100),
        "client: cannot raise RLIMIT_NOFILE"
    );
    kettle::run(async move {
        let mut held = Vec::with_capacity(CONNECTIONS);
        // Batches keep the SYN backlog from overflowing (a dropped SYN costs a 1 s retry).
        for batch in 0..CONNECTIONS / 500 {
            let conns: Vec<_> = (0..500)
                .map(|i| {
                    kettle::spawn(async move {
                        let s = TcpStream::connect(addr).await?;
                        let msg = format!("hello {}", batch * 500 + i);
                        s.write_all(msg.as_bytes()).await?;
                        let mut back = vec![0u8; msg.len()];
                        s.read_exact(&mut back).await?;
                        assert_eq!(back, msg.as_bytes());
                        Ok::<_, std::io::Error>(s)
                    })
                })
                .collect();
            for c in kettle::gather(conns).await.expect("client task") {
                held.push(c.expect("client connection"));
            }
        }
        assert_eq!(held.len(), CONNECTIONS);
        drop(held);
    });
}

#[test]
fn one_loop_holds_10000_connections() {
    if let Ok(addr) = std::env::var(CLIENT_ENV) {
        client(addr.parse().expect("client address"));
        return;
    }
    assert!(
        raise_nofile(CONNECTIONS as u64 + 100),
        "this test needs RLIMIT_NOFILE >= {} (see `ulimit -Hn`)",
        CONNECTIONS + 100
    );
    kettle::run(async {
        let listener =
            TcpListener::bind_with_backlog("127.0.0.1:0".parse().unwrap(), 4096).expect("bind");
        let addr = listener.local_addr().unwrap();
        let live = Rc::new(Cell::new(0usize));
        let peak = Rc::new(Cell::new(0usize));
        let served = Rc::new(Cell::new(0usize));
        let (l, p, s) = (live.clone(), peak.clone(), served.clone());
        let server = kettle::spawn(async move {
            loop {
                let (conn, _) = listener.accept().await.expect("accept");
                let (l, p, s) = (l.clone(), p.clone(), s.clone());
                l.set(l.get() + 1);
                p.set(p.get().max(l.get()));
                kettle::spawn(async move {
                    let mut buf = [0u8; 64];
                    loop {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => conn.write_all(&buf[..n]).await.expect("echo"),
                        }
                    }
                    l.set(l.get() - 1);
                    s.set(s.get() + 1);
                });
            }
        });
        let exe = std::env::current_exe().unwrap();
        let out = kettle::run_in_executor(move || {
            Command::new(exe)
                .args(["--exact", "one_loop_holds_10000_connections", "--nocapture"])
                .env(CLIENT_ENV, addr.to_string())
                .output()
        })
        .await
        .unwrap()
        .expect("run the client process");
        assert!(
            out.status.success(),
            "client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Let the server see every EOF (bounded, so a lost wake-up fails instead of hanging).
        let all_served = async {
            while served.get() < CONNECTIONS {
                kettle::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        kettle::wait_for(all_served, std::time::Duration::from_secs(60))
            .await
            .unwrap_or_else(|_| panic!("only {} of {CONNECTIONS} EOFs seen", served.get()));
        server.cancel();
        assert_eq!(peak.get(), CONNECTIONS, "all connections were open at once");
        assert_eq!(live.get(), 0);
    });
}
