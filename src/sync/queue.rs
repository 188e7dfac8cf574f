//! [`Queue`], [`PriorityQueue`] and [`LifoQueue`]: asyncio's queues for passing work between
//! tasks of one event loop.
//!
//! The three share one implementation, generic over the buffer that decides which item comes
//! out next; the public types differ only in that buffer.
//!
//! Fairness and cancellation are described on [`Queue`].

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::waiters::WaitList;
use crate::error::Error;

/// The error of `put_nowait` on a full queue; it gives the item back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> QueueFull<T> {
    /// The item that could not be put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull(..)")
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is full")
    }
}

impl<T> std::error::Error for QueueFull<T> {}

/// The error of `get_nowait` on an empty queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueEmpty;

impl fmt::Display for QueueEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is empty")
    }
}

impl std::error::Error for QueueEmpty {}

/// The order in which a queue hands out its items.
trait Buffer<T> {
    fn push(&mut self, item: T);
    fn pop(&mut self) -> Option<T>;
    fn len(&self) -> usize;
}

/// First in, first out.
struct Fifo<T>(VecDeque<T>);

impl<T> Buffer<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Last in, first out.
struct Lifo<T>(Vec<T>);

impl<T> Buffer<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Smallest first, like Python's `heapq`.
struct Heap<T>(BinaryHeap<Reverse<T>>);

impl<T: Ord> Buffer<T> for Heap<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item))
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(item)| item)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

struct State<B> {
    buf: B,
    /// 0: unbounded.
    maxsize: usize,
    /// Items put and not yet marked done with `task_done`.
    unfinished: usize,
    getters: WaitList,
    putters: WaitList,
    joiners: WaitList,
}

/// What the queue handles share; the futures see it as a `dyn RawQueue<T>`, so that they are
/// the same types for all three kinds of queue.
struct Shared<B> {
    state: RefCell<State<B>>,
}

impl<B> Shared<B> {
    fn new(buf: B, maxsize: usize) -> Rc<Shared<B>> {
        Rc::new(Shared {
            state: RefCell::new(State {
                buf,
                maxsize,
                unfinished: 0,
                getters: WaitList::new(),
                putters: WaitList::new(),
                joiners: WaitList::new(),
            }),
        })
    }
}

