//! Unix signals, the raw part: one process-wide `sigaction` handler that turns a signal into a
//! byte written to the pipe of every listener interested in it.
//!
//! A signal handler may interrupt any thread at any instruction, including one that holds a
//! lock or is inside `malloc`, so the handler here only does what is async-signal-safe: it
//! reads atomics from a fixed static table and calls `write(2)`. Everything else (choosing a
//! slot, counting listeners per signal, installing and restoring dispositions) runs in normal
//! context under a mutex the handler never touches.
//!
//! # The table
//!
//! [`SLOTS`] holds [`MAX_LISTENERS`] entries, one per live [`Listener`]. A slot has:
//!
//! - `fd`: the write end of the listener's non-blocking pipe, or `-1`;
//! - `mask`: which signals the listener wants (bit `sig - 1`), or `0` when the slot is free;
//! - `busy`: how many handler invocations are between "I saw this slot's mask" and "I am done
//!   writing to its fd".
//!
//! # Invariant: the handler never writes to an fd that was closed
//!
//! Closing a pipe while a handler on another thread is about to write to it would be a bug
//! worse than a lost signal: the fd number may already have been reused by a socket, and the
//! handler would write a stray byte into somebody else's connection. So:
//!
//! - the handler increments `busy`, *then* loads `mask` and `fd`, writes, and decrements `busy`;
//! - unregistering stores `mask = 0` and `fd = -1`, *then* waits until `busy` is `0`, and only
//!   then lets the caller close the fd.
//!
//! All four operations are `SeqCst`, so they sit in one total order. Either the handler's
//! increment comes first (then unregistering sees `busy > 0` and waits for the write to
//! finish) or the unregistering load of `busy` comes first (then its stores of `mask`/`fd`
//! precede the handler's loads, and the handler sees `0`/`-1`, or the values of a newer
//! registration of the slot, whose fd is open). The wait is short: a handler on another thread
//! does a few loads and one non-blocking `write`. A handler interrupting the unregistering
//! thread itself runs to completion before that thread continues, so it cannot make the wait
//! spin forever either.
//!
//! Registration stores `fd` before `mask`, so a handler that sees a listener's bit also sees
//! its fd.
//!
//! # Dispositions
//!
//! The first listener for a signal installs the handler and saves the previous disposition;
//! when the last one goes away the previous disposition is restored (so Ctrl+C kills a process
//! again once its server stopped listening). The previous handler is *not* called while ours
//! is installed. If someone else replaced our handler in the meantime, theirs is left alone.
//!
//! # Delivery and coalescing
//!
//! The kernel already merges a standard signal that arrives again while it is pending. Past
//! that, every handler invocation writes one byte (the signal number) per interested listener;
//! the pipe keeps them in order until the listener reads them. A listener that leaves 64 KiB
//! of signals unread (the pipe's capacity) misses further ones until it reads: the write fails
//! with `EAGAIN`, which the handler ignores rather than block.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;

use super::cvt;

/// How many listeners (each `Signals`, plus one per loop with `add_signal_handler` handlers)
/// may exist at once in the process. The handler scans all slots, so this stays small.
pub(crate) const MAX_LISTENERS: usize = 256;

/// Signal numbers run from 1 to `SIGRTMAX` (64 on Linux), so a `u64` holds a set of them.
const NSIG: usize = 65;

struct Slot {
    fd: AtomicI32,
    mask: AtomicU64,
    busy: AtomicU32,
}

/// The table the handler reads; see the module docs for the protocol.
static SLOTS: [Slot; MAX_LISTENERS] = [const {
    Slot {
        fd: AtomicI32::new(-1),
        mask: AtomicU64::new(0),
        busy: AtomicU32::new(0),
    }
}; MAX_LISTENERS];

