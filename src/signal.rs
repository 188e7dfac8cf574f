//! Unix signals delivered to the event loop: [`Signals`], [`ctrl_c`], and the machinery behind
//! [`EventLoop::add_signal_handler`](crate::EventLoop::add_signal_handler).
//!
//! A signal interrupts whatever thread the kernel picks, at any instruction, so almost nothing
//! is safe to do in a signal handler. Kettle's handler does the one thing that is: it writes
//! the signal's number as a byte into a pipe per listener (the classic self-pipe trick, which
//! asyncio uses too). The pipe's read end is registered with the listener's event loop like a
//! socket, so a signal wakes the task waiting in [`Signals::recv`] through the ordinary
//! reactor, on the loop's own thread, where it may do anything.
//!
//! ```
//! use kettle::signal::{raise_signal, Signals, SIGUSR1};
//!
//! kettle::run(async {
//!     let mut signals = Signals::new(&[SIGUSR1]).unwrap();
//!     // Usually another process sends it (`kill -USR1 <pid>`); here we send our own.
//!     raise_signal(SIGUSR1).unwrap();
//!     assert_eq!(signals.recv().await.unwrap(), SIGUSR1);
//! });
//! ```
//!
//! A server's graceful shutdown:
//!
//! ```no_run
//! use kettle::signal::{Signals, SIGINT, SIGTERM};
//!
//! # async fn serve() {}
//! kettle::run(async {
//!     let mut signals = Signals::new(&[SIGINT, SIGTERM]).unwrap();
//!     let server = kettle::spawn(serve());
//!     let sig = signals.recv().await.unwrap();
//!     println!("got signal {sig}, shutting down");
//!     server.cancel();
//! });
//! ```
//!
//! # Semantics
//!
//! - **Every listener gets every signal.** Several [`Signals`] (on one loop, or on loops on
//!   different threads) that listen for the same signal each receive it.
//! - **Nothing is lost while nobody awaits.** A signal that arrives between two `recv` calls,
//!   or before the first, waits in the pipe.
//! - **Repeats may coalesce.** The kernel merges a standard signal that is sent again before
//!   its handler ran, so three quick `SIGUSR1`s may arrive as one or two. Beyond that each
//!   delivery is one byte in the pipe, in order; a listener that leaves 64 KiB of signals
//!   unread misses further ones until it reads.
//! - **The disposition is borrowed, then returned.** While at least one listener for a signal
//!   exists, Kettle's handler replaces the signal's previous disposition (the default action,
//!   `SIG_IGN`, or another handler, which is not called meanwhile). When the last listener goes
//!   away the previous disposition is restored, so Ctrl+C kills a program again after its
//!   server stopped listening.
//! - **Only catchable, asynchronous signals.** `SIGKILL` and `SIGSTOP` cannot be caught;
//!   `SIGSEGV`, `SIGBUS`, `SIGILL` and `SIGFPE` report a fault of the thread that caused it
//!   and must be handled there and then. Asking for them is an
//!   [`InvalidInput`](std::io::ErrorKind::InvalidInput) error, as is a number that is not a
//!   signal or one the C library reserves.
//!
//! At most 256 listeners (each `Signals`, plus one per loop that has
//! `add_signal_handler` handlers) may exist in a process at once.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::runtime::context;
use crate::runtime::core::{CallbackCell, Core, SIGNAL_TOKEN};
use crate::runtime::reactor::{Direction, Registration};
use crate::sys::epoll::Interest;
use crate::sys::signal::{self as sys, Listener};

pub use libc::{
    SIGALRM, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGTSTP, SIGUSR1,
    SIGUSR2, SIGWINCH,
};

/// The signal set of `signals`, each checked.
fn mask_of(signals: &[i32]) -> io::Result<u64> {
    let mut mask = 0;
    for &sig in signals {
        sys::check(sig)?;
        mask |= sys::bit(sig).expect("checked signals are in range");
    }
    Ok(mask)
}

/// A stream of the signals delivered to the process, for one task on one event loop.
///
/// Created with the signals to listen for; every delivery of one of them is returned by
/// [`recv`](Self::recv) (or the [`Stream`](futures_core::Stream) impl), in order. See the
/// [module docs](self) for coalescing and dispositions. Dropping it stops listening and, if
/// it was the last listener for a signal, restores that signal's previous disposition.
///
/// `Signals` belongs to the loop it was created on (it is not `Send`). Loops on other threads
/// create their own; each receives every signal.
///
/// ```
/// use kettle::signal::{raise_signal, Signals, SIGUSR2};
///
/// kettle::run(async {
///     let mut signals = Signals::new(&[SIGUSR2]).unwrap();
///     raise_signal(SIGUSR2).unwrap(); // before anyone awaits: kept, not lost
///     kettle::sleep(std::time::Duration::from_millis(10)).await;
///     assert_eq!(signals.recv().await.unwrap(), SIGUSR2);
/// });
/// ```
pub struct Signals {
    // Field order is drop order: first the handler stops writing and the write end closes,
    // then the read end is deregistered, then it closes.
    listener: Listener,
    reg: Registration,
    read: OwnedFd,
    /// Signals read from the pipe but not yet returned.
    buf: [u8; 32],
    pos: usize,
    len: usize,
}

