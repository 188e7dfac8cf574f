//! `as_completed`: outputs in the order the futures finish.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::join::Join;

/// Runs the futures concurrently and yields their outputs as they finish, fastest first
/// (asyncio's `as_completed`). Use it as a `Stream`, or call [`AsCompleted::next`] in a loop.
///
/// ```
/// use std::time::Duration;
/// kettle::run(async {
///     let delays = [30u64, 10, 20];
///     let futs = delays.map(|ms| async move {
///         kettle::sleep(Duration::from_millis(ms)).await;
///         ms
///     });
///     let mut done = kettle::as_completed(futs);
///     let mut order = Vec::new();
///     while let Some(ms) = done.next().await {
///         order.push(ms);
///     }
///     assert_eq!(order, [10, 20, 30]);
/// });
/// ```
pub fn as_completed<I, F>(futures: I) -> AsCompleted<F>
where
    I: IntoIterator<Item = F>,
    F: Future,
{
    AsCompleted {
        join: Join::new(futures),
    }
}

/// The stream returned by [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<F: Future> {
    join: Join<F>,
}

impl<F: Future> AsCompleted<F> {
    /// The next output to finish, or `None` when all have been yielded.
    // An async `next`, as streams have by convention; it cannot be `Iterator::next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> impl Future<Output = Option<F::Output>> + '_ {
        std::future::poll_fn(move |cx| Pin::new(&mut *self).poll_next(cx))
    }
}

impl<F: Future> Stream for AsCompleted<F> {
    type Item = F::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let join = &mut self.get_mut().join;
        match join.poll_next_index(cx) {
            Poll::Ready(Some(i)) => Poll::Ready(join.take(i)),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
