//! `aiohttp` and `aiohttp-uvloop`: Python aiohttp's `ClientSession` on asyncio's own event loop
//! or on uvloop's, the clients Kettle's is modelled on.
//!
//! They run `kettle-bench/python/client_get.py` (embedded, like the other Python anchors; see
//! [`crate::python`]) in a `python3` started by the client child, which has pinned itself
//! already, so the interpreter inherits the core. The script measures its own window (CPU time
//! from `getrusage`, the server's from `/proc/PID/stat`) and prints the raw times; this module
//! turns them into a [`Measured`] so that every client's line is formatted by the same code.

use std::time::Duration;

use super::load::Measured;
use super::RunArgs;
use crate::harness::Fields;

/// The script's source.
const SCRIPT: &str = include_str!("../../../python/client_get.py");

/// One run of the script: `client` is `aiohttp` or `aiohttp-uvloop`, which picks the loop.
pub fn run(client: &str, args: &RunArgs) -> Result<Measured, String> {
    let line = crate::python::run_script(
        client,
        SCRIPT,
        &[
            client,
            &args.port.to_string(),
            &args.requests.to_string(),
            &args.warmup.to_string(),
            &args.conns.to_string(),
            // 0: no server to measure.
            &args.server_pid.unwrap_or(0).to_string(),
        ],
    )?;
    parse(&line)
}

/// The script's line: `requests=N elapsed_s=S client_cpu_s=S [server_cpu_s=S] peak_rss_mb=M`.
fn parse(line: &Fields) -> Result<Measured, String> {
    let number = |key: &str| -> Result<Option<f64>, String> {
        match line.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .map(Some)
                .ok_or_else(|| format!("the Python client printed {key}={v}")),
        }
    };
    let required = |key: &str| {
        number(key)?.ok_or_else(|| format!("the Python client printed no {key}: {line}"))
    };
    let requests = required("requests")?;
    if requests.fract() != 0.0 {
        return Err(format!("the Python client printed requests={requests}"));
    }
    Ok(Measured {
        requests: requests as u64,
        elapsed: Duration::from_secs_f64(required("elapsed_s")?),
        client_cpu: Duration::from_secs_f64(required("client_cpu_s")?),
        server_cpu: number("server_cpu_s")?.map(Duration::from_secs_f64),
        peak_rss_mb: Some(required("peak_rss_mb")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> Fields {
        Fields::parse(s).unwrap()
    }

    #[test]
    fn the_scripts_line() {
        let m = parse(&fields(
            "requests=10000 elapsed_s=1.5 client_cpu_s=1.25 server_cpu_s=0.5 peak_rss_mb=40.2",
        ))
        .unwrap();
        assert_eq!(
            m,
            Measured {
                requests: 10000,
                elapsed: Duration::from_millis(1500),
                client_cpu: Duration::from_millis(1250),
                server_cpu: Some(Duration::from_millis(500)),
                peak_rss_mb: Some(40.2),
            }
        );
        let no_server = parse(&fields(
            "requests=1 elapsed_s=1 client_cpu_s=1 peak_rss_mb=1",
        ))
        .unwrap();
        assert_eq!(no_server.server_cpu, None);
        for bad in [
            "elapsed_s=1 client_cpu_s=1 peak_rss_mb=1",
            "requests=1.5 elapsed_s=1 client_cpu_s=1 peak_rss_mb=1",
            "requests=1 elapsed_s=-1 client_cpu_s=1 peak_rss_mb=1",
            "requests=1 elapsed_s=1 client_cpu_s=nan peak_rss_mb=1",
            "requests=1 elapsed_s=1 client_cpu_s=1",
        ] {
            assert!(parse(&fields(bad)).is_err(), "{bad:?}");
        }
    }
}
