//! Seed 003's client: fetch a page with `ClientSession`, print the status, then the body.
//!
//! ```text
//! cargo run --example web_app &                  # the server it fetches by default
//! cargo run --example client                     # GET http://127.0.0.1:8000/
//! cargo run --example client -- https://example.com/
//! ```
//!
//! The Python it mirrors:
//!
//! ```python
//! async with ClientSession() as session:
//!     async with session.get(url) as res:
//!         print(res.status)
//!         print(await res.text())
//! ```
//!
//! A failure (refused connection, timeout, TLS error, invalid response) prints `error: ...`
//! naming its kind and exits with status 1.

use kettle::client::ClientSession;

/// The URL fetched when none is given: `web_app`'s front page.
const DEFAULT_URL: &str = "http://127.0.0.1:8000/";

async fn get_html(url: &str) -> kettle::Result<()> {
    let session = ClientSession::new();
    let result = async {
        let mut res = session.get(url).send().await?;
        println!("{}", res.status().as_u16());
        println!("{}", res.text().await?);
        kettle::Result::Ok(())
    }
    .await;
    session.close().await;
    result
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    if let Err(e) = kettle::run(get_html(&url)) {
        eprintln!("error ({:?}): {e}", e.kind());
        std::process::exit(1);
    }
}
