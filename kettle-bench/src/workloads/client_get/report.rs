//! What `client-get` prints besides the run and median lines: the `ratio` lines, the `target`
//! lines for Kettle's goals, and the check that flags a run disturbed by other load.

use super::Client;
use crate::harness::{self, Fields};

/// Whether a run looks disturbed by other load: on an idle machine the closed loop keeps the
/// client or the server busy all the time, so both well below one core means the two were
/// waiting for the CPU, not for each other.
pub fn looks_disturbed(line: &Fields) -> bool {
    let util = |key: &str| line.get(key).and_then(|v| v.parse::<f64>().ok());
    matches!(
        (util("client_cpu_util"), util("server_cpu_util")),
        (Some(c), Some(s)) if c < 0.8 && s < 0.8
    )
}

/// How a `target` line judges a ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    /// The ratio must not exceed this (a cost).
    AtMost(f64),
    /// The ratio must reach this (a rate).
    AtLeast(f64),
}

/// Kettle's goals against the anchors (issue 10): (anchor, key, bound on kettle/anchor).
const TARGETS: &[(Client, &str, Bound)] = &[
    (Client::Reqwest, "client_cpu_us_per_req", Bound::AtMost(0.8)),
    (Client::Hyper, "client_cpu_us_per_req", Bound::AtMost(1.0)),
    (Client::Aiohttp, "req_per_s", Bound::AtLeast(10.0)),
];

/// The keys of a `ratio` line.
const RATIO_KEYS: [&str; 3] = [
    "client_cpu_us_per_req",
    "req_per_s",
    "server_cpu_us_per_req",
];

/// The subject of the ratios: Kettle if it was measured, else the first client that was.
fn subject(measured: &[Client]) -> Option<Client> {
    if measured.contains(&Client::Kettle) {
        Some(Client::Kettle)
    } else {
        measured.first().copied()
    }
}

/// `ratio A/B KEY=... workload=client-get conns=C` for the subject over every other client.
pub fn ratio_lines(medians: &[(Client, Fields)], params: &Fields) -> Vec<String> {
    let clients: Vec<Client> = medians.iter().map(|(c, _)| *c).collect();
    let Some(subject) = subject(&clients) else {
        return Vec::new();
    };
    let median_of = |c: Client| medians.iter().find(|(m, _)| *m == c).map(|(_, f)| f);
    let Some(mine) = median_of(subject) else {
        return Vec::new();
    };
    let about = Fields::new()
        .with("workload", "client-get")
        .with_all(params.clone());
    medians
        .iter()
        .filter(|(c, _)| *c != subject)
        .map(|(other, theirs)| {
            let mut line = format!("ratio {}/{}", subject.name(), other.name());
            for key in RATIO_KEYS {
                line += &format!(" {key}={}", harness::ratio(mine, theirs, key));
            }
            format!("{line} {about}")
        })
        .collect()
}

/// `target kettle/ANCHOR key=KEY ratio=R at_most|at_least=B met=yes|no` for each of
/// [`TARGETS`] whose two clients have medians; `met=no` also when the ratio is not a number.
pub fn target_lines(medians: &[(Client, Fields)]) -> Vec<String> {
    let median_of = |c: Client| medians.iter().find(|(m, _)| *m == c).map(|(_, f)| f);
    let Some(kettle) = median_of(Client::Kettle) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for &(anchor, key, bound) in TARGETS {
        let Some(theirs) = median_of(anchor) else {
            continue;
        };
        let ratio = harness::ratio(kettle, theirs, key);
        let value = ratio.parse::<f64>().ok().filter(|r| r.is_finite());
        let (word, limit, met) = match bound {
            Bound::AtMost(b) => ("at_most", b, value.is_some_and(|r| r <= b)),
            Bound::AtLeast(b) => ("at_least", b, value.is_some_and(|r| r >= b)),
        };
        lines.push(format!(
            "target kettle/{} key={key} ratio={ratio} {word}={limit} met={}",
            anchor.name(),
            if met { "yes" } else { "no" }
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disturbed_runs_have_both_sides_idle() {
        let line = |s: &str| Fields::parse(s).unwrap();
        assert!(looks_disturbed(&line(
            "client_cpu_util=0.3 server_cpu_util=0.2"
        )));
        assert!(!looks_disturbed(&line(
            "client_cpu_util=0.99 server_cpu_util=0.5"
        )));
        assert!(!looks_disturbed(&line(
            "client_cpu_util=0.5 server_cpu_util=0.95"
        )));
        assert!(!looks_disturbed(&line("client_cpu_util=0.3")));
    }

    fn medians(spec: &[(Client, &str)]) -> Vec<(Client, Fields)> {
        spec.iter()
            .map(|&(c, s)| (c, Fields::parse(s).unwrap()))
            .collect()
    }

    #[test]
    fn ratios_over_kettle_or_the_first_client() {
        let params = Fields::new().with("conns", 64);
        let m = medians(&[
            (
                Client::Hyper,
                "client_cpu_us_per_req=10 req_per_s=100 server_cpu_us_per_req=4",
            ),
            (
                Client::Kettle,
                "client_cpu_us_per_req=5 req_per_s=200 server_cpu_us_per_req=4",
            ),
            (Client::Aiohttp, "client_cpu_us_per_req=100 req_per_s=10"),
        ]);
        assert_eq!(
            ratio_lines(&m, &params),
            [
                "ratio kettle/hyper client_cpu_us_per_req=0.500 req_per_s=2.000 \
                 server_cpu_us_per_req=1.000 workload=client-get conns=64",
                "ratio kettle/aiohttp client_cpu_us_per_req=0.050 req_per_s=20.000 \
                 server_cpu_us_per_req=nan workload=client-get conns=64",
            ]
        );
        let without_kettle = &m[..1].iter().chain(&m[2..]).cloned().collect::<Vec<_>>();
        assert_eq!(
            ratio_lines(without_kettle, &params),
            [
                "ratio hyper/aiohttp client_cpu_us_per_req=0.100 req_per_s=10.000 \
              server_cpu_us_per_req=nan workload=client-get conns=64"
            ]
        );
        assert!(ratio_lines(&[], &params).is_empty());
    }

    #[test]
    fn targets_need_kettle_and_say_whether_they_are_met() {
        let m = medians(&[
            (Client::Kettle, "client_cpu_us_per_req=9 req_per_s=90000"),
            (Client::Reqwest, "client_cpu_us_per_req=10 req_per_s=50000"),
            (Client::Hyper, "client_cpu_us_per_req=9 req_per_s=60000"),
            (Client::Aiohttp, "client_cpu_us_per_req=135 req_per_s=7400"),
        ]);
        assert_eq!(
            target_lines(&m),
            [
                "target kettle/reqwest key=client_cpu_us_per_req ratio=0.900 at_most=0.8 met=no",
                "target kettle/hyper key=client_cpu_us_per_req ratio=1.000 at_most=1 met=yes",
                "target kettle/aiohttp key=req_per_s ratio=12.162 at_least=10 met=yes",
            ]
        );
        assert!(target_lines(&m[1..]).is_empty());
        let zero = medians(&[
            (Client::Kettle, "req_per_s=1"),
            (Client::Aiohttp, "req_per_s=0"),
        ]);
        assert_eq!(
            target_lines(&zero),
            ["target kettle/aiohttp key=req_per_s ratio=nan at_least=10 met=no"]
        );
    }
}
