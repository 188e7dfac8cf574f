//! Coroutine stacks: reserved in slabs, committed lazily, guarded, pooled per thread.
//!
//! A spawn takes a stack from its thread's free list (no system call); a finished coroutine
//! gives it back. Only when the free list is empty is a new slab of [`SLAB_STACKS`] stacks
//! mapped. Free stacks beyond [`HOT_STACKS`] give their pages back to the kernel
//! (`MADV_DONTNEED`), so a burst of 100,000 green threads leaves address space behind but no
//! memory. See the module above for the invariants.

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

/// The guard region under each stack. Rust functions probe every page of a large frame, so one
/// page would do for Rust code; C code does not probe, so a few pages more.
const GUARD_SIZE: usize = 16 * 1024;

/// Stacks per slab (one `mmap` each).
const SLAB_STACKS: usize = 64;

/// Free stacks per size that keep their memory, for the next spawns to reuse warm.
const HOT_STACKS: usize = 64;

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

/// Free stacks of one usable size.
#[derive(Default)]
struct SizeClass {
    /// `(top, slab)` of each free stack, most recently freed last (reused first: warm).
    free: Vec<(usize, usize)>,
}

/// A thread's stacks.
#[derive(Default)]
struct Pool {
    slabs: Vec<Slab>,
    classes: HashMap<usize, SizeClass>,
    /// Stacks owned by coroutines right now, for the error message when mapping fails.
    in_use: usize,
}

impl Pool {
    fn take(&mut self, size: usize) -> io::Result<PooledStack> {
        // A slab of such stacks must fit in the address space: a size near `usize::MAX` would
        // otherwise wrap around to a tiny (even empty) stack.
        let fits = size
            .checked_add(page_size() + GUARD_SIZE)
            .and_then(|s| s.checked_mul(SLAB_STACKS))
            .is_some();
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot allocate a coroutine stack of {size} bytes: too large"),
            ));
        }
        let size = round_up(size.max(MIN_STACK_SIZE), page_size());
        let found = self.classes.entry(size).or_default().free.pop();
        let (top, slab) = match found {
            Some(found) => found,
            None => {
                self.map_slab(size)?;
                self.classes
                    .get_mut(&size)
                    .and_then(|class| class.free.pop())
                    .expect("a new slab has free stacks")
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

    fn give_back(&mut self, top: usize, size: usize, slab: usize) {
        self.in_use -= 1;
        self.slabs[slab].out -= 1;
        let class = self.classes.entry(size).or_default();
        if class.free.len() >= HOT_STACKS {
            // Enough warm stacks are kept; this one gives its pages back. The guard region
            // survives MADV_DONTNEED (it is part of the page tables' guard markers, or the
            // mapping's protection in the fallback).
            // SAFETY: the range is this stack's usable part, owned by nobody now.
            unsafe {
                libc::madvise((top - size) as *mut libc::c_void, size, libc::MADV_DONTNEED);
            }
        }
        class.free.push((top, slab));
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
        for i in 0..SLAB_STACKS {
            if let Err(e) = install_guard(base + i * stride) {
                // SAFETY: unmapping the mapping made above; no stack of it was handed out.
                unsafe { libc::munmap(base as *mut libc::c_void, len) };
                return Err(self.mapping_error("guard page", e));
            }
        }
        let index = self.slabs.len();
        let registered = overflow::register_slab(base, len, stride, GUARD_SIZE);
        self.slabs.push(Slab {
            base,
            len,
            out: 0,
            registered,
        });
        let class = self.classes.entry(size).or_default();
        // Lowest stack last, so it is handed out first.
        class.free.extend(
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
                    "; this kernel has no guard regions (Linux 6.13+), so each stack costs two \
                     memory mappings and vm.max_map_count ({limit}) is the likely limit: raise \
                     it or use smaller/fewer stacks"
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

/// Makes `[at, at + GUARD_SIZE)` fault on access.
fn install_guard(at: usize) -> io::Result<()> {
    let ptr = at as *mut libc::c_void;
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: advice on a range of our own mapping that holds no data.
        let r = unsafe { libc::madvise(ptr, GUARD_SIZE, MADV_GUARD_INSTALL) };
        if r == 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) || GUARD_MODE.load(Ordering::Relaxed) != 0 {
            return Err(err);
        }
        // EINVAL on the first try: a kernel without guard regions.
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above; this splits the mapping (two mappings per stack).
    if unsafe { libc::mprotect(ptr, GUARD_SIZE, libc::PROT_NONE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
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
    /// Slabs mapped (one `mmap` of 64 stacks each).
    pub slabs: usize,
}

/// The calling thread's stack pool.
pub fn pool_stats() -> PoolStats {
    POOL.with(|pool| {
        let pool = pool.borrow();
        PoolStats {
            in_use: pool.in_use,
            free: pool.classes.values().map(|c| c.free.len()).sum(),
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
