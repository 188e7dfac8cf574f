//! Unit tests of the loop core: small enough to run under Miri, which checks the unsafe parts
//! (the thread-local loop pointer, integer wakers, the pinned task cell) for undefined
//! behaviour. `cargo +nightly miri test --lib runtime::`

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::{run, spawn, yield_now, EventLoop};

#[test]
fn tasks_run_fifo_and_return_values() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let sum = run(async move {
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let l = l.clone();
                spawn(async move {
                    l.borrow_mut().push(i);
                    yield_now().await;
                    l.borrow_mut().push(10 + i);
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 10);
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
}

#[test]
fn cancel_drops_the_future_and_reports_cancelled() {
    struct Flag(Rc<RefCell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }
    let dropped = Rc::new(RefCell::new(false));
    let d = dropped.clone();
    run(async move {
        let t = spawn(async move {
            let _flag = Flag(d);
            crate::sleep(Duration::from_secs(3600)).await;
        });
        yield_now().await;
        assert!(t.cancel());
        let err = t.await.unwrap_err();
        assert!(err.is_cancelled());
    });
    assert!(*dropped.borrow());
}

#[test]
fn panics_become_errors_and_the_loop_survives() {
    run(async {
        let bad = spawn(async { panic!("kaboom") });
        let good = spawn(async { 1 });
        let err = bad.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.message(), Some("kaboom"));
        assert_eq!(good.await.unwrap(), 1);
    });
}

#[test]
fn wake_from_another_thread_reaches_the_loop() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
    let flag = Arc::new(AtomicBool::new(false));
    let (s2, f2) = (slot.clone(), flag.clone());
    let remote = std::thread::spawn(move || loop {
        if let Some(w) = s2.lock().unwrap().take() {
            f2.store(true, Ordering::Release);
            w.wake();
            return;
        }
        std::thread::yield_now();
    });
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    lp.run_until_complete(async {
        // Nothing else is ready: the loop sleeps in epoll until the remote wake rings the
        // eventfd.
        std::future::poll_fn(|cx| {
            if flag.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    });
    remote.join().unwrap();
    // call_soon_threadsafe from another thread runs the callback on the loop's thread.
    let loop_thread = std::thread::current().id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        handle
            .call_soon_threadsafe(move || tx.send(std::thread::current().id()).unwrap())
            .unwrap();
    })
    .join()
    .unwrap();
    let ran_on = lp.run_until_complete(async {
        loop {
            if let Ok(id) = rx.try_recv() {
                break id;
            }
            yield_now().await;
        }
    });
    assert_eq!(ran_on, loop_thread);
    lp.close().unwrap();
    assert!(lp.handle().call_soon_threadsafe(|| ()).is_err());
}

#[test]
fn stale_wakers_after_completion_are_harmless() {
    run(async {
        let waker = Rc::new(RefCell::new(None));
        let w = waker.clone();
        let t = spawn(std::future::poll_fn(move |cx| {
            *w.borrow_mut() = Some(cx.waker().clone());
            std::task::Poll::Ready(())
        }));
        t.await.unwrap();
        // The slot is vacant (and may be reused); waking it must do nothing harmful.
        let stale = waker.borrow_mut().take().unwrap();
        let next = spawn(async { 7 });
        stale.wake();
        assert_eq!(next.await.unwrap(), 7);
    });
}
