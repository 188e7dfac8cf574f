//! The task itself: one heap allocation holding the header and the future (later its output).
//!
//! # Ownership
//! A task is an `Rc<TaskCell<F>>`. The loop's slab holds one reference (as `Rc<dyn Runnable>`)
//! from spawn until the task finishes; the user's [`Task`](super::Task) handle holds another
//! (as `Rc<dyn Output<T>>`), and done-callbacks may hold more. Wakers hold none: they name the
//! task by slab slot (see `runtime::waker`). Everything is single-threaded, so the counts are
//! plain `Rc` counts.
//!
//! # Pinning
//! The future is pinned in place inside the `Rc` allocation: a `TaskCell` is never moved out of
//! its `Rc`, and the future is only ever dropped in place (by assigning a new [`Stage`]), which
//! is exactly the guarantee `Pin` asks for.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::runtime::waker::WakeTarget;

/// Cancellation was requested; the loop drops the future at its next visit.
const CANCEL_REQUESTED: u8 = 1;
/// The output (or error) is stored.
const DONE: u8 = 2;
/// Finished by cancellation.
const CANCELLED: u8 = 4;
/// The future is being polled right now (so `cancel` must not reschedule it).
const RUNNING: u8 = 8;

/// The untyped part of every task.
pub(crate) struct Header {
    /// Unique per process, for names (`Task-17`) and identity.
    pub(crate) id: u64,
    /// Where the task's waker points: its loop and slab slot. Set at spawn.
    pub(crate) target: Cell<WakeTarget>,
    /// `CANCEL_REQUESTED | DONE | CANCELLED | RUNNING` bits.
    state: Cell<u8>,
    /// The waker of whoever awaits the `Task` handle.
    join_waker: Cell<Option<Waker>>,
    /// Rarely used parts, allocated on first use so a plain task stays small.
    extras: Cell<Option<Box<Extras>>>,
}

/// A done-callback, already bound to its task handle.
pub(crate) type DoneCallback = Box<dyn FnOnce()>;

/// Name and done-callbacks: most tasks never have either.
#[derive(Default)]
pub(crate) struct Extras {
    name: Option<String>,
    callbacks: Vec<DoneCallback>,
    /// The error the task finished with, kept after the output is taken so that `error()`
    /// still reports it (asyncio's `exception()` can be asked again).
    error: Option<Error>,
}

impl Header {
    pub(crate) fn new(id: u64, target: WakeTarget) -> Header {
        Header {
            id,
            target: Cell::new(target),
            state: Cell::new(0),
            join_waker: Cell::new(None),
            extras: Cell::new(None),
        }
    }

    fn has(&self, bit: u8) -> bool {
        self.state.get() & bit != 0
    }

    fn set(&self, bit: u8, on: bool) {
        let s = self.state.get();
        self.state.set(if on { s | bit } else { s & !bit });
    }

    /// Finished, by any means.
    pub(crate) fn is_done(&self) -> bool {
        self.has(DONE)
    }

    /// Finished by cancellation.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.has(CANCELLED)
    }

    /// Asks the loop to drop the task at its next suspension point. Returns false when the task
    /// is already done (as asyncio's `Task.cancel`).
    pub(crate) fn cancel(&self) -> bool {
        if self.is_done() {
            return false;
        }
        if !self.has(CANCEL_REQUESTED) {
            self.set(CANCEL_REQUESTED, true);
            // A running task is checked when its poll returns; any other is scheduled so the
            // loop gets to drop it promptly even if nothing else would ever wake it.
            if !self.has(RUNNING) {
                self.target.get().wake();
            }
        }
        true
    }

    fn with_extras<R>(&self, f: impl FnOnce(&mut Extras) -> R) -> R {
        let mut extras = self.extras.take().unwrap_or_default();
        let r = f(&mut extras);
        self.extras.set(Some(extras));
        r
    }

    /// The task's name: the one set, or `Task-<id>` as asyncio does.
    pub(crate) fn name(&self) -> String {
        let extras = self.extras.take();
        let name = match extras.as_ref().and_then(|e| e.name.clone()) {
            Some(n) => n,
            None => format!("Task-{}", self.id),
        };
        self.extras.set(extras);
        name
    }

    /// The name given with `set_name`, if any (green threads show `Greenlet-<id>` otherwise).
    pub(crate) fn custom_name(&self) -> Option<String> {
        let extras = self.extras.take();
        let name = extras.as_ref().and_then(|e| e.name.clone());
        self.extras.set(extras);
        name
    }

    pub(crate) fn set_name(&self, name: String) {
        self.with_extras(|e| e.name = Some(name));
    }

    /// Registers a callback to run (through the ready queue) once the task is done. If it is
    /// already done, returns the callback so the caller schedules it right away.
    pub(crate) fn add_callback(&self, cb: Box<dyn FnOnce()>) -> Option<Box<dyn FnOnce()>> {
        if self.is_done() {
            return Some(cb);
        }
        self.with_extras(|e| e.callbacks.push(cb));
        None
    }

    /// The error the task finished with, if it failed.
    pub(crate) fn error(&self) -> Option<Error> {
        let extras = self.extras.take();
        let err = extras.as_ref().and_then(|e| e.error.clone());
        self.extras.set(extras);
        err
    }

    /// Remembers the awaiting side's waker, skipping the clone when it is the same one.
    pub(crate) fn set_join_waker(&self, waker: &Waker) {
        let old = self.join_waker.take();
        let new = match old {
            Some(w) if w.will_wake(waker) => w,
            _ => waker.clone(),
        };
        self.join_waker.set(Some(new));
    }

    /// Wakes the awaiter and hands back the done-callbacks; called once, after the output is
    /// stored. Both the wake and the callbacks go through the loop's ready queue.
    pub(crate) fn take_completion(&self) -> (Option<Waker>, Vec<DoneCallback>) {
        let waker = self.join_waker.take();
        let callbacks = match self.extras.take() {
            Some(mut e) => {
                let cbs = std::mem::take(&mut e.callbacks);
                self.extras.set(Some(e));
                cbs
            }
            None => Vec::new(),
        };
        (waker, callbacks)
    }
}

