//! A coroutine that runs off its stack is reported by name and the process aborts, instead of
//! dying of a bare `SIGSEGV` (or, without a guard, corrupting its neighbour).
//!
//! The handler is installed once per process, before the first slab of stacks is mapped, and
//! chains to whatever handler was there before (normally the standard library's, which reports
//! overflows of thread stacks). Everything it reads is a table of atomics and a
//! `const`-initialised thread-local: no allocation, no lock (module invariant 6).

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Slabs the handler can attribute a fault to. 16,384 slabs of 64 stacks cover a million
/// stacks; a slab mapped past that still has its guards, only the report is the plain signal.
const TABLE_SIZE: usize = 16 * 1024;

/// `start` value of an entry being filled in.
const RESERVED: usize = 1;

/// One slab as the handler sees it: `[start, start + len)` made of `stride`-byte cells, each
/// starting with `guard` bytes of guard region.
struct Entry {
    start: AtomicUsize,
    len: AtomicUsize,
    stride: AtomicUsize,
    guard: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // used only as an array initialiser
const EMPTY: Entry = Entry {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    stride: AtomicUsize::new(0),
    guard: AtomicUsize::new(0),
};

static TABLE: [Entry; TABLE_SIZE] = [EMPTY; TABLE_SIZE];

/// One past the highest entry ever used, so the handler does not scan the whole table.
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// Where the next registration starts looking for a free entry.
static HINT: AtomicUsize = AtomicUsize::new(0);

/// Records a slab for the handler. Returns its entry, or `None` when the table is full.
pub(crate) fn register_slab(
    start: usize,
    len: usize,
    stride: usize,
    guard: usize,
) -> Option<usize> {
    install_once();
    ensure_alternate_stack();
    // Start after the last entry taken, so registering n slabs is O(n), not O(n²).
    let hint = HINT.load(Ordering::Relaxed);
    for i in (hint..TABLE_SIZE).chain(0..hint) {
        let entry = &TABLE[i];
        if entry
            .start
            .compare_exchange(0, RESERVED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            entry.len.store(len, Ordering::Relaxed);
            entry.stride.store(stride, Ordering::Relaxed);
            entry.guard.store(guard, Ordering::Relaxed);
            entry.start.store(start, Ordering::Release);
            HIGH.fetch_max(i + 1, Ordering::AcqRel);
            HINT.store(i + 1, Ordering::Relaxed);
            return Some(i);
        }
    }
    None
}

/// Forgets a slab before it is unmapped.
pub(crate) fn unregister_slab(index: usize) {
    TABLE[index].start.store(0, Ordering::Release);
}

/// The green thread running on this thread right now, for the report. Set around every resume
/// of a green thread (not of generators, whose switches must stay cheap).
#[derive(Clone, Copy)]
pub(crate) struct Running {
    /// Lowest usable address of its stack; the guard lies just below.
    pub(crate) bottom: usize,
    /// The green thread's task id.
    pub(crate) id: u64,
    /// Its name as given at spawn, if any: a pointer into a string the green thread owns and
    /// that lives as long as it runs.
    pub(crate) name: *const u8,
    pub(crate) name_len: usize,
}

impl Running {
    pub(crate) const NONE: Running = Running {
        bottom: 0,
        id: 0,
        name: std::ptr::null(),
        name_len: 0,
    };
}

thread_local! {
    static RUNNING: Cell<Running> = const { Cell::new(Running::NONE) };
}

/// Marks `running` as the green thread on this thread's CPU until the returned value is given
/// back to [`set_running`].
pub(crate) fn set_running(running: Running) -> Running {
    RUNNING.with(|r| r.replace(running))
}

/// The previous dispositions, written once before our handler is installed and only read
/// afterwards.
struct Previous(UnsafeCell<MaybeUninit<[libc::sigaction; 2]>>);
// SAFETY: written once inside `install_once`'s `Once`, before the handler that reads it exists.
unsafe impl Sync for Previous {}
static PREVIOUS: Previous = Previous(UnsafeCell::new(MaybeUninit::uninit()));

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

fn install_once() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| unsafe {
        // SAFETY: plain sigaction calls with valid structures; PREVIOUS is filled before the
        // new handler is installed, so the handler never reads it uninitialised.
        let prev = &mut *PREVIOUS.0.get();
        let prev = prev.as_mut_ptr() as *mut libc::sigaction;
        for (i, &sig) in SIGNALS.iter().enumerate() {
            libc::sigaction(sig, std::ptr::null(), prev.add(i));
        }
        for &sig in &SIGNALS {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    });
}

