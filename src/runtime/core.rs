//! The loop itself: ready queue, task slab, timers and the epoll selector, and the one function
//! that turns them ([`Core::run_loop`]).
//!
//! One iteration, as seed 004 draws it and asyncio's `_run_once` does it:
//!
//! 1. run the ready FIFO, but only the entries that were there when the batch started (work
//!    scheduled by the batch runs next iteration, after I/O and timers had their turn);
//! 2. move expired timers to the ready queue;
//! 3. poll epoll: block until the nearest timer when nothing is ready, otherwise peek (at most
//!    every [`IO_POLL_INTERVAL`] iterations, and only when sockets are registered);
//! 4. turn I/O events and cross-thread messages into ready entries; go to 1.
//!
//! Nothing here runs user code while a `RefCell` of the core is borrowed: values whose drop may
//! run user code (tasks, callbacks) are moved out of the borrow before being dropped or run.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use super::reactor::IoSlab;
use super::registry::{self, Remote, Shared};
use super::waker::{WakeTarget, MAIN_SLOT};
use crate::error::{panic_message, Error};
use crate::sys::epoll::{Event, Interest, Selector};
use crate::task::{Header, Output, Runnable, Task, TaskCell, TaskRef};
use crate::time::clock;
use crate::time::heap::TimerHeap;

/// epoll token of the eventfd doorbell.
const EVENTFD_TOKEN: u64 = u64::MAX;
/// epoll token of the pipe behind `add_signal_handler` (see `crate::signal`). Like
/// `EVENTFD_TOKEN`, no socket token can equal it: that would take 2^32 - 2 registered fds.
pub(crate) const SIGNAL_TOKEN: u64 = u64::MAX - 1;
/// While work is ready, peek at I/O only every this many iterations: a syscall per iteration
/// would dominate task switches, and waiting longer would starve sockets.
const IO_POLL_INTERVAL: u32 = 61;
const NO_TASK: u32 = u32::MAX;
/// Idle queues and slabs larger than this are shrunk, so a burst of a million tasks does not
/// pin its peak memory for the rest of the loop's life.
const SHRINK_ABOVE: usize = 4096;

/// One entry of the ready FIFO.
pub(crate) enum Ready {
    /// Poll a task (if its slot still holds that generation).
    Task { slot: u32, generation: u16 },
    /// Poll the future passed to `run_until_complete`.
    Main,
    /// Run a callback (`call_soon`, a fired `call_later`, a done-callback).
    Callback(Rc<CallbackCell>),
}

/// A scheduled callback; taking `f` out runs or cancels it exactly once.
pub(crate) struct CallbackCell {
    pub(crate) f: Cell<Option<Box<dyn FnOnce()>>>,
    pub(crate) cancelled: Cell<bool>,
    /// For debug-mode warnings and panic logs.
    pub(crate) name: &'static str,
}

impl CallbackCell {
    pub(crate) fn new(f: Box<dyn FnOnce()>, name: &'static str) -> Rc<CallbackCell> {
        Rc::new(CallbackCell {
            f: Cell::new(Some(f)),
            cancelled: Cell::new(false),
            name,
        })
    }
}

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Wake a sleeping future.
    Wake(Waker),
    /// Schedule a `call_later` / `call_at` callback.
    Callback(Rc<CallbackCell>),
}

/// A slab slot for a task.
struct TaskSlot {
    task: Option<Rc<dyn Runnable>>,
    /// Bumped when the slot is vacated, so stale wakers and queue entries miss.
    generation: u16,
    /// Already in the ready queue: further wakes are no-ops until it is polled.
    scheduled: bool,
    next_free: u32,
}

/// Live tasks by slot, with a free list so slots (and their memory) are reused.
#[derive(Default)]
struct TaskSlab {
    slots: Vec<TaskSlot>,
    free_head: Option<u32>,
    live: usize,
}