/// How many more items fit in a queue of `maxsize` holding `len`.
fn free_slots(maxsize: usize, len: usize) -> usize {
    if maxsize == 0 {
        usize::MAX
    } else {
        maxsize.saturating_sub(len)
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// The queue operations, object-safe.
trait RawQueue<T> {
    fn qsize(&self) -> usize;
    fn maxsize(&self) -> usize;
    fn put_nowait(&self, item: T) -> Result<(), QueueFull<T>>;
    fn get_nowait(&self) -> Result<T, QueueEmpty>;
    fn task_done(&self) -> Result<(), Error>;
    fn poll_put(
        &self,
        key: &mut Option<usize>,
        item: &mut Option<T>,
        cx: &mut Context<'_>,
    ) -> Poll<()>;
    fn poll_get(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<T>;
    fn poll_join(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()>;
    fn cancel_put(&self, key: usize);
    fn cancel_get(&self, key: usize);
    fn cancel_join(&self, key: usize);
}

impl<T, B: Buffer<T>> RawQueue<T> for Shared<B> {
    fn qsize(&self) -> usize {
        self.state.borrow().buf.len()
    }

    fn maxsize(&self) -> usize {
        self.state.borrow().maxsize
    }

    fn put_nowait(&self, item: T) -> Result<(), QueueFull<T>> {
        let mut st = self.state.borrow_mut();
        if free_slots(st.maxsize, st.buf.len()) == 0 {
            return Err(QueueFull(item));
        }
        st.buf.push(item);
        st.unfinished += 1;
        let waker = st.getters.notify_one();
        drop(st);
        wake(waker);
        Ok(())
    }

    fn get_nowait(&self) -> Result<T, QueueEmpty> {
        let mut st = self.state.borrow_mut();
        let item = st.buf.pop().ok_or(QueueEmpty)?;
        let waker = st.putters.notify_one();
        drop(st);
        wake(waker);
        Ok(item)
    }

    fn task_done(&self) -> Result<(), Error> {
        let parked = {
            let mut st = self.state.borrow_mut();
            if st.unfinished == 0 {
                return Err(Error::invalid_state(
                    "task_done() called more times than there were items put",
                ));
            }
            st.unfinished -= 1;
            if st.unfinished > 0 {
                return Ok(());
            }
            st.joiners.linked()
        };
        for _ in 0..parked {
            let waker = self.state.borrow_mut().joiners.notify_one();
            match waker {
                Some(w) => w.wake(),
                None => break,
            }
        }
        Ok(())
    }

    fn poll_put(
        &self,
        key: &mut Option<usize>,
        item: &mut Option<T>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        let free = free_slots(st.maxsize, st.buf.len());
        match *key {
            // Slots already promised to woken putters are not ours to take.
            None if free <= st.putters.notified() => {
                *key = Some(st.putters.push_back(cx.waker()));
                return Poll::Pending;
            }
            None => {}
            Some(k) if !st.putters.is_notified(k) => {
                st.putters.set_waker(k, cx.waker());
                return Poll::Pending;
            }
            Some(k) if free == 0 => {
                // A put_nowait took our slot.
                st.putters.requeue_front(k, cx.waker());
                return Poll::Pending;
            }
            Some(k) => {
                st.putters.remove(k);
                *key = None;
            }
        }
        st.buf
            .push(item.take().expect("Put polled after completion"));
        st.unfinished += 1;
        let waker = st.getters.notify_one();
        drop(st);
        wake(waker);
        Poll::Ready(())
    }

    fn poll_get(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<T> {
        let mut st = self.state.borrow_mut();
        let len = st.buf.len();
        match *key {
            // Items already promised to woken getters are not ours to take.
            None if len <= st.getters.notified() => {
                *key = Some(st.getters.push_back(cx.waker()));
                return Poll::Pending;
            }
            None => {}
            Some(k) if !st.getters.is_notified(k) => {
                st.getters.set_waker(k, cx.waker());
                return Poll::Pending;
            }
            Some(k) if len == 0 => {
                // A get_nowait took our item.
                st.getters.requeue_front(k, cx.waker());
                return Poll::Pending;
            }
            Some(k) => {
                st.getters.remove(k);
                *key = None;
            }
        }
        let item = st.buf.pop().expect("checked non-empty");
        let waker = st.putters.notify_one();
        drop(st);
        wake(waker);
        Poll::Ready(item)
    }

    fn poll_join(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        match *key {
            None if st.unfinished == 0 => Poll::Ready(()),
            None => {
                *key = Some(st.joiners.push_back(cx.waker()));
                Poll::Pending
            }
            // Woken by the task_done that reached zero: done, even if items were put since.
            Some(k) if st.joiners.is_notified(k) => {
                st.joiners.remove(k);
                *key = None;
                Poll::Ready(())
            }
            Some(k) => {
                st.joiners.set_waker(k, cx.waker());
                Poll::Pending
            }
        }
    }

    fn cancel_put(&self, key: usize) {
        let mut st = self.state.borrow_mut();
        let waker = if st.putters.remove(key) {
            st.putters.notify_one()
        } else {
            None
        };
        drop(st);
        wake(waker);
    }

    fn cancel_get(&self, key: usize) {
        let mut st = self.state.borrow_mut();
        let waker = if st.getters.remove(key) {
            st.getters.notify_one()
        } else {
            None
        };
        drop(st);
        wake(waker);
    }

    fn cancel_join(&self, key: usize) {
        self.state.borrow_mut().joiners.remove(key);
    }
}

/// Generates a public queue type over one buffer kind, with the whole asyncio queue API.
macro_rules! queue_type {
    (
        $(#[$attr:meta])*
        $name:ident, $buf:ident($empty:expr), [$($bound:tt)*]
    ) => {
        $(#[$attr])*
        pub struct $name<T> {
            shared: Rc<Shared<$buf<T>>>,
        }

        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name {
                    shared: self.shared.clone(),
                }
            }
        }

        impl<T: $($bound)*> $name<T> {
            /// A queue holding at most `maxsize` items; `0` means unbounded, as in asyncio.
            pub fn new(maxsize: usize) -> Self {
                $name {
                    shared: Shared::new($buf($empty), maxsize),
                }
            }

            fn raw(&self) -> &dyn RawQueue<T> {
                &*self.shared
            }

            /// The number of items in the queue.
            pub fn qsize(&self) -> usize {
                self.raw().qsize()
            }

            /// The most items the queue holds (`0`: unbounded).
            pub fn maxsize(&self) -> usize {
                self.raw().maxsize()
            }

            /// True when the queue holds no item.
            pub fn empty(&self) -> bool {
                self.qsize() == 0
            }

            /// True when the queue is bounded and holds `maxsize` items, so that
            /// [`put`](Self::put) would wait.
            pub fn full(&self) -> bool {
                let max = self.maxsize();
                max > 0 && self.qsize() >= max
            }

            /// Puts `item` in the queue, waiting while the queue is full.
            ///
            /// Putters waiting on a full queue are served in order. If the returned future is
            /// dropped before it completes, the item was not put and is dropped with it.
            pub fn put(&self, item: T) -> Put<'_, T> {
                Put {
                    queue: self.raw(),
                    item: Some(item),
                    key: None,
                }
            }

            /// Puts `item` in the queue if it is not full.
            ///
            /// # Errors
            /// [`QueueFull`], holding the item, when the queue is full.
            pub fn put_nowait(&self, item: T) -> Result<(), QueueFull<T>> {
                self.raw().put_nowait(item)
            }

            /// Removes and returns the next item, waiting while the queue is empty.
            ///
            /// Getters are served in order. Cancellation-safe: if the returned future is
            /// dropped, no item is lost.
            pub fn get(&self) -> Get<'_, T> {
                Get {
                    queue: self.raw(),
                    key: None,
                }
            }

            /// Removes and returns the next item if there is one.
            ///
            /// # Errors
            /// [`QueueEmpty`] when the queue is empty.
            pub fn get_nowait(&self) -> Result<T, QueueEmpty> {
                self.raw().get_nowait()
            }

            /// Marks one item taken from the queue as processed; when every item ever put has
            /// been marked, tasks waiting in [`join`](Self::join) wake up.
            ///
            /// # Errors
            /// An [`InvalidState`](crate::ErrorKind::InvalidState) error when called more
            /// times than items were put (asyncio raises `ValueError`).
            pub fn task_done(&self) -> Result<(), Error> {
                self.raw().task_done()
            }

            /// Waits until every item put in the queue has been marked done with
            /// [`task_done`](Self::task_done); returns at once if none is outstanding.
            pub fn join(&self) -> Join<'_, T> {
                Join {
                    queue: self.raw(),
                    key: None,
                }
            }
        }

        impl<T: $($bound)*> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("qsize", &self.qsize())
                    .field("maxsize", &self.maxsize())
                    .finish()
            }
        }
    };
}

