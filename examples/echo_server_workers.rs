//! Seed 003's TCP echo server on every core: one event loop per worker thread, each with its
//! own `start_server` on the same port (`SO_REUSEPORT`), the kernel spreading the clients.
//!
//! ```text
//! cargo run --example echo_server_workers                        # 127.0.0.1:9999, a loop per core
//! cargo run --example echo_server_workers -- --port 7000 --workers 2
//! ```
//!
//! Each client is answered as in `echo_server` (`"{peer} Your msg {data}"`). Ctrl+C or
//! SIGTERM stops every loop; each then prints how many clients it served:
//! `worker 0 served 12 clients`.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kettle::net::streams::{start_server_with, ServerOptions};
use kettle::net::{ListenOptions, StreamReader, StreamWriter};
use kettle::LoopGroup;

const HOST: &str = "127.0.0.1";

/// `echo_server`'s conversation: read up to 1 KiB, answer, until the client closes.
async fn handle(mut reader: StreamReader, writer: StreamWriter) -> io::Result<()> {
    let client = writer
        .get_extra_info("peername")
        .map_or_else(|| "unknown".to_string(), |a| a.to_string());
    loop {
        let data = reader.read(1024).await?;
        if data.is_empty() {
            break;
        }
        let reply = format!("{client} Your msg {}", String::from_utf8_lossy(&data));
        writer.write(reply.as_bytes());
        writer.drain().await?;
    }
    writer.close();
    writer.wait_closed().await
}

/// `--port P` and `--workers N`.
fn parse_args(args: &[String]) -> Result<(u16, Option<usize>), String> {
    let (mut port, mut workers) = (9999u16, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("invalid port {value:?}"))?
            }
            "--workers" => match value.parse() {
                Ok(n) if n > 0 => workers = Some(n),
                _ => return Err(format!("invalid worker count {value:?}")),
            },
            _ => {
                return Err(format!(
                    "unknown argument {arg:?} (usage: echo_server_workers [--port P] [--workers N])"
                ))
            }
        }
    }
    Ok((port, workers))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, workers) = parse_args(&args).unwrap_or_else(|e| {
        eprintln!("echo_server_workers: {e}");
        std::process::exit(2);
    });
    // Signals first, so one that arrives while the workers start is not lost.
    let lp = kettle::EventLoop::new().expect("event loop");
    let mut signals = lp
        .run_until_complete(async { kettle::signal::Signals::new(&[libc::SIGINT, libc::SIGTERM]) })
        .expect("install signal handlers");
    let served: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..workers.unwrap_or_else(|| LoopGroup::builder().worker_count()))
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut builder = LoopGroup::builder().thread_name("echo");
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let counts = served.clone();
    let group = builder
        .spawn(move |i| {
            let (counts, ready) = (counts.clone(), ready_tx.clone());
            async move {
                let options = ServerOptions {
                    listen: ListenOptions::new().reuse_port(true),
                    ..ServerOptions::default()
                };
                let handler = move |r, w| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                    handle(r, w)
                };
                match start_server_with(handler, HOST, port, options).await {
                    Ok(server) => {
                        let _ = ready.send(Ok(()));
                        server.serve_forever().await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(format!("worker {i}: {e}")));
                    }
                }
            }
        })
        .expect("start the workers");
    for _ in 0..group.len() {
        if let Ok(Err(e)) | Err(e) = ready_rx.recv().map_err(|e| e.to_string()) {
            eprintln!("echo_server_workers: cannot listen on {HOST}:{port}: {e}");
            std::process::exit(1);
        }
    }
    println!("Serving on {HOST}:{port} with {} workers", group.len());
    let sig = lp.run_until_complete(signals.recv());
    eprintln!("echo_server_workers: {sig:?}, stopping");
    group.stop();
    let _ = group.join();
    for (i, n) in served.iter().enumerate() {
        println!("worker {i} served {} clients", n.load(Ordering::Relaxed));
    }
}
