//! I/O registrations: how a socket's readiness, reported by epoll, reaches the task waiting on
//! it.
//!
//! Every registered fd gets a slot in the loop's [`IoSlab`]; its epoll token is the slot index
//! and generation. Sockets are registered edge-triggered for reading and writing at once, so a
//! readiness change costs one event. An event sets the slot's readiness bits and wakes the
//! waiting reader and/or writer. An operation that then hits `EWOULDBLOCK` clears the bit and
//! waits for the next edge.
//!
//! Clearing cannot lose an edge: events are only applied by the loop between polls, on the same
//! thread, so a bit cleared during a poll reflects a `EWOULDBLOCK` observed after the last
//! event, and any later data produces a new edge.
//!
//! Stream transfers also clear on a *short* read or write ([`Registration::poll_transfer`]): a
//! stream socket that returned fewer bytes than asked for had drained its receive queue (or
//! filled its send buffer) at that instant, so the `EWOULDBLOCK` the next call would return is
//! already known, and skipping that syscall is worth about one in three syscalls of an echo
//! server. A hang-up or error, however, is final and gets no further edge, so it is kept in
//! separate *closed* bits that only an actual `EWOULDBLOCK` clears.

use std::io;
use std::os::fd::RawFd;
use std::rc::Weak;
use std::task::{Context, Poll, Waker};

use super::context;
use super::core::Core;
use crate::sys::epoll::{Event, Interest};

/// Readiness bits kept per slot.
const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
/// The peer closed its half or the socket failed: reads see EOF or the error without waiting.
const READ_CLOSED: u8 = 4;
/// The connection hung up or failed: writes see the error without waiting.
const WRITE_CLOSED: u8 = 8;

/// Which half of a socket an operation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The bit a fresh edge sets and a short transfer clears.
    fn bit(self) -> u8 {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }

    /// The sticky bit for a hang-up or error seen in this direction.
    fn closed_bit(self) -> u8 {
        match self {
            Direction::Read => READ_CLOSED,
            Direction::Write => WRITE_CLOSED,
        }
    }

    /// Every bit that lets an operation in this direction run.
    fn ready_bits(self) -> u8 {
        self.bit() | self.closed_bit()
    }
}

struct IoSlot {
    generation: u32,
    in_use: bool,
    readiness: u8,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// The loop's table of registered fds.
#[derive(Default)]
pub(crate) struct IoSlab {
    slots: Vec<IoSlot>,
    free: Vec<u32>,
}

fn token(index: u32, generation: u32) -> u64 {
    (generation as u64) << 32 | index as u64
}

impl IoSlab {
    fn insert(&mut self) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(IoSlot {
                    generation: 0,
                    in_use: false,
                    readiness: 0,
                    reader: None,
                    writer: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[index as usize];
        s.in_use = true;
        // A fresh socket may already be writable (or readable); the first edge tells us.
        s.readiness = 0;
        token(index, s.generation)
    }

    fn slot(&mut self, token: u64) -> Option<&mut IoSlot> {
        let s = self.slots.get_mut(token as u32 as usize)?;
        (s.in_use && s.generation == (token >> 32) as u32).then_some(s)
    }

    /// Frees the slot; returns its wakers so the caller drops them outside the borrow.
    fn remove(&mut self, token: u64) -> (Option<Waker>, Option<Waker>) {
        let index = token as u32;
        let Some(s) = self.slot(token) else {
            return (None, None);
        };
        s.in_use = false;
        s.generation = s.generation.wrapping_add(1);
        let wakers = (s.reader.take(), s.writer.take());
        self.free.push(index);
        wakers
    }

    /// Applies one epoll event; returns the wakers to wake.
    pub(crate) fn dispatch(&mut self, ev: &Event) -> (Option<Waker>, Option<Waker>) {
        let Some(s) = self.slot(ev.token) else {
            return (None, None);
        };
        let mut wake = (None, None);
        if ev.is_readable() {
            s.readiness |= READABLE;
            wake.0 = s.reader.take();
        }
        if ev.is_writable() {
            s.readiness |= WRITABLE;
            wake.1 = s.writer.take();
        }
        if ev.is_read_closed() {
            s.readiness |= READ_CLOSED;
        }
        if ev.is_write_closed() {
            s.readiness |= WRITE_CLOSED;
        }
        wake
    }
}

/// An fd registered with the running loop; deregistered on drop.
pub(crate) struct Registration {
    core: Weak<Core>,
    token: u64,
    fd: RawFd,
}

impl Registration {
    /// Registers `fd` (which must be non-blocking) with the loop running on this thread.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        Registration::register(fd, false)
    }

