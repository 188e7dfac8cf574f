//! Tasks: futures the loop runs concurrently (asyncio's `Task`).
//!
//! [`spawn`] (alias [`create_task`]) schedules a future on the running loop and returns a
//! [`Task`] handle. The handle is itself a future resolving to the task's output, or to an
//! [`Error`] when the task was cancelled or panicked. Futures need not be `Send`: a loop is one
//! thread.

mod cell;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::error::{Error, Result};
use crate::runtime::context;

pub(crate) use cell::{Header, Output, Runnable, TaskCell};

/// Spawns `future` as a task on the event loop running on this thread and returns its handle
/// (asyncio's `create_task`).
///
/// The task starts at the loop's next turn, not inside this call. Dropping the returned
/// [`Task`] **detaches** the task: it keeps running, its result is discarded. Use
/// [`Task::cancel`] to stop it.
///
/// # Panics
/// When no event loop is running on this thread; use [`EventLoop::create_task`] to schedule a
/// task on a loop that is not running yet.
///
/// [`EventLoop::create_task`]: crate::EventLoop::create_task
///
/// ```
/// let sum = kettle::run(async {
///     let a = kettle::spawn(async { 20 });
///     let b = kettle::spawn(async { 22 });
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(sum, 42);
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match context::with_current(|core| core.spawn(future)) {
        Some(task) => task,
        None => panic!(
            "kettle::spawn called with no event loop running on this thread; \
             call it from inside kettle::run / EventLoop::run_until_complete, \
             or use EventLoop::create_task"
        ),
    }
}

/// asyncio's name for [`spawn`].
#[track_caller]
pub fn create_task<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn(future)
}

/// The task whose future is being polled right now, if any (asyncio's `current_task()`).
///
/// The future given to `run_until_complete` is not a task, so inside it this returns `None`.
pub fn current_task() -> Option<TaskRef> {
    context::with_current(|core| core.current_task()).flatten()
}

/// Every task of the running loop that has not finished yet (asyncio's `all_tasks()`).
/// Empty when no loop is running on this thread.
pub fn all_tasks() -> Vec<TaskRef> {
    context::with_current(|core| core.all_tasks()).unwrap_or_default()
}

/// Suspends the current task once, letting every other ready task and callback run first
/// (asyncio's `await asyncio.sleep(0)`).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// kettle::run(async move {
///     let l2 = l.clone();
///     let t = kettle::spawn(async move { l2.borrow_mut().push("task") });
///     l.borrow_mut().push("before");
///     kettle::yield_now().await; // the task runs here
///     l.borrow_mut().push("after");
///     t.await.unwrap();
/// });
/// assert_eq!(*log.borrow(), ["before", "task", "after"]);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Re-queue at the back of the ready FIFO: everything already ready runs first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A handle to a spawned task; awaiting it yields the task's output.
///
/// `Task<T>` resolves to `Ok(output)`, or to an [`Error`] that is
/// [`Cancelled`](crate::ErrorKind::Cancelled) if the task was cancelled, or
/// [`Panicked`](crate::ErrorKind::Panicked) (carrying the panic message) if its future panicked.
/// A panic never takes the loop down.
///
/// Dropping the handle detaches the task; it does not cancel it.
pub struct Task<T> {
    raw: Rc<dyn Output<T>>,
}

