//! The epoll selector: the "polling" box of seed 004's loop diagram.
//!
//! One epoll instance per event loop. Sources are registered with a `u64` token that the loop
//! chooses; `select` fills a caller-owned buffer with `(token, readiness)` pairs so that the hot
//! path allocates nothing.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::cvt;

/// What a source is waiting for, and what the kernel reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Interest {
    /// Wake when the fd becomes readable (or hung up / in error, which reads must see).
    pub(crate) readable: bool,
    /// Wake when the fd becomes writable.
    pub(crate) writable: bool,
}

/// One readiness report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    /// The token given at registration.
    pub(crate) token: u64,
    /// Raw epoll event bits (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`, ...).
    pub(crate) bits: u32,
}

impl Event {
    /// Readable, or a condition (error, hang-up) that a reader must observe.
    pub(crate) fn is_readable(&self) -> bool {
        self.bits & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as u32 != 0
    }

    /// Writable, or a condition (error, hang-up) that a writer must observe.
    pub(crate) fn is_writable(&self) -> bool {
        self.bits & (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
    }

    /// The peer shut down its sending half, the connection hung up, or it failed: a read
    /// returns at once (EOF or the error) from now on.
    pub(crate) fn is_read_closed(&self) -> bool {
        self.bits & (libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as u32 != 0
    }

    /// The connection hung up or failed: a write returns the error at once from now on.
    pub(crate) fn is_write_closed(&self) -> bool {
        self.bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
    }
}

/// An epoll instance.
#[derive(Debug)]
pub(crate) struct Selector {
    /// The epoll file descriptor, closed on drop.
    epfd: OwnedFd,
}

/// Most events one `select` call collects; more simply wait for the next call.
const MAX_EVENTS: usize = 1024;

impl Selector {
    /// Creates the epoll instance (close-on-exec, so spawned processes do not inherit it).
    pub(crate) fn new() -> io::Result<Selector> {
        // SAFETY: plain syscall; on success the kernel hands us a fresh fd that we alone own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Selector { epfd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, bits: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: bits,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; the kernel copies it.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    fn bits(interest: Interest, edge: bool) -> u32 {
        let mut bits = 0;
        if interest.readable {
            bits |= libc::EPOLLIN | libc::EPOLLRDHUP;
        }
        if interest.writable {
            bits |= libc::EPOLLOUT;
        }
        if edge {
            bits |= libc::EPOLLET;
        }
        bits as u32
    }

    /// Registers `fd` under `token`. `edge` selects edge-triggered mode, which sockets use so
    /// that a readiness change costs one event, not one per loop iteration.
    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        edge: bool,
    ) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, Self::bits(interest, edge))
    }

    /// Registers a listening socket shared by several loops, edge-triggered and with
    /// `EPOLLEXCLUSIVE`: a new connection wakes one of the waiting loops rather than all of
    /// them (no thundering herd). Read interest only: the kernel refuses `EPOLLRDHUP` and
    /// writability with the exclusive flag, and a listener needs neither.
    pub(crate) fn register_exclusive(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let bits = libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE;
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, bits as u32)
    }

    /// Removes `fd` from the interest list.
    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits for readiness: `None` blocks until an event, `Some(ZERO)` only peeks. Sub-millisecond
    /// timeouts round *up* so a timer is never fired early and the loop does not spin.
    /// EINTR counts as "no events" (the caller simply goes round the loop again).
    pub(crate) fn select(
        &self,
        timeout: Option<Duration>,
        out: &mut Vec<Event>,
    ) -> io::Result<usize> {
        let timeout_ms: libc::c_int = match timeout {
            None => -1,
            Some(d) => {
                let ms = d.as_nanos().div_ceil(1_000_000);
                ms.min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        // Uninitialized: zeroing 12 KiB before every wait showed up in profiles, and the
        // kernel writes every entry it reports.
        let mut raw = [const { MaybeUninit::<libc::epoll_event>::uninit() }; MAX_EVENTS];
        // SAFETY: `raw` has room for MAX_EVENTS entries and outlives the call.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                raw.as_mut_ptr().cast::<libc::epoll_event>(),
                MAX_EVENTS as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        let n = n as usize;
        out.extend(raw[..n].iter().map(|e| {
            // SAFETY: epoll_wait initialized the first `n` entries (n <= MAX_EVENTS).
            let e = unsafe { e.assume_init_read() };
            Event {
                token: e.u64,
                bits: e.events,
            }
        }));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::eventfd::EventFd;

    #[test]
    fn eventfd_wakes_select() {
        let sel = Selector::new().unwrap();
        let efd = EventFd::new().unwrap();
        sel.register(
            efd.as_raw_fd(),
            7,
            Interest {
                readable: true,
                writable: false,
            },
            true,
        )
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(sel.select(Some(Duration::ZERO), &mut out).unwrap(), 0);
        efd.notify().unwrap();
        assert_eq!(
            sel.select(Some(Duration::from_secs(5)), &mut out).unwrap(),
            1
        );
        assert_eq!(out[0].token, 7);
        assert!(out[0].is_readable());
        efd.drain().unwrap();
        out.clear();
        // Edge-triggered: the edge was consumed; nothing more until the next write.
        assert_eq!(sel.select(Some(Duration::ZERO), &mut out).unwrap(), 0);
        efd.notify().unwrap();
        assert_eq!(sel.select(Some(Duration::ZERO), &mut out).unwrap(), 1);
        sel.deregister(efd.as_raw_fd()).unwrap();
    }

    #[test]
    fn timeout_is_not_early() {
        let sel = Selector::new().unwrap();
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        sel.select(Some(Duration::from_micros(1500)), &mut out)
            .unwrap();
        assert!(start.elapsed() >= Duration::from_micros(1500));
    }
}
