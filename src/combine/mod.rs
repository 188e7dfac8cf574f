//! Combining awaitables: `gather`, `wait`, `as_completed`, `shield` (asyncio's `tasks.py`).

mod as_completed;
mod gather;
mod join;
pub(crate) mod maybe_done;
mod wait;

use std::future::Future;

pub use as_completed::{as_completed, AsCompleted};
pub use gather::{gather, gather_results, Gather, GatherResults};
pub use wait::{wait, ReturnWhen, Wait};

use crate::task::{spawn, Task};

/// Protects `future` from the cancellation of whoever awaits it (asyncio's `shield`): it runs
/// as its own task, and dropping or cancelling the awaiting side leaves it running.
///
/// In Kettle this is simply [`spawn`]: dropping a [`Task`] handle detaches rather than
/// cancels, so every awaited task is already shielded; `shield` names the intent.
///
/// ```
/// use std::time::Duration;
/// kettle::run(async {
///     let inner = kettle::shield(async {
///         kettle::sleep(Duration::from_millis(20)).await;
///         "saved"
///     });
///     let id = inner.id();
///     let outer = kettle::spawn(inner);
///     kettle::sleep(Duration::from_millis(1)).await;
///     outer.cancel();
///     assert!(outer.await.unwrap_err().is_cancelled());
///     // The shielded task is still running and finishes on its own.
///     assert!(kettle::all_tasks().iter().any(|t| t.id() == id));
/// });
/// ```
#[track_caller]
pub fn shield<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn(future)
}
