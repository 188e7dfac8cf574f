//! `kettle::generator`: Python's generator protocol (`send`, `yield`, `close`, `yield from`,
//! `StopIteration`) on stackful coroutines, through the public API.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use kettle::generator::{Generator, GeneratorState, Yielder};
use kettle::ErrorKind;

/// Records its name in the log when dropped, to prove destructors ran.
struct Guard(&'static str, Rc<RefCell<Vec<String>>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.1.borrow_mut().push(format!("drop {}", self.0));
    }
}

fn log() -> Rc<RefCell<Vec<String>>> {
    Rc::default()
}

#[test]
fn the_first_send_starts_the_generator_and_reaches_the_closure() {
    let seen = log();
    let s = seen.clone();
    let mut g = Generator::new(move |co, first: i32| {
        s.borrow_mut().push(format!("start {first}"));
        let second = co.suspend(first * 10);
        s.borrow_mut().push(format!("got {second}"));
        second + 1
    });
    assert!(!g.is_started());
    assert!(
        seen.borrow().is_empty(),
        "nothing runs before the first send"
    );
    assert_eq!(g.send(4).unwrap(), GeneratorState::Yielded(40));
    assert!(g.is_started() && !g.is_finished());
    assert_eq!(g.send(7).unwrap(), GeneratorState::Complete(8));
    assert!(g.is_finished());
    assert_eq!(*seen.borrow(), ["start 4", "got 7"]);
}

#[test]
fn sending_to_a_finished_generator_is_stop_iteration() {
    let mut g = Generator::new(|_co: &Yielder<'_, (), ()>, ()| 5);
    assert_eq!(g.send(()).unwrap(), GeneratorState::Complete(5));
    for _ in 0..3 {
        let err = g.send(()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StopIteration);
        assert!(err.is_stop_iteration());
    }
}

#[test]
fn close_unwinds_a_suspended_generator_and_runs_its_destructors() {
    let events = log();
    let e = events.clone();
    let mut g = Generator::new(move |co, ()| {
        let _outer = Guard("outer", e.clone());
        loop {
            let _inner = Guard("inner", e.clone());
            co.suspend(1);
            e.borrow_mut().push("resumed".into());
        }
    });
    assert_eq!(g.send(()).unwrap(), GeneratorState::Yielded(1));
    assert_eq!(g.send(()).unwrap(), GeneratorState::Yielded(1));
    g.close();
    assert!(g.is_finished());
    assert_eq!(
        *events.borrow(),
        ["resumed", "drop inner", "drop inner", "drop outer"],
        "the stack unwound from the suspension point, innermost first"
    );
    g.close(); // closing twice is harmless
    assert!(g.send(()).unwrap_err().is_stop_iteration());
}

#[test]
fn close_before_start_drops_what_the_closure_captured() {
    let events = log();
    let guard = Guard("captured", events.clone());
    let e = events.clone();
    let mut g = Generator::new(move |co: &Yielder<'_, (), ()>, ()| {
        let _keep = &guard;
        e.borrow_mut().push("ran".into());
        co.suspend(());
    });
    g.close();
    assert_eq!(*events.borrow(), ["drop captured"]);
    assert!(g.send(()).unwrap_err().is_stop_iteration());
}

#[test]
fn dropping_a_suspended_generator_unwinds_it() {
    let events = log();
    let e = events.clone();
    let mut g = Generator::new(move |co, ()| {
        let _g = Guard("frame", e);
        co.suspend(());
    });
    g.send(()).unwrap();
    drop(g);
    assert_eq!(*events.borrow(), ["drop frame"]);
}

#[test]
fn suspend_works_from_nested_calls() {
    fn deep(co: &Yielder<'_, (), u32>, depth: u32) {
        if depth == 0 {
            co.suspend(100);
        } else {
            co.suspend(depth);
            deep(co, depth - 1);
        }
    }
    let g = Generator::new(|co, ()| deep(co, 3));
    assert_eq!(g.collect::<Vec<_>>(), [3, 2, 1, 100]);
}

#[test]
fn a_generator_that_takes_nothing_is_an_iterator() {
    let g = Generator::new(|co, ()| {
        for i in 0..5 {
            co.suspend(i * i);
        }
        "the return value is not an item"
    });
    let squares: Vec<u64> = g.collect();
    assert_eq!(squares, [0, 1, 4, 9, 16]);
}

