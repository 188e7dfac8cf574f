//! The thread-local "current loop": how wakers, `spawn` and `sleep` find the loop running on
//! their thread without being handed a reference.
//!
//! # Invariant
//! `CURRENT` is non-null only while a `run_*` frame on this thread is executing, and that frame
//! holds an `Rc<Core>` keeping the pointee alive. [`Enter`] sets the pointer when the frame
//! starts and clears it when the frame ends (also on unwind, since it is a drop guard). So a
//! reference derived from `CURRENT` is valid for any code the loop runs, and [`with_current`]
//! never lets such a reference outlive the closure it is lent to.

use std::cell::Cell;
use std::ptr;

use super::core::Core;

thread_local! {
    static CURRENT: Cell<*const Core> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with the loop running on this thread, or returns `None` when no loop runs here.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    // `try_with`: a waker may fire from another thread-local's destructor after this one is
    // gone; then no loop is running here, which is the truth.
    let p = CURRENT.try_with(|c| c.get()).unwrap_or(ptr::null());
    if p.is_null() {
        return None;
    }
    // SAFETY: see the module invariant: a non-null CURRENT points at a Core kept alive by the
    // running `run_*` frame, which outlives this call; the reference does not escape `f`.
    Some(f(unsafe { &*p }))
}

/// Marks `core` as this thread's running loop until dropped.
pub(crate) struct Enter {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Enter {
    /// Installs `core`; the caller must keep an `Rc<Core>` alive for as long as the guard lives.
    /// Fails when another loop already runs on this thread (asyncio forbids nesting too).
    pub(crate) fn new(core: &Core) -> Option<Enter> {
        CURRENT.with(|c| {
            if !c.get().is_null() {
                return None;
            }
            c.set(core as *const Core);
            Some(Enter {
                _not_send: std::marker::PhantomData,
            })
        })
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(ptr::null()));
    }
}
