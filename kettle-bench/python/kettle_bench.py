"""The Python anchors of kettle-bench: the same workloads as the Rust sides, the same result keys.

kettle-bench embeds this file and runs it as `python3 -c SOURCE WORKLOAD N` in its measured
child process (already pinned to one core, which the interpreter inherits), so it is also
runnable by hand from the repository:

    python3 kettle-bench/python/kettle_bench.py gen-switch 1000000
    python3 kettle-bench/python/kettle_bench.py greenlet-switch 1000000  # needs greenlet
    python3 kettle-bench/python/kettle_bench.py green-spawn 100000     # needs gevent
    python3 kettle-bench/python/kettle_bench.py green-sleep 10000      # needs gevent

Each run prints one line of space-separated key=value pairs: the measurements, the checksums
(which must equal the Rust sides' exactly) and last `peak_rss_mb`, this process's own peak
resident set (VmHWM) in MiB, read the way the Rust children read theirs.

Workloads (see kettle-bench/src/workloads/ for the Rust sides):

* gen-switch N: a generator that yields back every value sent to it; N `send` round trips
  with the values 0..N, summed. ns_per_rt = elapsed / N.
* greenlet-switch N: the main greenlet switches to a child with i, the child switches back with
  it; N round trips (two switches each), summed. ns_per_rt = elapsed / N.
* green-spawn N: N greenlets (gevent.spawn), greenlet i returning i; gevent.joinall; the sum
  of the values.
* green-sleep N: N greenlets, greenlet k sleeping d_k ms and returning d_k, with the delays
  of the `sleep` workload's generator; joinall; the largest delay and the sum of the returns.

Sums wrap at 2**64 like the Rust sides' u64 arithmetic.
"""

import sys
import time

MASK64 = (1 << 64) - 1

# Sent after the timed loop to make the generator return: the timed values are 0..N, so they
# never collide with it.
STOP = MASK64


def peak_rss_mb():
    """VmHWM from /proc/self/status, in MiB with one decimal: the kernel's high-water mark."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return "%.1f" % (int(line.split()[1]) / 1024.0)
    raise RuntimeError("no VmHWM in /proc/self/status")


def delays(n):
    """The `sleep` workload's delays in ms: a 64-bit LCG (Knuth's MMIX constants) seeded with
    42, d_k = (x >> 33) mod 1001. Must match `sleep::delays` in Rust; the checksums prove it."""
    x = 42
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK64
        out.append((x >> 33) % 1001)
    return out


def echo_generator():
    # The first `send(None)` (priming, required by Python before any other value) runs to here.
    value = yield
    while value != STOP:
        value = yield value
    return value


def gen_switch(n):
    gen = echo_generator()
    gen.send(None)
    # A bound method in a local: the attribute lookup is not what is being measured.
    send = gen.send
    total = 0
    start = time.perf_counter()
    for i in range(n):
        total += send(i)
    elapsed = time.perf_counter() - start
    try:
        send(STOP)
        raise RuntimeError("the generator did not return on STOP")
    except StopIteration:
        pass
    return "ns_per_rt=%.2f elapsed_s=%.6f sum=%d" % (
        elapsed * 1e9 / n,
        elapsed,
        total & MASK64,
    )


def greenlet_switch(n):
    from greenlet import getcurrent, greenlet

    main = getcurrent()

    def child(value):
        while value != STOP:
            value = main.switch(value)
        return value

    g = greenlet(child)
    # The untimed first switch starts the child.
    if g.switch(0) != 0:
        raise RuntimeError("the child did not echo its first value")
    switch = g.switch
    total = 0
    start = time.perf_counter()
    for i in range(n):
        total += switch(i)
    elapsed = time.perf_counter() - start
    if switch(STOP) != STOP or not g.dead:
        raise RuntimeError("the child did not return on STOP")
    return "ns_per_rt=%.2f elapsed_s=%.6f sum=%d" % (
        elapsed * 1e9 / n,
        elapsed,
        total & MASK64,
    )


def start_gevent():
    """Imports gevent and creates its hub (the event loop) before the clock starts, as the Rust
    sides build their loop or scheduler before theirs."""
    import gevent

    gevent.get_hub()
    return gevent


def green_spawn(n):
    gevent = start_gevent()

    def ident(i):
        return i

    start = time.perf_counter()
    greenlets = [gevent.spawn(ident, i) for i in range(n)]
    gevent.joinall(greenlets, raise_error=True)
    total = 0
    for g in greenlets:
        total += g.value
    elapsed = time.perf_counter() - start
    return "elapsed_s=%.6f sum=%d" % (elapsed, total & MASK64)


def green_sleep(n):
    gevent = start_gevent()

    # Input, not work: computed before the clock starts, as on the Rust sides.
    ds = delays(n)

    def sleeper(d):
        gevent.sleep(d / 1000.0)
        return d

    start = time.perf_counter()
    greenlets = [gevent.spawn(sleeper, d) for d in ds]
    gevent.joinall(greenlets, raise_error=True)
    total = sum(g.value for g in greenlets)
    elapsed = time.perf_counter() - start
    return "elapsed_s=%.6f max_delay_ms=%d delay_sum_ms=%d" % (
        elapsed,
        max(ds),
        total & MASK64,
    )


WORKLOADS = {
    "gen-switch": gen_switch,
    "greenlet-switch": greenlet_switch,
    "green-spawn": green_spawn,
    "green-sleep": green_sleep,
}


def main(argv):
    if len(argv) != 2 or argv[0] not in WORKLOADS:
        sys.stderr.write(
            "usage: kettle_bench.py %s N\n" % "|".join(sorted(WORKLOADS))
        )
        return 2
    try:
        n = int(argv[1].replace("_", ""))
    except ValueError:
        n = 0
    if n < 1:
        sys.stderr.write("N must be a positive integer, got %r\n" % argv[1])
        return 2
    fields = WORKLOADS[argv[0]](n)
    print("%s peak_rss_mb=%s" % (fields, peak_rss_mb()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
