//! [`Event`]: asyncio's one-bit broadcast flag.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::WaitList;

#[derive(Debug)]
struct State {
    set: bool,
    waiters: WaitList,
}

/// A flag that tasks can wait on (asyncio's `Event`).
///
/// [`set`](Event::set) raises the flag and wakes **every** waiting task; while it is set,
/// [`wait`](Event::wait) returns at once. [`clear`](Event::clear) lowers it again. A task that
/// was waiting when the event was set returns from `wait` even if the event is cleared again
/// before that task runs, as in asyncio.
///
/// The handle is a cheap `Clone`; clones are the same event.
///
/// **Cancellation:** [`wait`](Event::wait) is cancellation-safe: a dropped `Wait` simply leaves
/// the queue, and since `set` wakes everybody, nobody else misses anything.
///
/// ```
/// use kettle::sync::Event;
///
/// kettle::run(async {
///     let ready = Event::new();
///     let waiter = {
///         let ready = ready.clone();
///         kettle::spawn(async move {
///             ready.wait().await;
///             "woken"
///         })
///     };
///     kettle::yield_now().await;
///     ready.set();
///     assert_eq!(waiter.await.unwrap(), "woken");
///     assert!(ready.is_set());
/// });
/// ```
#[derive(Clone)]
pub struct Event {
    state: Rc<RefCell<State>>,
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Event {
        Event {
            state: Rc::new(RefCell::new(State {
                set: false,
                waiters: WaitList::new(),
            })),
        }
    }

    /// Sets the flag and wakes every task waiting for it.
    pub fn set(&self) {
        let parked = {
            let mut st = self.state.borrow_mut();
            if st.set {
                return;
            }
            st.set = true;
            st.waiters.linked()
        };
        // One waker at a time, each outside the borrow, so that no allocation is needed and a
        // waker that re-enters this event finds it consistent.
        for _ in 0..parked {
            let waker = self.state.borrow_mut().waiters.notify_one();
            match waker {
                Some(w) => w.wake(),
                None => break,
            }
        }
    }

    /// Lowers the flag; later calls to [`wait`](Event::wait) will wait for the next `set`.
    pub fn clear(&self) {
        self.state.borrow_mut().set = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.borrow().set
    }

    /// Waits until the flag is set; returns at once if it already is.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            event: self,
            key: None,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// The future returned by [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a> {
    event: &'a Event,
    key: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.event.state.borrow_mut();
        match self.key {
            None => {
                if st.set {
                    return Poll::Ready(());
                }
                let key = st.waiters.push_back(cx.waker());
                drop(st);
                self.key = Some(key);
                Poll::Pending
            }
            Some(k) => {
                // Our own notification counts, not the flag: it may have been cleared since.
                if st.waiters.is_notified(k) {
                    st.waiters.remove(k);
                    drop(st);
                    self.key = None;
                    Poll::Ready(())
                } else {
                    st.waiters.set_waker(k, cx.waker());
                    Poll::Pending
                }
            }
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.event.state.borrow_mut().waiters.remove(k);
        }
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::test_util::{poll_once, Counter};

    #[test]
    fn set_wakes_everyone_even_if_cleared_before_they_run() {
        let ev = Event::new();
        let (w, count) = Counter::new();
        let mut a = ev.wait();
        let mut b = ev.wait();
        let mut c = ev.wait();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut b, &w).is_pending());
        assert!(poll_once(&mut c, &w).is_pending());
        drop(b);
        ev.set();
        ev.set(); // idempotent
        assert_eq!(count.get(), 2);
        ev.clear();
        assert!(poll_once(&mut a, &w).is_ready());
        assert!(poll_once(&mut c, &w).is_ready());
        let mut d = ev.wait();
        assert!(poll_once(&mut d, &w).is_pending(), "cleared again");
        ev.set();
        assert!(poll_once(&mut d, &w).is_ready());
        assert!(poll_once(&mut ev.wait(), &w).is_ready(), "already set");
    }

    #[test]
    fn spurious_poll_keeps_waiting() {
        let ev = Event::new();
        let (w, _count) = Counter::new();
        let mut a = ev.wait();
        assert!(poll_once(&mut a, &w).is_pending());
        assert!(poll_once(&mut a, &w).is_pending());
        drop(a);
        assert_eq!(ev.state.borrow().waiters.linked(), 0);
    }
}
