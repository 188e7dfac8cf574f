//! [`Condition`]: asyncio's condition variable.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::lock::{self, Lock, LockGuard};
use super::waiters::WaitList;

struct Inner {
    lock: Lock,
    waiters: RefCell<WaitList>,
}

/// A condition variable for tasks (asyncio's `Condition`): tasks wait, with a [`Lock`]
/// released, until another task notifies them.
///
/// The lock is proven by value: [`acquire`](Condition::acquire) returns a [`LockGuard`], and
/// [`wait`](Condition::wait) consumes that guard and gives it back once the lock is re-acquired,
/// so waiting without the lock does not compile. Several conditions may share one lock
/// ([`Condition::with_lock`]); a guard of any other lock makes `wait` panic.
///
/// Notifying does not require the lock (asyncio insists on it): on a single-threaded loop
/// there is no window between a waiter's check and its wait for a notification to slip into.
///
/// The handle is a cheap `Clone`; clones are the same condition.
///
/// **Cancellation:** [`wait`](Condition::wait) and [`wait_for`](Condition::wait_for) are
/// cancellation-safe as far as other tasks go: a dropped waiter leaves the queue, and if it had
/// been notified already, the notification passes to the next waiter. The dropped future's
/// guard is gone, so the cancelled task ends up *not* holding the lock (asyncio re-acquires it
/// before raising `CancelledError`; a dropped Rust future cannot wait for that).
///
/// ```
/// use kettle::sync::Condition;
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// kettle::run(async {
///     let cond = Condition::new();
///     let stock = Rc::new(Cell::new(0));
///     let consumer = {
///         let (cond, stock) = (cond.clone(), stock.clone());
///         kettle::spawn(async move {
///             let guard = cond.acquire().await;
///             let _guard = cond.wait_for(guard, || stock.get() > 0).await;
///             stock.set(stock.get() - 1);
///         })
///     };
///     kettle::yield_now().await;
///     let _guard = cond.acquire().await;
///     stock.set(1);
///     cond.notify(1);
///     drop(_guard);
///     consumer.await.unwrap();
///     assert_eq!(stock.get(), 0);
/// });
/// ```
#[derive(Clone)]
pub struct Condition {
    inner: Rc<Inner>,
}

impl Default for Condition {
    fn default() -> Self {
        Condition::new()
    }
}

impl Condition {
    /// A condition with a lock of its own.
    pub fn new() -> Condition {
        Condition::with_lock(Lock::new())
    }

    /// A condition over an existing lock, which may be shared with other conditions.
    pub fn with_lock(lock: Lock) -> Condition {
        Condition {
            inner: Rc::new(Inner {
                lock,
                waiters: RefCell::new(WaitList::new()),
            }),
        }
    }

    /// The underlying lock.
    pub fn lock(&self) -> &Lock {
        &self.inner.lock
    }

    /// Acquires the underlying lock (same as `self.lock().acquire()`).
    pub fn acquire(&self) -> lock::Acquire<'_> {
        self.inner.lock.acquire()
    }

    /// Whether the underlying lock is held.
    pub fn locked(&self) -> bool {
        self.inner.lock.locked()
    }

    /// Releases the lock, waits until notified, re-acquires the lock and returns its guard.
    ///
    /// As with any condition variable, the state may have changed again by the time the lock
    /// is back; check it in a loop, or use [`wait_for`](Condition::wait_for).
    ///
    /// The lock is released at the first poll, not by this call.
    ///
    /// # Panics
    /// If `guard` belongs to a lock other than this condition's.
    #[track_caller]
    pub fn wait(&self, guard: LockGuard) -> Wait<'_> {
        assert!(
            guard.lock().same(&self.inner.lock),
            "Condition::wait: the guard belongs to a different lock"
        );
        Wait {
            cond: self,
            stage: Stage::Start { _guard: guard },
        }
    }

    /// Waits until `predicate` returns true, checking it first and again after every
    /// notification, always with the lock held. Returns the guard.
    ///
    /// # Panics
    /// If `guard` belongs to a lock other than this condition's.
    pub async fn wait_for<F>(&self, mut guard: LockGuard, mut predicate: F) -> LockGuard
    where
        F: FnMut() -> bool,
    {
        while !predicate() {
            guard = self.wait(guard).await;
        }
        guard
    }

    /// Wakes up to `n` waiting tasks, longest-waiting first.
    pub fn notify(&self, n: usize) {
        for _ in 0..n {
            let waker = self.inner.waiters.borrow_mut().notify_one();
            match waker {
                Some(w) => w.wake(),
                None => break,
            }
        }
    }

    /// Wakes every task waiting right now.
    pub fn notify_all(&self) {
        let parked = self.inner.waiters.borrow().linked();
        self.notify(parked);
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.inner.waiters.borrow().linked())
            .finish()
    }
}

enum Stage<'a> {
    /// Not polled yet: still holding the lock (the guard is kept only to be dropped).
    Start {
        _guard: LockGuard,
    },
    /// Lock released, parked in the condition's queue under this key.
    Waiting(usize),
    /// Notified; getting the lock back.
    Reacquire(lock::Acquire<'a>),
    Done,
}

/// The future returned by [`Condition::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a> {
    cond: &'a Condition,
    stage: Stage<'a>,
}

