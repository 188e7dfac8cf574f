//! A future together with its output once it finished: the cell `gather!` polls in place.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future, then its output, then nothing once the output is taken.
#[doc(hidden)]
pub enum MaybeDone<F: Future> {
    /// Still running.
    Future(F),
    /// Finished; the output waits to be taken.
    Done(F::Output),
    /// The output was taken.
    Gone,
}

impl<F: Future> MaybeDone<F> {
    /// Wraps a future.
    pub fn new(future: F) -> MaybeDone<F> {
        MaybeDone::Future(future)
    }

    /// Polls the future if it is still running; true once the output is available.
    pub fn poll_done(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        // SAFETY: the inner future is only polled through this pinned reference and replaced
        // (dropped in place) by assignment; nothing is moved out while it is a `Future`.
        let this = unsafe { self.get_unchecked_mut() };
        match this {
            MaybeDone::Future(f) => match unsafe { Pin::new_unchecked(f) }.poll(cx) {
                Poll::Ready(v) => {
                    *this = MaybeDone::Done(v);
                    true
                }
                Poll::Pending => false,
            },
            MaybeDone::Done(_) => true,
            MaybeDone::Gone => false,
        }
    }

    /// The output, if finished and not taken.
    pub fn output_mut(self: Pin<&mut Self>) -> Option<&mut F::Output> {
        // SAFETY: only the `Done` output is handed out; the future itself is not exposed.
        match unsafe { self.get_unchecked_mut() } {
            MaybeDone::Done(v) => Some(v),
            _ => None,
        }
    }

    /// Takes the output, if finished and not yet taken.
    pub fn take_output(self: Pin<&mut Self>) -> Option<F::Output> {
        // SAFETY: we only move out of the `Done` variant, which holds no pinned data.
        let this = unsafe { self.get_unchecked_mut() };
        match this {
            MaybeDone::Done(_) => match std::mem::replace(this, MaybeDone::Gone) {
                MaybeDone::Done(v) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }
}
