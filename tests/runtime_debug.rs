//! Debug mode (asyncio's `loop.set_debug(True)`): slow-step warnings naming the culprit, and
//! the warning for a loop destroyed with tasks still pending.
//!
//! Events are captured with a small `tracing::Subscriber` installed for the test's thread only
//! (`tracing::subscriber::with_default`), so tests running in parallel do not see each other's
//! events.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use kettle::EventLoop;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The target of the slow-callback warnings.
const DEBUG_TARGET: &str = "kettle::debug";
const HOUR: Duration = Duration::from_secs(3600);

/// One captured event.
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    target: String,
    message: String,
    fields: Vec<(String, String)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A subscriber that records every event.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    fn events(&self) -> Vec<Captured> {
        self.events.lock().unwrap().clone()
    }

    /// Runs `f` with this subscriber as the thread's default.
    fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::subscriber::with_default(self.clone(), f)
    }

    /// Slow-step warnings (target `kettle::debug`, level WARN).
    fn slow_warnings(&self) -> Vec<Captured> {
        self.events()
            .into_iter()
            .filter(|e| e.target == DEBUG_TARGET && e.level == Level::WARN)
            .collect()
    }
}

struct FieldVisitor<'a>(&'a mut Captured);

impl Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.0.fields.push((field.name().to_string(), text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.message = value.to_string();
        } else {
            self.0
                .fields
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut captured = Captured {
            level: *meta.level(),
            target: meta.target().to_string(),
            message: String::new(),
            fields: Vec::new(),
        };
        event.record(&mut FieldVisitor(&mut captured));
        self.events.lock().unwrap().push(captured);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn debug_loop(threshold: Duration) -> EventLoop {
    EventLoop::builder()
        .debug(true)
        .slow_callback_duration(threshold)
        .build()
        .expect("create an event loop")
}

#[test]
fn builder_settings_are_visible() {
    let lp = debug_loop(Duration::from_millis(42));
    assert!(lp.debug());
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(42));
    lp.set_debug(false);
    assert!(!lp.debug());
    lp.set_slow_callback_duration(Duration::from_millis(7));
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(7));
    let plain = EventLoop::builder().debug(false).build().unwrap();
    assert_eq!(
        plain.slow_callback_duration(),
        kettle::DEFAULT_SLOW_CALLBACK_DURATION
    );
    assert_eq!(
        kettle::DEFAULT_SLOW_CALLBACK_DURATION,
        Duration::from_millis(100)
    );
}

#[test]
fn a_task_that_blocks_the_loop_is_named_in_a_warning() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = debug_loop(Duration::from_millis(100));
        let t = lp.create_task(async {
            thread::sleep(Duration::from_millis(150));
            "done"
        });
        t.set_name("sleepy-task");
        assert_eq!(lp.run_until_complete(t).unwrap(), "done");
    });
    let warnings = cap.slow_warnings();
    let hits: Vec<_> = warnings
        .iter()
        .filter(|e| e.message.contains("sleepy-task"))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one slow-step warning naming the task, got {warnings:#?}"
    );
    if let Some(took) = hits[0].field("took_ms") {
        let took: f64 = took.parse().expect("took_ms is a number");
        assert!(took >= 150.0, "took_ms = {took}");
    }
}

#[test]
fn the_default_task_name_is_used_in_the_warning() {
    let cap = Capture::default();
    let name = cap.during(|| {
        let lp = debug_loop(Duration::from_millis(50));
        let t = lp.create_task(async { thread::sleep(Duration::from_millis(80)) });
        let name = t.name();
        lp.run_until_complete(t).unwrap();
        name
    });
    assert!(name.starts_with("Task-"));
    let warnings = cap.slow_warnings();
    assert!(
        warnings.iter().any(|e| e.message.contains(&name)),
        "no warning names {name}: {warnings:#?}"
    );
}

#[test]
fn fast_tasks_are_not_warned_about() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = debug_loop(Duration::from_millis(100));
        let t = lp.create_task(async {
            let mut sum = 0u64;
            for i in 0..100 {
                sum += i;
                kettle::yield_now().await;
            }
            kettle::sleep(Duration::from_millis(20)).await;
            sum
        });
        t.set_name("quick-task");
        assert_eq!(lp.run_until_complete(t).unwrap(), 4950);
        let l = lp.clone();
        lp.call_soon(move || l.stop());
        lp.run_forever().unwrap();
    });
    let warnings = cap.slow_warnings();
    assert!(
        warnings.is_empty(),
        "fast work was reported slow: {warnings:#?}"
    );
}