queue_type! {
    /// A first-in, first-out queue for tasks of one event loop (asyncio's `Queue`).
    ///
    /// A bounded queue applies backpressure: [`put`](Queue::put) waits while it is full.
    /// [`task_done`](Queue::task_done) and [`join`](Queue::join) let a producer wait until
    /// consumers have finished every item.
    ///
    /// # Fairness
    ///
    /// Waiting getters (and putters) are served in the order they started waiting. When an item
    /// arrives, the first waiting getter is woken and the item is *reserved* for it: a
    /// `get().await` started later waits behind it instead of taking the item first. Likewise a
    /// slot freed in a full queue is reserved for the first waiting putter. The non-waiting forms
    /// ([`get_nowait`](Queue::get_nowait), [`put_nowait`](Queue::put_nowait)) follow asyncio and
    /// look only at the queue's size, so `if !q.full() { q.put_nowait(x) }` always works; when one
    /// of them takes a reserved item or slot, the woken waiter goes back to the *front* of the
    /// line.
    ///
    /// # Cancellation
    ///
    /// - `get` is cancellation-safe: an item is only removed from the queue inside the poll that
    ///   returns it, so a dropped `Get` loses nothing, and a wake-up meant for it passes to the
    ///   next getter.
    /// - `put`: a dropped `Put` has not enqueued its item (the item is dropped with the future);
    ///   nothing else is affected, and a free slot reserved for it passes to the next putter.
    /// - `join` is cancellation-safe.
    ///
    /// The handle is a cheap `Clone`; clones are the same queue. It is `!Send`.
    ///
    /// ```
    /// use kettle::sync::Queue;
    ///
    /// kettle::run(async {
    ///     let queue = Queue::new(2);
    ///     let worker = {
    ///         let queue = queue.clone();
    ///         kettle::spawn(async move {
    ///             let mut total = 0;
    ///             loop {
    ///                 let n: u32 = queue.get().await;
    ///                 total += n;
    ///                 queue.task_done().unwrap();
    ///                 if n == 0 {
    ///                     return total;
    ///                 }
    ///             }
    ///         })
    ///     };
    ///     for n in [3, 2, 1, 0] {
    ///         queue.put(n).await; // waits while two items are queued
    ///     }
    ///     queue.join().await; // every item processed
    ///     assert_eq!(worker.await.unwrap(), 6);
    /// });
    /// ```
    Queue, Fifo(VecDeque::new()), []
}

