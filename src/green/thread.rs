//! A green thread is a task whose future resumes a coroutine.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use corosensei::{Coroutine, CoroutineResult};

use super::context::{self, Ctx, Enter};
use crate::coro::overflow::{self, Running};
use crate::coro::stack::PooledStack;
use crate::coro::DEFAULT_STACK_SIZE;
use crate::error::{Error, Result};
use crate::task::{Task, TaskRef};

/// The payload a killed green thread unwinds with (gevent's `GreenletExit`). Private: user
/// code can catch it with `catch_unwind` but cannot make one.
struct GreenExit;

/// The future of a green thread's task.
pub(crate) struct GreenFuture<F, T: 'static> {
    state: State<F, T>,
    /// The coroutine's yielder, once it has started.
    yielder: *const corosensei::Yielder<(), ()>,
    /// The stack's bounds, once it has one.
    bottom: usize,
    top: usize,
    /// The task's id, for the overflow report.
    id: u64,
    /// The name given at spawn, for the overflow report.
    name: Option<Box<str>>,
    /// Whether it suspended in the middle of unwinding (see `Ctx::suspended_unwinding`).
    suspended_unwinding: bool,
    /// Its own task, once started, for `getcurrent` in destructors run while it is killed by
    /// closing the loop (no task is current then). The task owns this future, so this is a
    /// cycle, broken when the task finishes and drops the future, as every task does.
    task: Option<TaskRef>,
}

enum State<F, T: 'static> {
    /// Spawned, not yet run: no stack yet, so a million spawned green threads cost a million
    /// closures, not a million stacks.
    Init {
        body: F,
        stack_size: usize,
    },
    Running(Coroutine<(), (), Result<T>, PooledStack>),
    Done,
}

// The future is never pinned-projected: `body` is moved out whole and the coroutine's own
// stack, not this struct, holds its frames.
impl<F, T> Unpin for GreenFuture<F, T> {}

impl<F, T> GreenFuture<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn new(body: F, stack_size: usize, name: Option<Box<str>>) -> Self {
        GreenFuture {
            state: State::Init { body, stack_size },
            yielder: std::ptr::null(),
            bottom: 0,
            top: 0,
            id: 0,
            name,
            suspended_unwinding: false,
            task: None,
        }
    }

    /// Takes a stack and builds the coroutine.
    fn start(&mut self) -> std::io::Result<()> {
        let State::Init { body, stack_size } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Ok(());
        };
        let stack = PooledStack::new(stack_size)?;
        self.bottom = stack.bottom();
        self.top = stack.top();
        self.task = crate::task::current_task();
        self.id = self.task.as_ref().map_or(0, |t| t.id());
        let coroutine =
            Coroutine::with_stack(stack, move |yielder: &corosensei::Yielder<(), ()>, ()| {
                // Publish the yielder to the poll that resumed us; it keeps it for later polls.
                context::current("green thread start").yielder.set(yielder);
                match catch_unwind(AssertUnwindSafe(body)) {
                    Ok(value) => Ok(value),
                    Err(payload) if payload.is::<GreenExit>() => Err(Error::cancelled()),
                    Err(payload) => Err(Error::from_panic(payload)),
                }
            });
        self.state = State::Running(coroutine);
        Ok(())
    }

    /// Resumes the coroutine with `waker` as the green thread's waker.
    fn resume(&mut self, waker: &Waker, teardown: bool) -> CoroutineResult<(), Result<T>> {
        let State::Running(coroutine) = &mut self.state else {
            unreachable!("resume is only called on a running green thread")
        };
        let ctx = Ctx {
            waker,
            yielder: Cell::new(self.yielder),
            bottom: self.bottom,
            top: self.top,
            teardown,
            suspended_unwinding: Cell::new(self.suspended_unwinding),
            exiting: Cell::new(false),
            task: self.task.as_ref(),
        };
        let prev_running = overflow::set_running(running(self.bottom, self.id, &self.name));
        let result = {
            let _enter = Enter::new(&ctx);
            coroutine.resume(())
        };
        overflow::set_running(prev_running);
        self.yielder = ctx.yielder.get();
        self.suspended_unwinding = ctx.suspended_unwinding.get();
        result
    }
}

