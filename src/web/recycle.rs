//! Keeping a heap allocation for the next value of the same type: a connection reuses the
//! allocation of its last request instead of freeing it and asking the allocator again.

use std::mem::MaybeUninit;

/// A heap slot for one `T`, empty (no value to drop).
pub(crate) struct Slot<T>(Box<MaybeUninit<T>>);

impl<T> Slot<T> {
    /// A fresh, empty slot.
    pub(crate) fn new() -> Slot<T> {
        Slot(Box::new_uninit())
    }

    /// Drops `value`'s contents but keeps its allocation.
    pub(crate) fn empty(value: Box<T>) -> Slot<T> {
        let raw = Box::into_raw(value);
        // SAFETY: `raw` comes from a live `Box<T>`, so its contents are valid and dropped
        // exactly once here. `MaybeUninit<T>` has `T`'s size and alignment, so the same
        // allocation can be owned (and later freed) as a `Box<MaybeUninit<T>>`. If a drop
        // panics, the allocation leaks; nothing is freed twice.
        unsafe {
            std::ptr::drop_in_place(raw);
            Slot(Box::from_raw(raw.cast::<MaybeUninit<T>>()))
        }
    }

    /// Moves `value` into the slot.
    pub(crate) fn fill(mut self, value: T) -> Box<T> {
        self.0.write(value);
        // SAFETY: the line above initialized the slot.
        unsafe { self.0.assume_init() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    struct Counted(Rc<Cell<u32>>, String);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn contents_drop_once_and_the_allocation_is_reused() {
        let drops = Rc::new(Cell::new(0));
        let first = Slot::new().fill(Counted(drops.clone(), "one".into()));
        let addr = &*first as *const Counted;
        let slot = Slot::empty(first);
        assert_eq!(drops.get(), 1);
        let second = slot.fill(Counted(drops.clone(), "two".into()));
        assert_eq!(&*second as *const Counted, addr, "same allocation");
        assert_eq!(second.1, "two");
        drop(second);
        assert_eq!(drops.get(), 2);
        // An emptied slot that is never filled frees its allocation without dropping again.
        let slot = Slot::empty(Box::new(Counted(drops.clone(), "three".into())));
        drop(slot);
        assert_eq!(drops.get(), 3);
    }
}
