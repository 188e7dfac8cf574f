//! The `Date` header, formatted at most once a second per thread.
//!
//! Every response carries a Date (RFC 9110 §6.6.1); formatting one costs far more than the
//! rest of a small response head, so each thread keeps the current second's text and only
//! reformats when the second changes.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const DATE_LEN: usize = 29;

/// `Date: ` + the date + CRLF + the CRLF that ends a head.
pub(crate) const LINE_LEN: usize = 6 + DATE_LEN + 4;

struct Cached {
    second: u64,
    text: [u8; DATE_LEN],
    line: [u8; LINE_LEN],
}

thread_local! {
    static CACHE: RefCell<Cached> = const {
        RefCell::new(Cached { second: u64::MAX, text: [0; DATE_LEN], line: [0; LINE_LEN] })
    };
}

/// The current Unix second from the coarse real-time clock: a few nanoseconds instead of
/// a full clock read, and its few milliseconds of granularity do not matter for a value
/// shown in whole seconds.
fn coarse_unix_second() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc == 0 && ts.tv_sec >= 0 {
        ts.tv_sec as u64
    } else {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }
}

fn with_cache<R>(f: impl FnOnce(&Cached) -> R) -> R {
    let second = coarse_unix_second();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            // IMF-fixdate always has this length for years 1000..=9999.
            if text.len() == DATE_LEN {
                cache.text.copy_from_slice(text.as_bytes());
                cache.line[..6].copy_from_slice(b"Date: ");
                cache.line[6..6 + DATE_LEN].copy_from_slice(text.as_bytes());
                cache.line[6 + DATE_LEN..].copy_from_slice(b"\r\n\r\n");
                cache.second = second;
            }
        }
        f(&cache)
    })
}

/// Calls `f` with the current time as an IMF-fixdate.
#[cfg(test)]
pub(crate) fn with_now<R>(f: impl FnOnce(&[u8; DATE_LEN]) -> R) -> R {
    with_cache(|c| f(&c.text))
}

/// Calls `f` with `Date: <now>\r\n\r\n`: the last header line and the end of a head.
pub(crate) fn with_line<R>(f: impl FnOnce(&[u8; LINE_LEN]) -> R) -> R {
    with_cache(|c| f(&c.line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_parses_back_to_now() {
        let text = with_now(|d| String::from_utf8(d.to_vec()).unwrap());
        let parsed = httpdate::parse_http_date(&text).unwrap();
        let diff = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(diff < Duration::from_secs(5), "{text}");
        assert!(text.ends_with(" GMT"));
    }
}
