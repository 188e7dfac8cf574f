//! Kettle: Python's asyncio, rebuilt in Rust.
//!
//! Lao Zhang puts a whistling kettle on the stove and goes to watch TV; the kettle tells him when
//! the water boils. That is asynchronous I/O, and that is this crate: a single-threaded event loop
//! that runs many tasks, each of which hands control back whenever it would wait.
//!
//! ```
//! use std::time::Duration;
//!
//! async fn hello(n: u32) -> u32 {
//!     println!("Hello world! ({n})");
//!     kettle::sleep(Duration::from_millis(10)).await;
//!     println!("Hello again! ({n})");
//!     n
//! }
//!
//! kettle::run(async {
//!     let a = kettle::spawn(hello(1));
//!     let b = kettle::spawn(hello(2));
//!     assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
//! });
//! ```
//!
//! The names follow asyncio where they fit: [`run`], [`EventLoop`] with `run_until_complete`,
//! `call_soon`, `call_later`; [`spawn`] / [`create_task`] returning a [`Task`]; [`sleep`],
//! [`wait_for`], [`gather()`], [`wait`], [`as_completed`], [`shield`]; [`run_in_executor`]; and
//! the primitives of [`sync`]. Futures need not be `Send`: one loop runs on one thread, and a
//! multi-core program runs one loop per core.
//!
//! # Cancellation
//!
//! Cancelling a task ([`Task::cancel`]) drops its future at the next suspension point; so does
//! a timeout from [`wait_for`] or a [`timeout`] scope, and `gather!` failing fast. Whether an
//! interrupted await loses anything depends on the operation:
//!
//! - cancellation-safe (dropping it mid-wait loses nothing): awaiting a [`Task`] (the task runs
//!   on, detached), [`sleep`], [`yield_now`], awaiting a [`Future`] (every awaiter gets a clone),
//!   [`Blocking`] from `run_in_executor` (the job runs to completion, its result is dropped),
//!   and the waits of [`sync`] documented as such there;
//! - not cancellation-safe: [`gather()`] and [`as_completed`] over futures that are not tasks
//!   (the unfinished futures are dropped with it; wrap them in tasks to keep them running).
//!
//! # Debug mode
//!
//! With `KETTLE_DEBUG=1` or [`Builder::debug`], every task poll and callback is timed; one
//! that holds the loop for [`DEFAULT_SLOW_CALLBACK_DURATION`] (100 ms) or longer is logged as
//! a `tracing` warning naming it, because while it runs no other task can (seed 002's point
//! about handlers that block). Dropping or closing a loop with unfinished tasks logs them too.

#![warn(missing_docs)]

pub mod client;
mod combine;
mod coro;
pub mod error;
mod executor;
mod future;
pub mod generator;
pub mod green;
pub mod greenlet;
mod http;
pub mod net;
mod runtime;
pub mod signal;
pub mod sync;
mod sys;
mod task;
mod time;
pub mod tls;
pub mod web;
pub mod ws;

pub use combine::{
    as_completed, gather, gather_results, shield, wait, AsCompleted, Gather, GatherResults,
    ReturnWhen, Wait,
};
pub use error::{Error, ErrorKind, Result};
pub use executor::{default_pool, run_in_executor, Blocking, ThreadPool};
pub use future::Future;
pub use kettle_macros::{main, test};
pub use net::{open_connection, open_unix_connection, start_server, start_unix_server};
pub use runtime::{
    get_running_loop, run, try_get_running_loop, worker_index, Builder, EventLoop, Handle,
    LoopGroup, LoopGroupBuilder, LoopHandle, TimerHandle, DEFAULT_SLOW_CALLBACK_DURATION,
};
pub use task::{all_tasks, create_task, current_task, spawn, yield_now, Task, TaskRef, YieldNow};
pub use time::{sleep, sleep_until, timeout, timeout_at, wait_for, Scoped, Sleep, Timeout};

/// Support for the exported macros; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::combine::maybe_done::MaybeDone;
}

/// Compiles and runs the README's example as a doctest, so the front page cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
