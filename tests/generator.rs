//! Generators (`kettle::generator`), through the public API: the send/yield protocol and its
//! states, `StopIteration` after the end, `close()` and drop unwinding a suspended generator
//! (destructors run), `yield_from` delegation (values both ways, the sub-generator's return
//! value, closing while delegating), panics reaching the caller of `send`, the `Iterator`
//! form, suspending from nested calls (stackful), many live generators at once, and deep
//! recursion on a larger stack.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use kettle::generator::{Generator, GeneratorState, Yielder};
use kettle::ErrorKind;

/// An ordered record of events, shared between a test and its generators.
type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

/// Records `dropped <name>` when destroyed: proves a frame on a generator's stack was unwound
/// (or a closure's capture released).
struct Guard {
    name: &'static str,
    log: Log,
}

impl Guard {
    fn new(name: &'static str, log: &Log) -> Guard {
        Guard {
            name,
            log: log.clone(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.log.borrow_mut().push(format!("dropped {}", self.name));
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

#[test]
fn first_send_starts_the_generator_with_its_value() {
    let events = log();
    let ev = events.clone();
    let mut g: Generator<u32, String, u32> = Generator::new(move |co, first| {
        ev.borrow_mut().push(format!("started with {first}"));
        let second = co.suspend(format!("got {first}"));
        ev.borrow_mut().push(format!("resumed with {second}"));
        let third = co.suspend(format!("got {second}"));
        first + second + third
    });

    // Nothing runs until the first send.
    assert!(!g.is_started());
    assert!(!g.is_finished());
    assert!(entries(&events).is_empty());
    assert_eq!(format!("{g:?}"), r#"Generator { state: "created" }"#);

    assert_eq!(g.send(1).unwrap(), GeneratorState::Yielded("got 1".into()));
    assert!(g.is_started());
    assert!(!g.is_finished());
    assert_eq!(format!("{g:?}"), r#"Generator { state: "suspended" }"#);

    // The value of each later send is what the paused `suspend` returns.
    assert_eq!(
        g.send(20).unwrap(),
        GeneratorState::Yielded("got 20".into())
    );
    assert_eq!(g.send(300).unwrap(), GeneratorState::Complete(321));
    assert!(g.is_finished());
    assert_eq!(format!("{g:?}"), r#"Generator { state: "finished" }"#);
    assert_eq!(entries(&events), ["started with 1", "resumed with 20"]);

    // Resuming a finished generator is StopIteration, every time, and runs nothing.
    for _ in 0..3 {
        let err = g.send(4000).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StopIteration);
        assert!(err.is_stop_iteration());
    }
    assert_eq!(entries(&events).len(), 2);
}

#[test]
fn a_generator_that_returns_at_once_completes_on_the_first_send() {
    let mut g: Generator<&str, (), usize> = Generator::new(|_co, first: &str| first.len());
    assert_eq!(g.send("four").unwrap(), GeneratorState::Complete(4));
    assert!(g.is_finished());
    assert!(g.send("again").unwrap_err().is_stop_iteration());
}

#[test]
fn close_unwinds_a_suspended_generator_and_runs_its_destructors() {
    let events = log();
    let ev = events.clone();
    let mut g: Generator<(), u32> = Generator::new(move |co, ()| {
        let _outer = Guard::new("outer", &ev);
        {
            let _inner = Guard::new("inner", &ev);
            co.suspend(1);
            ev.borrow_mut().push("resumed after close".into());
        }
        co.suspend(2);
    });
    assert_eq!(g.send(()).unwrap(), GeneratorState::Yielded(1));
    assert!(entries(&events).is_empty());

    g.close();
    // Unwinding runs destructors innermost first, and no code after the suspend.
    assert_eq!(entries(&events), ["dropped inner", "dropped outer"]);
    assert!(g.is_finished());
    assert!(g.send(()).unwrap_err().is_stop_iteration());

    // Closing again (and dropping afterwards) is harmless and runs nothing twice.
    g.close();
    drop(g);
    assert_eq!(entries(&events).len(), 2);
}

#[test]
fn close_before_the_first_send_drops_the_closure_without_running_it() {
    let events = log();
    let ev = events.clone();
    let captured = Guard::new("capture", &events);
    let mut g: Generator<(), ()> = Generator::new(move |_co, ()| {
        let _keep = &captured;
        ev.borrow_mut().push("ran".into());
    });
    g.close();
    assert_eq!(entries(&events), ["dropped capture"]);
    assert!(g.is_finished());
    assert!(!g.is_started());
    assert!(g.send(()).unwrap_err().is_stop_iteration());
    g.close();
    drop(g);
    assert_eq!(entries(&events), ["dropped capture"]);
}

#[test]
fn close_after_completion_does_nothing() {
    let events = log();
    let ev = events.clone();
    let mut g: Generator<(), (), ()> = Generator::new(move |_co, ()| {
        let _g = Guard::new("body", &ev);
    });
    assert_eq!(g.send(()).unwrap(), GeneratorState::Complete(()));
    assert_eq!(entries(&events), ["dropped body"]);
    g.close();
    g.close();
    assert_eq!(entries(&events), ["dropped body"]);
}

#[test]
fn dropping_a_suspended_generator_unwinds_it() {
    let events = log();
    let ev = events.clone();
    let mut g: Generator<(), u32> = Generator::new(move |co, ()| {
        let _g = Guard::new("frame", &ev);
        loop {
            co.suspend(7);
        }
    });
    assert_eq!(g.send(()).unwrap(), GeneratorState::Yielded(7));
    assert!(entries(&events).is_empty());
    drop(g);
    assert_eq!(entries(&events), ["dropped frame"]);
}

#[test]
fn dropping_an_unstarted_generator_drops_its_captures() {
    let events = log();
    let captured = Guard::new("capture", &events);
    let g: Generator<(), ()> = Generator::new(move |_co, ()| drop(captured));
    drop(g);
    assert_eq!(entries(&events), ["dropped capture"]);
}

#[test]
fn yield_from_forwards_values_both_ways_and_returns_the_sub_result() {
    let events = log();
    let ev = events.clone();
    let mut outer: Generator<i32, String, String> = Generator::new(move |co, first| {
        ev.borrow_mut().push(format!("outer started with {first}"));
        let got = co.suspend("outer before".into());
        let ev2 = ev.clone();
        let sub: Generator<i32, String, i32> = Generator::new(move |co, first| {
            ev2.borrow_mut().push(format!("sub started with {first}"));
            let a = co.suspend(format!("sub yields {first}"));
            ev2.borrow_mut().push(format!("sub got {a}"));
            let b = co.suspend(format!("sub yields {a}"));
            ev2.borrow_mut().push(format!("sub got {b}"));
            a + b
        });
        // Python starts a sub-generator with None; here `first` is the value we choose.
        let sum = co.yield_from(sub, got * 10);
        ev.borrow_mut().push(format!("sub returned {sum}"));
        let last = co.suspend(format!("outer after, sub returned {sum}"));
        format!("outer done with {last}")
    });

    let mut answers = Vec::new();
    let mut send = |v: i32| match outer.send(v).unwrap() {
        GeneratorState::Yielded(s) => answers.push(s),
        GeneratorState::Complete(s) => answers.push(format!("complete: {s}")),
    };
    send(1); // starts outer
    send(2); // outer's first suspend returns 2; the sub starts with 20
    send(3); // forwarded into the sub
    send(4); // forwarded into the sub, which returns 3 + 4
    send(5); // outer's own suspend again
    assert_eq!(
        answers,
        [
            "outer before",
            "sub yields 20",
            "sub yields 3",
            "outer after, sub returned 7",
            "complete: outer done with 5",
        ]
    );
    assert_eq!(
        entries(&events),
        [
            "outer started with 1",
            "sub started with 20",
            "sub got 3",
            "sub got 4",
            "sub returned 7",
        ]
    );
}

#[test]
fn closing_the_outer_generator_while_delegating_unwinds_both() {
    let events = log();
    let ev = events.clone();
    let mut outer: Generator<(), &'static str> = Generator::new(move |co, ()| {
        let _outer_guard = Guard::new("outer", &ev);
        let ev2 = ev.clone();
        let sub: Generator<(), &'static str, ()> = Generator::new(move |co, ()| {
            let _sub_guard = Guard::new("sub", &ev2);
            loop {
                co.suspend("from sub");
            }
        });
        co.yield_from(sub, ());
        ev.borrow_mut()
            .push("unreachable: the sub never returns".into());
    });
    assert_eq!(outer.send(()).unwrap(), GeneratorState::Yielded("from sub"));
    assert_eq!(outer.send(()).unwrap(), GeneratorState::Yielded("from sub"));
    outer.close();
    // The sub-generator lives in the outer's frame, so it is unwound first.
    assert_eq!(entries(&events), ["dropped sub", "dropped outer"]);
    assert!(outer.is_finished());
    assert!(outer.send(()).unwrap_err().is_stop_iteration());
}

#[test]
fn yield_from_a_finished_generator_panics_inside_the_outer() {
    let mut outer: Generator<(), (), ()> = Generator::new(|co, ()| {
        let mut sub: Generator<(), (), u8> = Generator::new(|_co, ()| 1);
        assert_eq!(sub.send(()).unwrap(), GeneratorState::Complete(1));
        co.yield_from(sub, ());
    });
    let payload = catch_unwind(AssertUnwindSafe(|| outer.send(()))).unwrap_err();
    assert!(
        panic_text(&*payload).contains("already finished"),
        "{}",
        panic_text(&*payload)
    );
    assert!(outer.is_finished());
}

#[test]
fn a_panic_reaches_the_caller_of_send_and_finishes_the_generator() {
    let events = log();
    let ev = events.clone();
    let mut g: Generator<u32, u32> = Generator::new(move |co, first| {
        let _g = Guard::new("frame", &ev);
        let n = co.suspend(first);
        if n == 13 {
            panic!("unlucky {n}");
        }
        co.suspend(n);
    });
    assert_eq!(g.send(1).unwrap(), GeneratorState::Yielded(1));
    let payload = catch_unwind(AssertUnwindSafe(|| g.send(13))).unwrap_err();
    assert_eq!(panic_text(&*payload), "unlucky 13");
    // The panic unwound the generator's own stack on the way out.
    assert_eq!(entries(&events), ["dropped frame"]);
    assert!(g.is_finished());
    let err = g.send(2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StopIteration);
    g.close();
    assert_eq!(entries(&events), ["dropped frame"]);
}

#[test]
fn a_panic_in_a_sub_generator_goes_through_the_outer_one() {
    let events = log();
    let ev = events.clone();
    let mut outer: Generator<(), u8, ()> = Generator::new(move |co, ()| {
        let _g = Guard::new("outer", &ev);
        let sub: Generator<(), u8, ()> = Generator::new(|co, ()| {
            co.suspend(1);
            panic!("sub failed");
        });
        co.yield_from(sub, ());
    });
    assert_eq!(outer.send(()).unwrap(), GeneratorState::Yielded(1));
    let payload = catch_unwind(AssertUnwindSafe(|| outer.send(()))).unwrap_err();
    assert_eq!(panic_text(&*payload), "sub failed");
    assert_eq!(entries(&events), ["dropped outer"]);
    assert!(outer.is_finished());
    assert!(outer.send(()).unwrap_err().is_stop_iteration());
}

#[test]
fn a_unit_generator_is_an_iterator_of_its_yields() {
    let fib: Generator<(), u64, &str> = Generator::new(|co, ()| {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..10 {
            co.suspend(a);
            (a, b) = (b, a + b);
        }
        "the return value is not an item"
    });
    assert_eq!(fib.collect::<Vec<_>>(), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);

    // After the end, next() keeps saying None (it does not restart or panic).
    let mut g: Generator<(), char> = Generator::new(|co, ()| co.suspend('x'));
    assert_eq!(g.next(), Some('x'));
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None);
    assert!(g.is_finished());

    // Iterator adapters stop early; the rest of the generator is unwound on drop.
    let events = log();
    let ev = events.clone();
    let naturals: Generator<(), u32> = Generator::new(move |co, ()| {
        let _g = Guard::new("naturals", &ev);
        let mut n = 0;
        loop {
            co.suspend(n);
            n += 1;
        }
    });
    let evens: Vec<u32> = naturals.filter(|n| n % 2 == 0).take(4).collect();
    assert_eq!(evens, [0, 2, 4, 6]);
    assert_eq!(entries(&events), ["dropped naturals"]);
}

/// Walks a tree, suspending from deep inside the recursion: only a stackful generator can.
fn walk(co: &Yielder<(), u32>, depth: u32, label: u32) {
    if depth == 0 {
        co.suspend(label);
        return;
    }
    walk(co, depth - 1, label * 2);
    walk(co, depth - 1, label * 2 + 1);
}

#[test]
fn suspend_works_from_nested_function_calls() {
    let g: Generator<(), u32> = Generator::new(|co, ()| walk(co, 4, 1));
    // The leaves of a depth-4 binary tree labelled heap-style, left to right.
    assert_eq!(g.collect::<Vec<_>>(), (16..32).collect::<Vec<_>>());

    // Values sent in arrive at the nested suspend too.
    fn ask(co: &Yielder<u32, &'static str>, question: &'static str) -> u32 {
        co.suspend(question)
    }
    let mut g: Generator<u32, &'static str, u32> =
        Generator::new(|co, _| ask(co, "a?") + ask(co, "b?"));
    assert_eq!(g.send(0).unwrap(), GeneratorState::Yielded("a?"));
    assert_eq!(g.send(40).unwrap(), GeneratorState::Yielded("b?"));
    assert_eq!(g.send(2).unwrap(), GeneratorState::Complete(42));
}

#[test]
fn ten_thousand_generators_keep_their_own_state() {
    const N: u64 = 10_000;
    let before = kettle::green::pool_stats();
    let dropped = Rc::new(Cell::new(0u64));
    struct Count(Rc<Cell<u64>>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    // Each generator keeps a running total on its own stack, seeded with its index.
    let mut gens: Vec<Generator<u64, u64>> = (0..N)
        .map(|i| {
            let d = dropped.clone();
            Generator::new(move |co, first| {
                let _count = Count(d);
                let mut total = i * 1_000_000 + first;
                loop {
                    total += co.suspend(total);
                }
            })
        })
        .collect();
    // A generator takes its stack when it is made.
    assert_eq!(
        kettle::green::pool_stats().in_use,
        before.in_use + N as usize,
        "one stack per generator"
    );
    // Round-robin: every generator is alive (started, suspended) at once.
    for round in 1..=3u64 {
        for (i, g) in gens.iter_mut().enumerate() {
            let i = i as u64;
            let expected = i * 1_000_000 + (1..=round).sum::<u64>();
            assert_eq!(g.send(round).unwrap(), GeneratorState::Yielded(expected));
        }
    }
    drop(gens);
    assert_eq!(dropped.get(), N, "every generator's stack was unwound");
    assert_eq!(kettle::green::pool_stats().in_use, before.in_use);
}

/// Recursion with a 1 KiB frame; `black_box` keeps the array (and the depth) real.
fn deep(co: &Yielder<(), usize>, n: usize) -> usize {
    let mut frame = [0u8; 1024];
    frame[n % 1024] = n as u8;
    let frame = std::hint::black_box(frame);
    if n == 0 {
        co.suspend(0);
        return frame[0] as usize;
    }
    1 + deep(co, n - 1) + frame[n % 1024] as usize - (n as u8) as usize
}

#[test]
fn deep_recursion_fits_in_a_larger_stack() {
    // 4,000 frames of over 1 KiB is several MiB: far more than the 256 KiB default.
    const DEPTH: usize = 4_000;
    const { assert!(DEPTH * 1024 > kettle::green::DEFAULT_STACK_SIZE * 4) };
    let mut g: Generator<(), usize, usize> =
        Generator::with_stack_size(32 * 1024 * 1024, |co, ()| deep(co, DEPTH));
    // It suspends at the bottom of the recursion, then unwinds back up normally.
    assert_eq!(g.send(()).unwrap(), GeneratorState::Yielded(0));
    assert_eq!(g.send(()).unwrap(), GeneratorState::Complete(DEPTH));

    // A stack that deep can also be closed while suspended at the bottom.
    let mut g: Generator<(), usize, usize> =
        Generator::with_stack_size(32 * 1024 * 1024, |co, ()| deep(co, DEPTH));
    assert_eq!(g.send(()).unwrap(), GeneratorState::Yielded(0));
    g.close();
    assert!(g.is_finished());
}

#[test]
fn try_with_stack_size_returns_a_generator() {
    let mut g: Generator<u8, (), u8> =
        Generator::try_with_stack_size(64 * 1024, |_co, x| x + 1).unwrap();
    assert_eq!(g.send(1).unwrap(), GeneratorState::Complete(2));
}

#[test]
fn an_impossible_stack_size_is_an_error_not_a_tiny_stack() {
    // Sizes near usize::MAX must not wrap around to a small stack.
    for size in [usize::MAX, usize::MAX / 2, usize::MAX / 64] {
        let err = Generator::<(), (), ()>::try_with_stack_size(size, |_co, ()| ()).unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidInput,
            "{size}: {err}"
        );
        assert!(err.to_string().contains("too large"), "{err}");
    }
    let payload = catch_unwind(|| {
        Generator::<(), (), ()>::with_stack_size(usize::MAX, |_co, ()| ());
    })
    .unwrap_err();
    assert!(
        panic_text(&*payload).starts_with("kettle::generator::Generator: cannot allocate"),
        "{}",
        panic_text(&*payload)
    );
}
