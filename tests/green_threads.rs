//! `kettle::green`: gevent-style green threads on the Kettle loop, through the public API —
//! interleaving with async tasks in both directions, kill (in sleep, in `wait`, in I/O, before
//! start, of itself), panics, misuse outside a green thread, loop teardown, and 100,000 at once.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kettle::generator::{Generator, Yielder};
use kettle::green;
use kettle::sync::{oneshot, Event, Queue};
use kettle::ErrorKind;

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

/// Logs its name when dropped: proves a killed green thread's stack unwound.
struct Guard(&'static str, Log);

impl Drop for Guard {
    fn drop(&mut self) {
        push(&self.1, format!("drop {}", self.0));
    }
}

fn panic_message(result: std::thread::Result<()>) -> String {
    let payload = result.expect_err("expected a panic");
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else {
        String::from("<non-string panic>")
    }
}

#[test]
fn green_threads_run_in_spawn_order_when_none_waits() {
    let log: Log = Rc::default();
    let l = log.clone();
    green::run(move || {
        let threads: Vec<_> = (0..3)
            .map(|g| {
                let l = l.clone();
                green::spawn(move || {
                    for i in 0..2 {
                        push(&l, format!("g{g} {i}"));
                    }
                })
            })
            .collect();
        push(&l, "spawned");
        green::joinall(threads);
    })
    .unwrap();
    assert_eq!(
        *log.borrow(),
        ["spawned", "g0 0", "g0 1", "g1 0", "g1 1", "g2 0", "g2 1"],
        "spawning never switches; then each runs to the end"
    );
}

#[test]
fn sleeping_green_threads_interleave_and_overlap() {
    let log: Log = Rc::default();
    let l = log.clone();
    let elapsed = green::run(move || {
        let start = Instant::now();
        let threads: Vec<_> = (0..3)
            .map(|g| {
                let l = l.clone();
                green::spawn(move || {
                    for i in 0..2 {
                        push(&l, format!("g{g} {i}"));
                        green::sleep(Duration::from_millis(100));
                    }
                })
            })
            .collect();
        green::joinall(threads);
        start.elapsed()
    })
    .unwrap();
    assert_eq!(
        *log.borrow(),
        ["g0 0", "g1 0", "g2 0", "g0 1", "g1 1", "g2 1"]
    );
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(580),
        "not 600 ms in a row: {elapsed:?}"
    );
}

#[test]
fn async_code_awaits_a_green_thread_and_green_code_waits_on_async() {
    let log: Log = Rc::default();
    let l = log.clone();
    let total = kettle::run(async move {
        let queue: Queue<u32> = Queue::new(1);
        let (q, l2) = (queue.clone(), l.clone());
        // Green consumer: blocking-looking gets from an async queue.
        let consumer = green::spawn(move || {
            let mut sum = 0;
            for _ in 0..3 {
                let v = green::wait(q.get());
                push(&l2, format!("green got {v}"));
                sum += v;
            }
            sum
        });
        // Async producer on the same loop.
        for v in [1, 2, 3] {
            queue.put(v).await;
            push(&l, format!("async put {v}"));
        }
        // An async task that the green thread... rather, async awaits the green thread.
        consumer.await.unwrap()
    });
    assert_eq!(total, 6);
    let log = log.borrow();
    for v in 1..=3 {
        assert!(log.contains(&format!("green got {v}")));
        assert!(log.contains(&format!("async put {v}")));
    }
    // Capacity 1: the producer can only be one item ahead of the consumer.
    let put3 = log.iter().position(|s| s == "async put 3").unwrap();
    let got1 = log.iter().position(|s| s == "green got 1").unwrap();
    assert!(got1 < put3, "{log:?}");
}

#[test]
fn green_code_waits_for_tasks_timeouts_and_the_executor() {
    green::run(|| {
        let task = kettle::spawn(async {
            kettle::sleep(Duration::from_millis(20)).await;
            "task done"
        });
        assert_eq!(green::wait(task).unwrap(), "task done");

        let never = std::future::pending::<()>();
        let err = green::wait(kettle::wait_for(never, Duration::from_millis(30))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);

        let thread = std::thread::current().id();
        let other = green::wait(kettle::run_in_executor(move || {
            std::thread::current().id() != thread
        }));
        assert!(other.unwrap(), "the job ran on an executor thread");
    })
    .unwrap();
}

