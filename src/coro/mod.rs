//! Stackful coroutines: the one module with `unsafe` code for generators, greenlets and green
//! threads.
//!
//! The context switch itself is `corosensei`'s (no assembly of ours). What this module adds is
//! the memory the coroutines run on and what happens when a coroutine runs off the end of it.
//!
//! # Invariants
//!
//! 1. **Every stack has a guard region directly below it** that faults on any access. Stacks
//!    live in *slabs*: one anonymous `mmap` (`MAP_NORESERVE`, so memory is committed page by
//!    page as a coroutine touches it) holding `[guard][stack][guard][stack]...`. The guard is
//!    installed with `madvise(MADV_GUARD_INSTALL)` on Linux 6.13+, which does not split the
//!    mapping (100,000 stacks cost ~1,600 mappings, far below `vm.max_map_count`); on older
//!    kernels with `mprotect(PROT_NONE)`, which costs two mappings per stack, and running out
//!    of mappings is reported as such. `corosensei::stack::Stack` is an unsafe trait whose
//!    contract is exactly this guard plus at least `MIN_STACK_SIZE` usable bytes.
//! 2. **A stack is owned by at most one coroutine at a time.** [`stack::PooledStack`] is the
//!    only handle to a stack; it is not `Clone`, not `Send`, and returns the stack to its
//!    thread's pool when dropped. corosensei drops it only after the coroutine has finished or
//!    been unwound, so no live frame is ever on a pooled stack.
//! 3. **Slabs are never unmapped while a stack in them is out of the pool.** A slab is unmapped
//!    only when its thread's pool is destroyed and every stack of the slab is back; otherwise
//!    it is leaked, never freed under a coroutine.
//! 4. **The overflow handler only reads.** The `SIGSEGV`/`SIGBUS` handler (`overflow.rs`) runs
//!    on the thread's alternate signal stack, reads a fixed table of atomics (slab ranges) and
//!    a `const`-initialised thread-local, calls `write(2)` and `abort(3)`, and otherwise
//!    chains to the handler installed before it. It allocates nothing and takes no lock.
//!
//! # What Miri can check
//!
//! Nothing here: Miri cannot execute `mmap`, `madvise`, signal handlers or corosensei's
//! inline-assembly stack switch. The coroutine layers above (generator state, greenlet
//! trampoline, green-thread context) are covered by ordinary tests, and the overflow report by
//! a test that overflows a stack in a child process.

pub(crate) mod overflow;
pub(crate) mod stack;

pub use stack::DEFAULT_STACK_SIZE;
