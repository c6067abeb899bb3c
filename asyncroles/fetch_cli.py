"""``asyncroles fetch``: every input user's roles, one exact record per user, resumable.

A thin shell over ``Client.fetch_roles``: it reads and checks the input before any
credentials are spent, streams results to the output as they arrive, shows
progress, and on Ctrl-C / SIGTERM stops, flushes and says how to resume.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncroles import _runtime
from asyncroles.cli_common import (
    CONNECTION_EPILOG,
    add_connection_options,
    add_pacing_options,
    client_from_args,
)
from asyncroles.client import Client
from asyncroles.errors import UsageError
from asyncroles.export import export_user_ids
from asyncroles.export_cli import ExportDisplay
from asyncroles.inputs import InputScan, scan_input
from asyncroles.outputs import FORMATS, OutputFormat, format_for, open_writer
from asyncroles.planner import Strategy
from asyncroles.progress import Progress, Snapshot, render_summary
from asyncroles.resume import ResumeState, load_resume

__all__ = ["FetchOutcome", "Talk", "add_parser", "run", "run_fetch"]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
STRATEGIES = ("auto", "per-user", "by-role")
EXPORT_NAME = "users-export.json.gz"  # what export_user_ids writes in its folder

DESCRIPTION = """\
Fetch the roles of every user in a file, as fast as the tenant's Management API
rate limit allows and without tripping it, and write one record per user.

The input is read as it is: the users-export job's JSON (NDJSON) or CSV, the
legacy extension's CSV (column Id), a JSON array, or one id per line; gzip or
plain; a file or - for standard input.  Without an input, every user holding a
role is read (by role); with --all-users, the user list comes from an export job.

Strategies: per-user asks GET /users/{id}/roles once per user.  by-role reads
each role's member list instead: for many users, a hundred times fewer requests,
but it cannot tell a deleted or unknown user from one without roles (both come
out ok with no roles; not_found is a per-user answer).  auto (the default) counts
both routes first and takes the cheaper: a few users stay per-user."""

EPILOG = f"""\
output:
  jsonl (default)  {{"user_id": "...", "status": "ok", "roles": [{{"id", "name", "description"}}]}}
                   status is ok, not_found (roles null) or failed (roles null, "error")
  csv              user_id,status,role_id,role_name,role_description: a row per role,
                   one row with empty role columns for a user with none
  json             one array of the jsonl records, renamed into place when complete

examples:
  export AUTH0_DOMAIN=tenant.us.auth0.com AUTH0_CLIENT_ID=... AUTH0_CLIENT_SECRET=...
  asyncroles fetch -i users.json.gz -o roles.jsonl
  asyncroles fetch -i users.csv --id-column "User ID" -o roles.csv
  asyncroles fetch -i users.json.gz -o roles.jsonl --resume    # after Ctrl-C or a crash
  asyncroles fetch --all-users -o roles.jsonl    # export the users, then every user's roles
  asyncroles plan -i users.json.gz               # what each strategy would cost

exit status: 0 all users ok or not_found; 1 some users failed (all written);
2 bad usage or input; 3 credentials or permissions; 130 interrupted.

{CONNECTION_EPILOG}"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "fetch",
        help="fetch every input user's roles at the tenant's rate-limit ceiling",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = parser.add_argument_group("input and output")
    io.add_argument("-i", "--input", metavar="PATH", help="the users file, or - for standard input")
    io.add_argument(
        "--id-column",
        metavar="NAME",
        help='the column or key holding user ids (default: "user_id", else "Id")',
    )
    io.add_argument(
        "-o", "--output", metavar="PATH", default="-", help="where to write (default: stdout)"
    )
    io.add_argument(
        "--format",
        choices=FORMATS,
        help="jsonl, csv or json (default: from the output's extension, else jsonl)",
    )
    io.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: keep the users already in the output, "
        "retry failed ones, append the rest",
    )
    io.add_argument(
        "--force", action="store_true", help="overwrite an existing output instead of refusing"
    )
    io.add_argument(
        "--all-users",
        action="store_true",
        help="get the user list from a users-export job first (needs read:users), so "
        "users without roles appear too",
    )
    io.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="per-user, by-role or auto (default: auto, the cheaper; see above)",
    )
    add_connection_options(parser)
    add_pacing_options(parser)
    talk = parser.add_argument_group("messages")
    talk.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="log every retry; tracebacks on errors"
    )
    parser.set_defaults(run=run)
    return parser


@dataclass
class FetchOutcome:
    ok: int
    not_found: int
    failed: int
    interrupted: bool
    snapshot: Snapshot


def _check_output(args: argparse.Namespace) -> tuple[str | None, OutputFormat, ResumeState | None]:
    output = None if args.output in (None, "-") else args.output
    fmt = format_for(output, args.format)
    if args.resume:
        if output is None:
            raise UsageError(
                "--resume needs the output file to continue", hint="pass -o FILE with --resume"
            )
        return output, fmt, load_resume(output, fmt)
    if output is not None and os.path.exists(output) and os.path.getsize(output) and not args.force:
        raise UsageError(
            f"{output} already exists",
            hint="pass --resume to continue it, or --force to start over",
        )
    return output, fmt, None


def _scan(args: argparse.Namespace, resume: ResumeState | None) -> InputScan | None:
    if args.input is None:
        if args.strategy == "per-user" and not args.all_users:
            raise UsageError(
                "the per-user strategy needs a list of users",
                hint="pass -i FILE (a user export) or --all-users",
            )
        return None  # every user holding a role (by role), or the export's users
    if args.all_users:
        raise UsageError(
            "--all-users gets the user list from the tenant: drop -i/--input",
            hint="use -i FILE or --all-users, not both",
        )
    return scan_input(args.input, args.id_column, exclude=resume.done if resume else None)


