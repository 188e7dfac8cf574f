//! Where a green thread's blocking-looking calls find their way back to the loop.
//!
//! While the loop polls a green thread's task, the task's poll frame holds a [`Ctx`] (the
//! task's waker and the coroutine's yielder) and a thread-local points at it. A green call
//! such as [`wait`](super::wait) finds it there, polls its future with the task's waker and,
//! if the future is not ready, suspends the coroutine: the poll returns `Pending`, the loop
//! runs everything else, and the waker brings the task (and so the coroutine) back.
//!
//! The pointer is valid exactly while the poll frame is on the loop's stack, which is exactly
//! while code on the green thread's stack runs; it is re-read after every suspension, never
//! kept across one.

use std::cell::Cell;
use std::task::Waker;

use corosensei::Yielder;

/// What a running green thread needs from the poll that resumed it.
pub(crate) struct Ctx<'a> {
    /// The waker of the green thread's task, for the futures it waits on.
    pub(crate) waker: &'a Waker,
    /// The coroutine's yielder; null until the coroutine has started and published it.
    pub(crate) yielder: Cell<*const Yielder<(), ()>>,
    /// The green thread's stack, `[bottom, top)`: code running on another stack (a generator
    /// or greenlet inside the green thread) must not suspend the green thread.
    pub(crate) bottom: usize,
    pub(crate) top: usize,
    /// The green thread is being killed (its task was cancelled or dropped): waits unwind.
    pub(crate) teardown: bool,
    /// Whether its stack was already unwinding (a destructor waiting during a panic) when it
    /// last suspended: written by every suspension, kept by the green thread between polls.
    pub(crate) suspended_unwinding: Cell<bool>,
    /// Killing has started unwinding its stack (set by the first wait under `teardown`).
    pub(crate) exiting: Cell<bool>,
    /// The green thread's task: `getcurrent` must work while it is killed by closing the
    /// loop, when the loop has no current task.
    pub(crate) task: Option<&'a crate::task::TaskRef>,
}

thread_local! {
    static CURRENT: Cell<*const Ctx<'static>> = const { Cell::new(std::ptr::null()) };
}

/// Makes `ctx` the current green context until dropped (then the previous one comes back, so
/// a loop run from inside a green thread nests correctly).
pub(crate) struct Enter {
    prev: *const Ctx<'static>,
}

impl Enter {
    pub(crate) fn new(ctx: &Ctx<'_>) -> Enter {
        // Erasing the lifetime: the pointer is cleared (by drop) before `ctx` goes away.
        let ptr = (ctx as *const Ctx<'_>).cast::<Ctx<'static>>();
        Enter {
            prev: CURRENT.with(|c| c.replace(ptr)),
        }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// The current green context, checked: called outside a green thread (or on a generator's or
/// greenlet's stack inside one) this panics with a message naming `function`.
///
/// The returned reference must not be kept across a suspension.
pub(crate) fn current(function: &str) -> &'static Ctx<'static> {
    let ptr = CURRENT.with(|c| c.get());
    if ptr.is_null() {
        panic!(
            "{function} called outside a green thread: it suspends the calling green thread, \
             so call it from code started by kettle::green::spawn or kettle::green::run \
             (async code awaits instead)"
        );
    }
    // SAFETY: non-null only while the poll frame owning the Ctx is on the stack (Enter).
    let ctx = unsafe { &*ptr };
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    if sp < ctx.bottom || sp >= ctx.top {
        panic!(
            "{function} called from a generator or greenlet running inside a green thread: \
             only the green thread's own code can suspend it"
        );
    }
    ctx
}

/// Whether the calling code runs on a green thread (its own stack).
pub(crate) fn in_green_thread() -> bool {
    let ptr = CURRENT.with(|c| c.get());
    if ptr.is_null() {
        return false;
    }
    // SAFETY: as in `current`.
    let ctx = unsafe { &*ptr };
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    sp >= ctx.bottom && sp < ctx.top
}
