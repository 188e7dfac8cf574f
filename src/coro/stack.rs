//! Coroutine stacks: reserved in slabs, committed lazily, guarded, pooled per thread.
//!
//! A spawn takes a stack from its thread's free list (no system call); a finished coroutine
//! gives it back. Only when the free list is empty is a new slab of [`SLAB_STACKS`] stacks
//! mapped. Free stacks beyond [`HOT_STACKS`] give their pages back to the kernel
//! (`MADV_DONTNEED`), so a burst of 100,000 green threads leaves address space behind but no
//! memory. See the module above for the invariants.
//!
//! System calls are batched where the kernel allows: `process_madvise` on our own process
//! takes up to 1,024 ranges at once, so a slab's 64 guards cost one call and trimming gives
//! back 512 stacks per call. (Committing each new stack's first page in one such call was
//! tried: it is the same kernel work as the 64 page faults, and no faster.) Where `process_madvise` refuses, one `madvise` per range does the same.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use corosensei::stack::{Stack, StackPointer, MIN_STACK_SIZE};

use super::overflow;

/// The usable size of a stack when none is asked for: 256 KiB of address space, of which only
/// the pages a coroutine touches are ever backed by memory.
///
/// That is roomy for ordinary Rust code (a `BufReader`'s 8 KiB buffer, formatting, a few dozen
/// frames) while costing nothing where it goes unused; deep recursion or large stack arrays
/// need a bigger one (`green::Builder::stack_size`, `Generator::with_stack_size`).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The largest stack handed out (a slab reserves 64 of them as address space).
const MAX_STACK_SIZE: usize = 1 << 30;

/// The guard region under each stack. Rust functions probe every page of a large frame, so one
/// page would do for Rust code; C code does not probe, so a few pages more.
const GUARD_SIZE: usize = 16 * 1024;

/// Stacks per slab (one `mmap` each).
const SLAB_STACKS: usize = 64;

/// Free stacks per size that may keep their memory, for the next spawns to reuse warm; past
/// this many, the oldest half give their pages back in one batch.
const HOT_STACKS: usize = 1024;

/// `KETTLE_CORO_GUARDS=mprotect` makes guard regions the way kernels before 6.13 need, so the
/// fallback (and the limit it runs into) can be tested on any kernel.
fn forced_mprotect() -> bool {
    std::env::var_os("KETTLE_CORO_GUARDS").is_some_and(|v| v == "mprotect")
}

/// `madvise` advice that installs a guard region without splitting the mapping (Linux 6.13).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// How guard regions are made on this kernel; decided by the first slab.
static GUARD_MODE: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);
const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;

/// The system page size.
fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Whether guard regions on this kernel split mappings (true on kernels before 6.13): what a
/// user sizing a workload for 100,000+ stacks needs to know.
pub fn guards_split_mappings() -> bool {
    GUARD_MODE.load(Ordering::Relaxed) == GUARD_MPROTECT
}

/// A stack owned by one coroutine. Dropping it returns it to the pool of the thread it came
/// from.
pub(crate) struct PooledStack {
    /// The highest address (stacks grow down): the stack's `base` for corosensei.
    top: usize,
    /// The usable size in bytes (the guard is below `top - size`).
    size: usize,
    /// Which slab of the thread's pool the stack belongs to.
    slab: usize,
    /// Stacks belong to one thread's pool (and coroutines never leave their thread).
    _not_send: PhantomData<*const ()>,
}

impl PooledStack {
    /// Takes a stack of at least `size` usable bytes from this thread's pool.
    pub(crate) fn new(size: usize) -> io::Result<PooledStack> {
        POOL.with(|pool| pool.borrow_mut().take(size))
    }

    /// The lowest usable address; the guard region lies just below it.
    pub(crate) fn bottom(&self) -> usize {
        self.top - self.size
    }

    /// The highest address.
    pub(crate) fn top(&self) -> usize {
        self.top
    }

