//! `LoopGroup`: one loop per thread, results in worker order, cross-loop calls through
//! `LoopHandle`, a panicking worker stopping the group, `stop`, pinning.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use kettle::{ErrorKind, LoopGroup};

/// A future that never finishes on its own.
async fn forever() {
    loop {
        kettle::sleep(Duration::from_secs(3600)).await;
    }
}

#[test]
fn every_worker_runs_on_its_own_thread_and_results_come_back_in_order() {
    let group = LoopGroup::builder()
        .workers(4)
        .thread_name("grp")
        .spawn(|i| async move {
            // Later workers finish first: the order of results is the workers', not the
            // order they finished in.
            kettle::sleep(Duration::from_millis(40 - 10 * i as u64)).await;
            let name = std::thread::current().name().unwrap().to_string();
            (i, kettle::worker_index(), name, std::thread::current().id())
        })
        .unwrap();
    assert_eq!(group.len(), 4);
    let results: Vec<_> = group.join().into_iter().map(|r| r.unwrap()).collect();
    let mut threads = Vec::new();
    for (i, (index, worker, name, thread)) in results.into_iter().enumerate() {
        assert_eq!(index, i);
        assert_eq!(worker, Some(i));
        assert_eq!(name, format!("grp-{i}"));
        assert_ne!(thread, std::thread::current().id());
        assert!(!threads.contains(&thread), "two workers on one thread");
        threads.push(thread);
    }
}

#[test]
fn the_default_is_one_worker_per_available_core() {
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(LoopGroup::builder().worker_count(), cores);
    let group = LoopGroup::builder().spawn(|i| async move { i }).unwrap();
    assert_eq!(group.len(), cores);
    assert_eq!(group.join().len(), cores);
}

#[test]
fn loops_call_each_other_through_their_handles() {
    // Worker 0 asks worker 1 to run a callback; worker 1's callback answers with its own
    // thread's worker index over a channel.
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let group = LoopGroup::builder()
        .workers(2)
        .spawn(|_| forever())
        .unwrap();
    let handles = group.handles();
    let to_one = handles[1].clone();
    handles[0]
        .call_soon_threadsafe(move || {
            assert_eq!(kettle::worker_index(), Some(0));
            let tx = tx.clone();
            to_one
                .call_soon_threadsafe(move || {
                    let _ = tx.lock().unwrap().send(kettle::worker_index());
                })
                .unwrap();
        })
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Some(1));
    group.stop();
    for r in group.join() {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    }
}

#[test]
fn a_panicking_worker_is_named_and_stops_the_others() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let counter = dropped.clone();
    let t0 = Instant::now();
    let group = LoopGroup::builder()
        .workers(3)
        .spawn(move |i| {
            let guard = CountDrop(counter.clone());
            async move {
                let _guard = guard;
                if i == 1 {
                    kettle::sleep(Duration::from_millis(20)).await;
                    panic!("the kettle boiled dry");
                }
                forever().await;
            }
        })
        .unwrap();
    let results = group.join();
    assert!(t0.elapsed() < Duration::from_secs(10));
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(
        err.message(),
        Some("worker 1 panicked: the kettle boiled dry")
    );
    for i in [0, 2] {
        assert_eq!(
            results[i].as_ref().unwrap_err().kind(),
            ErrorKind::Cancelled
        );
    }
    // Every worker's state was dropped (on its own thread, by its own loop).
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
}

#[test]
fn a_factory_that_panics_is_a_panicked_worker() {
    let group = LoopGroup::builder()
        .workers(2)
        .spawn(|i| {
            if i == 0 {
                panic!("no water");
            }
            forever()
        })
        .unwrap();
    let results = group.join();
    assert_eq!(
        results[0].as_ref().unwrap_err().message(),
        Some("worker 0 panicked: no water")
    );
    assert_eq!(
        results[1].as_ref().unwrap_err().kind(),
        ErrorKind::Cancelled
    );
}

#[test]
fn stop_cancels_every_worker_and_dropping_a_group_stops_it() {
    let group = LoopGroup::builder()
        .workers(2)
        .spawn(|_| forever())
        .unwrap();
    group.stop();
    let results = group.join();
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap_err().is_cancelled()));

    let (tx, rx) = mpsc::channel::<usize>();
    let tx = Arc::new(Mutex::new(tx));
    let group = LoopGroup::builder()
        .workers(2)
        .spawn(move |i| {
            let tx = tx.clone();
            async move {
                struct Bye(usize, Arc<Mutex<mpsc::Sender<usize>>>);
                impl Drop for Bye {
                    fn drop(&mut self) {
                        let _ = self.1.lock().unwrap().send(self.0);
                    }
                }
                let _bye = Bye(i, tx);
                forever().await;
            }
        })
        .unwrap();
    drop(group);
    let mut gone: Vec<usize> = rx.try_iter().collect();
    gone.sort();
    assert_eq!(gone, [0, 1], "drop returns after every worker ended");
}

#[test]
fn zero_workers_is_an_error() {
    let err = LoopGroup::builder()
        .workers(0)
        .spawn(|_| async {})
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn pinned_workers_run_on_one_cpu_each() {
    fn allowed() -> Vec<usize> {
        // SAFETY: a zeroed mask the kernel fills; CPU_ISSET reads within its bounds.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }
    let mine = allowed();
    let group = LoopGroup::builder()
        .workers(mine.len() + 1)
        .pin_to_cores(true)
        .spawn(|_| async { allowed() })
        .unwrap();
    let results: Vec<Vec<usize>> = group.join().into_iter().map(|r| r.unwrap()).collect();
    for (i, cpus) in results.iter().enumerate() {
        assert_eq!(cpus, &[mine[i % mine.len()]], "worker {i}");
    }
    // Unpinned workers keep the process's mask.
    let group = LoopGroup::builder()
        .workers(1)
        .spawn(|_| async { allowed() })
        .unwrap();
    assert_eq!(group.join().pop().unwrap().unwrap(), mine);
}
