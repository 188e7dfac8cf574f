//! Helpers shared by the integration tests (each test binary uses a different subset).
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use kettle::EventLoop;

/// Generous upper bound for anything that should take a few tens of milliseconds.
pub const LATE: Duration = Duration::from_secs(2);

/// An ordered record of what happened, shared between tasks.
pub type Log<T> = Rc<RefCell<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

pub fn new_loop() -> EventLoop {
    EventLoop::new().expect("create an event loop")
}

/// Lets every ready task run until all of them are parked again.
pub async fn settle() {
    for _ in 0..10 {
        kettle::yield_now().await;
    }
}

/// CPU time consumed by the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
