//! A bounded multi-producer, single-consumer channel whose senders may live on other threads.
//!
//! [`channel`] returns a cloneable [`Sender`] and a [`Receiver`]. [`Sender::send`] waits while
//! the buffer is full, which slows a fast producer down to its consumer's pace;
//! [`Receiver::recv`] yields `None` once every sender is gone and the buffer is drained. The
//! receiver also implements [`futures_core::Stream`].
//!
//! ```
//! use kettle::sync::mpsc;
//!
//! kettle::run(async {
//!     let (tx, mut rx) = mpsc::channel(16);
//!     for id in 0..3 {
//!         let tx = tx.clone();
//!         std::thread::spawn(move || {
//!             // A plain thread has no loop to await on; try_send and retry would also do.
//!             kettle::run(async move { tx.send(id).await.unwrap() });
//!         });
//!     }
//!     drop(tx);
//!     let mut got = Vec::new();
//!     while let Some(id) = rx.recv().await {
//!         got.push(id);
//!     }
//!     got.sort();
//!     assert_eq!(got, [0, 1, 2]);
//! });
//! ```
//!
//! # Fairness
//!
//! Senders waiting on a full channel are served in the order they started waiting: a freed
//! slot is reserved for the first of them, and neither a later `send` nor a `try_send` can take
//! it.
//!
//! # Cancellation
//!
//! - [`Receiver::recv`] is cancellation-safe: a message is only taken out of the buffer in the
//!   poll that returns it.
//! - [`Sender::send`]: a dropped `Sending` future has not sent its message (it is dropped with the
//!   future); a slot reserved for it passes to the next waiting sender.
//!
//! # Cost
//!
//! Each operation takes one uncontended mutex; messages live in a ring buffer that grows to the
//! capacity at most, so sending allocates nothing in the steady state; and a side only wakes the
//! other when the other is actually parked.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use super::waiters::WaitList;

/// Creates a channel buffering up to `capacity` messages.
///
/// # Panics
/// If `capacity` is 0: a rendezvous channel is not supported (use a capacity of 1, or a
/// [`oneshot`](super::oneshot) channel per message).
#[track_caller]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "mpsc::channel: capacity must be at least 1 (rendezvous channels are not supported)"
    );
    let chan = Arc::new(Chan {
        capacity,
        state: Mutex::new(State {
            buf: VecDeque::new(),
            rx_waker: None,
            senders: 1,
            closed: false,
            send_waiters: WaitList::new(),
        }),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

struct Chan<T> {
    capacity: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    buf: VecDeque<T>,
    /// Present only while the receiver is parked; a sender takes it to wake it.
    rx_waker: Option<Waker>,
    /// Live `Sender` handles.
    senders: usize,
    /// The receiver closed the channel or was dropped.
    closed: bool,
    /// Senders parked on a full buffer.
    send_waiters: WaitList,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under this lock (messages are never dropped inside it), so a
        // poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// The error of [`Sender::send`] on a closed channel; it gives the message back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The message that could not be sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// The error of [`Sender::try_send`]; both variants give the message back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The buffer is full (or its free slots are promised to waiting senders).
    Full(T),
    /// The receiver closed the channel or was dropped.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that could not be sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// True for [`TrySendError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// True for [`TrySendError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "channel full",
            TrySendError::Closed(_) => "channel closed",
        })
    }
}

impl<T> std::error::Error for TrySendError<T> {}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No message buffered; senders are still alive.
    Empty,
    /// No message buffered, and none will come: every sender is gone or the channel was
    /// closed.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "channel empty",
            TryRecvError::Disconnected => "channel disconnected",
        })
    }
}

impl std::error::Error for TryRecvError {}

