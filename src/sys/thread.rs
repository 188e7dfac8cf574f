//! Thread placement: pinning the calling thread to one CPU.

use std::io;

/// Pins the calling thread to `cpu` (`sched_setaffinity` on thread id 0, i.e. this thread).
pub(crate) fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the affinity mask"),
        ));
    }
    // SAFETY: `set` is a plain bit mask, zeroed, then filled by the CPU_* helpers within its
    // bounds (checked above); the syscall reads `size_of::<cpu_set_t>()` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        super::cvt(libc::sched_setaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        ))?;
    }
    Ok(())
}

/// The CPUs this thread may run on, in order (the affinity mask it started with).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as above; the kernel fills `set`, and CPU_ISSET reads within its bounds.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}