/// Bookkeeping the handler never reads: which slots are taken, how many listeners each signal
/// has, and the disposition each installed signal had before us.
struct Registry {
    taken: [bool; MAX_LISTENERS],
    listeners: [usize; NSIG],
    previous: [Option<libc::sigaction>; NSIG],
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    taken: [false; MAX_LISTENERS],
    listeners: [0; NSIG],
    previous: [None; NSIG],
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding the lock cannot leave the arrays inconsistent in a way that
    // matters more than refusing all signal work forever would.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bit of `sig` in a signal set, or `None` if `sig` is out of range.
pub(crate) fn bit(sig: i32) -> Option<u64> {
    (1..NSIG as i32).contains(&sig).then(|| 1u64 << (sig - 1))
}

/// The signals of a set, lowest first.
pub(crate) fn signals_in(mask: u64) -> impl Iterator<Item = i32> {
    (1..NSIG as i32).filter(move |&s| mask & (1u64 << (s - 1)) != 0)
}

/// The conventional name of `sig`, for messages.
pub(crate) fn name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

fn describe(sig: i32) -> String {
    match name(sig) {
        Some(n) => format!("signal {sig} ({n})"),
        None => format!("signal {sig}"),
    }
}

/// Checks that `sig` is a signal an event loop can wait for; an `InvalidInput` error saying
/// why not otherwise.
pub(crate) fn check(sig: i32) -> io::Result<()> {
    let why = match sig {
        libc::SIGKILL | libc::SIGSTOP => "cannot be caught or ignored",
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => {
            "reports a fault of the thread that caused it; it must be handled synchronously on \
             that thread, not delivered to an event loop"
        }
        s if s < 1 || s > libc::SIGRTMAX() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{sig} is not a signal number (valid: 1 to {})",
                    libc::SIGRTMAX()
                ),
            ))
        }
        s if s > 31 && s < libc::SIGRTMIN() => "is reserved by the C library for its own use",
        _ => return Ok(()),
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} {why}", describe(sig)),
    ))
}