/// The sending half of an [`mpsc::channel`](channel). Clone it for more producers; it is
/// `Send + Sync` when `T: Send`, so producers may run on other threads (or other loops).
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the buffer is full.
    ///
    /// # Errors
    /// [`SendError`], holding the value, when the receiver has closed the channel or was
    /// dropped (also if that happens while waiting).
    pub fn send(&self, value: T) -> Sending<'_, T> {
        Sending {
            chan: &self.chan,
            value: Some(value),
            key: None,
        }
    }

    /// Sends `value` if there is room right now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when the buffer is full, [`TrySendError::Closed`] when the
    /// receiver is gone; both hold the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.chan.lock();
        if st.closed {
            return Err(TrySendError::Closed(value));
        }
        if self.chan.capacity - st.buf.len() <= st.send_waiters.notified() {
            return Err(TrySendError::Full(value));
        }
        st.buf.push_back(value);
        let waker = st.rx_waker.take();
        drop(st);
        wake(waker);
        Ok(())
    }

    /// True when the receiver has closed the channel or was dropped.
    pub fn is_closed(&self) -> bool {
        self.chan.lock().closed
    }

    /// The capacity the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.chan.capacity
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        st.senders -= 1;
        let waker = if st.senders == 0 {
            // The receiver may be parked on an empty buffer: it must learn that nothing comes.
            st.rx_waker.take()
        } else {
            None
        };
        drop(st);
        wake(waker);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Sender")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

/// The future returned by [`Sender::send`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sending<'a, T> {
    chan: &'a Chan<T>,
    /// `None` once sent (or given back).
    value: Option<T>,
    /// Our place among the parked senders.
    key: Option<usize>,
}

// The message is moved, never pinned.
impl<T> Unpin for Sending<'_, T> {}

impl<T> Future for Sending<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.chan.lock();
        if st.closed {
            if let Some(k) = this.key.take() {
                // Closing woke every parked sender; nobody needs our turn.
                st.send_waiters.remove(k);
            }
            drop(st);
            let value = this.value.take().expect("Sending polled after completion");
            return Poll::Ready(Err(SendError(value)));
        }
        let free = this.chan.capacity - st.buf.len();
        match this.key {
            // Slots already promised to woken senders are not ours to take.
            None if free <= st.send_waiters.notified() => {
                this.key = Some(st.send_waiters.push_back(cx.waker()));
                return Poll::Pending;
            }
            None => {}
            Some(k) if !st.send_waiters.is_notified(k) => {
                st.send_waiters.set_waker(k, cx.waker());
                return Poll::Pending;
            }
            Some(k) if free == 0 => {
                st.send_waiters.requeue_front(k, cx.waker());
                return Poll::Pending;
            }
            Some(k) => {
                st.send_waiters.remove(k);
                this.key = None;
            }
        }
        let value = this.value.take().expect("Sending polled after completion");
        st.buf.push_back(value);
        let waker = st.rx_waker.take();
        drop(st);
        wake(waker);
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for Sending<'_, T> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let mut st = self.chan.lock();
            let waker = if st.send_waiters.remove(k) && !st.closed {
                st.send_waiters.notify_one()
            } else {
                None
            };
            drop(st);
            wake(waker);
        }
    }
}

