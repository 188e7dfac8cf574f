//! gevent on the Kettle loop: green threads whose blocking-looking calls suspend only
//! themselves (seed 002).
//!
//! A green thread runs a plain closure on its own stack as a task of the current event loop.
//! When it calls [`sleep`], [`wait`], [`GreenThread::join`] or does I/O through [`net`], it is
//! suspended and the loop runs every other task and green thread until what it waits for is
//! ready. Async tasks and green threads share one loop, so one program can mix both styles:
//! async code awaits a [`GreenThread`] like a task, green code runs any future with [`wait`].
//!
//! ```
//! use kettle::green;
//! use std::time::Duration;
//!
//! green::run(|| {
//!     let workers: Vec<_> = ["work1", "work2"].into_iter().map(|name| {
//!         green::spawn(move || {
//!             for i in 0..3 {
//!                 println!("{name} {i}");
//!                 green::sleep(Duration::from_millis(10)); // lets the other one run
//!             }
//!         })
//!     }).collect();
//!     green::joinall(workers);
//! }).unwrap();
//! ```
//!
//! # gevent → Kettle
//!
//! Rust cannot patch the standard library, so `monkey.patch_all()` becomes "use the green
//! versions": [`net::TcpStream`], [`net::TcpListener`], [`net::UdpSocket`] (they implement
//! `std::io::Read`/`Write`, so `BufReader` and any code generic over `std::io` runs unchanged),
//! [`time::sleep`] for `time.sleep`, [`net::lookup_host`] for DNS. Anything else async is one
//! [`wait`] away.
//!
//! # Stacks
//!
//! Each green thread gets a [`DEFAULT_STACK_SIZE`] stack ([`Builder::stack_size`] to change
//! it) when it first runs, from a per-thread pool, so spawning costs no system call and
//! unstarted green threads cost no stack. Only touched pages use memory. Below every stack is
//! a guard region: overflowing it prints which green thread overflowed and how large its stack
//! was, then aborts the process (there is no safe way to continue).
//!
//! # Killing and panics
//!
//! [`GreenThread::kill`] unwinds the green thread's stack from its next switch, running its
//! destructors; its joiners get `Cancelled`. A panic in a green thread becomes a `Panicked`
//! error for its joiners and the loop goes on. Closing the loop (or dropping a green thread's
//! task) kills what is left the same way. Green threads never leave their loop's thread.

mod context;
pub mod net;
mod thread;
pub mod time;

pub use crate::coro::stack::{guards_split_mappings, pool_stats, PoolStats};
pub use crate::coro::DEFAULT_STACK_SIZE;
pub use thread::{
    getcurrent, is_green, joinall, run, sleep, spawn, wait, yield_now, Builder, GreenRef,
    GreenThread,
};

pub(crate) use thread::wait_named;
