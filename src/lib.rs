//! Kettle: Python's asyncio, rebuilt in Rust.
//!
//! Lao Zhang puts a whistling kettle on the stove and goes to watch TV; the kettle tells him when
//! the water boils. That is asynchronous I/O, and that is this crate: a single-threaded event loop
//! that runs many tasks, each of which hands control back whenever it would wait.

#![warn(missing_docs)]

pub mod error;
pub mod sync;

pub use error::{Error, ErrorKind, Result};
