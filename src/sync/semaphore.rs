//! [`Semaphore`] and [`BoundedSemaphore`] (asyncio's), and the permit counter that
//! [`Lock`](super::Lock) is built on.
//!
//! Permits are *handed over*: releasing one while tasks wait gives it straight to the first
//! waiter instead of putting it back in the pool, so a task arriving later can never take it
//! first. That makes acquisition strictly FIFO, and keeps the invariant that the pool is empty
//! whenever anyone waits.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::WaitList;
use crate::error::Error;

/// The state shared by a semaphore (or lock) and its permits and waiters.
#[derive(Debug)]
pub(crate) struct Permits {
    state: RefCell<PermitState>,
}

#[derive(Debug)]
struct PermitState {
    /// Permits in the pool. Zero whenever `waiters` is non-empty.
    value: usize,
    /// `Some(bound)` for a bounded semaphore (and a lock): `value` never exceeds it.
    bound: Option<usize>,
    waiters: WaitList,
}

impl Permits {
    pub(crate) fn new(value: usize, bound: Option<usize>) -> Rc<Permits> {
        Rc::new(Permits {
            state: RefCell::new(PermitState {
                value,
                bound,
                waiters: WaitList::new(),
            }),
        })
    }

    pub(crate) fn value(&self) -> usize {
        self.state.borrow().value
    }

    pub(crate) fn try_acquire(&self) -> bool {
        let mut st = self.state.borrow_mut();
        // A positive pool implies nobody waits, so taking from it cannot jump the queue.
        if st.value > 0 {
            st.value -= 1;
            true
        } else {
            false
        }
    }

    /// Adds a permit: to the first waiter if there is one, else to the pool. `strict` reports an
    /// over-release of a bounded counter as an error; otherwise the surplus permit is dropped.
    pub(crate) fn release(&self, strict: bool) -> Result<(), Error> {
        let waker = {
            let mut st = self.state.borrow_mut();
            match st.waiters.notify_one() {
                Some(w) => w,
                None => {
                    if let Some(bound) = st.bound {
                        if st.value >= bound {
                            return if strict {
                                Err(Error::invalid_state(format!(
                                    "semaphore released too many times (bound is {bound})"
                                )))
                            } else {
                                Ok(())
                            };
                        }
                    }
                    st.value += 1;
                    return Ok(());
                }
            }
        };
        waker.wake();
        Ok(())
    }

    /// Polls one acquisition; `key` is the waiter's slot, owned by the calling future.
    pub(crate) fn poll_acquire(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        match *key {
            None => {
                if st.value > 0 {
                    st.value -= 1;
                    return Poll::Ready(());
                }
                *key = Some(st.waiters.push_back(cx.waker()));
                Poll::Pending
            }
            Some(k) => {
                if st.waiters.is_notified(k) {
                    // The releaser handed us its permit.
                    st.waiters.remove(k);
                    *key = None;
                    Poll::Ready(())
                } else {
                    st.waiters.set_waker(k, cx.waker());
                    Poll::Pending
                }
            }
        }
    }

    /// Forgets a waiter whose future was dropped; a permit already handed to it moves on.
    pub(crate) fn cancel_acquire(&self, key: usize) {
        let was_handed_a_permit = self.state.borrow_mut().waiters.remove(key);
        if was_handed_a_permit {
            let _ = self.release(false);
        }
    }
}

/// A counter of permits (asyncio's `Semaphore`): [`acquire`](Semaphore::acquire) takes one,
/// waiting while none is left; the returned [`SemaphorePermit`] gives it back when dropped.
///
/// Waiters are served strictly first come, first served. The handle is a cheap `Clone`; clones
/// share the same counter. It is `!Send`: it belongs to one event loop.
///
/// **Cancellation:** [`acquire`](Semaphore::acquire) is cancellation-safe. Dropping a waiting
/// `Acquire` leaves the queue; if a permit had already been handed to it, the permit goes to
/// the next waiter (or back to the pool).
///
/// ```
/// use kettle::sync::Semaphore;
/// use std::time::Duration;
///
/// kettle::run(async {
///     let sem = Semaphore::new(2); // at most two downloads at once
///     let mut tasks = Vec::new();
///     for _ in 0..5 {
///         let sem = sem.clone();
///         tasks.push(kettle::spawn(async move {
///             let _permit = sem.acquire().await;
///             kettle::sleep(Duration::from_millis(1)).await;
///         }));
///     }
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(sem.value(), 2);
/// });
/// ```
#[derive(Clone)]
pub struct Semaphore {
    permits: Rc<Permits>,
}

