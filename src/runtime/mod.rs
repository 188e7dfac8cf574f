//! The event loop (asyncio's `AbstractEventLoop`) and the functions that reach it.
//!
//! One [`EventLoop`] runs on one thread. It owns a ready queue of tasks and callbacks, a timer
//! min-heap and an epoll selector; see `ARCHITECTURE.md` for the iteration order. Multi-core
//! programs run one loop per core.

pub(crate) mod context;
pub(crate) mod core;
mod group;
mod handle;
pub(crate) mod reactor;
pub(crate) mod registry;
pub(crate) mod waker;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use self::core::{CallbackCell, Core, TimerAction};
pub use self::group::{worker_index, LoopGroup, LoopGroupBuilder};
pub use self::handle::{Handle, LoopHandle, TimerHandle};
use self::waker::{WakeTarget, MAIN_SLOT};
use crate::error::{Error, Result};
use crate::task::{Header, Task};
use crate::time::clock;

/// Default for [`Builder::slow_callback_duration`], as in asyncio.
pub const DEFAULT_SLOW_CALLBACK_DURATION: Duration = Duration::from_millis(100);

/// Runs `future` to completion on a new event loop and returns its output (asyncio's
/// `asyncio.run`). Tasks still pending when `future` finishes are cancelled, and the loop is
/// closed.
///
/// Debug mode is on when the environment variable `KETTLE_DEBUG` is `1`.
///
/// # Panics
/// If the loop cannot be created (the process is out of file descriptors), if called while
/// another loop runs on this thread, or if `future` itself panics.
///
/// ```
/// use std::time::Duration;
/// let answer = kettle::run(async {
///     kettle::sleep(Duration::from_millis(10)).await;
///     42
/// });
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn run<F: Future>(future: F) -> F::Output {
    EventLoop::builder().run(future)
}

/// The loop running on this thread (asyncio's `get_running_loop()`).
///
/// # Panics
/// When no loop is running on this thread; see [`try_get_running_loop`].
#[track_caller]
pub fn get_running_loop() -> EventLoop {
    match try_get_running_loop() {
        Some(lp) => lp,
        None => panic!("kettle::get_running_loop: no event loop is running on this thread"),
    }
}

/// The loop running on this thread, or `None`.
pub fn try_get_running_loop() -> Option<EventLoop> {
    context::with_current(|core| core.weak().upgrade())
        .flatten()
        .map(|core| EventLoop { core })
}

/// Schedules `cb` on the loop that owns `header`'s task (used for done-callbacks registered
/// after the task finished). Dropped if that loop is closed.
pub(crate) fn schedule_callback_for(header: &Header, cb: Box<dyn FnOnce()>) {
    let id = header.target.get().loop_id;
    let cell = CallbackCell::new(cb, "task done-callback");
    let pushed = context::with_current(|core| {
        if core.id() == id {
            core.push_callback(cell.clone());
            true
        } else {
            false
        }
    });
    if pushed != Some(true) {
        if let Some(core) = self::core::loop_on_this_thread(id) {
            core.push_callback(cell);
        }
    }
}

/// Configures an [`EventLoop`] before creating it.
///
/// ```
/// use std::time::Duration;
/// let lp = kettle::EventLoop::builder()
///     .debug(true)
///     .slow_callback_duration(Duration::from_millis(50))
///     .build()
///     .unwrap();
/// assert!(lp.debug());
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    debug: Option<bool>,
    slow_callback_duration: Duration,
}

impl Builder {
    /// Turns debug mode on or off (default: on when `KETTLE_DEBUG=1`). In debug mode every task
    /// poll and callback is timed, and one that holds the loop for at least
    /// [`slow_callback_duration`](Self::slow_callback_duration) is logged as a warning through
    /// `tracing`, naming the task or callback.
    pub fn debug(mut self, on: bool) -> Builder {
        self.debug = Some(on);
        self
    }

    /// The threshold for debug-mode slow-step warnings (default 100 ms).
    pub fn slow_callback_duration(mut self, d: Duration) -> Builder {
        self.slow_callback_duration = d;
        self
    }

    /// Like [`kettle::run`](crate::run), on a loop with this configuration: creates the loop,
    /// runs `future` to completion, cancels the tasks still pending and closes the loop.
    ///
    /// # Panics
    /// As [`kettle::run`](crate::run).
    #[track_caller]
    pub fn run<F: Future>(self, future: F) -> F::Output {
        let lp = match self.build() {
            Ok(lp) => lp,
            Err(e) => panic!("kettle could not create an event loop: {e}"),
        };
        let out = lp.run_until_complete(future);
        lp.core.abort_all(false);
        let _ = lp.close();
        out
    }

