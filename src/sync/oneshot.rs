//! A channel for exactly one value, which may be sent from another thread.
//!
//! [`channel`] returns a [`Sender`] and a [`Receiver`]; the receiver is a future resolving to
//! the value, or to [`RecvError`] if the sender was dropped without sending. The typical use is
//! handing a result back to a task on the loop from a worker thread:
//!
//! ```
//! use kettle::sync::oneshot;
//!
//! kettle::run(async {
//!     let (tx, rx) = oneshot::channel();
//!     std::thread::spawn(move || {
//!         let answer = 6 * 7; // some blocking work
//!         let _ = tx.send(answer);
//!     });
//!     assert_eq!(rx.await, Ok(42));
//! });
//! ```
//!
//! **Cancellation:** the receiver *is* the future. Polling it through a reference (say, in a
//! select loop) and dropping that reference loses nothing; dropping the `Receiver` itself
//! discards the value, if one was sent, and makes later sends fail.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Creates a one-value channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            value: None,
            waker: None,
            sender_done: false,
            receiver_gone: false,
        }),
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner },
    )
}

struct Inner<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Option<T>,
    /// The receiver's waker while it waits.
    waker: Option<Waker>,
    /// The sender sent its value or was dropped; nothing more will come.
    sender_done: bool,
    receiver_gone: bool,
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under this lock, so a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error of a [`Receiver`] whose [`Sender`] was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot sender dropped without sending")
    }
}

impl std::error::Error for RecvError {}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing sent yet; the sender is still alive.
    Empty,
    /// The sender was dropped without sending, or the value was already received.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "oneshot channel is empty",
            TryRecvError::Closed => "oneshot sender dropped without sending",
        })
    }
}

impl std::error::Error for TryRecvError {}

/// The sending half of a [`oneshot::channel`](channel). It is `Send` when `T` is, so it can be
/// moved to another thread.
pub struct Sender<T> {
    /// `None` once the value has been sent.
    inner: Option<Arc<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Sends the value, waking the receiver.
    ///
    /// # Errors
    /// Gives the value back when the receiver has been dropped.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self
            .inner
            .take()
            .expect("a Sender holds its channel until it sends");
        let mut st = inner.lock();
        if st.receiver_gone {
            return Err(value);
        }
        st.value = Some(value);
        st.sender_done = true;
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// True when the receiver has been dropped, so that [`send`](Sender::send) would fail.
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.lock().receiver_gone)
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let mut st = inner.lock();
            st.sender_done = true;
            let waker = st.waker.take();
            drop(st);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The receiving half of a [`oneshot::channel`](channel): a future resolving to the value.
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Receiver<T> {
    /// Takes the value if it has arrived, without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] while the sender may still send; [`TryRecvError::Closed`] when
    /// it never will (dropped without sending, or the value was already taken).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.inner.lock();
        match st.value.take() {
            Some(v) => Ok(v),
            None if st.sender_done => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let mut st = self.inner.lock();
        if let Some(v) = st.value.take() {
            return Poll::Ready(Ok(v));
        }
        if st.sender_done {
            return Poll::Ready(Err(RecvError));
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.receiver_gone = true;
        st.waker = None;
        let value = st.value.take();
        drop(st);
        // The value's destructor runs outside the lock.
        drop(value);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::test_util::{poll_once, Counter, PollExt};

    #[test]
    fn send_then_receive() {
        let (tx, mut rx) = channel();
        let (w, count) = Counter::new();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(poll_once(&mut rx, &w).is_pending());
        assert!(!tx.is_closed());
        tx.send(5).unwrap();
        assert_eq!(count.get(), 1);
        assert_eq!(poll_once(&mut rx, &w).ready(), Some(Ok(5)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }

    #[test]
    fn dropped_sender_is_an_error() {
        let (tx, mut rx) = channel::<u8>();
        let (w, count) = Counter::new();
        assert!(poll_once(&mut rx, &w).is_pending());
        drop(tx);
        assert_eq!(count.get(), 1);
        assert_eq!(poll_once(&mut rx, &w).ready(), Some(Err(RecvError)));
    }

    #[test]
    fn dropped_receiver_refuses_the_value() {
        let (tx, rx) = channel();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send("x"), Err("x"));
    }

    #[test]
    fn value_sent_to_a_dropped_receiver_is_dropped() {
        let (tx, rx) = channel();
        let token = Arc::new(());
        tx.send(token.clone()).unwrap();
        drop(rx);
        assert_eq!(Arc::strong_count(&token), 1);
    }

    #[test]
    fn sender_is_send() {
        fn assert_send<S: Send + Sync>(_: &S) {}
        let (tx, rx) = channel::<String>();
        assert_send(&tx);
        assert_send(&rx);
    }
}
