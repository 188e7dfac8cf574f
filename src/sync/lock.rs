//! [`Lock`]: asyncio's mutual-exclusion lock for tasks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::semaphore::Permits;

/// A mutual-exclusion lock for tasks of one event loop (asyncio's `Lock`).
///
/// [`acquire`](Lock::acquire) waits until the lock is free and returns a [`LockGuard`]; the
/// lock is released when the guard is dropped. Unlike `std::sync::Mutex` it guards no data: as
/// in asyncio, it orders *sections of code* that span `.await`s, and the data usually lives in
/// a `RefCell` next to it.
///
/// The lock is fair: waiters get it in the order they started waiting, and releasing it hands
/// it directly to the first waiter, so [`locked`](Lock::locked) stays true and a newcomer's
/// [`try_acquire`](Lock::try_acquire) fails until that waiter has run.
///
/// The handle is a cheap `Clone`; clones are the same lock.
///
/// **Cancellation:** [`acquire`](Lock::acquire) is cancellation-safe. A dropped waiting
/// `Acquire` leaves the queue; if the lock had already been handed to it, it passes to the next
/// waiter (or is released).
///
/// ```
/// use kettle::sync::Lock;
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// kettle::run(async {
///     let lock = Lock::new();
///     let log = Rc::new(RefCell::new(Vec::new()));
///     let mut tasks = Vec::new();
///     for id in 0..3 {
///         let (lock, log) = (lock.clone(), log.clone());
///         tasks.push(kettle::spawn(async move {
///             let _guard = lock.acquire().await;
///             log.borrow_mut().push(id);
///             kettle::yield_now().await; // others run, but cannot enter
///             log.borrow_mut().push(id);
///         }));
///     }
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(*log.borrow(), [0, 0, 1, 1, 2, 2]);
/// });
/// ```
#[derive(Clone)]
pub struct Lock {
    /// A bounded counter of one permit: the lock is free when the permit is in the pool.
    permits: Rc<Permits>,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl Lock {
    /// A new, unlocked lock.
    pub fn new() -> Lock {
        Lock {
            permits: Permits::new(1, Some(1)),
        }
    }

    /// Waits until the lock is free and takes it.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            lock: self,
            key: None,
        }
    }

    /// Takes the lock if it is free right now.
    pub fn try_acquire(&self) -> Option<LockGuard> {
        self.permits.try_acquire().then(|| self.guard())
    }

    /// True while some task holds the lock (or it has been handed to a waiter that has not
    /// run yet).
    pub fn locked(&self) -> bool {
        self.permits.value() == 0
    }

    /// Whether `self` and `other` are handles to the same lock.
    pub(crate) fn same(&self, other: &Lock) -> bool {
        Rc::ptr_eq(&self.permits, &other.permits)
    }

    fn guard(&self) -> LockGuard {
        LockGuard { lock: self.clone() }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// Proof that the current task holds a [`Lock`]; dropping it releases the lock.
///
/// The guard owns a handle to the lock, so it can be kept across `.await`s and moved between
/// tasks of the same loop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    lock: Lock,
}

impl LockGuard {
    /// The lock this guard holds.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.lock.permits.release(false);
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

/// The future returned by [`Lock::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    lock: &'a Lock,
    /// Our place in the wait queue, once parked.
    key: Option<usize>,
}

impl Future for Acquire<'_> {
    type Output = LockGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard> {
        let this = &mut *self;
        this.lock
            .permits
            .poll_acquire(&mut this.key, cx)
            .map(|()| this.lock.guard())
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.lock.permits.cancel_acquire(k);
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::test_util::{poll_once, Counter, PollExt};

    #[test]
    fn fair_handover() {
        let lock = Lock::new();
        let (w, count) = Counter::new();
        let g = lock.try_acquire().unwrap();
        assert!(lock.locked());
        assert!(lock.try_acquire().is_none());
        let mut a = lock.acquire();
        let mut b = lock.acquire();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        drop(g);
        assert_eq!(count.get(), 1);
        assert!(lock.locked(), "handed to the first waiter");
        assert!(lock.try_acquire().is_none());
        assert!(poll_once(&mut b, &w).is_pending(), "b is second in line");
        let ga = poll_once(&mut a, &w).ready().unwrap();
        drop(ga);
        assert_eq!(count.get(), 2);
        let gb = poll_once(&mut b, &w).ready().unwrap();
        drop(gb);
        assert!(!lock.locked());
    }

    #[test]
    fn cancelled_waiter_hands_the_lock_on() {
        let lock = Lock::new();
        let (w, _count) = Counter::new();
        let g = lock.try_acquire().unwrap();
        let mut a = lock.acquire();
        let mut b = lock.acquire();
        let mut c = lock.acquire();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        assert!(poll_once(&mut c, &w).is_pending());
        drop(b); // still parked: just leaves
        drop(g); // handed to a
        drop(a); // a was cancelled before it ran: c gets it
        let gc = poll_once(&mut c, &w).ready().unwrap();
        assert!(lock.locked());
        drop(gc);
        assert!(!lock.locked());
    }

    #[test]
    fn guard_outlives_the_handle() {
        let g = Lock::new().try_acquire().unwrap();
        assert!(g.lock().locked());
        let lock = g.lock().clone();
        drop(g);
        assert!(!lock.locked());
    }
}