#[test]
fn killing_a_sleeping_green_thread_unwinds_it_and_joiners_see_cancelled() {
    let log: Log = Rc::default();
    let l = log.clone();
    let (err, after) = kettle::run(async move {
        let l2 = l.clone();
        let sleeper = green::spawn(move || {
            let _g = Guard("sleeper", l2.clone());
            green::sleep(Duration::from_secs(3600));
            push(&l2, "woke up");
        });
        kettle::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.dead());
        assert!(sleeper.kill());
        let start = Instant::now();
        let err = sleeper.await.unwrap_err();
        (err, start.elapsed())
    });
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert!(after < Duration::from_secs(1), "{after:?}");
    assert_eq!(*log.borrow(), ["drop sleeper"]);
}

#[test]
fn killing_a_green_thread_blocked_in_wait_unwinds_it() {
    let log: Log = Rc::default();
    let l = log.clone();
    green::run(move || {
        let event = Event::new();
        let (l2, e) = (l.clone(), event.clone());
        let waiter = green::spawn(move || {
            let _g = Guard("waiter", l2.clone());
            green::wait(e.wait());
            push(&l2, "event fired");
        });
        let (tx, rx) = oneshot::channel::<u32>();
        let l3 = l.clone();
        let receiver = green::spawn(move || {
            let _g = Guard("receiver", l3);
            green::wait(rx)
        });
        green::sleep(Duration::from_millis(10));
        waiter.kill();
        receiver.kill();
        assert_eq!(waiter.join().unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(receiver.join().unwrap_err().kind(), ErrorKind::Cancelled);
        drop(tx);
        event.set(); // too late: nobody is waiting any more
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["drop waiter", "drop receiver"]);
}

#[test]
fn killing_a_green_thread_blocked_in_a_socket_read_unwinds_it_and_closes_the_socket() {
    use std::io::Read;
    let log: Log = Rc::default();
    let l = log.clone();
    green::run(move || {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let l2 = l.clone();
        let reader = green::spawn(move || {
            let _g = Guard("reader", l2.clone());
            let mut stream = green::net::TcpStream::connect(addr).unwrap();
            let mut buf = [0u8; 16];
            let n = stream.read(&mut buf);
            push(&l2, format!("read returned {n:?}"));
        });
        let (mut server_side, _) = listener.accept().unwrap();
        green::sleep(Duration::from_millis(20));
        reader.kill();
        assert_eq!(reader.join().unwrap_err().kind(), ErrorKind::Cancelled);
        // The killed thread's socket was dropped: the server side reads EOF.
        let mut buf = [0u8; 16];
        assert_eq!(server_side.read(&mut buf).unwrap(), 0);
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["drop reader"]);
}

/// Waits (green) in its destructor: what a kill must survive without aborting.
struct WaitsOnDrop {
    log: Log,
    ready: bool,
}

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        if self.ready {
            // A wait that completes at once works even while the thread is being killed.
            let v = green::wait(async { 5 });
            push(&self.log, format!("drop waited for {v}"));
        } else {
            // One that would really suspend cannot be resumed any more: the thread's stack
            // is set aside (leaked, with a warning) instead of aborting the process.
            green::sleep(Duration::from_secs(3600));
            push(&self.log, "never");
        }
    }
}

#[test]
fn destructors_that_wait_while_their_green_thread_is_killed_neither_abort_nor_hang() {
    let log: Log = Rc::default();
    let l = log.clone();
    green::run(move || {
        for ready in [true, false] {
            let l2 = l.clone();
            let g = green::spawn(move || {
                let _w = WaitsOnDrop { log: l2, ready };
                green::sleep(Duration::from_secs(3600));
            });
            green::sleep(Duration::from_millis(5));
            g.kill();
            assert_eq!(g.join().unwrap_err().kind(), ErrorKind::Cancelled);
        }
        // The loop still runs green threads normally.
        assert_eq!(green::spawn(|| 1).join().unwrap(), 1);
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["drop waited for 5"]);
}

#[test]
fn a_green_thread_killed_before_it_starts_never_runs() {
    let log: Log = Rc::default();
    let l = log.clone();
    green::run(move || {
        let l2 = l.clone();
        let g = green::spawn(move || push(&l2, "ran"));
        assert!(g.kill());
        assert_eq!(g.join().unwrap_err().kind(), ErrorKind::Cancelled);
    })
    .unwrap();
    assert!(log.borrow().is_empty());
}

#[test]
fn a_green_thread_that_kills_itself_unwinds_at_its_next_switch() {
    let log: Log = Rc::default();
    let l = log.clone();
    let err = green::run(move || {
        let l2 = l.clone();
        let g = green::spawn(move || {
            let _g = Guard("self", l2.clone());
            green::getcurrent().kill();
            push(&l2, "still running until the next switch");
            green::yield_now();
            push(&l2, "never printed");
        });
        g.join().unwrap_err()
    })
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(
        *log.borrow(),
        ["still running until the next switch", "drop self"]
    );
}

#[test]
fn a_panic_becomes_a_panicked_error_and_the_others_go_on() {
    let results = green::run(|| {
        let bad = green::spawn(|| -> u32 {
            green::sleep(Duration::from_millis(5));
            panic!("green thread failed on purpose")
        });
        let good = green::spawn(|| {
            green::sleep(Duration::from_millis(20));
            7u32
        });
        green::joinall([bad, good])
    })
    .unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.to_string().contains("failed on purpose"), "{err}");
    assert_eq!(*results[1].as_ref().unwrap(), 7);
}

#[test]
fn green_functions_outside_a_green_thread_panic_naming_the_function() {
    let msg = panic_message(catch_unwind(|| green::sleep(Duration::from_millis(1))));
    assert!(
        msg.contains("kettle::green::sleep") && msg.contains("outside a green thread"),
        "{msg}"
    );
    let msg = panic_message(catch_unwind(|| {
        green::wait(async {});
    }));
    assert!(msg.contains("kettle::green::wait"), "{msg}");
    let msg = panic_message(catch_unwind(|| {
        green::getcurrent();
    }));
    assert!(msg.contains("kettle::green::getcurrent"), "{msg}");
    assert!(!green::is_green());
    // From async code on a running loop: the same clear panic, caught as the task's error.
    let err = kettle::run(async {
        kettle::spawn(async { green::yield_now() })
            .await
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(
        err.to_string().contains("kettle::green::yield_now"),
        "{err}"
    );
    // join() is the green way to wait; from async code it panics (async code awaits).
    let err = kettle::run(async {
        let g = green::spawn(|| 1);
        kettle::spawn(async move { g.join() }).await.unwrap_err()
    });
    let msg = err.to_string();
    assert!(msg.contains("GreenThread::join"), "{msg}");
}

#[test]
fn a_generator_inside_a_green_thread_cannot_suspend_it() {
    let msg = green::run(|| {
        assert!(green::is_green());
        let mut g = Generator::new(|_co: &Yielder<'_, (), ()>, ()| {
            assert!(!green::is_green());
            green::sleep(Duration::from_millis(1));
        });
        panic_message(catch_unwind(AssertUnwindSafe(|| {
            let _ = g.send(());
        })))
    })
    .unwrap();
    assert!(msg.contains("generator or greenlet"), "{msg}");
}

#[test]
fn closing_a_loop_with_suspended_green_threads_runs_their_destructors() {
    let log: Log = Rc::default();
    let l = log.clone();
    let lp = kettle::EventLoop::new().unwrap();
    let mut threads = Vec::new();
    lp.run_until_complete(async {
        for name in ["a", "b"] {
            let l = l.clone();
            threads.push(green::spawn(move || {
                let _g = Guard(name, l.clone());
                green::sleep(Duration::from_secs(3600));
                push(&l, "woke");
            }));
        }
        kettle::sleep(Duration::from_millis(10)).await;
    });
    assert!(log.borrow().is_empty(), "they are suspended, not dead");
    drop(threads);
    drop(lp);
    let mut log = log.borrow().clone();
    log.sort();
    assert_eq!(log, ["drop a", "drop b"]);
}

#[test]
fn a_green_thread_holding_a_handle_to_itself_is_still_torn_down_with_its_loop() {
    let log: Log = Rc::default();
    let l = log.clone();
    let lp = kettle::EventLoop::new().unwrap();
    lp.run_until_complete(async {
        drop(green::spawn(move || {
            let _me = green::getcurrent(); // an Rc to its own task, on its own stack
            let _g = Guard("self-referencing", l.clone());
            green::sleep(Duration::from_secs(3600));
        }));
        kettle::sleep(Duration::from_millis(5)).await;
    });
    lp.close().unwrap();
    assert_eq!(*log.borrow(), ["drop self-referencing"]);
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
        let port = server.sockets()[0]
            .to_string()
            .rsplit_once(':')
            .unwrap()
            .1
            .parse::<u16>()
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
fn greenlets_switch_inside_a_green_thread() {
    let got = green::run(|| {
        let main = kettle::greenlet::getcurrent().cast::<u32>();
        let child = kettle::greenlet::Greenlet::new(move |x: u32| main.switch(x * 2).unwrap() + 1);
        let doubled = child.switch(21).unwrap();
        green::sleep(Duration::from_millis(5)); // the green thread itself may still wait
        child.switch(doubled).unwrap()
    })
    .unwrap();
    assert_eq!(got, 43);
}

#[test]
fn names_display_and_stack_sizes() {
    green::run(|| {
        let g = green::Builder::new()
            .name("f(5)")
            .stack_size(4 << 20)
            .spawn(|| {
                // Half a megabyte on the stack needs the bigger stack.
                let big = std::hint::black_box([7u8; 512 * 1024]);
                (green::getcurrent().to_string(), big[1000] as usize)
            });
        assert_eq!(g.name(), "f(5)");
        let shown = g.to_string();
        assert!(
            shown.starts_with("<Greenlet at 0x") && shown.ends_with(": f(5)>"),
            "{shown}"
        );
        let (inside, seven) = g.join().unwrap();
        assert_eq!(inside, shown, "getcurrent() inside shows the same");
        assert_eq!(seven, 7);
        let unnamed = green::spawn(|| green::getcurrent().name());
        let id = unnamed.id();
        assert_eq!(unnamed.join().unwrap(), format!("Greenlet-{id}"));
    })
    .unwrap();
}

#[test]
fn a_hundred_thousand_green_threads_sleep_at_once_and_their_stacks_go_back_to_the_pool() {
    // Map a first stack, so the kernel's guard-region support is known.
    green::run(|| ()).unwrap();
    let n = if green::guards_split_mappings() {
        // Before Linux 6.13 every stack costs two mappings: 100,000 cannot fit under the
        // default vm.max_map_count (tests/green_stack_limits.rs checks that error instead).
        eprintln!("no guard regions on this kernel: 20,000 green threads instead of 100,000");
        20_000u64
    } else {
        100_000u64
    };
    let (sum, elapsed, during) = green::run(move || {
        let start = Instant::now();
        let mut x: u64 = 7;
        let threads: Vec<_> = (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let delay = Duration::from_millis((x >> 33) % 200);
                green::spawn(move || {
                    green::sleep(delay);
                    i
                })
            })
            .collect();
        green::sleep(Duration::from_millis(1));
        let during = green::pool_stats();
        // Guard regions do not split mappings (Linux 6.13+): 100,000 stacks stay far below
        // the default vm.max_map_count of 65,530.
        if !green::guards_split_mappings() {
            let maps = std::fs::read_to_string("/proc/self/maps")
                .unwrap()
                .lines()
                .count();
            assert!(
                maps < 10_000,
                "{maps} mappings for {} stacks",
                during.in_use
            );
        }
        let sum: u64 = green::joinall(threads)
            .into_iter()
            .map(|r| r.unwrap())
            .sum();
        (sum, start.elapsed(), during)
    })
    .unwrap();
    assert_eq!(sum, n * (n - 1) / 2);
    assert!(
        during.in_use as u64 >= n / 2,
        "most were alive at once: {during:?}"
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    let after = green::pool_stats();
    assert_eq!(after.in_use, 0, "every stack went back: {after:?}");
    assert!(after.free as u64 >= n, "{after:?}");
    assert!(
        after.warm <= 1_024,
        "the rest gave their memory back: {after:?}"
    );
}