/// The process-wide handler. Async-signal-safe: atomics and `write(2)` only, no allocation,
/// no locks, `errno` preserved for the code it interrupted.
extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: `__errno_location` returns a valid pointer to this thread's errno; reading and
    // writing it is what every C handler does to preserve errno.
    let saved_errno = unsafe { *libc::__errno_location() };
    if let Some(bit) = bit(sig) {
        let byte = sig as u8;
        for slot in SLOTS.iter() {
            // Cheap skip of slots that cannot want this signal; the real check is below,
            // inside the busy window.
            if slot.mask.load(std::sync::atomic::Ordering::Relaxed) & bit == 0 {
                continue;
            }
            slot.busy.fetch_add(1, SeqCst);
            if slot.mask.load(SeqCst) & bit != 0 {
                let fd = slot.fd.load(SeqCst);
                if fd >= 0 {
                    // SAFETY: by the module invariant `fd` stays open until `busy` drops back,
                    // and the buffer is one live byte. The pipe is non-blocking, so a full
                    // pipe fails with EAGAIN instead of hanging the interrupted thread; the
                    // result is deliberately ignored (see "Delivery and coalescing").
                    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
                }
            }
            slot.busy.fetch_sub(1, SeqCst);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

fn handler_address() -> libc::sighandler_t {
    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// The current disposition of `sig`.
pub(crate) fn disposition(sig: i32) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask, no flags).
    let mut cur: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: a null `act` only queries; `cur` is a live, writable sigaction.
    cvt(unsafe { libc::sigaction(sig, ptr::null(), &mut cur) })?;
    Ok(cur)
}

/// True when `sig` is currently handled by this module's handler.
pub(crate) fn is_installed(sig: i32) -> io::Result<bool> {
    let cur = disposition(sig)?;
    Ok(cur.sa_sigaction == handler_address() && cur.sa_flags & libc::SA_SIGINFO == 0)
}

/// Installs the handler for `sig` and returns the disposition it replaced.
fn install(sig: i32) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is valid; the fields that matter are set below.
    let mut act: libc::sigaction = unsafe { mem::zeroed() };
    act.sa_sigaction = handler_address();
    // SA_RESTART: a blocking read elsewhere in the process is resumed, not failed with EINTR.
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act.sa_mask` is a live sigset_t.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: as in `disposition`.
    let mut old: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: `act` and `old` are live sigactions; `on_signal` is async-signal-safe and
    // `extern "C"`, as a handler must be.
    cvt(unsafe { libc::sigaction(sig, &act, &mut old) })?;
    Ok(old)
}

/// Puts back `previous` for `sig`, unless someone replaced our handler meanwhile.
fn restore(sig: i32, previous: &libc::sigaction) {
    if is_installed(sig).unwrap_or(false) {
        // SAFETY: `previous` is the sigaction the kernel handed us when we installed ours.
        unsafe { libc::sigaction(sig, previous, ptr::null_mut()) };
    }
}

impl Registry {
    /// Counts one more listener for every signal in `mask`, installing the handler where it is
    /// the first. All or nothing: on error the counts and dispositions are as before.
    fn acquire(&mut self, mask: u64) -> io::Result<()> {
        let mut done = 0u64;
        for sig in signals_in(mask) {
            let i = sig as usize;
            if self.listeners[i] == 0 {
                match install(sig) {
                    Ok(old) => self.previous[i] = Some(old),
                    Err(e) => {
                        self.release(done);
                        return Err(e);
                    }
                }
            }
            self.listeners[i] += 1;
            done |= 1u64 << (sig - 1);
        }
        Ok(())
    }

    /// Counts one listener less for every signal in `mask`, restoring the previous disposition
    /// where it was the last.
    fn release(&mut self, mask: u64) {
        for sig in signals_in(mask) {
            let i = sig as usize;
            self.listeners[i] -= 1;
            if self.listeners[i] == 0 {
                if let Some(prev) = self.previous[i].take() {
                    restore(sig, &prev);
                }
            }
        }
    }
}

/// Sends `sig` to the calling thread (`raise(3)`).
pub(crate) fn raise(sig: i32) -> io::Result<()> {
    // SAFETY: raise has no memory-safety preconditions; an invalid signal is an EINVAL error.
    cvt(unsafe { libc::raise(sig) })?;
    Ok(())
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a live array of two c_ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: both fds were just created by pipe2 and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// One non-blocking read of signal numbers from a listener's pipe.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is live and writable for `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One entry of the handler's table: while it lives, every signal in its set is written to
/// its pipe. Dropping it unregisters (waiting out any handler mid-write), restores dispositions
/// nobody listens to any more, and then closes the write end.
pub(crate) struct Listener {
    slot: usize,
    mask: u64,
    /// The pipe's write end, kept open for the handler, which reaches it through the slot.
    _write: OwnedFd,
}

impl Listener {
    /// Registers `write` (the non-blocking write end of a pipe) for the signals in `mask`,
    /// each of which must have passed [`check`].
    pub(crate) fn new(write: OwnedFd, mask: u64) -> io::Result<Listener> {
        let mut reg = registry();
        let slot = reg.taken.iter().position(|t| !t).ok_or_else(|| {
            io::Error::other(format!(
                "too many signal listeners: at most {MAX_LISTENERS} may exist at once"
            ))
        })?;
        // Publish the fd before the mask (see the module docs), and both before the handler
        // is installed, so the first signal after `new` returns already reaches this pipe.
        let s = &SLOTS[slot];
        s.fd.store(write.as_raw_fd(), SeqCst);
        s.mask.store(mask, SeqCst);
        if let Err(e) = reg.acquire(mask) {
            clear_slot(s);
            return Err(e);
        }
        reg.taken[slot] = true;
        Ok(Listener {
            slot,
            mask,
            _write: write,
        })
    }

    /// The signals this listener receives.
    pub(crate) fn mask(&self) -> u64 {
        self.mask
    }

    /// Changes the set of signals, installing and restoring handlers as needed.
    pub(crate) fn set_mask(&mut self, mask: u64) -> io::Result<()> {
        let mut reg = registry();
        let added = mask & !self.mask;
        let removed = self.mask & !mask;
        reg.acquire(added)?;
        // The fd stays open, so a handler already past its mask check may still write a
        // signal that was just removed; readers ignore signals they no longer want.
        SLOTS[self.slot].mask.store(mask, SeqCst);
        reg.release(removed);
        self.mask = mask;
        Ok(())
    }
}

/// Empties `s` and waits until no handler is using its old fd.
fn clear_slot(s: &Slot) {
    s.mask.store(0, SeqCst);
    s.fd.store(-1, SeqCst);
    while s.busy.load(SeqCst) != 0 {
        std::hint::spin_loop();
        std::thread::yield_now();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut reg = registry();
        clear_slot(&SLOTS[self.slot]);
        reg.taken[self.slot] = false;
        reg.release(self.mask);
        // `self._write` closes after this, when no handler can reach it any more.
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("slot", &self.slot)
            .field("signals", &signals_in(self.mask).collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_sets() {
        assert_eq!(bit(1), Some(1));
        assert_eq!(bit(64), Some(1 << 63));
        assert_eq!(bit(0), None);
        assert_eq!(bit(65), None);
        let set = bit(libc::SIGINT).unwrap() | bit(libc::SIGTERM).unwrap();
        assert_eq!(
            signals_in(set).collect::<Vec<_>>(),
            [libc::SIGINT, libc::SIGTERM]
        );
    }

    #[test]
    fn uncatchable_and_fault_signals_are_rejected() {
        for sig in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            0,
            -1,
            65,
            32,
        ] {
            let err = check(sig).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{sig}: {err}");
        }
        let msg = check(libc::SIGKILL).unwrap_err().to_string();
        assert!(
            msg.contains("SIGKILL") && msg.contains("cannot be caught"),
            "{msg}"
        );
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGRTMIN(),
            libc::SIGRTMAX(),
        ] {
            check(sig).unwrap();
        }
    }

    /// The handler writes one byte per delivery to each interested listener, keeps errno, and
    /// the last listener's drop restores the disposition. Uses a real-time signal that no
    /// other unit test touches.
    #[test]
    fn handler_writes_to_every_interested_pipe_and_restores() {
        let sig = libc::SIGRTMIN() + 3;
        let other = libc::SIGRTMIN() + 4;
        let before = disposition(sig).unwrap().sa_sigaction;
        let (r1, w1) = pipe().unwrap();
        let (r2, w2) = pipe().unwrap();
        let (r3, w3) = pipe().unwrap();
        let a = Listener::new(w1, bit(sig).unwrap()).unwrap();
        let b = Listener::new(w2, bit(sig).unwrap() | bit(other).unwrap()).unwrap();
        let c = Listener::new(w3, bit(other).unwrap()).unwrap();
        assert!(is_installed(sig).unwrap());

        // SAFETY: sets this thread's errno to a marker value.
        unsafe { *libc::__errno_location() = libc::EXDEV };
        // SAFETY: raise is a plain libc call; `sig` is handled by `on_signal`.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
        // SAFETY: reads this thread's errno.
        assert_eq!(unsafe { *libc::__errno_location() }, libc::EXDEV);

        let mut buf = [0u8; 8];
        assert_eq!(read(r1.as_raw_fd(), &mut buf).unwrap(), 1);
        assert_eq!(buf[0] as i32, sig);
        assert_eq!(read(r2.as_raw_fd(), &mut buf).unwrap(), 1);
        assert_eq!(buf[0] as i32, sig);
        let e = read(r3.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);

        drop(a);
        assert!(is_installed(sig).unwrap(), "b still listens");
        drop(b);
        assert!(!is_installed(sig).unwrap());
        assert_eq!(disposition(sig).unwrap().sa_sigaction, before);
        assert!(is_installed(other).unwrap(), "c still listens");
        drop(c);
        assert!(!is_installed(other).unwrap());
    }

    #[test]
    fn set_mask_installs_and_restores() {
        let sig = libc::SIGRTMIN() + 5;
        let (_r, w) = pipe().unwrap();
        let mut l = Listener::new(w, 0).unwrap();
        assert!(!is_installed(sig).unwrap());
        l.set_mask(bit(sig).unwrap()).unwrap();
        assert!(is_installed(sig).unwrap());
        l.set_mask(0).unwrap();
        assert!(!is_installed(sig).unwrap());
        assert_eq!(l.mask(), 0);
    }

    /// Listeners come and go on one thread while another takes the signal over and over: a
    /// pipe created right after a listener's drop (which usually gets the listener's old fd
    /// numbers) never receives a stray byte, because the drop waits out handlers mid-write.
    #[test]
    fn a_dropped_listener_is_never_written_to() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        let sig = libc::SIGRTMIN() + 6;
        let mask = bit(sig).unwrap();
        // Keeps the handler installed throughout, so the default action (terminate) of the
        // real-time signal never applies.
        let (_keep_r, keep_w) = pipe().unwrap();
        let keep = Listener::new(keep_w, mask).unwrap();

        /// Stops and joins the raising thread when dropped, also when an assertion fails:
        /// declared after `keep`, it is dropped first, so no signal is raised once the
        /// handler is uninstalled (which would terminate the test process).
        struct Raiser {
            stop: Arc<AtomicBool>,
            thread: Option<std::thread::JoinHandle<u64>>,
        }
        impl Raiser {
            fn finish(&mut self) -> u64 {
                self.stop.store(true, SeqCst);
                self.thread.take().map_or(0, |t| t.join().unwrap())
            }
        }
        impl Drop for Raiser {
            fn drop(&mut self) {
                self.finish();
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let mut raiser = Raiser {
            stop: stop.clone(),
            thread: Some(std::thread::spawn({
                let count = count.clone();
                move || {
                    while !stop.load(SeqCst) {
                        raise(sig).unwrap();
                        count.fetch_add(1, SeqCst);
                    }
                    count.load(SeqCst)
                }
            })),
        };
        let start = std::time::Instant::now();
        while count.load(SeqCst) == 0 {
            assert!(
                start.elapsed().as_secs() < 20,
                "the raising thread never ran"
            );
            std::thread::yield_now();
        }
        let mut delivered = 0usize;
        let mut buf = [0u8; 4096];
        let mut round = 0;
        // At least 2000 rounds, and on until some signals reached the short-lived listeners.
        while round < 2000 || delivered == 0 {
            assert!(
                start.elapsed().as_secs() < 20,
                "no signal reached a listener"
            );
            round += 1;
            let (r, w) = pipe().unwrap();
            let l = Listener::new(w, mask).unwrap();
            std::thread::yield_now();
            drop(l);
            // The write end is closed now: read to EOF.
            loop {
                match read(r.as_raw_fd(), &mut buf) {
                    Ok(0) => break,
                    Ok(n) => delivered += n,
                    Err(e) => panic!("reading a dropped listener's pipe: {e:?}"),
                }
            }
            drop(r);
            let (victim_r, _victim_w) = pipe().unwrap();
            std::thread::yield_now();
            let stray = read(victim_r.as_raw_fd(), &mut buf);
            assert_eq!(
                stray.unwrap_err().kind(),
                io::ErrorKind::WouldBlock,
                "a handler wrote to a pipe it was never given"
            );
        }
        let raised = raiser.finish();
        drop(keep);
        assert!(
            raised > 0 && delivered > 0,
            "raised {raised}, delivered {delivered}"
        );
    }
}
