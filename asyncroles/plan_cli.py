"""``asyncroles plan``: what per-user and by-role would cost, without fetching the mapping.

A thin shell over ``Client.plan``: it counts the input's distinct ids (checking the
file as ``fetch`` would), lists the roles and counts each role's members (about one
request a role), then prints both estimates, in requests and in time at the rate
the client learned from the tenant's rate-limit headers.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

import orjson

from asyncroles import _runtime
from asyncroles.cli_common import (
    CONNECTION_EPILOG,
    add_connection_options,
    client_from_args,
    positive_float,
)
from asyncroles.client import Client
from asyncroles.inputs import scan_input
from asyncroles.planner import Pace, Plan, choose

__all__ = ["add_parser", "render", "run"]

DESCRIPTION = """\
Count what fetching every user's roles would cost by each route, and say which is
cheaper, without fetching the mapping:

  per-user  one request per user (GET /api/v2/users/{id}/roles)
  by-role   the role list, then each role's members, 100 a page
            (GET /api/v2/roles/{id}/users): usually far fewer requests, but it cannot
            tell a deleted user from a user without roles

Planning costs about one request per role (each role's member count)."""

EPILOG = f"""\
examples:
  asyncroles plan -i users.json.gz        # both routes for the users in the file
  asyncroles plan                         # the whole tenant (by-role needs no list)
  asyncroles plan --rate 16 --json        # time at 16 requests/s, machine-readable

{CONNECTION_EPILOG}"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "plan",
        help="estimate both routes (per-user, by-role) in requests and time; fetch nothing",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-i",
        "--input",
        metavar="PATH",
        help="the users file (or - for standard input) whose distinct ids to count; "
        "without it, the whole tenant",
    )
    parser.add_argument(
        "--id-column",
        metavar="NAME",
        help='the column or key holding user ids (default: "user_id", else "Id")',
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        metavar="R",
        help="estimate time at R requests/s (default: the rate learned from the tenant)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress message")
    add_connection_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    users: int | None = None
    source: str | None = None
    if args.input is not None:
        # Read and check the whole file before any credentials are spent.
        with scan_input(args.input, args.id_column) as scan:
            users, source = scan.total, scan.path
    client = client_from_args(args)
    if not args.quiet:
        print(
            "asyncroles: listing roles and counting each role's members "
            "(about one request a role)...",
            file=sys.stderr,
        )
    plan = _runtime.run(_plan(client, users, args.rate))
    if args.json:
        print(orjson.dumps(plan.to_json()).decode())
    else:
        print(render(plan, domain=client.tenant.base_url, source=source, rate_given=args.rate))
    return 0


async def _plan(client: Client, users: int | None, rate: float | None) -> Plan:
    """The plan of a later ``fetch`` run: fresh costs, a full bucket, the given rate."""
    async with client:
        plan = await client.plan(users)
    pace = Pace.from_state(client.rate_limit, full_bucket=True)
    if rate is not None:
        pace = Pace(rate, pace.burst if pace else 0, pace.rtt_s if pace else None)
    members = plan.census.members if plan.census is not None else None
    if members is None:
        return replace(plan, pace=pace)
    # A later run plans again (its own census), so show what each route costs from
    # scratch: by-role's whole formula, listing included.
    return choose(
        users,
        members,
        take=plan.take,
        planning_spent=plan.planning_requests,
        pace=pace,
    )


def render(
    plan: Plan, *, domain: str, source: str | None = None, rate_given: float | None = None
) -> str:
    """The plan as a few aligned lines of plain text."""
    lines = [f"tenant    {domain}"]
    if plan.users is None:
        lines.append("users     no list given: the whole tenant")
    else:
        where = f" in {source}" if source else ""
        lines.append(f"users     {plan.users:,} distinct ids{where}")
    if plan.roles is not None:
        detail = ""
        if plan.memberships is not None:
            detail = (
                f" ({plan.memberships:,} role assignments; "
                f"the largest role has {plan.largest_role or 0:,} members)"
            )
        lines.append(f"roles     {plan.roles:,}{detail}")
    pace = plan.pace
    if pace is not None:
        if rate_given is not None:
            how = "as given (--rate)"
        elif pace.learned:
            how = "learned from the tenant's rate-limit headers"
        else:
            how = "not learned in so few requests: a cautious guess (--rate R to set it)"
        lines.append(f"rate      {pace.refill_per_s:,.1f} requests/s, {how}")
    lines.append(f"planning  {plan.planning_requests:,} requests spent")
    lines.append("")
    per_user = (
        "needs a list of users (--input): one request per user, at least "
        f"{plan.largest_role or 0:,} here (the largest role's members)"
        if plan.per_user_requests is None
        else f"{plan.per_user_requests:,} requests{_at(plan.per_user_s)}"
    )
    by_role = (
        "not counted"
        if plan.by_role_requests is None
        else f"{'at least ' if plan.by_role_bound else ''}{plan.by_role_requests:,} requests"
        f"{_at(plan.by_role_s)}"
    )
    lines.append(f"per-user  {per_user}")
    lines.append(f"by-role   {by_role}")
    lines.append("")
    lines.append(f"choice    {plan.choice}: {plan.reason}")
    if plan.choice == "by-role" and plan.users is not None:
        lines.append("note: by-role cannot tell a deleted user from a user without roles")
    return "\n".join(lines)


def _at(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f", {'about ' if seconds >= 1 else ''}{human_duration(seconds)}"


def human_duration(seconds: float) -> str:
    """``under 1 s``, ``2.5 s``, ``12 s``, ``7 min 5 s``, ``17 h 21 min``."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
