//! Tasks (asyncio's `Task`): spawning and awaiting, results, cancellation, panics,
//! done-callbacks, names, `current_task` / `all_tasks`, `yield_now` scheduling, and a million
//! tasks without leaking.

use std::cell::{Cell, RefCell};
use std::panic::catch_unwind;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kettle::{ErrorKind, EventLoop, Task};

mod common;
use common::{log, new_loop, Log, LATE};

#[allow(dead_code)]
#[path = "../examples/a_b_interleave.rs"]
mod a_b_interleave;

#[allow(dead_code)]
#[path = "../examples/tasks.rs"]
mod tasks_example;

const HOUR: Duration = Duration::from_secs(3600);

/// Sets its flag when dropped: proves a task's future was destroyed.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn drop_flag() -> (DropFlag, Rc<Cell<bool>>) {
    let flag = Rc::new(Cell::new(false));
    (DropFlag(flag.clone()), flag)
}

/// Yields until `cond` holds (bounded, so a bug fails the test instead of hanging it).
async fn yield_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if cond() {
            return;
        }
        kettle::yield_now().await;
    }
    panic!("condition never became true");
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

#[test]
fn spawn_and_await_results_in_order() {
    let got = kettle::run(async {
        let handles: Vec<Task<u32>> = (0..50)
            .map(|i| {
                kettle::spawn(async move {
                    // Finish in reverse order, to show results follow the handles, not time.
                    kettle::sleep(Duration::from_millis(50 - i as u64)).await;
                    i * i
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    assert_eq!(got, (0..50).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn tasks_start_in_spawn_order_and_not_inside_spawn() {
    let order = log();
    let o = order.clone();
    kettle::run(async move {
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let o = o.clone();
                kettle::spawn(async move { o.borrow_mut().push(i) })
            })
            .collect();
        assert!(o.borrow().is_empty(), "spawn must not run the task inline");
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4]);
}

#[test]
fn create_task_on_a_loop_that_is_not_running_yet() {
    let lp = new_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let t = lp.create_task(async move {
        r.set(true);
        "hi"
    });
    assert!(!ran.get());
    assert!(!t.done());
    assert_eq!(lp.task_count(), 1);
    assert_eq!(lp.run_until_complete(t).unwrap(), "hi");
    assert!(ran.get());
    assert_eq!(lp.task_count(), 0);
}

#[test]
fn spawn_outside_a_loop_panics() {
    let res = catch_unwind(|| drop(kettle::spawn(async {})));
    assert!(res.is_err());
    assert!(kettle::current_task().is_none());
    assert!(kettle::all_tasks().is_empty());
}

#[test]
fn result_is_invalid_state_until_done_then_the_value() {
    kettle::run(async {
        let mut t = kettle::spawn(async {
            kettle::sleep(Duration::from_millis(10)).await;
            String::from("value")
        });
        let err = t.result().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(!t.done());
        assert!(t.error().is_none());

        yield_until(|| t.done()).await;
        assert_eq!(t.result().unwrap(), "value");
        assert_eq!(t.result().unwrap(), "value", "result() does not consume");
        assert!(t.error().is_none());
        assert!(!t.cancelled());

        assert_eq!((&mut t).await.unwrap(), "value");
        // Awaiting moved the output out; result() says so rather than inventing one.
        assert_eq!(t.result().unwrap_err().kind(), ErrorKind::InvalidState);
    });
}

#[test]
fn cancelling_a_sleeping_task() {
    kettle::run(async {
        let (guard, dropped) = drop_flag();
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let reached_end = Rc::new(Cell::new(false));
        let e = reached_end.clone();
        let mut t = kettle::spawn(async move {
            let _guard = guard;
            s.set(true);
            kettle::sleep(HOUR).await;
            e.set(true);
        });
        yield_until(|| started.get()).await;
        assert!(!dropped.get());

        let t0 = Instant::now();
        assert!(t.cancel());
        assert!(
            t.cancel(),
            "a second cancel while pending is still accepted"
        );
        let err = (&mut t).await.unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(t0.elapsed() < LATE);
        assert!(t.cancelled());
        assert!(t.done());
        assert!(t.error().is_some_and(|e| e.is_cancelled()));
        assert!(
            dropped.get(),
            "the task's future (and its locals) were dropped"
        );
        assert!(!reached_end.get());
        assert_eq!(kettle::get_running_loop().task_count(), 0);
    });
}

#[test]
fn cancelling_a_task_before_it_ever_ran() {
    kettle::run(async {
        let (guard, dropped) = drop_flag();
        let polled = Rc::new(Cell::new(false));
        let p = polled.clone();
        let t = kettle::spawn(async move {
            let _guard = guard;
            p.set(true);
        });
        assert!(t.cancel());
        assert!(t.await.unwrap_err().is_cancelled());
        assert!(
            !polled.get(),
            "a task cancelled before its first turn never runs"
        );
        assert!(dropped.get());
    });
}

#[test]
fn cancelling_the_awaiter_detaches_the_awaited_task() {
    kettle::run(async {
        let inner_finished = Rc::new(Cell::new(false));
        let f = inner_finished.clone();
        let inner = kettle::spawn(async move {
            kettle::sleep(Duration::from_millis(30)).await;
            f.set(true);
            7
        });
        let inner_ref = inner.task_ref();
        let outer_started = Rc::new(Cell::new(false));
        let s = outer_started.clone();
        let outer = kettle::spawn(async move {
            s.set(true);
            inner.await
        });
        yield_until(|| outer_started.get()).await;
        assert!(outer.cancel());
        assert!(outer.await.unwrap_err().is_cancelled());

        // The inner task's handle was dropped with the outer future: it keeps running.
        assert!(!inner_ref.done());
        assert!(!inner_ref.cancelled());
        kettle::sleep(Duration::from_millis(40)).await;
        yield_until(|| inner_ref.done()).await;
        assert!(inner_finished.get());
        assert!(!inner_ref.cancelled());
    });
}

#[test]
fn dropping_a_task_handle_detaches() {
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let seen = finished.clone();
    kettle::run(async move {
        drop(kettle::spawn(async move {
            kettle::sleep(Duration::from_millis(10)).await;
            f.set(true);
        }));
        kettle::sleep(Duration::from_millis(20)).await;
        yield_until(|| seen.get()).await;
    });
    assert!(finished.get());
}

#[test]
fn awaiting_a_cancelled_task_from_another_task_yields_cancelled() {
    kettle::run(async {
        let inner = kettle::spawn(kettle::sleep(HOUR));
        let inner_ref = inner.task_ref();
        let outer = kettle::spawn(inner);
        kettle::yield_now().await;
        assert!(inner_ref.cancel());
        let out = outer
            .await
            .expect("the outer task itself was not cancelled");
        assert!(out.unwrap_err().is_cancelled());
    });
}

#[test]
fn cancel_after_done_returns_false() {
    kettle::run(async {
        let mut t = kettle::spawn(async { 1 });
        assert_eq!((&mut t).await.unwrap(), 1);
        assert!(t.done());
        assert!(!t.cancel());
        assert!(!t.cancelled());
        assert!(t.error().is_none());

        let mut p = kettle::spawn(async { panic!("already failed") });
        assert!((&mut p).await.unwrap_err().is_panic());
        assert!(!p.cancel());
        assert!(!p.cancelled());
    });
}

#[test]
fn a_task_can_cancel_itself() {
    kettle::run(async {
        let (guard, dropped) = drop_flag();
        let after = Rc::new(Cell::new(false));
        let a = after.clone();
        let t = kettle::spawn(async move {
            let _guard = guard;
            let me = kettle::current_task().expect("inside a task");
            assert!(me.cancel());
            assert!(
                !me.done(),
                "cancel takes effect at the next suspension point"
            );
            kettle::yield_now().await;
            a.set(true);
        });
        let err = t.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(
            !after.get(),
            "the task never resumed after cancelling itself"
        );
        assert!(dropped.get());
    });
}

#[test]
fn a_panicking_task_yields_an_error_and_the_loop_goes_on() {
    kettle::run(async {
        let ticks = Rc::new(Cell::new(0u32));
        let tk = ticks.clone();
        let ticker = kettle::spawn(async move {
            for _ in 0..10 {
                tk.set(tk.get() + 1);
                kettle::yield_now().await;
            }
            "ticker done"
        });
        let mut bad = kettle::spawn(async {
            kettle::yield_now().await;
            let n = 42;
            if n == 42 {
                panic!("task exploded: {n}");
            }
            n
        });
        yield_until(|| bad.done()).await;
        assert!(!bad.cancelled());
        assert!(bad.error().is_some_and(|e| e.is_panic()));
        assert!(bad.result().unwrap_err().is_panic());
        let err = (&mut bad).await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.kind(), ErrorKind::Panicked);
        let msg = err.message().expect("a panic keeps its message");
        assert!(msg.contains("task exploded: 42"), "message: {msg:?}");
        assert!(err.to_string().contains("task exploded: 42"));
        assert!(bad.done());

        assert_eq!(ticker.await.unwrap(), "ticker done");
        assert_eq!(ticks.get(), 10);
        // And new tasks still run.
        assert_eq!(kettle::spawn(async { 5 }).await.unwrap(), 5);
    });
}

/// `Task::error()` is documented as `None` only "if it returned normally or is not done"; a
/// task that panicked must keep reporting its error after its handle was awaited, as
/// asyncio's `Task.exception()` does (a cancelled task already does).
#[test]
fn error_still_reports_a_panic_after_the_handle_was_awaited() {
    kettle::run(async {
        let mut bad = kettle::spawn(async { panic!("kaboom") });
        assert!((&mut bad).await.unwrap_err().is_panic());
        assert!(bad.done());
        let err = bad.error();
        assert!(
            err.as_ref().is_some_and(|e| e.is_panic()),
            "error() after await of a panicked task: {err:?}"
        );
    });
}

#[test]
fn panic_with_a_static_str_and_a_non_string_payload() {
    kettle::run(async {
        let e = kettle::spawn(async { panic!("plain") }).await.unwrap_err();
        assert_eq!(e.message(), Some("plain"));
        let e = kettle::spawn(async { std::panic::panic_any(17u8) })
            .await
            .unwrap_err();
        assert!(e.is_panic());
    });
}

#[test]
fn done_callback_on_a_done_task_is_scheduled_not_inline() {
    kettle::run(async {
        let mut t = kettle::spawn(async { 3 });
        assert_eq!((&mut t).await.unwrap(), 3);
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        t.add_done_callback(move |t| {
            assert!(t.done());
            r.set(true);
        });
        assert!(
            !ran.get(),
            "the callback must not run inside add_done_callback"
        );
        kettle::yield_now().await;
        assert!(ran.get(), "the callback runs on the loop's next turn");
    });
}

#[test]
fn done_callbacks_run_after_completion_in_registration_order() {
    kettle::run(async {
        let calls: Log<(u32, i32)> = log();
        let t = kettle::spawn(async {
            kettle::sleep(Duration::from_millis(5)).await;
            11
        });
        for i in 0..3 {
            let c = calls.clone();
            t.add_done_callback(move |t| c.borrow_mut().push((i, t.result().unwrap())));
        }
        assert!(calls.borrow().is_empty());
        yield_until(|| t.done()).await;
        kettle::yield_now().await;
        assert_eq!(*calls.borrow(), [(0, 11), (1, 11), (2, 11)]);
        assert_eq!(t.await.unwrap(), 11);
    });
}

#[test]
fn done_callback_sees_cancellation() {
    kettle::run(async {
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let t = kettle::spawn(kettle::sleep(HOUR));
        t.add_done_callback(move |t| s.set(Some((t.cancelled(), t.error().map(|e| e.kind())))));
        kettle::yield_now().await;
        t.cancel();
        yield_until(|| seen.get().is_some()).await;
        assert_eq!(seen.get(), Some((true, Some(ErrorKind::Cancelled))));
    });
}

#[test]
fn done_callback_added_while_the_loop_is_stopped_runs_on_the_next_run() {
    let lp = new_loop();
    let t = lp.create_task(async { 1 });
    let r = t.task_ref();
    lp.run_until_complete(async move { yield_until(|| r.done()).await });
    assert!(t.done());
    let ran = Rc::new(Cell::new(false));
    let rn = ran.clone();
    t.add_done_callback(move |_| rn.set(true));
    assert!(!ran.get());
    lp.run_until_complete(kettle::yield_now());
    assert!(ran.get());
}

#[test]
fn names_default_to_task_n_and_can_be_set() {
    kettle::run(async {
        let t = kettle::spawn(async { kettle::current_task().expect("inside a task").name() });
        let default = t.name();
        assert_eq!(default, format!("Task-{}", t.id()));
        let digits = default.strip_prefix("Task-").expect("Task-N");
        assert!(!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()));

        t.set_name("worker");
        assert_eq!(t.name(), "worker");
        assert!(format!("{t:?}").contains("worker"));
        assert_eq!(t.task_ref().name(), "worker");
        assert_eq!(
            t.await.unwrap(),
            "worker",
            "current_task() sees the new name"
        );

        // Renaming through a TaskRef, from inside the task.
        let t = kettle::spawn(async {
            kettle::current_task().unwrap().set_name("self-named");
            kettle::yield_now().await;
        });
        kettle::yield_now().await;
        assert_eq!(t.name(), "self-named");
        t.await.unwrap();
    });
}

#[test]
fn task_ids_increase_in_spawn_order() {
    kettle::run(async {
        let ids: Vec<u64> = (0..10).map(|_| kettle::spawn(async {}).id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids: {ids:?}");
    });
}

/// `Task::id` is documented as process-unique (asyncio numbers `Task-N` process-wide too), and
/// `TaskRef` equality compares ids, so two loops must never hand out the same id.
#[test]
fn task_ids_are_process_unique_across_loops() {
    let lp1 = new_loop();
    let lp2 = new_loop();
    let a = lp1.create_task(async {});
    let b = lp2.create_task(async {});
    assert_ne!(a.id(), b.id(), "two loops handed out the same task id");
    assert_ne!(a.name(), b.name());
    assert_ne!(a.task_ref(), b.task_ref(), "distinct tasks compare equal");
}

#[test]
fn current_task_and_all_tasks() {
    let lp = new_loop();
    lp.run_until_complete(async {
        assert!(
            kettle::current_task().is_none(),
            "the run_until_complete future is not a task"
        );
        assert!(kettle::all_tasks().is_empty());

        let seen_self = Rc::new(Cell::new(0u64));
        let s = seen_self.clone();
        let sleepers: Vec<Task<()>> = (0..3)
            .map(|i| kettle::spawn(kettle::sleep(Duration::from_millis(10 + i))))
            .collect();
        let me = kettle::spawn(async move { s.set(kettle::current_task().unwrap().id()) });
        let me_id = me.id();
        me.await.unwrap();
        assert_eq!(seen_self.get(), me_id);
        assert!(kettle::current_task().is_none());

        let mut all: Vec<u64> = kettle::all_tasks().iter().map(|t| t.id()).collect();
        all.sort_unstable();
        let mut expected: Vec<u64> = sleepers.iter().map(|t| t.id()).collect();
        expected.sort_unstable();
        assert_eq!(all, expected, "finished tasks are not listed");
        assert!(kettle::all_tasks()
            .iter()
            .all(|t| !t.done() && format!("{t:?}").contains("pending")));

        // Cancel them all through all_tasks().
        for t in kettle::all_tasks() {
            assert!(t.cancel());
        }
        for t in sleepers {
            assert!(t.await.unwrap_err().is_cancelled());
        }
        assert!(kettle::all_tasks().is_empty());
    });
    assert!(kettle::current_task().is_none());
}

#[test]
fn yield_now_alternates_seed_003_a_and_b() {
    let out = log();
    let o = out.clone();
    a_b_interleave::run_both(Rc::new(move |line| o.borrow_mut().push(line)));
    assert_eq!(
        *out.borrow(),
        ["a.x 0", "b.x a", "a.x 1", "b.x b", "a.x 2", "b.x c"]
    );
}

#[test]
fn yield_now_round_robins_many_tasks() {
    let out = log();
    let o = out.clone();
    kettle::run(async move {
        let handles: Vec<_> = (0..4)
            .map(|id| {
                let o = o.clone();
                kettle::spawn(async move {
                    for round in 0..3 {
                        o.borrow_mut().push((round, id));
                        kettle::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    let expected: Vec<(u32, u32)> = (0..3)
        .flat_map(|round| (0..4).map(move |id| (round, id)))
        .collect();
    assert_eq!(*out.borrow(), expected);
}

#[test]
fn seed_002_demo4_runs_three_sleeps_concurrently() {
    let out = log();
    let o = out.clone();
    let unit = Duration::from_millis(100);
    let elapsed = tasks_example::demo4(unit, Rc::new(move |line| o.borrow_mut().push(line)));
    let out = out.borrow();
    assert_eq!(
        out[..6],
        [
            "Waiting for 1 s",
            "Waiting for 2 s",
            "Waiting for 3 s",
            "Task return: Done after 1s",
            "Task return: Done after 2s",
            "Task return: Done after 3s",
        ]
    );
    assert_eq!(out.len(), 7);
    let last = &out[6];
    let secs: f64 = last
        .strip_prefix("Program consumes: ")
        .and_then(|s| s.strip_suffix('s'))
        .expect("Program consumes: X.XXXXXXs")
        .parse()
        .unwrap();
    let decimals = last.split('.').nth(1).unwrap().trim_end_matches('s');
    assert_eq!(decimals.len(), 6, "Python's %f prints six decimals");
    assert!(
        elapsed >= unit * 3,
        "three sleeps of up to 3 units: {elapsed:?}"
    );
    assert!(
        elapsed < unit * 6,
        "the sleeps ran one after another, not concurrently: {elapsed:?}"
    );
    assert!((secs - elapsed.as_secs_f64()).abs() < 0.001);
}

#[test]
fn kettle_run_cancels_tasks_left_pending() {
    let (guard, dropped) = drop_flag();
    let leftover: Rc<RefCell<Option<Task<()>>>> = Rc::new(RefCell::new(None));
    let l = leftover.clone();
    kettle::run(async move {
        *l.borrow_mut() = Some(kettle::spawn(async move {
            let _guard = guard;
            kettle::sleep(HOUR).await;
        }));
        kettle::yield_now().await;
    });
    assert!(dropped.get(), "the pending task's future was dropped");
    let t = leftover.borrow_mut().take().unwrap();
    assert!(t.done());
    assert!(t.cancelled());
}

/// A million tiny tasks, spawned and awaited in batches, twice. Afterwards no task is left,
/// and the second million reuses the first million's memory instead of growing the process.
#[test]
fn a_million_tasks_leave_nothing_behind() {
    const TOTAL: usize = 1_000_000;
    const BATCH: usize = 100_000;
    const MARGIN: usize = 64 << 20;

    fn round(lp: &EventLoop) -> u64 {
        lp.run_until_complete(async {
            let mut sum = 0u64;
            let mut handles = Vec::with_capacity(BATCH);
            for _ in 0..TOTAL / BATCH {
                for i in 0..BATCH as u64 {
                    handles.push(kettle::spawn(async move {
                        if i % 2 == 0 {
                            kettle::yield_now().await;
                        }
                        i
                    }));
                }
                for h in handles.drain(..) {
                    sum += h.await.unwrap();
                }
            }
            sum
        })
    }

    let lp = new_loop();
    let expected = (TOTAL / BATCH) as u64 * (BATCH as u64 * (BATCH as u64 - 1) / 2);
    let t0 = Instant::now();
    assert_eq!(round(&lp), expected);
    assert_eq!(lp.task_count(), 0);
    let rss_first = rss_bytes();

    assert_eq!(round(&lp), expected);
    assert_eq!(lp.task_count(), 0);
    let rss_second = rss_bytes();
    assert!(
        rss_second <= rss_first + MARGIN,
        "RSS grew from {} MB to {} MB over the second million tasks",
        rss_first >> 20,
        rss_second >> 20
    );
    assert!(kettle::all_tasks().is_empty());
    eprintln!(
        "2M tasks in {:?}; RSS {} MB -> {} MB",
        t0.elapsed(),
        rss_first >> 20,
        rss_second >> 20
    );
}

/// asyncio: a task that cancels itself and then returns without awaiting anything still ends
/// cancelled (`Task.__step` sees `_must_cancel` when the coroutine stops). Kettle documents
/// the same: after `cancel()` returned true, "awaiting the task then yields a Cancelled
/// error".
#[test]
fn self_cancel_then_return_without_suspending_ends_cancelled() {
    kettle::run(async {
        let t = kettle::spawn(async {
            assert!(kettle::current_task().unwrap().cancel());
            "returned anyway"
        });
        let t_ref = t.task_ref();
        let out = t.await;
        assert!(
            out.as_ref().is_err_and(|e| e.is_cancelled()),
            "cancel() returned true, yet the task finished with {out:?}"
        );
        assert!(t_ref.cancelled());
    });
}

#[test]
fn result_and_error_of_a_cancelled_task() {
    kettle::run(async {
        let t = kettle::spawn(kettle::sleep(HOUR));
        kettle::yield_now().await;
        t.cancel();
        yield_until(|| t.done()).await;
        assert!(t.result().unwrap_err().is_cancelled());
        assert!(t.error().unwrap().is_cancelled());
        assert!(format!("{:?}", t.task_ref()).contains("cancelled"));
    });
}

/// A future whose destructor panics while it is being cancelled: the task still ends
/// cancelled and the loop carries on.
#[test]
fn a_destructor_panicking_during_cancellation_is_contained() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("drop boom");
            }
        }
    }
    kettle::run(async {
        let t = kettle::spawn(async {
            let _p = PanicOnDrop;
            kettle::sleep(HOUR).await;
        });
        kettle::yield_now().await;
        assert!(t.cancel());
        let err = t.await.unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(kettle::spawn(async { 2 }).await.unwrap(), 2);
    });
}

#[test]
fn current_task_is_none_inside_callbacks() {
    kettle::run(async {
        let seen = Rc::new(Cell::new(Some(true)));
        let s = seen.clone();
        kettle::get_running_loop().call_soon(move || s.set(Some(kettle::current_task().is_some())));
        let t = kettle::spawn(async {});
        let s = seen.clone();
        let inner_seen = Rc::new(Cell::new(true));
        let is = inner_seen.clone();
        t.add_done_callback(move |_| is.set(kettle::current_task().is_some()));
        kettle::yield_now().await;
        yield_until(|| t.done()).await;
        kettle::yield_now().await;
        assert_eq!(s.get(), Some(false), "call_soon callbacks are not tasks");
        assert!(!inner_seen.get(), "done-callbacks are not tasks");
    });
}

/// A hand-made future that parks its waker in a shared slot, to be woken from elsewhere.
struct Parked {
    slot: Rc<RefCell<Option<std::task::Waker>>>,
    ready: Rc<Cell<bool>>,
}

impl std::future::Future for Parked {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.ready.get() {
            return std::task::Poll::Ready(());
        }
        *self.slot.borrow_mut() = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}

#[test]
fn waking_a_task_of_another_loop_on_the_same_thread() {
    let a = new_loop();
    let b = new_loop();
    let slot = Rc::new(RefCell::new(None));
    let ready = Rc::new(Cell::new(false));
    let t = a.create_task(Parked {
        slot: slot.clone(),
        ready: ready.clone(),
    });
    let r = t.task_ref();
    // Let the task park.
    a.run_until_complete(kettle::yield_now());
    assert!(slot.borrow().is_some());
    assert!(!r.done());

    // Wake it while loop B runs on this thread.
    let (s, rd) = (slot.clone(), ready.clone());
    b.run_until_complete(async move {
        rd.set(true);
        s.borrow_mut().take().unwrap().wake();
    });
    // Loop A must find the wake when it runs again: blocking until then would hang, so give
    // it a bounded budget.
    let done = a.run_until_complete(kettle::wait_for(t, Duration::from_secs(2)));
    assert!(done.is_ok(), "the wake from loop B's context was lost");
}

#[test]
fn waking_a_task_while_no_loop_runs() {
    let lp = new_loop();
    let slot = Rc::new(RefCell::new(None));
    let ready = Rc::new(Cell::new(false));
    let t = lp.create_task(Parked {
        slot: slot.clone(),
        ready: ready.clone(),
    });
    lp.run_until_complete(kettle::yield_now());
    assert!(slot.borrow().is_some());
    ready.set(true);
    slot.borrow_mut().take().unwrap().wake();
    let done = lp.run_until_complete(kettle::wait_for(t, Duration::from_secs(2)));
    assert!(done.is_ok(), "a wake issued between runs was lost");
}

#[test]
fn a_panicking_done_callback_does_not_stop_the_others() {
    kettle::run(async {
        let ran = Rc::new(Cell::new(0u32));
        let t = kettle::spawn(async { 1 });
        t.add_done_callback(|_| panic!("done-callback boom"));
        let r = ran.clone();
        t.add_done_callback(move |_| r.set(r.get() + 1));
        yield_until(|| t.done()).await;
        kettle::yield_now().await;
        assert_eq!(ran.get(), 1);
        assert_eq!(t.await.unwrap(), 1);
    });
}
