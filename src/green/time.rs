//! `time.sleep` for green code (what `monkey.patch_all()` patches in gevent).

pub use super::thread::sleep;
