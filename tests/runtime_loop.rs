//! The event loop's own API, asyncio's `AbstractEventLoop`: `call_soon`, `call_later`,
//! `call_at`, handles, `run_forever` / `stop`, `close`, `time`, and `call_soon_threadsafe`.
//!
//! Timing assertions follow one rule: lower bounds are exact (a timer never fires early), upper
//! bounds are generous (a loaded CI machine may be slow, never fast).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use kettle::ErrorKind;

mod common;
use common::{log, new_loop, thread_cpu_time, Log, LATE};

#[test]
fn call_soon_runs_callbacks_in_fifo_order() {
    let lp = new_loop();
    let order = log();
    for i in 0..20 {
        let o = order.clone();
        lp.call_soon(move || o.borrow_mut().push(i));
    }
    let l = lp.clone();
    lp.call_soon(move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(*order.borrow(), (0..20).collect::<Vec<_>>());
    lp.close().unwrap();
}

#[test]
fn call_soon_runs_before_the_run_until_complete_future() {
    let lp = new_loop();
    let order = log();
    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("callback"));
    let o = order.clone();
    lp.run_until_complete(async move { o.borrow_mut().push("main") });
    assert_eq!(*order.borrow(), ["callback", "main"]);
}

#[test]
fn call_soon_from_a_callback_runs_after_already_queued_items() {
    let lp = new_loop();
    let order = log();

    let (o, l) = (order.clone(), lp.clone());
    lp.call_soon(move || {
        o.borrow_mut().push("a");
        let o2 = o.clone();
        l.call_soon(move || o2.borrow_mut().push("a-child"));
    });
    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("b"));
    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("c"));
    let l = lp.clone();
    lp.call_soon(move || {
        let l2 = l.clone();
        l.call_soon(move || l2.stop());
    });
    lp.run_forever().unwrap();
    assert_eq!(*order.borrow(), ["a", "b", "c", "a-child"]);
}

/// The ready queue is run in batches: a callback scheduled by a callback belongs to the next
/// iteration. `stop()` ends the loop after the current batch (asyncio's semantics), so the
/// child has not run when `run_forever` returns, and runs first on the next run.
#[test]
fn call_soon_from_a_callback_belongs_to_the_next_iteration() {
    let lp = new_loop();
    let order = log();

    let (o, l) = (order.clone(), lp.clone());
    lp.call_soon(move || {
        o.borrow_mut().push("first");
        let o2 = o.clone();
        l.call_soon(move || o2.borrow_mut().push("child"));
        l.stop();
    });
    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("second"));
    lp.run_forever().unwrap();
    assert_eq!(
        *order.borrow(),
        ["first", "second"],
        "stop() finishes the current batch only; the child is in the next one"
    );

    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("later"));
    let l = lp.clone();
    lp.call_soon(move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(*order.borrow(), ["first", "second", "child", "later"]);
}

#[test]
fn call_later_fires_in_deadline_order_and_never_early() {
    let lp = new_loop();
    let fired: Log<(u64, Duration)> = log();
    let t0 = Instant::now();
    for ms in [30u64, 10, 50, 20, 0, 40] {
        let f = fired.clone();
        lp.call_later(Duration::from_millis(ms), move || {
            f.borrow_mut().push((ms, t0.elapsed()))
        });
    }
    let l = lp.clone();
    lp.call_later(Duration::from_millis(60), move || l.stop());
    lp.run_forever().unwrap();

    let fired = fired.borrow();
    let order: Vec<u64> = fired.iter().map(|&(ms, _)| ms).collect();
    assert_eq!(order, [0, 10, 20, 30, 40, 50]);
    for &(ms, at) in fired.iter() {
        assert!(
            at >= Duration::from_millis(ms),
            "call_later({ms} ms) fired early, after {at:?}"
        );
        assert!(at < LATE, "call_later({ms} ms) fired very late: {at:?}");
    }
}