#[test]
fn yield_from_forwards_both_ways_and_returns_the_sub_generators_value() {
    let mut outer = Generator::new(|co, start: i32| {
        co.suspend(start);
        let sub = Generator::new(|co, first: i32| {
            // The sub-generator sees what is sent to the outer one.
            let a = co.suspend(first + 1000);
            let b = co.suspend(a + 1000);
            a + b
        });
        let total = co.yield_from(sub, -1);
        co.suspend(total);
        -2
    });
    assert_eq!(outer.send(1).unwrap(), GeneratorState::Yielded(1));
    assert_eq!(outer.send(0).unwrap(), GeneratorState::Yielded(999)); // sub started with -1
    assert_eq!(outer.send(5).unwrap(), GeneratorState::Yielded(1005));
    assert_eq!(outer.send(7).unwrap(), GeneratorState::Yielded(12)); // 5 + 7 returned
    assert_eq!(outer.send(0).unwrap(), GeneratorState::Complete(-2));
}

#[test]
fn closing_the_outer_generator_inside_yield_from_unwinds_both() {
    let events = log();
    let e = events.clone();
    let mut outer = Generator::new(move |co, ()| {
        let _o = Guard("outer", e.clone());
        let e2 = e.clone();
        let sub = Generator::new(move |co, ()| {
            let _s = Guard("sub", e2);
            loop {
                co.suspend(1);
            }
        });
        co.yield_from(sub, ());
    });
    assert_eq!(outer.send(()).unwrap(), GeneratorState::Yielded(1));
    outer.close();
    assert_eq!(*events.borrow(), ["drop sub", "drop outer"]);
}

#[test]
fn a_panic_reaches_the_caller_of_send_and_finishes_the_generator() {
    let mut g = Generator::new(|co, ()| {
        co.suspend(1);
        panic!("consumer broke");
    });
    assert_eq!(g.send(()).unwrap(), GeneratorState::Yielded(1));
    let payload = catch_unwind(AssertUnwindSafe(|| g.send(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"consumer broke"));
    assert!(g.is_finished());
    assert!(g.send(()).unwrap_err().is_stop_iteration());
}

#[test]
fn ten_thousand_generators_keep_their_own_state() {
    let mut gens: Vec<Generator<u64, u64>> = (0..10_000u64)
        .map(|i| {
            Generator::new(move |co, mut x: u64| loop {
                x = co.suspend(x + i);
            })
        })
        .collect();
    for round in 0..3u64 {
        for (i, g) in gens.iter_mut().enumerate() {
            assert_eq!(
                g.send(round).unwrap(),
                GeneratorState::Yielded(round + i as u64)
            );
        }
    }
}

#[test]
fn a_deep_recursion_fits_in_a_larger_stack() {
    #[inline(never)]
    fn recurse(n: u32) -> u64 {
        let pad = std::hint::black_box([n as u8; 512]);
        if n == 0 {
            pad[0] as u64
        } else {
            recurse(n - 1) + pad[7] as u64
        }
    }
    // ~600 bytes a frame × 4,000 frames ≈ 2.4 MiB: far over the default 256 KiB.
    let mut g = Generator::with_stack_size(8 << 20, |_co: &Yielder<'_, (), ()>, ()| recurse(4_000));
    let expected: u64 = (1..=4_000u64).map(|n| n % 256).sum();
    assert_eq!(g.send(()).unwrap(), GeneratorState::Complete(expected));
}

#[test]
fn the_seed_consumer_answers_like_python() {
    let mut c: Generator<Option<u32>, &str> = Generator::new(|co, _first| {
        let mut r = "";
        loop {
            let Some(_n) = co.suspend(r) else { return };
            r = "200 OK";
        }
    });
    assert_eq!(c.send(None).unwrap(), GeneratorState::Yielded(""));
    for n in 1..=5 {
        assert_eq!(c.send(Some(n)).unwrap(), GeneratorState::Yielded("200 OK"));
    }
    assert_eq!(c.send(None).unwrap(), GeneratorState::Complete(()));
}
