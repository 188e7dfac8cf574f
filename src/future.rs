//! `kettle::Future<T>`: asyncio's `Future`, a result that some code sets and others await.
//!
//! Seed 004 calls it a callback manager: it starts pending, `set_result` (or `set_error`, or
//! `cancel`) completes it once, and every done-callback then runs, always through the loop's
//! ready queue, never inline, so completing a future can never recurse into its callbacks.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::runtime::context;
use crate::runtime::core::{CallbackCell, Core};

/// A value that will be set later, awaitable by any number of tasks (asyncio's `Future`).
///
/// `Future<T>` is a cheap clonable handle; awaiting a clone yields a clone of the result, so
/// every awaiter sees it (hence `T: Clone`). For a value that moves to exactly one receiver,
/// use [`sync::oneshot`](crate::sync::oneshot).
///
/// ```
/// kettle::run(async {
///     let fut = kettle::Future::new();
///     let setter = fut.clone();
///     kettle::get_running_loop().call_soon(move || setter.set_result(42).unwrap());
///     assert_eq!(fut.clone().await.unwrap(), 42);
///     assert!(fut.done());
///     assert!(fut.set_result(0).unwrap_err().kind() == kettle::ErrorKind::InvalidState);
/// });
/// ```
pub struct Future<T> {
    inner: Rc<RefCell<State<T>>>,
}

type Callback<T> = Box<dyn FnOnce(&Future<T>)>;

struct State<T> {
    /// `None` while pending; the result (or error, or cancellation) once done.
    outcome: Option<Result<T>>,
    /// Awaiting tasks.
    waiters: Vec<Waker>,
    callbacks: Vec<Callback<T>>,
    /// The loop whose ready queue runs the callbacks.
    owner: Weak<Core>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
        }
    }
}

impl<T: 'static> Default for Future<T> {
    fn default() -> Self {
        Future::new()
    }
}

impl<T: 'static> Future<T> {
    /// A pending future bound to the loop running on this thread (if none runs yet, to the
    /// loop that is running when it completes).
    pub fn new() -> Future<T> {
        let owner = context::with_current(|core| core.weak()).unwrap_or_default();
        Future {
            inner: Rc::new(RefCell::new(State {
                outcome: None,
                waiters: Vec::new(),
                callbacks: Vec::new(),
                owner,
            })),
        }
    }

    /// True once a result, an error or a cancellation is set.
    pub fn done(&self) -> bool {
        self.inner.borrow().outcome.is_some()
    }

    /// True if the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(&self.inner.borrow().outcome, Some(Err(e)) if e.is_cancelled())
    }

    /// Completes the future with `value`. An `InvalidState` error if it is already done.
    pub fn set_result(&self, value: T) -> Result<()> {
        self.complete(Ok(value))
    }

    /// Completes the future with an error (asyncio's `set_exception`). An `InvalidState` error
    /// if it is already done.
    pub fn set_error(&self, error: Error) -> Result<()> {
        self.complete(Err(error))
    }

    /// Cancels the future: awaiting it then yields a `Cancelled` error. False if already done.
    pub fn cancel(&self) -> bool {
        self.complete(Err(Error::cancelled())).is_ok()
    }

    /// The error the future completed with, if any (`None` while pending or on success).
    pub fn error(&self) -> Option<Error> {
        match &self.inner.borrow().outcome {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// The result without waiting: an `InvalidState` error while pending, otherwise the result
    /// or the error it completed with.
    pub fn result(&self) -> Result<T>
    where
        T: Clone,
    {
        match &self.inner.borrow().outcome {
            None => Err(Error::invalid_state(
                "result() called on a future that is not done",
            )),
            Some(r) => r.clone(),
        }
    }

    /// Runs `callback` once the future is done, through the loop's ready queue (also when it is
    /// already done: then it is scheduled right away, still not called inline).
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + 'static) {
        let done = {
            let mut st = self.inner.borrow_mut();
            if st.outcome.is_none() {
                st.callbacks.push(Box::new(callback));
                return;
            }
            Box::new(callback) as Callback<T>
        };
        self.schedule(vec![done]);
    }

    fn complete(&self, outcome: Result<T>) -> Result<()> {
        let (waiters, callbacks) = {
            let mut st = self.inner.borrow_mut();
            if st.outcome.is_some() {
                return Err(Error::invalid_state("the future is already done"));
            }
            st.outcome = Some(outcome);
            (
                std::mem::take(&mut st.waiters),
                std::mem::take(&mut st.callbacks),
            )
        };
        for w in waiters {
            w.wake();
        }
        self.schedule(callbacks);
        Ok(())
    }

    /// Queues callbacks on the owning loop (or the running one).
    fn schedule(&self, callbacks: Vec<Callback<T>>) {
        if callbacks.is_empty() {
            return;
        }
        let owner = self.inner.borrow().owner.upgrade();
        let core = owner.or_else(|| context::with_current(|c| c.weak().upgrade()).flatten());
        let Some(core) = core else {
            tracing::warn!(
                "kettle::Future completed with no event loop to run its {} done-callback(s); they are dropped",
                callbacks.len()
            );
            return;
        };
        for cb in callbacks {
            let me = self.clone();
            core.push_callback(CallbackCell::new(
                Box::new(move || cb(&me)),
                "Future done-callback",
            ));
        }
    }
}

impl<T: Clone + 'static> std::future::Future for Future<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut st = self.inner.borrow_mut();
        if let Some(r) = &st.outcome {
            return Poll::Ready(r.clone());
        }
        if !st.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            st.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.inner.borrow().outcome {
            None => "pending",
            Some(Ok(_)) => "finished",
            Some(Err(e)) if e.is_cancelled() => "cancelled",
            Some(Err(_)) => "failed",
        };
        write!(f, "<Future {state}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn callbacks_are_deferred_through_the_ready_queue() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        crate::run(async move {
            let fut: Future<i32> = Future::new();
            let l2 = l.clone();
            fut.add_done_callback(move |f| l2.borrow_mut().push(format!("cb {:?}", f.result())));
            fut.set_result(7).unwrap();
            l.borrow_mut().push("after set_result".to_string());
            crate::yield_now().await;
            l.borrow_mut().push("after yield".to_string());
            // Already done: still scheduled, not inline.
            let l3 = l.clone();
            fut.add_done_callback(move |_| l3.borrow_mut().push("late cb".to_string()));
            l.borrow_mut().push("after late add".to_string());
            crate::yield_now().await;
        });
        assert_eq!(
            *log.borrow(),
            [
                "after set_result",
                "cb Ok(7)",
                "after yield",
                "after late add",
                "late cb"
            ]
        );
    }

    #[test]
    fn errors_and_cancel() {
        crate::run(async {
            let f: Future<u8> = Future::new();
            assert_eq!(
                f.result().unwrap_err().kind(),
                crate::ErrorKind::InvalidState
            );
            f.set_error(Error::other("bad")).unwrap();
            assert_eq!(f.clone().await.unwrap_err().to_string(), "bad");
            assert!(!f.cancel());
            let g: Future<u8> = Future::new();
            let waiter = {
                let g = g.clone();
                crate::spawn(g)
            };
            crate::yield_now().await;
            assert!(g.cancel());
            assert!(g.cancelled());
            assert!(waiter.await.unwrap().unwrap_err().is_cancelled());
        });
    }
}
