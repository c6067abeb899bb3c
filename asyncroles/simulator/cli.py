"""``asyncroles simulate``: serve a simulated Auth0 tenant until Ctrl-C.

Every ``SimulatorSettings`` field becomes a ``--kebab-case`` option with its help
text and default, so ``--help`` documents every setting.  On start the command
prints three ``export``-ready lines on stdout (domain, client id, secret), a short
note on stderr, and serves on 127.0.0.1 until SIGINT or SIGTERM (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
import typing
from typing import Any

from asyncroles import _runtime, errors
from asyncroles.simulator.server import Simulator
from asyncroles.simulator.settings import SimulatorSettings

__all__ = ["add_parser", "run", "settings_from_args"]

DESCRIPTION = """\
Serve a simulated Auth0 tenant on 127.0.0.1: the Management API calls asyncroles
makes (/oauth/token, GET /api/v2/users/{id}/roles, /roles, /roles/{id}/users,
users-export jobs) with Auth0's rate limit, headers, 429 bodies, pagination rules
and, on request, its faults.  The tenant is generated from --users, --roles and
--seed, so the same numbers always give the same users, roles and credentials.

It prints three lines ready for `export` (AUTH0_DOMAIN, AUTH0_CLIENT_ID,
AUTH0_CLIENT_SECRET) and serves until Ctrl-C.  Observability, outside the rate
limit: GET /__sim/stats (requests by endpoint and status, 429s, peak requests in
any second) and GET /__sim/truth (every user -> role ids)."""

EPILOG = """\
example session (seed 1 always prints these credentials; the port varies):
  $ asyncroles simulate --users 2000 --bucket 10 --refill 2.5 > sim.env &
  $ sleep 1; export $(cat sim.env); cat sim.env
  AUTH0_DOMAIN=http://127.0.0.1:45719
  AUTH0_CLIENT_ID=pwoFNnucD7EpD0sjUmwqaCMI3R3Zz5wd
  AUTH0_CLIENT_SECRET=87jlWfoTjnUnBPM12dGjd4XTDY2CpxiUoFGzr27MRKn6yu2Kj9DIFJLq2Csy5tDo
  $ TOKEN=$(curl -s "$AUTH0_DOMAIN/oauth/token" -d grant_type=client_credentials \\
      -d client_id="$AUTH0_CLIENT_ID" -d client_secret="$AUTH0_CLIENT_SECRET" \\
      -d audience="$AUTH0_DOMAIN/api/v2/" \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  $ curl -si -H "authorization: Bearer $TOKEN" \\
      "$AUTH0_DOMAIN/api/v2/users/auth0%7Cteam%2Falpha%2F3/roles?per_page=50&include_totals=true"
  HTTP/1.1 200 OK
  x-ratelimit-limit: 10
  x-ratelimit-remaining: 9
  x-ratelimit-reset: 1796418753
  Content-Type: application/json; charset=utf-8
  ...
  {"roles":[{"id":"rol_2pJHDBEAxO15Avut","name":"Marketing Viewer","description":null},
  ...],"start":0,"limit":50,"total":3}
  $ curl -s "$AUTH0_DOMAIN/__sim/stats"    # what the tenant saw: requests, 429s, peak_1s
  $ kill %1                                # stop it (exit status 0)

Ids in paths are percent-encoded exactly once, like encodeURIComponent:
auth0|team/alpha/3 -> auth0%7Cteam%2Falpha%2F3 (the '/' is part of the id)."""

# Options grouped as in SimulatorSettings; a field missing here lands in "other".
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tenant", ("users", "roles", "seed")),
    (
        "rate limit",
        (
            "bucket",
            "refill_per_s",
            "reset_mode",
            "retry_after",
            "token_bucket",
            "token_refill_per_s",
        ),
    ),
    (
        "auth",
        (
            "client_id",
            "client_secret",
            "token_lifetime_s",
            "scopes",
            "bad_credentials",
            "client_grant",
        ),
    ),
    ("API behaviour", ("unknown_user", "max_take", "offset_limit", "cursor_ttl_s")),
    ("export job", ("export_duration_s", "location_ttl_s", "export_fail", "download_cut")),
)


def _scopes(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.replace(",", " ").split() if part)


def flag_of(field: dataclasses.Field[Any]) -> str:
    """The option spelling of a settings field (``refill_per_s`` -> ``--refill``)."""
    flag = field.metadata.get("flag")
    return str(flag) if flag else "--" + field.name.replace("_", "-")


def _add_option(group: Any, field: dataclasses.Field[Any], hint: Any) -> None:
    help_text = str(field.metadata.get("help", ""))
    default = field.default
    kwargs: dict[str, Any] = {"dest": field.name, "default": default}
    if hint is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
        help_text += f" (default: {'on' if default else 'off'})"
    elif typing.get_origin(hint) is typing.Literal:
        kwargs["choices"] = typing.get_args(hint)
        help_text += f" (default: {default})"
    elif hint is int or hint is float:
        kwargs["type"] = hint
        kwargs["metavar"] = "N" if hint is int else "X"
        help_text += f" (default: {default})"
    elif field.name == "scopes":
        kwargs["type"] = _scopes
        kwargs["default"] = SimulatorSettings().scopes
        kwargs["metavar"] = "'S1 S2 ...'"
        help_text += f" (default: {' '.join(SimulatorSettings().scopes)})"
    else:
        kwargs["metavar"] = "TEXT"
    group.add_argument(flag_of(field), help=help_text, **kwargs)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``simulate`` on the ``asyncroles`` command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="serve a simulated Auth0 tenant on 127.0.0.1 (for trying, testing, benchmarks)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, default=0, metavar="N",
        help="TCP port on 127.0.0.1; 0 picks a free one (default: 0)",
    )  # fmt: skip
    hints = typing.get_type_hints(SimulatorSettings)
    fields = {f.name: f for f in dataclasses.fields(SimulatorSettings)}
    placed: set[str] = set()
    for title, names in _GROUPS:
        group = parser.add_argument_group(title)
        for name in names:
            _add_option(group, fields[name], hints[name])
            placed.add(name)
    realism = parser.add_argument_group("realism and observability")
    for name, field in fields.items():
        if name not in placed:
            _add_option(realism, field, hints[name])
    parser.set_defaults(run=run)
    return parser


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(SimulatorSettings)}
    try:
        return SimulatorSettings(**values)
    except ValueError as error:
        raise errors.UsageError(str(error), hint="see 'asyncroles simulate --help'") from error


async def _serve(settings: SimulatorSettings, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not on Windows: there Ctrl-C arrives as KeyboardInterrupt (see run()).
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(settings, port=port)
    try:
        await simulator.start()
    except OSError as error:
        raise errors.UsageError(
            f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}",
            hint="pick another --port, or --port 0 for a free one",
        ) from error
    try:
        sys.stdout.write(
            f"AUTH0_DOMAIN={simulator.domain}\n"
            f"AUTH0_CLIENT_ID={simulator.client_id}\n"
            f"AUTH0_CLIENT_SECRET={simulator.client_secret}\n"
        )
        sys.stdout.flush()
        print(
            f"asyncroles simulate: {settings.users} users, {settings.roles} roles "
            f"(seed {settings.seed}); /api/v2 bucket {settings.bucket} refilled at "
            f"{settings.refill_per_s:g}/s; serving {simulator.domain} "
            "(stats at /__sim/stats). Ctrl-C or SIGTERM stops it.",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await simulator.close()
    return 0


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 0 quietly on Ctrl-C / SIGTERM."""
    settings = settings_from_args(args)
    try:
        return _runtime.run(_serve(settings, int(args.port)))
    except KeyboardInterrupt:
        return 0
