//! `green-sleep N`: N green threads sleeping at once, the timers under green threads.
//!
//! Thread k sleeps d_k ms, the delays of the `sleep` workload ([`super::sleep::delays`]), and
//! returns d_k. The checksums are the largest delay (`max_delay_ms`, also the ideal elapsed
//! time: ≈ 1.0 s for large N) and the sum of what the threads returned (`delay_sum_ms`, which
//! shows every thread ran to its end). All N threads sleep at once, so the peak RSS shows the
//! per-thread memory of a parked green thread.
//!
//! Runtimes: `kettle-green` (`kettle::green::sleep`), `may` (`may::coroutine::sleep`, one
//! worker plus may's timer thread), `python-gevent` (`gevent.sleep`).

use std::time::{Duration, Instant};

use super::sleep::delays;
use crate::harness::{may_configure, Fields};

/// The workload on Kettle's green threads: `green::sleep` in each, `green::joinall`.
pub fn kettle(n: u64) -> Fields {
    use kettle::green;

    // The delays are computed before the clock starts: they are input, not work.
    let delays = delays(n);
    let max = delays.iter().copied().max().unwrap_or(0);
    let (elapsed, sum) = green::run(move || {
        let start = Instant::now();
        let threads: Vec<_> = delays
            .into_iter()
            .map(|d| {
                green::spawn(move || {
                    green::sleep(Duration::from_millis(d));
                    d
                })
            })
            .collect();
        let mut sum = 0u64;
        for result in green::joinall(threads) {
            sum = sum.wrapping_add(result.expect("a kettle green thread failed"));
        }
        (start.elapsed(), sum)
    })
    .expect("the kettle green main thread failed");
    result(elapsed, max, sum)
}

/// The workload on `may`, spawned and joined from the main thread while may's one worker runs
/// the coroutines, as in [`super::green_spawn::may`]. may maps every coroutine's stack
/// separately, so 100,000 sleeping at once exceed `vm.max_map_count` and it aborts with
/// "failed to alloc sys stack" (30,000 work).
pub fn may(n: u64) -> Fields {
    // The delays are computed before the clock starts: they are input, not work.
    let delays = delays(n);
    let max = delays.iter().copied().max().unwrap_or(0);
    may_configure();
    let start = Instant::now();
    let handles: Vec<_> = delays
        .into_iter()
        .map(|d| {
            may::go!(move || {
                may::coroutine::sleep(Duration::from_millis(d));
                d
            })
        })
        .collect();
    let mut sum = 0u64;
    for handle in handles {
        sum = sum.wrapping_add(handle.join().expect("a may coroutine panicked"));
    }
    let elapsed = start.elapsed();
    result(elapsed, max, sum)
}

/// gevent's greenlets, in `kettle-bench/python/kettle_bench.py`.
pub fn gevent(n: u64) -> Result<Fields, String> {
    crate::python::run("green-sleep", n)
}

fn result(elapsed: Duration, max_delay_ms: u64, delay_sum_ms: u64) -> Fields {
    Fields::new()
        .elapsed(elapsed)
        .with("max_delay_ms", max_delay_ms)
        .with("delay_sum_ms", delay_sum_ms)
}
