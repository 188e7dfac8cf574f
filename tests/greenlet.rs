//! `kettle::greenlet`: explicit switches between greenlets, values in both directions,
//! parents, dead greenlets, panics raised in the parent, through the public API.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use kettle::greenlet::{self, Greenlet};
use kettle::ErrorKind;

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

#[test]
fn two_greenlets_alternate_at_each_switch() {
    let log: Log = Rc::default();
    let peer: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let (l, p) = (log.clone(), peer.clone());
    let a = Greenlet::new(move |()| {
        for i in 0..3 {
            push(&l, format!("A{i}"));
            let b = p.borrow().clone().unwrap();
            b.switch(()).unwrap();
        }
    });
    let (l, a2) = (log.clone(), a.clone());
    let b = Greenlet::new(move |()| {
        for i in 0..3 {
            push(&l, format!("B{i}"));
            a2.switch(()).unwrap();
        }
    });
    *peer.borrow_mut() = Some(b.clone());
    a.switch(()).unwrap();
    // A finished first (after its third switch to B came back): control went to its parent.
    assert_eq!(*log.borrow(), ["A0", "B0", "A1", "B1", "A2", "B2"]);
    assert!(a.dead());
    assert!(!b.dead(), "B is suspended in its last switch to A");
    peer.borrow_mut().take();
}

#[test]
fn values_travel_both_ways_and_the_return_value_goes_to_the_parent() {
    let main = greenlet::getcurrent().cast::<String>();
    let child = Greenlet::new(move |greeting: String| {
        let reply = main.switch(format!("{greeting} back")).unwrap();
        format!("done with {reply}")
    });
    assert_eq!(child.switch("hello".into()).unwrap(), "hello back");
    assert!(child.started() && !child.dead());
    assert_eq!(child.switch("bye".into()).unwrap(), "done with bye");
    assert!(child.dead());
}

#[test]
fn a_greenlets_parent_is_the_greenlet_that_created_it() {
    let log: Log = Rc::default();
    let l = log.clone();
    let outer = Greenlet::new(move |x: u32| {
        let l2 = l.clone();
        let inner = Greenlet::new(move |y: u32| {
            push(&l2, format!("inner {y}"));
            y + 1 // goes to its parent: outer
        });
        assert_eq!(
            inner.parent().unwrap(),
            greenlet::getcurrent().cast::<u32>()
        );
        let back = inner.switch(x * 10).unwrap();
        push(&l, format!("outer got {back}"));
        back + 1 // goes to main
    });
    assert!(outer.parent().unwrap().is_main());
    assert_eq!(outer.switch(2).unwrap(), 22);
    assert_eq!(*log.borrow(), ["inner 20", "outer got 21"]);
}

#[test]
fn switching_into_a_dead_greenlet_is_an_error() {
    let g = Greenlet::new(|x: i32| x);
    assert_eq!(g.switch(1).unwrap(), 1);
    let err = g.switch(2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.to_string().contains("finished"), "{err}");
}

#[test]
fn switching_to_the_running_greenlet_returns_at_once() {
    let main = greenlet::getcurrent().cast::<i32>();
    assert!(main.is_main());
    assert_eq!(main.switch(5).unwrap(), 5);
    let g = Greenlet::new(|x: i32| {
        let me = greenlet::getcurrent().cast::<i32>();
        me.switch(x + 1).unwrap() + 1
    });
    assert_eq!(g.switch(1).unwrap(), 3);
}

#[test]
fn a_panic_in_a_child_is_raised_in_its_parent() {
    let g = Greenlet::new(|()| -> () { panic!("child failed") });
    let payload = catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"child failed"));
    assert!(g.dead());
    // The thread's greenlets still work afterwards.
    let h = Greenlet::new(|x: u8| x * 2);
    assert_eq!(h.switch(21).unwrap(), 42);
}

#[test]
fn a_panic_in_a_grandchild_is_raised_in_the_child_that_created_it() {
    let outer = Greenlet::new(|_: String| {
        let inner = Greenlet::new(|_: String| -> String { panic!("deep") });
        match catch_unwind(AssertUnwindSafe(|| inner.switch(String::new()))) {
            Err(p) => format!("caught {}", p.downcast_ref::<&str>().unwrap()),
            Ok(_) => "no panic".to_string(),
        }
    });
    assert_eq!(outer.switch(String::new()).unwrap(), "caught deep");
}

#[test]
fn getcurrent_is_main_outside_and_the_greenlet_inside() {
    assert!(greenlet::getcurrent().is_main());
    assert_eq!(greenlet::getcurrent().id(), 0);
    let g = Greenlet::new(|()| {
        let me = greenlet::getcurrent();
        assert!(!me.is_main());
        assert!(me.started());
    });
    g.switch(()).unwrap();
    assert!(greenlet::getcurrent().is_main());
}

#[test]
fn a_value_of_another_type_is_an_error_not_undefined_behaviour() {
    let main = greenlet::getcurrent().cast::<u64>();
    let g = Greenlet::new(move |_: String| {
        // Main waits for a String; send it a u64.
        main.switch(7u64).unwrap();
        String::new()
    });
    let err = g.switch("x".into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
}

#[test]
fn dropping_a_suspended_greenlet_unwinds_its_stack() {
    struct Guard(Log);
    impl Drop for Guard {
        fn drop(&mut self) {
            push(&self.0, "dropped");
        }
    }
    let log: Log = Rc::default();
    let l = log.clone();
    let main = greenlet::getcurrent();
    let g = Greenlet::new(move |()| {
        let _g = Guard(l.clone());
        main.switch(()).unwrap();
        push(&l, "never resumed");
    });
    g.switch(()).unwrap();
    assert!(g.started() && !g.dead());
    drop(g);
    assert_eq!(*log.borrow(), ["dropped"]);
}
