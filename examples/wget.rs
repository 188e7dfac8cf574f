//! Seeds 001/002's `wget`: fetch the response headers of several sites at once over
//! `open_connection`.
//!
//! ```text
//! cargo run --example wget                          # the seed's three sites
//! cargo run --example wget -- 127.0.0.1:8000 example.com
//! ```
//!
//! Each `host[:port]` (port 80 by default) gets `GET / HTTP/1.0`, and every response header
//! line is printed as `HOST header > LINE` up to the blank line that ends the headers. All
//! hosts are fetched concurrently on one thread; a host that fails or takes longer than 10 s
//! prints `wget HOST failed: ...` and does not hold up the others.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// The seed's sites.
pub const DEFAULT_HOSTS: [&str; 3] = ["www.sina.com.cn", "www.sohu.com", "www.163.com"];

/// How long one host may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Where output lines go: stdout in the program, a vector in the tests.
pub type Sink = Rc<RefCell<dyn FnMut(String)>>;

/// Splits `host[:port]` (IPv6 as `[addr]:port`); the port defaults to 80.
pub fn parse_target(arg: &str) -> Result<(String, u16), String> {
    let (host, port) = match arg.rsplit_once(':') {
        // A bare IPv6 address has colons but no port.
        Some((h, _)) if h.contains(':') && !h.ends_with(']') => (arg, None),
        Some((h, p)) => (h, Some(p)),
        None => (arg, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{arg:?}: no host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("{arg:?}: invalid port"))?,
        None => 80,
    };
    Ok((host.to_string(), port))
}

/// Fetches `/` from `target` (`host[:port]`, also used as the `Host` header and the name in
/// the output) and emits one `TARGET header > LINE` per response header line.
pub async fn wget(target: &str, out: &Sink) -> io::Result<()> {
    let (host, port) =
        parse_target(target).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    (out.borrow_mut())(format!("wget {target}..."));
    let (mut reader, writer) = kettle::open_connection(&host, port).await?;
    let request = format!("GET / HTTP/1.0\r\nHost: {target}\r\n\r\n");
    writer.write(request.as_bytes());
    writer.drain().await?;
    loop {
        let line = reader.readline().await?;
        // The blank line ends the headers; a server that closes early ends them too.
        if line.is_empty() || line == b"\r\n" || line == b"\n" {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        (out.borrow_mut())(format!("{target} header > {}", text.trim_end()));
    }
    writer.close();
    Ok(())
}

/// Runs [`wget`] for every target concurrently, each under `timeout`; a failure is reported as
/// `wget TARGET failed: ERROR` and leaves the others running.
pub async fn wget_all(targets: &[String], timeout: Duration, out: Sink) {
    let tasks: Vec<_> = targets
        .iter()
        .cloned()
        .map(|target| {
            let out = out.clone();
            kettle::spawn(async move {
                let error = match kettle::wait_for(wget(&target, &out), timeout).await {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => format!("{e} after {timeout:?}"),
                };
                (out.borrow_mut())(format!("wget {target} failed: {error}"));
            })
        })
        .collect();
    for t in tasks {
        // A task only fails by panicking, which the loop has already reported.
        let _ = t.await;
    }
}

#[kettle::main]
async fn main() {
    let mut targets: Vec<String> = std::env::args().skip(1).collect();
    if targets.is_empty() {
        targets = DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect();
    }
    let out: Sink = Rc::new(RefCell::new(|line: String| println!("{line}")));
    wget_all(&targets, TIMEOUT, out).await;
}
