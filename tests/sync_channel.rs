//! oneshot and mpsc channels on the real loop, with senders on other `std::thread`s waking the
//! loop, backpressure across threads, end of stream, the `Stream` impl, and cancellation.

use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use futures_core::Stream;
use kettle::sync::{mpsc, oneshot};

/// Lets every ready task run until all of them are parked again.
async fn settle() {
    for _ in 0..10 {
        kettle::yield_now().await;
    }
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

#[kettle::test]
async fn oneshot_from_another_thread_wakes_the_loop() {
    let (tx, rx) = oneshot::channel();
    let worker = thread::spawn(move || {
        // Make sure the loop is parked in epoll before the value arrives.
        thread::sleep(Duration::from_millis(20));
        tx.send(String::from("done")).unwrap();
    });
    assert_eq!(rx.await.as_deref(), Ok("done"));
    worker.join().unwrap();
}

#[kettle::test]
async fn oneshot_sender_dropped_on_another_thread() {
    let (tx, rx) = oneshot::channel::<u32>();
    let worker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        drop(tx);
    });
    assert_eq!(rx.await, Err(oneshot::RecvError));
    worker.join().unwrap();
}

#[kettle::test]
async fn oneshot_between_tasks_and_closed_detection() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
    let task = kettle::spawn(rx);
    settle().await;
    tx.send(7).unwrap();
    assert_eq!(task.await.unwrap(), Ok(7));

    let (tx, rx) = oneshot::channel::<u8>();
    let waiting = kettle::spawn(rx);
    settle().await;
    assert!(!tx.is_closed());
    waiting.cancel(); // dropping the receiver closes the channel
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert!(tx.is_closed());
    assert_eq!(tx.send(1), Err(1));
}

#[kettle::test]
async fn mpsc_from_threads_with_backpressure() {
    const PER_THREAD: u64 = 20_000;
    let (tx, mut rx) = mpsc::channel::<(u64, u64)>(4);
    let workers: Vec<_> = (0..3)
        .map(|id| {
            let tx = tx.clone();
            // Each producer thread runs a loop of its own: a full channel parks its task, and
            // the consumer on this loop wakes it across threads.
            thread::spawn(move || {
                kettle::run(async move {
                    for n in 0..PER_THREAD {
                        tx.send((id, n)).await.unwrap();
                    }
                })
            })
        })
        .collect();
    drop(tx);
    let mut next_expected = [0u64; 3];
    let mut count = 0;
    while let Some((id, n)) = rx.recv().await {
        assert_eq!(n, next_expected[id as usize], "per-sender order is kept");
        next_expected[id as usize] += 1;
        count += 1;
        assert!(rx.len() <= 4);
    }
    assert_eq!(count, 3 * PER_THREAD);
    for w in workers {
        w.join().unwrap();
    }
}

#[kettle::test]
async fn cross_thread_sends_that_time_out_lose_and_duplicate_nothing() {
    const PER_THREAD: u32 = 2_000;
    let (tx, mut rx) = mpsc::channel::<(usize, u32)>(2);
    let workers: Vec<_> = (0..2)
        .map(|id| {
            let tx = tx.clone();
            thread::spawn(move || {
                kettle::run(async move {
                    let mut n = 0;
                    let mut timeouts = 0u32;
                    while n < PER_THREAD {
                        // A timed-out send is dropped while parked: it must not have sent, and
                        // must not take a slot from the other thread's sender.
                        match kettle::wait_for(tx.send((id, n)), Duration::from_micros(50)).await {
                            Ok(r) => {
                                r.unwrap();
                                n += 1;
                            }
                            Err(e) => {
                                assert!(e.is_timeout());
                                timeouts += 1;
                            }
                        }
                    }
                    timeouts
                })
            })
        })
        .collect();
    drop(tx);
    let mut expected = [0u32; 2];
    let mut received = 0;
    while let Some((id, n)) = rx.recv().await {
        assert_eq!(n, expected[id], "sender {id}: nothing lost, nothing twice");
        expected[id] += 1;
        received += 1;
        if received % 100 == 0 {
            // Stall now and then so that senders time out while parked.
            kettle::sleep(Duration::from_millis(2)).await;
        }
    }
    assert_eq!(expected, [PER_THREAD; 2]);
    let timeouts: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    eprintln!("{timeouts} sends timed out and were retried");
}

