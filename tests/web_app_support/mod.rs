//! Helpers shared by the `web_app*` test binaries: raw HTTP over a socket (for exact bytes),
//! curl when it is installed, and throw-away directories.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use kettle::net::TcpStream;

/// How long a raw exchange may take before the test fails instead of hanging.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `request` as is on a new connection and returns every byte the server sends until it
/// closes the connection. Use `Connection: close` (or HTTP/1.0) so the server does close.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send request");
        read_to_end(&stream).await
    };
    kettle::wait_for(exchange, RAW_TIMEOUT)
        .await
        .expect("the server did not close the connection in time")
}

/// Reads until EOF (a reset after the response counts as EOF too).
pub async fn read_to_end(stream: &TcpStream) -> Vec<u8> {
    let mut buf = BytesMut::new();
    loop {
        match stream.read_buf(&mut buf, 8192).await {
            Ok(0) | Err(_) => return buf.to_vec(),
            Ok(_) => {}
        }
    }
}

/// Reads until `buf` holds at least one complete response (head plus `Content-Length` body),
/// leaving what follows in `buf`. Only for responses framed by `Content-Length`.
pub async fn read_one(stream: &TcpStream, buf: &mut BytesMut) -> RawResponse {
    let exchange = async {
        loop {
            if let Some(end) = find(buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let all = buf.split_to(end + 4 + len);
                    return RawResponse::parse(&all);
                }
            }
            let n = stream.read_buf(buf, 8192).await.expect("read response");
            assert!(n > 0, "connection closed before a whole response arrived");
        }
    };
    kettle::wait_for(exchange, RAW_TIMEOUT)
        .await
        .expect("no complete response in time")
}

/// The position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response taken apart from its raw bytes (the body is left exactly as sent, framing
/// included).
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status line, without CRLF.
    pub status_line: String,
    pub status: u16,
    /// `(name, value)` as sent, in order.
    pub headers: Vec<(String, String)>,
    /// Everything after the blank line.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Splits raw bytes at the first blank line.
    pub fn parse(bytes: &[u8]) -> RawResponse {
        let end = find(bytes, b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("").to_string();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|l| {
                let (k, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad line {l:?}"));
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        RawResponse {
            status_line,
            status,
            headers,
            body: bytes[end + 4..].to_vec(),
        }
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of header `name`; panics if it appears more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} sent {} times: {all:?}", all.len());
        all.first().copied()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl with `args` off the loop (so the server on this loop keeps serving). `None` when
/// curl is not installed, so callers can skip.
pub async fn curl(args: &[&str]) -> Option<Output> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    kettle::run_in_executor(move || {
        std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(&args)
            .output()
            .ok()
    })
    .await
    .expect("executor")
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "kettle-{tag}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `data` to `rel` (creating parent directories) and returns the full path.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(&p, data).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