    /// The usable size in bytes.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

// SAFETY: `top` and `top - size - GUARD_SIZE` are page-aligned (so aligned to
// STACK_ALIGNMENT); the `GUARD_SIZE` bytes below `bottom()` are a guard region installed when
// the slab was mapped and never removed while the slab exists; `size >= MIN_STACK_SIZE`; and
// the stack is owned by this handle alone (module invariants 1 and 2).
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.top).expect("a mapped stack is not at address 0")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.top - self.size - GUARD_SIZE).expect("a mapped stack is not at 0")
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        let (top, size, slab) = (self.top, self.size, self.slab);
        // During thread teardown the pool may already be gone; the stack is then simply not
        // reused (its slab is leaked, never unmapped under it: invariant 3).
        let _ = POOL.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                pool.give_back(top, size, slab);
            }
        });
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// One `mmap` holding `SLAB_STACKS` stacks of one size, each with its guard below it.
struct Slab {
    base: usize,
    len: usize,
    /// Stacks of this slab currently owned by coroutines.
    out: usize,
    /// Index in the overflow handler's table, if it had room.
    registered: Option<usize>,
}

/// Free stacks of one usable size, as `(top, slab)`.
#[derive(Default)]
struct SizeClass {
    /// Freed stacks that may still hold pages, most recently freed last (reused first: warm).
    hot: Vec<(usize, usize)>,
    /// Stacks holding no pages: trimmed, or never used.
    cold: Vec<(usize, usize)>,
}

impl SizeClass {
    fn pop(&mut self) -> Option<(usize, usize)> {
        self.hot.pop().or_else(|| self.cold.pop())
    }

    fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }
}

/// A thread's stacks.
#[derive(Default)]
struct Pool {
    slabs: Vec<Slab>,
    /// Stacks of [`DEFAULT_STACK_SIZE`]: nearly all of them, so kept out of the map.
    default: SizeClass,
    /// Stacks of every other size, by size.
    classes: HashMap<usize, SizeClass>,
    /// Stacks owned by coroutines right now, for the error message when mapping fails.
    in_use: usize,
}

impl Pool {
    fn take(&mut self, size: usize) -> io::Result<PooledStack> {
        if size > MAX_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot allocate a coroutine stack of {size} bytes: too large (the limit is 1 GiB)"),
            ));
        }
        let size = round_up(size.max(MIN_STACK_SIZE), page_size());
        let found = self.class(size).pop();
        let (top, slab) = match found {
            Some(found) => found,
            None => {
                self.map_slab(size)?;
                self.class(size).pop().expect("a new slab has free stacks")
            }
        };
        self.slabs[slab].out += 1;
        self.in_use += 1;
        Ok(PooledStack {
            top,
            size,
            slab,
            _not_send: PhantomData,
        })
    }

    fn class(&mut self, size: usize) -> &mut SizeClass {
        if size == DEFAULT_STACK_SIZE {
            &mut self.default
        } else {
            self.classes.entry(size).or_default()
        }
    }

    fn give_back(&mut self, top: usize, size: usize, slab: usize) {
        self.in_use -= 1;
        self.slabs[slab].out -= 1;
        let class = self.class(size);
        class.hot.push((top, slab));
        if class.hot.len() > HOT_STACKS {
            // The oldest half give their pages back, in one batch. The guard regions survive
            // MADV_DONTNEED (guard markers, or the mapping's protection in the fallback).
            let old: Vec<(usize, usize)> = class.hot.drain(..HOT_STACKS / 2).collect();
            let ranges: Vec<(usize, usize)> =
                old.iter().map(|&(top, _)| (top - size, size)).collect();
            // SAFETY: each range is the usable part of a free stack, owned by nobody.
            unsafe { advise_all(&ranges, libc::MADV_DONTNEED) };
            class.cold.extend(old);
        }
    }

    /// Maps a slab of stacks of `size` usable bytes, installs the guards and puts the stacks
    /// on the free list.
    fn map_slab(&mut self, size: usize) -> io::Result<()> {
        let stride = size + GUARD_SIZE;
        let len = stride * SLAB_STACKS;
        // SAFETY: a fresh anonymous mapping; nothing else refers to the range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(self.mapping_error("mmap", io::Error::last_os_error()));
        }
        let base = base as usize;
        // Huge pages would commit 2 MiB where a coroutine touched 4 KiB.
        // SAFETY: advice on our own fresh mapping.
        unsafe { libc::madvise(base as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
        let guards: Vec<(usize, usize)> = (0..SLAB_STACKS)
            .map(|i| (base + i * stride, GUARD_SIZE))
            .collect();
        if let Err(e) = install_guards(&guards) {
            // SAFETY: unmapping the mapping made above; no stack of it was handed out.
            unsafe { libc::munmap(base as *mut libc::c_void, len) };
            return Err(self.mapping_error("guard page", e));
        }
        let index = self.slabs.len();
        let registered = overflow::register_slab(base, len, stride, GUARD_SIZE);
        self.slabs.push(Slab {
            base,
            len,
            out: 0,
            registered,
        });
        let class = self.class(size);
        // Lowest stack last, so it is handed out first.
        class.cold.extend(
            (0..SLAB_STACKS)
                .rev()
                .map(|i| (base + i * stride + stride, index)),
        );
        Ok(())
    }

    fn mapping_error(&self, what: &str, err: io::Error) -> io::Error {
        let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let hint = if err.raw_os_error() == Some(libc::ENOMEM) {
            if guards_split_mappings() {
                format!(
                    "; guard pages are made with mprotect here (MADV_GUARD_INSTALL needs Linux \
                     6.13+), so each stack costs two memory mappings and vm.max_map_count \
                     ({limit}) is the likely limit: raise it (sysctl vm.max_map_count) or run \
                     fewer green threads at once"
                )
            } else {
                format!("; out of memory or of memory mappings (vm.max_map_count = {limit})")
            }
        } else {
            String::new()
        };
        io::Error::new(
            err.kind(),
            format!(
                "cannot allocate a coroutine stack ({what}: {err}) with {} stacks in use on this \
                 thread{hint}",
                self.in_use
            ),
        )
    }
}