queue_type! {
    /// A queue that hands out its smallest item first (asyncio's `PriorityQueue`), with the
    /// same API, fairness and cancellation behaviour as [`Queue`].
    ///
    /// Items are typically `(priority, payload)` tuples, compared by `Ord`.
    ///
    /// ```
    /// use kettle::sync::PriorityQueue;
    ///
    /// kettle::run(async {
    ///     let queue = PriorityQueue::new(0);
    ///     queue.put((2, "later")).await;
    ///     queue.put((1, "first")).await;
    ///     queue.put((3, "last")).await;
    ///     assert_eq!(queue.get().await, (1, "first"));
    ///     assert_eq!(queue.get().await, (2, "later"));
    ///     assert_eq!(queue.get_nowait(), Ok((3, "last")));
    /// });
    /// ```
    PriorityQueue, Heap(BinaryHeap::new()), [Ord]
}

queue_type! {
    /// A last-in, first-out queue (asyncio's `LifoQueue`), with the same API, fairness and
    /// cancellation behaviour as [`Queue`].
    ///
    /// ```
    /// use kettle::sync::LifoQueue;
    ///
    /// kettle::run(async {
    ///     let stack = LifoQueue::new(0);
    ///     for n in 1..=3 {
    ///         stack.put_nowait(n).unwrap();
    ///     }
    ///     assert_eq!(stack.get().await, 3);
    ///     assert_eq!(stack.get().await, 2);
    ///     assert_eq!(stack.get().await, 1);
    /// });
    /// ```
    LifoQueue, Lifo(Vec::new()), []
}

/// The future returned by `put` on [`Queue`], [`PriorityQueue`] and [`LifoQueue`].
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T> {
    queue: &'a dyn RawQueue<T>,
    item: Option<T>,
    key: Option<usize>,
}