impl TaskSlab {
    /// Inserts a scheduled task, returning its slot and generation.
    fn insert(&mut self, task: Rc<dyn Runnable>) -> (u32, u16) {
        self.live += 1;
        if let Some(slot) = self.free_head {
            let s = &mut self.slots[slot as usize];
            self.free_head = (s.next_free != NO_TASK).then_some(s.next_free);
            s.task = Some(task);
            s.scheduled = true;
            return (slot, s.generation);
        }
        let slot = u32::try_from(self.slots.len())
            .ok()
            .filter(|&s| s != MAIN_SLOT && s != NO_TASK)
            .expect("more than 4 billion live tasks");
        self.slots.push(TaskSlot {
            task: Some(task),
            generation: 0,
            scheduled: true,
            next_free: NO_TASK,
        });
        (slot, 0)
    }

    /// Vacates a slot; the caller drops the returned task outside any borrow.
    fn remove(&mut self, slot: u32) -> Option<Rc<dyn Runnable>> {
        let s = self.slots.get_mut(slot as usize)?;
        let task = s.task.take()?;
        s.generation = s.generation.wrapping_add(1);
        s.scheduled = false;
        s.next_free = self.free_head.unwrap_or(NO_TASK);
        self.free_head = Some(slot);
        self.live -= 1;
        Some(task)
    }

    fn get(&self, slot: u32) -> Option<&Rc<dyn Runnable>> {
        self.slots.get(slot as usize)?.task.as_ref()
    }

    /// Gives memory back after a burst: with no live task every slot is vacant, so the slab
    /// can start over. Old wakers may then name a reused slot with a matching generation,
    /// which costs at most one spurious poll.
    fn shrink_if_empty(&mut self) {
        if self.live == 0 && self.slots.capacity() > SHRINK_ABOVE {
            self.slots = Vec::new();
            self.free_head = None;
        }
    }

    fn drain(&mut self) -> Vec<Rc<dyn Runnable>> {
        self.free_head = None;
        self.live = 0;
        self.slots.drain(..).filter_map(|s| s.task).collect()
    }
}

/// The state of one event loop. Shared through `Rc`; never leaves its thread.
pub(crate) struct Core {
    /// Index in the process-wide registry; the first field of every waker of this loop.
    id: u16,
    /// A weak self-reference, handed to sleeps and handles that must outlive a poll.
    self_weak: Weak<Core>,
    ready: RefCell<VecDeque<Ready>>,
    tasks: RefCell<TaskSlab>,
    pub(crate) timers: RefCell<TimerHeap<TimerAction>>,
    selector: Selector,
    /// Cross-thread inbox and eventfd.
    shared: Arc<Shared>,
    /// Reused buffers, so a loop iteration allocates nothing.
    events: RefCell<Vec<Event>>,
    remote_buf: RefCell<Vec<Remote>>,
    running: Cell<bool>,
    stopping: Cell<bool>,
    closed: Cell<bool>,
    /// The `run_until_complete` future is in the ready queue.
    main_scheduled: Cell<bool>,
    /// Bumped per `run_until_complete`, so wakers of an earlier main future miss.
    main_generation: Cell<u16>,
    /// Slot of the task being polled, or `NO_TASK`.
    current: Cell<u32>,
    /// Next task id and the end of the block of ids this loop reserved (`Task-N`).
    next_task_id: Cell<u64>,
    task_id_end: Cell<u64>,
    /// Loop iterations since epoll was last asked.
    iterations_since_io: Cell<u32>,
    /// The loop clock when the loop last woke from epoll (or started running): a time that
    /// is cheap to read and at most one iteration old, for deadlines that need no precision.
    tick_ns: Cell<u64>,
    /// Registered I/O sources besides the eventfd.
    io_sources: Cell<usize>,
    /// Readiness and waiting wakers of every registered socket, by epoll token.
    pub(crate) io: RefCell<IoSlab>,
    /// The handlers of `add_signal_handler`, with the pipe the loop reads for them.
    pub(crate) signal_handlers: RefCell<Option<crate::signal::LoopHandlers>>,
    /// Debug mode: time every poll and callback.
    debug: Cell<bool>,
    slow_callback_duration: Cell<Duration>,
}