    /// Registers a listening socket that other loops wait on too (`EPOLLEXCLUSIVE`).
    pub(crate) fn new_shared_listener(fd: RawFd) -> io::Result<Registration> {
        Registration::register(fd, true)
    }

    fn register(fd: RawFd, exclusive: bool) -> io::Result<Registration> {
        context::with_current(|core| {
            let token = core.io.borrow_mut().insert();
            let interest = Interest {
                readable: true,
                writable: true,
            };
            let registered = if exclusive {
                core.selector().register_exclusive(fd, token)
            } else {
                core.selector().register(fd, token, interest, true)
            };
            if let Err(e) = registered {
                let wakers = core.io.borrow_mut().remove(token);
                drop(wakers);
                return Err(e);
            }
            core.add_io_source(1);
            Ok(Registration {
                core: core.weak(),
                token,
                fd,
            })
        })
        .unwrap_or_else(|| {
            Err(io::Error::other(
                "sockets must be created inside a running kettle event loop",
            ))
        })
    }

    /// Ready when the last event said `dir` is ready and no operation has since hit
    /// `EWOULDBLOCK`; otherwise remembers the waker.
    pub(crate) fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.core.upgrade() {
            Some(core) => self.poll_ready_on(&core, dir, cx),
            None => Poll::Ready(Err(loop_closed())),
        }
    }

    /// [`poll_ready`](Self::poll_ready) with the loop already in hand.
    fn poll_ready_on(
        &self,
        core: &Core,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let mut io = core.io.borrow_mut();
        let Some(s) = io.slot(self.token) else {
            return Poll::Ready(Err(io::Error::other("the socket is no longer registered")));
        };
        if s.readiness & dir.ready_bits() != 0 {
            return Poll::Ready(Ok(()));
        }
        let slot = match dir {
            Direction::Read => &mut s.reader,
            Direction::Write => &mut s.writer,
        };
        match slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Whether an event has said the socket is readable (or closed) since the last read that
    /// found it drained: without one, the peer has sent nothing, not even a FIN, as of the
    /// loop's last look at epoll. No syscall, so an idle keep-alive connection can be checked
    /// for free before reuse.
    pub(crate) fn read_event_pending(&self) -> bool {
        let Some(core) = self.core.upgrade() else {
            return true;
        };
        let mut io = core.io.borrow_mut();
        io.slot(self.token)
            .is_none_or(|s| s.readiness & Direction::Read.ready_bits() != 0)
    }

    /// Clears readiness bits: after `EWOULDBLOCK` all of a direction's (`ready_bits`: the
    /// kernel has just said "nothing to do", so the closed bit goes too, and a transient
    /// error such as a UDP socket's ICMP report cannot leave the fd looking ready forever);
    /// after a short transfer only the edge bit.
    fn clear_bits_on(&self, core: &Core, bits: u8) {
        if let Some(s) = core.io.borrow_mut().slot(self.token) {
            s.readiness &= !bits;
        }
    }

    /// Runs the non-blocking operation `op` when `dir` is ready, retrying after each
    /// `EWOULDBLOCK` once the next edge arrives. `EINTR` is retried at once.
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        match self.core.upgrade() {
            Some(core) => self.poll_io_on(&core, dir, cx, op),
            None => Poll::Ready(Err(loop_closed())),
        }
    }

    /// [`poll_io`](Self::poll_io) with the loop already in hand: a socket operation looks
    /// its loop up once, however many readiness checks it makes.
    fn poll_io_on<R>(
        &self,
        core: &Core,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            if let Err(e) = std::task::ready!(self.poll_ready_on(core, dir, cx)) {
                return Poll::Ready(Err(e));
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.clear_bits_on(core, dir.ready_bits())
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl Registration {
    /// [`poll_io`](Self::poll_io) for a stream read or write of `len` bytes: a transfer that
    /// moves some bytes but fewer than `len` also clears `dir`'s edge bit (see the module
    /// docs), so the next operation waits for the next edge instead of paying for an
    /// `EWOULDBLOCK`. Only for stream sockets; a datagram is short because it is small.
    pub(crate) fn poll_transfer(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let Some(core) = self.core.upgrade() else {
            return Poll::Ready(Err(loop_closed()));
        };
        let done = std::task::ready!(self.poll_io_on(&core, dir, cx, op));
        if let Ok(n) = done {
            if n > 0 && n < len {
                self.clear_bits_on(&core, dir.bit());
            }
        }
        Poll::Ready(done)
    }
}

fn loop_closed() -> io::Error {
    io::Error::other("the socket's event loop is closed")
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            // The fd is still open here (its owner closes it after dropping us).
            let _ = core.selector().deregister(self.fd);
            let wakers = core.io.borrow_mut().remove(self.token);
            core.add_io_source(-1);
            drop(wakers);
        }
    }
}
