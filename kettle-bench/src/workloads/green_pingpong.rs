//! `green-pingpong N`: `pingpong` between two green threads, beside the same program as two
//! async tasks.
//!
//! The same channels as `pingpong` (two `kettle::sync::mpsc` channels of capacity 1), awaited
//! from green threads through `kettle::green::wait`, which suspends only the calling green
//! thread. The `kettle` side is the `pingpong` workload's Kettle function itself, so the ratio
//! `kettle-green/kettle` is what running the same exchange as green threads instead of tasks
//! costs. The checksum is the sum of the values the pinger got back (N·(N−1)/2).

use std::time::Instant;

use crate::harness::Fields;

/// The workload on Kettle's green threads. Like `pingpong::kettle`, the main (green) thread
/// starts the clock, spawns the ponger and the pinger and joins them.
pub fn kettle_green(n: u64) -> Fields {
    use kettle::green;
    use kettle::sync::mpsc;

    let (elapsed, sum) = green::run(move || {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let start = Instant::now();
        let ponger = green::spawn(move || {
            while let Some(v) = green::wait(ping_rx.recv()) {
                if green::wait(pong_tx.send(v)).is_err() {
                    break;
                }
            }
        });
        let pinger = green::spawn(move || {
            let mut sum = 0u64;
            for i in 0..n {
                green::wait(ping_tx.send(i)).expect("the ponger hung up");
                let back = green::wait(pong_rx.recv()).expect("the ponger hung up");
                sum = sum.wrapping_add(back);
            }
            // Dropping ping_tx here ends the ponger's loop.
            sum
        });
        let sum = pinger.join().expect("the kettle green pinger failed");
        ponger.join().expect("the kettle green ponger failed");
        (start.elapsed(), sum)
    })
    .expect("the kettle green main thread failed");
    super::pingpong::result(elapsed, n, sum)
}
