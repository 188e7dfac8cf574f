//! Deadlines around awaitables: `wait_for` and the `timeout` scope (asyncio 3.11's
//! `asyncio.timeout`), which can be rescheduled while it runs.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{clock, Sleep};
use crate::error::{Error, Result};

/// Awaits `future`, giving up after `timeout` (asyncio's `wait_for`). On timeout the future is
/// dropped (cancelled) and the result is a `Timeout` error.
///
/// Dropping a [`Task`](crate::Task) handle detaches the task rather than cancelling it, so
/// `wait_for(task, d)` leaves the task running after a timeout; call `task.cancel()` on the
/// error path (keep a [`TaskRef`](crate::TaskRef) from `task.task_ref()`) where asyncio's
/// cancel-on-timeout is wanted.
///
/// ```
/// use std::time::Duration;
/// kettle::run(async {
///     let slow = kettle::sleep(Duration::from_secs(10));
///     let err = kettle::wait_for(slow, Duration::from_millis(10)).await.unwrap_err();
///     assert!(err.is_timeout());
///     let fast = async { 5 };
///     assert_eq!(kettle::wait_for(fast, Duration::from_secs(1)).await.unwrap(), 5);
/// });
/// ```
pub fn wait_for<F: Future>(future: F, timeout: Duration) -> Scoped<F> {
    self::timeout(Some(timeout)).run(future)
}

/// A deadline scope (asyncio's `asyncio.timeout(delay)`); `None` means no deadline yet.
///
/// Run work inside it with [`Timeout::run`]; the deadline can be moved at any time with
/// [`reschedule`](Timeout::reschedule), also from inside the work, since `Timeout` is a cheap
/// clonable handle.
///
/// ```
/// use std::time::Duration;
/// kettle::run(async {
///     let scope = kettle::timeout(Some(Duration::from_millis(10)));
///     let inner = scope.clone();
///     let out = scope
///         .run(async move {
///             // Need more time after all: push the deadline out.
///             inner.reschedule(Some(kettle::get_running_loop().time() + 5.0));
///             kettle::sleep(Duration::from_millis(50)).await;
///             "finished"
///         })
///         .await;
///     assert_eq!(out.unwrap(), "finished");
///     assert!(!scope.expired());
/// });
/// ```
pub fn timeout(delay: Option<Duration>) -> Timeout {
    let deadline = delay.map(|d| clock::now_ns().saturating_add(clock::duration_ns(d)));
    Timeout::new(deadline)
}

/// A deadline scope ending at `when` (asyncio's `asyncio.timeout_at`).
pub fn timeout_at(when: Option<Instant>) -> Timeout {
    Timeout::new(when.map(clock::instant_ns))
}

/// The handle of a [`timeout`] scope.
#[derive(Clone)]
pub struct Timeout {
    state: Rc<ScopeState>,
}

struct ScopeState {
    /// Deadline in loop-clock nanoseconds, or none.
    deadline: Cell<Option<u64>>,
    /// Set once the deadline passed while work ran.
    expired: Cell<bool>,
    /// Bumped by every reschedule, so running scopes re-arm their timer.
    version: Cell<u64>,
    /// The running scope's waker, woken by `reschedule`.
    waker: Cell<Option<Waker>>,
}

impl Timeout {
    fn new(deadline: Option<u64>) -> Timeout {
        Timeout {
            state: Rc::new(ScopeState {
                deadline: Cell::new(deadline),
                expired: Cell::new(false),
                version: Cell::new(0),
                waker: Cell::new(None),
            }),
        }
    }

    /// Runs `future` under this deadline: `Ok(output)`, or a `Timeout` error if the deadline
    /// passed first (the future is then dropped).
    pub fn run<F: Future>(&self, future: F) -> Scoped<F> {
        Scoped {
            future: Some(future),
            scope: self.clone(),
            sleep: None,
            armed_version: u64::MAX,
        }
    }

    /// The deadline on the loop's `time()` scale, if any.
    pub fn when(&self) -> Option<f64> {
        self.state.deadline.get().map(clock::ns_to_secs)
    }

    /// Moves the deadline (`None` removes it), on the loop's `time()` scale.
    pub fn reschedule(&self, when: Option<f64>) {
        self.state.deadline.set(when.map(clock::secs_to_ns));
        self.state.version.set(self.state.version.get() + 1);
        if let Some(w) = self.state.waker.take() {
            w.wake();
        }
    }

    /// True if the deadline passed while work was running in the scope.
    pub fn expired(&self) -> bool {
        self.state.expired.get()
    }
}

impl std::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("when", &self.when())
            .field("expired", &self.expired())
            .finish()
    }
}

/// A future running under a deadline; see [`wait_for`] and [`Timeout::run`].
#[must_use = "futures do nothing unless awaited"]
pub struct Scoped<F> {
    /// The work; dropped in place on timeout.
    future: Option<F>,
    scope: Timeout,
    sleep: Option<Sleep>,
    /// The scope version the sleep was armed for.
    armed_version: u64,
}

impl<F: Future> Future for Scoped<F> {
    type Output = Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is never moved out: it is polled through a pinned reference and
        // dropped in place by assigning `None`. The other fields are `Unpin` and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(fut) = this.future.as_mut() else {
            return Poll::Ready(Err(Error::invalid_state("Scoped polled after completion")));
        };
        // SAFETY: see above.
        if let Poll::Ready(v) = unsafe { Pin::new_unchecked(fut) }.poll(cx) {
            this.future = None;
            this.sleep = None;
            return Poll::Ready(Ok(v));
        }
        let state = &this.scope.state;
        if this.armed_version != state.version.get() {
            this.armed_version = state.version.get();
            this.sleep = state.deadline.get().map(Sleep::at_ns);
        }
        if let Some(sleep) = this.sleep.as_mut() {
            if Pin::new(sleep).poll(cx).is_ready() {
                this.future = None;
                this.sleep = None;
                state.expired.set(true);
                return Poll::Ready(Err(Error::timeout()));
            }
        }
        state.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}
