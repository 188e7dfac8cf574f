//! Seed 002's two gevent programs: three green threads each printing `getcurrent(), i` five
//! times. First without sleeping, so each runs to the end before the next starts; then with
//! `green::sleep(1 s)` after each line, so they interleave and take 5 s in all, not 15.
//!
//! ```text
//! cargo run --example gevent_spawn              # both parts
//! cargo run --example gevent_spawn -- --sleep-ms 100   # the second part with shorter sleeps
//! ```

use std::time::Duration;

use kettle::green;

fn f(n: u32, pause: Option<Duration>) {
    for i in 0..n {
        println!("{} {i}", green::getcurrent());
        if let Some(pause) = pause {
            // Simulates a slow operation; note: green::sleep, not std::thread::sleep.
            green::sleep(pause);
        }
    }
}

/// The seed's program: spawn g1, g2, g3 running f(5), then join them in order.
fn program(pause: Option<Duration>) {
    let spawn = |n| {
        green::Builder::new()
            .name(format!("f({n})"))
            .spawn(move || f(n, pause))
    };
    let g1 = spawn(5);
    let g2 = spawn(5);
    let g3 = spawn(5);
    g1.join().expect("g1");
    g2.join().expect("g2");
    g3.join().expect("g3");
}

fn main() {
    let mut sleep = Duration::from_secs(1);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, ms] if flag == "--sleep-ms" => match ms.parse() {
            Ok(ms) => sleep = Duration::from_millis(ms),
            Err(_) => {
                eprintln!("usage: gevent_spawn [--sleep-ms MS]");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!("usage: gevent_spawn [--sleep-ms MS]");
            std::process::exit(2);
        }
    }
    green::run(move || {
        println!("# in order (no sleep)");
        program(None);
        println!("# interleaved (green::sleep after each line)");
        let start = std::time::Instant::now();
        program(Some(sleep));
        println!("# took {:.1} s", start.elapsed().as_secs_f64());
    })
    .expect("the main green thread");
}
