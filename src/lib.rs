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
//! [`wait_for`], [`gather`], [`wait`], [`as_completed`], [`shield`]; [`run_in_executor`]; and
//! the primitives of [`sync`]. Futures need not be `Send`: one loop runs on one thread, and a
//! multi-core program runs one loop per core.

#![warn(missing_docs)]

mod combine;
pub mod error;
mod executor;
mod future;
mod runtime;
pub mod sync;
mod sys;
mod task;
mod time;

pub use combine::{
    as_completed, gather, gather_results, shield, wait, AsCompleted, Gather, GatherResults,
    ReturnWhen, Wait,
};
pub use error::{Error, ErrorKind, Result};
pub use executor::{default_pool, run_in_executor, Blocking, ThreadPool};
pub use future::Future;
pub use kettle_macros::{main, test};
pub use runtime::{
    get_running_loop, run, try_get_running_loop, Builder, EventLoop, Handle, LoopHandle,
    TimerHandle, DEFAULT_SLOW_CALLBACK_DURATION,
};
pub use task::{all_tasks, create_task, current_task, spawn, yield_now, Task, TaskRef, YieldNow};
pub use time::{sleep, sleep_until, timeout, timeout_at, wait_for, Scoped, Sleep, Timeout};

/// Support for the exported macros; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::combine::maybe_done::MaybeDone;
}
