//! Seed 002's `monkey.patch_all()` program: two green threads, `work1` and `work2`, each print
//! their name and a counter ten times with a random pause after each line. The pause is the
//! blocking-looking `kettle::green::time::sleep` (gevent patches `time.sleep` into it), so
//! while one sleeps the other runs, and their lines interleave.
//!
//! ```text
//! cargo run --example gevent_patch                       # pauses of 0–1 s, as the seed
//! cargo run --example gevent_patch -- --max-sleep-ms 50  # shorter pauses
//! ```

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kettle::green;
// The Rust spelling of `from gevent import monkey; monkey.patch_all()`: take `sleep` (and, for
// sockets, `kettle::green::net`) from the green modules instead of std.
use kettle::green::time::sleep;

thread_local! {
    /// A small xorshift generator; `random.random()` needs nothing better.
    static RNG: Cell<u64> = Cell::new(
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1,
    );
}

/// A pseudo-random number in `0.0..1.0`.
fn random() -> f64 {
    RNG.with(|rng| {
        let mut x = rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// The seed's `coroutine_work`.
fn coroutine_work(coroutine_name: &'static str, max_sleep: Duration) {
    for i in 0..10 {
        println!("{coroutine_name} {i}");
        sleep(max_sleep.mul_f64(random()));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let max_sleep = match args.as_slice() {
        [] => Duration::from_secs(1),
        [flag, ms] if flag == "--max-sleep-ms" => match ms.parse() {
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => usage(),
        },
        _ => usage(),
    };
    green::run(move || {
        green::joinall([
            green::spawn(move || coroutine_work("work1", max_sleep)),
            green::spawn(move || coroutine_work("work2", max_sleep)),
        ])
    })
    .expect("the main green thread");
}

fn usage() -> ! {
    eprintln!("usage: gevent_patch [--max-sleep-ms MS]");
    std::process::exit(2)
}
