//! The workloads: one module each, every module with a function per runtime it runs on, all
//! running the same program and returning the same result keys.
//!
//! `spawn`, `sleep` and `pingpong` compare Kettle's event loop with tokio's. The green-thread
//! workloads compare Kettle's generators and green threads with stackful-coroutine anchors:
//! `gen-switch` with corosensei's bare switch (the floor) and Python's generators,
//! `greenlet-switch` with Python's greenlet,
//! `green-spawn` and `green-sleep` with the `may` crate (one worker) and gevent,
//! `green-pingpong` with Kettle's own async `pingpong`. The first runtime of each workload
//! ([`Workload::runtimes`]) is the subject: the ratio lines divide its medians by the others'.
//!
//! `echo`, `http`, `https`, `client_get` and `ws_echo` are the exceptions: they need a server
//! and a client process on two cores, so each has its own commands, parser and orchestration
//! ([`echo`], [`http`], [`https`], [`client_get`], [`ws_echo`]), built on
//! [`crate::netbench`].
//!
//! To add a single-process workload: write `src/workloads/NAME.rs` with its argument type and
//! a function per runtime, add a variant to [`Workload`], and a line to [`Workload::parse`],
//! [`Workload::name`], [`Workload::runtimes`], [`Workload::params`], [`Workload::run`] and
//! `DESCRIPTIONS` (the usage message). The harness needs no change.

pub mod client_get;
pub mod echo;
pub mod gen_switch;
pub mod green_pingpong;
pub mod green_sleep;
pub mod green_spawn;
pub mod greenlet_switch;
pub mod http;
pub mod https;
pub mod pingpong;
pub mod sleep;
pub mod spawn;
pub mod ws_echo;

use crate::harness::{Fields, Runtime};

/// Each single-process workload's command-line form and what it does, for the usage message
/// ([`usage`] adds the runtimes).
const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "spawn N",
        "spawn N tasks, task i returning i; await them in order; report the sum",
    ),
    (
        "sleep N",
        "N tasks sleeping pseudo-random 0..=1000 ms at once; ideal elapsed = max delay",
    ),
    (
        "pingpong N",
        "N round trips between two tasks over two capacity-1 channels",
    ),
    (
        "gen-switch N",
        "N send/yield round trips into a generator that yields back what it is sent",
    ),
    (
        "greenlet-switch N",
        "N greenlet switches there and back between the main greenlet and a child",
    ),
    (
        "green-spawn N",
        "spawn N green threads, thread i returning i; join all; report the sum",
    ),
    (
        "green-sleep N",
        "N green threads sleeping `sleep`'s delays at once; ideal elapsed = max delay",
    ),
    (
        "green-pingpong N",
        "`pingpong` between two green threads, beside pingpong's two async tasks",
    ),
];

/// The usage lines of the single-process workloads: each with its description and its
/// runtimes, taken from [`Workload::runtimes`] so the message cannot drift from the code.
pub fn usage() -> String {
    let mut out = String::new();
    for (form, what) in DESCRIPTIONS {
        let name = form.split(' ').next().unwrap_or(form);
        let runtimes = Workload::parse(name, &["1".to_string()])
            .map(|w| {
                let names: Vec<&str> = w.runtimes().iter().map(|rt| rt.name()).collect();
                names.join(", ")
            })
            .unwrap_or_default();
        out += &format!("  {form:<18}{what}\n  {:<18}runtimes: {runtimes}\n", "");
    }
    out
}

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
    /// `gen-switch N`
    GenSwitch {
        /// Number of send/yield round trips.
        n: u64,
    },
    /// `greenlet-switch N`
    GreenletSwitch {
        /// Number of switch round trips.
        n: u64,
    },
    /// `green-spawn N`
    GreenSpawn {
        /// Number of green threads.
        n: u64,
    },
    /// `green-sleep N`
    GreenSleep {
        /// Number of sleeping green threads.
        n: u64,
    },
    /// `green-pingpong N`
    GreenPingPong {
        /// Number of round trips.
        n: u64,
    },
}