impl Future for Wait<'_> {
    type Output = LockGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard> {
        let this = &mut *self;
        loop {
            match &mut this.stage {
                Stage::Start { .. } => {
                    // Park before releasing so that a task the release lets in can notify us.
                    let key = this.cond.inner.waiters.borrow_mut().push_back(cx.waker());
                    // Dropping the guard releases the lock.
                    this.stage = Stage::Waiting(key);
                    return Poll::Pending;
                }
                Stage::Waiting(k) => {
                    let k = *k;
                    let mut waiters = this.cond.inner.waiters.borrow_mut();
                    if !waiters.is_notified(k) {
                        waiters.set_waker(k, cx.waker());
                        return Poll::Pending;
                    }
                    waiters.remove(k);
                    drop(waiters);
                    this.stage = Stage::Reacquire(this.cond.inner.lock.acquire());
                }
                Stage::Reacquire(acquire) => {
                    let guard = std::task::ready!(Pin::new(acquire).poll(cx));
                    this.stage = Stage::Done;
                    return Poll::Ready(guard);
                }
                Stage::Done => panic!("Condition::wait polled after completion"),
            }
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let notified = match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Waiting(k) => self.cond.inner.waiters.borrow_mut().remove(k),
            // Dropping the lock acquisition hands the lock on by itself; the notification
            // this waiter consumed must be handed on too.
            Stage::Reacquire(acquire) => {
                drop(acquire);
                true
            }
            Stage::Start { .. } | Stage::Done => false,
        };
        if notified {
            self.cond.notify(1);
        }
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Start { .. } => "start",
            Stage::Waiting(_) => "waiting",
            Stage::Reacquire(_) => "reacquiring",
            Stage::Done => "done",
        };
        f.debug_struct("Wait").field("stage", &stage).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::test_util::{poll_once, Counter, PollExt};

    #[test]
    fn wait_releases_and_reacquires() {
        let cond = Condition::new();
        let (w, count) = Counter::new();
        let g = cond.lock().try_acquire().unwrap();
        let mut wait = cond.wait(g);
        assert!(cond.locked(), "released only when polled");
        assert!(poll_once(&mut wait, &w).is_pending());
        assert!(!cond.locked());
        let other = cond.lock().try_acquire().unwrap();
        cond.notify(1);
        assert_eq!(count.get(), 1);
        // Notified, but the lock is held by `other`.
        assert!(poll_once(&mut wait, &w).is_pending());
        drop(other);
        let g = poll_once(&mut wait, &w).ready().unwrap();
        assert!(cond.locked());
        drop(g);
        assert!(!cond.locked());
    }

    #[test]
    fn notify_counts_and_order() {
        let cond = Condition::new();
        let (w, _count) = Counter::new();
        let mut waits: Vec<_> = (0..3)
            .map(|_| {
                let g = cond.lock().try_acquire().unwrap();
                let mut f = Box::pin(cond.wait(g));
                assert!(poll_once(&mut f, &w).is_pending());
                f
            })
            .collect();
        cond.notify(1);
        assert!(poll_once(&mut waits[1], &w).is_pending());
        assert!(poll_once(&mut waits[2], &w).is_pending());
        let g = poll_once(&mut waits[0], &w).ready().unwrap();
        drop(g);
        cond.notify_all();
        assert!(poll_once(&mut waits[1], &w).is_ready());
        assert!(poll_once(&mut waits[2], &w).is_ready());
    }

    #[test]
    fn cancelled_notified_waiter_passes_the_notification_on() {
        let cond = Condition::new();
        let (w, _count) = Counter::new();
        let mut a = cond.wait(cond.lock().try_acquire().unwrap());
        assert!(poll_once(&mut a, &w).is_pending());
        let mut b = cond.wait(cond.lock().try_acquire().unwrap());
        assert!(poll_once(&mut b, &w).is_pending());
        cond.notify(1);
        drop(a);
        let _g = poll_once(&mut b, &w).ready().unwrap();
        assert!(cond.locked());
    }

    #[test]
    fn cancelled_while_reacquiring_passes_notification_and_lock() {
        let cond = Condition::new();
        let (w, _count) = Counter::new();
        let mut a = cond.wait(cond.lock().try_acquire().unwrap());
        assert!(poll_once(&mut a, &w).is_pending());
        let mut b = cond.wait(cond.lock().try_acquire().unwrap());
        assert!(poll_once(&mut b, &w).is_pending());
        let holder = cond.lock().try_acquire().unwrap();
        cond.notify(1);
        assert!(poll_once(&mut a, &w).is_pending(), "waiting for the lock");
        drop(a);
        drop(holder);
        assert!(poll_once(&mut b, &w).is_ready());
    }

    #[test]
    fn unpolled_wait_keeps_the_lock_until_dropped() {
        let cond = Condition::new();
        let wait = cond.wait(cond.lock().try_acquire().unwrap());
        assert!(cond.locked());
        drop(wait);
        assert!(!cond.locked());
    }

    #[test]
    #[should_panic(expected = "different lock")]
    fn wait_with_a_foreign_guard_panics() {
        let cond = Condition::new();
        let other = Lock::new();
        drop(cond.wait(other.try_acquire().unwrap()));
    }

    #[test]
    fn shared_lock() {
        let lock = Lock::new();
        let c1 = Condition::with_lock(lock.clone());
        let c2 = Condition::with_lock(lock.clone());
        let (w, _count) = Counter::new();
        let mut a = c1.wait(lock.try_acquire().unwrap());
        assert!(poll_once(&mut a, &w).is_pending());
        let mut b = c2.wait(lock.try_acquire().unwrap());
        assert!(poll_once(&mut b, &w).is_pending());
        c2.notify_all();
        assert!(poll_once(&mut a, &w).is_pending());
        let g = poll_once(&mut b, &w).ready().unwrap();
        assert!(c1.locked());
        drop(g);
    }
}
