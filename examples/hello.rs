//! Seeds 002/004: two `hello()` coroutines on one thread.
//!
//! Both print "Hello world!", sleep one second concurrently, then both print "Hello again!";
//! the thread named in all four lines is the same: concurrency without threads.

use std::time::Duration;

fn thread_name() -> String {
    let t = std::thread::current();
    format!("<Thread({}, {:?})>", t.name().unwrap_or("unnamed"), t.id())
}

async fn hello() {
    println!("Hello world! ({})", thread_name());
    kettle::sleep(Duration::from_secs(1)).await;
    println!("Hello again! ({})", thread_name());
}

fn main() {
    let lp = kettle::EventLoop::new().expect("create the event loop");
    let tasks = vec![lp.create_task(hello()), lp.create_task(hello())];
    lp.run_until_complete(async move {
        for t in tasks {
            t.await.expect("hello() does not fail");
        }
    });
    lp.close().expect("the loop is not running");
}
