//! A green thread is a task whose future resumes a coroutine.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use corosensei::{Coroutine, CoroutineResult};

use crate::coro::context::{self, Ctx, Enter};
use crate::coro::overflow;
use crate::coro::stack::PooledStack;
use crate::coro::suspend::Suspender;
use crate::coro::DEFAULT_STACK_SIZE;
use crate::error::{Error, Result};
use crate::task::{Task, TaskRef};

/// The payload a killed green thread unwinds with (gevent's `GreenletExit`). Private: user
/// code can catch it with `catch_unwind` but cannot make one.
struct GreenExit;

/// The future of a green thread's task.
pub(crate) struct GreenFuture<F, T: 'static> {
    state: State<F, T>,
}

enum State<F, T: 'static> {
    /// Spawned, not yet run: no stack yet, so a million spawned green threads cost a million
    /// closures, not a million stacks.
    Init {
        body: F,
        /// In bytes; 32 bits keep an unstarted green thread 8 bytes smaller (a million of
        /// them: 8 MB), and 4 GiB is more stack than anyone asks for.
        stack_size: u32,
    },
    /// Boxed so that the many green threads that are spawned but not yet started (or already
    /// finished) stay as small as a closure.
    Running(Box<Running<T>>),
    Done,
}

/// A started green thread.
struct Running<T: 'static> {
    coroutine: Coroutine<(), (), Result<T>, PooledStack>,
    /// The coroutine's yielder, once it has started.
    yielder: *const corosensei::Yielder<(), ()>,
    /// The stack's bounds.
    bottom: usize,
    top: usize,
    /// Its own task, for `getcurrent` in destructors run while it is killed by closing the
    /// loop (no task is current then), and its id for the overflow report. The task owns
    /// this future, so this is a cycle, broken when the task drops the future (on finishing,
    /// on being cancelled, or when its loop closes), as every task does.
    task: Option<TaskRef>,
    id: u64,
    /// The name given at spawn, for the overflow report.
    name: Option<Box<str>>,
    /// The kill's unwinding has started (see `Ctx::exiting`).
    exiting: Cell<bool>,
}

// The future is never pinned-projected: `body` is moved out whole and the coroutine's own
// stack, not this struct, holds its frames.
impl<F, T> Unpin for GreenFuture<F, T> {}

impl<F, T> GreenFuture<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn new(body: F, stack_size: usize) -> Self {
        GreenFuture {
            state: State::Init {
                body,
                stack_size: u32::try_from(stack_size).unwrap_or(u32::MAX),
            },
        }
    }

    /// Takes a stack and builds the coroutine.
    fn start(&mut self) -> std::io::Result<()> {
        let State::Init { body, stack_size } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Ok(());
        };
        let stack = PooledStack::new(stack_size as usize)?;
        let (bottom, top) = (stack.bottom(), stack.top());
        let task = crate::task::current_task();
        let (id, name) = match &task {
            Some(task) => (task.id(), task.custom_name().map(String::into_boxed_str)),
            None => (0, None),
        };
        let coroutine =
            Coroutine::with_stack(stack, move |yielder: &corosensei::Yielder<(), ()>, ()| {
                // Publish the yielder to the poll that resumed us; it keeps it for later polls.
                context::with_current("green thread start", |ctx| ctx.publish(yielder));
                match catch_unwind(AssertUnwindSafe(body)) {
                    Ok(value) => Ok(value),
                    Err(payload) if payload.is::<GreenExit>() => Err(Error::cancelled()),
                    Err(payload) => Err(Error::from_panic(payload)),
                }
            });
        self.state = State::Running(Box::new(Running {
            coroutine,
            yielder: std::ptr::null(),
            bottom,
            top,
            task,
            id,
            name,
            exiting: Cell::new(false),
        }));
        Ok(())
    }
}