/// The most ranges one `process_madvise` call takes (`IOV_MAX`).
const IOV_MAX: usize = 1024;

/// A pidfd for this process, for `process_madvise`; reopened after a fork (a child must never
/// advise its parent's memory through an inherited pidfd).
fn self_pidfd() -> Option<libc::c_int> {
    use std::sync::atomic::AtomicI32;
    static FD: AtomicI32 = AtomicI32::new(-1);
    static PID: AtomicI32 = AtomicI32::new(0);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if PID.load(Ordering::Acquire) == pid {
        let fd = FD.load(Ordering::Acquire);
        return (fd >= 0).then_some(fd);
    }
    // SAFETY: pidfd_open with our own pid and no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    let fd = if fd >= 0 {
        // SAFETY: setting close-on-exec on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        fd
    } else {
        -1
    };
    // Two threads racing here may each open one; the loser's is closed.
    let old = FD.swap(fd, Ordering::AcqRel);
    if old >= 0 && PID.load(Ordering::Acquire) == pid {
        // SAFETY: a descriptor this process opened for itself and no longer publishes.
        unsafe { libc::close(old) };
    }
    PID.store(pid, Ordering::Release);
    (fd >= 0).then_some(fd)
}

/// Applies `advice` to every `(start, len)` range: in batches through `process_madvise`
/// where the kernel allows it for this advice, else one `madvise` each. Returns whether all
/// succeeded.
///
/// # Safety
///
/// The ranges must be parts of this module's own mappings that the advice may touch (no live
/// coroutine frames for `MADV_DONTNEED`).
unsafe fn advise_all(ranges: &[(usize, usize)], advice: libc::c_int) -> bool {
    if let Some(pidfd) = self_pidfd() {
        let mut all = true;
        for chunk in ranges.chunks(IOV_MAX) {
            let iov: Vec<libc::iovec> = chunk
                .iter()
                .map(|&(start, len)| libc::iovec {
                    iov_base: start as *mut libc::c_void,
                    iov_len: len,
                })
                .collect();
            let total: usize = chunk.iter().map(|&(_, len)| len).sum();
            // SAFETY: iov describes ranges of our own mappings (the caller's contract).
            let done = unsafe {
                libc::syscall(
                    libc::SYS_process_madvise,
                    pidfd,
                    iov.as_ptr(),
                    iov.len(),
                    advice,
                    0,
                )
            };
            if done < 0 || done as usize != total {
                all = false;
                break;
            }
        }
        if all {
            return true;
        }
    }
    // Every advice used here is idempotent, so ranges a partial batch did are simply redone.
    ranges.iter().all(|&(start, len)| {
        // SAFETY: as above.
        unsafe { libc::madvise(start as *mut libc::c_void, len, advice) == 0 }
    })
}

