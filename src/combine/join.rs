//! The engine under `gather` and `as_completed`: many futures polled in place, each with its
//! own waker, so a wake re-polls only the child that was woken (O(1) per wake instead of
//! re-polling all N children).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use super::maybe_done::MaybeDone;

/// Children that were woken since the last poll, and the parent to wake for them.
struct Woken {
    inner: Mutex<WokenInner>,
}

struct WokenInner {
    /// Indexes to re-poll, each at most once.
    list: Vec<usize>,
    queued: Vec<bool>,
    parent: Option<Waker>,
}

impl Woken {
    fn lock(&self) -> MutexGuard<'_, WokenInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The waker handed to child `index`.
struct ChildWaker {
    index: usize,
    woken: Arc<Woken>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let parent = {
            let mut w = self.woken.lock();
            if w.queued[self.index] {
                return;
            }
            w.queued[self.index] = true;
            w.list.push(self.index);
            w.parent.clone()
        };
        if let Some(p) = parent {
            p.wake();
        }
    }
}

/// A set of futures run concurrently, reporting completions in the order they happen.
pub(crate) struct Join<F: Future> {
    /// The children, on the heap and never moved (the slice is never resized), so polling
    /// them through `Pin::new_unchecked` is sound; `Join` itself may move freely.
    children: Box<[MaybeDone<F>]>,
    wakers: Box<[Waker]>,
    woken: Arc<Woken>,
    /// Indexes that finished and have not been reported yet.
    finished: VecDeque<usize>,
    remaining: usize,
    /// Scratch buffer for the woken list, reused across polls.
    scratch: Vec<usize>,
}

impl<F: Future> Unpin for Join<F> {}

impl<F: Future> Join<F> {
    pub(crate) fn new(futures: impl IntoIterator<Item = F>) -> Join<F> {
        let children: Box<[MaybeDone<F>]> = futures.into_iter().map(MaybeDone::new).collect();
        let n = children.len();
        let woken = Arc::new(Woken {
            inner: Mutex::new(WokenInner {
                // Every child needs a first poll.
                list: (0..n).collect(),
                queued: vec![true; n],
                parent: None,
            }),
        });
        let wakers = (0..n)
            .map(|index| {
                Waker::from(Arc::new(ChildWaker {
                    index,
                    woken: woken.clone(),
                }))
            })
            .collect();
        Join {
            children,
            wakers,
            woken,
            finished: VecDeque::new(),
            remaining: n,
            scratch: Vec::new(),
        }
    }

    /// Number of children.
    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// Polls the woken children; returns the index of the next finished child, `Ready(None)`
    /// once every child has been reported, or `Pending`.
    pub(crate) fn poll_next_index(&mut self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        if let Some(i) = self.finished.pop_front() {
            return Poll::Ready(Some(i));
        }
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        {
            let mut w = self.woken.lock();
            match &w.parent {
                Some(p) if p.will_wake(cx.waker()) => {}
                _ => w.parent = Some(cx.waker().clone()),
            }
            std::mem::swap(&mut w.list, &mut self.scratch);
            for &i in &self.scratch {
                w.queued[i] = false;
            }
        }
        for k in 0..self.scratch.len() {
            let i = self.scratch[k];
            let mut child_cx = Context::from_waker(&self.wakers[i]);
            // SAFETY: see the `children` field: elements never move.
            let child = unsafe { Pin::new_unchecked(&mut self.children[i]) };
            if matches!(*child, MaybeDone::Future(_)) && child.poll_done(&mut child_cx) {
                self.remaining -= 1;
                self.finished.push_back(i);
            }
        }
        self.scratch.clear();
        match self.finished.pop_front() {
            Some(i) => Poll::Ready(Some(i)),
            None => Poll::Pending,
        }
    }

    /// Takes the output of finished child `i`.
    pub(crate) fn take(&mut self, i: usize) -> Option<F::Output> {
        // SAFETY: see the `children` field.
        unsafe { Pin::new_unchecked(&mut self.children[i]) }.take_output()
    }

    /// Borrows the output of finished child `i`.
    pub(crate) fn output_mut(&mut self, i: usize) -> Option<&mut F::Output> {
        // SAFETY: see the `children` field.
        unsafe { Pin::new_unchecked(&mut self.children[i]) }.output_mut()
    }
}