/// What the loop needs from a task, whatever its future type.
pub(crate) trait Runnable {
    /// The untyped state.
    fn header(&self) -> &Header;
    /// Polls the task once (or drops it if cancelled). Returns true once it has finished and
    /// its output is stored.
    fn run(&self, cx: &mut Context<'_>) -> bool;
    /// Finishes the task as cancelled without polling (the loop is closing).
    fn abort(&self);
}

/// What a typed [`Task`](super::Task) handle needs on top of [`Runnable`].
pub(crate) trait Output<T>: Runnable {
    /// Moves the output out; `None` when not done or already taken.
    fn take_output(&self) -> Option<Result<T>>;
    /// Lends the stored output, if done and not taken.
    fn peek_output(&self, f: &mut dyn FnMut(&Result<T>));
}

/// A future's life: running, then its result, then nothing once the result is taken.
enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output>),
    Consumed,
}

/// A spawned future together with its header.
pub(crate) struct TaskCell<F: Future> {
    header: Header,
    stage: RefCell<Stage<F>>,
}

impl<F: Future> TaskCell<F> {
    pub(crate) fn new(header: Header, future: F) -> TaskCell<F> {
        TaskCell {
            header,
            stage: RefCell::new(Stage::Running(future)),
        }
    }

    /// Stores the result, dropping the future in place. A panic from the future's destructor is
    /// caught: assignment writes the new stage even when dropping the old one unwinds.
    fn finish(&self, out: Result<F::Output>, cancelled: bool) {
        if let Err(e) = &out {
            let e = e.clone();
            self.header.with_extras(|x| x.error = Some(e));
        }
        let _ = catch_unwind(AssertUnwindSafe(|| {
            *self.stage.borrow_mut() = Stage::Finished(out);
        }));
        self.header.set(DONE, true);
        self.header.set(CANCELLED, cancelled);
    }
}

impl<F: Future> Runnable for TaskCell<F> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn run(&self, cx: &mut Context<'_>) -> bool {
        if self.header.is_done() {
            return true;
        }
        if self.header.has(CANCEL_REQUESTED) {
            self.finish(Err(Error::cancelled()), true);
            return true;
        }
        let polled = {
            let mut stage = self.stage.borrow_mut();
            let Stage::Running(fut) = &mut *stage else {
                return true;
            };
            // SAFETY: the future lives inside the task's Rc allocation, which never moves, and
            // it is only dropped in place (see the module docs on pinning).
            let fut = unsafe { Pin::new_unchecked(fut) };
            self.header.set(RUNNING, true);
            let polled = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
            self.header.set(RUNNING, false);
            polled
        };
        match polled {
            Ok(Poll::Pending) if self.header.has(CANCEL_REQUESTED) => {
                self.finish(Err(Error::cancelled()), true);
                true
            }
            Ok(Poll::Pending) => false,
            // Cancelled while running, then returned without suspending again: asyncio still
            // reports the task cancelled, and so do we.
            Ok(Poll::Ready(_)) if self.header.has(CANCEL_REQUESTED) => {
                self.finish(Err(Error::cancelled()), true);
                true
            }
            Ok(Poll::Ready(v)) => {
                self.finish(Ok(v), false);
                true
            }
            Err(payload) => {
                self.finish(Err(Error::from_panic(payload)), false);
                true
            }
        }
    }

    fn abort(&self) {
        if !self.header.is_done() {
            self.header.set(CANCEL_REQUESTED, true);
            self.finish(Err(Error::cancelled()), true);
        }
    }
}

impl<F: Future> Output<F::Output> for TaskCell<F> {
    fn take_output(&self) -> Option<Result<F::Output>> {
        if !self.header.is_done() {
            return None;
        }
        let mut stage = self.stage.try_borrow_mut().ok()?;
        // Only a finished stage is moved; a running future must never leave its place.
        if !matches!(*stage, Stage::Finished(_)) {
            return None;
        }
        match std::mem::replace(&mut *stage, Stage::Consumed) {
            Stage::Finished(out) => Some(out),
            _ => None,
        }
    }

    fn peek_output(&self, f: &mut dyn FnMut(&Result<F::Output>)) {
        if !self.header.is_done() {
            return;
        }
        if let Ok(stage) = self.stage.try_borrow() {
            if let Stage::Finished(out) = &*stage {
                f(out);
            }
        }
    }
}
