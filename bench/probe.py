"""An unrelated REST call, made on a steady beat from its own process.

Prints `<perf_counter_ns at send> <latency ns> <status>` per call until stdin closes.
Running apart from the load generator keeps its event loop free, so what it sees is
the server's delay, not the generator's.

    python -m bench.probe --url http://127.0.0.1:PORT --session SID [--interval 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from urllib.parse import urlsplit

from bench.wire import HTTPConn


async def main(url: str, session: str, path: str, interval: float) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = {"Authorization": f"Bearer {session}"}
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or stop.set_result(None))
    conn = await HTTPConn.connect(host, port)
    nxt = time.perf_counter()
    out = sys.stdout
    while not stop.done():
        t0 = time.perf_counter_ns()
        try:
            status, _, _ = await asyncio.wait_for(conn.request("GET", path, headers), 30)
        except (OSError, ConnectionError, TimeoutError):
            status = 0
            conn.close()
            with contextlib.suppress(OSError):
                conn = await HTTPConn.connect(host, port)
        out.write(f"{t0} {time.perf_counter_ns() - t0} {status}\n")
        out.flush()
        nxt += interval
        delay = nxt - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stop), delay)
        else:
            nxt = time.perf_counter()
    conn.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--path", default="/coins/balance")
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.session, args.path, args.interval))


if __name__ == "__main__":
    cli()