def run(args: argparse.Namespace) -> int:
    output, fmt, resume = _check_output(args)
    # The whole input is read and checked before any credentials are spent.
    scan = _scan(args, resume)
    talk = Talk(quiet=args.quiet)
    with scan or contextlib.nullcontext():
        client = client_from_args(args, on_event=_verbose_events(args))
        if scan is not None and scan.duplicates:
            talk(f"{scan.duplicates:,} duplicate ids in {scan.path} skipped")
        if resume is not None and resume.exists:
            left = f", {scan.pending:,} to go" if scan is not None else ""
            talk(f"resuming {output}: {len(resume.done):,} users already done{left}")
        outcome = _runtime.run(
            run_fetch(
                client,
                scan,
                output=output,
                fmt=fmt,
                resume=resume,
                quiet=args.quiet,
                strategy=args.strategy,
                all_users=args.all_users,
            )
        )
    return _finish(outcome, output, talk)


def _finish(outcome: FetchOutcome, output: str | None, talk: Talk) -> int:
    if outcome.interrupted:
        where = output or "the output"
        print(
            f"asyncroles: interrupted; {where} holds every user finished so far. "
            "Run the same command with --resume to complete it.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if outcome.failed:
        talk(
            f"{outcome.failed:,} users failed (status failed, with the reason); "
            "run the same command with --resume to retry just them"
        )
    if output is not None:
        talk(f"wrote {output}")
    return EXIT_FAILED if outcome.failed else EXIT_OK


class Talk:
    """One ``asyncroles:`` line on stderr, unless quiet."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, text: str) -> None:
        if not self.quiet:
            print(f"asyncroles: {text}", file=sys.stderr)


def _verbose_events(args: argparse.Namespace) -> Any:
    if not args.verbose:
        return None

    def log(event: Any) -> None:
        print(
            f"asyncroles: {event.kind} {event.what} (attempt {event.attempt}): "
            f"{event.reason}; next in {event.delay_s:.2f}s",
            file=sys.stderr,
        )

    return log


async def run_fetch(
    client: Client,
    scan: InputScan | None,
    *,
    output: str | None,
    fmt: OutputFormat,
    resume: ResumeState | None = None,
    quiet: bool = False,
    strategy: Strategy = "per-user",
    all_users: bool = False,
) -> FetchOutcome:
    """Fetch, write and report; SIGINT/SIGTERM stop it cleanly (``interrupted``).

    ``scan`` None: with ``all_users`` the user list comes from an export job (kept
    beside the output so that ``--resume`` reuses it), else every user holding a
    role is read by role.
    """
    counts = {"ok": 0, "not_found": 0, "failed": 0}
    say = Talk(quiet=quiet)
    writer = open_writer(output, fmt, resume=resume)
    done_before = resume.done if resume is not None else None
    progress = Progress(
        client,
        total=scan.pending if scan is not None else None,
        done=lambda: (sum(counts.values()), counts["failed"]),
        stream=sys.stderr,
        quiet=quiet,
        on_tick=writer.flush,
    )
    interrupted = False
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def stop() -> None:
        nonlocal interrupted
        interrupted = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)  # a second Ctrl-C is not caught: it kills
        if main is not None:
            main.cancel()

    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
    try:
        async with client:
            if all_users:
                scan = await _export_scan(client, output, done_before, quiet=quiet)
                progress.total = scan.pending
            plan = None
            if strategy == "auto":
                plan = await client.plan(None if scan is None else scan.pending, exact=False)
                say(f"strategy {plan.choice}: {plan.reason}")
                if plan.choice == "by-role":
                    progress.requests_total = plan.by_role_requests
            progress.start()
            ids = None if scan is None else scan.iter_ids()
            async with contextlib.aclosing(
                client.fetch_roles(ids, strategy=strategy, plan=plan)
            ) as results:
                async for result in results:
                    if scan is None and done_before is not None and result.user_id in done_before:
                        continue  # by role, without input: finished in the earlier run
                    writer.write(result)
                    counts[result.status] += 1
    except asyncio.CancelledError:
        if not interrupted:
            raise
        # What was in flight is dropped: those users are not in the output, so
        # --resume fetches them again.  Nothing is written twice.
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        writer.close()
        snapshot = await progress.stop()
        if all_users and scan is not None:
            scan.close()
    if not quiet and not interrupted:
        burst = client.rate_limit.limit
        reserve = client.rate_limit.reserve or 0
        print(
            render_summary(
                snapshot,
                ok=counts["ok"],
                not_found=counts["not_found"],
                failed=counts["failed"],
                burst=None if burst is None else burst - reserve,
            ),
            file=sys.stderr,
        )
    return FetchOutcome(counts["ok"], counts["not_found"], counts["failed"], interrupted, snapshot)


async def _export_scan(
    client: Client, output: str | None, done: Container[str] | None, *, quiet: bool
) -> InputScan:
    """The tenant's user ids from an export job, as an input scan.

    The export is kept beside the output (``OUTPUT.users/``) and reused by
    ``--resume``, so a resumed run works on the same list of users.
    """
    workdir = Path(f"{output}.users") if output is not None else None
    existing = workdir / EXPORT_NAME if workdir is not None else None
    if done is None or existing is None or not existing.exists():
        if workdir is None:
            scratch = tempfile.mkdtemp(prefix="asyncroles-users-")
            workdir = Path(scratch)
        workdir.mkdir(mode=0o700, exist_ok=True)
        display = ExportDisplay(sys.stderr, quiet=quiet)
        try:
            existing = await export_user_ids(client, workdir, on_progress=display.update)
        finally:
            display.close()
    path = str(existing)
    return await asyncio.to_thread(scan_input, path, None, exclude=done)