impl Signals {
    /// Starts listening for `signals` (e.g. `&[SIGINT, SIGTERM]`).
    ///
    /// Must be called inside a running event loop, whose reactor then watches the listener's
    /// pipe. Errors: [`InvalidInput`](io::ErrorKind::InvalidInput) for an empty list or a
    /// signal that cannot be waited for (see the [module docs](self)); otherwise when no loop
    /// runs on this thread, the process is out of file descriptors, or 256 listeners already
    /// exist.
    pub fn new(signals: &[i32]) -> io::Result<Signals> {
        let mask = mask_of(signals)?;
        if mask == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Signals::new needs at least one signal to listen for",
            ));
        }
        if context::with_current(|_| ()).is_none() {
            return Err(io::Error::other(
                "kettle::signal::Signals must be created inside a running kettle event loop",
            ));
        }
        let (read, write) = sys::pipe()?;
        let reg = Registration::new(read.as_raw_fd())?;
        let listener = Listener::new(write, mask)?;
        Ok(Signals {
            listener,
            reg,
            read,
            buf: [0; 32],
            pos: 0,
            len: 0,
        })
    }

    /// Waits for the next signal and returns its number.
    ///
    /// Cancellation-safe: a signal is taken from the pipe only by the poll that returns it, so
    /// dropping the future (in a timeout, say) loses nothing. An error only if the listener's
    /// event loop has been closed.
    pub async fn recv(&mut self) -> io::Result<i32> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](Self::recv): `Ready` with the next signal, or `Pending` with
    /// the task woken when one arrives.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<i32>> {
        if self.pos < self.len {
            let sig = self.buf[self.pos];
            self.pos += 1;
            return Poll::Ready(Ok(sig as i32));
        }
        let fd = self.read.as_raw_fd();
        let buf = &mut self.buf;
        let n = std::task::ready!(self.reg.poll_io(Direction::Read, cx, || sys::read(fd, buf)))?;
        if n == 0 {
            // Cannot happen while `listener` holds the write end open.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the signal pipe was closed",
            )));
        }
        self.len = n;
        self.pos = 1;
        Poll::Ready(Ok(self.buf[0] as i32))
    }

    /// The signals this listener receives, lowest number first.
    pub fn signals(&self) -> Vec<i32> {
        sys::signals_in(self.listener.mask()).collect()
    }
}

/// Yields each delivered signal; ends only if the listener's event loop has been closed.
impl futures_core::Stream for Signals {
    type Item = i32;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        self.get_mut().poll_recv(cx).map(Result::ok)
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("signals", &self.signals())
            .field("unread", &(self.len - self.pos))
            .finish()
    }
}

/// Waits for one `SIGINT` (Ctrl+C in a terminal).
///
/// The handler is installed when the future is first polled and removed when it completes or
/// is dropped: while it waits, Ctrl+C no longer kills the process; afterwards (if nothing else
/// listens for `SIGINT`) it does again. Must be awaited inside a running event loop.
///
/// ```no_run
/// kettle::run(async {
///     println!("press Ctrl+C to stop");
///     kettle::signal::ctrl_c().await.unwrap();
///     println!("stopping");
/// });
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut signals = Signals::new(&[libc::SIGINT])?;
    signals.recv().await.map(drop)
}

/// Sends `sig` to the calling thread, as Python's `signal.raise_signal` does; handy for tests.
/// With a Kettle listener for `sig` in place, the handler has run when this returns.
pub fn raise_signal(sig: i32) -> io::Result<()> {
    sys::raise(sig)
}

// ---------------------------------------------------------------------------------------------
// asyncio's loop.add_signal_handler: a per-loop self-pipe that the loop reads itself.

/// The signal handlers of one loop (`add_signal_handler`). Like asyncio's self-pipe, the loop
/// owns one listener whose read end is registered under [`SIGNAL_TOKEN`]; when it turns
/// readable, `Core::poll_io` calls [`dispatch_handlers`], which queues each signal's callback.
/// No task is involved, so handlers neither show up among the loop's tasks nor need it to be
/// running when they are added.
pub(crate) struct LoopHandlers {
    // Drop order: stop the writes, then close the read end (deregistered beforehand).
    listener: Listener,
    read: OwnedFd,
    handlers: Vec<(i32, Rc<Handler>)>,
}

struct Handler {
    /// Cleared when the handler is removed or replaced, so a call already queued is skipped
    /// (asyncio cancels the handle).
    active: Cell<bool>,
    callback: RefCell<Box<dyn FnMut()>>,
    name: &'static str,
}

impl Handler {
    fn call(&self) {
        if !self.active.get() {
            return;
        }
        // Calls are queued callbacks, run one after another, so the borrow is always free.
        if let Ok(mut f) = self.callback.try_borrow_mut() {
            f();
        }
    }
}

