//! What every `http-hello` server answers, and the pieces the two hand-written servers (the
//! epoll floor and kettle-raw) use to answer it without an HTTP library.
//!
//! The response, byte for byte as the floor sends it (hyper and actix send the same status,
//! headers and body; only the order of their headers may differ):
//!
//! ```text
//! HTTP/1.1 200 OK\r\n
//! content-type: text/plain; charset=utf-8\r\n
//! content-length: 13\r\n
//! date: Mon, 23 Nov 2026 12:00:00 GMT\r\n
//! \r\n
//! Hello, World!
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// The body.
pub const BODY: &[u8] = b"Hello, World!";

/// The `Content-Type` value.
pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The response up to the date's value.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 13\r\n\
date: ";

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) is always this long.
const DATE_LEN: usize = 29;

/// After the date: the end of the head, and the body.
const TAIL: &[u8] = b"\r\n\r\nHello, World!";

/// The length of the whole response.
pub const RESPONSE_LEN: usize = HEAD.len() + DATE_LEN + TAIL.len();

/// The response with its `Date` header, rewritten at most once per second (as real servers
/// cache the date: formatting it per request would cost the floor more than the servers it is
/// the floor for).
pub struct HelloResponse {
    bytes: [u8; RESPONSE_LEN],
    /// The Unix second the date in `bytes` shows.
    second: u64,
}

impl HelloResponse {
    /// The response dated now.
    pub fn new() -> HelloResponse {
        let mut bytes = [0u8; RESPONSE_LEN];
        bytes[..HEAD.len()].copy_from_slice(HEAD);
        bytes[HEAD.len() + DATE_LEN..].copy_from_slice(TAIL);
        let mut response = HelloResponse { bytes, second: 0 };
        response.set_date(SystemTime::now());
        response
    }

    /// The response, with the date brought up to the current second first (one clock read;
    /// the date is formatted only when the second has changed).
    pub fn current(&mut self) -> &[u8; RESPONSE_LEN] {
        let now = SystemTime::now();
        if unix_second(now) != self.second {
            self.set_date(now);
        }
        &self.bytes
    }

    /// Appends `n` copies of the current response to `out`: the answer to `n` requests, to be
    /// sent in one write.
    pub fn append(&mut self, n: usize, out: &mut Vec<u8>) {
        let bytes = self.current();
        out.reserve(n * RESPONSE_LEN);
        for _ in 0..n {
            out.extend_from_slice(bytes);
        }
    }

    fn set_date(&mut self, now: SystemTime) {
        let date = httpdate::fmt_http_date(now);
        debug_assert_eq!(date.len(), DATE_LEN);
        if date.len() == DATE_LEN {
            self.bytes[HEAD.len()..HEAD.len() + DATE_LEN].copy_from_slice(date.as_bytes());
        }
        self.second = unix_second(now);
    }
}

impl Default for HelloResponse {
    fn default() -> Self {
        HelloResponse::new()
    }
}

fn unix_second(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Counts complete requests in a byte stream that arrives in arbitrary pieces: one per
/// `\r\n\r\n`, the end of a request head. That is all the hand-written servers parse, so they
/// serve `GET` (and any request without a body) and nothing else, which is all wrk sends here.
#[derive(Debug, Default)]
pub struct RequestCounter {
    /// How much of `\r\n\r\n` the bytes seen so far end with (0 to 3): a terminator may be
    /// split between two reads.
    matched: u8,
}

impl RequestCounter {
    /// Feeds the next bytes; returns how many requests they complete.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut complete = 0;
        let mut m = self.matched;
        for &b in data {
            m = match (m, b) {
                (1, b'\n') => 2,
                (3, b'\n') => {
                    complete += 1;
                    0
                }
                (2, b'\r') => 3,
                // "\r" after anything else (including a lone "\r" or "\r\n\r") starts over at 1.
                (_, b'\r') => 1,
                _ => 0,
            };
        }
        self.matched = m;
        complete
    }
}

