"""``asyncroles demo``: the main job, end to end, on a simulated tenant.

It starts the built-in simulator in this process with Enterprise-like limits (a
burst of 50, 16 requests/s, ~60 ms away), writes the tenant's users as the
users-export job would (gzip NDJSON), runs ``fetch`` on that file with the
progress display, checks every record against the tenant's ground truth, and says
where the output is.  Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gzip
import os
from typing import Any

import orjson

from asyncroles import _runtime
from asyncroles.client import Client
from asyncroles.fetch_cli import FetchOutcome, Talk, run_fetch
from asyncroles.inputs import scan_input
from asyncroles.simulator import Simulator, SimulatorSettings

__all__ = ["add_parser", "run"]

DEMO_TENANT = {
    "users": 750,
    "roles": 40,
    "seed": 7,
    "bucket": 50,
    "refill_per_s": 16.0,
    "latency_ms": 60.0,
    "jitter_ms": 15.0,
}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run fetch on a built-in simulated tenant (about 45 s, nothing leaves this machine)",
        description=(
            "Start a simulated Auth0 tenant in this process (750 users, Enterprise-like "
            "limits: burst 50, 16 requests/s, ~60 ms away), export its users to a file, "
            "fetch every user's roles at the rate-limit ceiling with the progress display, "
            "and check the output against the tenant's ground truth."
        ),
    )
    parser.add_argument(
        "--dir",
        default="asyncroles-demo",
        metavar="DIR",
        help="where to write users.json.gz and roles.jsonl (default: ./asyncroles-demo)",
    )
    parser.add_argument("--users", type=int, default=DEMO_TENANT["users"], metavar="N")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    os.makedirs(args.dir, exist_ok=True)
    users_path = os.path.join(args.dir, "users.json.gz")
    roles_path = os.path.join(args.dir, "roles.jsonl")
    if os.path.exists(roles_path):
        os.remove(roles_path)  # a demo starts over; fetch itself refuses to overwrite
    return _runtime.run(_demo(args, users_path, os.path.abspath(roles_path)))


def _write_users(sim: Simulator, path: str) -> None:
    # What POST /api/v2/jobs/users-exports delivers for format=json: gzip NDJSON.
    with gzip.open(path, "wb") as out:
        for user_id in sim.tenant.user_ids:
            out.write(orjson.dumps({"user_id": user_id}) + b"\n")


def _check(sim: Simulator, path: str) -> tuple[int, int]:
    truth = sim.tenant.truth()
    exact = total = 0
    with open(path, "rb") as records:
        for line in records:
            record = orjson.loads(line)
            total += 1
            roles = record["roles"]
            expected = truth.get(record["user_id"])
            if roles is not None and frozenset(r["id"] for r in roles) == expected:
                exact += 1
    return exact, total


async def _demo(args: argparse.Namespace, users_path: str, roles_path: str) -> int:
    settings = SimulatorSettings(**{**DEMO_TENANT, "users": args.users})
    say = Talk(quiet=args.quiet)
    async with Simulator(settings) as sim:
        _write_users(sim, users_path)
        say(
            f"simulated tenant at {sim.domain}: {settings.users} users, {settings.roles} roles, "
            f"burst {settings.bucket}, {settings.refill_per_s:g} requests/s, "
            f"~{settings.latency_ms:g} ms away"
        )
        say(f"users exported to {users_path}; fetching their roles into {roles_path}")
        with scan_input(users_path) as scan:
            client = Client(sim.domain, client_id=sim.client_id, client_secret=sim.client_secret)
            outcome: FetchOutcome = await run_fetch(
                client, scan, output=roles_path, fmt="jsonl", quiet=args.quiet
            )
        if outcome.interrupted:
            say("interrupted")
            return 130
        exact, total = _check(sim, roles_path)
        say(
            f"checked against the tenant: {exact}/{total} users have exactly their roles; "
            f"the tenant saw {sim.stats.count_429} responses 429"
        )
        say(f"output: {roles_path}")
        say("next: point it at a tenant: asyncroles fetch --help")
    return 0 if exact == total == settings.users and not outcome.failed else 1
