//! The `chat` example's page in a real browser: headless Chromium loads
//! `/?name=browser&autotest=1` from the example run as a process, and a Kettle WebSocket
//! client chats with it. With `autotest=1` the page's own script (`examples/chat/static/chat.js`)
//! says "hello from chromium" once its socket is open, and answers every line from someone
//! else with "browser saw: " and the line as it shows it in its list. So the test sees, in
//! turn: the page's WebSocket handshake and join (browser → server), its line broadcast
//! (browser → server → test), its answer to the test's line (test → server → browser's DOM →
//! server → test), and, once Chromium is killed, the server announcing that it left.
//!
//! Chromium runs as its own process group, killed as a whole when the test ends. The tests
//! are skipped (and pass, saying so) where Chromium is not installed; `.ci/run` installs
//! Debian's `chromium`. `KETTLE_CHROMIUM=/path/to/chrome` picks another binary.

mod chat_support;
mod process_support;
mod web_app_support;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_support::{is, ChatServer, Member};
use serde_json::Value;
use web_app_support::TempDir;

/// How long Chromium may take for each step: starting it, loading the page and opening the
/// socket can take seconds on a busy CI machine.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `KETTLE_CHROMIUM`, or the first of Debian's, Ubuntu's and Google's
/// names on PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KETTLE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

/// A headless Chromium showing one URL, in a process group of its own (the browser, its
/// zygote, renderers and network service), all killed when it is dropped.
struct Browser {
    child: Child,
    log: PathBuf,
}

impl Browser {
    /// Starts `chromium` on `url` with a fresh profile in `dir`.
    fn launch(chromium: &PathBuf, dir: &TempDir, url: &str) -> Browser {
        let log = dir.path().join("chromium.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless=new",
                // Root in a container has no user namespace for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--mute-audio",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromium.display()));
        Browser { child, log }
    }

    /// Kills every process of the browser (SIGKILL: the pages get no chance to close their
    /// sockets, so the server sees the connections drop) and reaps the first.
    fn kill(&mut self) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: signalling the process group this test created for Chromium.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- chromium log:\n{log}");
        }
    }
}

/// Skips the test (returning `None`) where Chromium is not installed.
fn chromium_or_skip() -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        println!(
            "chromium is not installed: skipped (apt-get install chromium, \
             or set KETTLE_CHROMIUM)"
        );
    }
    found
}

#[kettle::test]
async fn chromium_chats_with_a_kettle_client() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = ChatServer::start();
    let mut tester = Member::join(server.addr, "tester").await;
    tester
        .wait_for("its own join", BROWSER_TIMEOUT, |e| {
            is(e, "join", "tester", None)
        })
        .await;

    let dir = TempDir::new("chat-browser");
    let mut browser = Browser::launch(&chromium, &dir, &server.url("/?name=browser&autotest=1"));

    // The page loaded, ran chat.js and opened its WebSocket: the server announces it.
    tester
        .wait_for("the browser's join", BROWSER_TIMEOUT, |e| {
            is(e, "join", "browser", None)
        })
        .await;
    // Browser → server → everyone.
    tester
        .wait_for("the browser's hello", BROWSER_TIMEOUT, |e| {
            is(e, "message", "browser", Some("hello from chromium"))
        })
        .await;
    // Test → server → the page, which shows the line in its list and answers with it.
    tester.say("ping from kettle").await;
    tester
        .wait_for("the browser's answer", BROWSER_TIMEOUT, |e| {
            is(
                e,
                "message",
                "browser",
                Some("browser saw: tester: ping from kettle"),
            )
        })
        .await;

    // The browser disappears without closing its socket; the server notices and says so.
    browser.kill();
    tester
        .wait_for("the browser's leave", BROWSER_TIMEOUT, |e| {
            is(e, "leave", "browser", None)
        })
        .await;
}

#[kettle::test]
async fn two_chromium_pages_chat_with_each_other() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    // Headless Chromium shows one page per process, so the two chat pages are frames of a
    // page of the test's own, served with the chat's files from a directory of the test's.
    let dir = TempDir::new("chat-browser-two");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chat/static");
    for file in ["index.html", "chat.js"] {
        dir.write(
            &format!("static/{file}"),
            std::fs::read(shipped.join(file)).unwrap(),
        );
    }
    let frame = |name: &str| format!("<iframe src='/?name={name}&amp;autotest=1'></iframe>");
    dir.write(
        "static/two.html",
        format!("<!doctype html>{}{}", frame("anna"), frame("boris")),
    );
    let static_dir = dir.path().join("static");
    let server = ChatServer::start_with(&["--static", static_dir.to_str().unwrap()]);
    let mut tester = Member::join(server.addr, "tester").await;
    let mut browser = Browser::launch(&chromium, &dir, &server.url("/static/two.html"));

    // Whichever page joins first greets the other ("hello NAME") and the second says
    // "hello from chromium" to the room; each answers the other's line as it shows it.
    let answered = |seen: &[Value], me: &str, other: &str| {
        let answer = format!("browser saw: {other}: ");
        seen.iter().any(|e| {
            e["kind"] == "message"
                && e["name"] == me
                && e["text"].as_str().is_some_and(|t| t.starts_with(&answer))
        })
    };
    tester
        .wait_until("each page's answer to the other", BROWSER_TIMEOUT, |seen| {
            answered(seen, "anna", "boris") && answered(seen, "boris", "anna")
        })
        .await;

    // Both vanish; the server announces both.
    browser.kill();
    let left = |seen: &[Value], name: &str| seen.iter().any(|e| is(e, "leave", name, None));
    tester
        .wait_until("both pages' leaves", BROWSER_TIMEOUT, |seen| {
            left(seen, "anna") && left(seen, "boris")
        })
        .await;
}
