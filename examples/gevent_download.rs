//! Seed 002's concurrent download: a green thread per URL prints `GET: URL`, downloads it,
//! then prints `N bytes received from URL.` (N: the body's bytes). All downloads run at once
//! on one OS thread, each blocking only its own green thread.
//!
//! ```text
//! cargo run --example web_app &                    # serves http://127.0.0.1:8000
//! cargo run --example gevent_download              # its three pages, each after 0.5 s
//! cargo run --example gevent_download -- http://example.com/ http://127.0.0.1:8000/
//! cargo run --example gevent_download -- --timeout-ms 2000 URL...
//! ```
//!
//! Without arguments it fetches three pages of the `web_app` example, so it works offline:
//! the seed's three sites (`http://www.baidu.com/`, ...) need a network and may redirect to
//! HTTPS, which this example does not speak (pass them as arguments to try). Each page takes
//! the server half a second, so fetching all three takes about half a second, not one and a
//! half.
//!
//! The seed's `urllib.request.urlopen(url).read()` becomes a small HTTP/1.1 client over
//! `kettle::green::net::TcpStream`, written with nothing but `std::io`: `GET` with `Host` and
//! `Connection: close`, then the status line and headers (at most 64 KiB of them), then the
//! body framed by `Content-Length`, by chunked encoding, or by the server closing the
//! connection. Like `urlopen` it follows redirects (up to five here) and treats any other
//! status outside 2xx as a failure. Each URL gets one deadline (`--timeout-ms`, 10 s by
//! default) for all of its work, enforced through the socket's read and write timeouts.
//!
//! A URL that fails prints `download URL failed: REASON` and the others carry on. The exit
//! status is 0 when every URL downloaded, 1 otherwise (2 for a usage error).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use kettle::green::{self, net::TcpStream};

/// What runs without arguments: the pages of `cargo run --example web_app`.
const DEFAULT_URLS: [&str; 3] = [
    "http://127.0.0.1:8000/",
    "http://127.0.0.1:8000/hello/gevent",
    "http://127.0.0.1:8000/hello/kettle",
];

/// The deadline for one URL, redirects included, unless `--timeout-ms` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a response's status line and headers (or a chunked body's trailers) may take:
/// a server that never ends its head cannot make us buffer without end.
const MAX_HEAD: u64 = 64 * 1024;

/// The longest chunk-size line accepted (hex digits plus extensions).
const MAX_CHUNK_LINE: u64 = 1024;

/// Redirects followed before giving up, as `urlopen` does.
const MAX_REDIRECTS: usize = 5;

/// An `http://` URL taken apart.
#[derive(Debug, Clone, PartialEq)]
struct Url {
    /// The host name or address (IPv6 without brackets).
    host: String,
    port: u16,
    /// What the `Host` header says: the authority as written.
    authority: String,
    /// The path and query, starting with `/`.
    target: String,
}

/// A failure worth a line of output.
fn failure(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Parses `http://host[:port][/path][?query]` (an IPv6 host in brackets); the fragment is
/// dropped, as browsers do.
fn parse_url(url: &str) -> io::Result<Url> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("not a URL (expected http://host/path)"))?;
    if scheme.eq_ignore_ascii_case("https") {
        return Err(invalid(
            "https is not supported (this example speaks plain HTTP)",
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(invalid("only http:// URLs are supported"));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.contains('@') {
        return Err(invalid("credentials in URLs are not supported"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(invalid("no host in the URL"));
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse().map_err(|_| invalid("invalid port"))?,
    };
    let target = match target {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    Ok(Url {
        host: host.to_string(),
        port,
        authority: authority.to_string(),
        target,
    })
}

/// Where a redirect's `Location` points, relative to `base`.
fn resolve(base: &Url, location: &str) -> io::Result<Url> {
    if location.contains("://") {
        return parse_url(location);
    }
    let target = if location.starts_with('/') {
        location.to_string()
    } else {
        // Relative to the base path's directory.
        let path = base.target.split('?').next().unwrap_or("/");
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{location}")
    };
    Ok(Url {
        target,
        ..base.clone()
    })
}

/// Reads the socket with what is left of one deadline as its timeout: the deadline bounds
/// the whole download, where a plain read timeout would let a server that trickles a byte
/// at a time go on for ever.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = remaining(self.deadline)?;
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

/// The time left until `deadline`; `TimedOut` once it has passed.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    Ok(left)
}

/// Connects to the first of `url`'s addresses that answers before the deadline.
fn connect(url: &Url, deadline: Instant) -> io::Result<TcpStream> {
    // The name lookup is async in Kettle; green code runs it (under the deadline, which a
    // slow DNS server could otherwise outlast) with `green::wait`.
    let lookup = kettle::net::lookup_host(&url.host, url.port);
    let addrs = match green::wait(kettle::wait_for(lookup, remaining(deadline)?)) {
        Ok(addrs) => addrs?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "name lookup timed out",
            ))
        }
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| failure("no address")))
}

