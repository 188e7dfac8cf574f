//! The `chat` example run as a process, with members on Kettle's WebSocket client (no browser:
//! `tests/chat_browser.rs` drives the page in Chromium): the page and its script are served,
//! every line reaches everyone with its sender's name, joins and leaves are announced, bad
//! input closes only the socket that sent it, and shutting down closes every socket with
//! 1001.

mod chat_support;
mod process_support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chat_support::{is, ChatServer, Member, EVENT_TIMEOUT};
use kettle::client::ClientSession;
use kettle::ws::{close_code, CloseFrame, Message};
use serde_json::json;

#[kettle::test]
async fn the_page_and_its_script_are_served() {
    let server = ChatServer::start();
    let session = ClientSession::new();

    let mut page = session.get(&server.url("/?name=alice")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.content_type().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/static/chat.js">"#), "{html}");

    let mut script = session.get(&server.url("/static/chat.js")).await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.content_type().contains("javascript"));
    assert!(script.text().await.unwrap().contains("new WebSocket("));

    // `/ws` is for WebSockets only.
    let plain = session.get(&server.url("/ws")).await.unwrap();
    assert_eq!(plain.status(), 400);
}

#[kettle::test]
async fn every_line_reaches_everyone_with_its_senders_name() {
    let server = ChatServer::start();

    let mut alice = Member::join(server.addr, "alice").await;
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.seen[0]["online"], json!(["alice"]));
    let join = alice.next().await;
    assert_eq!(
        join,
        json!({"kind": "join", "from": alice.id, "name": "alice"})
    );

    let mut bob = Member::join(server.addr, "bob").await;
    assert_eq!(bob.seen[0]["online"], json!(["alice", "bob"]));
    assert!(is(&bob.next().await, "join", "bob", None));
    assert!(is(&alice.next().await, "join", "bob", None));

    // Both get alice's line, alice too, with her name and id.
    alice.say("hello bob").await;
    let expected =
        json!({"kind": "message", "from": alice.id, "name": "alice", "text": "hello bob"});
    assert_eq!(alice.next().await, expected);
    assert_eq!(bob.next().await, expected);

    // Lines are trimmed; blank ones are not sent on.
    bob.say("   ").await;
    bob.say("  hi alice \n").await;
    for member in [&mut alice, &mut bob] {
        assert!(is(&member.next().await, "message", "bob", Some("hi alice")));
    }

    // Without ?name= the server names the member after its id; a name is cleaned of control
    // characters and cut to 32 characters.
    let mut anon = Member::join(server.addr, "").await;
    assert_eq!(anon.name, format!("user-{}", anon.id));
    assert!(is(&anon.next().await, "join", &anon.name, None));
    let long = Member::join(server.addr, &format!("%20eve%0A{}", "x".repeat(40))).await;
    assert_eq!(long.name, format!("eve{}", "x".repeat(29)));

    // A member that closes is announced as gone; so is one whose connection just drops.
    bob.ws.close(close_code::NORMAL, "bye").await.unwrap();
    let long_name = long.name.clone();
    drop(long);
    for member in [&mut alice, &mut anon] {
        let left = |seen: &[serde_json::Value], name: &str| {
            seen.iter().any(|e| is(e, "leave", name, None))
        };
        member
            .wait_until(
                "bob's and the dropped member's leaves",
                EVENT_TIMEOUT,
                |seen| left(seen, "bob") && left(seen, &long_name),
            )
            .await;
    }

    // Those still there go on chatting.
    anon.say("still here").await;
    alice
        .wait_for("anon's line", EVENT_TIMEOUT, |e| {
            is(e, "message", &anon.name, Some("still here"))
        })
        .await;
}

