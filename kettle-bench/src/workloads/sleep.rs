//! `sleep N`: N concurrent timers, the timer wheel/heap under load.
//!
//! Task k sleeps d_k ms, with d_k drawn from a 64-bit linear congruential generator (Knuth's
//! MMIX constants) seeded with 42, so both runtimes get exactly the same delays:
//! x ← x·6364136223846793005 + 1442695040888963407 (mod 2^64), d_k = (x >> 33) mod 1001.
//! The ideal elapsed time is the largest delay (≈ 1.0 s for large N); anything above it is
//! timer overhead and scheduling lag.

use std::time::{Duration, Instant};

use crate::harness::{tokio_runtime, Fields};

/// The delays in milliseconds, in task order.
pub fn delays(n: u64) -> Vec<u64> {
    let mut x: u64 = 42;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % 1001
        })
        .collect()
}

/// The workload on Kettle.
pub fn kettle(n: u64) -> Fields {
    // The delays are computed before the clock starts: they are input, not work.
    let delays = delays(n);
    let max = delays.iter().copied().max().unwrap_or(0);
    kettle::run(async move {
        let start = Instant::now();
        let handles: Vec<_> = delays
            .iter()
            .map(|&d| kettle::spawn(async move { kettle::sleep(Duration::from_millis(d)).await }))
            .collect();
        for handle in handles {
            handle.await.expect("a kettle task failed");
        }
        result(start, max)
    })
}

/// The workload on tokio's current_thread runtime.
pub fn tokio(n: u64) -> Fields {
    let delays = delays(n);
    let max = delays.iter().copied().max().unwrap_or(0);
    tokio_runtime().block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = delays
            .iter()
            .map(|&d| {
                tokio::spawn(async move { tokio::time::sleep(Duration::from_millis(d)).await })
            })
            .collect();
        for handle in handles {
            handle.await.expect("a tokio task failed");
        }
        result(start, max)
    })
}

fn result(start: Instant, max_delay_ms: u64) -> Fields {
    Fields::new()
        .elapsed(start.elapsed())
        .with("max_delay_ms", max_delay_ms)
}

#[cfg(test)]
mod tests {
    #[test]
    fn delays_follow_the_issue_definition() {
        let d = super::delays(100_000);
        // First value by hand: x1 = 42·a + c (mod 2^64).
        let x1 = 42u64
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        assert_eq!(d[0], (x1 >> 33) % 1001);
        assert!(d.iter().all(|&v| v <= 1000));
        assert_eq!(d.iter().max(), Some(&1000));
    }
}