#[kettle::test]
async fn mpsc_plain_thread_sender_with_try_send() {
    let (tx, mut rx) = mpsc::channel(2);
    let worker = thread::spawn(move || {
        for n in 0..1000u32 {
            let mut v = n;
            loop {
                match tx.try_send(v) {
                    Ok(()) => break,
                    Err(mpsc::TrySendError::Full(back)) => {
                        v = back;
                        thread::yield_now();
                    }
                    Err(mpsc::TrySendError::Closed(_)) => panic!("receiver closed"),
                }
            }
        }
    });
    let mut got = Vec::new();
    while let Some(n) = rx.recv().await {
        got.push(n);
    }
    worker.join().unwrap();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[kettle::test]
async fn recv_returns_none_after_all_senders_drop() {
    let (tx, mut rx) = mpsc::channel(8);
    let producers: Vec<_> = (0..4)
        .map(|id| {
            let tx = tx.clone();
            kettle::spawn(async move {
                kettle::sleep(Duration::from_millis(id)).await;
                tx.send(id).await.unwrap();
            })
        })
        .collect();
    drop(tx);
    let mut got = Vec::new();
    while let Some(id) = rx.recv().await {
        got.push(id);
    }
    got.sort();
    assert_eq!(got, [0, 1, 2, 3]);
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    for p in producers {
        p.await.unwrap();
    }
}

#[kettle::test]
async fn receiver_is_a_stream() {
    let (tx, mut rx) = mpsc::channel(1);
    let producer = kettle::spawn(async move {
        for word in ["tea", "kettle", "whistle"] {
            tx.send(word).await.unwrap();
        }
    });
    let mut words = Vec::new();
    while let Some(w) = next(&mut rx).await {
        words.push(w);
    }
    producer.await.unwrap();
    assert_eq!(words, ["tea", "kettle", "whistle"]);
}

#[kettle::test]
async fn send_fails_once_the_receiver_is_gone() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(1).await.unwrap();
    let blocked = {
        let tx = tx.clone();
        kettle::spawn(async move { tx.send(2).await })
    };
    settle().await;
    assert!(!blocked.done(), "full: the send waits");
    rx.close();
    let err = blocked.await.unwrap().unwrap_err();
    assert_eq!(err.into_inner(), 2);
    assert!(tx.send(3).await.is_err());
    assert_eq!(rx.recv().await, Some(1), "buffered messages survive close");
    assert_eq!(rx.recv().await, None);
    drop(rx);
    assert!(tx.is_closed());
}

#[kettle::test]
// The receiver is shared with the task through a RefCell held across the `recv`, on purpose:
// cancelling the task releases it.
#[allow(clippy::await_holding_refcell_ref)]
async fn cancelled_recv_loses_no_message() {
    let (tx, rx) = mpsc::channel::<&str>(1);
    let rx = Rc::new(RefCell::new(rx));
    let spawn_receiver = || {
        let rx = rx.clone();
        kettle::spawn(async move { rx.borrow_mut().recv().await })
    };

    // Cancelled while parked.
    let a = spawn_receiver();
    settle().await;
    a.cancel();
    assert!(a.await.unwrap_err().is_cancelled());
    tx.send("one").await.unwrap();
    assert_eq!(rx.borrow_mut().recv().await, Some("one"));

    // Cancelled after the message woke it, before it ran: the message stays buffered.
    let b = spawn_receiver();
    settle().await;
    tx.send("two").await.unwrap();
    b.cancel();
    assert!(b.await.unwrap_err().is_cancelled());
    assert_eq!(rx.borrow_mut().try_recv(), Ok("two"));

    // A timed-out recv, the receiver kept, loses nothing either.
    let mut rx = Rc::try_unwrap(rx).unwrap().into_inner();
    let r = kettle::wait_for(rx.recv(), Duration::from_millis(5)).await;
    assert!(r.unwrap_err().is_timeout());
    tx.send("three").await.unwrap();
    assert_eq!(rx.recv().await, Some("three"));
}

#[kettle::test]
async fn cancelled_waiting_send_frees_its_turn() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(0).await.unwrap();
    let spawn_sender = |v: u32| {
        let tx = tx.clone();
        kettle::spawn(async move { tx.send(v).await })
    };
    let a = spawn_sender(1);
    settle().await;
    let b = spawn_sender(2);
    settle().await;
    assert_eq!(rx.recv().await, Some(0)); // the free slot is reserved for a ...
    a.cancel(); // ... which is dropped before it runs
    b.await.unwrap().unwrap();
    assert!(a.await.unwrap_err().is_cancelled());
    assert_eq!(rx.recv().await, Some(2));
    drop(tx);
    assert_eq!(rx.recv().await, None);
}

/// Two tasks bouncing a counter over two capacity-1 channels, as the `pingpong` benchmark
/// does. Checks correctness always; prints the cost per round trip (meaningful with
/// `--release`).
#[kettle::test]
async fn pingpong() {
    let round_trips: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        1_000_000
    };
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let ponger = kettle::spawn(async move {
        while let Some(n) = ping_rx.recv().await {
            pong_tx.send(n + 1).await.unwrap();
        }
    });
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..round_trips {
        ping_tx.send(n).await.unwrap();
        n = pong_rx.recv().await.unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(n, round_trips);
    drop(ping_tx);
    ponger.await.unwrap();
    eprintln!(
        "pingpong: {round_trips} round trips, {:.0} ns each",
        elapsed.as_nanos() as f64 / round_trips as f64
    );
}
