//! Green threads (`kettle::green`), through the public API: mixing with async tasks on one
//! loop in both directions (async awaits a green thread; green code waits for a task, a
//! sleep, a queue), spawn order, `green::sleep` interleaving, killing (while sleeping, while
//! waiting on a future that never completes, while blocked in socket I/O, before start, by
//! itself) with destructors running and joiners seeing `Cancelled`, panics becoming
//! `Panicked`, the clear panics of green calls made outside a green thread (or from a
//! generator or greenlet inside one), closing or dropping a loop with suspended green threads,
//! `Builder` names and stack sizes, `Display`, 100,000 concurrent sleepers giving their
//! stacks back, `run_in_executor` / `wait_for` through `green::wait`, and kills while the
//! thread is panicking or a destructor waits (`getcurrent` and `wait` in destructors).

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kettle::generator::Generator;
use kettle::green::{self, GreenThread};
use kettle::greenlet::Greenlet;
use kettle::sync::{Event, Queue};
use kettle::{ErrorKind, EventLoop};

/// Far longer than any test runs: a wait this long only ends by being killed.
const HOUR: Duration = Duration::from_secs(3600);

/// Generous bound for things that should take a few milliseconds.
const LATE: Duration = Duration::from_secs(5);

/// An ordered record of events, shared between a test, its tasks and its green threads.
type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, event: impl Into<String>) {
    log.borrow_mut().push(event.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

/// Records `dropped <name>` when destroyed: proves a killed green thread's stack unwound.
struct Guard {
    name: &'static str,
    log: Log,
}

impl Guard {
    fn new(name: &'static str, log: &Log) -> Guard {
        Guard {
            name,
            log: log.clone(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        push(&self.log, format!("dropped {}", self.name));
    }
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `f`, expecting a panic whose message contains `needle`.
fn expect_panic<R>(needle: &str, f: impl FnOnce() -> R) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic mentioning {needle:?}"),
        Err(p) => {
            let text = panic_text(&*p);
            assert!(
                text.contains(needle),
                "panic {text:?} does not mention {needle:?}"
            );
        }
    }
}

/// Lets every other ready green thread and task run a few times (from green code).
fn settle() {
    for _ in 0..10 {
        green::yield_now();
    }
}

// ---------------------------------------------------------------------------------------
// Green threads and async tasks on one loop
// ---------------------------------------------------------------------------------------

#[test]
fn async_code_awaits_a_green_thread() {
    let events = log();
    let ev = events.clone();
    let value = kettle::run(async move {
        let ev2 = ev.clone();
        let g = green::spawn(move || {
            push(&ev2, "green starts");
            green::sleep(Duration::from_millis(10));
            push(&ev2, "green ends");
            7
        });
        push(&ev, "async spawned it");
        let v = g.await.unwrap();
        push(&ev, "async resumed");
        v
    });
    assert_eq!(value, 7);
    assert_eq!(
        entries(&events),
        [
            "async spawned it",
            "green starts",
            "green ends",
            "async resumed"
        ]
    );
}

#[test]
fn green_code_waits_for_an_async_task_and_a_kettle_sleep() {
    let events = log();
    let ev = events.clone();
    let value = green::run(move || {
        let ev2 = ev.clone();
        let task = kettle::spawn(async move {
            push(&ev2, "task starts");
            kettle::sleep(Duration::from_millis(10)).await;
            push(&ev2, "task ends");
            35
        });
        push(&ev, "green spawned the task");
        let v = green::wait(task).unwrap();
        push(&ev, "green resumed");
        // Any future, not only tasks: here a plain kettle sleep.
        let start = Instant::now();
        green::wait(kettle::sleep(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
        push(&ev, "slept");
        v + 7
    })
    .unwrap();
    assert_eq!(value, 42);
    assert_eq!(
        entries(&events),
        [
            "green spawned the task",
            "task starts",
            "task ends",
            "green resumed",
            "slept"
        ]
    );
}

#[test]
fn a_kettle_queue_connects_green_and_async_code_both_ways() {
    let events = log();
    let ev = events.clone();
    kettle::run(async move {
        let to_green: Queue<u32> = Queue::new(1);
        let to_async: Queue<u32> = Queue::new(1);
        let (inbox, outbox) = (to_green.clone(), to_async.clone());
        let ev2 = ev.clone();
        // The green side: takes a number, answers with its square, until 0.
        let worker = green::spawn(move || loop {
            let n = green::wait(inbox.get());
            push(&ev2, format!("green got {n}"));
            if n == 0 {
                return "worker done";
            }
            green::wait(outbox.put(n * n));
        });
        for n in 1..=3 {
            to_green.put(n).await;
            push(&ev, format!("async sent {n}"));
            let sq = to_async.get().await;
            push(&ev, format!("async got {sq}"));
        }
        to_green.put(0).await;
        assert_eq!(worker.await.unwrap(), "worker done");
    });
    assert_eq!(
        entries(&events),
        [
            "async sent 1",
            "green got 1",
            "async got 1",
            "async sent 2",
            "green got 2",
            "async got 4",
            "async sent 3",
            "green got 3",
            "async got 9",
            "green got 0",
        ]
    );
}

#[test]
fn green_threads_and_tasks_take_turns_on_one_loop() {
    // Each side yields to the loop after every step, so they alternate strictly.
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let ev2 = ev.clone();
        let task = kettle::spawn(async move {
            for i in 0..3 {
                push(&ev2, format!("task {i}"));
                kettle::yield_now().await;
            }
        });
        for i in 0..3 {
            push(&ev, format!("green {i}"));
            green::yield_now();
        }
        green::wait(task).unwrap();
    })
    .unwrap();
    assert_eq!(
        entries(&events),
        ["green 0", "task 0", "green 1", "task 1", "green 2", "task 2"]
    );
}

// ---------------------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------------------

#[test]
fn green_threads_run_in_spawn_order_and_not_inside_spawn() {
    let events = log();
    let ev = events.clone();
    let results = green::run(move || {
        let threads: Vec<_> = (0..5)
            .map(|i| {
                let ev = ev.clone();
                green::spawn(move || {
                    push(&ev, format!("ran {i}"));
                    i * 10
                })
            })
            .collect();
        assert!(entries(&ev).is_empty(), "spawn must not switch");
        green::joinall(threads)
    })
    .unwrap();
    let values: Vec<u32> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(values, [0, 10, 20, 30, 40]);
    assert_eq!(
        entries(&events),
        ["ran 0", "ran 1", "ran 2", "ran 3", "ran 4"]
    );
}

#[test]
fn green_sleepers_overlap() {
    let elapsed = green::run(|| {
        let start = Instant::now();
        let threads: Vec<_> = (0..3)
            .map(|i| {
                green::spawn(move || {
                    green::sleep(Duration::from_millis(100));
                    i
                })
            })
            .collect();
        let sum: u32 = green::joinall(threads)
            .into_iter()
            .map(|r| r.unwrap())
            .sum();
        assert_eq!(sum, 3);
        start.elapsed()
    })
    .unwrap();
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(280),
        "{elapsed:?}: sleeps must overlap"
    );
}

#[test]
fn sleeping_green_threads_interleave() {
    // gevent's classic: each prints, then sleeps; the prints interleave round by round.
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let threads: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let ev = ev.clone();
                green::spawn(move || {
                    for i in 0..3 {
                        push(&ev, format!("{name}{i}"));
                        green::sleep(Duration::from_millis(20));
                    }
                })
            })
            .collect();
        for r in green::joinall(threads) {
            r.unwrap();
        }
    })
    .unwrap();
    assert_eq!(
        entries(&events),
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    );
}

