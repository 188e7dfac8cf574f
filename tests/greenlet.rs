//! Greenlets (`kettle::greenlet`), through the public API: the order of explicit switches
//! between two greenlets, values carried both ways, return values going to the parent, the
//! default parent (the creating greenlet), switching to a finished greenlet (`InvalidState`)
//! or to oneself, a child's panic raised again in its parent, `getcurrent()`, `dead()` /
//! `started()`, and switches carrying a value of the wrong type (an error, never UB).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use kettle::greenlet::{self, Greenlet};
use kettle::ErrorKind;

/// An ordered record of events, shared between a test and its greenlets.
type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, event: impl Into<String>) {
    log.borrow_mut().push(event.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

/// Records `dropped <name>` when destroyed.
struct Guard {
    name: &'static str,
    log: Log,
}

impl Drop for Guard {
    fn drop(&mut self) {
        push(&self.log, format!("dropped {}", self.name));
    }
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// A slot for a greenlet that is created after the closures that switch to it.
type Slot = Rc<RefCell<Option<Greenlet>>>;

fn get(slot: &Slot) -> Greenlet {
    slot.borrow().clone().expect("the greenlet exists")
}

#[test]
fn two_greenlets_alternate_in_switch_order() {
    // greenlet's documentation example: test1 prints 12, switches to test2 (56), which
    // switches back (34); test1 then finishes, so control goes to its parent (main) and 78 is
    // never printed.
    let events = log();
    let gr1: Slot = Rc::default();
    let gr2: Slot = Rc::default();

    let (ev, other) = (events.clone(), gr2.clone());
    let test1 = Greenlet::new(move |()| {
        push(&ev, "12");
        get(&other).switch(()).unwrap();
        push(&ev, "34");
    });
    let (ev, other) = (events.clone(), gr1.clone());
    let test2 = Greenlet::new(move |()| {
        let _g = Guard {
            name: "test2",
            log: ev.clone(),
        };
        push(&ev, "56");
        get(&other).switch(()).unwrap();
        push(&ev, "78");
    });
    *gr1.borrow_mut() = Some(test1.clone());
    *gr2.borrow_mut() = Some(test2.clone());

    test1.switch(()).unwrap();
    push(&events, "main");
    assert_eq!(entries(&events), ["12", "56", "34", "main"]);
    assert!(test1.dead());
    assert!(
        !test2.dead(),
        "test2 is still suspended in its switch to test1"
    );
    assert!(test2.started());

    // Dropping the last handle of a suspended greenlet unwinds its stack. The slots are
    // emptied first: test2's closure holds gr1's slot, and the test holds both.
    gr1.borrow_mut().take();
    gr2.borrow_mut().take();
    drop(test1);
    drop(test2);
    assert_eq!(
        entries(&events),
        ["12", "56", "34", "main", "dropped test2"]
    );
}

#[test]
fn many_switches_alternate_strictly() {
    let events = log();
    let a_slot: Rc<RefCell<Option<Greenlet<u32>>>> = Rc::default();
    let b_slot: Rc<RefCell<Option<Greenlet<u32>>>> = Rc::default();

    let (ev, other) = (events.clone(), b_slot.clone());
    let a = Greenlet::new(move |mut n: u32| {
        while n < 10 {
            push(&ev, format!("A{n}"));
            let b = other.borrow().clone().unwrap();
            n = b.switch(n + 1).unwrap();
        }
        n
    });
    let (ev, other) = (events.clone(), a_slot.clone());
    let b = Greenlet::new(move |mut n: u32| loop {
        push(&ev, format!("B{n}"));
        let a = other.borrow().clone().unwrap();
        n = a.switch(n + 1).unwrap();
    });
    *a_slot.borrow_mut() = Some(a.clone());
    *b_slot.borrow_mut() = Some(b.clone());

    // A's return value goes to its parent, main.
    assert_eq!(a.switch(0).unwrap(), 10);
    assert_eq!(
        entries(&events),
        ["A0", "B1", "A2", "B3", "A4", "B5", "A6", "B7", "A8", "B9"]
    );
    a_slot.borrow_mut().take();
    b_slot.borrow_mut().take();
}

#[test]
fn values_travel_in_both_directions() {
    let main = greenlet::getcurrent().cast::<String>();
    let gr = Greenlet::new(move |first: String| {
        // What main switched in is the argument; what main switches next comes back here.
        let second = main.switch(format!("{first}, then")).unwrap();
        let third = main.switch(format!("{second}, and")).unwrap();
        format!("{third}: done")
    });
    assert_eq!(gr.switch("one".into()).unwrap(), "one, then");
    assert_eq!(gr.switch("two".into()).unwrap(), "two, and");
    assert_eq!(gr.switch("three".into()).unwrap(), "three: done");
    assert!(gr.dead());
}

#[test]
fn the_parent_gets_the_return_value_of_a_finished_child() {
    let gr = Greenlet::new(|x: i64| x * 2);
    assert_eq!(gr.switch(21).unwrap(), 42);
    assert!(gr.dead());
}

#[test]
fn a_greenlets_parent_is_the_greenlet_that_created_it() {
    let events = log();
    let main = greenlet::getcurrent();
    assert!(main.is_main());
    assert_eq!(main.id(), 0);
    assert!(main.parent().is_none());

    let ev = events.clone();
    let outer = Greenlet::new(move |x: u32| {
        let me = greenlet::getcurrent().cast::<u32>();
        let ev2 = ev.clone();
        // Created while `outer` runs, so `outer` is its parent.
        let inner = Greenlet::new(move |y: u32| {
            push(&ev2, format!("inner got {y}"));
            y + 1
        });
        assert!(inner.parent().unwrap() == me);
        // When inner finishes, its return value comes back to this switch (its parent's).
        let r = inner.switch(x * 10).unwrap();
        push(&ev, format!("outer got {r} back from inner"));
        assert!(inner.dead());
        r + 1
    });
    assert!(outer.parent().unwrap().is_main());
    assert_eq!(outer.switch(4).unwrap(), 42);
    assert_eq!(
        entries(&events),
        ["inner got 40", "outer got 41 back from inner"]
    );
}

#[test]
fn a_child_finishing_after_its_parent_goes_to_the_nearest_live_ancestor() {
    // outer makes inner (its child) and finishes before inner does; when inner finishes,
    // control skips the dead outer and goes to main, with inner's return value.
    let inner_slot: Rc<RefCell<Option<Greenlet<u32>>>> = Rc::default();
    let slot = inner_slot.clone();
    let outer = Greenlet::new(move |_: u32| {
        let main = greenlet::getcurrent().parent().unwrap().cast::<u32>();
        let inner = Greenlet::new(move |v: u32| {
            // Park in main; main resumes us after outer has finished.
            let w = main.switch(v + 1).unwrap();
            w * 100
        });
        *slot.borrow_mut() = Some(inner.clone());
        inner.switch(1).unwrap()
    });
    // inner switched to main directly with 2: that is what outer.switch returns here.
    assert_eq!(outer.switch(0).unwrap(), 2);
    assert!(!outer.dead());
    let inner = inner_slot.borrow_mut().take().unwrap();
    // Finish outer: it is suspended in `inner.switch(1)`; give it a value to return.
    assert_eq!(outer.switch(5).unwrap(), 5);
    assert!(outer.dead());
    // inner's parent is dead, so its return value comes to main.
    assert_eq!(inner.switch(3).unwrap(), 300);
    assert!(inner.dead());
}

#[test]
fn switching_to_a_dead_greenlet_is_invalid_state() {
    let gr = Greenlet::new(|x: u8| x);
    assert_eq!(gr.switch(1).unwrap(), 1);
    assert!(gr.dead());
    let err = gr.switch(2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    // Still an error on the second try, and from a clone.
    assert_eq!(
        gr.clone().switch(3).unwrap_err().kind(),
        ErrorKind::InvalidState
    );
}

#[test]
fn switching_to_the_running_greenlet_returns_at_once() {
    let main = greenlet::getcurrent().cast::<&str>();
    assert_eq!(main.switch("self").unwrap(), "self");

    let gr = Greenlet::new(|x: u32| {
        let me = greenlet::getcurrent().cast::<u32>();
        let back = me.switch(x + 1).unwrap();
        back * 2
    });
    assert_eq!(gr.switch(20).unwrap(), 42);
}

#[test]
fn a_panic_in_a_child_is_raised_again_in_its_parent() {
    let events = log();
    let ev = events.clone();
    let gr = Greenlet::new(move |x: u32| {
        let _g = Guard {
            name: "child",
            log: ev.clone(),
        };
        if x > 0 {
            panic!("child failed with {x}");
        }
        x
    });
    let payload = catch_unwind(AssertUnwindSafe(|| gr.switch(7))).unwrap_err();
    assert_eq!(panic_text(&*payload), "child failed with 7");
    assert_eq!(entries(&events), ["dropped child"]);
    assert!(gr.dead());
    assert_eq!(gr.switch(0).unwrap_err().kind(), ErrorKind::InvalidState);

    // Main greenlet still works afterwards.
    let again = Greenlet::new(|x: u32| x + 1);
    assert_eq!(again.switch(1).unwrap(), 2);
}

#[test]
fn a_panic_in_a_grandchild_reaches_its_parent_greenlet() {
    let outer = Greenlet::new(|_: String| {
        let inner = Greenlet::new(|_: String| -> String { panic!("inner boom") });
        // The inner greenlet's parent is this one: the panic surfaces at this switch.
        match catch_unwind(AssertUnwindSafe(|| inner.switch(String::new()))) {
            Ok(_) => "no panic".to_string(),
            Err(p) => format!("outer caught: {}", panic_text(&*p)),
        }
    });
    assert_eq!(
        outer.switch(String::new()).unwrap(),
        "outer caught: inner boom"
    );
}

#[test]
fn getcurrent_is_main_outside_and_the_greenlet_inside() {
    assert!(greenlet::getcurrent().is_main());
    let slot: Rc<RefCell<Option<Greenlet<u64>>>> = Rc::default();
    let s = slot.clone();
    let gr = Greenlet::new(move |_: u64| {
        let me = greenlet::getcurrent().cast::<u64>();
        assert!(!me.is_main());
        assert!(me == s.borrow().clone().unwrap());
        me.id()
    });
    *slot.borrow_mut() = Some(gr.clone());
    assert_ne!(gr.id(), 0);
    assert_eq!(gr.switch(0).unwrap(), gr.id());
    // Back in main once the greenlet has finished.
    assert!(greenlet::getcurrent().is_main());
    slot.borrow_mut().take();
}

#[test]
fn dead_and_started_follow_the_life_of_a_greenlet() {
    let main = greenlet::getcurrent();
    assert!(main.started());
    assert!(!main.dead());

    let m = main.clone();
    let gr = Greenlet::new(move |()| {
        m.switch(()).unwrap();
    });
    assert!(!gr.started());
    assert!(!gr.dead());
    assert_eq!(
        format!("{gr:?}"),
        format!("<greenlet {} (not started)>", gr.id())
    );
    gr.switch(()).unwrap(); // runs until it switches back to main
    assert!(gr.started());
    assert!(!gr.dead());
    assert_eq!(
        format!("{gr:?}"),
        format!("<greenlet {} (started)>", gr.id())
    );
    gr.switch(()).unwrap(); // finishes
    assert!(gr.started());
    assert!(gr.dead());
    assert_eq!(format!("{gr:?}"), format!("<greenlet {} (dead)>", gr.id()));
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_not_undefined_behaviour() {
    let events = log();
    let ev = events.clone();
    let main = greenlet::getcurrent().cast::<i32>();
    let gr = Greenlet::new(move |x: i32| {
        match main.switch(x + 1) {
            Ok(v) => push(&ev, format!("got {v}")),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidState);
                push(&ev, "greenlet got a wrong-typed value");
            }
        }
        -1
    });
    assert_eq!(gr.switch(1).unwrap(), 2);
    // Switch the suspended greenlet back with a String where it waits for an i32: its switch
    // fails. Its i32 return value then arrives where main waits for a String: that fails too.
    let err = gr.cast::<String>().switch("not an i32".into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(entries(&events), ["greenlet got a wrong-typed value"]);
    assert!(gr.dead());
}

#[test]
fn starting_a_greenlet_with_the_wrong_type_is_an_error() {
    let events = log();
    let ev = events.clone();
    let gr = Greenlet::new(move |x: i32| {
        push(&ev, format!("ran with {x}"));
        x
    });
    // The body takes an i32; a String cannot start it.
    let err = gr.cast::<String>().switch("nope".into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(entries(&events).is_empty());
    // The mistake did not consume the greenlet: it can still be started properly.
    assert!(!gr.started());
    assert!(!gr.dead());
    assert_eq!(gr.switch(5).unwrap(), 5);
    assert_eq!(entries(&events), ["ran with 5"]);
}

#[test]
fn greenlets_with_a_larger_stack_recurse_deeply() {
    fn depth(n: u32) -> u32 {
        let frame = std::hint::black_box([n as u8; 1024]);
        if n == 0 {
            frame[0] as u32
        } else {
            1 + depth(n - 1) + frame[1] as u32 - (n as u8) as u32
        }
    }
    let gr = Greenlet::with_stack_size(32 * 1024 * 1024, |n: u32| depth(n));
    assert_eq!(gr.switch(4_000).unwrap(), 4_000);
}

#[test]
fn dropping_a_suspended_greenlet_unwinds_it_and_frees_its_stack() {
    let before = kettle::green::pool_stats().in_use;
    let events = log();
    let ev = events.clone();
    let main = greenlet::getcurrent();
    let gr = Greenlet::new(move |()| {
        let _g = Guard {
            name: "suspended",
            log: ev.clone(),
        };
        main.switch(()).unwrap();
        push(&ev, "unreachable: nobody switches back");
    });
    assert_eq!(kettle::green::pool_stats().in_use, before + 1);
    gr.switch(()).unwrap();
    assert!(gr.started() && !gr.dead());
    assert!(entries(&events).is_empty());
    let clone = gr.clone();
    drop(gr);
    assert!(entries(&events).is_empty(), "a clone still holds it");
    drop(clone);
    assert_eq!(entries(&events), ["dropped suspended"]);
    assert_eq!(kettle::green::pool_stats().in_use, before);

    // The main greenlet carries on normally: the unwinding did not leave a value behind.
    let next = Greenlet::new(|x: u8| x + 1);
    assert_eq!(next.switch(1).unwrap(), 2);
}

#[test]
fn dropping_an_unstarted_greenlet_drops_its_function() {
    let before = kettle::green::pool_stats().in_use;
    let events = log();
    let captured = Guard {
        name: "capture",
        log: events.clone(),
    };
    let gr = Greenlet::new(move |()| drop(captured));
    drop(gr);
    assert_eq!(entries(&events), ["dropped capture"]);
    assert_eq!(kettle::green::pool_stats().in_use, before);
}

#[test]
fn switching_from_a_generator_inside_a_greenlet_panics_clearly() {
    use kettle::generator::Generator;
    let main = greenlet::getcurrent().cast::<String>();
    let gr = Greenlet::new(move |_: String| {
        // The generator runs on its own stack: switching from there would suspend the wrong
        // coroutine, so it is refused.
        let m = main.clone();
        let mut g: Generator<(), (), ()> = Generator::new(move |_co, ()| {
            let _ = m.switch("from the generator".into());
        });
        match catch_unwind(AssertUnwindSafe(|| g.send(()))) {
            Ok(_) => "no panic".to_string(),
            Err(p) => panic_text(&*p),
        }
    });
    let text = gr.switch(String::new()).unwrap();
    assert!(
        text.contains("called from a generator or greenlet running inside"),
        "{text}"
    );
}

#[test]
fn an_impossible_stack_size_is_an_error() {
    let err = Greenlet::<()>::try_with_stack_size(usize::MAX, |()| ()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}
