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
from dataclasses import dataclass
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
from asyncroles.inputs import InputScan, scan_input
from asyncroles.outputs import FORMATS, OutputFormat, format_for, open_writer
from asyncroles.progress import Progress, Snapshot, render_summary
from asyncroles.resume import ResumeState, load_resume

__all__ = ["FetchOutcome", "add_parser", "run", "run_fetch"]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130

DESCRIPTION = """\
Fetch the roles of every user in a file, as fast as the tenant's Management API
rate limit allows and without tripping it, and write one record per user.

The input is read as it is: the users-export job's JSON (NDJSON) or CSV, the
legacy extension's CSV (column Id), a JSON array, or one id per line; gzip or
plain; a file or - for standard input."""

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


def _scan(args: argparse.Namespace, resume: ResumeState | None) -> InputScan:
    if args.input is None:
        if sys.stdin.isatty():
            raise UsageError(
                "no input: which users?",
                hint="pass -i FILE (a user export), or -i - to read standard input",
            )
        args.input = "-"
    return scan_input(args.input, args.id_column, exclude=resume.done if resume else None)


def run(args: argparse.Namespace) -> int:
    output, fmt, resume = _check_output(args)
    # The whole input is read and checked before any credentials are spent.
    scan = _scan(args, resume)
    with scan:
        client = client_from_args(args, on_event=_verbose_events(args))
        talk = _Talk(quiet=args.quiet)
        if scan.duplicates:
            talk(f"{scan.duplicates:,} duplicate ids in {scan.path} skipped")
        if resume is not None and resume.exists:
            talk(f"resuming {output}: {scan.excluded:,} users already done, {scan.pending:,} to go")
        outcome = _runtime.run(
            run_fetch(client, scan, output=output, fmt=fmt, resume=resume, quiet=args.quiet)
        )
    return _finish(outcome, output, talk)


def _finish(outcome: FetchOutcome, output: str | None, talk: _Talk) -> int:
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


class _Talk:
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
    scan: InputScan,
    *,
    output: str | None,
    fmt: OutputFormat,
    resume: ResumeState | None = None,
    quiet: bool = False,
) -> FetchOutcome:
    """Fetch, write and report; SIGINT/SIGTERM stop it cleanly (``interrupted``)."""
    counts = {"ok": 0, "not_found": 0, "failed": 0}
    writer = open_writer(output, fmt, resume=resume)
    progress = Progress(
        client,
        total=scan.pending,
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
            progress.start()
            async with contextlib.aclosing(client.fetch_roles(scan.iter_ids())) as results:
                async for result in results:
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
