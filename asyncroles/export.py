"""Exporting the tenant's users through the Management API's jobs: no Dashboard step.

    async with asyncroles.Client(domain, client_id=..., client_secret=...) as client:
        result = await asyncroles.export_users(client, "users.json.gz")
        result.path, result.users            # the file feeds ``fetch --input`` as it is

After auth0-api.md "Exporting users": ``POST /api/v2/jobs/users-exports`` (scope
``read:users``) makes a job; ``GET /api/v2/jobs/{id}`` reports ``status``,
``percentage_done`` and ``time_left_seconds`` and, once ``completed``, a
``location``: a pre-signed link to a gzip file, valid 60 s, re-signed on every GET.

* Creating and polling the job are Management API calls, so they go through the
  client's scheduler (paced, 429s honoured, bounded retries).  The download is
  not: the link is storage (S3), outside the rate limit, and gets no bearer token.
* The file is streamed to a temporary file next to the destination, checked whole
  (the gzip stream decompresses to its end; every NDJSON line parses / the CSV
  header names the id column; ``scan_input`` reads every id), then renamed into
  place, readable by the owner only.  A reader never sees half a file.
* A link that has expired (403 from the storage) or a download cut short sends us
  back to the job for a fresh ``location``, a bounded number of times.
* The destination's name picks what is written: a name ending in ``.gz`` gets the
  gzip file as Auth0 delivers it; any other name gets it decompressed.  Both feed
  ``fetch --input`` (it detects gzip by its magic bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asyncroles.client import Client, _GaveUp
from asyncroles.errors import ExportError, ScopeError, UsageError
from asyncroles.exportfile import DownloadRetry, check_reply, install, temp_file
from asyncroles.inputs import _pick_column
from asyncroles.protocol import Decoded, Kind, quote_segment
from asyncroles.transport import TransportFailure

__all__ = [
    "DEFAULT_EXPORT_FIELDS",
    "ExportField",
    "ExportFormat",
    "ExportPolicy",
    "ExportProgress",
    "ExportResult",
    "export_user_ids",
    "export_users",
    "poll_delay_s",
]

ExportFormat = Literal["json", "csv"]
ExportStage = Literal["job", "download", "check"]

#: ``user_id`` is what ``fetch --input`` reads; ``email`` and ``name`` make the file
#: useful on its own (a spreadsheet, a join with the roles output).  Auth0's own
#: default set is unspecified ("a predefined set"), so we always send fields.
DEFAULT_EXPORT_FIELDS: tuple[str, ...] = ("user_id", "email", "name")

EXPORTS_PATH = "/api/v2/jobs/users-exports"
_REQUIRED_SCOPE = "read:users"  # auth0-api.md: the users-export job needs read:users
_FAILED = frozenset({"failed", "cancelled", "canceled"})
_CONNECTIONS_HINT = (
    "list the tenant's connections in the Dashboard (Authentication) or with "
    "GET /api/v2/connections; an id looks like con_ and 16 letters or digits"
)


@dataclass(frozen=True, slots=True)
class ExportField:
    """One exported field: Auth0's ``name`` and an optional column title ``export_as``."""

    name: str
    export_as: str | None = None

    @property
    def title(self) -> str:
        """The CSV header cell or NDJSON key the field appears under."""
        return self.export_as or self.name

    def to_json(self) -> dict[str, str]:
        out = {"name": self.name}
        if self.export_as:
            out["export_as"] = self.export_as
        return out


