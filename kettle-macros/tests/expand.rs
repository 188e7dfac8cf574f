//! The expansions of `#[kettle::main]` and `#[kettle::test]` against the real kettle crate.
//!
//! The attributes are used through `kettle_macros::` directly so these tests do not depend on
//! kettle's re-export; a user writes `#[kettle::main]`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

// A plain test: the body runs on a loop, can sleep and spawn.
#[kettle_macros::test]
async fn runs_on_a_loop() {
    kettle::sleep(Duration::from_millis(1)).await;
    let task = kettle::spawn(async { 40 + 2 });
    assert_eq!(task.await.unwrap(), 42);
}

// Non-`Send` state is fine: the loop is single-threaded.
#[kettle_macros::test]
async fn not_send_state() {
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    kettle::spawn(async move { s.set(7) }).await.unwrap();
    assert_eq!(seen.get(), 7);
}

// The return type is kept, so `?` works in a test.
#[kettle_macros::test]
async fn result_return() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "5".parse()?;
    assert_eq!(n, 5);
    Ok(())
}

// Other attributes stay in place.
#[kettle_macros::test]
#[should_panic(expected = "boom")]
async fn should_panic_is_kept() {
    kettle::sleep(Duration::from_millis(1)).await;
    panic!("boom");
}

#[kettle_macros::test]
#[ignore = "only checks that #[ignore] survives the expansion"]
async fn ignore_is_kept() {
    panic!("an ignored test must not run");
}

// `debug` builds the loop with debug mode on; `get_running_loop` shows it.
#[kettle_macros::test(debug)]
async fn debug_mode_is_on() {
    assert!(kettle::get_running_loop().debug());
}

#[kettle_macros::test]
async fn debug_mode_is_off_by_default() {
    // KETTLE_DEBUG in the environment would turn it on; only check when it is unset.
    if std::env::var_os("KETTLE_DEBUG").is_none() {
        assert!(!kettle::get_running_loop().debug());
    }
}

// `#[kettle::main]` on a function that is not the crate's entry point: it becomes a plain
// synchronous fn, keeping its visibility and return type.
mod entry {
    #[kettle_macros::main]
    pub async fn answer() -> u32 {
        kettle::sleep(std::time::Duration::from_millis(1)).await;
        42
    }

    #[kettle_macros::main(debug)]
    pub(crate) async fn debug_answer() -> bool {
        kettle::get_running_loop().debug()
    }
}

#[test]
fn main_expansion_is_synchronous() {
    let n: u32 = entry::answer();
    assert_eq!(n, 42);
    assert!(entry::debug_answer());
}

// A trailing comma after the argument is accepted.
#[kettle_macros::test(debug)]
async fn trailing_comma() {
    assert!(kettle::get_running_loop().debug());
}
