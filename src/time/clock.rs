//! The loop clock: nanoseconds since a process-wide epoch, as `u64`.
//!
//! All loops share one epoch so that `EventLoop::time()` values are comparable across loops, as
//! `time.monotonic()` values are in Python.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> u64 {
    instant_ns(Instant::now())
}

/// A recent time, cheaply: the running loop's time at its last wake-up from epoll, at most
/// one loop iteration old (a real clock read outside a loop). For deadlines of seconds, such
/// as a connection's idle timeout, where a clock read per request would be the costliest part.
pub(crate) fn recent_ns() -> u64 {
    crate::runtime::context::with_current(|core| core.tick_ns()).unwrap_or_else(now_ns)
}

/// [`recent_ns`] as an `Instant`.
pub(crate) fn recent() -> Instant {
    ns_instant(recent_ns())
}

/// An `Instant` on the loop clock (instants before the epoch clamp to zero).
pub(crate) fn instant_ns(t: Instant) -> u64 {
    duration_ns(t.saturating_duration_since(epoch()))
}

/// A loop-clock value back as an `Instant`.
pub(crate) fn ns_instant(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}

/// A duration in nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Seconds since the epoch (asyncio's `loop.time()`).
pub(crate) fn now_secs() -> f64 {
    ns_to_secs(now_ns())
}

pub(crate) fn ns_to_secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Loop-clock seconds to nanoseconds; negative or NaN means "now or earlier" (zero).
pub(crate) fn secs_to_ns(secs: f64) -> u64 {
    if secs.is_nan() || secs <= 0.0 {
        0
    } else if secs >= u64::MAX as f64 / 1e9 {
        u64::MAX
    } else {
        (secs * 1e9) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_saturate() {
        assert_eq!(secs_to_ns(-1.0), 0);
        assert_eq!(secs_to_ns(f64::NAN), 0);
        assert_eq!(secs_to_ns(1e30), u64::MAX);
        assert_eq!(secs_to_ns(1.5), 1_500_000_000);
        assert_eq!(duration_ns(Duration::MAX), u64::MAX);
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
    }
}