@dataclass(frozen=True, slots=True)
class ExportPolicy:
    """How often to poll the job and how often to try the download.

    Polls wait for the job's own ``time_left_seconds`` estimate, kept between
    ``min_poll_s`` and ``max_poll_s`` so progress moves and a pessimistic estimate
    costs little; without an estimate they back off by ``poll_backoff`` from
    ``min_poll_s``.  At the default 15 s ceiling a long job spends one request per
    15 s: a few percent of even a Free tenant's 2/s.
    """

    min_poll_s: float = 1.0
    max_poll_s: float = 15.0
    poll_backoff: float = 1.5
    #: Download attempts, each with a fresh ``location`` from the job.
    max_downloads: int = 5
    #: First wait after a download cut short or a storage 5xx; doubles, at most 8 s.
    #: An expired link (403) is asked for again at once.
    download_backoff_s: float = 0.5
    #: Give up waiting for a job still running after this long (None: wait on; the
    #: job of a tenant with millions of users can take hours).
    max_wait_s: float | None = None

    @classmethod
    def testing(cls, **overrides: Any) -> ExportPolicy:
        """Polls and retries without real waits: for tests of code that embeds asyncroles."""
        values: dict[str, Any] = {"min_poll_s": 0.01, "max_poll_s": 0.02, "download_backoff_s": 0.0}
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """One update for a progress display.

    ``stage``: ``job`` (waiting for Auth0; ``status``, ``percentage_done`` and
    ``time_left_s`` as the job last said), ``download`` (``downloaded_bytes`` of
    attempt ``attempt``) or ``check``.  ``note`` explains a retry when there is one.
    """

    stage: ExportStage
    job_id: str
    status: str
    percentage_done: int | None = None
    time_left_s: float | None = None
    downloaded_bytes: int = 0
    attempt: int = 1
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A finished export: the file, checked whole, and what is in it."""

    path: Path  # where the file is now
    job_id: str
    format: ExportFormat
    fields: tuple[ExportField, ...]
    users: int  # distinct user ids in the file
    compressed: bool  # gzip as delivered (a ``.gz`` destination) or decompressed
    size_bytes: int
    downloads: int  # download attempts it took


ProgressCallback = Callable[[ExportProgress], None]


def poll_delay_s(
    time_left_s: float | None, previous_s: float | None, policy: ExportPolicy
) -> float:
    """How long to wait before asking the job again.  Pure.

    Auth0's ``time_left_seconds`` is the best guess of when the job ends, so come
    back then, clamped to the policy's bounds.  Without one (or 0 while the job is
    still running), back off gently from ``min_poll_s``: never a tight loop.
    """
    if time_left_s is not None and time_left_s > 0:
        return min(policy.max_poll_s, max(policy.min_poll_s, time_left_s))
    if previous_s is None:
        return policy.min_poll_s
    return min(policy.max_poll_s, max(policy.min_poll_s, previous_s * policy.poll_backoff))


def export_fields(fields: Iterable[str | ExportField] | None) -> tuple[ExportField, ...]:
    """The fields to ask for: ``user_id`` always first, its title one ``fetch`` finds."""
    chosen = [
        field if isinstance(field, ExportField) else ExportField(field.strip())
        for field in (DEFAULT_EXPORT_FIELDS if fields is None else fields)
    ]
    if any(not field.name for field in chosen):
        raise UsageError("an export field has an empty name", hint="e.g. --fields user_id,email")
    user_id = next((field for field in chosen if field.name == "user_id"), None)
    if user_id is None:
        # fetch --input needs the ids: add them rather than export a file it cannot use.
        user_id = ExportField("user_id")
        chosen.insert(0, user_id)
    titles = [field.title for field in chosen]
    if len(set(titles)) != len(titles):
        twice = sorted({title for title in titles if titles.count(title) > 1})
        raise UsageError(f"export field {twice[0]!r} is given twice", hint="name each field once")
    if _pick_column(titles, None) != titles.index(user_id.title):
        raise UsageError(
            f"user_id exported as {user_id.title!r} would not be found by fetch --input",
            hint='export it as "user_id" (the default), "Id" or "User ID"',
        )
    return tuple(chosen)


async def export_users(
    client: Client,
    destination: str | os.PathLike[str],
    *,
    format: ExportFormat = "json",
    fields: Iterable[str | ExportField] | None = None,
    connection_id: str | None = None,
    limit: int | None = None,
    on_progress: ProgressCallback | None = None,
    policy: ExportPolicy | None = None,
) -> ExportResult:
    """Export the tenant's users (or one connection's) to ``destination``.

    ``fields`` default to ``DEFAULT_EXPORT_FIELDS``; ``user_id`` is added when
    missing.  ``destination`` ending in ``.gz`` keeps Auth0's gzip file, any other
    name is written decompressed.  An existing file is replaced whole, atomically.

    Raises ``ScopeError`` (no ``read:users``), ``UsageError`` (an unknown connection,
    fields Auth0 refuses, a destination directory that does not exist) and
    ``ExportError`` (the job failed, or the file could not be downloaded whole).
    """
    if format not in ("json", "csv"):
        raise UsageError(f"export format must be json or csv, not {format!r}")
    if limit is not None and limit < 1:
        raise UsageError(f"export limit must be at least 1, not {limit}")
    chosen = export_fields(fields)
    target = _destination(destination)
    policy = policy or ExportPolicy()
    body: dict[str, Any] = {"format": format, "fields": [field.to_json() for field in chosen]}
    if connection_id:
        body["connection_id"] = connection_id
    if limit is not None:
        body["limit"] = limit
    job_id = await _create_job(client, body, connection_id)
    export = _Export(client, job_id, format, chosen, target, policy, on_progress)
    return await export.run()


async def export_user_ids(
    client: Client,
    workdir: str | os.PathLike[str],
    *,
    connection_id: str | None = None,
    on_progress: ProgressCallback | None = None,
    policy: ExportPolicy | None = None,
) -> Path:
    """Export only ``user_id`` (NDJSON, gzip) into ``workdir``; return the file's path.

    The file (``users-export.json.gz``, replaced if there) is what ``scan_input``
    reads: the id source of ``fetch --all-users``.
    """
    result = await export_users(
        client,
        Path(workdir) / "users-export.json.gz",
        format="json",
        fields=["user_id"],
        connection_id=connection_id,
        on_progress=on_progress,
        policy=policy,
    )
    return result.path


# --- the job --------------------------------------------------------------------


def _destination(destination: str | os.PathLike[str]) -> Path:
    target = Path(destination)
    if str(destination) in ("", "-"):
        raise UsageError("the export needs a file name", hint="e.g. -o users.json.gz")
    if target.is_dir():
        raise UsageError(f"{target} is a directory", hint="name a file, e.g. users.json.gz")
    if not target.parent.is_dir():
        raise UsageError(
            f"cannot write {target}: no directory {target.parent}", hint="create it first"
        )
    return target


async def _call(client: Client, method: str, path: str, json: Any = None) -> Decoded:
    """One paced Management API call; fatal answers say what the export needs."""
    try:
        return await client._request(method, path, json=json)
    except _GaveUp as gave_up:
        raise ExportError(
            f"{method} {path.split('?')[0]}: {gave_up.reason}",
            hint="check the network and the tenant's status, then run again",
        ) from None
    except ScopeError as error:
        if error.scope:
            raise
        # Auth0 did not name the scope: this endpoint's is known (auth0-api.md).
        raise ScopeError(
            error.message,
            scope=_REQUIRED_SCOPE,
            status=error.status,
            path=error.path,
            headers=error.headers,
            error_code=error.error_code,
            hint=(
                f"grant the {_REQUIRED_SCOPE} scope to the application (Dashboard > "
                "Applications > APIs > Auth0 Management API > Machine to Machine "
                "Applications), then run again"
            ),
        ) from None


def _auth0_message(decoded: Decoded) -> str:
    data = decoded.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return decoded.message


async def _create_job(client: Client, body: dict[str, Any], connection_id: str | None) -> str:
    decoded = await _call(client, "POST", EXPORTS_PATH, body)
    if decoded.kind is Kind.REJECTED and decoded.status == 400:
        message = _auth0_message(decoded)
        if connection_id and "connection" in message.lower():
            raise UsageError(
                f"Auth0 has no connection {connection_id!r}: {message}", hint=_CONNECTIONS_HINT
            )
        raise UsageError(
            f"Auth0 refused the users-export request: {message}",
            hint="check the format and the field names",
        )
    data = decoded.data
    if decoded.kind is not Kind.OK or not isinstance(data, dict):
        raise ExportError(f"POST {EXPORTS_PATH}: {decoded.message}")
    job_id = data.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise ExportError(f"POST {EXPORTS_PATH}: the answer names no job id")
    return job_id


@dataclass(frozen=True, slots=True)
class _JobState:
    status: str
    percentage_done: int | None
    time_left_s: float | None
    location: str | None
    data: Mapping[str, Any]


def _job_state(data: Mapping[str, Any]) -> _JobState:
    status = data.get("status")
    percentage = _number(data.get("percentage_done"))
    location = data.get("location")
    return _JobState(
        status=status if isinstance(status, str) else "unknown",
        percentage_done=None if percentage is None else int(percentage),
        time_left_s=_number(data.get("time_left_seconds")),
        location=location if isinstance(location, str) and location else None,
        data=data,
    )


def _number(value: Any) -> float | None:
    """A JSON number that is 0 or more, else None (bools are not numbers here)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _failure_summary(state: _JobState) -> str:
    """What Auth0 said about a failed job: its status and whatever detail it gave."""
    parts = [f"status {state.status}"]
    for key in ("summary", "message", "error", "errors"):
        value = state.data.get(key)
        if value not in (None, "", [], {}):
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


