//! `green-spawn N`: the cost of creating, scheduling, completing and joining N green threads
//! (stackful: each has its own stack, unlike the tasks of `spawn`).
//!
//! Thread i returns i as u64; all N are spawned before any is joined, so all exist at once and
//! the peak RSS shows the per-thread memory of each runtime. The checksum is the sum of the
//! results (N·(N−1)/2).
//!
//! Runtimes: `kettle-green` (`kettle::green::spawn`, `joinall`), `may` (`go!` and `join` from the main
//! thread, one worker, its default stacks), `python-gevent` (`gevent.spawn`, `gevent.joinall`).

use std::time::{Duration, Instant};

use crate::harness::{may_configure, Fields};

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

/// The workload on `may`, spawning from the main thread while may's one worker (on the same
/// core) runs the coroutines: may gives every coroutine its stack at spawn, so spawning a
/// million from inside a coroutine (where none runs before the spawner yields) holds a
/// million stacks at once and fails with "failed to alloc sys stack". Driven from outside,
/// finished coroutines free their stacks while the spawning goes on, which is how may is
/// meant to be used and how the anchor (4.48 s, 328 MB) was measured.
pub fn may(n: u64) -> Fields {
    may_configure();
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|i| may::go!(move || i)).collect();
    let mut sum = 0u64;
    for handle in handles {
        sum = sum.wrapping_add(handle.join().expect("a may coroutine panicked"));
    }
    result(start.elapsed(), sum)
}

/// gevent's greenlets, in `kettle-bench/python/kettle_bench.py`.
pub fn gevent(n: u64) -> Result<Fields, String> {
    crate::python::run("green-spawn", n)
}

fn result(elapsed: Duration, sum: u64) -> Fields {
    Fields::new().elapsed(elapsed).with("sum", sum)
}
