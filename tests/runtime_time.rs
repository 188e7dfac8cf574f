//! Time: `sleep` / `sleep_until`, `wait_for`, and `timeout` scopes.
//!
//! Lower bounds are exact (a timer never fires early); upper bounds are generous.

use std::cell::{Cell, RefCell};
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kettle::ErrorKind;

mod common;
use common::LATE;

const HOUR: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sets its flag when dropped: proves a future was destroyed.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn sleeps_finish_in_duration_order() {
    let done = Rc::new(RefCell::new(Vec::new()));
    let d = done.clone();
    kettle::run(async move {
        let handles: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|n| {
                let d = d.clone();
                kettle::spawn(async move {
                    kettle::sleep(ms(n)).await;
                    d.borrow_mut().push(n);
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(*done.borrow(), [10, 20, 30]);
}

#[test]
fn many_sleepers_wake_in_deadline_order_ties_fifo() {
    let woke = Rc::new(RefCell::new(Vec::new()));
    let w = woke.clone();
    kettle::run(async move {
        let t0 = Instant::now() + ms(5);
        let handles: Vec<_> = (0..200u64)
            .map(|i| {
                let w = w.clone();
                let d = (i * 37) % 25;
                kettle::spawn(async move {
                    kettle::sleep_until(t0 + ms(d)).await;
                    assert!(Instant::now() >= t0 + ms(d), "woke early");
                    w.borrow_mut().push((d, i));
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    let woke = woke.borrow();
    let mut expected = woke.clone();
    expected.sort();
    assert_eq!(*woke, expected);
}

#[test]
fn sleep_is_never_early() {
    kettle::run(async {
        for d in [
            Duration::ZERO,
            Duration::from_micros(1),
            Duration::from_micros(500),
            Duration::from_micros(1500),
            ms(1),
            ms(2),
            ms(7),
            ms(25),
        ] {
            let t0 = Instant::now();
            kettle::sleep(d).await;
            let took = t0.elapsed();
            assert!(took >= d, "sleep({d:?}) returned after {took:?}");
            assert!(took < LATE, "sleep({d:?}) took {took:?}");
        }
        let deadline = Instant::now() + ms(15);
        kettle::sleep_until(deadline).await;
        assert!(Instant::now() >= deadline);
        // A deadline in the past completes (after one turn).
        kettle::sleep_until(Instant::now() - ms(100)).await;
    });
}

#[test]
fn concurrent_sleeps_are_never_early() {
    kettle::run(async {
        let handles: Vec<_> = (1..=20u64)
            .map(|n| {
                kettle::spawn(async move {
                    let t0 = Instant::now();
                    kettle::sleep(ms(n)).await;
                    t0.elapsed()
                })
            })
            .collect();
        for (n, h) in (1..=20u64).zip(handles) {
            let took = h.await.unwrap();
            assert!(took >= ms(n), "sleep({n} ms) took {took:?}");
        }
    });
}

#[test]
fn sleeps_run_concurrently_not_one_after_another() {
    let t0 = Instant::now();
    kettle::run(async {
        let handles: Vec<_> = (0..50)
            .map(|_| kettle::spawn(kettle::sleep(ms(50))))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    let took = t0.elapsed();
    assert!(took >= ms(50));
    assert!(took < ms(50 * 10), "50 sleeps of 50 ms took {took:?}");
}

#[test]
fn sleep_zero_yields_to_other_tasks() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    kettle::run(async move {
        let o2 = o.clone();
        let t = kettle::spawn(async move { o2.borrow_mut().push("task") });
        o.borrow_mut().push("before");
        kettle::sleep(Duration::ZERO).await;
        o.borrow_mut().push("after");
        t.await.unwrap();
    });
    assert_eq!(*order.borrow(), ["before", "task", "after"]);
}

#[test]
fn sleep_zero_alternates_two_tasks() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    kettle::run(async move {
        let spawn_one = |name: &'static str| {
            let o = o.clone();
            kettle::spawn(async move {
                for i in 0..3 {
                    o.borrow_mut().push(format!("{name}{i}"));
                    kettle::sleep(Duration::ZERO).await;
                }
            })
        };
        let a = spawn_one("a");
        let b = spawn_one("b");
        a.await.unwrap();
        b.await.unwrap();
    });
    assert_eq!(*order.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn sleep_reset_rearms_the_timer() {
    kettle::run(async {
        let mut s = pin!(kettle::sleep(HOUR));
        assert!(!s.is_elapsed());
        // Arm it (poll once) by trying it under a short deadline.
        let err = kettle::wait_for(s.as_mut(), ms(5)).await.unwrap_err();
        assert!(err.is_timeout());
        let t0 = Instant::now();
        let deadline = t0 + ms(20);
        s.as_mut().reset(deadline);
        assert_eq!(s.deadline(), deadline);
        s.as_mut().await;
        assert!(Instant::now() >= deadline);
        assert!(
            t0.elapsed() < LATE,
            "the old one-hour timer is still in charge"
        );
        assert!(s.is_elapsed());
    });
}

#[test]
fn wait_for_timeout_is_a_timeout_error_and_drops_the_inner_future() {
    kettle::run(async {
        let dropped = Rc::new(Cell::new(false));
        let guard = DropFlag(dropped.clone());
        let reached_end = Rc::new(Cell::new(false));
        let e = reached_end.clone();
        let inner = async move {
            let _guard = guard;
            kettle::sleep(HOUR).await;
            e.set(true);
            1
        };
        let t0 = Instant::now();
        let err = kettle::wait_for(inner, ms(20)).await.unwrap_err();
        let took = t0.elapsed();
        assert!(err.is_timeout());
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(took >= ms(20), "timed out early, after {took:?}");
        assert!(took < LATE);
        assert!(dropped.get(), "the inner future is dropped on timeout");
        assert!(!reached_end.get());
    });
}

#[test]
fn wait_for_success_returns_the_value() {
    kettle::run(async {
        let dropped = Rc::new(Cell::new(false));
        let guard = DropFlag(dropped.clone());
        let t0 = Instant::now();
        let v = kettle::wait_for(
            async move {
                let _guard = guard;
                kettle::sleep(ms(10)).await;
                "in time"
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(v, "in time");
        assert!(dropped.get());
        assert!(t0.elapsed() >= ms(10));
        assert!(
            t0.elapsed() < LATE,
            "wait_for waited for its deadline instead of the future"
        );
        // A future that is ready at once wins even with a zero timeout.
        assert_eq!(
            kettle::wait_for(async { 5 }, Duration::ZERO).await.unwrap(),
            5
        );
        // ... and a pending one with a zero timeout times out.
        let err = kettle::wait_for(kettle::sleep(HOUR), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(err.is_timeout());
    });
}

#[test]
fn wait_for_a_task_result() {
    kettle::run(async {
        let t = kettle::spawn(async {
            kettle::sleep(ms(5)).await;
            9
        });
        let got = kettle::wait_for(t, Duration::from_secs(5)).await;
        assert_eq!(got.unwrap().unwrap(), 9);
    });
}

#[test]
fn timeout_scope_expires() {
    kettle::run(async {
        let scope = kettle::timeout(Some(ms(20)));
        assert!(!scope.expired());
        let t0 = Instant::now();
        let err = scope.run(kettle::sleep(HOUR)).await.unwrap_err();
        assert!(err.is_timeout());
        assert!(t0.elapsed() >= ms(20));
        assert!(t0.elapsed() < LATE);
        assert!(scope.expired());
    });
}

#[test]
fn timeout_scope_success_is_not_expired() {
    kettle::run(async {
        let scope = kettle::timeout(Some(Duration::from_secs(5)));
        let out = scope
            .run(async {
                kettle::sleep(ms(5)).await;
                "ok"
            })
            .await;
        assert_eq!(out.unwrap(), "ok");
        assert!(!scope.expired());
        let none = kettle::timeout(None);
        assert_eq!(none.when(), None);
        assert_eq!(none.run(kettle::sleep(ms(5))).await.unwrap(), ());
        assert!(!none.expired());
    });
}

#[test]
fn timeout_when_is_on_the_loop_clock() {
    kettle::run(async {
        let lp = kettle::get_running_loop();
        let before = lp.time();
        let scope = kettle::timeout(Some(ms(100)));
        let after = lp.time();
        let when = scope.when().expect("a deadline");
        assert!(when >= before + 0.1 - 1e-6 && when <= after + 0.1 + 1e-6);

        let before = lp.time();
        let at = Instant::now() + ms(50);
        let after = lp.time();
        let when = kettle::timeout_at(Some(at)).when().expect("a deadline");
        assert!(when >= before + 0.05 - 1e-6 && when <= after + 0.05 + 1e-6);
        assert_eq!(kettle::timeout_at(None).when(), None);

        let target = lp.time() + 3.0;
        scope.reschedule(Some(target));
        assert!((scope.when().unwrap() - target).abs() < 1e-6);
        scope.reschedule(None);
        assert_eq!(scope.when(), None);
    });
}

#[test]
fn timeout_reschedule_extends_a_running_scope() {
    kettle::run(async {
        let scope = kettle::timeout(Some(ms(10)));
        let inner = scope.clone();
        let t0 = Instant::now();
        let out = scope
            .run(async move {
                inner.reschedule(Some(kettle::get_running_loop().time() + 5.0));
                kettle::sleep(ms(40)).await;
                "finished"
            })
            .await;
        assert_eq!(out.unwrap(), "finished");
        assert!(t0.elapsed() >= ms(40));
        assert!(!scope.expired());
    });
}

#[test]
fn timeout_reschedule_shortens_a_running_scope() {
    kettle::run(async {
        let scope = kettle::timeout(None);
        let inner = scope.clone();
        let t0 = Instant::now();
        let err = scope
            .run(async move {
                kettle::yield_now().await;
                inner.reschedule(Some(kettle::get_running_loop().time() + 0.020));
                kettle::sleep(HOUR).await;
            })
            .await
            .unwrap_err();
        assert!(err.is_timeout());
        assert!(t0.elapsed() >= ms(20));
        assert!(t0.elapsed() < LATE);
        assert!(scope.expired());
    });
}

#[test]
fn timeout_reschedule_from_outside_the_scope() {
    kettle::run(async {
        let scope = kettle::timeout(Some(HOUR));
        let s = scope.clone();
        let t0 = Instant::now();
        let work = kettle::spawn(async move { s.run(kettle::sleep(HOUR)).await });
        kettle::sleep(ms(5)).await;
        scope.reschedule(Some(kettle::get_running_loop().time() + 0.010));
        let err = work.await.unwrap().unwrap_err();
        assert!(err.is_timeout());
        assert!(t0.elapsed() >= ms(15));
        assert!(t0.elapsed() < LATE);
        assert!(scope.expired());
    });
}

#[test]
fn timeout_reschedule_to_none_removes_the_deadline() {
    kettle::run(async {
        let scope = kettle::timeout(Some(ms(10)));
        let inner = scope.clone();
        let out = scope
            .run(async move {
                inner.reschedule(None);
                kettle::sleep(ms(30)).await;
                1
            })
            .await;
        assert_eq!(out.unwrap(), 1);
        assert!(!scope.expired());
    });
}

#[test]
fn timeout_in_the_past() {
    kettle::run(async {
        let past = Instant::now() - ms(100);
        // Work that needs no suspension finishes: the deadline is checked at suspension.
        assert_eq!(
            kettle::timeout_at(Some(past))
                .run(async { 1 })
                .await
                .unwrap(),
            1
        );
        // Work that suspends times out at once.
        let t0 = Instant::now();
        let scope = kettle::timeout_at(Some(past));
        let err = scope.run(kettle::sleep(HOUR)).await.unwrap_err();
        assert!(err.is_timeout());
        assert!(scope.expired());
        assert!(t0.elapsed() < LATE);
        // Rescheduling into the past while running expires it too.
        let scope = kettle::timeout(Some(HOUR));
        let inner = scope.clone();
        let err = scope
            .run(async move {
                kettle::yield_now().await;
                inner.reschedule(Some(0.0));
                kettle::sleep(HOUR).await;
            })
            .await
            .unwrap_err();
        assert!(err.is_timeout());
        assert!(scope.expired());
    });
}

#[test]
fn nested_timeouts_the_inner_one_fires_first() {
    kettle::run(async {
        let outer = kettle::timeout(Some(Duration::from_secs(5)));
        let inner = kettle::timeout(Some(ms(10)));
        let i = inner.clone();
        let out = outer
            .run(async move { i.run(kettle::sleep(HOUR)).await })
            .await;
        let inner_result = out.expect("the outer scope did not expire");
        assert!(inner_result.unwrap_err().is_timeout());
        assert!(inner.expired());
        assert!(!outer.expired());
    });
}
