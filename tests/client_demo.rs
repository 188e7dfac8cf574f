//! Seed 003's client demo, `examples/client.rs`, run as a process against `examples/web_app.rs`
//! run as a process: it prints the status, then the body, as the seed's Python does.

mod process_support;

use std::process::Command;

use process_support::{example, free_port, start_example};

#[test]
fn client_prints_the_status_then_the_body_of_web_app_pages() {
    let (_server, port, banner) = start_example("web_app");
    assert!(banner.starts_with("Server started"), "{banner}");

    let out = Command::new(example("client"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "200\n<h1>Index</h1>\n"
    );

    let out = Command::new(example("client"))
        .arg(format!("http://127.0.0.1:{port}/hello/%E6%B0%B4"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "200\n<h1>hello, \u{6c34}!</h1>\n"
    );

    // A 404 is a response, not an error: the status and the page are printed.
    let out = Command::new(example("client"))
        .arg(format!("http://127.0.0.1:{port}/missing"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("404\n"));
}

#[test]
fn client_reports_failures_by_kind_and_exits_1() {
    let refused = format!("http://127.0.0.1:{}/", free_port());
    let out = Command::new(example("client"))
        .arg(&refused)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error (Connect): cannot connect"), "{err}");

    let out = Command::new(example("client"))
        .arg("ftp://127.0.0.1/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error (InvalidUrl)"), "{err}");
}
