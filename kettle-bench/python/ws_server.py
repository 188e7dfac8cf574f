"""ws-echo's Python servers: aiohttp's WebSocket echo on asyncio's loop or on uvloop's.

kettle-bench embeds this file and runs it as `python3 -c SOURCE SERVER PORT`, exec'd in its
`ws-server` process once that has pinned itself to one core, so the interpreter keeps the
process id the benchmark reads CPU time from, and the core. It is also runnable by hand:

    python3 kettle-bench/python/ws_server.py aiohttp 8080
    python3 kettle-bench/python/ws_server.py aiohttp-uvloop 8080

SERVER is `aiohttp` or `aiohttp-uvloop` (needs uvloop); PORT 0 picks a free port. The
application serves GET /ws with a `web.WebSocketResponse` (aiohttp's defaults) that echoes
every text message as text and every binary message as binary, through `AppRunner` and a
`TCPSite` on 127.0.0.1. Once it listens it prints `server=SERVER port=P`; SIGTERM or SIGINT
stops it (the runner cleaned up) with exit status 0.
"""

import asyncio
import signal
import sys


async def serve(name, port):
    from aiohttp import WSMsgType, web

    async def echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = runner.addresses[0][1]
    print("server=%s port=%d" % (name, port), flush=True)
    await stop.wait()
    await runner.cleanup()


def main(argv):
    usage = "usage: ws_server.py aiohttp|aiohttp-uvloop PORT\n"
    if len(argv) != 2 or argv[0] not in ("aiohttp", "aiohttp-uvloop"):
        sys.stderr.write(usage)
        return 2
    try:
        port = int(argv[1])
    except ValueError:
        sys.stderr.write(usage)
        return 2
    if argv[0] == "aiohttp-uvloop":
        import uvloop

        uvloop.run(serve(argv[0], port))
    else:
        asyncio.run(serve(argv[0], port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
