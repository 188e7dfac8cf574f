"""client-get's Python clients: aiohttp's ClientSession on asyncio's loop or on uvloop's.

kettle-bench embeds this file and runs it as `python3 -c SOURCE CLIENT PORT REQUESTS WARMUP
CONNS SERVER_PID` in its client child process (already pinned to one core, which the
interpreter inherits). It is also runnable by hand against any server answering GET / with
200 "Hello, World!", for example `kettle-bench http-server --port 8080 --server epoll`:

    python3 kettle-bench/python/client_get.py aiohttp 8080 10000 1000 64 0
    python3 kettle-bench/python/client_get.py aiohttp-uvloop 8080 10000 1000 64 0

CLIENT is `aiohttp` or `aiohttp-uvloop` (needs uvloop). One ClientSession whose
TCPConnector's limit is CONNS is shared by CONNS coroutines, each making requests in turn
(`session.get(url)`, then `resp.read()`) and checking that every response is 200 with the
expected body. First WARMUP requests (which open the connections), then REQUESTS measured
ones; SERVER_PID, unless 0, is the server process whose CPU time is read around the measured
phase too.

It prints one line of key=value pairs, raw times that kettle-bench turns into the same
per-request figures as its Rust clients': requests, elapsed_s, client_cpu_s (this process's
user + system CPU time over the measured phase), server_cpu_s (when SERVER_PID is given) and
last peak_rss_mb (VmHWM, as kettle_bench.py reads it).
"""

import asyncio
import os
import resource
import sys
import time

BODY = b"Hello, World!"


def peak_rss_mb():
    """VmHWM from /proc/self/status, in MiB with one decimal: the kernel's high-water mark."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return "%.1f" % (int(line.split()[1]) / 1024.0)
    raise RuntimeError("no VmHWM in /proc/self/status")


def own_cpu_s():
    """This process's user + system CPU time (all threads), at microsecond resolution."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid):
    """Process pid's user + system CPU time from fields 14 and 15 of /proc/PID/stat, counted
    from the last ')' because the command name may contain spaces or parentheses."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def phase(session, url, count, conns):
    """count requests from conns concurrent loops, sharing one countdown so that exactly count
    are made however the loops interleave."""
    left = count

    async def request_loop():
        nonlocal left
        while left > 0:
            left -= 1
            async with session.get(url) as resp:
                body = await resp.read()
                if resp.status != 200 or body != BODY:
                    raise RuntimeError(
                        "GET %s: expected 200 %r, got %d with %r"
                        % (url, BODY, resp.status, body[:80])
                    )

    await asyncio.gather(*(request_loop() for _ in range(conns)))


async def client_get(port, requests, warmup, conns, server_pid):
    import aiohttp

    url = "http://127.0.0.1:%d/" % port
    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector) as session:
        await phase(session, url, warmup, conns)
        server_before = process_cpu_s(server_pid) if server_pid else 0.0
        cpu_before = own_cpu_s()
        start = time.perf_counter()
        await phase(session, url, requests, conns)
        elapsed = time.perf_counter() - start
        cpu = own_cpu_s() - cpu_before
        server = process_cpu_s(server_pid) - server_before if server_pid else None
    line = "requests=%d elapsed_s=%.6f client_cpu_s=%.6f" % (requests, elapsed, cpu)
    if server is not None:
        line += " server_cpu_s=%.6f" % server
    return line


def main(argv):
    usage = "usage: client_get.py aiohttp|aiohttp-uvloop PORT REQUESTS WARMUP CONNS SERVER_PID\n"
    if len(argv) != 6 or argv[0] not in ("aiohttp", "aiohttp-uvloop"):
        sys.stderr.write(usage)
        return 2
    try:
        port, requests, warmup, conns, server_pid = (int(a) for a in argv[1:])
    except ValueError:
        sys.stderr.write(usage)
        return 2
    if requests < 1 or warmup < 0 or conns < 1 or server_pid < 0:
        sys.stderr.write(usage)
        return 2
    run = client_get(port, requests, warmup, conns, server_pid)
    if argv[0] == "aiohttp-uvloop":
        import uvloop

        fields = uvloop.run(run)
    else:
        fields = asyncio.run(run)
    print("%s peak_rss_mb=%s" % (fields, peak_rss_mb()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
