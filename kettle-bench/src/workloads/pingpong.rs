//! `pingpong N`: channel latency between two tasks, one context switch pair per message.
//!
//! The pinger sends i (0..N) on a capacity-1 channel and waits for the ponger to send it back on
//! a second capacity-1 channel; the checksum is the sum of the values the pinger got back
//! (N·(N−1)/2). `ns_per_rt` is the elapsed time divided by N.

use std::time::{Duration, Instant};

use crate::harness::{tokio_runtime, Fields};

/// The workload on Kettle.
pub fn kettle(n: u64) -> Fields {
    use kettle::sync::mpsc;
    kettle::run(async move {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let start = Instant::now();
        let ponger = kettle::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let pinger = kettle::spawn(async move {
            let mut sum = 0u64;
            for i in 0..n {
                ping_tx.send(i).await.expect("the ponger hung up");
                let back = pong_rx.recv().await.expect("the ponger hung up");
                sum = sum.wrapping_add(back);
            }
            // Dropping ping_tx here ends the ponger's loop.
            sum
        });
        let sum = pinger.await.expect("the kettle pinger failed");
        ponger.await.expect("the kettle ponger failed");
        result(start.elapsed(), n, sum)
    })
}

/// The workload on tokio's current_thread runtime.
pub fn tokio(n: u64) -> Fields {
    use tokio::sync::mpsc;
    tokio_runtime().block_on(async move {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let start = Instant::now();
        let ponger = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let pinger = tokio::spawn(async move {
            let mut sum = 0u64;
            for i in 0..n {
                ping_tx.send(i).await.expect("the ponger hung up");
                let back = pong_rx.recv().await.expect("the ponger hung up");
                sum = sum.wrapping_add(back);
            }
            sum
        });
        let sum = pinger.await.expect("the tokio pinger failed");
        ponger.await.expect("the tokio ponger failed");
        result(start.elapsed(), n, sum)
    })
}

/// The result line, shared with `green-pingpong` so both print the same keys the same way.
pub fn result(elapsed: Duration, n: u64, sum: u64) -> Fields {
    Fields::new()
        .with(
            "ns_per_rt",
            format_args!("{:.1}", elapsed.as_nanos() as f64 / n as f64),
        )
        .elapsed(elapsed)
        .with("sum", sum)
}