    /// Creates the loop (an epoll instance and an eventfd).
    pub fn build(self) -> io::Result<EventLoop> {
        let debug = self.debug.unwrap_or_else(|| {
            std::env::var("KETTLE_DEBUG").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        });
        Ok(EventLoop {
            core: Core::new(debug, self.slow_callback_duration)?,
        })
    }
}

/// An event loop: runs tasks, callbacks and timers on the current thread.
///
/// `EventLoop` is a cheap, clonable reference (`Rc`): [`get_running_loop`] hands out another
/// reference to the same loop. The loop is closed by [`close`](Self::close) or when the last
/// reference is dropped; pending tasks are then destroyed with a warning.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let lp = kettle::EventLoop::new().unwrap();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// lp.call_soon(move || l.borrow_mut().push("soon"));
/// let l = log.clone();
/// lp.run_until_complete(async move { l.borrow_mut().push("main") });
/// assert_eq!(*log.borrow(), ["soon", "main"]);
/// lp.close().unwrap();
/// ```
#[derive(Clone)]
pub struct EventLoop {
    core: Rc<Core>,
}

impl EventLoop {
    /// Creates a loop with default settings (asyncio's `new_event_loop()`).
    pub fn new() -> io::Result<EventLoop> {
        EventLoop::builder().build()
    }

    /// A [`Builder`] to configure debug mode.
    pub fn builder() -> Builder {
        Builder {
            debug: None,
            slow_callback_duration: DEFAULT_SLOW_CALLBACK_DURATION,
        }
    }