impl Semaphore {
    /// A semaphore holding `value` permits.
    pub fn new(value: usize) -> Semaphore {
        Semaphore {
            permits: Permits::new(value, None),
        }
    }

    /// Waits for a permit and takes it.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            permits: &self.permits,
            key: None,
        }
    }

    /// Takes a permit if one is free right now, without waiting.
    pub fn try_acquire(&self) -> Option<SemaphorePermit> {
        self.permits
            .try_acquire()
            .then(|| SemaphorePermit::new(&self.permits))
    }

    /// Adds a permit, waking the first waiter if any (asyncio's `release()`). It may raise the
    /// count above the initial value; use [`BoundedSemaphore`] to forbid that.
    pub fn release(&self) {
        let _ = self.permits.release(false);
    }

    /// True when no permit is free, i.e. [`acquire`](Semaphore::acquire) would wait.
    pub fn locked(&self) -> bool {
        self.value() == 0
    }

    /// The number of free permits.
    pub fn value(&self) -> usize {
        self.permits.value()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

/// A [`Semaphore`] that refuses to grow beyond its initial value (asyncio's
/// `BoundedSemaphore`): [`release`](BoundedSemaphore::release) past it is an error, which
/// catches a task that releases more often than it acquired.
///
/// Cancellation behaves as for [`Semaphore`].
///
/// ```
/// use kettle::sync::BoundedSemaphore;
///
/// kettle::run(async {
///     let sem = BoundedSemaphore::new(1);
///     let permit = sem.acquire().await;
///     permit.forget(); // keep the count down, release by hand later
///     assert!(sem.release().is_ok());
///     let err = sem.release().unwrap_err(); // one release too many
///     assert_eq!(err.kind(), kettle::ErrorKind::InvalidState);
/// });
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    permits: Rc<Permits>,
}

impl BoundedSemaphore {
    /// A semaphore holding `value` permits, which is also the most it may ever hold.
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            permits: Permits::new(value, Some(value)),
        }
    }

    /// Waits for a permit and takes it.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            permits: &self.permits,
            key: None,
        }
    }

    /// Takes a permit if one is free right now, without waiting.
    pub fn try_acquire(&self) -> Option<SemaphorePermit> {
        self.permits
            .try_acquire()
            .then(|| SemaphorePermit::new(&self.permits))
    }

    /// Adds a permit, waking the first waiter if any.
    ///
    /// # Errors
    /// An [`InvalidState`](crate::ErrorKind::InvalidState) error, and no change, when the count
    /// is already at the initial value (asyncio raises `ValueError`).
    pub fn release(&self) -> Result<(), Error> {
        self.permits.release(true)
    }

    /// True when no permit is free, i.e. [`acquire`](BoundedSemaphore::acquire) would wait.
    pub fn locked(&self) -> bool {
        self.value() == 0
    }

    /// The number of free permits.
    pub fn value(&self) -> usize {
        self.permits.value()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .finish()
    }
}

/// One permit of a [`Semaphore`] or [`BoundedSemaphore`], given back when dropped.
///
/// It owns a reference to the semaphore, so it can be kept across `.await`s and moved into
/// other tasks of the same loop. When a permit of a `BoundedSemaphore` comes back while the
/// count is already at its bound (because of extra [`release`](BoundedSemaphore::release)
/// calls), it is discarded rather than raising the count past the bound.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit {
    /// `None` once forgotten.
    permits: Option<Rc<Permits>>,
}

impl SemaphorePermit {
    fn new(permits: &Rc<Permits>) -> SemaphorePermit {
        SemaphorePermit {
            permits: Some(permits.clone()),
        }
    }

    /// Consumes the permit without giving it back, permanently lowering the semaphore's count
    /// (until someone calls `release`).
    pub fn forget(mut self) {
        self.permits = None;
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if let Some(p) = self.permits.take() {
            let _ = p.release(false);
        }
    }
}

impl fmt::Debug for SemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// The future returned by [`Semaphore::acquire`] and [`BoundedSemaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    permits: &'a Rc<Permits>,
    /// Our place in the wait queue, once parked.
    key: Option<usize>,
}