impl Workload {
    /// Parses `NAME ARGS...` (everything after the global options are removed). The error is a
    /// sentence for the usage message.
    pub fn parse(name: &str, args: &[String]) -> Result<Workload, String> {
        let make = match name {
            "spawn" => |n| Workload::Spawn { n },
            "sleep" => |n| Workload::Sleep { n },
            "pingpong" => |n| Workload::PingPong { n },
            "gen-switch" => |n| Workload::GenSwitch { n },
            "greenlet-switch" => |n| Workload::GreenletSwitch { n },
            "green-spawn" => |n| Workload::GreenSpawn { n },
            "green-sleep" => |n| Workload::GreenSleep { n },
            "green-pingpong" => |n| Workload::GreenPingPong { n },
            _ => return Err(format!("unknown workload `{name}`")),
        };
        Ok(make(one_count(name, args)?))
    }

    /// The workload's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Spawn { .. } => "spawn",
            Workload::Sleep { .. } => "sleep",
            Workload::PingPong { .. } => "pingpong",
            Workload::GenSwitch { .. } => "gen-switch",
            Workload::GreenletSwitch { .. } => "greenlet-switch",
            Workload::GreenSpawn { .. } => "green-spawn",
            Workload::GreenSleep { .. } => "green-sleep",
            Workload::GreenPingPong { .. } => "green-pingpong",
        }
    }

    /// The runtimes this workload runs on, measured in this order by default. The first is
    /// the subject of the comparison: the ratio lines divide its medians by each other's.
    pub fn runtimes(&self) -> &'static [Runtime] {
        use Runtime::*;
        match self {
            Workload::Spawn { .. } | Workload::Sleep { .. } | Workload::PingPong { .. } => {
                &[Kettle, Tokio]
            }
            Workload::GenSwitch { .. } => &[Kettle, Corosensei, Python],
            Workload::GreenletSwitch { .. } => &[Kettle, PythonGreenlet],
            Workload::GreenSpawn { .. } | Workload::GreenSleep { .. } => {
                &[KettleGreen, May, PythonGevent]
            }
            Workload::GreenPingPong { .. } => &[KettleGreen, Kettle],
        }
    }

    /// The medians the ratio lines compare, as (label in the ratio line, result key).
    pub fn ratio_keys(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            // The labels of the first workloads' ratio lines, kept as they were.
            Workload::Spawn { .. }
            | Workload::Sleep { .. }
            | Workload::PingPong { .. }
            | Workload::GreenSpawn { .. }
            | Workload::GreenSleep { .. } => &[("elapsed", "elapsed_s"), ("rss", "peak_rss_mb")],
            // The memory of a generator switch is noise around each process's own baseline.
            Workload::GenSwitch { .. } | Workload::GreenletSwitch { .. } => {
                &[("ns_per_rt", "ns_per_rt")]
            }
            Workload::GreenPingPong { .. } => &[("ns_per_rt", "ns_per_rt"), ("rss", "peak_rss_mb")],
        }
    }

    /// The arguments as result-line fields, so every line says what was measured.
    pub fn params(&self) -> Fields {
        match *self {
            Workload::Spawn { n }
            | Workload::Sleep { n }
            | Workload::PingPong { n }
            | Workload::GenSwitch { n }
            | Workload::GreenletSwitch { n }
            | Workload::GreenSpawn { n }
            | Workload::GreenSleep { n }
            | Workload::GreenPingPong { n } => Fields::new().with("n", n),
        }
    }

    /// Runs the workload once on `runtime` in this process and returns its result fields
    /// (measurements and checksums; the harness adds identity and, unless a runtime in another
    /// process reported its own, memory). An error says why there is no result: a runtime
    /// this workload does not run on, or an anchor that failed.
    pub fn run(&self, runtime: Runtime) -> Result<Fields, String> {
        Ok(match (*self, runtime) {
            (Workload::Spawn { n }, Runtime::Kettle) => spawn::kettle(n),
            (Workload::Spawn { n }, Runtime::Tokio) => spawn::tokio(n),
            (Workload::Sleep { n }, Runtime::Kettle) => sleep::kettle(n),
            (Workload::Sleep { n }, Runtime::Tokio) => sleep::tokio(n),
            (Workload::PingPong { n }, Runtime::Kettle) => pingpong::kettle(n),
            (Workload::PingPong { n }, Runtime::Tokio) => pingpong::tokio(n),
            (Workload::GenSwitch { n }, Runtime::Kettle) => gen_switch::kettle(n),
            (Workload::GenSwitch { n }, Runtime::Corosensei) => gen_switch::corosensei(n),
            (Workload::GenSwitch { n }, Runtime::Python) => gen_switch::python(n)?,
            (Workload::GreenletSwitch { n }, Runtime::Kettle) => greenlet_switch::kettle(n),
            (Workload::GreenletSwitch { n }, Runtime::PythonGreenlet) => {
                greenlet_switch::python(n)?
            }
            (Workload::GreenSpawn { n }, Runtime::KettleGreen) => green_spawn::kettle(n),
            (Workload::GreenSpawn { n }, Runtime::May) => green_spawn::may(n),
            (Workload::GreenSpawn { n }, Runtime::PythonGevent) => green_spawn::gevent(n)?,
            (Workload::GreenSleep { n }, Runtime::KettleGreen) => green_sleep::kettle(n),
            (Workload::GreenSleep { n }, Runtime::May) => green_sleep::may(n),
            (Workload::GreenSleep { n }, Runtime::PythonGevent) => green_sleep::gevent(n)?,
            (Workload::GreenPingPong { n }, Runtime::KettleGreen) => {
                green_pingpong::kettle_green(n)
            }
            // The async side of the green comparison is the `pingpong` workload itself.
            (Workload::GreenPingPong { n }, Runtime::Kettle) => pingpong::kettle(n),
            (w, rt) => return Err(format!("`{}` does not run on {rt}", w.name())),
        })
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

    // Tiny versions of every workload on every runtime it runs on must agree on their
    // checksums; this is what makes the timings comparable. The Python anchors are skipped
    // (with a note on stderr) only where the machine lacks python3 or gevent: they are optional
    // anchors of the benchmark, not part of what it checks.
    #[test]
    fn runtimes_agree() {
        for w in [
            Workload::Spawn { n: 100 },
            Workload::Sleep { n: 20 },
            Workload::PingPong { n: 100 },
            Workload::GenSwitch { n: 100 },
            Workload::GreenletSwitch { n: 100 },
            Workload::GreenSpawn { n: 100 },
            Workload::GreenSleep { n: 20 },
            Workload::GreenPingPong { n: 100 },
        ] {
            let mut lines = Vec::new();
            for &rt in w.runtimes() {
                if let Some(why) = rt.unavailable() {
                    eprintln!("runtimes_agree: {} on {rt} skipped: {why}", w.name());
                    continue;
                }
                let result = w.run(rt).unwrap_or_else(|e| panic!("{}: {e}", w.name()));
                lines.push(Fields::new().with("runtime", rt).with_all(result));
            }
            // Kettle's side and at least one anchor, however few Python anchors there are.
            assert!(lines.len() >= 2, "{lines:?}");
            let refs: Vec<&Fields> = lines.iter().collect();
            assert!(
                crate::harness::inconsistencies(&refs).is_empty(),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn usage_lists_every_workload_with_its_runtimes() {
        let text = usage();
        for (form, _) in DESCRIPTIONS {
            let name = form.split(' ').next().unwrap();
            assert!(Workload::parse(name, &args(&["1"])).is_ok(), "{form}");
        }
        assert!(text.contains("runtimes: kettle, tokio\n"), "{text}");
        assert_eq!(text.matches("runtimes: ").count(), DESCRIPTIONS.len());
    }

    #[test]
    fn other_runtimes_are_refused() {
        assert!(Workload::Spawn { n: 1 }.run(Runtime::May).is_err());
        assert!(Workload::GenSwitch { n: 1 }.run(Runtime::Tokio).is_err());
    }
}
