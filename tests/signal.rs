//! `kettle::signal` with real signals.
//!
//! The tests of one binary run on parallel threads of one process, and a signal's disposition
//! is process-wide. So every test owns its signals: none is used by two tests, and none of
//! them is SIGINT or SIGTERM, whose default action would end the whole test run if a
//! listener were missing. SIGINT and SIGTERM are tested in child processes.

mod common;

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::LATE;
use kettle::signal::{raise_signal, Signals, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH};

/// A real-time signal that no other test uses (`SIGRTMIN + n`).
fn rt(n: i32) -> i32 {
    let sig = libc::SIGRTMIN() + n;
    assert!(sig <= libc::SIGRTMAX());
    sig
}

/// The handler address of `sig`'s current disposition (`SIG_DFL`, `SIG_IGN` or a function).
fn handler_of(sig: i32) -> libc::sighandler_t {
    // SAFETY: an all-zero sigaction is a valid value for the kernel to overwrite.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null `act` only queries; `cur` is live and writable.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut cur) };
    assert_eq!(rc, 0, "sigaction query of {sig}");
    cur.sa_sigaction
}

fn set_handler(sig: i32, handler: libc::sighandler_t) {
    // SAFETY: as in `handler_of`.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: `act` is a live sigaction naming SIG_DFL or SIG_IGN, not a function.
    let rc = unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction set of {sig}");
}

async fn recv_soon(signals: &mut Signals) -> i32 {
    kettle::wait_for(signals.recv(), LATE)
        .await
        .expect("a signal within the deadline")
        .expect("recv")
}

#[test]
fn a_raised_signal_wakes_a_parked_recv() {
    kettle::run(async {
        let mut signals = Signals::new(&[SIGUSR1]).unwrap();
        assert_eq!(signals.signals(), [SIGUSR1]);
        let waiter = kettle::spawn(async move {
            let sig = recv_soon(&mut signals).await;
            (sig, signals)
        });
        // Let the waiter park, then signal from another thread while the loop sleeps in
        // epoll_wait with nothing else to do: only the pipe can wake it.
        common::settle().await;
        let t0 = Instant::now();
        std::thread::spawn(|| raise_signal(SIGUSR1).unwrap());
        let (sig, mut signals) = waiter.await.unwrap();
        assert_eq!(sig, SIGUSR1);
        assert!(t0.elapsed() < LATE);

        // And again, raised on the loop's own thread.
        raise_signal(SIGUSR1).unwrap();
        assert_eq!(recv_soon(&mut signals).await, SIGUSR1);
    });
}

#[test]
fn every_listener_on_every_loop_receives_each_signal() {
    const LOOPS: usize = 3;
    let (ready_tx, ready_rx) = mpsc::channel();
    let threads: Vec<_> = (0..LOOPS)
        .map(|_| {
            let ready = ready_tx.clone();
            std::thread::spawn(move || {
                kettle::run(async move {
                    // Two listeners on this loop, both for the same signal.
                    let mut a = Signals::new(&[SIGUSR2]).unwrap();
                    let mut b = Signals::new(&[SIGUSR2, rt(1)]).unwrap();
                    ready.send(()).unwrap();
                    let first = (recv_soon(&mut a).await, recv_soon(&mut b).await);
                    // The second delivery also reaches everyone.
                    ready.send(()).unwrap();
                    let second = (recv_soon(&mut a).await, recv_soon(&mut b).await);
                    (first, second)
                })
            })
        })
        .collect();
    for _ in 0..LOOPS {
        ready_rx.recv_timeout(LATE).expect("every loop listens");
    }
    raise_signal(SIGUSR2).unwrap();
    for _ in 0..LOOPS {
        ready_rx
            .recv_timeout(LATE)
            .expect("every loop got the first");
    }
    raise_signal(SIGUSR2).unwrap();
    for t in threads {
        let got = t.join().expect("loop thread");
        assert_eq!(got, ((SIGUSR2, SIGUSR2), (SIGUSR2, SIGUSR2)));
    }
}

#[test]
fn signals_raised_before_recv_are_kept_in_order() {
    kettle::run(async {
        let mut signals = Signals::new(&[SIGWINCH, rt(2)]).unwrap();
        // Each raise is handled before it returns (the signal is sent to this thread, which
        // does not block it), so none of them is pending at the same time as another.
        raise_signal(SIGWINCH).unwrap();
        raise_signal(rt(2)).unwrap();
        raise_signal(SIGWINCH).unwrap();
        kettle::sleep(Duration::from_millis(20)).await;
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(recv_soon(&mut signals).await);
        }
        assert_eq!(got, [SIGWINCH, rt(2), SIGWINCH]);
        // Nothing more is queued.
        let more = kettle::wait_for(signals.recv(), Duration::from_millis(20)).await;
        assert!(more.is_err(), "{more:?}");
    });
}

