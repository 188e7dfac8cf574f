//! The timer queue: a binary min-heap ordered by deadline, as seed 004 describes, with lazy
//! deletion so that cancelling is O(1).
//!
//! Most timers in a server are cancelled before they fire (a request finishes long before its
//! timeout), so cancellation must not search the heap. Each timer owns a slot in a slab; the heap
//! holds `(deadline, seq, slot, generation)` entries. Cancelling frees the slot and bumps its
//! generation, which turns the heap entry into a tombstone that is skipped when it reaches the
//! top. When tombstones outnumber live timers the heap is rebuilt without them, so memory stays
//! proportional to the live timers.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Identifies an armed timer; stale after the timer fires or is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    generation: u32,
}

/// One heap entry. `seq` breaks deadline ties in arming order, so equal deadlines fire FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    deadline: u64,
    seq: u64,
    key: TimerKey,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and we want the earliest deadline on top.
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A slab slot: the action while armed, or the next free slot while vacant.
#[derive(Debug)]
struct Slot<A> {
    generation: u32,
    action: Option<A>,
    next_free: u32,
}

/// Rebuild only heaps at least this big; tiny heaps just pop their tombstones.
const REBUILD_MIN: usize = 64;
const NO_SLOT: u32 = u32::MAX;

/// Timers holding an action of type `A` (a waker to wake, or a callback to schedule).
#[derive(Debug)]
pub(crate) struct TimerHeap<A> {
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot<A>>,
    free_head: u32,
    /// Live (armed, not cancelled) timers.
    live: usize,
    next_seq: u64,
    /// First generation of newly created slots (raised when storage is dropped, so keys
    /// from before never match).
    generation_base: u32,
}

impl<A> TimerHeap<A> {
    /// An empty timer queue.
    pub(crate) fn new() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free_head: NO_SLOT,
            live: 0,
            next_seq: 0,
            generation_base: 0,
        }
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Arms a timer firing at `deadline` (nanoseconds on the loop clock).
    pub(crate) fn insert(&mut self, deadline: u64, action: A) -> TimerKey {
        let slot = if self.free_head != NO_SLOT {
            let slot = self.free_head;
            let s = &mut self.slots[slot as usize];
            self.free_head = s.next_free;
            s.action = Some(action);
            slot
        } else {
            let slot = u32::try_from(self.slots.len()).expect("more than 2^32 timers");
            self.slots.push(Slot {
                generation: self.generation_base,
                action: Some(action),
                next_free: NO_SLOT,
            });
            slot
        };
        let key = TimerKey {
            slot,
            generation: self.slots[slot as usize].generation,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { deadline, seq, key });
        self.live += 1;
        key
    }

    /// True while the timer is armed (not fired, not cancelled).
    #[cfg(test)]
    fn is_armed(&self, key: TimerKey) -> bool {
        self.slots
            .get(key.slot as usize)
            .is_some_and(|s| s.generation == key.generation && s.action.is_some())
    }

    /// The armed timer's action, to update in place (e.g. a newer waker).
    pub(crate) fn action_mut(&mut self, key: TimerKey) -> Option<&mut A> {
        let s = self.slots.get_mut(key.slot as usize)?;
        if s.generation != key.generation {
            return None;
        }
        s.action.as_mut()
    }

    /// Disarms a timer in O(1), returning its action if it was still armed.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<A> {
        let action = self.release(key)?;
        // The heap entry is now a tombstone; rebuild once they dominate.
        if self.heap.len() >= REBUILD_MIN && self.heap.len() > 2 * self.live {
            let slots = &self.slots;
            self.heap
                .retain(|e| slots[e.key.slot as usize].generation == e.key.generation);
        }
        Some(action)
    }

    fn release(&mut self, key: TimerKey) -> Option<A> {
        let s = self.slots.get_mut(key.slot as usize)?;
        if s.generation != key.generation {
            return None;
        }
        let action = s.action.take()?;
        s.generation = s.generation.wrapping_add(1);
        s.next_free = self.free_head;
        self.free_head = key.slot;
        self.live -= 1;
        Some(action)
    }

    /// Drops tombstones from the top so `peek` sees a live timer.
    fn skip_dead(&mut self) {
        while let Some(top) = self.heap.peek() {
            let s = &self.slots[top.key.slot as usize];
            if s.generation == top.key.generation && s.action.is_some() {
                return;
            }
            self.heap.pop();
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        self.skip_dead();
        self.heap.peek().map(|e| e.deadline)
    }

    /// Removes and returns the earliest timer whose deadline is `<= now`.
    pub(crate) fn pop_expired(&mut self, now: u64) -> Option<A> {
        self.skip_dead();
        let top = *self.heap.peek()?;
        if top.deadline > now {
            return None;
        }
        self.heap.pop();
        self.release(top.key)
    }

    /// With no timer armed, drops slots and heap storage above `limit` entries.
    pub(crate) fn shrink_if_empty(&mut self, limit: usize) {
        if self.live == 0 && (self.slots.capacity() > limit || self.heap.capacity() > limit) {
            // Keep generations monotonic per slot index by bumping past every old one: stale
            // keys then can never match a new timer.
            self.heap = BinaryHeap::new();
            let base = self.slots.iter().map(|s| s.generation).max().unwrap_or(0);
            self.slots = Vec::new();
            self.free_head = NO_SLOT;
            self.generation_base = base.wrapping_add(1);
        }
    }

    /// Removes every timer, returning their actions (used when the loop closes).
    pub(crate) fn drain(&mut self) -> Vec<A> {
        self.heap.clear();
        self.free_head = NO_SLOT;
        self.live = 0;
        self.slots.drain(..).filter_map(|s| s.action).collect()
    }

    /// Heap entries including tombstones (for tests of the rebuild policy).
    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_then_fifo() {
        let mut h = TimerHeap::new();
        h.insert(30, "c");
        h.insert(10, "a1");
        h.insert(20, "b");
        h.insert(10, "a2");
        assert_eq!(h.next_deadline(), Some(10));
        assert_eq!(h.pop_expired(9), None);
        let mut got = Vec::new();
        while let Some(a) = h.pop_expired(100) {
            got.push(a);
        }
        assert_eq!(got, ["a1", "a2", "b", "c"]);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn cancel_is_lazy_and_keys_go_stale() {
        let mut h = TimerHeap::new();
        let a = h.insert(10, 1);
        let b = h.insert(20, 2);
        assert!(h.is_armed(a));
        assert_eq!(h.cancel(a), Some(1));
        assert!(!h.is_armed(a));
        assert_eq!(h.cancel(a), None, "double cancel is a no-op");
        // The slot is reused with a new generation; the old key must not reach it.
        let c = h.insert(5, 3);
        assert_eq!(h.cancel(a), None);
        assert_eq!(h.next_deadline(), Some(5));
        assert_eq!(h.pop_expired(100), Some(3));
        assert!(!h.is_armed(c));
        assert_eq!(h.pop_expired(100), Some(2));
        assert!(!h.is_armed(b));
        assert_eq!(h.pop_expired(100), None);
    }

    #[test]
    fn tombstones_are_bounded() {
        let mut h = TimerHeap::new();
        let keep = h.insert(u64::MAX, 0);
        for i in 0..100_000u64 {
            let k = h.insert(1_000 + i, 1);
            h.cancel(k);
        }
        assert_eq!(h.len(), 1);
        assert!(
            h.heap_len() <= REBUILD_MIN * 2,
            "heap kept {} tombstones",
            h.heap_len()
        );
        assert!(h.slots.len() <= 2, "slots are recycled");
        assert!(h.is_armed(keep));
    }
}
