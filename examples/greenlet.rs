//! Seed 002's greenlet program: two greenlets hand control to each other explicitly, printing
//! `---A--` and `---B--` in turn, half a second apart.
//!
//! ```text
//! cargo run --example greenlet                  # forever, like the seed (Ctrl-C to stop)
//! cargo run --example greenlet -- --rounds 3    # three A/B rounds, then exit
//! ```
//!
//! The seed's `time.sleep(0.5)` blocks the whole thread, as it does in Python: greenlets only
//! switch where the code says `switch`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use kettle::greenlet::{self, Greenlet};

/// How many times each greenlet prints before handing back to the main greenlet; `None`
/// loops forever.
fn rounds() -> Option<u64> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => None,
        [flag, n] if flag == "--rounds" => match n.parse() {
            Ok(n) => Some(n),
            Err(_) => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: greenlet [--rounds N]");
    std::process::exit(2)
}

fn main() {
    let rounds = rounds();
    // gr1 and gr2 refer to each other, as the seed's globals do.
    let gr1: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let gr2: Rc<RefCell<Option<Greenlet>>> = Rc::default();

    let other = gr2.clone();
    let test1 = Greenlet::new(move |()| {
        let mut i = 0;
        while rounds.is_none_or(|r| i < r) {
            println!("---A--");
            let gr2 = other.borrow().clone().expect("gr2 exists");
            gr2.switch(()).expect("gr2 is alive");
            std::thread::sleep(Duration::from_millis(500));
            i += 1;
        }
    });
    let other = gr1.clone();
    let test2 = Greenlet::new(move |()| {
        let mut i = 0;
        while rounds.is_none_or(|r| i < r) {
            println!("---B--");
            let gr1 = other.borrow().clone().expect("gr1 exists");
            gr1.switch(()).expect("gr1 is alive");
            std::thread::sleep(Duration::from_millis(500));
            i += 1;
        }
    });
    *gr1.borrow_mut() = Some(test1.clone());
    *gr2.borrow_mut() = Some(test2.clone());

    // Switch to gr1 and run; when gr1 finishes, control comes back here (its parent).
    test1.switch(()).expect("gr1 starts");
    // Break the gr1 <-> gr2 reference cycle so both stacks are freed.
    gr1.borrow_mut().take();
    gr2.borrow_mut().take();
    let _ = greenlet::getcurrent();
}
