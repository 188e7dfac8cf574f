//! The FIFO of parked futures that every primitive in this module is built on.
//!
//! A waiter is a node in a doubly linked list threaded through a `Vec` by index, so parking,
//! waking the front waiter and unlinking a cancelled waiter from the middle are all O(1) and
//! need no allocation once the vector has grown to the peak number of waiters.
//!
//! A node has three states. *Linked*: parked in the queue. *Notified*: taken off the queue by
//! [`WaitList::notify_one`], its waker already fired, but the future has not run yet; it keeps
//! its slot so that it can tell, when polled or dropped, that it was chosen. *Free*. Only the
//! future that parked a node ever frees it (with [`WaitList::remove`]), so a key can never be
//! recycled under its owner.
//!
//! The list is plain data: the single-thread primitives keep it in a `RefCell`, the channels in
//! a `Mutex`. It never wakes anything itself; it hands wakers back so that callers can wake
//! after releasing their borrow or lock, since a waker may run arbitrary executor code.

use std::task::Waker;

/// "No node": the end of a list.
const NIL: usize = usize::MAX;

/// Above this many slots, an emptied list gives its memory back.
const KEEP_SLOTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Linked,
    Notified,
}

#[derive(Debug)]
struct Node {
    state: State,
    /// Previous linked node, or [`NIL`].
    prev: usize,
    /// Next linked node, or the next free slot when `state` is `Free`.
    next: usize,
    /// Present while `Linked`; taken when the node is notified.
    waker: Option<Waker>,
}

/// A FIFO of waiters, addressed by the keys that [`push_back`](WaitList::push_back) returns.
#[derive(Debug)]
pub(crate) struct WaitList {
    nodes: Vec<Node>,
    /// Head of the free-slot chain, or [`NIL`].
    free: usize,
    head: usize,
    tail: usize,
    linked: usize,
    notified: usize,
}

impl Default for WaitList {
    fn default() -> Self {
        WaitList::new()
    }
}

impl WaitList {
    pub(crate) const fn new() -> WaitList {
        WaitList {
            nodes: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            linked: 0,
            notified: 0,
        }
    }

    /// Number of parked (not yet notified) waiters.
    pub(crate) fn linked(&self) -> usize {
        self.linked
    }

    /// Number of waiters that were notified but have not been polled or dropped since. Each of
    /// them holds whatever the notification promised (a permit, a slot, an item), so new
    /// arrivals must not take it.
    pub(crate) fn notified(&self) -> usize {
        self.notified
    }

    /// Parks a new waiter at the back of the queue.
    pub(crate) fn push_back(&mut self, waker: &Waker) -> usize {
        let key = self.alloc(waker.clone());
        self.link_back(key);
        key
    }

    /// Puts a notified waiter back at the *front*: it was chosen but found that someone else
    /// took what it was woken for, and it must not lose its place to later arrivals.
    pub(crate) fn requeue_front(&mut self, key: usize, waker: &Waker) {
        let node = &mut self.nodes[key];
        debug_assert_eq!(node.state, State::Notified);
        node.waker = Some(waker.clone());
        self.notified -= 1;
        self.link_front(key);
    }