/// The handler runs on the faulting thread; on an overflowed stack it needs another one. The
/// standard library gives its threads one; a thread it did not start gets one here.
fn ensure_alternate_stack() {
    struct AltStack(usize);
    impl Drop for AltStack {
        fn drop(&mut self) {
            // SAFETY: disable before unmapping, so no signal is delivered onto freed memory.
            unsafe {
                let disable = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: ALT_SIZE,
                };
                libc::sigaltstack(&disable, std::ptr::null_mut());
                libc::munmap(self.0 as *mut libc::c_void, ALT_SIZE);
            }
        }
    }
    const ALT_SIZE: usize = 64 * 1024;
    thread_local! {
        static OWN: Cell<bool> = const { Cell::new(false) };
        static ALT: Cell<Option<AltStack>> = const { Cell::new(None) };
    }
    if OWN.with(|o| o.replace(true)) {
        return;
    }
    // SAFETY: querying and setting this thread's alternate stack with valid structures.
    unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut current) != 0
            || current.ss_flags & libc::SS_DISABLE == 0
        {
            return; // already has one
        }
        let mem = libc::mmap(
            std::ptr::null_mut(),
            ALT_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let stack = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: ALT_SIZE,
        };
        if libc::sigaltstack(&stack, std::ptr::null_mut()) == 0 {
            ALT.with(|a| a.set(Some(AltStack(mem as usize))));
        } else {
            libc::munmap(mem, ALT_SIZE);
        }
    }
}

/// The usable size and the lowest address of the stack whose guard region holds `addr`, if
/// any.
fn guard_hit(addr: usize) -> Option<(usize, usize)> {
    let high = HIGH.load(Ordering::Acquire);
    for entry in &TABLE[..high] {
        let start = entry.start.load(Ordering::Acquire);
        if start <= RESERVED {
            continue;
        }
        let len = entry.len.load(Ordering::Relaxed);
        if addr < start || addr >= start + len {
            continue;
        }
        let stride = entry.stride.load(Ordering::Relaxed);
        let guard = entry.guard.load(Ordering::Relaxed);
        let offset = (addr - start) % stride;
        if offset < guard {
            // The guard sits directly below its stack.
            return Some((stride - guard, addr - offset + guard));
        }
        return None;
    }
    None
}

unsafe extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some((size, bottom)) = guard_hit(addr) {
        report(size, bottom);
    }
    // Not ours: hand the fault to the handler that was there before.
    let index = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: PREVIOUS was initialised before this handler was installed (see install_once).
    let prev = unsafe { (*PREVIOUS.0.get()).assume_init_ref()[index] };
    match prev.sa_sigaction {
        libc::SIG_DFL | libc::SIG_IGN => {
            // Restore the default action and return: the faulting instruction runs again and
            // the kernel delivers the signal with its default effect (a core dump).
            // SAFETY: sigaction is async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
        f if prev.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the previous handler was installed as a three-argument handler.
            let f: unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(f) };
            unsafe { f(sig, info, ctx) }
        }
        f => {
            // SAFETY: the previous handler was installed as a one-argument handler.
            let f: unsafe extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(f) };
            unsafe { f(sig) }
        }
    }
}

/// Writes what overflowed (the stack of `size` usable bytes starting at `bottom`) and aborts.
/// Async-signal-safe: stack buffers and `write(2)` only.
fn report(size: usize, bottom: usize) -> ! {
    let running = RUNNING.with(|r| r.get());
    let mut out = Buf::new();
    out.push(b"\nkettle: ");
    // The green thread is to blame only for its own stack's guard: a generator it runs may
    // sit on the neighbouring stack, whose guard is just below the green thread's.
    let theirs = running.bottom != 0 && running.bottom == bottom;
    if theirs {
        out.push(b"green thread ");
        if running.name.is_null() {
            out.push(b"Greenlet-");
            out.number(running.id);
        } else {
            // SAFETY: the name is owned by the green thread running right now (see Running).
            out.push(unsafe { std::slice::from_raw_parts(running.name, running.name_len) });
        }
        out.push(b" (task id ");
        out.number(running.id);
        out.push(b")");
    } else {
        out.push(b"a coroutine (generator or greenlet)");
    }
    out.push(b" overflowed its stack of ");
    out.number((size / 1024) as u64);
    out.push(
        b" KiB; aborting. Give it a larger stack (green::Builder::stack_size, \
                Generator::with_stack_size, Greenlet::with_stack_size).\n",
    );
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, out.bytes.as_ptr() as *const libc::c_void, out.len);
        libc::abort()
    }
}

/// A fixed buffer for the report (no allocation in a signal handler).
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            bytes: [0; 512],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}