/// Reads one line of at most `limit` bytes (its end included); `None` at EOF.
fn read_line(reader: &mut impl BufRead, limit: u64, what: &str) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if n as u64 == limit {
            failure(format!("{what} longer than {limit} bytes"))
        } else {
            failure(format!("connection closed in the middle of the {what}"))
        });
    }
    let text = String::from_utf8(line).map_err(|_| failure(format!("{what} is not UTF-8")))?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// A response's status line and the headers the body's framing depends on.
struct Head {
    status: u16,
    reason: String,
    content_length: Option<u64>,
    chunked: bool,
    location: Option<String>,
}

/// Reads one line of a head whose lines may take `budget` more bytes in all.
fn head_line(reader: &mut impl BufRead, budget: &mut u64, what: &str) -> io::Result<String> {
    let line = read_line(reader, (*budget).max(1), what)?
        .ok_or_else(|| failure(format!("connection closed before the end of the {what}")))?;
    *budget = budget.saturating_sub(line.len() as u64 + 2);
    if *budget == 0 {
        return Err(failure(format!("{what} longer than {MAX_HEAD} bytes")));
    }
    Ok(line)
}

/// Reads a status line and headers, within [`MAX_HEAD`] bytes in all.
fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut budget = MAX_HEAD;
    let status_line = head_line(reader, &mut budget, "status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(failure(format!("not an HTTP/1 response: {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| failure(format!("bad status line: {status_line:?}")))?;
    let mut head = Head {
        status,
        reason: parts.next().unwrap_or_default().to_string(),
        content_length: None,
        chunked: false,
        location: None,
    };
    loop {
        let line = head_line(reader, &mut budget, "response head")?;
        if line.is_empty() {
            return Ok(head);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| failure(format!("bad header line: {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| failure(format!("bad Content-Length: {value:?}")))?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(failure("conflicting Content-Length headers"));
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked is the body's framing when it is the last coding applied.
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            head.chunked = last.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("location") {
            head.location = Some(value.to_string());
        }
    }
}

/// Reads exactly `n` body bytes (they are counted, not kept); fewer is an error.
fn read_exactly(reader: &mut impl BufRead, n: u64) -> io::Result<u64> {
    let got = io::copy(&mut reader.by_ref().take(n), &mut io::sink())?;
    if got < n {
        return Err(failure(format!(
            "connection closed after {got} of {n} body bytes"
        )));
    }
    Ok(got)
}

/// Reads a chunked body; returns its decoded length.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let line = read_line(reader, MAX_CHUNK_LINE, "chunk size line")?
            .ok_or_else(|| failure("connection closed before the last chunk"))?;
        let digits = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(digits, 16)
            .map_err(|_| failure(format!("bad chunk size line: {line:?}")))?;
        if size == 0 {
            break;
        }
        total += read_exactly(reader, size)?;
        match read_line(reader, 2, "chunk end")? {
            Some(end) if end.is_empty() => {}
            _ => return Err(failure("a chunk is not followed by CRLF")),
        }
    }
    // Trailers, up to the blank line that ends the message.
    let mut budget = MAX_HEAD;
    loop {
        if head_line(reader, &mut budget, "trailers")?.is_empty() {
            return Ok(total);
        }
    }
}

/// What one request ended in.
enum Outcome {
    /// The body's length.
    Body(u64),
    /// A redirect to follow.
    Redirect(Url),
}

/// One `GET` of `url` on a fresh connection.
fn get_once(url: &Url, deadline: Instant) -> io::Result<Outcome> {
    let stream = connect(url, deadline)?;
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kettle-gevent-download\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        url.target, url.authority
    );
    (&stream).write_all(request.as_bytes())?;
    let mut reader = BufReader::new(DeadlineReader {
        stream: &stream,
        deadline,
    });
    let mut head = read_head(&mut reader)?;
    // Interim responses (100 Continue and the like) come before the real one.
    while (100..200).contains(&head.status) && head.status != 101 {
        head = read_head(&mut reader)?;
    }
    let status = head.status;
    if matches!(status, 301 | 302 | 303 | 307 | 308) {
        let location = head
            .location
            .ok_or_else(|| failure(format!("HTTP {status} without a Location")))?;
        return Ok(Outcome::Redirect(resolve(url, &location)?));
    }
    if !(200..300).contains(&status) {
        return Err(failure(format!("HTTP Error {status}: {}", head.reason)));
    }
    let length = if status == 204 {
        0
    } else if head.chunked {
        read_chunked(&mut reader)?
    } else if let Some(n) = head.content_length {
        read_exactly(&mut reader, n)?
    } else {
        // Neither: the body runs to the end of the connection.
        io::copy(&mut reader, &mut io::sink())?
    };
    Ok(Outcome::Body(length))
}