impl<T: 'static> Task<T> {
    pub(crate) fn from_raw(raw: Rc<dyn Output<T>>) -> Task<T> {
        Task { raw }
    }

    fn header(&self) -> &Header {
        self.raw.header()
    }

    /// Requests cancellation: the loop drops the task's future at its next suspension point,
    /// and awaiting the task then yields a `Cancelled` error. Returns false when the task had
    /// already finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// kettle::run(async {
    ///     let t = kettle::spawn(kettle::sleep(Duration::from_secs(3600)));
    ///     assert!(t.cancel());
    ///     assert!(t.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) -> bool {
        self.header().cancel()
    }

    /// True once the task has finished: returned, panicked or been cancelled.
    pub fn done(&self) -> bool {
        self.header().is_done()
    }

    /// True when the task finished by being cancelled.
    pub fn cancelled(&self) -> bool {
        self.header().is_cancelled()
    }

    /// The task's result without waiting (asyncio's `Task.result()`): an `InvalidState` error
    /// when it is not done yet, the cancellation or panic error, or a clone of the output.
    /// After the handle has been awaited the output is gone and this is `InvalidState` too.
    pub fn result(&self) -> Result<T>
    where
        T: Clone,
    {
        if !self.done() {
            return Err(Error::invalid_state(
                "result() called on a task that is not done",
            ));
        }
        let mut out = None;
        self.raw.peek_output(&mut |r| out = Some(r.clone()));
        out.unwrap_or_else(|| Err(Error::invalid_state("the task's result was already taken")))
    }

    /// The error the task finished with (cancelled or panicked), `None` if it returned normally
    /// or is not done (asyncio's `Task.exception()`).
    pub fn error(&self) -> Option<Error> {
        self.header().error()
    }

    /// The task's name: `Task-<id>` unless [`set_name`](Self::set_name) was called.
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// Renames the task (shown in debug-mode warnings and `Debug` output).
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().set_name(name.into())
    }

    /// A process-unique id.
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// Runs `callback` with this task once it is done. Like every done-callback in Kettle it is
    /// scheduled through the loop's ready queue, never called inline, even when the task is
    /// already done.
    pub fn add_done_callback(&self, callback: impl FnOnce(&Task<T>) + 'static) {
        let me = Task {
            raw: self.raw.clone(),
        };
        let cb: Box<dyn FnOnce()> = Box::new(move || callback(&me));
        if let Some(cb) = self.header().add_callback(cb) {
            crate::runtime::schedule_callback_for(self.header(), cb);
        }
    }

    /// An untyped handle to the same task.
    pub fn task_ref(&self) -> TaskRef {
        let raw: Rc<dyn Output<T>> = self.raw.clone();
        TaskRef { raw }
    }
}

impl<T: 'static> Future for Task<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let header = self.raw.header();
        if header.is_done() {
            let out = self.raw.take_output().unwrap_or_else(|| {
                Err(Error::invalid_state("the task's result was already taken"))
            });
            return Poll::Ready(out);
        }
        header.set_join_waker(cx.waker());
        Poll::Pending
    }
}

impl<T: 'static> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.task_ref().fmt(f)
    }
}

/// An untyped handle to a task, as returned by [`current_task`] and [`all_tasks`].
#[derive(Clone)]
pub struct TaskRef {
    raw: Rc<dyn Runnable>,
}

impl TaskRef {
    pub(crate) fn new(raw: Rc<dyn Runnable>) -> TaskRef {
        TaskRef { raw }
    }

    /// The name given with `set_name`, if any.
    pub(crate) fn custom_name(&self) -> Option<String> {
        self.raw.header().custom_name()
    }

    /// The address of the task's allocation: its identity in printed forms.
    pub(crate) fn addr(&self) -> usize {
        Rc::as_ptr(&self.raw) as *const () as usize
    }

    /// See [`Task::cancel`].
    pub fn cancel(&self) -> bool {
        self.raw.header().cancel()
    }

    /// See [`Task::done`].
    pub fn done(&self) -> bool {
        self.raw.header().is_done()
    }

    /// See [`Task::cancelled`].
    pub fn cancelled(&self) -> bool {
        self.raw.header().is_cancelled()
    }

    /// See [`Task::name`].
    pub fn name(&self) -> String {
        self.raw.header().name()
    }

    /// See [`Task::set_name`].
    pub fn set_name(&self, name: impl Into<String>) {
        self.raw.header().set_name(name.into())
    }

    /// See [`Task::id`].
    pub fn id(&self) -> u64 {
        self.raw.header().id
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.cancelled() {
            "cancelled"
        } else if self.done() {
            "finished"
        } else {
            "pending"
        };
        write!(f, "<Task {} {}>", self.name(), state)
    }
}
