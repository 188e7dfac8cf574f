//! The few raw system calls the network benchmarks (`echo`, `http-hello`) need beyond `std`: an
//! epoll set and an eventfd for the runtime-free floor servers and the echo load generator, a
//! listener that shares its port (`SO_REUSEPORT`) for the floor's workers, signal masks for a
//! clean stop, and CPU times (another process's, this one's, and that of this process's
//! reaped children). Each `unsafe` block is a single FFI call on values it owns.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Readable (or the peer hung up / errored: reading then reports EOF or the error).
pub const IN: u32 = libc::EPOLLIN as u32;
/// Writable.
pub const OUT: u32 = libc::EPOLLOUT as u32;

/// An epoll instance, level-triggered: the floor servers and the echo client all read at most
/// once per event, so level triggering saves the extra read that would otherwise be needed to
/// see `EWOULDBLOCK` before an edge-triggered wait.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// A new epoll set (close-on-exec, so children started later do not inherit it).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by the kernel and nothing else owns it.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ctl(&self, op: i32, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev lives across the call; the kernel only reads it.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Watches `fd` for `events` (`IN`, `OUT` or both); events carry `token`.
    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    /// Waits for events (at most `events.len()`), up to `timeout` (`None`: forever). Returns
    /// how many entries of `events` were filled; 0 on timeout or when a signal interrupted
    /// the wait.
    pub fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        // Rounded up, so a caller waiting for a deadline never wakes just before it and spins.
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        };
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: the kernel writes at most `max` entries into `events`, which is that long.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }
}

/// An empty event array for [`Epoll::wait`].
pub fn event_buffer(len: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; len]
}

/// An eventfd: a floor server's stop button, pressed from the signal thread.
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new non-blocking, close-on-exec eventfd with count 0.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as in Epoll::new.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Adds one to the count, making the fd readable.
    pub fn notify(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live 8-byte array.
        if unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), 8) } != 8 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A non-blocking, close-on-exec TCP listener on `addr` with `SO_REUSEPORT` (and
/// `SO_REUSEADDR`): several such listeners, in one process, may bind the same port, and the
/// kernel then spreads incoming connections among them by a hash of their addresses. Port 0
/// picks a free port; bind the others to the port the first one got.
pub fn reuseport_listener(addr: SocketAddrV4) -> io::Result<std::net::TcpListener> {
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::socket(libc::AF_INET, flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for option in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: reads one c_int from a live local, its size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: reads one sockaddr_in from a live local, its size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen takes no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), 1024) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(fd))
}

/// SIGTERM and SIGINT, the signals that stop a server.
pub struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it creates
    /// afterwards. Call it first thing in `main`, before any thread exists, so the signals
    /// stay pending until [`wait`](Self::wait) takes them: no handler runs at an arbitrary
    /// point, and none can be lost between startup and the wait.
    pub fn block() -> io::Result<StopSignals> {
        // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls only touch
        // `set`, and pthread_sigmask reads it (the old mask is not asked for).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(StopSignals { set })
        }
    }

    /// Waits until SIGTERM or SIGINT is delivered to the process; returns its number.
    pub fn wait(&self) -> io::Result<i32> {
        let mut sig = 0;
        // SAFETY: `set` was initialised in `block`; sigwait writes one int into `sig`.
        let rc = unsafe { libc::sigwait(&self.set, &mut sig) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(sig)
    }
}

/// Unblocks `sig` on the calling thread alone and raises it there, so that the process's
/// handler for it runs on this thread before this returns. It hands a signal that
/// [`StopSignals::wait`] took on to a library that catches it with a handler of its own
/// (Kettle's `run_app_workers`), while every other thread keeps it blocked.
#[cfg(any(test, feature = "kettle-workers"))]
pub fn raise_unblocked(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask reads it
    // (the old mask is not asked for).
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: raise takes no pointers.
    if unsafe { libc::raise(sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill takes no pointers.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU time (user + system, all threads) process `pid` has used so far, from fields 14
/// and 15 of `/proc/PID/stat`. The kernel counts it in clock ticks (usually 10 ms), which is
/// why the network benchmarks measure over seconds.
pub fn process_cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat: {stat:?}"),
        )
    })?;
    Ok(ticks_to_duration(ticks, clock_ticks_per_second()?))
}

/// utime + stime in clock ticks from the text of a `/proc/PID/stat` file.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // Field 2 is the command name in parentheses and may itself contain spaces or ')', so
    // count from the last ')': what follows starts at field 3 (the state).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_nanos((ticks as u128 * 1_000_000_000 / per_second.max(1) as u128) as u64)
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/PID/stat` times.
fn clock_ticks_per_second() -> io::Result<u64> {
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return Err(io::Error::other("sysconf(_SC_CLK_TCK) failed"));
    }
    Ok(hz as u64)
}

/// The CPU time (user + system) this process has used so far, at microsecond resolution.
pub fn own_cpu_time() -> io::Result<Duration> {
    rusage_cpu_time(libc::RUSAGE_SELF)
}

/// The CPU time (user + system) of this process's children that have ended and been waited
/// for, at microsecond resolution. The difference across one `Command::output()` is that
/// child's CPU time, provided no other child is reaped meanwhile.
pub fn children_cpu_time() -> io::Result<Duration> {
    rusage_cpu_time(libc::RUSAGE_CHILDREN)
}

fn rusage_cpu_time(who: libc::c_int) -> io::Result<Duration> {
    // SAFETY: rusage is plain data; getrusage fills it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut ru) != 0 {
            return Err(io::Error::last_os_error());
        }
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_command_name() {
        // Real layout: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
        // cmajflt utime stime ...
        let stat = "4242 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 110 25 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(135));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(ticks_to_duration(135, 100), Duration::from_millis(1350));
    }

    #[test]
    fn reuseport_listeners_share_a_port() {
        use std::net::Ipv4Addr;
        let first = reuseport_listener(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let second = reuseport_listener(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap();
        assert_eq!(second.local_addr().unwrap().port(), port);
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A plain bind (no SO_REUSEPORT) of the same port is refused.
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
    }

    /// What `http-server` does to stop Kettle's multi-worker server: a thread with the signal
    /// blocked unblocks it for itself and raises it, and Kettle's handler sees it.
    #[test]
    fn a_raised_signal_reaches_kettles_handler() {
        use kettle::signal::{Signals, SIGUSR2};
        kettle::run(async {
            let mut signals = Signals::new(&[SIGUSR2]).unwrap();
            std::thread::spawn(|| {
                // SAFETY: as in StopSignals::block.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, SIGUSR2);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                }
                raise_unblocked(SIGUSR2).unwrap();
            })
            .join()
            .unwrap();
            assert_eq!(signals.recv().await.unwrap(), SIGUSR2);
        });
    }

    #[test]
    fn own_process_cpu_time_is_readable() {
        process_cpu_time(std::process::id()).unwrap();
        own_cpu_time().unwrap();
        children_cpu_time().unwrap();
    }
}