#[kettle::test]
async fn bad_input_closes_only_the_socket_that_sent_it() {
    let server = ChatServer::start();
    let mut alice = Member::join(server.addr, "alice").await;

    // Over 4 KiB: closed with 1009, and the room hears that mallory left.
    let mallory = Member::join(server.addr, "mallory").await;
    mallory.say(&"x".repeat(5000)).await;
    assert_closed_with(&mallory, close_code::MESSAGE_TOO_BIG).await;
    alice
        .wait_for("mallory's leave", EVENT_TIMEOUT, |e| {
            is(e, "leave", "mallory", None)
        })
        .await;

    // Binary: closed with 1003.
    let trudy = Member::join(server.addr, "trudy").await;
    trudy.ws.send_bytes(b"\x00\x01").await.unwrap();
    assert_closed_with(&trudy, close_code::UNSUPPORTED_DATA).await;
    alice
        .wait_for("trudy's leave", EVENT_TIMEOUT, |e| {
            is(e, "leave", "trudy", None)
        })
        .await;

    // Exactly 4 KiB is fine, and nothing the others said was lost.
    let long_line = "y".repeat(4096);
    alice.say(&long_line).await;
    alice
        .wait_for("alice's long line", EVENT_TIMEOUT, |e| {
            is(e, "message", "alice", Some(&long_line))
        })
        .await;
    let said: Vec<_> = alice
        .seen
        .iter()
        .filter(|e| e["kind"] == "message")
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
}

#[kettle::test]
async fn a_member_that_stops_reading_is_dropped_and_the_others_go_on() {
    let server = ChatServer::start();
    // Uncompressed, so the flood below costs no deflate time in a debug build.
    let alice = Member::join_with(server.addr, "alice", false).await;
    let bob = Member::join_with(server.addr, "bob", false).await;
    // Joins and never reads again: once the socket buffers between it and the server are
    // full, a send to it waits, and after the example's 5 s send timeout it is dropped.
    let stuck = Member::join_with(server.addr, "stuck", false).await;

    // Alice floods the room while she and bob read everything, until the room hears that
    // `stuck` left (a few MB fill the buffers); then she says one more line, which both
    // still get.
    let flooding = Rc::new(Cell::new(true));
    let last = "after the flood";
    let reader = |mut member: Member| {
        let flooding = flooding.clone();
        kettle::spawn(async move {
            let limit = Duration::from_secs(60);
            member
                .wait_for("stuck's leave", limit, |e| is(e, "leave", "stuck", None))
                .await;
            flooding.set(false);
            member
                .wait_for("the line after the flood", limit, |e| {
                    is(e, "message", "alice", Some(last))
                })
                .await;
            member.seen.clear();
        })
    };
    let writer = alice.ws.clone();
    let readers = [reader(alice), reader(bob)];
    let mut sent = 0;
    while flooding.get() {
        assert!(
            sent < 20_000,
            "stuck is still in the room after {sent} lines"
        );
        writer.send_str(&noise(sent, 4000)).await.unwrap();
        sent += 1;
    }
    writer.send_str(last).await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    drop(stuck);
}

/// `len` printable characters that permessage-deflate cannot shrink much (xorshift from
/// `seed`), so a flood fills socket buffers rather than compressing to nothing.
fn noise(seed: usize, len: usize) -> String {
    let mut x = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 94) as u8)
        })
        .collect()
}

/// Waits for the server's close of `member`'s socket and checks its code.
async fn assert_closed_with(member: &Member, code: u16) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match kettle::wait_for(member.ws.receive(), left).await {
            Ok(Ok(Message::Close(Some(CloseFrame { code: got, .. })))) => {
                assert_eq!(got, code, "{}", member.name);
                return;
            }
            // The join notices that came before the close.
            Ok(Ok(Message::Text(_))) => continue,
            other => panic!(
                "{}: expected a close with {code}, got {other:?}",
                member.name
            ),
        }
    }
}

#[kettle::test]
async fn shutting_down_closes_every_socket_with_1001() {
    let mut server = ChatServer::start();
    let alice = Member::join(server.addr, "alice").await;
    let bob = Member::join(server.addr, "bob").await;

    let pid = server.pid();
    // SAFETY: signalling the child process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    for member in [&alice, &bob] {
        assert_closed_with(member, close_code::GOING_AWAY).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        kettle::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}
