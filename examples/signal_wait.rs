//! Graceful shutdown on Ctrl+C (SIGINT) or SIGTERM, the way a server does it.
//!
//! ```text
//! cargo run --example signal_wait               # then press Ctrl+C, or `kill <pid>`
//! cargo run --example signal_wait -- --grace 5  # take 5 s to shut down
//! ```
//!
//! A task stands in for the server. When a signal arrives, main stops listening for signals,
//! cancels the server and takes `--grace` seconds (default 1) to "finish in-flight work"
//! before exiting with status 0. Because the listener is gone by then, the signals' default
//! dispositions are back: a second Ctrl+C during the grace period kills the program at once,
//! the escape hatch users expect.

use std::io;
use std::time::Duration;

use kettle::signal::{Signals, SIGINT, SIGTERM};

/// `--grace SECS` (or `--grace=SECS`); anything else is an error message.
fn parse_grace(args: &[String]) -> Result<Duration, String> {
    let mut grace = Duration::from_secs(1);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = if arg == "--grace" {
            it.next().ok_or("--grace needs a value")?.as_str()
        } else if let Some(v) = arg.strip_prefix("--grace=") {
            v
        } else {
            return Err(format!(
                "unknown argument {arg:?} (usage: signal_wait [--grace SECS])"
            ));
        };
        grace = value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| format!("invalid number of seconds {value:?}"))?;
    }
    Ok(grace)
}

async fn serve() {
    loop {
        kettle::sleep(Duration::from_secs(3600)).await;
    }
}

#[kettle::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let grace = match parse_grace(&args) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("signal_wait: {e}");
            std::process::exit(2);
        }
    };

    let mut signals = Signals::new(&[SIGINT, SIGTERM])?;
    let server = kettle::spawn(serve());
    println!(
        "pid {}: serving; waiting for SIGINT or SIGTERM",
        std::process::id()
    );

    let sig = signals.recv().await?;
    // Stop listening first: from here on a second Ctrl+C terminates the process.
    drop(signals);
    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
    println!("received {name}; shutting down (Ctrl+C again to force)");

    server.cancel();
    kettle::sleep(grace).await;
    println!("bye");
    Ok(())
}