    /// Records the waker a still-parked waiter was last polled with.
    pub(crate) fn set_waker(&mut self, key: usize, waker: &Waker) {
        let node = &mut self.nodes[key];
        match &node.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => node.waker = Some(waker.clone()),
        }
    }

    /// Whether the waiter `key` has been notified.
    pub(crate) fn is_notified(&self, key: usize) -> bool {
        self.nodes[key].state == State::Notified
    }

    /// Takes the front waiter off the queue, marks it notified and returns its waker for the
    /// caller to wake. `None` when nobody is parked.
    pub(crate) fn notify_one(&mut self) -> Option<Waker> {
        let key = self.head;
        if key == NIL {
            return None;
        }
        self.unlink(key);
        self.notified += 1;
        let node = &mut self.nodes[key];
        node.state = State::Notified;
        node.waker.take()
    }

    /// Frees the waiter `key` (whatever its state) and says whether it had been notified, so
    /// that a cancelled waiter can pass on what its notification promised.
    pub(crate) fn remove(&mut self, key: usize) -> bool {
        let was_notified = match self.nodes[key].state {
            State::Linked => {
                self.unlink(key);
                false
            }
            State::Notified => {
                self.notified -= 1;
                true
            }
            State::Free => unreachable!("wait list key {key} freed twice"),
        };
        let node = &mut self.nodes[key];
        node.state = State::Free;
        node.waker = None;
        node.next = self.free;
        self.free = key;
        if self.linked == 0 && self.notified == 0 {
            // Nobody holds a key any more: forget the free chain, and give memory back after a
            // burst of waiters so that an idle primitive stays small.
            self.nodes.clear();
            self.free = NIL;
            if self.nodes.capacity() > KEEP_SLOTS {
                self.nodes.shrink_to(KEEP_SLOTS);
            }
        }
        was_notified
    }

    fn alloc(&mut self, waker: Waker) -> usize {
        let node = Node {
            state: State::Linked,
            prev: NIL,
            next: NIL,
            waker: Some(waker),
        };
        if self.free != NIL {
            let key = self.free;
            self.free = self.nodes[key].next;
            self.nodes[key] = node;
            key
        } else {
            self.nodes.push(node);
            self.nodes.len() - 1
        }
    }

    fn link_back(&mut self, key: usize) {
        let tail = self.tail;
        let node = &mut self.nodes[key];
        node.state = State::Linked;
        node.prev = tail;
        node.next = NIL;
        if tail == NIL {
            self.head = key;
        } else {
            self.nodes[tail].next = key;
        }
        self.tail = key;
        self.linked += 1;
    }

    fn link_front(&mut self, key: usize) {
        let head = self.head;
        let node = &mut self.nodes[key];
        node.state = State::Linked;
        node.prev = NIL;
        node.next = head;
        if head == NIL {
            self.tail = key;
        } else {
            self.nodes[head].prev = key;
        }
        self.head = key;
        self.linked += 1;
    }

    fn unlink(&mut self, key: usize) {
        let (prev, next) = (self.nodes[key].prev, self.nodes[key].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next].prev = prev;
        }
        self.linked -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Tagged(usize, Arc<AtomicUsize>);
    impl Wake for Tagged {
        fn wake(self: Arc<Self>) {
            self.1.store(self.0, Ordering::SeqCst);
        }
    }

    fn tagged(tag: usize, last: &Arc<AtomicUsize>) -> Waker {
        Waker::from(Arc::new(Tagged(tag, last.clone())))
    }

    /// Notifies the front waiter and returns the tag its waker carried.
    fn pop(list: &mut WaitList, last: &Arc<AtomicUsize>) -> Option<usize> {
        list.notify_one().map(|w| {
            w.wake();
            last.load(Ordering::SeqCst)
        })
    }

    #[test]
    fn fifo_order_and_removal_from_the_middle() {
        let last = Arc::new(AtomicUsize::new(0));
        let mut l = WaitList::new();
        let keys: Vec<usize> = (1..=4).map(|i| l.push_back(&tagged(i, &last))).collect();
        assert!(!l.remove(keys[1]));
        assert_eq!(l.linked(), 3);
        assert_eq!(pop(&mut l, &last), Some(1));
        assert!(l.is_notified(keys[0]));
        assert_eq!(l.notified(), 1);
        assert_eq!(pop(&mut l, &last), Some(3));
        assert_eq!(pop(&mut l, &last), Some(4));
        assert_eq!(pop(&mut l, &last), None);
        assert!(l.remove(keys[0]));
        assert!(l.remove(keys[2]));
        assert!(l.remove(keys[3]));
        assert_eq!((l.linked(), l.notified()), (0, 0));
    }

    #[test]
    fn requeue_front_keeps_priority() {
        let last = Arc::new(AtomicUsize::new(0));
        let mut l = WaitList::new();
        let a = l.push_back(&tagged(1, &last));
        let _b = l.push_back(&tagged(2, &last));
        assert_eq!(pop(&mut l, &last), Some(1));
        l.requeue_front(a, &tagged(10, &last));
        assert_eq!(l.notified(), 0);
        assert_eq!(pop(&mut l, &last), Some(10));
        assert_eq!(pop(&mut l, &last), Some(2));
    }

    #[test]
    fn slots_are_reused_and_memory_returned() {
        let last = Arc::new(AtomicUsize::new(0));
        let mut l = WaitList::new();
        let w = tagged(0, &last);
        let keys: Vec<usize> = (0..1000).map(|_| l.push_back(&w)).collect();
        for &k in &keys[..999] {
            l.remove(k);
        }
        // The free chain is used before the vector grows.
        let k = l.push_back(&w);
        assert!(k < 1000);
        l.remove(k);
        l.remove(keys[999]);
        assert!(l.nodes.capacity() <= KEEP_SLOTS);
        assert_eq!(l.push_back(&w), 0);
    }

    #[test]
    fn set_waker_replaces_only_a_different_waker() {
        let last = Arc::new(AtomicUsize::new(0));
        let mut l = WaitList::new();
        let k = l.push_back(&tagged(1, &last));
        l.set_waker(k, &tagged(2, &last));
        assert_eq!(pop(&mut l, &last), Some(2));
    }
}
