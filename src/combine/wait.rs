//! `wait`: block until some or all tasks are done, then split them into done and pending.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::task::Task;
use crate::time::{sleep, Sleep};

/// When [`wait`] returns (asyncio's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task finishes or is cancelled.
    FirstCompleted,
    /// As soon as any task finishes with an error (it panicked), or when all are done.
    /// Cancellation does not count, as in asyncio.
    FirstException,
    /// When every task has finished or been cancelled.
    AllCompleted,
}

/// Waits for `tasks` as `return_when` says, or until `timeout` passes, then returns
/// `(done, pending)` (asyncio's `wait`). Tasks are never cancelled by `wait`: the pending ones
/// come back still running.
///
/// ```
/// use std::time::Duration;
/// use kettle::ReturnWhen;
/// kettle::run(async {
///     let fast = kettle::spawn(async { kettle::sleep(Duration::from_millis(5)).await; 1 });
///     let slow = kettle::spawn(async { kettle::sleep(Duration::from_secs(5)).await; 2 });
///     let (done, pending) = kettle::wait(vec![fast, slow], ReturnWhen::FirstCompleted, None).await;
///     assert_eq!((done.len(), pending.len()), (1, 1));
///     pending[0].cancel();
/// });
/// ```
pub fn wait<T: 'static>(
    tasks: impl IntoIterator<Item = Task<T>>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> Wait<T> {
    let tasks: Vec<Task<T>> = tasks.into_iter().collect();
    let state = Rc::new(WaitState {
        done: Cell::new(0),
        failed: Cell::new(false),
        waker: Cell::new(None),
    });
    for t in &tasks {
        let st = state.clone();
        // Done-callbacks are O(1) per completion and run through the ready queue, so waiting on
        // N tasks costs N callbacks, not N polls per wake.
        t.add_done_callback(move |t| {
            st.done.set(st.done.get() + 1);
            if t.error().is_some_and(|e| e.is_panic()) {
                st.failed.set(true);
            }
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        });
    }
    Wait {
        tasks: Some(tasks),
        state,
        return_when,
        timer: timeout.map(sleep),
    }
}

struct WaitState {
    /// Tasks whose done-callback has run.
    done: Cell<usize>,
    /// Some task panicked.
    failed: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

/// The future returned by [`wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<T> {
    tasks: Option<Vec<Task<T>>>,
    state: Rc<WaitState>,
    return_when: ReturnWhen,
    timer: Option<Sleep>,
}

impl<T: 'static> Future for Wait<T> {
    type Output = (Vec<Task<T>>, Vec<Task<T>>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(tasks) = this.tasks.as_ref() else {
            panic!("Wait polled after completion");
        };
        let n = tasks.len();
        let done = this.state.done.get();
        let finished = match this.return_when {
            _ if done >= n => true,
            ReturnWhen::FirstCompleted => done > 0,
            ReturnWhen::FirstException => this.state.failed.get(),
            ReturnWhen::AllCompleted => false,
        };
        let timed_out = !finished
            && this
                .timer
                .as_mut()
                .is_some_and(|s| Pin::new(s).poll(cx).is_ready());
        if finished || timed_out {
            let tasks = this.tasks.take().unwrap_or_default();
            let (done, pending) = tasks.into_iter().partition(|t| t.done());
            return Poll::Ready((done, pending));
        }
        this.state.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}
