"""How many ``GET /api/v2/users/{id}/roles`` per second the simulator serves on one core.

The simulator must never be what limits a benchmark of asyncroles (issue 2: at
least 2,000 requests/s with limits and latency off).  This runs
``asyncroles simulate`` in a subprocess (its own core, port 0, a bucket too big
to matter), drives it from this process with aiohttp for ``--duration`` seconds,
and prints the rate.  On Linux it also reads the server's CPU time from /proc,
so "requests per server CPU-second" shows what one core can do even when the
load generator is the bottleneck.

    python benchmarks/simulator_throughput.py [--duration 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import aiohttp
from yarl import URL

from asyncroles import _runtime
from asyncroles.simulator import Tenant

SAFE = "-_.!~*'()"  # encodeURIComponent


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (Linux only; None elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def start_server(
    users: int, record: bool
) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    command = [
        sys.executable, "-m", "asyncroles", "simulate", "--port", "0",
        "--users", str(users), "--bucket", "1000000000", "--refill", "1e9",
    ]  # fmt: skip
    if not record:
        command.append("--no-record-requests")
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    lines = [(await asyncio.wait_for(proc.stdout.readline(), 120)).decode() for _ in range(3)]
    env = dict(line.strip().split("=", 1) for line in lines)
    return proc, env


async def token_for(http: aiohttp.ClientSession, env: dict[str, str]) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": env["AUTH0_CLIENT_ID"],
        "client_secret": env["AUTH0_CLIENT_SECRET"],
        "audience": env["AUTH0_DOMAIN"] + "/api/v2/",
    }
    async with http.post(env["AUTH0_DOMAIN"] + "/oauth/token", data=form) as response:
        response.raise_for_status()
        token: str = (await response.json())["access_token"]
        return token


async def drive(
    env: dict[str, str], users: list[str], duration_s: float, concurrency: int
) -> tuple[int, Counter[int], float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        headers = {"Authorization": f"Bearer {await token_for(http, env)}"}
        domain = env["AUTH0_DOMAIN"]
        urls = [
            URL(f"{domain}/api/v2/users/{quote(u, safe=SAFE)}/roles?per_page=50", encoded=True)
            for u in users
        ]
        statuses: Counter[int] = Counter()
        done = 0
        deadline = time.perf_counter() + duration_s

        async def worker(offset: int) -> None:
            nonlocal done
            i = offset
            while time.perf_counter() < deadline:
                async with http.get(urls[i % len(urls)], headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1
                done += 1
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done, statuses, time.perf_counter() - started


async def main(args: argparse.Namespace) -> int:
    proc, env = await start_server(args.users, not args.no_record)
    try:
        users = list(Tenant(args.users, 50, seed=1).user_ids)
        # Warm up connections and the member caches before measuring.
        await drive(env, users, 1.0, args.concurrency)
        cpu_before = cpu_seconds(proc.pid)
        done, statuses, elapsed = await drive(env, users, args.duration, args.concurrency)
        cpu_after = cpu_seconds(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        await proc.wait()
    rate = done / elapsed
    print(f"GET /api/v2/users/{{id}}/roles: {done} requests in {elapsed:.1f} s = {rate:,.0f} req/s")
    print(f"  statuses: {dict(statuses)}; concurrency {args.concurrency}; users {args.users}")
    if cpu_before is not None and cpu_after is not None:
        server_cpu = cpu_after - cpu_before
        print(
            f"  server CPU: {server_cpu:.1f} s over {elapsed:.1f} s "
            f"({server_cpu / elapsed:.0%} of one core) = "
            f"{done / server_cpu:,.0f} req per CPU-second"
        )
    ok = statuses.get(200, 0) == done and rate >= args.minimum
    if not ok:
        print(f"  FAILED: expected only 200s and at least {args.minimum} req/s", file=sys.stderr)
    return 0 if ok else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured (10)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    parser.add_argument("--users", type=int, default=10_000, help="tenant size (10000)")
    parser.add_argument("--minimum", type=float, default=2000.0, help="fail below this (2000)")
    parser.add_argument(
        "--no-record", action="store_true", help="run the server with --no-record-requests"
    )
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(_runtime.run(main(parse_args())))
