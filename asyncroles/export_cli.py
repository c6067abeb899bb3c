"""``asyncroles export-users``: the tenant's users to a file, with no Dashboard step.

A thin shell over :func:`asyncroles.export.export_users`: options in, progress on
stderr (a status line on a terminal, a plain line per update elsewhere, nothing
with ``--quiet``), one final line saying where the file is and how many users.
Errors reach ``cli.main`` and become one plain line with the exit status of the
CLI issue: 2 usage, 3 credentials or permissions, 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from asyncroles import _runtime
from asyncroles.cli_common import (
    CONNECTION_EPILOG,
    add_connection_options,
    client_from_args,
    positive_int,
)
from asyncroles.errors import UsageError
from asyncroles.export import (
    DEFAULT_EXPORT_FIELDS,
    ExportField,
    ExportFormat,
    ExportProgress,
    ExportResult,
    export_users,
)
from asyncroles.progress import format_duration
from asyncroles.retry import RetryEvent

__all__ = ["ExportDisplay", "add_parser", "format_for", "parse_fields", "render_progress", "run"]

EXIT_OK = 0
LOG_EVERY_S = 5.0  # download progress when stderr is not a terminal
TTY_EVERY_S = 0.25

DESCRIPTION = """\
Export the tenant's users to a file through the Management API's users-export job
(POST /api/v2/jobs/users-exports, scope read:users): create the job, wait for it
within the rate limit, download its file (asking the job for a fresh link when
one expires), check it is whole, and write it.  The file feeds `fetch --input`
as it is.

A name ending in .gz keeps Auth0's gzip file; any other name is decompressed."""