#[test]
fn sleep_zero_lets_other_green_threads_run() {
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let ev2 = ev.clone();
        let other = green::spawn(move || push(&ev2, "other"));
        push(&ev, "before");
        green::sleep(Duration::ZERO);
        push(&ev, "after");
        other.join().unwrap();
    })
    .unwrap();
    assert_eq!(entries(&events), ["before", "other", "after"]);
}

// ---------------------------------------------------------------------------------------
// Killing
// ---------------------------------------------------------------------------------------

/// Spawns `body` with a guard on its stack, lets it start and block, kills it, and checks
/// that its destructors ran, the code after the blocking call did not, and a joiner sees
/// `Cancelled`.
fn kill_while_blocked(body: impl FnOnce() + 'static) {
    let events = log();
    let ev = events.clone();
    let start = Instant::now();
    green::run(move || {
        let stacks_before = green::pool_stats().in_use;
        let ev2 = ev.clone();
        let victim = green::spawn(move || {
            let _g = Guard::new("victim", &ev2);
            push(&ev2, "blocking");
            body();
            push(&ev2, "unreachable: the blocking call returned");
        });
        settle();
        assert_eq!(entries(&ev), ["blocking"]);
        assert!(!victim.dead());
        assert!(victim.kill(), "kill of a live green thread returns true");
        let err = victim.join().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(err.is_cancelled());
        assert_eq!(
            green::pool_stats().in_use,
            stacks_before,
            "the killed green thread's stack went back to the pool"
        );
    })
    .unwrap();
    assert_eq!(entries(&events), ["blocking", "dropped victim"]);
    assert!(start.elapsed() < LATE);
}