impl LoopHandlers {
    fn new(core: &Core) -> io::Result<LoopHandlers> {
        let (read, write) = sys::pipe()?;
        let listener = Listener::new(write, 0)?;
        // Level-triggered: `dispatch_handlers` reads one bufferful per event, and whatever is
        // left is reported again on the next poll.
        let interest = Interest {
            readable: true,
            writable: false,
        };
        core.selector()
            .register(read.as_raw_fd(), SIGNAL_TOKEN, interest, false)?;
        core.add_io_source(1);
        Ok(LoopHandlers {
            listener,
            read,
            handlers: Vec::new(),
        })
    }
}

/// `EventLoop::add_signal_handler`: `callback` runs (as a loop callback) after each delivery of
/// `sig`; it replaces a handler `sig` already had on this loop.
pub(crate) fn add_handler(
    core: &Core,
    sig: i32,
    callback: Box<dyn FnMut()>,
    name: &'static str,
) -> io::Result<()> {
    let bit = mask_of(&[sig])?;
    if core.is_closed() {
        return Err(io::Error::other("the event loop is closed"));
    }
    let handler = Rc::new(Handler {
        active: Cell::new(true),
        callback: RefCell::new(callback),
        name,
    });
    let mut slot = core.signal_handlers.borrow_mut();
    if slot.is_none() {
        *slot = Some(LoopHandlers::new(core)?);
    }
    let handlers = slot.as_mut().expect("just created");
    let mask = handlers.listener.mask();
    if let Err(e) = handlers.listener.set_mask(mask | bit) {
        let empty = handlers.handlers.is_empty();
        drop(slot);
        if empty {
            close_handlers(core);
        }
        return Err(e);
    }
    let replaced = match handlers.handlers.iter_mut().find(|(s, _)| *s == sig) {
        Some((_, h)) => Some(std::mem::replace(h, handler)),
        None => {
            handlers.handlers.push((sig, handler));
            None
        }
    };
    drop(slot);
    // Dropped outside the borrow: the old callback's captures may run arbitrary code.
    if let Some(old) = replaced {
        old.active.set(false);
    }
    Ok(())
}

/// `EventLoop::remove_signal_handler`: true if `sig` had a handler on this loop.
pub(crate) fn remove_handler(core: &Core, sig: i32) -> bool {
    let Some(bit) = sys::bit(sig) else {
        return false;
    };
    let mut slot = core.signal_handlers.borrow_mut();
    let Some(handlers) = slot.as_mut() else {
        return false;
    };
    let Some(i) = handlers.handlers.iter().position(|(s, _)| *s == sig) else {
        return false;
    };
    let (_, removed) = handlers.handlers.swap_remove(i);
    removed.active.set(false);
    let mask = handlers.listener.mask();
    // Only releasing signals, which cannot fail.
    let _ = handlers.listener.set_mask(mask & !bit);
    let empty = handlers.handlers.is_empty();
    drop(slot);
    if empty {
        close_handlers(core);
    }
    drop(removed);
    true
}

/// Reads the signals that arrived (called by the loop when the pipe is readable) and queues
/// the callback of each one that has a handler.
pub(crate) fn dispatch_handlers(core: &Core) {
    let handlers = core.signal_handlers.borrow();
    let Some(handlers) = handlers.as_ref() else {
        return;
    };
    let mut buf = [0u8; 64];
    let Ok(n) = sys::read(handlers.read.as_raw_fd(), &mut buf) else {
        // EAGAIN: a spurious wake-up; nothing else can fail on a pipe we own.
        return;
    };
    for &sig in &buf[..n] {
        if let Some((_, h)) = handlers.handlers.iter().find(|(s, _)| *s == sig as i32) {
            let (h, name) = (h.clone(), h.name);
            core.push_callback(CallbackCell::new(Box::new(move || h.call()), name));
        }
    }
}

/// Removes every handler of the loop (when it closes, or the last one is removed), restoring
/// the signals' previous dispositions.
pub(crate) fn close_handlers(core: &Core) {
    let Some(handlers) = core.signal_handlers.take() else {
        return;
    };
    let _ = core.selector().deregister(handlers.read.as_raw_fd());
    core.add_io_source(-1);
    for (_, h) in &handlers.handlers {
        h.active.set(false);
    }
    drop(handlers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_core::Stream;

    /// The `Stream` impl yields deliveries in order, also past one read buffer's worth. Uses a
    /// real-time signal (queued, never merged) that no other unit test touches.
    #[test]
    fn stream_yields_every_delivery_in_order() {
        let sig = libc::SIGRTMIN() + 10;
        let other = libc::SIGRTMIN() + 11;
        crate::run(async {
            let mut signals = Signals::new(&[sig, other]).unwrap();
            assert_eq!(signals.signals(), [sig, other]);
            let mut sent = Vec::new();
            for i in 0..100 {
                let s = if i % 3 == 0 { other } else { sig };
                raise_signal(s).unwrap();
                sent.push(s);
            }
            let mut got = Vec::new();
            while got.len() < sent.len() {
                let next = poll_fn(|cx| Pin::new(&mut signals).poll_next(cx)).await;
                got.push(next.expect("the stream does not end"));
            }
            assert_eq!(got, sent);
            assert!(format!("{signals:?}").contains("Signals"));
        });
    }
}