#[test]
fn call_later_with_equal_deadlines_is_fifo() {
    let lp = new_loop();
    let order = log();
    let t0 = Instant::now();
    let when = lp.time() + 0.010;
    for i in 0..10 {
        let o = order.clone();
        lp.call_at(when, move || o.borrow_mut().push(i));
    }
    let l = lp.clone();
    lp.call_at(when, move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(*order.borrow(), (0..10).collect::<Vec<_>>());
    assert!(t0.elapsed() >= Duration::from_millis(10));
}

#[test]
fn call_at_fires_at_its_loop_time_never_early() {
    let lp = new_loop();
    let fired: Log<(&str, f64)> = log();
    let start = lp.time();
    let t0 = Instant::now();
    let (f, l) = (fired.clone(), lp.clone());
    let h2 = lp.call_at(start + 0.040, move || f.borrow_mut().push(("b", l.time())));
    let (f, l) = (fired.clone(), lp.clone());
    let h1 = lp.call_at(start + 0.020, move || f.borrow_mut().push(("a", l.time())));
    assert!((h1.when() - (start + 0.020)).abs() < 1e-6);
    assert!((h2.when() - (start + 0.040)).abs() < 1e-6);
    let l = lp.clone();
    lp.call_at(start + 0.050, move || l.stop());
    lp.run_forever().unwrap();

    let fired = fired.borrow();
    assert_eq!(fired.len(), 2);
    assert_eq!(fired[0].0, "a");
    assert_eq!(fired[1].0, "b");
    assert!(
        fired[0].1 >= h1.when(),
        "fired at {} < {}",
        fired[0].1,
        h1.when()
    );
    assert!(
        fired[1].1 >= h2.when(),
        "fired at {} < {}",
        fired[1].1,
        h2.when()
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(t0.elapsed() < LATE);
}

#[test]
fn call_at_in_the_past_runs_on_the_next_iteration() {
    let lp = new_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    lp.call_at(lp.time() - 10.0, move || r.set(true));
    let t0 = Instant::now();
    let r = ran.clone();
    let l = lp.clone();
    lp.call_soon(move || {
        assert!(!r.get(), "the timer waits for its iteration");
        let l2 = l.clone();
        l.call_later(Duration::ZERO, move || l2.stop());
    });
    lp.run_forever().unwrap();
    assert!(ran.get());
    assert!(t0.elapsed() < LATE);
}

#[test]
fn cancelled_timer_handle_never_runs() {
    let lp = new_loop();
    let ran = Rc::new(Cell::new(0u32));
    let r = ran.clone();
    let early = lp.call_later(Duration::from_millis(5), move || r.set(r.get() + 1));
    let r = ran.clone();
    let doomed = lp.call_later(Duration::from_millis(20), move || r.set(r.get() + 100));
    assert!(!doomed.cancelled());
    doomed.cancel();
    assert!(doomed.cancelled());
    doomed.cancel(); // idempotent
    assert!(doomed.cancelled());
    assert!(!early.cancelled());

    // Cancel from inside the loop, before its deadline, too.
    let r = ran.clone();
    let doomed2 = Rc::new(lp.call_later(Duration::from_millis(30), move || r.set(r.get() + 1000)));
    let d2 = doomed2.clone();
    lp.call_later(Duration::from_millis(10), move || d2.cancel());

    let l = lp.clone();
    lp.call_later(Duration::from_millis(50), move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(ran.get(), 1, "only the uncancelled timer ran");
    assert!(doomed2.cancelled());
    // Cancelling a timer that already fired is harmless and does not mark it cancelled.
    early.cancel();
    assert!(!early.cancelled());
}

#[test]
fn cancelled_handle_never_runs() {
    let lp = new_loop();
    let ran = log();
    let r = ran.clone();
    let h1 = lp.call_soon(move || r.borrow_mut().push(1));
    let r = ran.clone();
    let h2 = lp.call_soon(move || r.borrow_mut().push(2));
    let r = ran.clone();
    let h3 = lp.call_soon(move || r.borrow_mut().push(3));
    assert!(!h2.cancelled());
    h2.cancel();
    assert!(h2.cancelled());
    h2.cancel(); // idempotent
    assert!(h2.cancelled());
    let l = lp.clone();
    lp.call_soon(move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(*ran.borrow(), [1, 3]);
    assert!(!h1.cancelled());
    // Cancelling after the callback ran is a no-op.
    h3.cancel();
    assert!(!h3.cancelled());
}

#[test]
fn cancelling_a_later_callback_from_an_earlier_one() {
    let lp = new_loop();
    let ran = log();
    let slot: Rc<RefCell<Option<kettle::Handle>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let r = ran.clone();
    lp.call_soon(move || {
        r.borrow_mut().push("canceller");
        s.borrow().as_ref().unwrap().cancel();
    });
    let r = ran.clone();
    *slot.borrow_mut() = Some(lp.call_soon(move || r.borrow_mut().push("victim")));
    let l = lp.clone();
    lp.call_soon(move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(*ran.borrow(), ["canceller"]);
    assert!(slot.borrow().as_ref().unwrap().cancelled());
}

#[test]
fn run_forever_stops_from_a_callback() {
    let lp = new_loop();
    assert!(!lp.is_running());
    let l = lp.clone();
    let seen_running = Rc::new(Cell::new(false));
    let s = seen_running.clone();
    lp.call_later(Duration::from_millis(10), move || {
        s.set(l.is_running());
        l.stop();
    });
    let t0 = Instant::now();
    lp.run_forever().unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(10));
    assert!(t0.elapsed() < LATE);
    assert!(seen_running.get());
    assert!(!lp.is_running());
    // The loop can run again after a stop.
    let l = lp.clone();
    lp.call_soon(move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(lp.run_until_complete(async { 5 }), 5);
}

#[test]
fn stop_before_run_forever_returns_after_one_iteration() {
    let lp = new_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    lp.call_soon(move || r.set(true));
    lp.stop();
    let t0 = Instant::now();
    lp.run_forever().unwrap();
    assert!(ran.get(), "the queued callback ran in that one iteration");
    assert!(t0.elapsed() < LATE);
}

#[test]
fn run_forever_stops_from_another_thread() {
    let lp = new_loop();
    let handle = lp.handle();
    let (running_tx, running_rx) = mpsc::channel::<()>();
    let stopper = thread::spawn(move || {
        running_rx.recv().unwrap();
        handle.stop().unwrap();
    });
    // Tell the thread once the loop really runs; then the loop has nothing to do but wait.
    lp.call_soon(move || running_tx.send(()).unwrap());
    let t0 = Instant::now();
    lp.run_forever().unwrap();
    assert!(t0.elapsed() < LATE);
    stopper.join().unwrap();
    assert!(!lp.is_running());
}

#[test]
fn call_soon_threadsafe_wakes_a_loop_blocked_in_epoll() {
    let lp = new_loop();
    let handle = lp.handle();
    let (running_tx, running_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let waker = thread::spawn(move || {
        running_rx.recv().unwrap();
        // Give the loop time to go to sleep in epoll_wait with no timeout: nothing is ready and
        // no timer is armed. (This sleep is not synchronisation: the loop must return whether
        // or not it had gone to sleep yet.)
        thread::sleep(Duration::from_millis(200));
        handle
            .call_soon_threadsafe(move || {
                r.store(true, Ordering::SeqCst);
                kettle::get_running_loop().stop();
            })
            .unwrap();
    });
    lp.call_soon(move || running_tx.send(()).unwrap());
    let t0 = Instant::now();
    let cpu0 = thread_cpu_time();
    lp.run_forever().unwrap();
    let cpu = thread_cpu_time() - cpu0;
    let wall = t0.elapsed();
    waker.join().unwrap();
    assert!(ran.load(Ordering::SeqCst));
    assert!(
        wall >= Duration::from_millis(200),
        "returned after {wall:?}"
    );
    assert!(wall < LATE, "the loop was not woken promptly: {wall:?}");
    assert!(
        cpu < Duration::from_millis(100),
        "the loop burnt {cpu:?} of CPU in {wall:?} with nothing to do: it polls instead of \
         blocking in epoll_wait"
    );
}

#[test]
fn call_soon_threadsafe_callbacks_run_on_the_loop_thread_in_order() {
    let lp = new_loop();
    let handle = lp.handle();
    let loop_thread = thread::current().id();
    let (tx, rx) = mpsc::channel();
    let sender = thread::spawn(move || {
        for i in 0..100 {
            let tx = tx.clone();
            handle
                .call_soon_threadsafe(move || {
                    tx.send((i, thread::current().id())).unwrap();
                })
                .unwrap();
        }
        handle.stop().unwrap();
    });
    lp.run_forever().unwrap();
    sender.join().unwrap();
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got.len(), 100);
    for (i, (n, tid)) in got.into_iter().enumerate() {
        assert_eq!(n, i);
        assert_eq!(tid, loop_thread);
    }
}

#[test]
fn call_soon_threadsafe_on_a_closed_loop_is_an_error() {
    let lp = new_loop();
    let handle = lp.handle();
    assert!(!handle.is_closed());
    lp.close().unwrap();
    assert!(handle.is_closed());
    let err = handle.call_soon_threadsafe(|| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LoopClosed);
    assert_eq!(handle.stop().unwrap_err().kind(), ErrorKind::LoopClosed);
    // Also after the loop is dropped altogether.
    let lp = new_loop();
    let handle = lp.handle();
    drop(lp);
    assert!(handle.is_closed());
    assert!(handle.call_soon_threadsafe(|| {}).is_err());
}

#[test]
fn run_until_complete_on_a_closed_loop_panics() {
    let lp = new_loop();
    lp.close().unwrap();
    assert!(lp.is_closed());
    lp.close().unwrap(); // idempotent
    let res = catch_unwind(AssertUnwindSafe(|| lp.run_until_complete(async { 1 })));
    assert!(
        res.is_err(),
        "run_until_complete on a closed loop must panic"
    );
    assert_eq!(lp.run_forever().unwrap_err().kind(), ErrorKind::LoopClosed);
}

#[test]
fn close_of_a_running_loop_is_invalid_state() {
    let lp = new_loop();
    let err = lp.run_until_complete(async {
        let me = kettle::get_running_loop();
        assert!(me.is_running());
        me.close().unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(!lp.is_closed());

    // The same from a callback under run_forever.
    let l = lp.clone();
    let kind = Rc::new(Cell::new(None));
    let k = kind.clone();
    lp.call_soon(move || {
        k.set(l.close().err().map(|e| e.kind()));
        l.stop();
    });
    lp.run_forever().unwrap();
    assert_eq!(kind.get(), Some(ErrorKind::InvalidState));
    assert!(!lp.is_closed());
    lp.close().unwrap();
    assert!(lp.is_closed());
}

#[test]
fn running_a_running_loop_again_fails() {
    let lp = new_loop();
    let l = lp.clone();
    let (nested_panicked, forever_kind) = lp.run_until_complete(async move {
        let nested = catch_unwind(AssertUnwindSafe(|| l.run_until_complete(async {})));
        let forever = l.run_forever().map_err(|e| e.kind());
        (nested.is_err(), forever.err())
    });
    assert!(nested_panicked, "nested run_until_complete must panic");
    assert_eq!(forever_kind, Some(ErrorKind::InvalidState));
    // And the loop is still usable.
    assert_eq!(lp.run_until_complete(async { 3 }), 3);
}

#[test]
fn time_is_monotonic_and_tracks_real_time() {
    let lp = new_loop();
    let mut prev = lp.time();
    for _ in 0..10_000 {
        let now = lp.time();
        assert!(now >= prev, "time() went backwards: {prev} -> {now}");
        prev = now;
    }
    let a = lp.time();
    thread::sleep(Duration::from_millis(20));
    let b = lp.time();
    assert!(
        b - a >= 0.020 - 1e-9,
        "time() advanced {} s in 20 ms",
        b - a
    );
    assert!(b - a < LATE.as_secs_f64());
    // All loops share one clock.
    let other = new_loop();
    let c = other.time();
    assert!(c >= b);
}

#[test]
fn a_panicking_callback_does_not_kill_the_loop() {
    let lp = new_loop();
    let order = log();
    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("before"));
    lp.call_soon(|| panic!("callback boom"));
    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("after"));
    let o = order.clone();
    lp.call_later(Duration::from_millis(5), move || {
        panic!("timer boom {}", o.borrow().len())
    });
    let (o, l) = (order.clone(), lp.clone());
    lp.call_later(Duration::from_millis(10), move || {
        o.borrow_mut().push("timer after");
        l.stop();
    });
    lp.run_forever().unwrap();
    assert_eq!(*order.borrow(), ["before", "after", "timer after"]);
    assert!(!lp.is_running());
    // Still fully usable.
    let t = lp.create_task(async { 7 });
    assert_eq!(lp.run_until_complete(t).unwrap(), 7);
}

#[test]
fn a_panicking_run_until_complete_future_leaves_the_loop_usable() {
    let lp = new_loop();
    let bystander = lp.create_task(async {
        kettle::sleep(Duration::from_millis(5)).await;
        "bystander"
    });
    let res = catch_unwind(AssertUnwindSafe(|| {
        lp.run_until_complete(async {
            kettle::yield_now().await;
            panic!("main future boom");
        })
    }));
    assert!(
        res.is_err(),
        "the main future's panic propagates to the caller"
    );
    assert!(!lp.is_running());
    assert!(!lp.is_closed());
    assert_eq!(lp.run_until_complete(bystander).unwrap(), "bystander");
    assert_eq!(lp.run_until_complete(async { 9 }), 9);
}

#[test]
fn stop_inside_run_until_complete_panics_and_the_loop_stays_usable() {
    let lp = new_loop();
    let res = catch_unwind(AssertUnwindSafe(|| {
        lp.run_until_complete(async {
            kettle::get_running_loop().stop();
            kettle::sleep(Duration::from_secs(3600)).await;
        })
    }));
    assert!(
        res.is_err(),
        "asyncio: 'Event loop stopped before Future completed'"
    );
    assert!(!lp.is_running());
    assert_eq!(lp.run_until_complete(async { 1 }), 1);
}

#[test]
fn many_cancelled_timers_leave_the_rest_firing_in_order() {
    let lp = new_loop();
    let fired = log();
    let t0 = Instant::now();
    let mut keep = Vec::new();
    let mut handles = Vec::new();
    // Absolute deadlines, so the time spent arming 10,000 timers does not reorder them.
    let base = lp.time() + 0.005;
    for i in 0..10_000u64 {
        // Deadlines spread over 0..30 ms in a scrambled order (all distinct).
        let delay = Duration::from_micros((i * 7919) % 30_000);
        let f = fired.clone();
        let h = lp.call_at(base + delay.as_secs_f64(), move || {
            f.borrow_mut().push((delay, i))
        });
        if i % 100 == 0 {
            keep.push((delay, i));
        } else {
            handles.push(h);
        }
    }
    for h in &handles {
        h.cancel();
    }
    let l = lp.clone();
    lp.call_at(base + 0.040, move || l.stop());
    lp.run_forever().unwrap();
    keep.sort();
    assert_eq!(*fired.borrow(), keep);
    assert!(t0.elapsed() < LATE * 2);
    assert!(handles.iter().all(|h| h.cancelled()));
}

#[test]
fn a_timer_cancelled_by_an_earlier_timer_of_the_same_batch_does_not_run() {
    let lp = new_loop();
    let ran = log();
    let when = lp.time() + 0.010;
    let victim: Rc<RefCell<Option<kettle::TimerHandle>>> = Rc::new(RefCell::new(None));
    let (v, r) = (victim.clone(), ran.clone());
    lp.call_at(when, move || {
        r.borrow_mut().push("killer");
        v.borrow().as_ref().unwrap().cancel();
    });
    let r = ran.clone();
    *victim.borrow_mut() = Some(lp.call_at(when, move || r.borrow_mut().push("victim")));
    let l = lp.clone();
    lp.call_at(when + 0.010, move || l.stop());
    lp.run_forever().unwrap();
    assert_eq!(*ran.borrow(), ["killer"]);
    assert!(victim.borrow().as_ref().unwrap().cancelled());
}

#[test]
fn timer_handle_when_matches_the_loop_clock() {
    let lp = new_loop();
    let before = lp.time();
    let h = lp.call_later(Duration::from_millis(250), || {});
    let after = lp.time();
    assert!(h.when() >= before + 0.25 - 1e-6 && h.when() <= after + 0.25 + 1e-6);
    h.cancel();
}

#[test]
fn huge_delays_do_not_overflow() {
    let lp = new_loop();
    let never = lp.call_later(Duration::MAX, || panic!("fired"));
    let never_at = lp.call_at(f64::INFINITY, || panic!("fired"));
    assert!(never.when() > lp.time() + 1e9);
    assert!(never_at.when() > lp.time() + 1e9);
    let ran_nan = Rc::new(Cell::new(false));
    let r = ran_nan.clone();
    lp.call_at(f64::NAN, move || r.set(true));
    let l = lp.clone();
    lp.call_later(Duration::from_millis(10), move || l.stop());
    let t0 = Instant::now();
    lp.run_forever().unwrap();
    assert!(t0.elapsed() < LATE);
    assert!(ran_nan.get(), "a NaN deadline means 'now'");
    let err = lp
        .run_until_complete(kettle::wait_for(
            kettle::sleep(Duration::MAX),
            Duration::from_millis(5),
        ))
        .unwrap_err();
    assert!(err.is_timeout());
    never.cancel();
    never_at.cancel();
}

#[test]
fn call_soon_threadsafe_from_many_threads_all_run() {
    const THREADS: usize = 4;
    const EACH: usize = 2_000;
    let lp = new_loop();
    let handle = lp.handle();
    let count = Rc::new(Cell::new(0usize));
    let (tx, rx) = mpsc::channel::<usize>();
    let senders: Vec<_> = (0..THREADS)
        .map(|_| {
            let handle = handle.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    let tx = tx.clone();
                    handle
                        .call_soon_threadsafe(move || tx.send(i).unwrap())
                        .unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let c = count.clone();
    lp.run_until_complete(async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.get() < THREADS * EACH && Instant::now() < deadline {
            c.set(c.get() + rx.try_iter().count());
            kettle::sleep(Duration::from_millis(1)).await;
        }
    });
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(count.get(), THREADS * EACH);
}

#[test]
fn call_soon_threadsafe_is_not_starved_by_busy_tasks() {
    let lp = new_loop();
    let handle = lp.handle();
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        handle
            .call_soon_threadsafe(move || f.store(true, Ordering::SeqCst))
            .unwrap();
    });
    let fl = flag.clone();
    let seen = lp.run_until_complete(async move {
        // Two tasks that never let the ready queue run dry.
        let spin = |fl: Arc<AtomicBool>| {
            kettle::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(3);
                while !fl.load(Ordering::SeqCst) && Instant::now() < deadline {
                    kettle::yield_now().await;
                }
                fl.load(Ordering::SeqCst)
            })
        };
        let a = spin(fl.clone());
        let b = spin(fl);
        a.await.unwrap() && b.await.unwrap()
    });
    t.join().unwrap();
    assert!(
        seen,
        "the cross-thread callback never ran while tasks were busy"
    );
}

#[test]
fn timers_are_not_starved_by_busy_tasks() {
    let lp = new_loop();
    let fired = Rc::new(Cell::new(None));
    let f = fired.clone();
    let t0 = Instant::now();
    lp.call_later(Duration::from_millis(10), move || f.set(Some(t0.elapsed())));
    let f = fired.clone();
    lp.run_until_complete(async move {
        let deadline = Instant::now() + Duration::from_secs(3);
        while f.get().is_none() && Instant::now() < deadline {
            kettle::yield_now().await;
        }
    });
    let at = fired
        .get()
        .expect("the timer never fired while a task kept the loop busy");
    assert!(at >= Duration::from_millis(10));
    assert!(at < LATE);
}

/// asyncio stops `run_until_complete` through a done-callback queued behind the work that is
/// already ready, so a `call_soon` made by the main future just before it returns still runs.
#[test]
fn call_soon_made_by_the_main_future_runs_before_run_until_complete_returns() {
    use std::cell::Cell;
    use std::rc::Rc;
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let lp = kettle::EventLoop::new().unwrap();
    lp.run_until_complete(async move {
        kettle::get_running_loop().call_soon(move || r.set(true));
    });
    assert!(ran.get());
    lp.close().unwrap();
}

/// A loop kept in a thread-local is dropped during thread teardown, after other thread-locals
/// (the current-loop pointer, the per-thread loop list) may already be gone: closing it then
/// must not panic.
#[test]
fn a_loop_in_a_thread_local_closes_cleanly_at_thread_exit() {
    thread_local! {
        static LOOP: RefCell<Option<kettle::EventLoop>> = const { RefCell::new(None) };
    }
    let t = std::thread::spawn(|| {
        let lp = new_loop();
        let task = lp.create_task(kettle::sleep(Duration::from_secs(3600)));
        drop(task);
        LOOP.with(|l| *l.borrow_mut() = Some(lp));
    });
    t.join()
        .expect("thread teardown with a live loop must not panic");
}