/// The seed's `urlopen(url).read()`, counting the body: follows redirects, all within
/// `timeout`.
fn download(url: &str, timeout: Duration) -> io::Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut current = parse_url(url)?;
    for _ in 0..=MAX_REDIRECTS {
        match get_once(&current, deadline)? {
            Outcome::Body(n) => return Ok(n),
            Outcome::Redirect(next) => current = next,
        }
    }
    Err(failure(format!("more than {MAX_REDIRECTS} redirects")))
}

/// The seed's `my_downLoad(url)`; false if it failed.
fn my_download(url: &str, timeout: Duration) -> bool {
    println!("GET: {url}");
    match download(url, timeout) {
        Ok(n) => {
            println!("{n} bytes received from {url}.");
            true
        }
        Err(e) => {
            println!("download {url} failed: {e}");
            false
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: gevent_download [--timeout-ms MS] [URL...]");
    std::process::exit(2)
}

fn main() {
    let mut timeout = DEFAULT_TIMEOUT;
    let mut urls = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--timeout-ms" => {
                let ms: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|ms| *ms > 0)
                    .unwrap_or_else(|| usage());
                timeout = Duration::from_millis(ms);
            }
            flag if flag.starts_with("--") => usage(),
            _ => urls.push(arg),
        }
    }
    if urls.is_empty() {
        urls = DEFAULT_URLS.iter().map(|u| u.to_string()).collect();
    }
    let all_ok = green::run(move || {
        let downloads: Vec<_> = urls
            .into_iter()
            .map(|url| green::spawn(move || my_download(&url, timeout)))
            .collect();
        green::joinall(downloads)
            .into_iter()
            .all(|result| result.unwrap_or(false))
    })
    .expect("the main green thread");
    std::process::exit(if all_ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = parse_url("http://example.com").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("example.com", 80, "/")
        );
        let u = parse_url("HTTP://127.0.0.1:8000/a/b?c=d#frag").unwrap();
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.target.as_str()
            ),
            ("127.0.0.1", 8000, "127.0.0.1:8000", "/a/b?c=d")
        );
        let u = parse_url("http://[::1]:81?x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 81, "/?x")
        );
        for bad in [
            "https://a/",
            "ftp://a/",
            "a/b",
            "http:///x",
            "http://a:b/",
            "http://u@a/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_resolve() {
        let base = parse_url("http://h:1/a/b?q").unwrap();
        assert_eq!(resolve(&base, "/x").unwrap().target, "/x");
        assert_eq!(resolve(&base, "c").unwrap().target, "/a/c");
        assert_eq!(resolve(&base, "http://o/p").unwrap().host, "o");
    }
}