// The item is moved, never pinned.
impl<T> Unpin for Put<'_, T> {}

impl<T> Future for Put<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.queue.poll_put(&mut this.key, &mut this.item, cx)
    }
}

impl<T> Drop for Put<'_, T> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.queue.cancel_put(k);
        }
    }
}

impl<T> fmt::Debug for Put<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("waiting", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// The future returned by `get` on [`Queue`], [`PriorityQueue`] and [`LifoQueue`].
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    queue: &'a dyn RawQueue<T>,
    key: Option<usize>,
}

impl<T> Future for Get<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        this.queue.poll_get(&mut this.key, cx)
    }
}

impl<T> Drop for Get<'_, T> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.queue.cancel_get(k);
        }
    }
}

impl<T> fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("waiting", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// The future returned by `join` on [`Queue`], [`PriorityQueue`] and [`LifoQueue`].
#[must_use = "futures do nothing unless awaited"]
pub struct Join<'a, T> {
    queue: &'a dyn RawQueue<T>,
    key: Option<usize>,
}

impl<T> Future for Join<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.queue.poll_join(&mut this.key, cx)
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.queue.cancel_join(k);
        }
    }
}

impl<T> fmt::Debug for Join<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("waiting", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::test_util::{poll_once, Counter, PollExt};

    #[test]
    fn nowait_and_sizes() {
        let q = Queue::new(2);
        assert!(q.empty() && !q.full());
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        assert!(q.full());
        assert_eq!(q.put_nowait(3).unwrap_err().into_inner(), 3);
        assert_eq!(q.qsize(), 2);
        assert_eq!(q.get_nowait(), Ok(1));
        assert_eq!(q.get_nowait(), Ok(2));
        assert_eq!(q.get_nowait(), Err(QueueEmpty));
        assert_eq!(q.maxsize(), 2);
    }

    #[test]
    fn orders() {
        let p = PriorityQueue::new(0);
        let l = LifoQueue::new(0);
        for n in [5, 1, 4, 2, 3] {
            p.put_nowait(n).unwrap();
            l.put_nowait(n).unwrap();
        }
        let p: Vec<_> = std::iter::from_fn(|| p.get_nowait().ok()).collect();
        let l: Vec<_> = std::iter::from_fn(|| l.get_nowait().ok()).collect();
        assert_eq!(p, [1, 2, 3, 4, 5]);
        assert_eq!(l, [3, 2, 4, 1, 5]);
    }

    #[test]
    fn getters_are_served_in_order() {
        let q = Queue::new(0);
        let (w, count) = Counter::new();
        let mut a = q.get();
        let mut b = q.get();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        q.put_nowait("x").unwrap();
        assert_eq!(count.get(), 1);
        // A newcomer does not take the item reserved for `a`, nor does `b`.
        let mut c = q.get();
        assert!(poll_once(&mut c, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        assert_eq!(poll_once(&mut a, &w).ready(), Some("x"));
        q.put_nowait("y").unwrap();
        q.put_nowait("z").unwrap();
        assert_eq!(count.get(), 3, "b and c woken, in that order");
        assert_eq!(poll_once(&mut b, &w).ready(), Some("y"));
        assert_eq!(poll_once(&mut c, &w).ready(), Some("z"));
    }

    #[test]
    fn cancelled_getter_loses_nothing_and_passes_the_wakeup() {
        let q = Queue::new(0);
        let (w, count) = Counter::new();
        let mut a = q.get();
        let mut b = q.get();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        q.put_nowait(7).unwrap();
        drop(a);
        assert_eq!(count.get(), 2, "b was woken in a's place");
        assert_eq!(poll_once(&mut b, &w).ready(), Some(7));
        assert!(q.empty());
    }

    #[test]
    fn nowait_steal_sends_the_waiter_back_to_the_front() {
        let q = Queue::new(0);
        let (w, _count) = Counter::new();
        let mut a = q.get();
        let mut b = q.get();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        q.put_nowait(1).unwrap();
        assert_eq!(q.get_nowait(), Ok(1));
        assert!(poll_once(&mut a, &w).is_pending());
        q.put_nowait(2).unwrap();
        assert!(poll_once(&mut b, &w).is_pending());
        assert_eq!(poll_once(&mut a, &w).ready(), Some(2));
    }

    #[test]
    fn put_waits_while_full() {
        let q = Queue::new(1);
        let (w, count) = Counter::new();
        q.put_nowait(1).unwrap();
        let mut p1 = q.put(2);
        let mut p2 = q.put(3);
        assert!(poll_once(&mut p1, &w).is_pending());
        assert!(poll_once(&mut p2, &w).is_pending());
        assert_eq!(q.get_nowait(), Ok(1));
        assert_eq!(count.get(), 1);
        // The freed slot is reserved for p1: a newcomer waits.
        let mut p3 = q.put(4);
        assert!(poll_once(&mut p3, &w).is_pending());
        assert!(poll_once(&mut p1, &w).is_ready());
        assert!(q.full());
        drop(p2); // cancelled while parked: its item is simply dropped
        assert_eq!(q.get_nowait(), Ok(2));
        assert!(poll_once(&mut p3, &w).is_ready());
        assert_eq!(q.get_nowait(), Ok(4));
    }

    #[test]
    fn cancelled_putter_passes_its_slot_on() {
        let q = Queue::new(1);
        let (w, _count) = Counter::new();
        q.put_nowait(0).unwrap();
        let mut p1 = q.put(1);
        let mut p2 = q.put(2);
        assert!(poll_once(&mut p1, &w).is_pending());
        assert!(poll_once(&mut p2, &w).is_pending());
        assert_eq!(q.get_nowait(), Ok(0));
        drop(p1);
        assert!(poll_once(&mut p2, &w).is_ready());
        assert_eq!(q.get_nowait(), Ok(2));
    }

    #[test]
    fn join_and_task_done() {
        let q = LifoQueue::new(0);
        let (w, count) = Counter::new();
        assert!(poll_once(&mut q.join(), &w).is_ready());
        assert!(q.task_done().is_err());
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        let mut j1 = q.join();
        let mut j2 = q.join();
        let j3 = {
            let mut j = q.join();
            assert!(poll_once(&mut j, &w).is_pending());
            j
        };
        assert!(poll_once(&mut j1, &w).is_pending());
        assert!(poll_once(&mut j2, &w).is_pending());
        drop(j3);
        q.get_nowait().unwrap();
        q.task_done().unwrap();
        assert!(poll_once(&mut j1, &w).is_pending());
        q.get_nowait().unwrap();
        q.task_done().unwrap();
        assert_eq!(count.get(), 2);
        q.put_nowait(3).unwrap(); // outstanding again, but j1 and j2 were already released
        assert!(poll_once(&mut j1, &w).is_ready());
        assert!(poll_once(&mut j2, &w).is_ready());
        q.get_nowait().unwrap();
        q.task_done().unwrap();
        let err = q.task_done().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidState);
    }

    #[test]
    fn unbounded_put_never_waits() {
        let q = PriorityQueue::new(0);
        let (w, _count) = Counter::new();
        for n in (0..100).rev() {
            assert!(poll_once(&mut q.put(n), &w).is_ready());
        }
        assert_eq!(q.qsize(), 100);
        assert!(!q.full());
        assert_eq!(poll_once(&mut q.get(), &w).ready(), Some(0));
    }

    /// Random interleavings of waiting and non-waiting operations, spurious polls and
    /// cancellations: no item is lost or reordered, and once every delivered wake-up has been
    /// handled, nobody is left parked while what it waits for is available.
    #[test]
    fn random_schedules_lose_nothing_and_strand_no_one() {
        use crate::sync::test_util::{Lcg, Tracked};
        for seed in 0..200 {
            let mut rng = Lcg(seed);
            let q = Queue::new(1 + rng.below(3));
            let mut getters: Vec<Tracked<Get<'_, u32>>> = Vec::new();
            let mut putters: Vec<Tracked<Put<'_, u32>>> = Vec::new();
            let (mut entered, mut got) = (Vec::new(), Vec::new());
            let mut next = 0;
            let deliver = |getters: &mut Vec<Tracked<Get<'_, u32>>>,
                           putters: &mut Vec<Tracked<Put<'_, u32>>>,
                           got: &mut Vec<u32>,
                           entered: &mut Vec<u32>,
                           pending_puts: &mut Vec<u32>| {
                let mut i = 0;
                while i < getters.len() {
                    if getters[i].woken() {
                        if let Poll::Ready(v) = getters[i].poll() {
                            got.push(v);
                            getters.remove(i);
                            continue;
                        }
                    }
                    i += 1;
                }
                let mut i = 0;
                while i < putters.len() {
                    if putters[i].woken() && putters[i].poll().is_ready() {
                        putters.remove(i);
                        entered.push(pending_puts.remove(i));
                        continue;
                    }
                    i += 1;
                }
            };
            // The item each parked putter carries, index-aligned with `putters`.
            let mut pending_puts = Vec::new();
            for _ in 0..300 {
                match rng.below(9) {
                    0 => {
                        let mut g = Tracked::new(q.get());
                        match g.poll() {
                            Poll::Ready(v) => got.push(v),
                            Poll::Pending => getters.push(g),
                        }
                    }
                    1 => {
                        next += 1;
                        let mut p = Tracked::new(q.put(next));
                        if p.poll().is_ready() {
                            entered.push(next);
                        } else {
                            putters.push(p);
                            pending_puts.push(next);
                        }
                    }
                    2 | 3 => {
                        // Run everything that was woken, until nothing is, then check that
                        // nobody is left parked while what it waits for is available.
                        while getters.iter().any(|g| g.woken()) || putters.iter().any(|p| p.woken())
                        {
                            deliver(
                                &mut getters,
                                &mut putters,
                                &mut got,
                                &mut entered,
                                &mut pending_puts,
                            );
                        }
                        assert!(
                            q.empty() || getters.is_empty(),
                            "seed {seed}: getter stranded"
                        );
                        assert!(
                            q.full() || putters.is_empty(),
                            "seed {seed}: putter stranded"
                        );
                    }
                    4 if !getters.is_empty() => {
                        let i = rng.below(getters.len());
                        getters.remove(i);
                    }
                    5 if !putters.is_empty() => {
                        let i = rng.below(putters.len());
                        putters.remove(i);
                        pending_puts.remove(i);
                    }
                    6 => {
                        if let Ok(v) = q.get_nowait() {
                            got.push(v);
                        }
                    }
                    7 => {
                        next += 1;
                        if q.put_nowait(next).is_ok() {
                            entered.push(next);
                        }
                    }
                    8 if !getters.is_empty() => {
                        // A spurious poll must not let anyone jump the line or lose its place.
                        let i = rng.below(getters.len());
                        if let Poll::Ready(v) = getters[i].poll() {
                            got.push(v);
                            getters.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            while getters.iter().any(|g| g.woken()) || putters.iter().any(|p| p.woken()) {
                deliver(
                    &mut getters,
                    &mut putters,
                    &mut got,
                    &mut entered,
                    &mut pending_puts,
                );
            }
            assert!(
                q.empty() || getters.is_empty(),
                "seed {seed}: getter stranded"
            );
            assert!(
                q.full() || putters.is_empty(),
                "seed {seed}: putter stranded"
            );
            got.extend(std::iter::from_fn(|| q.get_nowait().ok()));
            assert_eq!(got, entered, "seed {seed}: items lost or reordered");
        }
    }
}
