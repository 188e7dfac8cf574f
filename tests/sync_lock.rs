//! Lock, Event and Condition on the real loop: mutual exclusion across awaits, FIFO fairness,
//! wait/notify, and cancellation of waiting tasks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use kettle::sync::{Condition, Event, Lock};

mod common;
use common::{log, settle};

#[kettle::test]
async fn lock_excludes_across_awaits() {
    let lock = Lock::new();
    let inside = Rc::new(Cell::new(0));
    let max_inside = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (lock, inside, max_inside) = (lock.clone(), inside.clone(), max_inside.clone());
            kettle::spawn(async move {
                let _guard = lock.acquire().await;
                inside.set(inside.get() + 1);
                max_inside.set(max_inside.get().max(inside.get()));
                kettle::sleep(Duration::from_millis(i % 2)).await;
                kettle::yield_now().await;
                inside.set(inside.get() - 1);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(max_inside.get(), 1);
    assert!(!lock.locked());
}

#[kettle::test]
async fn lock_is_fifo_fair() {
    let lock = Lock::new();
    let order = log();
    let guard = lock.acquire().await;
    let mut tasks = Vec::new();
    for id in 0..5 {
        let (lock, order) = (lock.clone(), order.clone());
        tasks.push(kettle::spawn(async move {
            let _g = lock.acquire().await;
            order.borrow_mut().push(id);
            kettle::yield_now().await;
        }));
        settle().await;
    }
    drop(guard);
    // A newcomer that tries right after the release finds the lock handed over already.
    assert!(lock.locked());
    assert!(lock.try_acquire().is_none());
    let late = lock.acquire().await;
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4]);
    drop(late);
    for t in tasks {
        t.await.unwrap();
    }
}

#[kettle::test]
async fn cancelled_lock_waiter_passes_the_lock_on() {
    let lock = Lock::new();
    let order = log();
    let spawn_waiter = |id: &'static str| {
        let (lock, order) = (lock.clone(), order.clone());
        kettle::spawn(async move {
            let _g = lock.acquire().await;
            order.borrow_mut().push(id);
        })
    };

    let guard = lock.acquire().await;
    let a = spawn_waiter("a");
    settle().await;
    let b = spawn_waiter("b");
    settle().await;
    a.cancel(); // cancelled while parked
    settle().await;
    drop(guard);
    b.await.unwrap();
    assert!(a.await.unwrap_err().is_cancelled());

    let guard = lock.acquire().await;
    let c = spawn_waiter("c");
    settle().await;
    let d = spawn_waiter("d");
    settle().await;
    drop(guard); // handed to c ...
    c.cancel(); // ... which is dropped before it runs
    d.await.unwrap();
    assert!(c.await.unwrap_err().is_cancelled());

    assert_eq!(*order.borrow(), ["b", "d"]);
    assert!(!lock.locked());
}

#[kettle::test]
async fn event_wakes_every_waiter() {
    let ev = Event::new();
    let woken = Rc::new(Cell::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (ev, woken) = (ev.clone(), woken.clone());
            kettle::spawn(async move {
                ev.wait().await;
                woken.set(woken.get() + 1);
            })
        })
        .collect();
    settle().await;
    assert_eq!(woken.get(), 0);
    ev.set();
    ev.clear(); // too late to hold back the tasks already released
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(woken.get(), 5);
    assert!(!ev.is_set());
    let r = kettle::wait_for(ev.wait(), Duration::from_millis(5)).await;
    assert!(r.unwrap_err().is_timeout(), "cleared: waits again");
    ev.set();
    ev.wait().await;
}

#[kettle::test]
async fn cancelled_event_waiter_leaves_no_trace() {
    let ev = Event::new();
    let cancelled = {
        let ev = ev.clone();
        kettle::spawn(async move { ev.wait().await })
    };
    let kept = {
        let ev = ev.clone();
        kettle::spawn(async move { ev.wait().await })
    };
    settle().await;
    cancelled.cancel();
    settle().await;
    ev.set();
    kept.await.unwrap();
    assert!(cancelled.await.unwrap_err().is_cancelled());
}

#[kettle::test]
async fn condition_producer_consumer() {
    let cond = Condition::new();
    let items = log();
    let consumed = log();
    let consumers: Vec<_> = (0..3)
        .map(|id| {
            let (cond, items, consumed) = (cond.clone(), items.clone(), consumed.clone());
            kettle::spawn(async move {
                let guard = cond.acquire().await;
                let _guard = cond.wait_for(guard, || !items.borrow().is_empty()).await;
                let item = items.borrow_mut().remove(0);
                consumed.borrow_mut().push((id, item));
            })
        })
        .collect();
    settle().await;
    assert!(!cond.locked(), "waiters released the lock");

    for item in ["x", "y", "z"] {
        let _guard = cond.acquire().await;
        items.borrow_mut().push(item);
        cond.notify(1);
    }
    for c in consumers {
        c.await.unwrap();
    }
    // Notified in the order they started waiting.
    assert_eq!(*consumed.borrow(), [(0, "x"), (1, "y"), (2, "z")]);
}

#[kettle::test]
async fn notify_wakes_n_and_notify_all_wakes_the_rest() {
    let cond = Condition::new();
    let woken = Rc::new(Cell::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (cond, woken) = (cond.clone(), woken.clone());
            kettle::spawn(async move {
                let guard = cond.acquire().await;
                let _guard = cond.wait(guard).await;
                woken.set(woken.get() + 1);
            })
        })
        .collect();
    settle().await;
    cond.notify(2);
    settle().await;
    assert_eq!(woken.get(), 2);
    cond.notify_all();
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(woken.get(), 5);
    assert!(!cond.locked());
}

#[kettle::test]
async fn cancelled_notified_waiter_hands_the_notification_on() {
    let cond = Condition::new();
    let woken = log();
    let spawn_waiter = |id: &'static str| {
        let (cond, woken) = (cond.clone(), woken.clone());
        kettle::spawn(async move {
            let guard = cond.acquire().await;
            let _guard = cond.wait(guard).await;
            woken.borrow_mut().push(id);
        })
    };
    let a = spawn_waiter("a");
    let b = spawn_waiter("b");
    settle().await;
    cond.notify(1); // chooses a ...
    a.cancel(); // ... which is dropped before it runs
    b.await.unwrap();
    assert!(a.await.unwrap_err().is_cancelled());
    assert_eq!(*woken.borrow(), ["b"]);
    assert!(!cond.locked());
}

#[kettle::test]
async fn conditions_sharing_a_lock() {
    let lock = Lock::new();
    let not_empty = Condition::with_lock(lock.clone());
    let not_full = Condition::with_lock(lock.clone());
    let buf = Rc::new(RefCell::new(Vec::new()));
    const CAP: usize = 2;

    let producer = {
        let (lock, not_empty, not_full, buf) = (
            lock.clone(),
            not_empty.clone(),
            not_full.clone(),
            buf.clone(),
        );
        kettle::spawn(async move {
            for n in 0..10 {
                let guard = lock.acquire().await;
                let _guard = not_full.wait_for(guard, || buf.borrow().len() < CAP).await;
                buf.borrow_mut().push(n);
                not_empty.notify(1);
            }
        })
    };
    let mut got = Vec::new();
    while got.len() < 10 {
        let guard = lock.acquire().await;
        let _guard = not_empty.wait_for(guard, || !buf.borrow().is_empty()).await;
        assert!(buf.borrow().len() <= CAP);
        got.push(buf.borrow_mut().remove(0));
        not_full.notify(1);
    }
    producer.await.unwrap();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}
