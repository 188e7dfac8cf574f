//! Handles to scheduled callbacks and the cross-thread loop handle.

use std::rc::{Rc, Weak};
use std::sync::Arc;

use super::core::{CallbackCell, Core};
use super::registry::{Remote, Shared};
use crate::error::Result;
use crate::time::clock;
use crate::time::heap::TimerKey;

/// A callback scheduled with `call_soon`; cancel it before it runs (asyncio's `Handle`).
pub struct Handle {
    cell: Rc<CallbackCell>,
}

impl Handle {
    pub(crate) fn new(cell: Rc<CallbackCell>) -> Handle {
        Handle { cell }
    }

    /// Prevents the callback from running, if it has not run yet.
    pub fn cancel(&self) {
        if let Some(f) = self.cell.f.take() {
            self.cell.cancelled.set(true);
            drop(f);
        }
    }

    /// True if [`cancel`](Self::cancel) stopped the callback.
    pub fn cancelled(&self) -> bool {
        self.cell.cancelled.get()
    }
}

/// A callback scheduled with `call_later` / `call_at` (asyncio's `TimerHandle`). Cancelling
/// disarms the timer in O(1).
pub struct TimerHandle {
    cell: Rc<CallbackCell>,
    key: TimerKey,
    core: Weak<Core>,
    when_ns: u64,
}

impl TimerHandle {
    pub(crate) fn new(
        cell: Rc<CallbackCell>,
        key: TimerKey,
        core: Weak<Core>,
        when_ns: u64,
    ) -> Self {
        TimerHandle {
            cell,
            key,
            core,
            when_ns,
        }
    }

    /// Prevents the callback from running and frees its timer.
    pub fn cancel(&self) {
        if let Some(core) = self.core.upgrade() {
            let action = core.timers.borrow_mut().cancel(self.key);
            drop(action);
        }
        if let Some(f) = self.cell.f.take() {
            self.cell.cancelled.set(true);
            drop(f);
        }
    }

    /// True if [`cancel`](Self::cancel) stopped the callback.
    pub fn cancelled(&self) -> bool {
        self.cell.cancelled.get()
    }

    /// When the callback is due, on the loop's [`time`](crate::EventLoop::time) scale.
    pub fn when(&self) -> f64 {
        clock::ns_to_secs(self.when_ns)
    }
}

/// A `Send + Sync + Clone` handle to a loop, for other threads.
///
/// ```
/// let lp = kettle::EventLoop::new().unwrap();
/// let handle = lp.handle();
/// let got = lp.run_until_complete(async move {
///     let (tx, rx) = std::sync::mpsc::channel();
///     std::thread::spawn(move || {
///         handle.call_soon_threadsafe(move || tx.send(7).unwrap()).unwrap();
///     });
///     // The callback runs on the loop thread, woken through the eventfd.
///     loop {
///         if let Ok(v) = rx.try_recv() {
///             break v;
///         }
///         kettle::sleep(std::time::Duration::from_millis(1)).await;
///     }
/// });
/// assert_eq!(got, 7);
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

impl LoopHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> LoopHandle {
        LoopHandle { shared }
    }

    /// Schedules `callback` on the loop from any thread, waking the loop if it sleeps (asyncio's
    /// `call_soon_threadsafe`). A `LoopClosed` error if the loop has closed.
    pub fn call_soon_threadsafe<F>(&self, callback: F) -> Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared
            .send(Remote::Call(Box::new(callback)))
            .map_err(|_| super::loop_closed())
    }

    /// Stops the loop from another thread (its `run_forever` returns).
    pub fn stop(&self) -> Result<()> {
        self.call_soon_threadsafe(|| {
            if let Some(lp) = super::try_get_running_loop() {
                lp.stop();
            }
        })
    }

    /// True once the loop has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl std::fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopHandle")
            .field("closed", &self.is_closed())
            .finish()
    }
}
