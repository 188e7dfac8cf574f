//! Synchronisation primitives for tasks: queues, locks, events, conditions, semaphores and
//! channels, named after asyncio's.
//!
//! Two families:
//!
//! - **Single-loop primitives** — [`Queue`] (with [`PriorityQueue`] and [`LifoQueue`]),
//!   [`Lock`], [`Event`], [`Condition`], [`Semaphore`] and [`BoundedSemaphore`]. Like asyncio's
//!   objects they are shared by reference: each is a cheap `Clone` handle over `Rc` state, and
//!   is `!Send`, because all the tasks that use it run on one loop's thread. Guards and permits
//!   own a handle too, so they can be held across `.await`s.
//! - **Channels** — [`oneshot`] and [`mpsc`]. Their senders are `Send`, so a value can come
//!   from another thread (a worker, or another core's loop) and wake a task on this loop.
//!
//! All of them work with any executor that honours `Waker`s; none depends on Kettle's loop.
//!
//! Every waiting operation is FIFO-fair and cancellation-aware: a task is cancelled by dropping
//! its future, and a dropped waiter leaves no trace. If a wake-up, permit, slot or lock had
//! already been handed to it, that passes on to the next waiter. Each type's documentation says
//! which operations are cancellation-safe.

mod condition;
mod event;
mod lock;
pub mod mpsc;
pub mod oneshot;
mod queue;
mod semaphore;
mod waiters;

pub use condition::{Condition, Wait as ConditionWait};
pub use event::{Event, Wait as EventWait};
pub use lock::{Acquire as LockAcquire, Lock, LockGuard};
pub use queue::{
    Get as QueueGet, Join as QueueJoin, LifoQueue, PriorityQueue, Put as QueuePut, Queue,
    QueueEmpty, QueueFull,
};
pub use semaphore::{Acquire as SemaphoreAcquire, BoundedSemaphore, Semaphore, SemaphorePermit};

#[cfg(test)]
pub(crate) mod test_util {
    //! Driving futures by hand, without a loop.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    /// Counts the wakes delivered to the wakers it makes.
    pub(crate) struct Counter(AtomicUsize);

    impl Counter {
        pub(crate) fn new() -> (Waker, Arc<Counter>) {
            let c = Arc::new(Counter(AtomicUsize::new(0)));
            (Waker::from(c.clone()), c)
        }

        pub(crate) fn get(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
        Pin::new(fut).poll(&mut Context::from_waker(waker))
    }

    /// A future with a waker of its own, so that a test can deliver wake-ups the way an executor
    /// would: poll only what was woken.
    pub(crate) struct Tracked<F> {
        pub(crate) fut: F,
        waker: Waker,
        counter: Arc<Counter>,
        seen: usize,
    }

    impl<F: Future + Unpin> Tracked<F> {
        pub(crate) fn new(fut: F) -> Tracked<F> {
            let (waker, counter) = Counter::new();
            Tracked {
                fut,
                waker,
                counter,
                seen: 0,
            }
        }

        pub(crate) fn woken(&self) -> bool {
            self.counter.get() > self.seen
        }

        pub(crate) fn poll(&mut self) -> Poll<F::Output> {
            self.seen = self.counter.get();
            poll_once(&mut self.fut, &self.waker)
        }
    }

    /// A tiny deterministic generator for randomised schedules.
    pub(crate) struct Lcg(pub(crate) u64);

    impl Lcg {
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    pub(crate) trait PollExt<T> {
        /// The value of a ready poll, `None` if pending.
        fn ready(self) -> Option<T>;
    }

    impl<T> PollExt<T> for Poll<T> {
        fn ready(self) -> Option<T> {
            match self {
                Poll::Ready(v) => Some(v),
                Poll::Pending => None,
            }
        }
    }
}
