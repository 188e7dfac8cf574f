//! Seed 002's concurrent download: one green thread per URL, each printing `GET: URL`, fetching
//! the page with blocking-looking code, then `N bytes received from URL.`. The downloads
//! overlap: while one waits for its server, the others run.
//!
//! ```text
//! cargo run --example gevent_download -- http://127.0.0.1:8000/ http://127.0.0.1:8000/hello/kettle
//! cargo run --example gevent_download        # the seed's three URLs (needs the internet)
//! ```
//!
//! The fetch is a plain HTTP/1.1 GET over `kettle::green::net::TcpStream` (the seed's
//! `urllib.request.urlopen` after `monkey.patch_all()`), read with `std::io::BufReader`:
//! `Content-Length`, chunked and close-delimited bodies; `http://` only. A URL that fails is
//! reported and the others go on; the exit status is 1 if any failed.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

use kettle::green::{self, net::TcpStream};

/// The seed's URLs, used when none are given.
const SEED_URLS: [&str; 3] = [
    "http://www.baidu.com/",
    "http://www.itcast.cn/",
    "http://www.itheima.com/",
];

/// A peer that sends nothing for this long is given up on.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The status line and headers together may not be larger than this.
const MAX_HEAD: usize = 64 * 1024;

/// The seed's `my_downLoad`.
fn my_download(url: &str) -> io::Result<usize> {
    println!("GET: {url}");
    let data = urlopen(url)?;
    println!("{} bytes received from {url}.", data.len());
    Ok(data.len())
}

/// `http://host[:port][/path]` → (host, port, path).
fn parse_url(url: &str) -> io::Result<(String, u16, String)> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h, p.parse().map_err(|_| invalid("bad port"))?)
        }
        _ => (authority, 80),
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// Fetches `url` and returns the response body (any status).
fn urlopen(url: &str) -> io::Result<Vec<u8>> {
    let (host, port, path) = parse_url(url)?;
    let stream = TcpStream::connect((host.as_str(), port))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    (&stream).write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kettle-gevent-download\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let mut reader = BufReader::new(&stream);
    let head = read_head(&mut reader)?;
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let status = head.first().ok_or_else(|| bad("empty response".into()))?;
    if !status.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP/1 response: {status:?}")));
    }
    let header = |name: &str| {
        head[1..].iter().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().ends_with("chunked")) {
        read_chunked(&mut reader, &mut body)?;
    } else if let Some(len) = header("content-length") {
        let len: u64 = len
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        reader.by_ref().take(len).read_to_end(&mut body)?;
        if (body.len() as u64) < len {
            return Err(bad(format!(
                "body ended after {} of {len} bytes",
                body.len()
            )));
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Reads the status line and headers, bounded by [`MAX_HEAD`].
fn read_head(reader: &mut impl BufRead) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - total) as u64 + 1)
            .read_line(&mut line)?;
        total += n;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the head",
            ));
        }
        if total > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head too large",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// Reads a chunked body into `body`.
fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> io::Result<()> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    loop {
        let mut size_line = String::new();
        reader.by_ref().take(1024).read_line(&mut size_line)?;
        let size = size_line.trim_end().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size.trim(), 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            read_head(reader)?;
            return Ok(());
        }
        let before = body.len();
        reader.by_ref().take(size).read_to_end(body)?;
        if ((body.len() - before) as u64) < size {
            return Err(bad("connection closed inside a chunk"));
        }
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}

fn main() {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        urls = SEED_URLS.iter().map(|u| u.to_string()).collect();
    }
    let all_ok = green::run(move || {
        let downloads: Vec<_> = urls
            .into_iter()
            .map(|url| {
                green::spawn(move || match my_download(&url) {
                    Ok(_) => true,
                    Err(e) => {
                        println!("failed: {url}: {e}");
                        false
                    }
                })
            })
            .collect();
        green::joinall(downloads)
            .into_iter()
            .all(|r| r.unwrap_or(false))
    })
    .expect("the main green thread");
    std::process::exit(if all_ok { 0 } else { 1 });
}
