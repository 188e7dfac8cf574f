//! Seed 000, demo 1: print the date and time once a second until five seconds of `loop.time()`
//! have passed.
//!
//! ```python
//! async def display_date(loop):
//!     end_time = loop.time() + 5.0
//!     while True:
//!         print(datetime.datetime.now())
//!         if (loop.time() + 1.0) >= end_time:
//!             break
//!         await asyncio.sleep(1)
//!
//! loop = asyncio.get_event_loop()
//! loop.run_until_complete(display_date(loop))
//! loop.close()
//! ```
//!
//! Output (local time, formatted like Python's `datetime.__str__`):
//!
//! ```text
//! 2018-04-05 22:43:42.403603
//! 2018-04-05 22:43:43.404711
//! 2018-04-05 22:43:44.405838
//! 2018-04-05 22:43:45.406958
//! 2018-04-05 22:43:46.408090
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kettle::EventLoop;

/// `datetime.datetime.now()` as `YYYY-MM-DD HH:MM:SS.ffffff`, in local time.
fn now() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    let secs = since_epoch.as_secs() as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant.
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    assert!(ok, "localtime_r failed");
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        since_epoch.subsec_micros()
    )
}

async fn display_date(lp: &EventLoop) {
    let end_time = lp.time() + 5.0;
    loop {
        println!("{}", now());
        if lp.time() + 1.0 >= end_time {
            break;
        }
        kettle::sleep(Duration::from_secs(1)).await;
    }
}

fn main() {
    let lp = EventLoop::new().expect("create the event loop");
    lp.run_until_complete(display_date(&lp));
    lp.close().expect("the loop is not running");
}