impl<F, T> Future for GreenFuture<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        if let State::Init { .. } = this.state {
            if let Err(e) = this.start() {
                return Poll::Ready(Err(Error::other(e)));
            }
        }
        if let State::Done = this.state {
            return Poll::Ready(Err(Error::invalid_state("the green thread has finished")));
        }
        match this.resume(cx.waker(), false) {
            CoroutineResult::Yield(()) => Poll::Pending,
            CoroutineResult::Return(result) => {
                // Dropping the coroutine gives its stack back to the pool right away.
                this.state = State::Done;
                Poll::Ready(result)
            }
        }
    }
}

impl<F, T: 'static> Drop for GreenFuture<F, T> {
    /// Killing: a suspended green thread is resumed once more with `teardown` set, so the
    /// wait it is suspended in unwinds and its destructors run on its own stack, with the
    /// green context in place.
    fn drop(&mut self) {
        let running = running(self.bottom, self.id, &self.name);
        let State::Running(coroutine) = &mut self.state else {
            return;
        };
        if !coroutine.started() || coroutine.done() {
            return;
        }
        let noop = Waker::noop();
        let ctx = Ctx {
            waker: noop,
            yielder: Cell::new(self.yielder),
            bottom: self.bottom,
            top: self.top,
            teardown: true,
            suspended_unwinding: Cell::new(self.suspended_unwinding),
            exiting: Cell::new(false),
            task: self.task.as_ref(),
        };
        // Its destructors run on its stack now: an overflow there is reported as its own.
        let prev_running = overflow::set_running(running);
        let result = {
            let _enter = Enter::new(&ctx);
            coroutine.resume(())
        };
        overflow::set_running(prev_running);
        if let CoroutineResult::Yield(()) = result {
            // A destructor waited on something that was not ready while the green thread was
            // being killed. Nothing will resume it again, and unwinding it once more would
            // panic inside that destructor (an abort); so its stack is leaked instead of
            // freed under live frames.
            tracing::warn!(
                target: "kettle::green",
                id = self.id,
                "a killed green thread waited in a destructor; its stack is leaked"
            );
            if let State::Running(coroutine) = std::mem::replace(&mut self.state, State::Done) {
                std::mem::forget(coroutine);
            }
        }
    }
}

/// What the overflow report needs to name the green thread with stack bottom `bottom`.
fn running(bottom: usize, id: u64, name: &Option<Box<str>>) -> Running {
    let (name, name_len) = match name {
        Some(n) => (n.as_ptr(), n.len()),
        None => (std::ptr::null(), 0),
    };
    Running {
        bottom,
        id,
        name,
        name_len,
    }
}

/// Runs `future` from green code: only the calling green thread is suspended until it
/// completes, while the loop runs every other task and green thread. This is the one bridge
/// from green code to everything async in Kettle (sockets, streams, queues, timeouts,
/// `run_in_executor`, ...).
///
/// ```
/// use kettle::green;
/// use std::time::Duration;
///
/// let n = green::run(|| {
///     let task = kettle::spawn(async { kettle::sleep(Duration::from_millis(5)).await; 20 });
///     green::wait(task).unwrap() + 22
/// });
/// assert_eq!(n.unwrap(), 42);
/// ```
///
/// # Panics
///
/// Outside a green thread (from async code, a plain thread, or a generator or greenlet
/// running inside a green thread), with a message naming the function.
pub fn wait<F: Future>(future: F) -> F::Output {
    wait_named("kettle::green::wait", future)
}

/// [`wait`], naming `function` if called outside a green thread.
pub(crate) fn wait_named<F: Future>(function: &str, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    loop {
        let (waker, yielder, teardown) = {
            let ctx = context::current(function);
            // Whether *this green thread's* stack is unwinding. `thread::panicking()` alone
            // cannot tell: it also holds when the loop is dropped by a panic on the loop's own
            // stack, and then the green threads must still be unwound.
            let unwinding =
                ctx.suspended_unwinding.get() || (ctx.exiting.get() && std::thread::panicking());
            if ctx.teardown && !unwinding {
                // Killed: unwind from this switch (gevent raises GreenletExit here). While
                // already unwinding, a destructor's wait is let through instead (unwinding
                // again from inside a destructor would abort).
                ctx.exiting.set(true);
                resume_unwind(Box::new(GreenExit));
            }
            // Normally polled, `panicking()` is about this green thread's own stack, unless
            // another coroutine is suspended mid-unwind too; then it errs towards letting a
            // later kill's wait through (a leak), never towards unwinding twice (an abort).
            if !ctx.teardown {
                ctx.suspended_unwinding.set(std::thread::panicking());
            }
            (ctx.waker as *const Waker, ctx.yielder.get(), ctx.teardown)
        };
        // SAFETY: the waker lives in the poll frame that resumed us, which stays on the loop's
        // stack until we suspend below; it is not used after that.
        let waker = unsafe { &*waker };
        let mut cx = Context::from_waker(waker);
        let polled = if teardown {
            // A destructor's wait while the green thread is being killed: only a future that
            // is ready now helps (nothing resumes the green thread again). The loop may be
            // closing, where some futures panic when polled (`kettle::sleep`), and a panic
            // leaving a destructor during unwinding aborts the process: count it as not ready.
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)))
                .unwrap_or(Poll::Pending)
        } else {
            future.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(value) = polled {
            return value;
        }
        // SAFETY: the yielder sits at the base of this green thread's stack for its whole
        // life, and we are running on that stack (checked by `current`).
        unsafe { (*yielder).suspend(()) };
    }
}

