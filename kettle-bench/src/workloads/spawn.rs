//! `spawn N`: the cost of creating, scheduling, completing and joining N trivial tasks.
//!
//! Task i returns i as u64; the handles are collected in a Vec and awaited in order, and the
//! checksum is the sum of the results (N·(N−1)/2). All N tasks exist at once, so the peak RSS
//! shows the per-task memory of each runtime.

use std::time::Instant;

use crate::harness::{tokio_runtime, Fields};

/// The workload on Kettle.
pub fn kettle(n: u64) -> Fields {
    kettle::run(async move {
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n as usize);
        for i in 0..n {
            handles.push(kettle::spawn(async move { i }));
        }
        let mut sum = 0u64;
        for handle in handles {
            sum = sum.wrapping_add(handle.await.expect("a kettle task failed"));
        }
        result(start, sum)
    })
}

/// The workload on tokio's current_thread runtime.
pub fn tokio(n: u64) -> Fields {
    tokio_runtime().block_on(async move {
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n as usize);
        for i in 0..n {
            handles.push(tokio::spawn(async move { i }));
        }
        let mut sum = 0u64;
        for handle in handles {
            sum = sum.wrapping_add(handle.await.expect("a tokio task failed"));
        }
        result(start, sum)
    })
}

/// The result line, taken before the runtime is torn down so teardown is not timed.
fn result(start: Instant, sum: u64) -> Fields {
    Fields::new().elapsed(start.elapsed()).with("sum", sum)
}
