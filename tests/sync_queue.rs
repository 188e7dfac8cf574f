//! Queues on the real loop: FIFO service of waiting getters and putters, backpressure,
//! `join`/`task_done`, the three orders, and cancellation of waiting `get`/`put`.

use std::time::Duration;

use kettle::sync::{LifoQueue, PriorityQueue, Queue, QueueEmpty};
use kettle::ErrorKind;

mod common;
use common::{log, settle};

#[kettle::test]
async fn waiting_getters_are_served_in_arrival_order() {
    let q = Queue::new(0);
    let got = log();
    let mut tasks = Vec::new();
    for id in 0..5 {
        let (q, got) = (q.clone(), got.clone());
        tasks.push(kettle::spawn(async move {
            let item = q.get().await;
            got.borrow_mut().push((id, item));
        }));
        // Park each getter before the next one arrives.
        settle().await;
    }
    for item in ["a", "b", "c", "d", "e"] {
        q.put(item).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        *got.borrow(),
        [(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e")]
    );
}

#[kettle::test]
async fn late_getter_does_not_overtake_a_woken_one() {
    let q = Queue::new(0);
    let first = {
        let q = q.clone();
        kettle::spawn(async move { q.get().await })
    };
    settle().await;
    // Wakes `first` and reserves the item for it; `first` has not run yet.
    q.put_nowait(1).unwrap();
    // This get is polled right now, before `first` runs: it must queue up behind it.
    let late = kettle::wait_for(q.get(), Duration::from_millis(20)).await;
    assert!(late.unwrap_err().is_timeout());
    assert_eq!(first.await.unwrap(), 1);
    assert!(q.empty());
}

#[kettle::test]
async fn put_waits_at_maxsize_and_resumes_after_a_get() {
    let q = Queue::new(2);
    let progress = log();
    let producer = {
        let (q, progress) = (q.clone(), progress.clone());
        kettle::spawn(async move {
            for n in 0..5 {
                q.put(n).await;
                progress.borrow_mut().push(n);
            }
        })
    };
    settle().await;
    assert_eq!(*progress.borrow(), [0, 1], "stuck on the third put");
    assert!(q.full());
    assert_eq!(q.qsize(), 2);

    assert_eq!(q.get().await, 0);
    settle().await;
    assert_eq!(*progress.borrow(), [0, 1, 2], "one get, one more put");
    assert!(q.full());

    let mut rest = Vec::new();
    while rest.len() < 4 {
        rest.push(q.get().await);
    }
    producer.await.unwrap();
    assert_eq!(rest, [1, 2, 3, 4]);
    assert!(q.empty());
}

#[kettle::test]
async fn waiting_putters_are_served_in_arrival_order() {
    let q = Queue::new(1);
    q.put_nowait(0).unwrap();
    let mut tasks = Vec::new();
    for id in 1..=4 {
        let q = q.clone();
        tasks.push(kettle::spawn(async move { q.put(id).await }));
        settle().await;
    }
    let mut out = Vec::new();
    for _ in 0..5 {
        out.push(q.get().await);
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(out, [0, 1, 2, 3, 4]);
}

#[kettle::test]
async fn join_waits_for_every_task_done() {
    let q = Queue::new(0);
    let processed = log();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (q, processed) = (q.clone(), processed.clone());
            kettle::spawn(async move {
                loop {
                    let n: u64 = q.get().await;
                    kettle::sleep(Duration::from_millis(n % 3)).await;
                    processed.borrow_mut().push(n);
                    q.task_done().unwrap();
                }
            })
        })
        .collect();
    for n in 0..20 {
        q.put(n).await;
    }
    q.join().await;
    assert_eq!(processed.borrow().len(), 20);
    assert!(q.empty());
    for w in &workers {
        w.cancel();
    }
    for w in workers {
        assert!(w.await.unwrap_err().is_cancelled());
    }
    // Nothing outstanding: join returns at once, task_done is an error.
    q.join().await;
    let err = q.task_done().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
}

#[kettle::test]
async fn several_joiners_all_wake() {
    let q = Queue::new(0);
    q.put_nowait(()).unwrap();
    let joiners: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            kettle::spawn(async move { q.join().await })
        })
        .collect();
    settle().await;
    assert!(joiners.iter().all(|j| !j.done()));
    q.get().await;
    q.task_done().unwrap();
    for j in joiners {
        j.await.unwrap();
    }
}

#[kettle::test]
async fn priority_and_lifo_orders() {
    let pq = PriorityQueue::new(0);
    for (prio, what) in [(3, "low"), (1, "urgent"), (2, "normal")] {
        pq.put((prio, what)).await;
    }
    let mut order = Vec::new();
    while let Ok((_, what)) = pq.get_nowait() {
        order.push(what);
    }
    assert_eq!(order, ["urgent", "normal", "low"]);

    let stack = LifoQueue::new(2);
    stack.put(1).await;
    stack.put(2).await;
    assert!(stack.full());
    let pusher = {
        let stack = stack.clone();
        kettle::spawn(async move { stack.put(3).await })
    };
    settle().await;
    assert_eq!(stack.get().await, 2);
    pusher.await.unwrap();
    assert_eq!(stack.get().await, 3);
    assert_eq!(stack.get().await, 1);
    assert_eq!(stack.get_nowait(), Err(QueueEmpty));
}

#[kettle::test]
async fn cancelled_waiting_get_loses_no_item() {
    let q = Queue::new(0);
    let got = log();
    let spawn_getter = |id: &'static str| {
        let (q, got) = (q.clone(), got.clone());
        kettle::spawn(async move {
            let item = q.get().await;
            got.borrow_mut().push((id, item));
        })
    };

    // Cancelled while parked.
    let a = spawn_getter("a");
    settle().await;
    let b = spawn_getter("b");
    settle().await;
    a.cancel();
    settle().await;
    q.put_nowait(1).unwrap();
    b.await.unwrap();
    assert!(a.await.unwrap_err().is_cancelled());
    assert_eq!(*got.borrow(), [("b", 1)]);

    // Cancelled after being woken for an item but before running: the item goes to the next.
    let c = spawn_getter("c");
    settle().await;
    let d = spawn_getter("d");
    settle().await;
    q.put_nowait(2).unwrap(); // wakes c
    c.cancel(); // c's future is dropped instead of polled
    d.await.unwrap();
    assert!(c.await.unwrap_err().is_cancelled());
    assert_eq!(*got.borrow(), [("b", 1), ("d", 2)]);
    assert!(q.empty());
}

#[kettle::test]
async fn cancelled_waiting_put_enqueues_nothing_and_frees_its_turn() {
    let q = Queue::new(1);
    q.put_nowait("held").unwrap();
    let cancelled = {
        let q = q.clone();
        kettle::spawn(async move { q.put("never").await })
    };
    settle().await;
    let next = {
        let q = q.clone();
        kettle::spawn(async move { q.put("next").await })
    };
    settle().await;
    assert_eq!(q.get().await, "held"); // the slot is reserved for `cancelled` ...
    cancelled.cancel(); // ... which goes away before using it
    next.await.unwrap();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_eq!(q.get_nowait(), Ok("next"));
    assert_eq!(q.get_nowait(), Err(QueueEmpty));
}

#[kettle::test]
async fn get_under_wait_for_times_out_cleanly() {
    let q: Queue<u32> = Queue::new(0);
    let r = kettle::wait_for(q.get(), Duration::from_millis(5)).await;
    assert!(r.unwrap_err().is_timeout());
    q.put_nowait(9).unwrap();
    assert_eq!(q.get().await, 9);
}