/// Makes each `(start, GUARD_SIZE)` range fault on access.
fn install_guards(guards: &[(usize, usize)]) -> io::Result<()> {
    if GUARD_MODE.load(Ordering::Relaxed) == GUARD_UNKNOWN && forced_mprotect() {
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: the ranges are guard-to-be parts of a fresh mapping of ours, holding no data.
        if unsafe { advise_all(guards, MADV_GUARD_INSTALL) } {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) || GUARD_MODE.load(Ordering::Relaxed) != 0 {
            return Err(err);
        }
        // EINVAL on the first try: a kernel without guard regions (before 6.13).
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    for &(start, len) in guards {
        // SAFETY: as above; this splits the mapping (two mappings per stack).
        if unsafe { libc::mprotect(start as *mut libc::c_void, len, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Drop for Pool {
    fn drop(&mut self) {
        for slab in &self.slabs {
            if slab.out != 0 {
                // A coroutine still owns a stack here (it was leaked): never unmap under it.
                continue;
            }
            if let Some(index) = slab.registered {
                overflow::unregister_slab(index);
            }
            // SAFETY: no stack of this slab is owned by anyone (invariant 3).
            unsafe { libc::munmap(slab.base as *mut libc::c_void, slab.len) };
        }
    }
}

/// What the pool of the calling thread holds, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Stacks owned by running or suspended coroutines.
    pub in_use: usize,
    /// Stacks waiting in the free lists.
    pub free: usize,
    /// Of those, the ones that may still hold memory (recently freed, kept warm for reuse): at
    /// most 1,024 per stack size; the others have given their pages back.
    pub warm: usize,
    /// Slabs mapped (one `mmap` of 64 stacks each).
    pub slabs: usize,
}

/// The calling thread's stack pool.
pub fn pool_stats() -> PoolStats {
    POOL.with(|pool| {
        let pool = pool.borrow();
        PoolStats {
            in_use: pool.in_use,
            free: pool.default.len() + pool.classes.values().map(SizeClass::len).sum::<usize>(),
            warm: pool.default.hot.len()
                + pool.classes.values().map(|c| c.hot.len()).sum::<usize>(),
            slabs: pool.slabs.len(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_reused_lifo_and_counted() {
        let before = pool_stats();
        let a = PooledStack::new(64 * 1024).unwrap();
        let top = a.top();
        assert_eq!(a.size(), 64 * 1024);
        assert_eq!(pool_stats().in_use, before.in_use + 1);
        drop(a);
        // Sizes round up to whole pages, so this is the same size class.
        let b = PooledStack::new(60 * 1024 + 1).unwrap();
        assert_eq!(b.top(), top, "the warmest free stack is reused");
        assert_eq!(b.size(), 64 * 1024);
    }

    #[test]
    fn absurd_sizes_are_an_error() {
        let Err(err) = PooledStack::new(usize::MAX) else {
            panic!("usize::MAX bytes of stack were handed out");
        };
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(PooledStack::new(MAX_STACK_SIZE + 1).is_err());
    }

    #[test]
    fn memory_is_writable_to_the_bottom() {
        let s = PooledStack::new(16 * 1024).unwrap();
        // SAFETY: the whole usable range belongs to this stack.
        unsafe {
            std::ptr::write_bytes(s.bottom() as *mut u8, 0xAB, s.size());
            assert_eq!(*(s.bottom() as *const u8), 0xAB);
            assert_eq!(*((s.top() - 1) as *const u8), 0xAB);
        }
    }
}
