//! Where a green thread's blocking-looking calls find their way back to the loop.
//!
//! While the loop polls a green thread's task, the task's poll frame holds a [`Ctx`] (the
//! task's waker and the coroutine's [`Suspender`]) and a thread-local points at it. A green
//! call such as `green::wait` reaches it through [`with_current`], polls its future with the
//! task's waker and, if the future is not ready, suspends the coroutine: the poll returns
//! `Pending`, the loop runs everything else, and the waker brings the task (and so the
//! coroutine) back.
//!
//! The pointer is set only while the poll frame that owns the `Ctx` is on the stack
//! ([`Enter`]), and the `Ctx` is lent only for the duration of a closure, so no reference to
//! it outlives the poll.

use std::cell::Cell;
use std::task::Waker;

use corosensei::Yielder;

use super::suspend::Suspender;

/// What a running green thread needs from the poll that resumed it.
pub(crate) struct Ctx<'a> {
    /// The waker of the green thread's task, for the futures it waits on.
    pub(crate) waker: &'a Waker,
    /// The coroutine's yielder (null until the coroutine has started and published it).
    yielder: Cell<*const Yielder<(), ()>>,
    /// The green thread's stack, `[bottom, top)`.
    bottom: usize,
    top: usize,
    /// The green thread is being killed (its task was cancelled or dropped): waits unwind.
    pub(crate) teardown: bool,
    /// Set when a wait starts the kill's unwinding, so the waits of destructors during it are
    /// let through. Kept by the green thread across polls. (`std::thread::panicking()` cannot
    /// say this: it is per OS thread, and another green thread may be suspended mid-panic.)
    pub(crate) exiting: &'a Cell<bool>,
    /// The green thread's task: `getcurrent` must work while it is killed by closing the
    /// loop, when the loop has no current task.
    pub(crate) task: Option<&'a crate::task::TaskRef>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        waker: &'a Waker,
        yielder: *const Yielder<(), ()>,
        (bottom, top): (usize, usize),
        teardown: bool,
        exiting: &'a Cell<bool>,
        task: Option<&'a crate::task::TaskRef>,
    ) -> Self {
        Ctx {
            waker,
            yielder: Cell::new(yielder),
            bottom,
            top,
            teardown,
            exiting,
            task,
        }
    }

    /// Records the coroutine's yielder, which it publishes when it starts.
    pub(crate) fn publish(&self, yielder: &Yielder<(), ()>) {
        self.yielder.set(yielder);
    }

    /// The yielder, to keep for the next poll.
    pub(crate) fn yielder(&self) -> *const Yielder<(), ()> {
        self.yielder.get()
    }

    /// How to suspend the green thread.
    pub(crate) fn suspender(&self) -> Suspender<()> {
        Suspender::new(self.yielder.get(), self.bottom, self.top)
    }
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

/// Runs `f` with the current green context.
///
/// # Panics
///
/// Outside a green thread, or on a generator's or greenlet's stack inside one, with a message
/// naming `function`.
pub(crate) fn with_current<R>(function: &str, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
    let ptr = CURRENT.with(|c| c.get());
    if ptr.is_null() {
        panic!(
            "{function} called outside a green thread: call it from code started by \
             kettle::green::spawn or kettle::green::run (async code awaits instead)"
        );
    }
    // SAFETY: non-null only while the poll frame owning the Ctx is on the stack (Enter), and
    // the reference does not escape `f`.
    let ctx = unsafe { &*ptr };
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    if sp < ctx.bottom || sp >= ctx.top {
        panic!(
            "{function} called from a generator or greenlet running inside a green thread: \
             only the green thread's own code can suspend it"
        );
    }
    f(ctx)
}

/// Whether the calling code runs on a green thread (its own stack).
pub(crate) fn in_green_thread() -> bool {
    let ptr = CURRENT.with(|c| c.get());
    if ptr.is_null() {
        return false;
    }
    // SAFETY: as in `with_current`.
    let ctx = unsafe { &*ptr };
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    sp >= ctx.bottom && sp < ctx.top
}