thread_local! {
    /// Loops created on this thread, so that code which only knows a loop id (a task's header)
    /// can reach its loop while it is not running.
    static THREAD_LOOPS: RefCell<Vec<(u16, Weak<Core>)>> = const { RefCell::new(Vec::new()) };
}

/// The loop `id` if it was created on this thread and is still open.
pub(crate) fn loop_on_this_thread(id: u16) -> Option<Rc<Core>> {
    THREAD_LOOPS
        .try_with(|l| {
            l.borrow()
                .iter()
                .find(|(i, _)| *i == id)
                .and_then(|(_, w)| w.upgrade())
        })
        .ok()
        .flatten()
}

impl Core {
    pub(crate) fn new(debug: bool, slow_callback_duration: Duration) -> io::Result<Rc<Core>> {
        let shared = Arc::new(Shared::new()?);
        let selector = Selector::new()?;
        selector.register(
            shared.eventfd.as_raw_fd(),
            EVENTFD_TOKEN,
            Interest {
                readable: true,
                writable: false,
            },
            // Edge-triggered: every write by another thread is a new edge, and the loop drains
            // the counter whenever it sees one.
            true,
        )?;
        let id = registry::register(shared.clone())?;
        let core = Rc::new_cyclic(|weak| Core {
            id,
            self_weak: weak.clone(),
            ready: RefCell::new(VecDeque::new()),
            tasks: RefCell::new(TaskSlab::default()),
            timers: RefCell::new(TimerHeap::new()),
            selector,
            shared,
            events: RefCell::new(Vec::with_capacity(64)),
            remote_buf: RefCell::new(Vec::new()),
            running: Cell::new(false),
            stopping: Cell::new(false),
            closed: Cell::new(false),
            main_scheduled: Cell::new(false),
            main_generation: Cell::new(0),
            current: Cell::new(NO_TASK),
            next_task_id: Cell::new(0),
            task_id_end: Cell::new(0),
            iterations_since_io: Cell::new(0),
            tick_ns: Cell::new(clock::now_ns()),
            io_sources: Cell::new(0),
            io: RefCell::new(IoSlab::default()),
            signal_handlers: RefCell::new(None),
            debug: Cell::new(debug),
            slow_callback_duration: Cell::new(slow_callback_duration),
        });
        THREAD_LOOPS.with(|l| l.borrow_mut().push((id, Rc::downgrade(&core))));
        Ok(core)
    }

    pub(crate) fn id(&self) -> u16 {
        self.id
    }

    pub(crate) fn weak(&self) -> Weak<Core> {
        self.self_weak.clone()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Counts registered sockets, so the loop peeks at epoll while busy only when any exist.
    pub(crate) fn add_io_source(&self, delta: isize) {
        let n = self.io_sources.get().saturating_add_signed(delta);
        self.io_sources.set(n);
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.get()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn stop(&self) {
        self.stopping.set(true);
    }

    pub(crate) fn debug(&self) -> bool {
        self.debug.get()
    }

    pub(crate) fn set_debug(&self, on: bool) {
        self.debug.set(on);
    }

    pub(crate) fn slow_callback_duration(&self) -> Duration {
        self.slow_callback_duration.get()
    }

    pub(crate) fn set_slow_callback_duration(&self, d: Duration) {
        self.slow_callback_duration.set(d);
    }

    /// Live tasks (spawned, not finished).
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.borrow().live
    }

    /// Wakes task `slot` (or the main future) if `generation` still matches and it is not
    /// already queued. This is the local half of every waker.
    pub(crate) fn schedule(&self, slot: u32, generation: u16) {
        if slot == MAIN_SLOT {
            if generation == self.main_generation.get() && !self.main_scheduled.get() {
                self.main_scheduled.set(true);
                self.ready.borrow_mut().push_back(Ready::Main);
            }
            return;
        }
        let mut tasks = self.tasks.borrow_mut();
        if let Some(s) = tasks.slots.get_mut(slot as usize) {
            if s.generation == generation && s.task.is_some() && !s.scheduled {
                s.scheduled = true;
                self.ready
                    .borrow_mut()
                    .push_back(Ready::Task { slot, generation });
            }
        }
    }

    /// Appends a callback to the ready FIFO (`call_soon`).
    pub(crate) fn push_callback(&self, cell: Rc<CallbackCell>) {
        self.ready.borrow_mut().push_back(Ready::Callback(cell));
    }

    /// Creates a task and queues its first poll.
    pub(crate) fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = self.take_task_id();
        let placeholder = WakeTarget {
            loop_id: self.id,
            generation: 0,
            slot: 0,
        };
        let cell = Rc::new(TaskCell::new(Header::new(id, placeholder), future));
        let (slot, generation) = self.tasks.borrow_mut().insert(cell.clone());
        cell.header().target.set(WakeTarget {
            loop_id: self.id,
            generation,
            slot,
        });
        self.ready
            .borrow_mut()
            .push_back(Ready::Task { slot, generation });
        let raw: Rc<dyn Output<F::Output>> = cell;
        Task::from_raw(raw)
    }

