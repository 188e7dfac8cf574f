//! Suspending a coroutine from deep inside it, through a yielder kept as a raw pointer.
//!
//! corosensei hands the yielder to the coroutine's closure by reference. Greenlets and green
//! threads need it later, from wherever on their stack a switch happens, so they keep a
//! pointer to it. The pointer is valid while the coroutine is alive (the yielder sits at the
//! base of its stack), and using it is right only on that coroutine's own stack: from a
//! generator's stack nested inside, it would suspend the wrong frames. [`Suspender::suspend`]
//! checks both at run time, so callers need no `unsafe`.

use corosensei::Yielder;

/// A copyable handle to a live coroutine's yielder, with the bounds of its stack.
pub(crate) struct Suspender<Y> {
    yielder: *const Yielder<(), Y>,
    bottom: usize,
    top: usize,
}

impl<Y> Clone for Suspender<Y> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Y> Copy for Suspender<Y> {}

impl<Y> Suspender<Y> {
    /// A handle for the coroutine running on `[bottom, top)` whose yielder is `yielder`.
    /// `yielder` may be null until the coroutine has started.
    pub(crate) fn new(yielder: *const Yielder<(), Y>, bottom: usize, top: usize) -> Self {
        Suspender {
            yielder,
            bottom,
            top,
        }
    }

    /// Whether the calling code runs on this coroutine's own stack.
    pub(crate) fn on_own_stack(&self) -> bool {
        let marker = 0u8;
        let sp = &marker as *const u8 as usize;
        !self.yielder.is_null() && sp >= self.bottom && sp < self.top
    }

    /// Suspends the coroutine, handing `value` to whoever resumed it; returns when it is
    /// resumed.
    ///
    /// # Panics
    ///
    /// If not called on the coroutine's own stack (`what` names the caller in the message).
    pub(crate) fn suspend(&self, what: &str, value: Y) {
        assert!(
            self.on_own_stack(),
            "{what} called from a generator or greenlet running inside the coroutine it would \
             suspend: only the coroutine's own code can suspend it"
        );
        // SAFETY: the yielder is non-null and we run on its coroutine's stack (checked above),
        // so the coroutine is alive and running, and its yielder at the base of that stack is
        // valid; suspending from there is exactly corosensei's `Yielder::suspend` contract.
        unsafe { (*self.yielder).suspend(value) }
    }
}