/// A handle to a green thread: await it from async code, [`join`](Self::join) it from green
/// code, [`kill`](Self::kill) it from anywhere on its loop.
///
/// Dropping the handle detaches the green thread; it runs on.
pub struct GreenThread<T: 'static> {
    task: Task<Result<T>>,
}

impl<T: 'static> GreenThread<T> {
    /// Waits for the green thread to finish and returns its value, suspending only the calling
    /// green thread (gevent's `g.join()` followed by `g.value`). A green thread that panicked
    /// gives a [`Panicked`](crate::ErrorKind::Panicked) error, a killed one
    /// [`Cancelled`](crate::ErrorKind::Cancelled).
    ///
    /// # Panics
    ///
    /// Outside a green thread; async code awaits the handle instead.
    pub fn join(self) -> Result<T> {
        wait_named("kettle::green::GreenThread::join", self)
    }

    /// Kills the green thread: at its next switch (the wait, sleep or I/O it is suspended in,
    /// or the next one it makes) its stack unwinds, running its destructors, and its joiners
    /// get a [`Cancelled`](crate::ErrorKind::Cancelled) error. One that has not started yet
    /// never starts. Returns false if it had already finished. Does not wait for it: join it
    /// for that.
    pub fn kill(&self) -> bool {
        self.task.cancel()
    }

    /// Whether it has finished (returned, panicked or been killed): gevent's `dead`.
    pub fn dead(&self) -> bool {
        self.task.done()
    }

    /// Its name: the one given, or `Greenlet-<id>`.
    pub fn name(&self) -> String {
        self.task
            .custom_name()
            .unwrap_or_else(|| format!("Greenlet-{}", self.task.id()))
    }

    /// Renames it.
    pub fn set_name(&self, name: impl Into<String>) {
        self.task.set_name(name);
    }

    /// Its task's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.task.id()
    }

    /// The task it runs as.
    pub fn task_ref(&self) -> TaskRef {
        self.task.task_ref()
    }
}

impl<T: 'static> Future for GreenThread<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match Pin::new(&mut self.task).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: 'static> fmt::Display for GreenThread<T> {
    /// gevent's form: `<Greenlet at 0x7f..: NAME>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Greenlet at {:#x}: {}>", self.task.addr(), self.name())
    }
}

impl<T: 'static> fmt::Debug for GreenThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The green thread that is running: what [`getcurrent`] returns.
#[derive(Clone)]
pub struct GreenRef {
    task: TaskRef,
}

impl GreenRef {
    /// Its name: the one given, or `Greenlet-<id>`.
    pub fn name(&self) -> String {
        self.task
            .custom_name()
            .unwrap_or_else(|| format!("Greenlet-{}", self.task.id()))
    }

    /// Renames it.
    pub fn set_name(&self, name: impl Into<String>) {
        self.task.set_name(name);
    }

    /// Its task's id.
    pub fn id(&self) -> u64 {
        self.task.id()
    }

    /// Kills it at its next switch (see [`GreenThread::kill`]).
    pub fn kill(&self) -> bool {
        self.task.cancel()
    }

    /// The task it runs as.
    pub fn task_ref(&self) -> TaskRef {
        self.task.clone()
    }
}

impl fmt::Display for GreenRef {
    /// gevent's form: `<Greenlet at 0x7f..: NAME>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Greenlet at {:#x}: {}>", self.task.addr(), self.name())
    }
}

impl fmt::Debug for GreenRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for GreenRef {
    fn eq(&self, other: &GreenRef) -> bool {
        self.task == other.task
    }
}