    /// A process-unique task id. Ids come from a global counter in blocks, so a spawn costs
    /// no atomic operation except once per block.
    fn take_task_id(&self) -> u64 {
        const BLOCK: u64 = 1024;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        let mut id = self.next_task_id.get();
        if id == self.task_id_end.get() {
            id = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            self.task_id_end.set(id + BLOCK);
        }
        self.next_task_id.set(id + 1);
        id
    }

    pub(crate) fn current_task(&self) -> Option<TaskRef> {
        let slot = self.current.get();
        if slot == NO_TASK {
            return None;
        }
        self.tasks.borrow().get(slot).cloned().map(TaskRef::new)
    }

    pub(crate) fn all_tasks(&self) -> Vec<TaskRef> {
        self.tasks
            .borrow()
            .slots
            .iter()
            .filter_map(|s| s.task.clone())
            .map(TaskRef::new)
            .collect()
    }

    /// Runs iterations until `main` reports completion (returns true) or, when `main` never
    /// completes, until `stop()` (returns false).
    pub(crate) fn run_loop(&self, main: &mut dyn FnMut() -> bool) -> bool {
        self.tick_ns.set(clock::now_ns());
        loop {
            if self.run_ready_batch(main) {
                return true;
            }
            if self.stopping.get() {
                return false;
            }
            self.fire_timers();
            self.poll_io();
        }
    }

    /// Runs the entries that are ready now. Returns true if the main future completed.
    fn run_ready_batch(&self, main: &mut dyn FnMut() -> bool) -> bool {
        let n = self.ready.borrow().len();
        for _ in 0..n {
            let Some(item) = self.ready.borrow_mut().pop_front() else {
                break;
            };
            if self.run_item(item, main) {
                // asyncio stops `run_until_complete` through a done-callback queued behind
                // everything already ready, so what the main future scheduled just before
                // finishing (a `call_soon`, a spawned task's first step) still runs.
                let rest = self.ready.borrow().len();
                for _ in 0..rest {
                    let Some(item) = self.ready.borrow_mut().pop_front() else {
                        break;
                    };
                    self.run_item(item, &mut || false);
                }
                return true;
            }
        }
        false
    }

    /// Runs one ready entry; true if it was the main future and it completed.
    fn run_item(&self, item: Ready, main: &mut dyn FnMut() -> bool) -> bool {
        match item {
            Ready::Task { slot, generation } => self.run_task(slot, generation),
            Ready::Main => {
                self.main_scheduled.set(false);
                let started = self.debug.get().then(Instant::now);
                let done = main();
                if let Some(t0) = started {
                    self.check_slow(t0, || "the run_until_complete future".to_string());
                }
                return done;
            }
            Ready::Callback(cell) => self.run_callback(&cell),
        }
        false
    }

