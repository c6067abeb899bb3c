"""Writing one record per user: JSON Lines, CSV or one JSON array.

Records are :meth:`UserRoles.to_json` objects.  ``jsonl`` writes one a line; ``csv``
one row per role (header :data:`CSV_HEADER`); ``json`` one array, built in a
temporary file beside the destination and renamed over it on close, so a reader
sees the old file or the whole new one, never half of one.

Streaming formats (``jsonl``, ``csv``) are appended as results arrive.  All of a
user's rows go out in one ``write`` system call and buffered records are flushed
once a second, so a crash leaves at most one cut record at the end of the file:
:mod:`asyncroles.resume` expects exactly that.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import orjson

from asyncroles.errors import AsyncrolesError, UsageError
from asyncroles.models import UserRoles

if TYPE_CHECKING:  # resume imports this module; open_writer only calls its methods
    from asyncroles.resume import ResumeState

__all__ = [
    "CSV_HEADER",
    "FORMATS",
    "OutputFormat",
    "ResultWriter",
    "WriteCounts",
    "format_for",
    "open_writer",
]

OutputFormat = Literal["jsonl", "csv", "json"]
FORMATS: tuple[OutputFormat, ...] = ("jsonl", "csv", "json")
CSV_HEADER = ("user_id", "status", "role_id", "role_name", "role_description")

_EXTENSIONS: dict[str, OutputFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".json": "json",
}
# RFC 4180's CRLF, which Excel writes and DuckDB, pandas and Python read.  It also
# matters for exactness: the csv module quotes a field holding "\r" or "\n" only
# when that character is in ``lineterminator``; with "\n" alone a description
# holding a lone "\r" would be written bare and read back as two rows.
_CSV_EOL = "\r\n"
_CSV_HEADER_LINE = (",".join(CSV_HEADER) + _CSV_EOL).encode()
_FLUSH_BYTES = 1 << 20  # flush early when this much is buffered
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise turn "\n" into "\r\n"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def format_for(path: str | None, explicit: str | None = None) -> OutputFormat:
    """The output format: ``explicit`` (``--format``) wins, else the extension, else jsonl."""
    root, ext = os.path.splitext(path or "")
    if ext.lower() == ".gz":
        # Writing plain text under a .gz name would mislead every reader of the file.
        raise UsageError(
            f"{path}: compressed output is not written",
            hint=f"write {root} and compress it afterwards, or pipe -o - through gzip",
        )
    if explicit is not None:
        for fmt in FORMATS:
            if explicit == fmt:
                return fmt
        raise UsageError(
            f"unknown output format {explicit!r}", hint="use --format jsonl, csv or json"
        )
    return _EXTENSIONS.get(ext.lower(), "jsonl")


@dataclass
class WriteCounts:
    """Records by status, and the roles in the ``ok`` ones."""

    ok: int = 0
    not_found: int = 0
    failed: int = 0
    roles: int = 0

    @property
    def users(self) -> int:
        return self.ok + self.not_found + self.failed

    def add(self, status: str, roles: int) -> None:
        if status == "ok":
            self.ok += 1
            self.roles += roles
        elif status == "not_found":
            self.not_found += 1
        else:
            self.failed += 1


def _encode_json(result: UserRoles) -> bytes:
    # orjson writes non-ASCII as UTF-8, not \u escapes, and keeps key order.
    return orjson.dumps(result.to_json())


def _csv_rows(result: UserRoles) -> list[tuple[str, str, str, str, str]]:
    """A user's CSV rows: one per role, or one with empty role cells.

    ``failed`` rows cannot carry the error: the header is fixed by the issue, and
    the error text is in the JSONL and JSON records only.  A role with no
    description and one with an empty description both give an empty cell.

    Values are written exactly, with no ``'`` guard against spreadsheet formulas
    (the guard Auth0's own export adds): ids and names must round-trip to the byte
    for joins, comparisons and ``--resume``, and a guard would change every id a
    program reads.  Role names are set by the tenant's administrators, but a user
    id can hold text a user chose (the e-mail in a SAML or passwordless id, which
    may start with "="), so import the file into a spreadsheet as text rather
    than opening it directly.
    """
    if not result.roles:
        return [(result.user_id, result.status, "", "", "")]
    return [
        (result.user_id, result.status, r.id, r.name, r.description or "") for r in result.roles
    ]


class _Sink:
    """Bytes to a file descriptor, or to standard output when ``fd`` is None.

    With ``tmp`` set, the descriptor is a temporary file that :meth:`commit`
    renames over ``path``.
    """

    def __init__(self, path: str | None, fd: int | None, tmp: str | None = None) -> None:
        self.path = path
        self.fd = fd
        self.tmp = tmp

    def write(self, data: bytes) -> None:
        try:
            if self.fd is None:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
                return
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as error:
            raise AsyncrolesError(
                f"{self.path or '<stdout>'}: cannot write: {error.strerror or error}"
            ) from error

    def commit(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if self.tmp is not None:
                os.fsync(fd)  # the data must be on disk before the name points at it
            os.close(fd)
            if self.tmp is not None and self.path is not None:
                os.replace(self.tmp, self.path)
        except OSError as error:
            self.discard()
            raise AsyncrolesError(
                f"{self.path}: cannot write: {error.strerror or error}"
            ) from error

    def discard(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)


class ResultWriter:
    """Writes :class:`UserRoles` records; use :func:`open_writer` to get one.

    ``counts`` counts what this writer wrote (not what a resumed file already
    held: that is :attr:`asyncroles.resume.ResumeState.counts`).  ``close`` also runs when the
    ``with`` block ends by an exception: what was written is kept, so an
    interrupted run can be resumed (a ``json`` file then holds a valid, shorter array).
    """

    def __init__(
        self,
        sink: _Sink,
        fmt: OutputFormat,
        *,
        records: int,
        flush_interval_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._sink = sink
        self.path = sink.path
        self.format: OutputFormat = fmt
        self.counts = WriteCounts()
        self._records = records  # records in the file so far: the JSON separator needs it
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flush_interval_s = flush_interval_s
        self._clock = clock
        self._last_flush_s = clock()
        self._closed = False
        self._csv_buffer = io.StringIO()
        self._csv_writer = csv.writer(self._csv_buffer, lineterminator=_CSV_EOL)

    def write(self, result: UserRoles, *, now: float | None = None) -> None:
        """Queue ``result``'s record(s); flush once a second or past 1 MiB."""
        if self._closed:
            raise ValueError("write to a closed ResultWriter")
        self._queue(self._encode(result))
        self._records += 1
        self.counts.add(result.status, len(result.roles or ()))
        now = self._clock() if now is None else now
        if (
            self._pending_bytes >= _FLUSH_BYTES
            or now - self._last_flush_s >= self._flush_interval_s
        ):
            self.flush(now=now)

    def _encode(self, result: UserRoles) -> bytes:
        if self.format == "jsonl":
            return _encode_json(result) + b"\n"
        if self.format == "json":
            return (b",\n" if self._records else b"\n") + _encode_json(result)
        buffer = self._csv_buffer
        buffer.seek(0)
        buffer.truncate()
        self._csv_writer.writerows(_csv_rows(result))
        return buffer.getvalue().encode()

    def _queue(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)

    def flush(self, *, now: float | None = None) -> None:
        """Write everything queued, in one system call."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            self._sink.write(data)
        self._last_flush_s = self._clock() if now is None else now

    def close(self) -> None:
        """Flush, end the JSON array and rename it into place.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.format == "json":
                self._queue(b"\n]\n")
            self.flush()
        except BaseException:
            self._sink.discard()
            raise
        self._sink.commit()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_writer(
    path: str | None,
    fmt: OutputFormat,
    *,
    resume: ResumeState | None = None,
    flush_interval_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> ResultWriter:
    """Open ``path`` (``-`` or None: standard output) for ``fmt`` records.

    A new file is created readable by its owner only (0o600); an existing one is
    replaced and keeps its mode.  With ``resume`` (from
    :func:`asyncroles.resume.load_resume` on the same path and format) the file's
    kept records stay and new ones are appended.
    """
    if path == "-":
        path = None
    if resume is not None:
        if path is None or resume.path != path or resume.format != fmt:
            raise UsageError(
                "the resume state is for another output",
                hint="call load_resume with the same path and format",
            )
        reopened = resume.reopen()
        if reopened is not None:
            sink, records = reopened
            return ResultWriter(
                sink, fmt, records=records, flush_interval_s=flush_interval_s, clock=clock
            )
    if path is None:
        sink = _Sink(None, None)
    elif fmt == "json":
        sink = _Sink(path, *_temp_beside(path))
    else:
        sink = _Sink(path, _open_fd(path, os.O_CREAT | os.O_TRUNC))
    writer = ResultWriter(sink, fmt, records=0, flush_interval_s=flush_interval_s, clock=clock)
    if fmt == "csv":
        writer._queue(_CSV_HEADER_LINE)
    elif fmt == "json":
        writer._queue(b"[")
    return writer


def _open_fd(path: str, flags: int) -> int:
    try:
        return os.open(path, os.O_WRONLY | _O_BINARY | _O_CLOEXEC | flags, 0o600)
    except OSError as error:
        raise UsageError(
            f"{path}: cannot write: {error.strerror or error}",
            hint="check that the directory exists and is writable",
        ) from None


def _temp_beside(path: str) -> tuple[int, str]:
    """A 0o600 temporary file in ``path``'s directory (so the rename is atomic).

    ``mkstemp`` opens it with O_BINARY on Windows, like :func:`_open_fd`.
    """
    directory, name = os.path.split(os.path.abspath(path))
    if os.path.isdir(path):  # else the rename would fail only at the end of the run
        raise UsageError(f"{path}: cannot write: Is a directory", hint="name a file")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise UsageError(
            f"{path}: cannot write: {error.strerror or error}",
            hint="check that the directory exists and is writable",
        ) from None
    with contextlib.suppress(OSError):  # an existing file keeps its mode
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    return fd, tmp
