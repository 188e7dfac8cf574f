//! Seed 002's monkey-patch program: two green threads, `work1` and `work2`, each print
//! `NAME i` for i in 0..10 and sleep a random 0–1 s after each line, joined with `joinall`.
//! Their lines interleave, because each sleep suspends only its own green thread.
//!
//! ```text
//! cargo run --example gevent_patch                        # sleeps of 0–1 s, like the seed
//! cargo run --example gevent_patch -- --max-sleep-ms 20   # sleeps of 0–20 ms
//! cargo run --example gevent_patch -- --seed 7            # the same sleeps every run
//! ```
//!
//! gevent's `monkey.patch_all()` makes the seed's `time.sleep` cooperative; Rust cannot patch
//! the standard library, so the program calls the green version,
//! `kettle::green::time::sleep`, where the seed calls `time.sleep` (`std::thread::sleep` would
//! stop the whole loop, as an unpatched `time.sleep` stops gevent's). `random.random()` is a
//! tiny local generator, seeded from the clock unless `--seed` is given, so the example needs
//! no dependency.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kettle::green;

/// `random.random()`: a SplitMix64 generator shared by both green threads, as Python's
/// module-level generator is. SplitMix64 is a few lines, fine for any seed (zero included),
/// and plenty for choosing sleep lengths.
#[derive(Clone)]
struct Random {
    state: Rc<Cell<u64>>,
}

impl Random {
    fn new(seed: u64) -> Random {
        Random {
            state: Rc::new(Cell::new(seed)),
        }
    }

    /// Seeded from the clock, as Python seeds its generator at start-up.
    fn from_clock() -> Random {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Random::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    fn next_u64(&self) -> u64 {
        let s = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1) from the top 53 bits, as CPython's `random()` builds one.
    fn random(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The seed's `coroutine_work(coroutine_name)`.
fn coroutine_work(name: &str, random: &Random, max_sleep: Duration) {
    for i in 0..10 {
        println!("{name} {i}");
        // time.sleep(random.random()), made green.
        green::time::sleep(max_sleep.mul_f64(random.random()));
    }
}

/// Command-line options.
struct Options {
    max_sleep: Duration,
    seed: Option<u64>,
}

fn usage() -> ! {
    eprintln!("usage: gevent_patch [--max-sleep-ms MS] [--seed N]");
    std::process::exit(2)
}

fn options() -> Options {
    let mut options = Options {
        max_sleep: Duration::from_secs(1),
        seed: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--max-sleep-ms" => {
                let ms = value.parse().unwrap_or_else(|_| usage());
                options.max_sleep = Duration::from_millis(ms);
            }
            "--seed" => options.seed = Some(value.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    options
}

fn main() {
    let Options { max_sleep, seed } = options();
    let random = seed.map_or_else(Random::from_clock, Random::new);
    green::run(move || {
        let workers: Vec<_> = ["work1", "work2"]
            .into_iter()
            .map(|name| {
                let random = random.clone();
                green::Builder::new()
                    .name(name)
                    .spawn(move || coroutine_work(name, &random, max_sleep))
            })
            .collect();
        for result in green::joinall(workers) {
            result.expect("a worker failed");
        }
    })
    .expect("the main green thread");
}