    /// Runs the loop until `future` completes and returns its output. The future need not be
    /// `'static` or a task; it is polled in place, in FIFO turn with the loop's tasks. Tasks it
    /// spawned that are still pending stay in the loop for the next run.
    ///
    /// # Panics
    /// If the loop is closed or already running, if another loop runs on this thread, if
    /// [`stop`](Self::stop) is called before `future` completes (asyncio raises there too), or
    /// if `future` panics.
    #[track_caller]
    pub fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        let core = &*self.core;
        let _guard = match core.start_running() {
            Ok(g) => g,
            Err(e) => panic!("run_until_complete: {e}"),
        };
        let generation = core.begin_main();
        let waker = WakeTarget {
            loop_id: core.id(),
            generation,
            slot: MAIN_SLOT,
        }
        .into_waker();
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let mut output = None;
        let completed = core.run_loop(&mut || match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => {
                output = Some(v);
                true
            }
            Poll::Pending => false,
        });
        core.end_main();
        match (completed, output) {
            (true, Some(v)) => v,
            _ => {
                panic!("run_until_complete: the event loop was stopped before the future completed")
            }
        }
    }

    /// Runs the loop until [`stop`](Self::stop) is called (asyncio's `run_forever`). Errors if
    /// the loop is closed or already running.
    pub fn run_forever(&self) -> Result<()> {
        let core = &*self.core;
        let _guard = core.start_running()?;
        core.run_loop(&mut || false);
        Ok(())
    }

    /// Asks the loop to stop after the current batch of callbacks. A stop requested while the
    /// loop is not running makes the next `run_forever` return after one iteration.
    pub fn stop(&self) {
        self.core.stop();
    }

    /// Closes the loop: cancels and drops pending tasks (logging a warning naming them), drops
    /// queued callbacks and timers, and refuses further cross-thread calls. Idempotent. An
    /// `InvalidState` error if the loop is running.
    pub fn close(&self) -> Result<()> {
        self.core.close()
    }

    /// True while `run_until_complete` or `run_forever` is executing.
    pub fn is_running(&self) -> bool {
        self.core.is_running()
    }

    /// True once [`close`](Self::close) has run.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The loop's clock: monotonic seconds, the scale of [`call_at`](Self::call_at).
    pub fn time(&self) -> f64 {
        clock::now_secs()
    }

    /// Whether debug mode is on.
    pub fn debug(&self) -> bool {
        self.core.debug()
    }

    /// Turns debug mode on or off.
    pub fn set_debug(&self, on: bool) {
        self.core.set_debug(on)
    }

    /// The debug-mode threshold for slow-step warnings.
    pub fn slow_callback_duration(&self) -> Duration {
        self.core.slow_callback_duration()
    }

    /// Changes the debug-mode threshold.
    pub fn set_slow_callback_duration(&self, d: Duration) {
        self.core.set_slow_callback_duration(d)
    }

    /// Schedules `callback` to run on the next loop iteration, after everything already queued
    /// (asyncio's `call_soon`). A panic in the callback is logged; the loop goes on.
    pub fn call_soon<F: FnOnce() + 'static>(&self, callback: F) -> Handle {
        let cell = CallbackCell::new(Box::new(callback), std::any::type_name::<F>());
        self.core.push_callback(cell.clone());
        Handle::new(cell)
    }

    /// Schedules `callback` to run `delay` from now (asyncio's `call_later`).
    pub fn call_later<F: FnOnce() + 'static>(&self, delay: Duration, callback: F) -> TimerHandle {
        let when = clock::now_ns().saturating_add(clock::duration_ns(delay));
        self.call_at_ns(when, callback)
    }

    /// Schedules `callback` to run when [`time`](Self::time) reaches `when` (asyncio's
    /// `call_at`). A `when` in the past runs it on the next iteration.
    pub fn call_at<F: FnOnce() + 'static>(&self, when: f64, callback: F) -> TimerHandle {
        self.call_at_ns(clock::secs_to_ns(when), callback)
    }

    fn call_at_ns<F: FnOnce() + 'static>(&self, when: u64, callback: F) -> TimerHandle {
        let cell = CallbackCell::new(Box::new(callback), std::any::type_name::<F>());
        let key = self
            .core
            .timers
            .borrow_mut()
            .insert(when, TimerAction::Callback(cell.clone()));
        TimerHandle::new(cell, key, self.core.weak(), when)
    }

    /// Schedules `future` as a task on this loop, whether or not it is running yet.
    pub fn create_task<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.core.spawn(future)
    }

    /// A `Send + Clone` handle for other threads: `call_soon_threadsafe`, `stop`.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.core.shared().clone())
    }

    /// Runs `f` on the shared blocking-thread pool and resolves to its result (asyncio's
    /// `loop.run_in_executor(None, f)`); see [`crate::run_in_executor`].
    pub fn run_in_executor<F, T>(&self, f: F) -> crate::executor::Blocking<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::executor::run_in_executor(f)
    }

    /// Runs `callback` on this loop each time the process receives `sig` (asyncio's
    /// `loop.add_signal_handler`), replacing the handler `sig` already had on this loop.
    ///
    /// The callback runs as an ordinary loop callback (a panic is logged, the loop goes on),
    /// on the next iteration after the signal arrives; the loop need not be running when the
    /// handler is added. Signals are delivered and coalesced as described in
    /// [`kettle::signal`](crate::signal); while a handler for `sig` exists, `sig`'s previous
    /// disposition is suspended, and it is restored by
    /// [`remove_signal_handler`](Self::remove_signal_handler) or [`close`](Self::close).
    ///
    /// Errors: [`InvalidInput`](io::ErrorKind::InvalidInput) for a signal that cannot be
    /// waited for (`SIGKILL`, `SIGSEGV`, ...; asyncio's `ValueError`), or an I/O error if the
    /// loop is closed or the process is out of file descriptors.
    ///
    /// The loop owns the callback: one that captures a clone of the loop keeps it alive until
    /// the handler is removed or the loop is [closed](Self::close) explicitly.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use kettle::signal::{raise_signal, SIGUSR1};
    ///
    /// let lp = kettle::EventLoop::new().unwrap();
    /// let hits = Rc::new(Cell::new(0));
    /// let h = hits.clone();
    /// let stopper = lp.clone();
    /// lp.add_signal_handler(SIGUSR1, move || {
    ///     h.set(h.get() + 1);
    ///     stopper.stop();
    /// })
    /// .unwrap();
    /// raise_signal(SIGUSR1).unwrap();
    /// lp.run_forever().unwrap(); // until the handler stops it
    /// assert_eq!(hits.get(), 1);
    /// assert!(lp.remove_signal_handler(SIGUSR1));
    /// lp.close().unwrap();
    /// ```
    pub fn add_signal_handler<F: FnMut() + 'static>(
        &self,
        sig: i32,
        callback: F,
    ) -> io::Result<()> {
        crate::signal::add_handler(
            &self.core,
            sig,
            Box::new(callback),
            std::any::type_name::<F>(),
        )
    }

    /// Removes the handler of `sig` (asyncio's `loop.remove_signal_handler`): true if there
    /// was one. A call already queued by an earlier delivery is skipped. When no handler on
    /// this loop and no other listener in the process wants `sig` any more, its previous
    /// disposition is restored.
    pub fn remove_signal_handler(&self, sig: i32) -> bool {
        crate::signal::remove_handler(&self.core, sig)
    }

    /// Number of tasks spawned on this loop that have not finished.
    pub fn task_count(&self) -> usize {
        self.core.task_count()
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.core.id())
            .field("running", &self.is_running())
            .field("closed", &self.is_closed())
            .field("debug", &self.debug())
            .finish()
    }
}

/// Makes [`Error`] reachable for handle types.
pub(crate) fn loop_closed() -> Error {
    Error::new(crate::ErrorKind::LoopClosed)
}
#[cfg(test)]
mod tests;