#[test]
fn kill_while_blocked_in_green_sleep() {
    kill_while_blocked(|| green::sleep(HOUR));
}

#[test]
fn kill_while_waiting_on_an_event_that_is_never_set() {
    kill_while_blocked(|| {
        let event = Event::new();
        green::wait(event.wait());
    });
}

#[test]
fn kill_while_waiting_on_a_oneshot_that_never_fires() {
    kill_while_blocked(|| {
        let (tx, rx) = kettle::sync::oneshot::channel::<u32>();
        let _keep_sender = tx;
        let _ = green::wait(rx);
    });
}

#[test]
fn kill_while_blocked_in_a_kettle_net_read_through_wait() {
    let events = log();
    let ev = events.clone();
    green::run(move || {
        // The server side is Kettle's async socket, used from green code through wait().
        let listener = kettle::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = green::net::TcpStream::connect(addr).unwrap();
        let (server, _) = green::wait(listener.accept()).unwrap();
        let ev2 = ev.clone();
        let reader = green::spawn(move || {
            let _g = Guard::new("reader", &ev2);
            let mut buf = [0u8; 16];
            let n = green::wait(server.read(&mut buf)).unwrap();
            push(
                &ev2,
                format!("read {:?}", std::str::from_utf8(&buf[..n]).unwrap()),
            );
            let n = green::wait(server.read(&mut buf)).unwrap();
            push(&ev2, format!("unreachable: read {n} more"));
        });
        client.write_all(b"ping").unwrap();
        // Let the reader get the bytes and block on its second read.
        for _ in 0..1000 {
            if entries(&ev).len() == 1 {
                break;
            }
            green::sleep(Duration::from_millis(1));
        }
        settle();
        assert_eq!(entries(&ev), [r#"read "ping""#]);
        assert!(reader.kill());
        assert_eq!(reader.join().unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(entries(&ev), [r#"read "ping""#, "dropped reader"]);
        // The killed thread's socket went away with its stack: the peer sees end of file.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    })
    .unwrap();
    assert_eq!(entries(&events).len(), 2);
}

#[test]
fn kill_while_blocked_in_a_green_net_read() {
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = green::net::TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let ev2 = ev.clone();
        let reader = green::spawn(move || {
            let _g = Guard::new("reader", &ev2);
            let mut buf = [0u8; 16];
            let n = server.read(&mut buf).unwrap();
            push(
                &ev2,
                format!("read {:?}", std::str::from_utf8(&buf[..n]).unwrap()),
            );
            let n = server.read(&mut buf).unwrap();
            push(&ev2, format!("unreachable: read {n} more"));
        });
        client.write_all(b"hello").unwrap();
        for _ in 0..1000 {
            if entries(&ev).len() == 1 {
                break;
            }
            green::sleep(Duration::from_millis(1));
        }
        settle();
        assert_eq!(entries(&ev), [r#"read "hello""#]);
        assert!(reader.kill());
        assert_eq!(reader.join().unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(entries(&ev), [r#"read "hello""#, "dropped reader"]);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the killed reader's socket is closed");
    })
    .unwrap();
    assert_eq!(entries(&events).len(), 2);
}

#[test]
fn a_green_thread_killed_before_it_starts_never_runs() {
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let captured = Guard::new("capture", &ev);
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let g = green::spawn(move || {
            let _keep = &captured;
            r.set(true);
        });
        assert!(g.kill());
        assert_eq!(g.join().unwrap_err().kind(), ErrorKind::Cancelled);
        assert!(!ran.get());
    })
    .unwrap();
    assert_eq!(entries(&events), ["dropped capture"]);
}

#[test]
fn kill_after_finishing_returns_false() {
    green::run(|| {
        let g = green::spawn(|| 5);
        settle();
        assert!(g.dead());
        assert!(!g.kill());
        assert_eq!(g.join().unwrap(), 5);
    })
    .unwrap();
}

#[test]
fn a_green_thread_that_kills_itself_unwinds_at_its_next_switch() {
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let ev2 = ev.clone();
        let g = green::spawn(move || {
            let _g = Guard::new("self-killer", &ev2);
            assert!(green::getcurrent().kill());
            // Killing does not unwind here and now; the next switch does.
            push(&ev2, "still running after kill");
            green::sleep(Duration::from_millis(10));
            push(&ev2, "unreachable: after the switch");
        });
        assert_eq!(g.join().unwrap_err().kind(), ErrorKind::Cancelled);
    })
    .unwrap();
    assert_eq!(
        entries(&events),
        ["still running after kill", "dropped self-killer"]
    );
}

#[test]
fn joiners_of_a_killed_green_thread_from_async_code_see_cancelled() {
    let events = log();
    let ev = events.clone();
    kettle::run(async move {
        let ev2 = ev.clone();
        let g = green::spawn(move || {
            let _g = Guard::new("victim", &ev2);
            green::sleep(HOUR);
        });
        kettle::sleep(Duration::from_millis(5)).await;
        assert!(g.kill());
        let err = g.await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
    });
    assert_eq!(entries(&events), ["dropped victim"]);
}

// ---------------------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------------------

#[test]
fn a_panicking_green_thread_gives_panicked_and_the_others_go_on() {
    let events = log();
    let ev = events.clone();
    let results = green::run(move || {
        let ev2 = ev.clone();
        let bad = green::spawn(move || -> u32 {
            let _g = Guard::new("panicker", &ev2);
            green::sleep(Duration::from_millis(5));
            panic!("green boom");
        });
        let ev3 = ev.clone();
        let good = green::spawn(move || {
            green::sleep(Duration::from_millis(20));
            push(&ev3, "good finished");
            2
        });
        green::joinall([bad, good])
    })
    .unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.message().unwrap().contains("green boom"), "{err:?}");
    assert_eq!(*results[1].as_ref().unwrap(), 2);
    assert_eq!(entries(&events), ["dropped panicker", "good finished"]);
}

#[test]
fn a_panic_in_the_main_green_thread_is_an_error_from_run() {
    let err = green::run(|| -> u32 { panic!("main green boom") }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.message().unwrap().contains("main green boom"));
}

// ---------------------------------------------------------------------------------------
// Green calls from the wrong place
// ---------------------------------------------------------------------------------------

#[test]
fn green_calls_outside_a_green_thread_panic_naming_the_function() {
    assert!(!green::is_green());
    expect_panic("kettle::green::sleep", || {
        green::sleep(Duration::from_millis(1))
    });
    expect_panic("kettle::green::sleep", || green::sleep(Duration::ZERO));
    expect_panic("kettle::green::wait", || green::wait(async { 1 }));
    expect_panic("kettle::green::getcurrent", green::getcurrent);
    expect_panic("kettle::green::yield_now", green::yield_now);
    expect_panic("kettle::green::joinall", || {
        green::joinall(Vec::<GreenThread<()>>::new())
    });
    // From async code on a running loop it is just as wrong.
    kettle::run(async {
        assert!(!green::is_green());
        expect_panic("kettle::green::wait", || green::wait(async { 1 }));
        expect_panic("kettle::green::getcurrent", green::getcurrent);
        let g = green::spawn(|| 1);
        expect_panic("kettle::green::joinall", || green::joinall([g]));
        let g = green::spawn(|| 1);
        expect_panic("kettle::green::GreenThread::join", || g.join());
    });
}

#[test]
fn green_calls_from_a_generator_inside_a_green_thread_panic_clearly() {
    green::run(|| {
        assert!(green::is_green());
        let mut g: Generator<(), bool, ()> = Generator::new(|co, ()| {
            co.suspend(green::is_green());
            green::sleep(Duration::from_millis(1));
        });
        // `is_green` is false on the generator's stack: green calls do not work there.
        assert_eq!(
            g.send(()).unwrap(),
            kettle::generator::GeneratorState::Yielded(false)
        );
        expect_panic(
            "kettle::green::sleep called from a generator or greenlet running inside a green \
             thread",
            || g.send(()),
        );
        let mut g: Generator<(), (), ()> = Generator::new(|_co, ()| {
            green::wait(async {});
        });
        expect_panic("kettle::green::wait called from a generator", || g.send(()));
        // The green thread itself is unharmed and can still suspend.
        green::sleep(Duration::from_millis(1));
    })
    .unwrap();
}

#[test]
fn green_calls_from_a_greenlet_inside_a_green_thread_panic_clearly() {
    let text = green::run(|| {
        // A green thread may run greenlets, but they switch synchronously: they cannot
        // suspend the green thread.
        let gr = Greenlet::new(|_: String| -> String {
            assert!(!green::is_green());
            match catch_unwind(green::getcurrent) {
                Ok(_) => "no panic".into(),
                Err(p) => panic_text(&*p),
            }
        });
        let text = gr.switch(String::new()).unwrap();
        green::sleep(Duration::from_millis(1)); // the green thread itself still can
        text
    })
    .unwrap();
    assert!(
        text.contains("kettle::green::getcurrent called from a generator or greenlet"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Closing the loop
// ---------------------------------------------------------------------------------------

/// Starts, on `lp`, green threads blocked in a sleep, on an event, and one not started yet,
/// each with a guard; returns once they are blocked.
fn park_green_threads(lp: &EventLoop, events: &Log) {
    let ev = events.clone();
    lp.run_until_complete(async move {
        let ev1 = ev.clone();
        let _sleeper = green::spawn(move || {
            let _g = Guard::new("sleeper", &ev1);
            green::sleep(HOUR);
        });
        let ev2 = ev.clone();
        let _waiter = green::spawn(move || {
            let _g = Guard::new("waiter", &ev2);
            let never = Event::new();
            green::wait(never.wait());
        });
        // Let both start and block; the handles are dropped (detached) here.
        kettle::sleep(Duration::from_millis(5)).await;
    });
    // One more that never starts: a task that runs in the loop's last pass spawns it, after
    // that pass was counted (run_until_complete still runs what the main future scheduled
    // just before finishing, but not what that schedules in turn).
    let ev3 = events.clone();
    lp.run_until_complete(async move {
        drop(kettle::spawn(async move {
            let captured = Guard::new("unstarted", &ev3);
            let ev4 = ev3.clone();
            drop(green::spawn(move || {
                let _keep = &captured;
                push(&ev4, "unreachable: the unstarted one ran");
            }));
        }));
    });
    assert!(entries(events).is_empty(), "{:?}", entries(events));
}

#[test]
fn closing_a_loop_unwinds_its_suspended_green_threads() {
    let events = log();
    let lp = EventLoop::new().unwrap();
    park_green_threads(&lp, &events);
    lp.close().unwrap();
    let mut got = entries(&events);
    got.sort();
    assert_eq!(
        got,
        ["dropped sleeper", "dropped unstarted", "dropped waiter"]
    );
    // Closing twice, then dropping, runs nothing again.
    lp.close().unwrap();
    drop(lp);
    assert_eq!(entries(&events).len(), 3);
    assert_eq!(green::pool_stats().in_use, 0);
}

#[test]
fn dropping_a_loop_unwinds_its_suspended_green_threads() {
    let events = log();
    let lp = EventLoop::new().unwrap();
    park_green_threads(&lp, &events);
    drop(lp);
    let mut got = entries(&events);
    got.sort();
    assert_eq!(
        got,
        ["dropped sleeper", "dropped unstarted", "dropped waiter"]
    );
    assert_eq!(green::pool_stats().in_use, 0);
}

#[test]
fn a_detached_green_thread_is_killed_when_run_returns() {
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let ev2 = ev.clone();
        // Not joined: still sleeping when the main green thread returns.
        drop(green::spawn(move || {
            let _g = Guard::new("detached", &ev2);
            green::sleep(HOUR);
        }));
        settle();
    })
    .unwrap();
    assert_eq!(entries(&events), ["dropped detached"]);
}

/// Records the name of the green thread it is dropped on: destructors asking who they run on.
struct NameOnDrop(Log);

impl Drop for NameOnDrop {
    fn drop(&mut self) {
        push(
            &self.0,
            format!("dropped on {}", green::getcurrent().name()),
        );
    }
}

#[test]
fn getcurrent_works_in_destructors_of_killed_green_threads() {
    // Killed by kill(): the loop is running.
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let ev2 = ev.clone();
        let g = green::Builder::new().name("killed").spawn(move || {
            let _n = NameOnDrop(ev2);
            green::sleep(HOUR);
        });
        settle();
        g.kill();
        assert!(g.join().unwrap_err().is_cancelled());
    })
    .unwrap();
    // Killed by closing the loop: no task is current then.
    let ev = events.clone();
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async move {
        drop(green::Builder::new().name("closed").spawn(move || {
            let _n = NameOnDrop(ev);
            green::sleep(HOUR);
        }));
        kettle::sleep(Duration::from_millis(5)).await;
    });
    lp.close().unwrap();
    assert_eq!(entries(&events), ["dropped on killed", "dropped on closed"]);
}

#[test]
fn a_finished_detached_green_thread_is_freed() {
    // Dropping the handle detaches; once it finishes, nothing may keep its task (and so its
    // result) alive.
    green::run(|| {
        let marker = Rc::new(());
        let m = marker.clone();
        drop(green::spawn(move || {
            green::yield_now();
            m
        }));
        settle();
        // Checked while the loop still runs (closing it would free everything anyway).
        assert_eq!(Rc::strong_count(&marker), 1);
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Builder, names, Display
// ---------------------------------------------------------------------------------------

#[test]
fn builder_name_shows_in_name_display_and_getcurrent() {
    green::run(|| {
        let g = green::Builder::new().name("worker-7").spawn(|| {
            let me = green::getcurrent();
            (me.name(), me.to_string(), me.id())
        });
        assert_eq!(g.name(), "worker-7");
        let shown = g.to_string();
        assert!(shown.starts_with("<Greenlet at 0x"), "{shown}");
        assert!(shown.ends_with(": worker-7>"), "{shown}");
        assert_eq!(format!("{g:?}"), shown);
        let id = g.id();
        let (inner_name, inner_shown, inner_id) = g.join().unwrap();
        assert_eq!(inner_name, "worker-7");
        assert_eq!(
            inner_shown, shown,
            "getcurrent() shows the same green thread"
        );
        assert_eq!(inner_id, id);

        // Without a name: Greenlet-<id>, and renaming works from either side.
        let g = green::spawn(|| {
            green::getcurrent().set_name("renamed inside");
            green::getcurrent().name()
        });
        assert_eq!(g.name(), format!("Greenlet-{}", g.id()));
        assert!(g.to_string().contains(&format!(": Greenlet-{}>", g.id())));
        g.set_name("renamed outside");
        assert_eq!(g.name(), "renamed outside");
        assert_eq!(g.join().unwrap(), "renamed inside");
    })
    .unwrap();
}

#[test]
fn builder_stack_size_gives_room_for_deep_recursion() {
    fn depth(n: u32) -> u32 {
        let frame = std::hint::black_box([n as u8; 1024]);
        if n == 0 {
            u32::from(frame[0])
        } else {
            1 + depth(n - 1) + u32::from(frame[1]) - u32::from(n as u8)
        }
    }
    let got = green::run(|| {
        // Several MiB of frames: far beyond the 256 KiB default.
        let g = green::Builder::new()
            .name("deep")
            .stack_size(32 * 1024 * 1024)
            .spawn(|| {
                green::yield_now(); // a switch with the deep stack in use, too
                depth(4_000)
            });
        g.join().unwrap()
    })
    .unwrap();
    assert_eq!(got, 4_000);
}

#[test]
fn a_tiny_stack_size_still_runs_small_green_threads() {
    let got = green::run(|| {
        green::Builder::new()
            .stack_size(16 * 1024)
            .spawn(|| {
                green::sleep(Duration::from_millis(1));
                1 + 1
            })
            .join()
            .unwrap()
    })
    .unwrap();
    assert_eq!(got, 2);
}

#[test]
fn a_green_thread_whose_stack_cannot_be_had_finishes_with_an_error() {
    green::run(|| {
        let g = green::Builder::new()
            .name("greedy")
            .stack_size(usize::MAX)
            .spawn(|| "unreachable");
        let err = g.join().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other);
        assert!(err.to_string().contains("too large"), "{err}");
        // The loop and the other green threads are unaffected.
        assert_eq!(green::spawn(|| 3).join().unwrap(), 3);
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------------------

#[test]
fn a_hundred_thousand_sleeping_green_threads_all_finish_and_give_back_their_stacks() {
    const N: u64 = 100_000;
    let before = green::pool_stats();
    let start = Instant::now();
    let sum = green::run(|| {
        // A small xorshift: reproducible "random" sleeps of 0-200 ms.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let threads: Vec<_> = (0..N)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let ms = state % 201;
                green::spawn(move || {
                    green::sleep(Duration::from_millis(ms));
                    i
                })
            })
            .collect();
        green::sleep(Duration::from_millis(1));
        // Guard regions do not split mappings (Linux 6.13+): 100,000 stacks stay far below
        // the default vm.max_map_count of 65,530.
        if !green::guards_split_mappings() {
            let maps = std::fs::read_to_string("/proc/self/maps")
                .unwrap()
                .lines()
                .count();
            assert!(maps < 10_000, "{maps} mappings with 100,000 green threads");
        }
        green::joinall(threads)
            .into_iter()
            .map(|r| r.unwrap())
            .sum::<u64>()
    })
    .unwrap();
    assert_eq!(sum, N * (N - 1) / 2);
    let after = green::pool_stats();
    assert!(
        after.warm <= 1_024,
        "free stacks beyond 1,024 gave their memory back: {after:?}"
    );
    assert_eq!(
        after.in_use, before.in_use,
        "every stack went back to the pool"
    );
    assert_eq!(
        after.free,
        after.slabs * 64,
        "all stacks are on the free lists"
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Other async APIs through green::wait
// ---------------------------------------------------------------------------------------

#[test]
fn run_in_executor_through_wait_lets_other_green_threads_run() {
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let (value, ticks_during) = green::run(move || {
        let t2 = t.clone();
        let ticker = green::spawn(move || {
            for _ in 0..1_000 {
                t2.set(t2.get() + 1);
                green::sleep(Duration::from_millis(2));
            }
        });
        let v = green::wait(kettle::run_in_executor(|| {
            std::thread::sleep(Duration::from_millis(100)); // blocks a pool thread, not the loop
            6 * 7
        }))
        .unwrap();
        let during = t.get();
        ticker.kill();
        (v, during)
    })
    .unwrap();
    assert_eq!(value, 42);
    assert!(
        ticks_during >= 3,
        "only {ticks_during} ticks while the executor job ran"
    );
}

#[test]
fn wait_for_times_out_through_wait() {
    green::run(|| {
        let start = Instant::now();
        let err = green::wait(kettle::wait_for(
            kettle::sleep(HOUR),
            Duration::from_millis(20),
        ))
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(start.elapsed() < LATE);

        // A green thread as the awaited future: the timeout fires, the thread runs on (a
        // dropped handle detaches; closing the loop at the end of run() kills it).
        let slow = green::spawn(|| {
            green::sleep(Duration::from_secs(1));
            "slow done"
        });
        let task_ref = slow.task_ref();
        let err = green::wait(kettle::wait_for(slow, Duration::from_millis(10))).unwrap_err();
        assert!(err.is_timeout());
        assert!(!task_ref.done());

        // In time: the value comes through.
        let fast = green::spawn(|| 5);
        let v = green::wait(kettle::wait_for(fast, Duration::from_secs(10)));
        assert_eq!(v.unwrap().unwrap(), 5);
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Killing while something is unwinding, and destructors that wait
// ---------------------------------------------------------------------------------------

#[test]
fn a_loop_dropped_while_its_owner_panics_still_unwinds_its_green_threads() {
    // The loop is dropped by a panic unwinding past it: the thread is panicking while the
    // green threads are killed, which must not change how they are killed.
    let events = log();
    let ev = events.clone();
    let outcome = catch_unwind(AssertUnwindSafe(move || {
        let lp = EventLoop::new().unwrap();
        park_green_threads(&lp, &ev);
        panic!("the loop's owner panics");
    }));
    assert_eq!(
        panic_text(&*outcome.unwrap_err()),
        "the loop's owner panics"
    );
    let mut got = entries(&events);
    got.sort();
    assert_eq!(
        got,
        ["dropped sleeper", "dropped unstarted", "dropped waiter"]
    );
    assert_eq!(
        green::pool_stats().in_use,
        0,
        "no green thread's stack was leaked"
    );
}

/// Waits (suspending its green thread) when dropped: a destructor that does I/O or sleeps.
struct SlowDrop(Log);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        green::sleep(Duration::from_millis(30));
        push(&self.0, "slow drop done");
    }
}

#[test]
fn a_kill_is_not_confused_by_another_green_thread_unwinding_a_panic() {
    // g1 panics and, while unwinding, waits in a destructor: the loop thread counts as
    // panicking meanwhile. Killing g2 in that window must still unwind g2.
    let events = log();
    let ev = events.clone();
    green::run(move || {
        let ev1 = ev.clone();
        let g1 = green::spawn(move || {
            let _slow = SlowDrop(ev1);
            panic!("g1 fails");
        });
        let ev2 = ev.clone();
        let g2 = green::spawn(move || {
            let _g = Guard::new("g2", &ev2);
            green::sleep(HOUR);
        });
        green::sleep(Duration::from_millis(5)); // g1 is now in its slow destructor
        assert!(entries(&ev).is_empty());
        assert!(g2.kill());
        assert_eq!(g2.join().unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(entries(&ev), ["dropped g2"]);
        let err = g1.join().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert!(err.message().unwrap().contains("g1 fails"));
    })
    .unwrap();
    assert_eq!(entries(&events), ["dropped g2", "slow drop done"]);
    assert_eq!(green::pool_stats().in_use, 0);
}

#[test]
fn closing_a_loop_while_a_killed_green_threads_destructor_waits_does_not_abort() {
    // Killing by closing the loop unwinds the green thread; its destructor then waits (a
    // sleep), which cannot complete on a closed loop. That green thread's stack is given up
    // (leaked, with a warning), but the process must go on.
    let events = log();
    let ev = events.clone();
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async move {
        drop(green::spawn(move || {
            let _slow = SlowDrop(ev.clone());
            let _g = Guard::new("inner", &ev);
            green::sleep(HOUR);
        }));
        kettle::sleep(Duration::from_millis(5)).await;
    });
    lp.close().unwrap();
    // The guard below the waiting destructor ran; the destructor itself never finished.
    assert_eq!(entries(&events), ["dropped inner"]);
}

#[test]
fn green_code_uses_asyncio_streams_through_wait() {
    let reply = green::run(|| {
        let server = green::wait(kettle::start_server(
            |mut reader: kettle::net::StreamReader, writer: kettle::net::StreamWriter| async move {
                let line = reader.readline().await.unwrap();
                writer.write(&line.to_ascii_uppercase());
                writer.drain().await.unwrap();
                writer.close();
            },
            "127.0.0.1",
            0,
        ))
        .unwrap();
        let port: u16 = server.sockets()[0]
            .to_string()
            .rsplit_once(':')
            .unwrap()
            .1
            .parse()
            .unwrap();
        let (mut reader, writer) = green::wait(kettle::open_connection("127.0.0.1", port)).unwrap();
        writer.write(b"green streams\n");
        green::wait(writer.drain()).unwrap();
        let reply = green::wait(reader.readline()).unwrap();
        server.close();
        reply
    })
    .unwrap();
    assert_eq!(reply, b"GREEN STREAMS\n");
}

#[test]
fn a_green_thread_holding_a_handle_to_itself_is_still_torn_down_with_its_loop() {
    let log = Log::default();
    let lp = EventLoop::new().unwrap();
    let l = log.clone();
    lp.run_until_complete(async move {
        drop(green::spawn(move || {
            let _me = green::getcurrent(); // an Rc to its own task, on its own stack
            let _g = Guard::new("self-referencing", &l);
            green::sleep(Duration::from_secs(3600));
        }));
        kettle::sleep(Duration::from_millis(5)).await;
    });
    lp.close().unwrap();
    assert_eq!(entries(&log), ["dropped self-referencing"]);
}
