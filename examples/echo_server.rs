//! Seed 003's TCP echo server: answers every message with `"{peer} Your msg {data}"`.
//!
//! ```text
//! cargo run --example echo_server              # serves on 127.0.0.1:9999
//! cargo run --example echo_server -- --port 7000
//! ```
//!
//! Try it with `nc 127.0.0.1 9999`. Every client gets its own handler task, so many can talk
//! at once on the one thread. Unlike the seed's loop, which spins once the client leaves
//! (`read` keeps returning `b''`), the handler ends when the client closes.

use std::io;

use kettle::net::{StreamReader, StreamWriter};

/// Where the seed serves.
const HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 9999;

/// One client's conversation: read up to 1 KiB, answer it, until the client closes.
pub async fn handle(mut reader: StreamReader, writer: StreamWriter) -> io::Result<()> {
    // Seed: client = writer.get_extra_info('peername'), printed here as ip:port.
    let client = match writer.get_extra_info("peername") {
        Some(addr) => addr.to_string(),
        None => "unknown".to_string(),
    };
    loop {
        let data = reader.read(1024).await?;
        if data.is_empty() {
            break;
        }
        writer.write(reply(&client, &data).as_bytes());
        writer.drain().await?;
    }
    writer.close();
    writer.wait_closed().await
}

/// The seed's `"{} Your msg {}".format(client, data.decode())`; bytes that are not UTF-8 are
/// shown as U+FFFD rather than ending the connection.
pub fn reply(client: &str, data: &[u8]) -> String {
    format!("{client} Your msg {}", String::from_utf8_lossy(data))
}

/// `--port P` (or `--port=P`); anything else is an error message.
pub fn parse_port(args: &[String]) -> Result<u16, String> {
    let mut port = DEFAULT_PORT;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = if arg == "--port" {
            it.next().ok_or("--port needs a value")?.as_str()
        } else if let Some(v) = arg.strip_prefix("--port=") {
            v
        } else {
            return Err(format!(
                "unknown argument {arg:?} (usage: echo_server [--port P])"
            ));
        };
        port = value
            .parse()
            .map_err(|_| format!("invalid port {value:?}"))?;
    }
    Ok(port)
}

#[kettle::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match parse_port(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("echo_server: {e}");
            std::process::exit(2);
        }
    };
    let server = match kettle::start_server(handle, HOST, port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo_server: cannot listen on {HOST}:{port}: {e}");
            std::process::exit(1);
        }
    };
    for addr in server.sockets() {
        println!("Serving on {addr}");
    }
    server.serve_forever().await;
}
