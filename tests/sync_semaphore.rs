//! Semaphore and BoundedSemaphore on the real loop: concurrency limits, counts, FIFO order,
//! over-release errors, `forget`, and cancellation of waiting acquirers.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use kettle::sync::{BoundedSemaphore, Semaphore};
use kettle::ErrorKind;

/// Lets every ready task run until all of them are parked again.
async fn settle() {
    for _ in 0..10 {
        kettle::yield_now().await;
    }
}

#[kettle::test]
async fn at_most_value_holders_at_once() {
    let sem = Semaphore::new(3);
    let inside = Rc::new(Cell::new(0));
    let max_inside = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (sem, inside, max_inside) = (sem.clone(), inside.clone(), max_inside.clone());
            kettle::spawn(async move {
                let _permit = sem.acquire().await;
                inside.set(inside.get() + 1);
                max_inside.set(max_inside.get().max(inside.get()));
                kettle::sleep(Duration::from_millis(i % 3)).await;
                inside.set(inside.get() - 1);
            })
        })
        .collect();
    settle().await;
    assert_eq!(sem.value(), 0);
    assert!(sem.locked());
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(max_inside.get(), 3);
    assert_eq!(sem.value(), 3);
    assert!(!sem.locked());
}

#[kettle::test]
async fn waiters_are_served_in_order_and_release_adds_permits() {
    let sem = Semaphore::new(0);
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut tasks = Vec::new();
    for id in 0..4 {
        let (sem, order) = (sem.clone(), order.clone());
        tasks.push(kettle::spawn(async move {
            sem.acquire().await.forget();
            order.borrow_mut().push(id);
        }));
        settle().await;
    }
    sem.release();
    settle().await;
    assert_eq!(*order.borrow(), [0]);
    sem.release();
    sem.release();
    sem.release();
    sem.release(); // one more than anyone waits for: it stays in the pool
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.borrow(), [0, 1, 2, 3]);
    assert_eq!(sem.value(), 1);
}

#[kettle::test]
async fn bounded_semaphore_over_release_is_an_error() {
    let sem = BoundedSemaphore::new(2);
    let p = sem.acquire().await;
    assert_eq!(sem.value(), 1);
    let err = {
        drop(p);
        sem.release().unwrap_err()
    };
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(sem.value(), 2, "the failed release changed nothing");

    sem.acquire().await.forget();
    sem.acquire().await.forget();
    assert!(sem.locked());
    sem.release().unwrap();
    sem.release().unwrap();
    assert!(sem.release().is_err());
}

#[kettle::test]
async fn cancelled_waiting_acquire_loses_no_permit() {
    let sem = Semaphore::new(1);
    let got = Rc::new(RefCell::new(Vec::new()));
    let spawn_waiter = |id: &'static str| {
        let (sem, got) = (sem.clone(), got.clone());
        kettle::spawn(async move {
            let _p = sem.acquire().await;
            got.borrow_mut().push(id);
        })
    };

    let held = sem.acquire().await;
    let a = spawn_waiter("a");
    settle().await;
    let b = spawn_waiter("b");
    settle().await;
    a.cancel(); // while parked
    settle().await;
    drop(held);
    b.await.unwrap();
    assert!(a.await.unwrap_err().is_cancelled());
    assert_eq!(sem.value(), 1);

    let held = sem.acquire().await;
    let c = spawn_waiter("c");
    settle().await;
    drop(held); // handed to c ...
    c.cancel(); // ... which is dropped before it runs: the permit returns to the pool
    assert!(c.await.unwrap_err().is_cancelled());
    assert_eq!(sem.value(), 1);
    assert_eq!(*got.borrow(), ["b"]);
}

#[kettle::test]
async fn acquire_under_wait_for_times_out_cleanly() {
    let sem = Semaphore::new(0);
    let r = kettle::wait_for(sem.acquire(), Duration::from_millis(5)).await;
    assert!(r.unwrap_err().is_timeout());
    sem.release();
    assert_eq!(sem.value(), 1);
    let p = sem.try_acquire().unwrap();
    assert!(sem.try_acquire().is_none());
    drop(p);
    assert_eq!(sem.value(), 1);
}
