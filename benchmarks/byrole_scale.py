"""Requests and wall time of the two routes, per-user and by-role, at 10k, 100k and 1M users.

For each size, ``asyncroles simulate`` runs in a subprocess (its own core) with the
default 50 roles and a rate limit scaled up (``--bucket``/``--refill``) so that
the large tenants finish in minutes; the request counts are the real ones, read
from the simulator's own ``GET /__sim/stats``.  Then this process reads:

* by-role, without input (every user holding a role), checked against the
  simulator's ``GET /__sim/truth``; its peak RSS is measured before anything else
  is loaded;
* per-user, one request per user, for every user; above ``--real-per-user-max``
  users it is not run: its count is exactly one request per user, and its time is
  estimated from that count at the rate per-user reached on the largest size run
  for real (the output says "est.").

Time at a real tenant's rate is ``(requests - burst) / refill`` at Auth0
Enterprise's published 50 burst / 16 per s, less the client's reserve of 5.
Prints a Markdown table.

    python benchmarks/byrole_scale.py [--sizes 10000 100000 1000000] [--refill 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

from asyncroles import Client, UserRoles, _runtime
from asyncroles.pacing import default_reserve

ROLE_USERS = "GET /api/v2/roles/{id}/users"
ROLES = "GET /api/v2/roles"
USER_ROLES = "GET /api/v2/users/{id}/roles"
ENTERPRISE_BURST, ENTERPRISE_REFILL_PER_S = 50, 16.0  # auth0-api.md "Rate limits"


@dataclass
class Run:
    requests: int
    seconds: float
    throttled: int
    estimated: bool = False


@dataclass
class Row:
    users: int
    roles: int
    assignments: int
    holders: int
    per_user: Run
    by_role: Run
    exact: bool
    rss_mib: float


async def start_simulator(users: int, bucket: int, refill: float) -> tuple[Any, dict[str, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncroles", "simulate", "--port", "0",
        "--users", str(users), "--bucket", str(bucket), "--refill", str(refill),
        "--no-record-requests",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [(await asyncio.wait_for(proc.stdout.readline(), 600)).decode() for _ in range(3)]
    return proc, dict(line.strip().split("=", 1) for line in lines)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=600) as response:  # loopback only
        return json.loads(response.read())


def counts(domain: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for item in get_json(f"{domain}/__sim/stats")["requests"]:
        out[item["endpoint"]] += item["count"]
    return out


async def timed_fetch(
    env: dict[str, str], user_ids: list[str] | None, strategy: str
) -> tuple[dict[str, UserRoles], float, int]:
    client = Client(
        env["AUTH0_DOMAIN"],
        client_id=env["AUTH0_CLIENT_ID"],
        client_secret=env["AUTH0_CLIENT_SECRET"],
    )
    results: dict[str, UserRoles] = {}
    async with client:
        started = time.perf_counter()
        stream = client.fetch_roles(user_ids, strategy=strategy)  # type: ignore[arg-type]
        async with contextlib.aclosing(stream) as it:
            async for result in it:
                results[result.user_id] = result
        seconds = time.perf_counter() - started
        return results, seconds, client.stats.throttled


async def measure(users: int, args: argparse.Namespace, rate_seen: list[float]) -> Row:
    proc, env = await start_simulator(users, args.bucket, args.refill)
    domain = env["AUTH0_DOMAIN"]
    try:
        before = counts(domain)
        by_role, by_role_s, by_role_429 = await timed_fetch(env, None, "by-role")
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        after = counts(domain)
        by_role_requests = sum(after[k] - before[k] for k in (ROLES, ROLE_USERS))
        truth: dict[str, list[str]] = get_json(f"{domain}/__sim/truth")
        held = {u: set(r) for u, r in truth.items()}
        ids = list(truth)
        del truth
        holders = sum(1 for r in held.values() if r)
        exact = len(by_role) == holders and all(
            {role.id for role in result.roles or ()} == held[u] for u, result in by_role.items()
        )
        roles = len(set().union(*held.values()))
        assignments = sum(len(r) for r in held.values())
        del by_role
        if users <= args.real_per_user_max:
            before = counts(domain)
            per_user, per_user_s, per_user_429 = await timed_fetch(env, ids, "per-user")
            after = counts(domain)
            same = all(
                r.status == "ok" and {role.id for role in r.roles or ()} == held[u]
                for u, r in per_user.items()
            )
            exact = exact and same and len(per_user) == len(ids)
            per_user_run = Run(after[USER_ROLES] - before[USER_ROLES], per_user_s, per_user_429)
            rate_seen.append(per_user_run.requests / per_user_s)
        else:
            rate = rate_seen[-1] if rate_seen else args.refill
            per_user_run = Run(len(ids), len(ids) / rate, 0, estimated=True)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        await proc.wait()
    by_role_run = Run(by_role_requests, by_role_s, by_role_429)
    return Row(users, roles, assignments, holders, per_user_run, by_role_run, exact, rss_mib)


def at_enterprise(requests: int) -> str:
    burst = ENTERPRISE_BURST - default_reserve(ENTERPRISE_BURST)
    return human(max(0, requests - burst) / ENTERPRISE_REFILL_PER_S)


def human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.1f} min"
    return f"{minutes / 60:.1f} h"


def table(rows: list[Row], args: argparse.Namespace) -> str:
    out = [
        f"| users | roles | role assignments | per-user requests | by-role requests | "
        f"fewer | per-user time (at {args.refill:,.0f}/s) | by-role time (at {args.refill:,.0f}/s) "
        f"| per-user at 16/s | by-role at 16/s | by-role exact | by-role peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---:|",
    ]
    for row in rows:
        per_user_time = human(row.per_user.seconds) + (" (est.)" if row.per_user.estimated else "")
        out.append(
            f"| {row.users:,} | {row.roles} | {row.assignments:,} | {row.per_user.requests:,} "
            f"| {row.by_role.requests:,} | {row.per_user.requests / row.by_role.requests:,.0f}x "
            f"| {per_user_time} | {human(row.by_role.seconds)} "
            f"| {at_enterprise(row.per_user.requests)} | {at_enterprise(row.by_role.requests)} "
            f"| {'yes' if row.exact else 'NO'} | {row.rss_mib:,.0f} MiB |"
        )
    return "\n".join(out)


async def main(args: argparse.Namespace) -> int:
    rows: list[Row] = []
    rate_seen: list[float] = []
    for users in sorted(args.sizes):
        print(f"measuring {users:,} users...", file=sys.stderr)
        row = await measure(users, args, rate_seen)
        print(f"  {row}", file=sys.stderr)
        rows.append(row)
    print(table(rows, args))
    print(
        f"\nSimulated tenants of 50 roles, bucket {args.bucket}, refill {args.refill:,.0f}/s "
        '(scaled up; request counts are real). "est.": not run, one request per user at '
        "the rate per-user reached on the largest tenant run for real. The 16/s columns: "
        "Auth0 Enterprise's published 50 burst / 16 per s, less the client's reserve of 5. "
        "Peak RSS: the benchmark process after by-role (client and map; the simulator runs "
        "in its own process)."
    )
    return 0 if all(row.exact for row in rows) else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--bucket", type=int, default=200, help="simulated burst (200)")
    parser.add_argument("--refill", type=float, default=2000.0, help="simulated refill/s (2000)")
    parser.add_argument(
        "--real-per-user-max",
        type=int,
        default=100_000,
        help="run per-user for real up to this many users; estimate above (100000)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(_runtime.run(main(parse_args())))