impl Future for Acquire<'_> {
    type Output = SemaphorePermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphorePermit> {
        let this = &mut *self;
        this.permits
            .poll_acquire(&mut this.key, cx)
            .map(|()| SemaphorePermit::new(this.permits))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.permits.cancel_acquire(k);
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
    use std::task::Poll;

    #[test]
    fn counts_and_fifo_handover() {
        let sem = Semaphore::new(1);
        let (w, count) = Counter::new();
        let p = sem.try_acquire().unwrap();
        assert!(sem.locked());
        let mut a = sem.acquire();
        let mut b = sem.acquire();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        drop(p);
        assert_eq!(count.get(), 1);
        // Handed to `a`, not to the pool: a newcomer cannot take it.
        assert!(sem.try_acquire().is_none());
        assert!(poll_once(&mut b, &w).is_pending());
        let pa = poll_once(&mut a, &w).ready().unwrap();
        sem.release();
        let pb = poll_once(&mut b, &w).ready().unwrap();
        drop((pa, pb));
        assert_eq!(sem.value(), 2);
    }

    #[test]
    fn cancelled_waiter_passes_its_permit_on() {
        let sem = Semaphore::new(0);
        let (w, _count) = Counter::new();
        let mut a = sem.acquire();
        let mut b = sem.acquire();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        sem.release(); // handed to `a`
        drop(a);
        let _pb = poll_once(&mut b, &w).ready().unwrap();
        assert_eq!(sem.value(), 0);

        // With nobody else waiting the permit returns to the pool.
        let mut c = sem.acquire();
        assert!(poll_once(&mut c, &w).is_pending());
        sem.release();
        drop(c);
        assert_eq!(sem.value(), 1);
    }

    #[test]
    fn unpolled_waiter_drop_leaves_no_trace() {
        let sem = Semaphore::new(0);
        let (w, _count) = Counter::new();
        let mut a = sem.acquire();
        assert!(poll_once(&mut a, &w).is_pending());
        drop(a);
        sem.release();
        assert_eq!(sem.value(), 1);
    }

    #[test]
    fn forget_and_bounded_release() {
        let sem = BoundedSemaphore::new(2);
        sem.try_acquire().unwrap().forget();
        assert_eq!(sem.value(), 1);
        sem.release().unwrap();
        assert!(sem.release().is_err());
        assert_eq!(sem.value(), 2);

        // A permit returning to a full bounded semaphore is dropped, not counted.
        let p = sem.try_acquire().unwrap();
        sem.release().unwrap();
        drop(p);
        assert_eq!(sem.value(), 2);
    }

    /// Random interleavings of acquisitions, releases, spurious polls and cancellations: no
    /// permit is lost or duplicated, and once every delivered wake-up has been handled, nobody
    /// waits while a permit is free.
    #[test]
    fn random_schedules_conserve_permits() {
        use crate::sync::test_util::{Lcg, Tracked};
        for seed in 0..200 {
            let mut rng = Lcg(seed);
            let initial = rng.below(3);
            let sem = Semaphore::new(initial);
            let mut total = initial;
            let mut waiting: Vec<Tracked<Acquire<'_>>> = Vec::new();
            let mut held: Vec<SemaphorePermit> = Vec::new();
            for _ in 0..300 {
                match rng.below(8) {
                    0 | 1 => {
                        let mut a = Tracked::new(sem.acquire());
                        match a.poll() {
                            Poll::Ready(p) => held.push(p),
                            Poll::Pending => waiting.push(a),
                        }
                    }
                    2 if !held.is_empty() => {
                        let i = rng.below(held.len());
                        drop(held.swap_remove(i));
                    }
                    3 if !waiting.is_empty() => {
                        let i = rng.below(waiting.len());
                        waiting.remove(i);
                    }
                    4 => {
                        sem.release();
                        total += 1;
                    }
                    5 if !held.is_empty() && rng.below(4) == 0 => {
                        held.swap_remove(0).forget();
                        total -= 1;
                    }
                    6 if !waiting.is_empty() => {
                        let i = rng.below(waiting.len());
                        if let Poll::Ready(p) = waiting[i].poll() {
                            held.push(p);
                            waiting.remove(i);
                        }
                    }
                    _ => {
                        while waiting.iter().any(|a| a.woken()) {
                            let mut i = 0;
                            while i < waiting.len() {
                                if waiting[i].woken() {
                                    if let Poll::Ready(p) = waiting[i].poll() {
                                        held.push(p);
                                        waiting.remove(i);
                                        continue;
                                    }
                                }
                                i += 1;
                            }
                        }
                        assert_eq!(sem.value() + held.len(), total, "seed {seed}");
                        assert!(sem.value() == 0 || waiting.is_empty(), "seed {seed}");
                    }
                }
            }
        }
    }
}
