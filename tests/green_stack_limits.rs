//! The fallback for kernels without guard regions (before Linux 6.13): `mprotect` guards cost
//! two memory mappings per stack, so enough concurrent green threads run into
//! `vm.max_map_count`. That must surface as a clear error for the green threads that could not
//! get a stack, naming the limit, while the others run normally.
//!
//! `KETTLE_CORO_GUARDS=mprotect` forces the fallback on any kernel. It is read when this
//! process maps its first stack, so this file is its own test binary with a single test.

use std::time::Duration;

use kettle::green;

#[test]
fn running_out_of_memory_mappings_is_reported_with_the_limit() {
    std::env::set_var("KETTLE_CORO_GUARDS", "mprotect");
    let max_map_count: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65_530);
    if max_map_count > 200_000 {
        eprintln!("vm.max_map_count is {max_map_count}: too large to exhaust quickly, skipped");
        return;
    }
    // Two mappings per stack: this many cannot all get one.
    let n = max_map_count / 2 + 2_000;
    let (ok, failed, message) = green::run(move || {
        let threads: Vec<_> = (0..n)
            .map(|_| green::spawn(|| green::sleep(Duration::from_millis(300))))
            .collect();
        let mut ok = 0;
        let mut failed = 0;
        let mut message = String::new();
        for result in green::joinall(threads) {
            match result {
                Ok(()) => ok += 1,
                Err(e) => {
                    failed += 1;
                    message = e.to_string();
                }
            }
        }
        assert!(green::guards_split_mappings());
        (ok, failed, message)
    })
    .expect("the main green thread");
    eprintln!("{ok} ran, {failed} failed: {message}");
    assert!(
        failed > 0,
        "all {n} stacks were mapped: the limit was not reached"
    );
    assert!(ok > 10_000, "only {ok} green threads ran");
    assert_eq!(ok + failed, n);
    assert!(
        message.contains("vm.max_map_count") && message.contains("6.13"),
        "the error names the limit and the way out: {message}"
    );
}