/// Requests answered by the server in this process, all servers together. Each server adds
/// to it as it answers (one relaxed atomic add per batch or per request, on one thread, so it
/// costs next to nothing), and `http-server` prints the total when it exits, so the parent can
/// check that wrk counted every pipelined response.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

/// Counts `n` answered requests.
pub fn count_answered(n: u64) {
    ANSWERED.fetch_add(n, Ordering::Relaxed);
}

/// The requests answered so far by the servers in this process.
pub fn answered() -> u64 {
    ANSWERED.load(Ordering::Relaxed)
}

thread_local! {
    /// This thread's count for [`count_answered_on_thread`], registered in [`PER_THREAD`] by
    /// the thread's first count.
    static THREAD_ANSWERED: Cell<Option<&'static AtomicU64>> = const { Cell::new(None) };
}

/// Every thread's counter that has counted, in the order they first did. A counter is leaked
/// on purpose: a server process has a few threads, and the count must outlive each of them
/// until the process prints it on exit.
static PER_THREAD: Mutex<Vec<&'static AtomicU64>> = Mutex::new(Vec::new());

/// Counts `n` answered requests as [`count_answered`] does, and also for the calling thread:
/// how the multi-worker anchors (hyper on tokio `multi_thread`, actix with several workers, the
/// epoll floor's threads) count per worker, since each of their workers is a thread and
/// nothing else names it. The single-core servers do not pay for this.
pub fn count_answered_on_thread(n: u64) {
    count_answered(n);
    THREAD_ANSWERED.with(|mine| {
        let counter = mine.get().unwrap_or_else(|| {
            let counter: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
            PER_THREAD
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(counter);
            mine.set(Some(counter));
            counter
        });
        counter.fetch_add(n, Ordering::Relaxed);
    });
}

/// What [`count_answered_on_thread`] counted, per thread, in the order the threads first
/// counted. A thread that never answered has no entry.
pub fn per_thread_answered() -> Vec<u64> {
    PER_THREAD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bytes() {
        let mut r = HelloResponse::new();
        let bytes = r.current().to_vec();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n"));
        assert!(text.ends_with(" GMT\r\n\r\nHello, World!"), "{text:?}");
        let date_line = text.lines().find(|l| l.starts_with("date: ")).unwrap();
        assert!(httpdate::parse_http_date(&date_line["date: ".len()..]).is_ok());
        let mut out = Vec::new();
        r.append(3, &mut out);
        assert_eq!(out.len(), 3 * RESPONSE_LEN);
    }

    #[test]
    fn counts_per_thread() {
        let before = answered();
        let threads: Vec<_> = [3u64, 5]
            .into_iter()
            .map(|n| std::thread::spawn(move || (0..n).for_each(|_| count_answered_on_thread(1))))
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // Other tests count too, so only what these two threads added is certain.
        assert!(answered() - before >= 8);
        let counts = per_thread_answered();
        assert!(counts.contains(&3) && counts.contains(&5), "{counts:?}");
    }

    #[test]
    fn counts_terminators_across_pieces() {
        let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut c = RequestCounter::default();
        assert_eq!(c.feed(req), 1);
        let sixteen: Vec<u8> = req.iter().copied().cycle().take(16 * req.len()).collect();
        assert_eq!(c.feed(&sixteen), 16);
        // Every split point of two requests, including inside the terminator.
        let two = [&req[..], &req[..]].concat();
        for cut in 0..=two.len() {
            let mut c = RequestCounter::default();
            assert_eq!(c.feed(&two[..cut]) + c.feed(&two[cut..]), 2, "cut at {cut}");
        }
        // One byte at a time.
        let mut c = RequestCounter::default();
        assert_eq!(sixteen.iter().map(|b| c.feed(&[*b])).sum::<usize>(), 16);
        // Near misses.
        let mut c = RequestCounter::default();
        assert_eq!(c.feed(b"\r\n\n\r\r\n\r\r\n\r\n"), 1);
    }
}
