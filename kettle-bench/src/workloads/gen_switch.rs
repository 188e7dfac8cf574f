//! `gen-switch N`: the cost of one send/yield round trip into a generator, the primitive every
//! green thread switch is built on.
//!
//! The generator yields back every value it is sent; the caller sends 0..N and sums what comes
//! back (checksum N·(N−1)/2). One send that starts the generator comes first and is not timed
//! (Python's mandatory `send(None)` priming, and its equivalent on the Rust sides), so the timed
//! loop is N switches into the generator and N back. After the loop a sentinel makes the
//! generator return, so each side also shows that it finishes cleanly. `ns_per_rt` is the
//! elapsed time divided by N.
//!
//! Runtimes: `kettle` (`kettle::generator::Generator`), `corosensei` (its `Coroutine` resumed
//! and suspended directly: the floor, a bare stack switch), `python` (a CPython generator's
//! `send`).

use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::harness::Fields;

/// Sent after the timed loop to make the generator return; never one of the timed values 0..N.
pub const STOP: u64 = u64::MAX;

/// Kettle's generator: `kettle::generator::Generator::send` and `Yielder::suspend`.
pub fn kettle(n: u64) -> Fields {
    use kettle::generator::{Generator, GeneratorState};

    let mut gen = Generator::<u64, u64, u64>::new(|co, mut value| {
        while value != STOP {
            value = co.suspend(value);
        }
        value
    });
    // The priming send: runs the closure to its first suspend.
    assert!(matches!(gen.send(0), Ok(GeneratorState::Yielded(0))));
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        match gen.send(i) {
            Ok(GeneratorState::Yielded(v)) => sum = sum.wrapping_add(v),
            other => panic!("the kettle generator stopped early: {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    assert!(
        matches!(gen.send(STOP), Ok(GeneratorState::Complete(STOP))),
        "the kettle generator did not return on STOP"
    );
    result(elapsed, n, sum)
}

/// The floor: corosensei's `resume`/`suspend` with its default stack, nothing around them.
pub fn corosensei(n: u64) -> Fields {
    let mut co = Coroutine::new(|co: &Yielder<u64, u64>, mut value: u64| {
        while value != STOP {
            value = co.suspend(value);
        }
        value
    });
    // The priming send: runs the closure to its first suspend.
    assert!(matches!(co.resume(0), CoroutineResult::Yield(0)));
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        match co.resume(i) {
            CoroutineResult::Yield(v) => sum = sum.wrapping_add(v),
            CoroutineResult::Return(_) => panic!("the corosensei generator returned early"),
        }
    }
    let elapsed = start.elapsed();
    assert!(
        matches!(co.resume(STOP), CoroutineResult::Return(STOP)),
        "the corosensei generator did not return on STOP"
    );
    result(elapsed, n, sum)
}

/// CPython's generator `send`, in `kettle-bench/python/kettle_bench.py`.
pub fn python(n: u64) -> Result<Fields, String> {
    crate::python::run("gen-switch", n)
}

/// The result line. Two decimals: a few-nanosecond switch needs them.
/// The result line of a switch round-trip workload (also `greenlet-switch`'s).
pub fn result(elapsed: Duration, n: u64, sum: u64) -> Fields {
    Fields::new()
        .with(
            "ns_per_rt",
            format_args!("{:.2}", elapsed.as_nanos() as f64 / n as f64),
        )
        .elapsed(elapsed)
        .with("sum", sum)
}
