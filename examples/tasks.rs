//! Seed 002, Demo4: three tasks sleeping 1, 2 and 3 seconds run concurrently, so the program
//! takes about 3 seconds, not 6.
//!
//! ```python
//! now = lambda: time.time()
//! async def func(x):
//!     print('Waiting for %d s' % x)
//!     await asyncio.sleep(x)
//!     return  'Done after {}s'.format(x)
//!
//! start = now()
//! tasks = [asyncio.ensure_future(func(1)), asyncio.ensure_future(func(2)),
//!          asyncio.ensure_future(func(3))]
//! loop = asyncio.get_event_loop()
//! loop.run_until_complete(asyncio.wait(tasks))
//! for task in tasks:
//!     print('Task return:', task.result())
//! print('Program consumes: %fs' % (now()-start))
//! ```
//!
//! Output:
//!
//! ```text
//! Waiting for 1 s
//! Waiting for 2 s
//! Waiting for 3 s
//! Task return: Done after 1s
//! Task return: Done after 2s
//! Task return: Done after 3s
//! Program consumes: 3.002114s
//! ```
//!
//! `tests/runtime_tasks.rs` includes this file and runs [`demo4`] with a 100 ms "second".

use std::rc::Rc;
use std::time::{Duration, Instant};

/// Where the program's lines go: stdout here, a log in the test.
pub type Emit = Rc<dyn Fn(String)>;

/// The seed's `func(x)`: announce, sleep `x` units, return a message.
pub async fn func(x: u64, unit: Duration, emit: Emit) -> String {
    emit(format!("Waiting for {x} s"));
    kettle::sleep(unit * x as u32).await;
    format!("Done after {x}s")
}

/// The seed's main program with `unit` as the length of a second. Returns the elapsed time.
pub fn demo4(unit: Duration, emit: Emit) -> Duration {
    let start = Instant::now();
    let lp = kettle::EventLoop::new().expect("create the event loop");
    let tasks: Vec<_> = (1..=3)
        .map(|x| lp.create_task(func(x, unit, emit.clone())))
        .collect();
    let (done, pending) =
        lp.run_until_complete(kettle::wait(tasks, kettle::ReturnWhen::AllCompleted, None));
    assert!(pending.is_empty(), "ALL_COMPLETED leaves nothing pending");
    // `wait` keeps the tasks in their original order, like the seed's `for task in tasks`.
    for task in &done {
        let result = task.result().expect("func() does not fail");
        emit(format!("Task return: {result}"));
    }
    lp.close().expect("the loop is not running");
    let elapsed = start.elapsed();
    // Python's '%f': six decimals.
    emit(format!("Program consumes: {:.6}s", elapsed.as_secs_f64()));
    elapsed
}

fn main() {
    demo4(Duration::from_secs(1), Rc::new(|line| println!("{line}")));
}
