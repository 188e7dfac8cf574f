//! The process-wide table of live loops, indexed by loop id, and each loop's cross-thread inbox.
//!
//! A waker carries only a loop id; when it fires away from its loop's thread it looks the id up
//! here to find that loop's [`Shared`] inbox. The table is touched only on cross-thread paths
//! (remote wakes, loop creation and close), never by a loop's own hot path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::waker::WakeTarget;
use crate::sys::eventfd::EventFd;

/// Work sent to a loop from outside it.
pub(crate) enum Remote {
    /// Wake a task (or the main future).
    Wake(WakeTarget),
    /// Run a callback on the loop (`call_soon_threadsafe`).
    Call(Box<dyn FnOnce() + Send>),
}

/// The part of a loop that other threads may touch.
pub(crate) struct Shared {
    /// Pending cross-thread work, drained by the loop each iteration it sees `notified`.
    queue: Mutex<Vec<Remote>>,
    /// Set by senders after pushing; the loop clears it before draining. Only the sender that
    /// flips it from false to true writes the eventfd, so a burst of wakes costs one syscall.
    notified: AtomicBool,
    /// Set when the loop closes; later sends are refused.
    closed: AtomicBool,
    /// The doorbell registered in the loop's epoll set.
    pub(crate) eventfd: EventFd,
}

impl Shared {
    pub(crate) fn new() -> std::io::Result<Shared> {
        Ok(Shared {
            queue: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            eventfd: EventFd::new()?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Remote>> {
        // A panic while holding this lock cannot leave the Vec inconsistent, so poisoning is moot.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item` and rings the doorbell. Returns the item back if the loop is closed.
    pub(crate) fn send(&self, item: Remote) -> Result<(), Remote> {
        {
            let mut q = self.lock();
            if self.closed.load(Ordering::Acquire) {
                return Err(item);
            }
            q.push(item);
        }
        if !self.notified.swap(true, Ordering::AcqRel) {
            // If the write fails the fd is unusable; the loop will still drain the queue on its
            // next iteration because `notified` is set.
            let _ = self.eventfd.notify();
        }
        Ok(())
    }

    /// Cheap check the loop makes every iteration.
    pub(crate) fn has_pending(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Takes everything queued so far.
    pub(crate) fn take(&self, into: &mut Vec<Remote>) {
        self.notified.store(false, Ordering::Release);
        std::mem::swap(&mut *self.lock(), into);
    }

    /// Refuses further sends and returns what was still queued.
    pub(crate) fn close(&self) -> Vec<Remote> {
        let mut q = self.lock();
        self.closed.store(true, Ordering::Release);
        std::mem::take(&mut *q)
    }

    /// True once the loop has closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

struct Table {
    slots: Vec<Option<Arc<Shared>>>,
    free: Vec<u16>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
});

fn table() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Enters a loop's inbox in the table, returning its id.
pub(crate) fn register(shared: Arc<Shared>) -> std::io::Result<u16> {
    let mut t = table();
    if let Some(id) = t.free.pop() {
        t.slots[id as usize] = Some(shared);
        return Ok(id);
    }
    let id = u16::try_from(t.slots.len()).map_err(|_| {
        std::io::Error::other("too many live event loops in this process (limit 65536)")
    })?;
    t.slots.push(Some(shared));
    Ok(id)
}

/// Removes a closed loop; its id may be reused by a later loop.
pub(crate) fn unregister(id: u16) {
    let mut t = table();
    if let Some(slot) = t.slots.get_mut(id as usize) {
        if slot.take().is_some() {
            t.free.push(id);
        }
    }
}

/// The inbox of loop `id`, if it is still live.
pub(crate) fn lookup(id: u16) -> Option<Arc<Shared>> {
    table().slots.get(id as usize).cloned().flatten()
}

/// Delivers a wake to a loop from outside it. A wake for a closed loop is dropped: nothing
/// can run there any more.
pub(crate) fn wake_remote(target: WakeTarget) {
    if let Some(shared) = lookup(target.loop_id) {
        let _ = shared.send(Remote::Wake(target));
    }
}