#[test]
fn recv_is_cancellation_safe() {
    kettle::run(async {
        let sig = rt(3);
        let mut signals = Signals::new(&[sig]).unwrap();
        // recv futures dropped while parked (by a timeout) take nothing with them...
        for _ in 0..3 {
            let timed_out = kettle::wait_for(signals.recv(), Duration::from_millis(5)).await;
            assert!(timed_out.is_err());
        }
        raise_signal(sig).unwrap();
        raise_signal(sig).unwrap();
        // ...so both deliveries are there. The first recv reads both bytes from the pipe and
        // keeps the second in the listener, not in the future.
        assert_eq!(recv_soon(&mut signals).await, sig);
        assert_eq!(recv_soon(&mut signals).await, sig);
    });
}

#[test]
fn dropping_the_last_listener_restores_the_previous_disposition() {
    // Whatever SIGHUP was set to (SIG_DFL, or SIG_IGN under nohup) comes back.
    let before = handler_of(SIGHUP);
    kettle::run(async {
        let a = Signals::new(&[SIGHUP]).unwrap();
        let ours = handler_of(SIGHUP);
        assert!(ours != libc::SIG_DFL && ours != libc::SIG_IGN);
        let b = Signals::new(&[SIGHUP]).unwrap();
        drop(a);
        assert_eq!(handler_of(SIGHUP), ours, "b still listens");
        drop(b);
        assert_eq!(handler_of(SIGHUP), before);
    });

    // An ignored signal is ignored again afterwards.
    let sig = rt(4);
    set_handler(sig, libc::SIG_IGN);
    kettle::run(async {
        let mut s = Signals::new(&[sig]).unwrap();
        raise_signal(sig).unwrap();
        assert_eq!(recv_soon(&mut s).await, sig);
    });
    assert_eq!(handler_of(sig), libc::SIG_IGN);
    set_handler(sig, libc::SIG_DFL);
}

