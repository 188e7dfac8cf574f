//! The workloads: one module each, every module with a `kettle` and a `tokio` function that run
//! the same program on the two runtimes and return the same result keys.
//!
//! `echo` and `http` are the exceptions: they need a server and a client process on two cores,
//! so each has its own commands, parser and orchestration ([`echo`], [`http`]), built on
//! [`crate::netbench`].
//!
//! To add a single-process workload: write `src/workloads/echo_server.rs` with its
//! argument type, `kettle` and `tokio` functions, add a variant to [`Workload`], and a line to
//! [`Workload::parse`], [`Workload::params`], [`Workload::run`] and [`USAGE`]. The harness needs
//! no change.

pub mod echo;
pub mod http;
pub mod pingpong;
pub mod sleep;
pub mod spawn;

use crate::harness::{Fields, Runtime};

/// One line per workload, for the usage message.
pub const USAGE: &str =
    "  spawn N       spawn N tasks, task i returning i; await them in order; report the sum
  sleep N       N concurrent tasks sleeping pseudo-random 0..=1000 ms; ideal elapsed = max delay
  pingpong N    N round trips between two tasks over two capacity-1 channels";

/// A parsed workload with its arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// `spawn N`
    Spawn {
        /// Number of tasks.
        n: u64,
    },
    /// `sleep N`
    Sleep {
        /// Number of sleeping tasks.
        n: u64,
    },
    /// `pingpong N`
    PingPong {
        /// Number of round trips.
        n: u64,
    },
}

impl Workload {
    /// Parses `NAME ARGS...` (everything after the global options are removed). The error is a
    /// sentence for the usage message.
    pub fn parse(name: &str, args: &[String]) -> Result<Workload, String> {
        match name {
            "spawn" => Ok(Workload::Spawn {
                n: one_count(name, args)?,
            }),
            "sleep" => Ok(Workload::Sleep {
                n: one_count(name, args)?,
            }),
            "pingpong" => Ok(Workload::PingPong {
                n: one_count(name, args)?,
            }),
            _ => Err(format!("unknown workload `{name}`")),
        }
    }

    /// The workload's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Spawn { .. } => "spawn",
            Workload::Sleep { .. } => "sleep",
            Workload::PingPong { .. } => "pingpong",
        }
    }

    /// The arguments as result-line fields, so every line says what was measured.
    pub fn params(&self) -> Fields {
        match *self {
            Workload::Spawn { n } | Workload::Sleep { n } | Workload::PingPong { n } => {
                Fields::new().with("n", n)
            }
        }
    }

    /// Runs the workload once on `runtime` in this process and returns its result fields
    /// (measurements and checksums; the harness adds identity and memory).
    pub fn run(&self, runtime: Runtime) -> Fields {
        match (*self, runtime) {
            (Workload::Spawn { n }, Runtime::Kettle) => spawn::kettle(n),
            (Workload::Spawn { n }, Runtime::Tokio) => spawn::tokio(n),
            (Workload::Sleep { n }, Runtime::Kettle) => sleep::kettle(n),
            (Workload::Sleep { n }, Runtime::Tokio) => sleep::tokio(n),
            (Workload::PingPong { n }, Runtime::Kettle) => pingpong::kettle(n),
            (Workload::PingPong { n }, Runtime::Tokio) => pingpong::tokio(n),
        }
    }
}

/// The single positive integer argument `N` of the counting workloads. Underscores are allowed
/// (`1_000_000`) because counts in the millions are easy to mistype otherwise.
fn one_count(name: &str, args: &[String]) -> Result<u64, String> {
    if let Some(opt) = args.iter().find(|a| a.starts_with("--")) {
        return Err(format!("unknown option `{opt}` for `{name}`"));
    }
    let [arg] = args else {
        return Err(format!(
            "`{name}` takes exactly one argument N, got {}",
            args.len()
        ));
    };
    match arg.replace('_', "").parse::<u64>() {
        Ok(0) => Err(format!("`{name}` needs N >= 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "`{name}`: N must be a positive integer, got `{arg}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_counts() {
        assert_eq!(
            Workload::parse("spawn", &args(&["1_000"])),
            Ok(Workload::Spawn { n: 1000 })
        );
        assert!(Workload::parse("spawn", &args(&[])).is_err());
        assert!(Workload::parse("sleep", &args(&["0"])).is_err());
        assert!(Workload::parse("pingpong", &args(&["-3"])).is_err());
        assert!(Workload::parse("pingpong", &args(&["1", "2"])).is_err());
        assert!(Workload::parse("teapot", &args(&["1"])).is_err());
    }

    // Tiny versions of every workload on every runtime available in this build must agree on
    // their checksums; this is what makes the timings comparable.
    #[test]
    fn runtimes_agree() {
        for w in [
            Workload::Spawn { n: 100 },
            Workload::Sleep { n: 20 },
            Workload::PingPong { n: 100 },
        ] {
            let lines: Vec<Fields> = Runtime::ALL
                .into_iter()
                .map(|rt| Fields::new().with("runtime", rt).with_all(w.run(rt)))
                .collect();
            let refs: Vec<&Fields> = lines.iter().collect();
            assert!(
                crate::harness::inconsistencies(&refs).is_empty(),
                "{lines:?}"
            );
        }
    }
}