#[test]
fn no_warning_when_debug_mode_is_off() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = EventLoop::builder()
            .debug(false)
            .slow_callback_duration(Duration::from_millis(10))
            .build()
            .unwrap();
        let t = lp.create_task(async { thread::sleep(Duration::from_millis(50)) });
        t.set_name("sleepy-but-unwatched");
        lp.run_until_complete(t).unwrap();
    });
    let warnings = cap.slow_warnings();
    assert!(warnings.is_empty(), "debug is off: {warnings:#?}");
}

#[test]
fn set_debug_turns_the_check_on_for_a_running_program() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = EventLoop::builder().debug(false).build().unwrap();
        lp.set_debug(true);
        lp.set_slow_callback_duration(Duration::from_millis(30));
        let t = lp.create_task(async { thread::sleep(Duration::from_millis(60)) });
        t.set_name("late-debug");
        lp.run_until_complete(t).unwrap();
    });
    assert!(cap
        .slow_warnings()
        .iter()
        .any(|e| e.message.contains("late-debug")));
}

#[test]
fn a_slow_callback_is_warned_about() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = debug_loop(Duration::from_millis(100));
        let l = lp.clone();
        lp.call_soon(move || {
            thread::sleep(Duration::from_millis(150));
            l.stop();
        });
        lp.run_forever().unwrap();
    });
    let warnings = cap.slow_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].message.contains("callback"),
        "{:?}",
        warnings[0].message
    );
}

#[test]
fn a_slow_run_until_complete_future_is_warned_about() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = debug_loop(Duration::from_millis(100));
        lp.run_until_complete(async { thread::sleep(Duration::from_millis(150)) });
    });
    assert_eq!(cap.slow_warnings().len(), 1, "{:#?}", cap.events());
}

/// Sets its flag when dropped: proves a task's future was destroyed.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn pending_warnings(cap: &Capture) -> Vec<Captured> {
    cap.events()
        .into_iter()
        .filter(|e| e.level == Level::WARN && e.message.contains("pending"))
        .collect()
}

#[test]
fn dropping_a_loop_with_a_pending_task_warns() {
    let cap = Capture::default();
    let dropped = Rc::new(Cell::new(false));
    let guard = DropFlag(dropped.clone());
    let task = cap.during(|| {
        let lp = EventLoop::builder().debug(false).build().unwrap();
        let t = lp.create_task(async move {
            let _guard = guard;
            kettle::sleep(HOUR).await;
        });
        t.set_name("forgotten-task");
        // Let it start and park on its timer.
        lp.run_until_complete(kettle::yield_now());
        assert!(!t.done());
        drop(lp);
        t
    });
    let warnings = pending_warnings(&cap);
    assert_eq!(warnings.len(), 1, "{:#?}", cap.events());
    assert!(
        warnings[0].message.contains("forgotten-task"),
        "the warning should name the task: {:?}",
        warnings[0].message
    );
    assert!(dropped.get(), "the pending task's future was destroyed");
    assert!(task.done());
    assert!(task.cancelled());
}

#[test]
fn closing_a_loop_with_pending_tasks_warns_once() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = EventLoop::builder().debug(false).build().unwrap();
        let a = lp.create_task(kettle::sleep(HOUR));
        a.set_name("pending-a");
        let b = lp.create_task(kettle::sleep(HOUR));
        b.set_name("pending-b");
        lp.close().unwrap();
        lp.close().unwrap();
        drop(lp);
        assert!(a.cancelled() && b.cancelled());
    });
    let warnings = pending_warnings(&cap);
    assert_eq!(warnings.len(), 1, "{:#?}", cap.events());
    assert!(warnings[0].message.contains("pending-a"));
    assert!(warnings[0].message.contains("pending-b"));
}

#[test]
fn closing_a_loop_with_no_pending_task_is_silent() {
    let cap = Capture::default();
    cap.during(|| {
        let lp = EventLoop::builder().debug(true).build().unwrap();
        let t = lp.create_task(async { 1 });
        assert_eq!(lp.run_until_complete(t).unwrap(), 1);
        lp.close().unwrap();
        let lp2 = EventLoop::builder().debug(true).build().unwrap();
        drop(lp2);
    });
    let warnings: Vec<_> = cap
        .events()
        .into_iter()
        .filter(|e| e.level <= Level::WARN)
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