class _Export:
    """One export run: wait for the job, then download and check its file."""

    def __init__(
        self,
        client: Client,
        job_id: str,
        format: ExportFormat,
        fields: tuple[ExportField, ...],
        target: Path,
        policy: ExportPolicy,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.path = f"/api/v2/jobs/{quote_segment(job_id)}"
        self.format = format
        self.fields = fields
        self.target = target
        self.policy = policy
        self.on_progress = on_progress
        self.status = "pending"

    def report(self, stage: ExportStage, **details: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(ExportProgress(stage, self.job_id, self.status, **details))

    async def run(self) -> ExportResult:
        self.report("job", percentage_done=0)
        location = await self.wait()
        last_problem = ""
        for attempt in range(1, self.policy.max_downloads + 1):
            if attempt > 1:
                # A fresh link: the old one may have expired, and the job signs
                # a new one on every GET (auth0-api.md: valid 60 s).
                location = await self.wait()
            try:
                return await self.fetch(location, attempt)
            except DownloadRetry as retry:
                last_problem = retry.reason
                if attempt < self.policy.max_downloads:
                    attempts = f"{attempt + 1} of {self.policy.max_downloads}"
                    note = f"{retry.reason}; trying again (attempt {attempts})"
                    self.report("download", attempt=attempt, note=note)
                    if retry.backoff:
                        delay = self.policy.download_backoff_s * 2 ** (attempt - 1)
                        await asyncio.sleep(min(8.0, delay))
        raise ExportError(
            f"could not download export {self.job_id} whole after "
            f"{self.policy.max_downloads} attempts: {last_problem}",
            hint="run the export again; if it keeps failing, check the network or proxy",
        )

    async def wait(self) -> str:
        """Poll the job until it is completed; its download ``location``."""
        started = time.monotonic()
        delay: float | None = None
        while True:
            state = await self.poll()
            was, self.status = self.status, state.status
            if state.status == "completed" and state.location is not None:
                if was != "completed":  # not again for each fresh link
                    self.report("job", percentage_done=100, time_left_s=0.0)
                return self.absolute(state.location)
            if state.status in _FAILED:
                raise ExportError(
                    f"Auth0's users-export job {self.job_id} failed ({_failure_summary(state)})",
                    hint="run the export again; if it fails again, see the tenant's logs "
                    "(Dashboard > Monitoring > Logs)",
                )
            self.report("job", percentage_done=state.percentage_done, time_left_s=state.time_left_s)
            # pending, processing or a status we do not know: the job is not done.
            delay = poll_delay_s(state.time_left_s, delay, self.policy)
            waited = time.monotonic() - started
            if self.policy.max_wait_s is not None and waited + delay > self.policy.max_wait_s:
                raise ExportError(
                    f"Auth0's users-export job {self.job_id} is still {state.status} "
                    f"after {waited:.0f}s",
                    hint="run again later, or export fewer users (--connection-id)",
                )
            await asyncio.sleep(delay)

    async def poll(self) -> _JobState:
        decoded = await _call(self.client, "GET", self.path)
        if decoded.kind is Kind.NOT_FOUND:
            raise ExportError(
                f"Auth0 no longer knows the users-export job {self.job_id}",
                hint="run the export again",
            )
        if decoded.kind is not Kind.OK or not isinstance(decoded.data, dict):
            raise ExportError(f"GET {self.path}: {decoded.message}")
        return _job_state(decoded.data)

    def absolute(self, location: str) -> str:
        if location.startswith("/"):  # never seen from Auth0; a link on the tenant's host
            return self.client.tenant.base_url + location
        return location

    async def fetch(self, location: str, attempt: int) -> ExportResult:
        """Download, check and move into place; ``DownloadRetry`` when another try may do."""
        self.report("download", attempt=attempt)

        def progress(written: int) -> None:
            self.report("download", attempt=attempt, downloaded_bytes=written)

        sink, raw = temp_file(self.target)
        try:
            with sink:
                try:
                    # Storage, not the Management API: no bearer token, not paced.
                    reply = await self.client._transport.download(location, sink, on_bytes=progress)
                except TransportFailure as failure:
                    raise DownloadRetry(str(failure), backoff=True) from None
                size = sink.tell()
            check_reply(*reply, size)
            self.report("check", attempt=attempt)
            users, size = await asyncio.to_thread(
                install, raw, self.target, format=self.format, job_id=self.job_id
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(raw)  # gone already once installed
        return ExportResult(
            path=self.target,
            job_id=self.job_id,
            format=self.format,
            fields=self.fields,
            users=users,
            compressed=self.target.name.endswith(".gz"),
            size_bytes=size,
            downloads=attempt,
        )