    fn run_task(&self, slot: u32, generation: u16) {
        let task = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.slots.get_mut(slot as usize) {
                Some(s) if s.generation == generation && s.task.is_some() => {
                    s.scheduled = false;
                    s.task.clone()
                }
                _ => None,
            }
        };
        let Some(task) = task else { return };
        let waker = WakeTarget {
            loop_id: self.id,
            generation,
            slot,
        }
        .into_waker();
        let mut cx = Context::from_waker(&waker);
        let prev = self.current.replace(slot);
        let started = self.debug.get().then(Instant::now);
        let finished = task.run(&mut cx);
        self.current.set(prev);
        if let Some(t0) = started {
            self.check_slow(t0, || format!("{:?}", TaskRef::new(task.clone())));
        }
        if finished {
            self.complete(slot, &task);
        }
    }

    /// Retires a finished task and notifies its awaiter and done-callbacks through the queue.
    fn complete(&self, slot: u32, task: &Rc<dyn Runnable>) {
        let removed = self.tasks.borrow_mut().remove(slot);
        drop(removed);
        let (waker, callbacks) = task.header().take_completion();
        if let Some(w) = waker {
            w.wake();
        }
        for cb in callbacks {
            self.push_callback(CallbackCell::new(cb, "task done-callback"));
        }
    }

    fn run_callback(&self, cell: &CallbackCell) {
        let Some(f) = cell.f.take() else { return };
        let started = self.debug.get().then(Instant::now);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            tracing::error!(
                callback = cell.name,
                "callback panicked: {}",
                panic_message(&*payload)
            );
        }
        if let Some(t0) = started {
            self.check_slow(t0, || format!("callback {}", cell.name));
        }
    }

    /// Debug mode: warn when one step held the loop longer than `slow_callback_duration`.
    fn check_slow(&self, started: Instant, what: impl FnOnce() -> String) {
        let took = started.elapsed();
        if took >= self.slow_callback_duration.get() {
            tracing::warn!(
                target: "kettle::debug",
                took_ms = took.as_secs_f64() * 1e3,
                "Executing {} took {:.3} seconds: it held the event loop, so no other task ran meanwhile",
                what(),
                took.as_secs_f64()
            );
        }
    }

    fn fire_timers(&self) {
        if self.timers.borrow().len() == 0 {
            return;
        }
        let now = clock::now_ns();
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            match action {
                None => break,
                Some(TimerAction::Wake(w)) => w.wake(),
                Some(TimerAction::Callback(cell)) => self.push_callback(cell),
            }
        }
    }

    fn poll_io(&self) {
        if self.shared.has_pending() {
            self.drain_remote();
        }
        let timeout = if !self.ready.borrow().is_empty() {
            let n = self.iterations_since_io.get() + 1;
            if self.io_sources.get() == 0 || n < IO_POLL_INTERVAL {
                self.iterations_since_io.set(n);
                return;
            }
            Some(Duration::ZERO)
        } else {
            // About to sleep: a good moment to return a past burst's memory.
            self.shrink_idle();
            let next = self.timers.borrow_mut().next_deadline();
            next.map(|d| Duration::from_nanos(d.saturating_sub(clock::now_ns())))
        };
        self.iterations_since_io.set(0);
        let mut events = self.events.take();
        if let Err(e) = self.selector.select(timeout, &mut events) {
            // Only a broken epoll fd gets here; report it rather than spin silently.
            tracing::error!("epoll_wait failed: {e}");
        }
        self.tick_ns.set(clock::now_ns());
        for ev in events.drain(..) {
            if ev.token == EVENTFD_TOKEN {
                let _ = self.shared.eventfd.drain();
                self.drain_remote();
                continue;
            }
            if ev.token == SIGNAL_TOKEN {
                crate::signal::dispatch_handlers(self);
                continue;
            }
            let (reader, writer) = self.io.borrow_mut().dispatch(&ev);
            if let Some(w) = reader {
                w.wake();
            }
            if let Some(w) = writer {
                w.wake();
            }
        }
        self.events.replace(events);
    }

    /// The loop clock at the loop's last wake-up (see `tick_ns`).
    pub(crate) fn tick_ns(&self) -> u64 {
        self.tick_ns.get()
    }

    fn shrink_idle(&self) {
        let mut ready = self.ready.borrow_mut();
        if ready.capacity() > SHRINK_ABOVE {
            ready.shrink_to(SHRINK_ABOVE / 4);
        }
        drop(ready);
        self.tasks.borrow_mut().shrink_if_empty();
        self.timers.borrow_mut().shrink_if_empty(SHRINK_ABOVE);
    }

    /// Moves cross-thread wakes and callbacks into the ready queue.
    fn drain_remote(&self) {
        let mut buf = self.remote_buf.take();
        self.shared.take(&mut buf);
        for item in buf.drain(..) {
            match item {
                Remote::Wake(t) => self.schedule(t.slot, t.generation),
                Remote::Call(f) => {
                    self.push_callback(CallbackCell::new(f, "call_soon_threadsafe callback"))
                }
            }
        }
        self.remote_buf.replace(buf);
    }

    /// Cancels every unfinished task at once (dropping its future). `warn` logs them, as
    /// asyncio's "Task was destroyed but it is pending!".
    pub(crate) fn abort_all(&self, warn: bool) {
        loop {
            let tasks = self.tasks.borrow_mut().drain();
            if tasks.is_empty() {
                break;
            }
            if warn {
                let names: Vec<String> = tasks
                    .iter()
                    .take(10)
                    .map(|t| format!("{:?}", TaskRef::new(t.clone())))
                    .collect();
                tracing::warn!(
                    pending = tasks.len(),
                    "event loop closed with {} pending task(s), which are destroyed: {}{}",
                    tasks.len(),
                    names.join(", "),
                    if tasks.len() > 10 { ", ..." } else { "" }
                );
            }
            for t in &tasks {
                t.abort();
                let (waker, callbacks) = t.header().take_completion();
                drop(callbacks);
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }

    /// Closes the loop: cancels pending tasks (with a warning), drops queued callbacks and
    /// timers, refuses cross-thread work. Idempotent.
    pub(crate) fn close(&self) -> Result<(), Error> {
        if self.running.get() {
            return Err(Error::invalid_state("cannot close a running event loop"));
        }
        if self.closed.replace(true) {
            return Ok(());
        }
        drop(self.shared.close());
        registry::unregister(self.id);
        // As asyncio's close(): signal handlers go first, giving the signals back.
        crate::signal::close_handlers(self);
        self.abort_all(true);
        let ready = self.ready.take();
        drop(ready);
        let timers = self.timers.borrow_mut().drain();
        drop(timers);
        let _ = self.selector.deregister(self.shared.eventfd.as_raw_fd());
        // `try_with`: a loop kept in a thread-local may close after this one is destroyed.
        let _ = THREAD_LOOPS.try_with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                l.retain(|(i, _)| *i != self.id)
            }
        });
        Ok(())
    }

    /// Enters the running state; the guard leaves it (also when a panic unwinds through).
    pub(crate) fn start_running(&self) -> Result<RunGuard<'_>, Error> {
        if self.closed.get() {
            return Err(Error::new(crate::ErrorKind::LoopClosed));
        }
        if self.running.get() {
            return Err(Error::invalid_state("this event loop is already running"));
        }
        let enter = super::context::Enter::new(self).ok_or_else(|| {
            Error::invalid_state(
                "cannot run an event loop while another loop is running on this thread",
            )
        })?;
        self.running.set(true);
        // A stop() issued while the loop was not running is consumed by this run.
        Ok(RunGuard {
            core: self,
            _enter: enter,
        })
    }

    /// Bumps the main-future generation and queues its first poll; returns the generation.
    pub(crate) fn begin_main(&self) -> u16 {
        let g = self.main_generation.get().wrapping_add(1);
        self.main_generation.set(g);
        self.main_scheduled.set(true);
        self.ready.borrow_mut().push_back(Ready::Main);
        g
    }

    /// Forgets the main future (its wakers now miss) when `run_until_complete` returns.
    pub(crate) fn end_main(&self) {
        self.main_generation
            .set(self.main_generation.get().wrapping_add(1));
        if self.main_scheduled.replace(false) {
            self.ready
                .borrow_mut()
                .retain(|r| !matches!(r, Ready::Main));
        }
    }
}

/// Marks the loop running for the lifetime of a `run_*` call.
pub(crate) struct RunGuard<'a> {
    core: &'a Core,
    _enter: super::context::Enter,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.core.running.set(false);
        self.core.stopping.set(false);
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