EPILOG = f"""\
examples:
  export AUTH0_DOMAIN=tenant.us.auth0.com AUTH0_CLIENT_ID=... AUTH0_CLIENT_SECRET=...
  asyncroles export-users -o users.json.gz
  asyncroles fetch -i users.json.gz -o roles.jsonl
  asyncroles export-users -o users.csv --fields "user_id,email=E-mail,last_login"
  asyncroles export-users -o corp.json.gz --connection-id con_0123456789abcdef

exit status: 0 exported; 1 the job failed or its file could not be downloaded
whole; 2 bad usage (an unknown connection, a field Auth0 refuses); 3 credentials
or permissions (the application needs the read:users scope).

{CONNECTION_EPILOG}"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "export-users",
        help="export the tenant's users to a file (the input of fetch), no Dashboard step",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    out = parser.add_argument_group("what to export, and where")
    out.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        required=True,
        help="the file to write; a name ending in .gz keeps the gzip compression",
    )
    out.add_argument(
        "--format",
        choices=("json", "csv"),
        help="json (NDJSON, one user a line) or csv (default: csv for a .csv or .csv.gz "
        "name, else json)",
    )
    out.add_argument(
        "--fields",
        metavar="LIST",
        help="comma-separated user fields, NAME or NAME=COLUMN TITLE "
        f"(default: {','.join(DEFAULT_EXPORT_FIELDS)}; user_id is always included)",
    )
    out.add_argument(
        "--connection-id",
        metavar="CON_ID",
        help="export only this connection's users (con_...; default: every connection)",
    )
    out.add_argument("--limit", type=positive_int, metavar="N", help="export at most N users")
    out.add_argument(
        "--force", action="store_true", help="overwrite an existing output instead of refusing"
    )
    add_connection_options(parser)
    talk = parser.add_argument_group("messages")
    talk.add_argument("-q", "--quiet", action="store_true", help="no progress, no final line")
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="log every retry; tracebacks on errors"
    )
    parser.set_defaults(run=run)
    return parser


def parse_fields(text: str | None) -> list[ExportField] | None:
    """``user_id,email,name=Full name`` -> fields; None (the defaults) for no option."""
    if text is None:
        return None
    fields: list[ExportField] = []
    for item in text.split(","):
        name, _, title = item.partition("=")
        name, title = name.strip(), title.strip()
        if not name:
            raise UsageError(
                f"empty field name in --fields {text!r}", hint="e.g. --fields user_id,email,name"
            )
        fields.append(ExportField(name, title or None))
    return fields


def format_for(path: str, explicit: str | None) -> ExportFormat:
    """``--format`` wins; else csv for ``.csv`` / ``.csv.gz`` names, else json."""
    if explicit == "csv":
        return "csv"
    if explicit == "json":
        return "json"
    name = path.lower().removesuffix(".gz")
    return "csv" if name.endswith(".csv") else "json"


def run(args: argparse.Namespace) -> int:
    output: str = args.output
    fmt = format_for(output, args.format)
    fields = parse_fields(args.fields)
    if os.path.exists(output) and not os.path.isdir(output) and not args.force:
        raise UsageError(f"{output} already exists", hint="pass --force to replace it")
    client = client_from_args(args, on_event=_log_retries if args.verbose else None)
    display = ExportDisplay(sys.stderr, quiet=args.quiet)

    async def export() -> ExportResult:
        async with client:
            return await export_users(
                client,
                output,
                format=fmt,
                fields=fields,
                connection_id=args.connection_id,
                limit=args.limit,
                on_progress=display.update,
            )

    try:
        result = _runtime.run(export())
    finally:
        display.close()
    if not args.quiet:
        packed = "gzip" if result.compressed else "uncompressed"
        print(
            f"asyncroles: exported {result.users:,} users to {result.path} "
            f"({result.format}, {packed}, {_size(result.size_bytes)}); "
            f"next: asyncroles fetch -i {result.path}",
            file=sys.stderr,
        )
    return EXIT_OK


def render_progress(p: ExportProgress) -> str:
    """One line for an update.  Pure."""
    head = f"export {p.job_id}:"
    if p.note:
        return f"{head} {p.note}"
    again = f" (attempt {p.attempt})" if p.attempt > 1 else ""
    if p.stage == "download":
        size = f", {_size(p.downloaded_bytes)}" if p.downloaded_bytes else ""
        return f"{head} downloading{again}{size}"
    if p.stage == "check":
        return f"{head} checking the file{again}"
    line = f"{head} {p.status}"
    if p.percentage_done is not None:
        line += f" {p.percentage_done}%"
    if p.time_left_s:
        line += f", about {format_duration(p.time_left_s)} left"
    return line


class ExportDisplay:
    """A rewritten status line on a terminal, a plain line per update elsewhere."""

    def __init__(self, stream: TextIO, *, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self.last = ""
        self.last_stage = ""
        self.last_at = 0.0
        self.drawn = False

    def update(self, progress: ExportProgress) -> None:
        if self.quiet:
            return
        line = render_progress(progress)
        now = time.monotonic()
        changed_stage = progress.stage != self.last_stage
        every = TTY_EVERY_S if self.tty else LOG_EVERY_S
        # Download updates come per chunk: keep them to a few a second (a terminal)
        # or one every few seconds (a log).  Job updates come one per poll.
        throttled = (
            progress.stage == "download"
            and progress.downloaded_bytes > 0
            and not (changed_stage or progress.note)
        )
        if line == self.last or (throttled and now - self.last_at < every):
            return
        self.last, self.last_stage, self.last_at = line, progress.stage, now
        if self.tty:
            self.stream.write(f"\r\x1b[Kasyncroles: {line}")
            self.drawn = True
            if progress.note:  # keep the reason on screen
                self.stream.write("\n")
                self.drawn = False
        else:
            self.stream.write(f"asyncroles: {line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _log_retries(event: RetryEvent) -> None:
    print(
        f"asyncroles: {event.kind} {event.what} (attempt {event.attempt}): "
        f"{event.reason}; next in {event.delay_s:.2f}s",
        file=sys.stderr,
    )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"