impl<T: 'static> Running<T> {
    /// Resumes the coroutine with `waker` as the green thread's waker.
    fn resume(&mut self, waker: &Waker, teardown: bool) -> CoroutineResult<(), Result<T>> {
        let ctx = Ctx::new(
            waker,
            self.yielder,
            (self.bottom, self.top),
            teardown,
            &self.exiting,
            self.task.as_ref(),
        );
        let (name, name_len) = match &self.name {
            Some(n) => (n.as_ptr(), n.len()),
            None => (std::ptr::null(), 0),
        };
        let prev_running = overflow::set_running(overflow::Running {
            bottom: self.bottom,
            id: self.id,
            name,
            name_len,
        });
        let result = {
            let _enter = Enter::new(&ctx);
            self.coroutine.resume(())
        };
        overflow::set_running(prev_running);
        self.yielder = ctx.yielder();
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
        let State::Running(running) = &mut this.state else {
            return Poll::Ready(Err(Error::invalid_state("the green thread has finished")));
        };
        match running.resume(cx.waker(), false) {
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
        let State::Running(running) = &mut self.state else {
            return;
        };
        if !running.coroutine.started() || running.coroutine.done() {
            return;
        }
        if let CoroutineResult::Yield(()) = running.resume(Waker::noop(), true) {
            // A destructor waited on something that was not ready while the green thread was
            // being killed. Nothing will resume it again, and unwinding it once more would
            // panic inside that destructor (an abort); so its stack is leaked instead of
            // freed under live frames.
            tracing::warn!(
                target: "kettle::green",
                id = running.id,
                "a killed green thread waited in a destructor; its stack is leaked"
            );
            if let State::Running(running) = std::mem::replace(&mut self.state, State::Done) {
                std::mem::forget(running);
            }
        }
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
    enum Step<T> {
        Done(T),
        Suspend(Suspender<()>),
        Exit,
    }
    let mut future = std::pin::pin!(future);
    loop {
        let step = context::with_current(function, |ctx| {
            if ctx.teardown && (!ctx.exiting.get() || !std::thread::panicking()) {
                // Killed: unwind from this switch (gevent raises GreenletExit here), and again
                // at a later wait if the code caught the unwind and went on.
                ctx.exiting.set(true);
                return Step::Exit;
            }
            let mut cx = Context::from_waker(ctx.waker);
            if ctx.teardown {
                // A destructor waits while the kill unwinds: let it through if what it waits
                // for is ready. Its future may panic if the loop is gone (the loop is being
                // closed); a panic escaping a destructor now would abort the process, so it
                // counts as not ready, and the thread is set aside (see GreenFuture's Drop).
                return match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
                    Ok(Poll::Ready(value)) => Step::Done(value),
                    Ok(Poll::Pending) | Err(_) => Step::Suspend(ctx.suspender()),
                };
            }
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(value) => Step::Done(value),
                Poll::Pending => Step::Suspend(ctx.suspender()),
            }
        });
        match step {
            Step::Done(value) => return value,
            Step::Suspend(suspender) => suspender.suspend(function, ()),
            Step::Exit => resume_unwind(Box::new(GreenExit)),
        }
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
    ///
    /// A destructor may still wait on something that is ready at once; one that would have to
    /// suspend cannot be resumed any more, so the green thread's stack is set aside (leaked,
    /// with a `tracing` warning) rather than freed under it. Code that catches the unwind
    /// (`catch_unwind`) is unwound again at each of its later waits.
    pub fn kill(&self) -> bool {
        self.task.cancel()
    }

    /// Whether it has finished (returned, panicked or been killed): gevent's `dead`.
    pub fn dead(&self) -> bool {
        self.task.done()
    }

    /// Its name: the one given, or `Greenlet-<id>`.
    pub fn name(&self) -> String {
        self.green_ref().name()
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

    /// An untyped handle to the same green thread (what [`getcurrent`] returns inside it).
    pub fn green_ref(&self) -> GreenRef {
        GreenRef {
            task: self.task.task_ref(),
        }
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
        fmt::Display::fmt(&self.green_ref(), f)
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
    let task = context::with_current("kettle::green::getcurrent", |ctx| ctx.task.cloned())
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
        let task = crate::task::spawn(GreenFuture::new(body, self.stack_size));
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
    context::with_current("kettle::green::joinall", |_| ());
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
