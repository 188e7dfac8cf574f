//! Thin, safe wrappers over the Linux syscalls the loop needs: epoll, eventfd, sockets and
//! signal handlers.
//!
//! Everything `unsafe` about talking to the kernel lives in this module; the rest of the crate
//! sees owned file descriptors and `io::Result`s.

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod signal;

use std::io;

/// Turns a `-1` return into the thread's `errno` as an `io::Error`.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
pub(crate) mod socket;
pub(crate) mod thread;