impl Eq for GreenRef {}

/// The green thread running this code (gevent's `getcurrent()`).
///
/// # Panics
///
/// Outside a green thread.
pub fn getcurrent() -> GreenRef {
    let ctx = context::current("kettle::green::getcurrent");
    let task = ctx
        .task
        .cloned()
        .expect("a started green thread knows its task");
    GreenRef { task }
}

/// Options for a green thread: a name and a stack size.
///
/// ```
/// use kettle::green;
///
/// green::run(|| {
///     let g = green::Builder::new().name("f(5)").stack_size(64 * 1024).spawn(|| 5);
///     assert_eq!(g.name(), "f(5)");
///     assert_eq!(g.join().unwrap(), 5);
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// No name, [`DEFAULT_STACK_SIZE`](crate::green::DEFAULT_STACK_SIZE).
    pub fn new() -> Builder {
        Builder {
            name: None,
            stack_size: DEFAULT_STACK_SIZE,
        }
    }

    /// The name shown by `Display`, [`GreenThread::name`] and stack-overflow reports.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The usable stack size in bytes (rounded up to whole pages). Only the pages the green
    /// thread touches use memory, so a large size costs address space, not memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Spawns `body` as a green thread on the running loop. It starts when the loop gets to it
    /// (spawning never switches). If no stack can be had when it starts, it finishes with an
    /// error saying which limit was hit.
    ///
    /// # Panics
    ///
    /// With no loop running on this thread.
    #[track_caller]
    pub fn spawn<F, T>(self, body: F) -> GreenThread<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let name = self.name.clone().map(String::into_boxed_str);
        let task = crate::task::spawn(GreenFuture::new(body, self.stack_size, name));
        if let Some(name) = self.name {
            task.set_name(name);
        }
        GreenThread { task }
    }
}

/// Spawns `body` as a green thread of the running loop (gevent's `spawn`); see [`Builder`]
/// for a name or stack size.
///
/// ```
/// use kettle::green;
/// use std::time::Duration;
///
/// // Three green threads sleeping 50 ms each take 50 ms in all, not 150.
/// let elapsed = green::run(|| {
///     let start = std::time::Instant::now();
///     let gs: Vec<_> = (0..3).map(|i| green::spawn(move || {
///         green::sleep(Duration::from_millis(50));
///         i
///     })).collect();
///     let sum: u32 = green::joinall(gs).into_iter().map(|r| r.unwrap()).sum();
///     assert_eq!(sum, 3);
///     start.elapsed()
/// }).unwrap();
/// assert!(elapsed < Duration::from_millis(140));
/// ```
#[track_caller]
pub fn spawn<F, T>(body: F) -> GreenThread<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new().spawn(body)
}

/// Waits for every green thread in turn and returns their results in order (gevent's
/// `joinall`).
///
/// # Panics
///
/// Outside a green thread.
pub fn joinall<T: 'static>(threads: impl IntoIterator<Item = GreenThread<T>>) -> Vec<Result<T>> {
    // Checked up front, so that an empty list outside a green thread panics too.
    context::current("kettle::green::joinall");
    threads
        .into_iter()
        .map(|g| wait_named("kettle::green::joinall", g))
        .collect()
}

/// Runs `body` as a green thread on a new event loop on this thread and returns its result
/// when it finishes: the entry point of a gevent-style program.
///
/// # Panics
///
/// If an event loop is already running on this thread.
pub fn run<F, T>(body: F) -> Result<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    crate::run(async move { spawn(body).await })
}

/// Suspends the calling green thread for `duration` (gevent's `sleep`); `sleep(ZERO)` lets
/// every other ready green thread and task run first, like `gevent.sleep(0)`.
///
/// # Panics
///
/// Outside a green thread.
pub fn sleep(duration: std::time::Duration) {
    if duration.is_zero() {
        wait_named("kettle::green::sleep", crate::task::yield_now());
    } else {
        wait_named("kettle::green::sleep", crate::time::sleep(duration));
    }
}

/// Lets every other ready green thread and task run before continuing.
///
/// # Panics
///
/// Outside a green thread.
pub fn yield_now() {
    wait_named("kettle::green::yield_now", crate::task::yield_now());
}

/// Whether this code runs on a green thread (on its own stack, not in a generator or greenlet
/// inside one): the green functions work exactly where this is true.
pub fn is_green() -> bool {
    context::in_green_thread()
}
