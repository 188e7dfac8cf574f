//! Stack overflows in coroutines: a green thread, a generator or a greenlet that runs off its
//! stack hits the guard region below it, and the process reports who overflowed (a green
//! thread by its name, or "a coroutine"), how large its stack was in KiB, and dies by
//! `SIGABRT` instead of a bare `SIGSEGV` or silent corruption.
//!
//! An overflow kills the process, so each case runs in a child process: the test binary runs
//! itself with `KETTLE_OVERFLOW_CHILD` naming the case, selecting only [`overflow_child`],
//! which does nothing in an ordinary run.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output};

use kettle::generator::Generator;
use kettle::green;
use kettle::greenlet::Greenlet;

/// Selects the case a child process runs.
const CHILD_ENV: &str = "KETTLE_OVERFLOW_CHILD";

/// Recursion that never ends, with a 4 KiB frame (`black_box` keeps the array and the calls
/// real; the condition only keeps the unconditional-recursion lint quiet).
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n as u8; 4096]);
    if n == u64::MAX {
        return 0;
    }
    recurse(n + 1) + u64::from(frame[(n % 4096) as usize])
}

/// The child's side: overflow the way `case` says. Only returns if nothing overflowed.
fn overflow(case: &str) {
    match case {
        "named-green-thread" => {
            green::run(|| {
                let g = green::Builder::new()
                    .name("deep-diver")
                    .stack_size(64 * 1024)
                    .spawn(|| recurse(0));
                let _ = g.join();
            })
            .unwrap();
        }
        "unnamed-green-thread" => {
            green::run(|| {
                let g = green::Builder::new()
                    .stack_size(96 * 1024)
                    .spawn(|| recurse(0));
                eprintln!("child: spawned green thread id {}", g.id());
                let _ = g.join();
            })
            .unwrap();
        }
        "default-size-green-thread" => {
            green::run(|| {
                let _ = green::Builder::new()
                    .name("defaults")
                    .spawn(|| recurse(0))
                    .join();
            })
            .unwrap();
        }
        "generator" => {
            let mut g: Generator<(), (), u64> =
                Generator::with_stack_size(128 * 1024, |_co, ()| recurse(0));
            let _ = g.send(());
        }
        "greenlet" => {
            let g = Greenlet::with_stack_size(80 * 1024, |()| {
                recurse(0);
            });
            let _ = g.switch(());
        }
        "generator-in-green-thread" => {
            // The generator takes the lower of two neighbouring stacks, so its guard lies just
            // below the green thread's stack: the report must still blame the generator, not
            // the green thread that runs it.
            green::run(|| {
                let mut gen: Generator<(), (), u64> =
                    Generator::with_stack_size(20 * 1024, |_co, ()| recurse(0));
                let g = green::Builder::new()
                    .name("innocent")
                    .stack_size(20 * 1024)
                    .spawn(move || {
                        let _ = gen.send(());
                    });
                let _ = g.join();
            })
            .unwrap();
        }
        "killed-green-thread-destructor" => {
            // The overflow happens in a destructor run while the green thread is killed.
            struct DeepDrop;
            impl Drop for DeepDrop {
                fn drop(&mut self) {
                    recurse(0);
                }
            }
            green::run(|| {
                let g = green::Builder::new()
                    .name("dying")
                    .stack_size(64 * 1024)
                    .spawn(|| {
                        let _d = DeepDrop;
                        green::sleep(std::time::Duration::from_secs(3600));
                    });
                green::sleep(std::time::Duration::from_millis(5));
                g.kill();
                let _ = g.join();
            })
            .unwrap();
        }
        other => panic!("unknown overflow case {other:?}"),
    }
}

/// Not a test of its own: the entry point of the child processes (see the module docs).
#[test]
fn overflow_child() {
    if let Ok(case) = std::env::var(CHILD_ENV) {
        overflow(&case);
        eprintln!("child: no overflow happened");
    }
}

/// Runs `case` in a child process and returns what it did.
fn run_child(case: &str) -> (Output, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, case);
    // SAFETY: setrlimit is async-signal-safe, as code between fork and exec must be. The
    // aborting child should not leave a core dump behind.
    unsafe {
        command.pre_exec(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    let output = command.output().expect("run the test binary as a child");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// The child died by `SIGABRT`, with each of `needles` in what it printed.
fn assert_aborted_with(case: &str, needles: &[&str]) -> String {
    let (output, stderr) = run_child(case);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{case}: expected death by SIGABRT, got {:?}; stderr:\n{stderr}",
        output.status
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{case}: stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("no overflow happened"), "{stderr}");
    stderr
}

#[test]
fn a_green_thread_overflow_names_the_green_thread_and_its_stack_size() {
    let stderr = assert_aborted_with(
        "named-green-thread",
        &[
            "kettle: green thread deep-diver (task id ",
            "overflowed its stack of 64 KiB; aborting",
            "green::Builder::stack_size",
        ],
    );
    // The report, not a plain segfault message from elsewhere.
    assert!(
        !stderr.contains("a coroutine (generator or greenlet)"),
        "{stderr}"
    );
}

#[test]
fn an_unnamed_green_thread_is_reported_by_its_default_name_and_id() {
    let stderr = assert_aborted_with(
        "unnamed-green-thread",
        &["overflowed its stack of 96 KiB; aborting"],
    );
    let id: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("child: spawned green thread id "))
        .expect("the child printed the id")
        .trim()
        .parse()
        .unwrap();
    assert!(
        stderr.contains(&format!("green thread Greenlet-{id} (task id {id})")),
        "{stderr}"
    );
}

#[test]
fn the_default_stack_size_is_reported_in_kib() {
    let kib = green::DEFAULT_STACK_SIZE / 1024;
    assert_aborted_with(
        "default-size-green-thread",
        &[
            "green thread defaults",
            &format!("overflowed its stack of {kib} KiB"),
        ],
    );
}

#[test]
fn a_generator_overflow_is_reported_as_a_coroutine() {
    assert_aborted_with(
        "generator",
        &[
            "kettle: a coroutine (generator or greenlet) overflowed its stack of 128 KiB",
            "Generator::with_stack_size",
        ],
    );
}

#[test]
fn a_greenlet_overflow_is_reported_as_a_coroutine() {
    assert_aborted_with(
        "greenlet",
        &["kettle: a coroutine (generator or greenlet) overflowed its stack of 80 KiB"],
    );
}

#[test]
fn a_generator_overflowing_inside_a_green_thread_is_not_blamed_on_the_green_thread() {
    let stderr = assert_aborted_with(
        "generator-in-green-thread",
        &["kettle: a coroutine (generator or greenlet) overflowed its stack of 20 KiB"],
    );
    assert!(!stderr.contains("innocent"), "{stderr}");
}

#[test]
fn an_overflow_while_a_green_thread_is_killed_still_names_it() {
    assert_aborted_with(
        "killed-green-thread-destructor",
        &[
            "kettle: green thread dying (task id ",
            "overflowed its stack of 64 KiB",
        ],
    );
}
