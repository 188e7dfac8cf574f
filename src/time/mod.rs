//! Time: `sleep`, `wait_for` and `timeout` scopes, all driven by the loop's timer heap.

pub(crate) mod clock;
pub(crate) mod heap;
mod timeout;

use std::future::Future;
use std::pin::Pin;
use std::rc::Weak;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use self::timeout::{timeout, timeout_at, wait_for, Scoped, Timeout};
use crate::runtime::context;
use crate::runtime::core::{Core, TimerAction};
use heap::TimerKey;

/// Waits for `duration` (asyncio's `sleep`). Other tasks run meanwhile.
///
/// Like `asyncio.sleep(0)`, even a zero duration suspends once, letting other ready work run.
/// Timers never fire early; they may fire late by the loop's timer granularity (about 1 ms) or
/// when some task holds the loop.
///
/// Dropping the `Sleep` disarms its timer in O(1).
///
/// ```
/// use std::time::{Duration, Instant};
/// kettle::run(async {
///     let t0 = Instant::now();
///     kettle::sleep(Duration::from_millis(20)).await;
///     assert!(t0.elapsed() >= Duration::from_millis(20));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::at_ns(clock::now_ns().saturating_add(clock::duration_ns(duration)))
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::at_ns(clock::instant_ns(deadline))
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "a Sleep does nothing unless awaited"]
#[derive(Debug)]
pub struct Sleep {
    /// Deadline on the loop clock, in nanoseconds.
    deadline: u64,
    /// The armed timer, once polled: its loop and key.
    timer: Option<Armed>,
}

#[derive(Debug)]
struct Armed {
    core: Weak<Core>,
    loop_id: u16,
    key: TimerKey,
}

impl Sleep {
    pub(crate) fn at_ns(deadline: u64) -> Sleep {
        Sleep {
            deadline,
            timer: None,
        }
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        clock::ns_instant(self.deadline)
    }

    /// True once the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        clock::now_ns() >= self.deadline
    }

    /// Moves the deadline; the sleep waits afresh (even if it had completed).
    pub fn reset(&mut self, deadline: Instant) {
        self.reset_ns(clock::instant_ns(deadline));
    }

    pub(crate) fn reset_ns(&mut self, deadline: u64) {
        self.disarm();
        self.deadline = deadline;
    }

    fn disarm(&mut self) {
        if let Some(armed) = self.timer.take() {
            if let Some(core) = armed.core.upgrade() {
                let action = core.timers.borrow_mut().cancel(armed.key);
                drop(action);
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let outcome = context::with_current(|core| {
            if let Some(armed) = &this.timer {
                if armed.loop_id == core.id() {
                    let mut timers = core.timers.borrow_mut();
                    return match timers.action_mut(armed.key) {
                        Some(TimerAction::Wake(w)) => {
                            if !w.will_wake(cx.waker()) {
                                *w = cx.waker().clone();
                            }
                            Poll::Pending
                        }
                        // Not armed any more: it fired.
                        _ => Poll::Ready(()),
                    };
                }
            }
            let key = core
                .timers
                .borrow_mut()
                .insert(this.deadline, TimerAction::Wake(cx.waker().clone()));
            this.timer = Some(Armed {
                core: core.weak(),
                loop_id: core.id(),
                key,
            });
            Poll::Pending
        });
        match outcome {
            Some(Poll::Ready(())) => {
                this.timer = None;
                Poll::Ready(())
            }
            Some(Poll::Pending) => Poll::Pending,
            None => panic!("kettle::sleep polled outside a running kettle event loop"),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}
