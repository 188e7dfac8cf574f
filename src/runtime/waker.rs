//! Task wakers that are plain integers.
//!
//! A waker's data word packs `(loop id, generation, slot)`; its vtable functions never touch
//! memory through it. Cloning and dropping are free (no reference count), and waking on the
//! loop's own thread costs a thread-local read and a push onto the ready queue, with no atomic
//! operation. A wake from any other thread (or while the loop is not running) goes through the
//! global loop registry to the loop's cross-thread queue and rings its eventfd.
//!
//! A stale waker (its task finished and the slot was reused, or its loop id was recycled) can at
//! worst cause a spurious poll, which every Rust future must tolerate; it can never touch freed
//! memory, because there is no memory behind it.

use std::task::{RawWaker, RawWakerVTable, Waker};

use super::context;
use super::registry;

/// The slot number reserved for the future passed to `run_until_complete`, which lives on that
/// call's stack rather than in the task slab.
pub(crate) const MAIN_SLOT: u32 = u32::MAX;

/// What a waker points at: one task slot of one loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WakeTarget {
    pub(crate) loop_id: u16,
    pub(crate) generation: u16,
    pub(crate) slot: u32,
}

impl WakeTarget {
    fn pack(self) -> usize {
        ((self.loop_id as u64) << 48 | (self.generation as u64) << 32 | self.slot as u64) as usize
    }

    fn unpack(data: *const ()) -> WakeTarget {
        let v = data as usize as u64;
        WakeTarget {
            loop_id: (v >> 48) as u16,
            generation: (v >> 32) as u16,
            slot: v as u32,
        }
    }

    /// Delivers the wake: locally when this target's loop is running on this thread, otherwise
    /// through the registry.
    pub(crate) fn wake(self) {
        let local = context::with_current(|core| {
            if core.id() == self.loop_id {
                core.schedule(self.slot, self.generation);
                true
            } else {
                false
            }
        });
        if local != Some(true) {
            registry::wake_remote(self);
        }
    }

    /// A `Waker` for this target.
    pub(crate) fn into_waker(self) -> Waker {
        // SAFETY: the vtable functions below only reinterpret the data word as an integer; they
        // never dereference it, so any value is valid, and they are all thread-safe.
        unsafe { Waker::from_raw(raw(self.pack())) }
    }
}

const _: () = assert!(
    usize::BITS == 64,
    "Kettle packs wakers into 64-bit words (Linux x86_64/aarch64)"
);

fn raw(data: usize) -> RawWaker {
    RawWaker::new(std::ptr::without_provenance(data), &VTABLE)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

fn clone(data: *const ()) -> RawWaker {
    raw(data as usize)
}

fn wake(data: *const ()) {
    WakeTarget::unpack(data).wake();
}

fn drop(_: *const ()) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        let t = WakeTarget {
            loop_id: 0xBEEF,
            generation: 0x1234,
            slot: 0xDEAD_0001,
        };
        let w = t.into_waker();
        assert_eq!(WakeTarget::unpack(w.data()), t);
        let w2 = w.clone();
        assert!(w.will_wake(&w2));
    }
}
