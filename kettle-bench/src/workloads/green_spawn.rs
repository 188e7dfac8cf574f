//! `green-spawn N`: the cost of creating, scheduling, completing and joining N green threads
//! (stackful: each has its own stack, unlike the tasks of `spawn`).
//!
//! Thread i returns i as u64; all N are spawned before any is joined, so all exist at once and
//! the peak RSS shows the per-thread memory of each runtime. The checksum is the sum of the
//! results (N·(N−1)/2).
//!
//! Runtimes: `kettle-green` (`kettle::green::spawn`, `joinall`), `may` (`go!` and `join`, one
//! worker, its default 32 KiB stacks), `python-gevent` (`gevent.spawn`, `gevent.joinall`).

use std::time::{Duration, Instant};

use crate::harness::{may_run, Fields};

/// The workload on Kettle's green threads: `green::spawn` from a green thread, then
/// `green::joinall`.
pub fn kettle(n: u64) -> Fields {
    use kettle::green;

    let (elapsed, sum) = green::run(move || {
        let start = Instant::now();
        let threads: Vec<_> = (0..n).map(|i| green::spawn(move || i)).collect();
        let mut sum = 0u64;
        for result in green::joinall(threads) {
            sum = sum.wrapping_add(result.expect("a kettle green thread failed"));
        }
        (start.elapsed(), sum)
    })
    .expect("the kettle green main thread failed");
    result(elapsed, sum)
}

/// The workload on `may`, from inside a coroutine so that spawning and joining run on may's
/// one worker, as they run on Kettle's one thread.
pub fn may(n: u64) -> Fields {
    let (elapsed, sum) = may_run(move || {
        let start = Instant::now();
        let handles: Vec<_> = (0..n).map(|i| may::go!(move || i)).collect();
        let mut sum = 0u64;
        for handle in handles {
            sum = sum.wrapping_add(handle.join().expect("a may coroutine panicked"));
        }
        (start.elapsed(), sum)
    });
    result(elapsed, sum)
}

/// gevent's greenlets, in `kettle-bench/python/kettle_bench.py`.
pub fn gevent(n: u64) -> Result<Fields, String> {
    crate::python::run("green-spawn", n)
}

fn result(elapsed: Duration, sum: u64) -> Fields {
    Fields::new().elapsed(elapsed).with("sum", sum)
}