impl<T> fmt::Debug for Sending<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Sending")
            .field("waiting", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// The receiving half of an [`mpsc::channel`](channel).
///
/// Dropping it closes the channel: pending and later sends fail, and buffered messages are
/// dropped.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next message, waiting while the buffer is empty. `None` once every sender
    /// is gone (or the channel was closed) and the buffer is drained.
    ///
    /// Cancellation-safe: dropping the future loses no message.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv {
            rx: self,
            parked: false,
        }
    }

    /// The polling form of [`recv`](Receiver::recv), for hand-written futures and streams.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut st = self.chan.lock();
        if let Some(v) = st.buf.pop_front() {
            let waker = st.send_waiters.notify_one();
            drop(st);
            wake(waker);
            return Poll::Ready(Some(v));
        }
        if st.senders == 0 || st.closed {
            return Poll::Ready(None);
        }
        match &st.rx_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.rx_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the next message if one is buffered.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when nothing is buffered but senders remain;
    /// [`TryRecvError::Disconnected`] when nothing is buffered and nothing will come.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.chan.lock();
        match st.buf.pop_front() {
            Some(v) => {
                let waker = st.send_waiters.notify_one();
                drop(st);
                wake(waker);
                Ok(v)
            }
            None if st.senders == 0 || st.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Closes the channel: sends fail from now on (waiting senders get their message back),
    /// while messages already buffered can still be received.
    pub fn close(&mut self) {
        self.chan.lock().closed = true;
        // One at a time, outside the lock: a sender arriving meanwhile sees `closed` and does
        // not park, so this ends.
        loop {
            let waker = self.chan.lock().send_waiters.notify_one();
            match waker {
                Some(w) => w.wake(),
                None => break,
            }
        }
    }

    /// The number of messages buffered.
    pub fn len(&self) -> usize {
        self.chan.lock().buf.len()
    }

    /// True when no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        let buffered = std::mem::take(&mut self.chan.lock().buf);
        // Message destructors run outside the lock.
        drop(buffered);
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Receiver")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

/// The future returned by [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
    /// The last poll left our waker in the channel.
    parked: bool,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let poll = self.rx.poll_recv(cx);
        self.parked = poll.is_pending();
        poll
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if self.parked {
            // Spare the task a pointless wake-up from the next send.
            self.rx.chan.lock().rx_waker = None;
        }
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Recv")
            .field("parked", &self.parked)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::test_util::{poll_once, Counter, PollExt};
    use std::task::{Context, Poll};

    #[test]
    fn buffer_then_drain_then_none() {
        let (tx, mut rx) = channel(2);
        let (w, _count) = Counter::new();
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(tx.try_send(3).unwrap_err().is_full());
        assert_eq!(rx.len(), 2);
        drop(tx);
        assert_eq!(poll_once(&mut rx.recv(), &w).ready(), Some(Some(1)));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(poll_once(&mut rx.recv(), &w).ready(), Some(None));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn receiver_wakes_only_when_parked() {
        let (tx, mut rx) = channel(4);
        let (w, count) = Counter::new();
        tx.try_send(1).unwrap();
        assert_eq!(count.get(), 0);
        assert_eq!(poll_once(&mut rx.recv(), &w).ready(), Some(Some(1)));
        let mut r = rx.recv();
        assert!(poll_once(&mut r, &w).is_pending());
        tx.try_send(2).unwrap();
        tx.try_send(3).unwrap();
        assert_eq!(
            count.get(),
            1,
            "one wake for the parked receiver, none after"
        );
        assert_eq!(poll_once(&mut r, &w).ready(), Some(Some(2)));
        drop(r);
        drop(tx);
        assert_eq!(
            count.get(),
            1,
            "not parked: dropping the sender wakes nobody"
        );
        assert_eq!(rx.try_recv(), Ok(3));
    }

    #[test]
    fn last_sender_drop_wakes_the_receiver() {
        let (tx, mut rx) = channel::<u8>(1);
        let tx2 = tx.clone();
        let (w, count) = Counter::new();
        let mut r = rx.recv();
        assert!(poll_once(&mut r, &w).is_pending());
        drop(tx);
        assert_eq!(count.get(), 0);
        drop(tx2);
        assert_eq!(count.get(), 1);
        assert_eq!(poll_once(&mut r, &w).ready(), Some(None));
    }

    #[test]
    fn senders_wait_in_order_and_try_send_respects_reservations() {
        let (tx, mut rx) = channel(1);
        let (w, count) = Counter::new();
        tx.try_send(0).unwrap();
        let mut a = tx.send(1);
        let mut b = tx.send(2);
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(count.get(), 1);
        assert!(tx.try_send(9).unwrap_err().is_full(), "slot reserved for a");
        assert!(poll_once(&mut b, &w).is_pending());
        assert!(poll_once(&mut a, &w).ready().unwrap().is_ok());
        assert_eq!(rx.try_recv(), Ok(1));
        drop(a);
        assert!(poll_once(&mut b, &w).ready().unwrap().is_ok());
        assert_eq!(rx.try_recv(), Ok(2));
    }

    #[test]
    fn cancelled_sender_passes_its_slot_on() {
        let (tx, mut rx) = channel(1);
        let (w, _count) = Counter::new();
        tx.try_send(0).unwrap();
        let mut a = tx.send(1);
        let mut b = tx.send(2);
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        drop(a);
        assert!(poll_once(&mut b, &w).ready().unwrap().is_ok());
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn close_fails_waiting_and_later_senders_but_keeps_the_buffer() {
        let (tx, mut rx) = channel(1);
        let (w, count) = Counter::new();
        tx.try_send(1).unwrap();
        let mut a = tx.send(2);
        assert!(poll_once(&mut a, &w).is_pending());
        rx.close();
        assert_eq!(count.get(), 1);
        let err = poll_once(&mut a, &w).ready().unwrap().unwrap_err();
        assert_eq!(err.into_inner(), 2);
        assert!(tx.is_closed());
        assert!(tx.try_send(3).unwrap_err().is_closed());
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn dropping_the_receiver_drops_buffered_messages() {
        let (tx, rx) = channel(4);
        let token = Arc::new(());
        tx.try_send(token.clone()).unwrap();
        drop(rx);
        assert_eq!(Arc::strong_count(&token), 1);
        assert!(tx.try_send(token.clone()).is_err());
    }

    #[test]
    fn dropped_recv_forgets_its_waker() {
        let (tx, mut rx) = channel(1);
        let (w, count) = Counter::new();
        let mut r = rx.recv();
        assert!(poll_once(&mut r, &w).is_pending());
        drop(r);
        tx.try_send(1).unwrap();
        assert_eq!(count.get(), 0);
    }

    #[test]
    #[should_panic(expected = "capacity must be at least 1")]
    fn zero_capacity_panics() {
        let _ = channel::<u8>(0);
    }

    #[test]
    fn handles_are_send() {
        fn assert_send<S: Send + Sync>(_: &S) {}
        let (tx, rx) = channel::<String>(1);
        assert_send(&tx);
        assert_send(&rx);
    }

    /// Random interleavings of sends, receives, spurious polls and cancelled sends on one
    /// thread: no message is lost or reordered, and once every delivered wake-up has been
    /// handled, nobody is parked while it could proceed.
    #[test]
    fn random_schedules_lose_nothing_and_strand_no_one() {
        use crate::sync::test_util::{Lcg, Tracked};
        for seed in 0..200 {
            let mut rng = Lcg(seed);
            let cap = 1 + rng.below(3);
            let (tx, mut rx) = channel::<u32>(cap);
            let (rx_waker, rx_count) = Counter::new();
            let mut rx_seen = 0;
            let mut rx_parked = false;
            let mut senders: Vec<(u32, Tracked<Sending<'_, u32>>)> = Vec::new();
            let (mut entered, mut got) = (Vec::new(), Vec::new());
            let mut next = 0;
            for _ in 0..300 {
                match rng.below(7) {
                    0 | 1 => {
                        next += 1;
                        let mut s = Tracked::new(tx.send(next));
                        if s.poll().is_ready() {
                            entered.push(next);
                        } else {
                            senders.push((next, s));
                        }
                    }
                    2 => {
                        next += 1;
                        if tx.try_send(next).is_ok() {
                            entered.push(next);
                        }
                    }
                    3 if !senders.is_empty() => {
                        let i = rng.below(senders.len());
                        senders.remove(i);
                    }
                    4 => {
                        rx_seen = rx_count.get();
                        match rx.poll_recv(&mut Context::from_waker(&rx_waker)) {
                            Poll::Ready(v) => {
                                got.push(v.unwrap());
                                rx_parked = false;
                            }
                            Poll::Pending => rx_parked = true,
                        }
                    }
                    5 => {
                        if let Ok(v) = rx.try_recv() {
                            got.push(v);
                        }
                    }
                    _ => {
                        while senders.iter().any(|(_, s)| s.woken()) {
                            let mut i = 0;
                            while i < senders.len() {
                                if senders[i].1.woken() && senders[i].1.poll().is_ready() {
                                    entered.push(senders.remove(i).0);
                                    continue;
                                }
                                i += 1;
                            }
                        }
                        let len = rx.len();
                        assert!(
                            len == cap || senders.is_empty(),
                            "seed {seed}: sender stranded"
                        );
                        if rx_parked && len > 0 {
                            assert!(rx_count.get() > rx_seen, "seed {seed}: receiver stranded");
                        }
                    }
                }
            }
            drop(senders);
            drop(tx);
            while let Ok(v) = rx.try_recv() {
                got.push(v);
            }
            assert_eq!(got, entered, "seed {seed}: messages lost or reordered");
        }
    }
}
