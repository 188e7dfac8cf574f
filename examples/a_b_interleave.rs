//! Seed 003: two coroutines taking turns on one thread.
//!
//! ```python
//! @asyncio.coroutine
//! def a():
//!     for x in range(3):
//!         print('a.x', x)
//!         yield
//!
//! @asyncio.coroutine
//! def b():
//!     for x in 'abc':
//!         print('b.x', x)
//!         yield
//!
//! loop = asyncio.get_event_loop()
//! tasks = [a(), b()]
//! loop.run_until_complete(asyncio.wait(tasks))
//! loop.close()
//! ```
//!
//! Each coroutine hands control back after every line, so the output alternates:
//! `a.x 0`, `b.x a`, `a.x 1`, `b.x b`, `a.x 2`, `b.x c`. No threads are involved: the
//! alternation is the loop's FIFO ready queue at work.
//!
//! `tests/runtime_tasks.rs` includes this file and checks the order, so the example and the
//! test run the same code.

use std::rc::Rc;

/// Where a coroutine's lines go: stdout here, a log in the test.
pub type Emit = Rc<dyn Fn(String)>;

/// Seed 003's `a()`: prints `a.x 0` .. `a.x 2`, yielding after each.
pub async fn a(emit: Emit) {
    for x in 0..3 {
        emit(format!("a.x {x}"));
        kettle::yield_now().await;
    }
}

/// Seed 003's `b()`: prints `b.x a` .. `b.x c`, yielding after each.
pub async fn b(emit: Emit) {
    for x in "abc".chars() {
        emit(format!("b.x {x}"));
        kettle::yield_now().await;
    }
}

/// The seed's main program: both coroutines as tasks on a new loop, run until both finish.
pub fn run_both(emit: Emit) {
    let lp = kettle::EventLoop::new().expect("create the event loop");
    let tasks = [lp.create_task(a(emit.clone())), lp.create_task(b(emit))];
    lp.run_until_complete(async move {
        for t in tasks {
            t.await.expect("a() and b() do not fail");
        }
    });
    lp.close().expect("the loop is not running");
}

fn main() {
    run_both(Rc::new(|line| println!("{line}")));
}
