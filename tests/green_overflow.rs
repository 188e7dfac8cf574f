//! A coroutine that overflows its stack hits the guard region under it: the process reports
//! which green thread overflowed and how large its stack was, then aborts (there is no safe
//! way to go on). Each case runs in a child process: this test binary re-run with
//! `KETTLE_OVERFLOW_CHILD` naming the case, so the abort takes down only the child.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

const CHILD_ENV: &str = "KETTLE_OVERFLOW_CHILD";

/// Recurses until the stack runs out; the frame is big enough to get there fast, and
/// `black_box` keeps the compiler from turning it into a loop.
#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: it ends in the guard region
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 1024]);
    recurse(depth + 1) + frame[depth as usize % 1024] as u64
}

/// The child side: does the overflow named by the environment variable. Skipped (passes)
/// when run normally.
#[test]
fn child() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    // No core file from the crash on purpose.
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid structure.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    match case.as_str() {
        "green" => {
            kettle::green::run(|| {
                kettle::green::Builder::new()
                    .name("deep-diver")
                    .stack_size(64 * 1024)
                    .spawn(|| recurse(0))
                    .join()
            })
            .ok();
        }
        "generator" => {
            let mut g = kettle::generator::Generator::with_stack_size(
                32 * 1024,
                |_co: &kettle::generator::Yielder<'_, (), ()>, ()| recurse(0),
            );
            let _ = g.send(());
        }
        "segv" => {
            // Install Kettle's handler (a coroutine stack exists), then fault elsewhere: on a
            // page mapped with no access, which is no coroutine's guard.
            let mut g = kettle::generator::Generator::new(
                |_co: &kettle::generator::Yielder<'_, (), ()>, ()| 1,
            );
            let _ = g.send(());
            // SAFETY: a fresh private mapping with no access; the write below faults on
            // purpose, in a child process that exists to die of it.
            unsafe {
                let page = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(page, libc::MAP_FAILED);
                std::ptr::write_volatile(page as *mut u8, 1);
            }
        }
        other => panic!("unknown case {other}"),
    }
    unreachable!("the overflow should have aborted the process");
}

/// Runs the `child` test in a new process for `case`; returns its stderr and exit status.
fn run_child(case: &str) -> (String, std::process::ExitStatus) {
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, case)
        .output()
        .expect("run the child");
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status,
    )
}

#[test]
fn a_green_thread_overflow_is_reported_by_name_and_size_then_aborts() {
    let start = std::time::Instant::now();
    let (stderr, status) = run_child("green");
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "status {status:?}, stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("green thread deep-diver")
            && stderr.contains("overflowed its stack of 64 KiB"),
        "stderr:\n{stderr}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_generator_overflow_is_reported_as_a_coroutine_overflow() {
    let (stderr, status) = run_child("generator");
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "status {status:?}, stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("a coroutine (generator or greenlet) overflowed its stack of 32 KiB"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn a_fault_outside_any_coroutine_stack_still_crashes_as_before() {
    // The handler passes faults that are not coroutine overflows on to the previous one: the
    // child dies of SIGSEGV as it would without Kettle, with no overflow report.
    let (stderr, status) = run_child("segv");
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "status {status:?}, stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("overflowed its stack"),
        "stderr:\n{stderr}"
    );
}
