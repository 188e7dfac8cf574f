//! `greenlet-switch N`: a greenlet switch there and back, seed 002's explicit switching.
//!
//! The main greenlet switches to a child with i; the child switches straight back to the main
//! greenlet with the same value; the main greenlet sums what comes back (checksum
//! N·(N−1)/2). One round trip is two switches. The child's first switch, which starts it, is
//! not timed; after the loop a sentinel makes it return. `ns_per_rt` is elapsed / N.
//!
//! Runtimes: `kettle` (`kettle::greenlet`), `python-greenlet` (the `greenlet` package that
//! gevent is built on).

use std::time::Instant;

use crate::harness::Fields;
use crate::workloads::gen_switch::{result, STOP};

/// Kettle's greenlets.
pub fn kettle(n: u64) -> Fields {
    use kettle::greenlet::{self, Greenlet};

    let main = greenlet::getcurrent().cast::<u64>();
    let child = Greenlet::new(move |mut value: u64| {
        while value != STOP {
            value = main.switch(value).expect("the main greenlet is alive");
        }
        value
    });
    // The untimed first switch starts the child.
    assert_eq!(child.switch(0).expect("the child starts"), 0);
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        sum = sum.wrapping_add(child.switch(i).expect("the child is alive"));
    }
    let elapsed = start.elapsed();
    assert_eq!(child.switch(STOP).expect("the child returns"), STOP);
    assert!(child.dead());
    result(elapsed, n, sum)
}

/// Python's `greenlet`, in `kettle-bench/python/kettle_bench.py`.
pub fn python(n: u64) -> Result<Fields, String> {
    crate::python::run("greenlet-switch", n)
}
