"""Resident memory of the client with a million ids streaming through it.

    python benchmarks/memory.py                   # 1,000,000 ids (~3-5 min)
    python benchmarks/memory.py --quick           # 100,000 ids

The ids come from a generator (never a list) into ``Client.fetch_roles``; the
consumer only counts outcomes.  The simulator runs in its own process with a
10-user tenant, so the ids are unknown and each answer is a 404 (``not_found``):
the same request, response and bookkeeping per id as a real user, without a
million-user tenant.  Its bucket (10^9 tokens, refilled at 1000/s) never runs dry
yet is never full, so the client's rate-learning keeps running the whole time.
Prints resident memory every 10% and the peak (target: under 250 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness import BENCH, SimProcess

from asyncroles import Client

TARGET_MB = 250.0


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc; else the peak so far)."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory: ``VmHWM`` on Linux (``ru_maxrss`` may be a parent's)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def ids(count: int) -> Iterator[str]:
    for i in range(count):
        yield f"auth0|memory{i:09d}"


async def stream(
    sim: SimProcess, count: int
) -> tuple[Counter[str], list[tuple[int, float, float]]]:
    outcomes: Counter[str] = Counter()
    samples: list[tuple[int, float, float]] = []
    step = max(1, count // 10)
    started = time.monotonic()
    async with Client(
        sim.domain,
        client_id=sim.env["AUTH0_CLIENT_ID"],
        client_secret=sim.env["AUTH0_CLIENT_SECRET"],
    ) as client:
        done = 0
        async for result in client.fetch_roles(ids(count)):
            outcomes[result.status] += 1
            done += 1
            if done % step == 0:
                samples.append((done, time.monotonic() - started, rss_mb()))
                print(
                    f"  {done:>9,} ids  {samples[-1][1]:6.1f} s  RSS {samples[-1][2]:6.1f} MB",
                    flush=True,
                )
    return outcomes, samples


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ids", type=int, default=1_000_000, help="ids to stream (1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 ids")
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="output directory")
    args = parser.parse_args()
    count = 100_000 if args.quick else args.ids
    flags = [
        "--users", "10", "--bucket", "1000000000", "--refill", "1000",
        "--no-record-requests",
    ]  # fmt: skip
    with SimProcess(flags) as sim:
        before = rss_mb()
        print(f"streaming {count:,} ids; RSS before {before:.1f} MB", flush=True)
        if args.loop == "uvloop":
            import uvloop

            outcomes, samples = uvloop.run(stream(sim, count))
        else:
            outcomes, samples = asyncio.run(stream(sim, count))
        stats = sim.stats()
    peak = peak_rss_mb()
    elapsed = samples[-1][1] if samples else 0.0
    verdict = "meets" if peak < TARGET_MB else "MISSES"
    print(
        f"{count:,} ids in {elapsed:.0f} s ({count / max(elapsed, 1e-9):,.0f}/s): "
        f"{dict(outcomes)}; server saw {stats['api_requests']:,} requests, "
        f"{stats['count_429']} 429s\n"
        f"peak RSS {peak:.1f} MB ({verdict} < {TARGET_MB:g} MB); RSS before {before:.1f} MB, "
        f"after the first 10% {samples[0][2] if samples else 0:.1f} MB, "
        f"at the end {samples[-1][2] if samples else 0:.1f} MB"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(
        json.dumps(
            {
                "ids": count,
                "loop": args.loop,
                "outcomes": dict(outcomes),
                "rss_before_mb": before,
                "peak_rss_mb": peak,
                "samples": samples,
                "server_requests": stats["api_requests"],
                "count_429": stats["count_429"],
            },
            indent=1,
        )
    )
    ok = peak < TARGET_MB and sum(outcomes.values()) == count
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