#[test]
fn uncatchable_and_fault_signals_are_invalid_input() {
    kettle::run(async {
        for (sig, name) in [
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGSTOP, "SIGSTOP"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGFPE, "SIGFPE"),
        ] {
            let err = Signals::new(&[rt(5), sig]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name}");
            assert!(err.to_string().contains(name), "{err}");
            let err = kettle::get_running_loop()
                .add_signal_handler(sig, || {})
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name}");
        }
        for sig in [0, -1, 65, 1000] {
            let err = Signals::new(&[sig]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{sig}");
            assert!(err.to_string().contains("not a signal number"), "{err}");
        }
        let err = Signals::new(&[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // A rejected list installed nothing, not even its valid members.
        assert_eq!(handler_of(rt(5)), libc::SIG_DFL);
    });
    let err = Signals::new(&[SIGUSR1]).unwrap_err();
    assert!(
        err.to_string().contains("running kettle event loop"),
        "{err}"
    );
}

#[test]
fn add_signal_handler_runs_replaces_and_removes() {
    use std::cell::Cell;
    use std::rc::Rc;

    let sig = rt(6);
    let other = rt(7);
    let lp = common::new_loop();
    let log: common::Log<&str> = common::log();
    let settle = || lp.run_until_complete(kettle::sleep(Duration::from_millis(20)));

    // Added before the loop runs, as asyncio allows.
    let l = log.clone();
    lp.add_signal_handler(sig, move || l.borrow_mut().push("first"))
        .unwrap();
    assert_ne!(handler_of(sig), libc::SIG_DFL);
    raise_signal(sig).unwrap();
    settle();
    assert_eq!(*log.borrow(), ["first"]);

    // Replacing: the new callback runs, the old one no more.
    let l = log.clone();
    lp.add_signal_handler(sig, move || l.borrow_mut().push("second"))
        .unwrap();
    let l = log.clone();
    lp.add_signal_handler(other, move || l.borrow_mut().push("other"))
        .unwrap();
    raise_signal(sig).unwrap();
    raise_signal(other).unwrap();
    settle();
    assert_eq!(*log.borrow(), ["first", "second", "other"]);
    assert_eq!(lp.task_count(), 0, "handlers are not tasks");

    // Both deliveries are read at once and both calls queued; the first removes the second
    // handler, whose queued call is then skipped.
    let l = log.clone();
    let lp2 = lp.clone();
    lp.add_signal_handler(sig, move || {
        l.borrow_mut().push("remover");
        assert!(lp2.remove_signal_handler(rt(7)));
    })
    .unwrap();
    raise_signal(sig).unwrap();
    raise_signal(other).unwrap();
    settle();
    assert_eq!(*log.borrow(), ["first", "second", "other", "remover"]);
    assert_eq!(
        handler_of(other),
        libc::SIG_DFL,
        "other removed: default again"
    );
    assert_ne!(handler_of(sig), libc::SIG_DFL, "sig still handled");

    // A handler may remove itself; one that panics is logged and the loop goes on.
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let lp2 = lp.clone();
    lp.add_signal_handler(sig, move || {
        c.set(c.get() + 1);
        assert!(lp2.remove_signal_handler(rt(6)));
        panic!("handler panics after removing itself");
    })
    .unwrap();
    raise_signal(sig).unwrap();
    settle();
    assert_eq!(count.get(), 1);
    assert!(!lp.remove_signal_handler(sig));
    assert_eq!(handler_of(sig), libc::SIG_DFL);
    assert!(!lp.remove_signal_handler(libc::SIGKILL));
    lp.close().unwrap();
}

#[test]
fn closing_the_loop_removes_its_signal_handlers() {
    let sig = rt(8);
    let lp = common::new_loop();
    lp.add_signal_handler(sig, || {}).unwrap();
    assert_ne!(handler_of(sig), libc::SIG_DFL);
    lp.close().unwrap();
    assert_eq!(handler_of(sig), libc::SIG_DFL);
    let err = lp.add_signal_handler(sig, || {}).unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");

    // Dropping the last reference closes it too.
    let lp = common::new_loop();
    lp.add_signal_handler(sig, || {}).unwrap();
    drop(lp);
    assert_eq!(handler_of(sig), libc::SIG_DFL);
}

#[test]
fn handlers_and_listeners_share_a_signal() {
    let sig = rt(9);
    let lp = common::new_loop();
    let hits = std::rc::Rc::new(std::cell::Cell::new(0));
    let h = hits.clone();
    lp.add_signal_handler(sig, move || h.set(h.get() + 1))
        .unwrap();
    let got = lp.run_until_complete(async move {
        let mut s = Signals::new(&[sig]).unwrap();
        raise_signal(sig).unwrap();
        recv_soon(&mut s).await
    });
    assert_eq!(got, sig);
    lp.run_until_complete(kettle::sleep(Duration::from_millis(10)));
    assert_eq!(hits.get(), 1);
    assert_ne!(handler_of(sig), libc::SIG_DFL, "the loop's handler remains");
    lp.close().unwrap();
    assert_eq!(handler_of(sig), libc::SIG_DFL);
}

// ---------------------------------------------------------------------------------------------
// SIGINT and SIGTERM, in child processes.

/// Kills the child when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    fn spawn(cmd: &mut Command) -> (Reaped, mpsc::Receiver<String>) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("start child process");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (Reaped(child), rx)
    }

    fn kill(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped before Reaped drops.
        let rc = unsafe { libc::kill(self.0.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill {sig}");
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the child did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Waits for a line of the child's stdout that satisfies `want`.
fn expect_line(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("expected line not printed: {e}"),
        }
    }
}

const CHILD_ENV: &str = "KETTLE_SIGNAL_TEST_CHILD";

/// Not a test of its own: the body of `ctrl_c_returns_on_sigint_in_a_child_process`, run
/// when this binary is started as that test's child.
#[test]
fn ctrl_c_child_helper() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    use std::future::{poll_fn, Future};
    use std::task::Poll;
    kettle::run(async {
        let mut ctrl_c = std::pin::pin!(kettle::signal::ctrl_c());
        // The first poll installs the SIGINT handler; only then may the parent send SIGINT.
        poll_fn(|cx| {
            assert!(ctrl_c.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        println!("child: ready");
        ctrl_c.await.unwrap();
        println!("child: got ctrl_c");
    });
    let restored = handler_of(libc::SIGINT) == libc::SIG_DFL;
    println!("child: SIGINT default again: {restored}");
}

#[test]
fn ctrl_c_returns_on_sigint_in_a_child_process() {
    let exe = std::env::current_exe().unwrap();
    let (mut child, lines) = Reaped::spawn(
        Command::new(exe)
            .args([
                "ctrl_c_child_helper",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1"),
    );
    // libtest prints "test ctrl_c_child_helper ... " before it, on the same line.
    expect_line(&lines, |l| l.ends_with("child: ready"));
    child.kill(libc::SIGINT);
    expect_line(&lines, |l| l == "child: got ctrl_c");
    expect_line(&lines, |l| l == "child: SIGINT default again: true");
    let status = child.wait();
    assert!(status.success(), "{status:?}");
}

/// `target/<profile>/examples/<name>`, next to this test's own `deps/` directory.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>")
        .join("examples")
        .join(name)
}

#[test]
fn signal_wait_example_shuts_down_cleanly_on_sigterm() {
    let (mut child, lines) =
        Reaped::spawn(Command::new(example("signal_wait")).args(["--grace", "0.05"]));
    expect_line(&lines, |l| l.ends_with("waiting for SIGINT or SIGTERM"));
    child.kill(libc::SIGTERM);
    expect_line(&lines, |l| l.starts_with("received SIGTERM; shutting down"));
    expect_line(&lines, |l| l == "bye");
    let status = child.wait();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_second_ctrl_c_kills_the_signal_wait_example_during_its_grace_period() {
    use std::os::unix::process::ExitStatusExt;
    let (mut child, lines) =
        Reaped::spawn(Command::new(example("signal_wait")).args(["--grace", "30"]));
    expect_line(&lines, |l| l.ends_with("waiting for SIGINT or SIGTERM"));
    child.kill(libc::SIGINT);
    // Printed after the listener was dropped: SIGINT has its default action again.
    expect_line(&lines, |l| l.starts_with("received SIGINT; shutting down"));
    let t0 = Instant::now();
    child.kill(libc::SIGINT);
    let status = child.wait();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
}
