//! `run_in_executor` and `ThreadPool`: blocking work off the loop thread.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use kettle::{ErrorKind, ThreadPool};

mod common;
use common::{thread_cpu_time, LATE};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn run_in_executor_returns_the_result_from_another_thread() {
    let loop_thread = thread::current().id();
    let (value, job_thread) = kettle::run(async {
        kettle::run_in_executor(|| {
            thread::sleep(ms(10));
            (6 * 7, thread::current().id())
        })
        .await
        .unwrap()
    });
    assert_eq!(value, 42);
    assert_ne!(job_thread, loop_thread, "the job ran on the loop thread");

    // The EventLoop method is the same thing.
    let lp = kettle::EventLoop::new().unwrap();
    let s = lp.run_until_complete(lp.run_in_executor(|| String::from("blocking")));
    assert_eq!(s.unwrap(), "blocking");
}

#[test]
fn a_panicking_job_is_an_error_and_the_pool_survives() {
    // One worker: the very thread whose job panicked must serve the next job.
    let pool = ThreadPool::new(1);
    kettle::run(async move {
        let err = pool
            .run(|| -> u32 { panic!("job failed: disk on fire") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.kind(), ErrorKind::Panicked);
        let msg = err.message().expect("the panic message is kept");
        assert!(msg.contains("job failed: disk on fire"), "message: {msg:?}");

        for i in 0..5u32 {
            assert_eq!(pool.run(move || i + 1).await.unwrap(), i + 1);
        }
        assert!(pool.workers() <= 1);

        // The default pool too.
        let err = kettle::run_in_executor(|| -> () { panic!("default pool {}", 7) })
            .await
            .unwrap_err();
        assert!(err.message().unwrap().contains("default pool 7"));
        assert_eq!(kettle::run_in_executor(|| 3).await.unwrap(), 3);
    });
}

#[test]
fn eight_blocking_jobs_on_eight_threads_run_in_parallel_while_the_loop_ticks() {
    let pool = ThreadPool::new(8);
    assert_eq!(pool.max_workers(), 8);
    kettle::run(async move {
        let finished = Rc::new(Cell::new(false));
        let ticks = Rc::new(Cell::new(0u32));
        let (f, tk) = (finished.clone(), ticks.clone());
        let ticker = kettle::spawn(async move {
            while !f.get() {
                kettle::sleep(ms(10)).await;
                tk.set(tk.get() + 1);
            }
        });

        let t0 = Instant::now();
        let jobs: Vec<_> = (0..8u64)
            .map(|i| {
                pool.run(move || {
                    thread::sleep(ms(100));
                    i * 10
                })
            })
            .collect();
        let mut results = Vec::new();
        for j in jobs {
            results.push(j.await.unwrap());
        }
        let took = t0.elapsed();
        let ticks_meanwhile = ticks.get();
        finished.set(true);
        ticker.await.unwrap();

        assert_eq!(results, (0..8).map(|i| i * 10).collect::<Vec<_>>());
        assert!(took >= ms(100));
        assert!(
            took < ms(700),
            "8 jobs of 100 ms on 8 threads took {took:?}: they did not run in parallel"
        );
        assert!(
            ticks_meanwhile >= 3,
            "the loop ticked only {ticks_meanwhile} times in {took:?}: blocking jobs held it"
        );
        assert!(pool.workers() <= 8);
    });
}

#[test]
fn a_pool_of_two_never_runs_more_than_two_jobs_at_once() {
    let pool = ThreadPool::new(2);
    let current = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    kettle::run({
        let (current, max_seen, pool) = (current.clone(), max_seen.clone(), pool.clone());
        async move {
            let jobs: Vec<_> = (0..8)
                .map(|i| {
                    let (current, max_seen) = (current.clone(), max_seen.clone());
                    pool.run(move || {
                        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        // Linger until a second job is seen running (bounded), so the peak
                        // is observed deterministically, then hold the worker a little.
                        let wait_start = Instant::now();
                        while max_seen.load(Ordering::SeqCst) < 2
                            && wait_start.elapsed() < Duration::from_secs(1)
                        {
                            thread::sleep(ms(1));
                        }
                        thread::sleep(ms(25));
                        current.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
                .collect();
            for (i, j) in jobs.into_iter().enumerate() {
                assert_eq!(j.await.unwrap(), i);
            }
        }
    });
    let took = t0.elapsed();
    let peak = max_seen.load(Ordering::SeqCst);
    assert!(peak <= 2, "{peak} jobs ran at once on a pool of 2");
    assert_eq!(peak, 2, "the pool never used its second thread");
    assert!(
        took >= ms(100),
        "8 jobs of 25 ms, 2 at a time, need 100 ms; took {took:?}"
    );
    assert!(pool.workers() <= 2);
    assert_eq!(current.load(Ordering::SeqCst), 0);
}

#[test]
fn a_pool_of_zero_still_has_one_worker() {
    let pool = ThreadPool::new(0);
    assert_eq!(pool.max_workers(), 1);
    assert_eq!(kettle::run(pool.run(|| 1)).unwrap(), 1);
}

#[test]
fn many_jobs_on_a_small_pool_all_complete() {
    let pool = ThreadPool::new(3);
    let sum = kettle::run(async move {
        let jobs: Vec<_> = (0..1000u64).map(|i| pool.run(move || i)).collect();
        let mut sum = 0;
        for j in jobs {
            sum += j.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 999 * 1000 / 2);
}

#[test]
fn the_loop_sleeps_while_a_job_runs() {
    kettle::run(async {
        let cpu0 = thread_cpu_time();
        let t0 = Instant::now();
        kettle::run_in_executor(|| thread::sleep(ms(200)))
            .await
            .unwrap();
        let cpu = thread_cpu_time() - cpu0;
        assert!(t0.elapsed() >= ms(200));
        assert!(
            cpu < ms(100),
            "the loop thread burnt {cpu:?} waiting for a 200 ms job: it polls instead of \
             sleeping in epoll_wait"
        );
    });
}

#[test]
fn dropping_the_future_does_not_stop_the_job() {
    let (tx, rx) = mpsc::channel();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    kettle::run(async move {
        let job = kettle::run_in_executor(move || {
            thread::sleep(ms(30));
            r.store(true, Ordering::SeqCst);
            tx.send(()).unwrap();
            "discarded"
        });
        let err = kettle::wait_for(job, ms(5)).await.unwrap_err();
        assert!(err.is_timeout());
        // Wait for the abandoned job without blocking the loop.
        kettle::run_in_executor(move || rx.recv_timeout(LATE))
            .await
            .unwrap()
            .expect("the abandoned job still ran to completion");
    });
    assert!(ran.load(Ordering::SeqCst));
}

#[test]
fn one_pool_serves_loops_on_several_threads() {
    let pool = ThreadPool::new(4);
    let handles: Vec<_> = (0..4u64)
        .map(|n| {
            let pool = pool.clone();
            thread::spawn(move || {
                kettle::run(async move {
                    let mut sum = 0;
                    for i in 0..20u64 {
                        sum += pool
                            .run(move || {
                                thread::sleep(Duration::from_micros(200));
                                n * 1000 + i
                            })
                            .await
                            .unwrap();
                    }
                    sum
                })
            })
        })
        .collect();
    for (n, h) in (0..4u64).zip(handles) {
        assert_eq!(h.join().unwrap(), 20 * n * 1000 + 19 * 20 / 2);
    }
}

/// A pool with one idle worker must still start new threads for a burst of jobs: the idle
/// worker can take one job, not all of them.
#[test]
fn a_warm_pool_still_runs_a_burst_in_parallel() {
    let pool = ThreadPool::new(8);
    kettle::run(async move {
        // Warm up: one worker exists and goes idle.
        assert_eq!(pool.run(|| 1).await.unwrap(), 1);
        kettle::sleep(ms(20)).await;
        assert_eq!(pool.workers(), 1);

        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(ms(100));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap();
        }
        let took = t0.elapsed();
        assert!(
            took < ms(700),
            "8 jobs of 100 ms on a pool of 8 took {took:?} (peak concurrency {}, {} workers)",
            peak.load(Ordering::SeqCst),
            pool.workers()
        );
    });
}
