"""Resuming a cut run: what an existing output holds, and reopening it to append.

A run stopped by Ctrl-C, SIGTERM or a crash leaves an output that
:func:`load_resume` reads back.  What a crash can leave at the end is known (see
:mod:`asyncroles.outputs`), and only the end is forgiven:

* JSONL: a last line with no newline, or that is not valid JSON, is dropped;
* CSV: a cut can fall between two rows of one user and leave rows that parse, so
  the last user's rows are always dropped and that user fetched again;
* JSON: the file is whole or absent, since it is written by rename.

Users already ``ok`` or ``not_found`` are done.  ``failed`` records are removed so
their users are fetched again, and the finished file holds each user once: the
writer truncates the file when only a cut tail must go, and otherwise copies the
kept records to a temporary file that it renames over the old one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from asyncroles._jsonarray import JsonArrayError, iter_array, iter_text
from asyncroles.errors import AsyncrolesError, InputError, UsageError
from asyncroles.idset import IdSet
from asyncroles.outputs import (
    _CSV_HEADER_LINE,
    CSV_HEADER,
    OutputFormat,
    WriteCounts,
    _open_fd,
    _Sink,
    _temp_beside,
)

__all__ = ["ResumeState", "load_resume"]

_STATUSES = frozenset({"ok", "not_found", "failed"})
_RESUME_HINT = "choose another -o, or drop --resume to start over"
_COPY_BYTES = 1 << 20


@dataclass(eq=False)
class ResumeState:
    """What an existing output holds, read by :func:`load_resume`.

    ``done`` holds the users whose records stay (``ok`` or ``not_found``): pass it
    as ``exclude`` to :func:`asyncroles.inputs.scan_input`.  ``counts`` counts the
    kept records.  ``retry`` failed records and ``duplicates`` (records of a user
    already kept) are removed when the writer opens; ``dropped_tail`` tells that
    the end of the file (a cut line; for CSV, always the last user's rows) is
    dropped and its user fetched again.
    """

    path: str
    format: OutputFormat
    exists: bool = False
    done: IdSet = field(default_factory=IdSet)
    counts: WriteCounts = field(default_factory=WriteCounts)
    retry: int = 0
    duplicates: int = 0
    dropped_tail: bool = False
    # Bytes of the file to keep (streaming formats); the rest is the dropped tail.
    _keep_bytes: int = field(default=0, init=False, repr=False)
    # Streaming formats: (start, end) byte spans to remove, flattened; json: element
    # indexes to remove.  Ascending either way.
    _drop: array[int] = field(default_factory=lambda: array("Q"), init=False, repr=False)
    _fingerprint: tuple[int, int, int] | None = field(default=None, init=False, repr=False)

    def reopen(self) -> tuple[_Sink, int] | None:
        """Open the file for appending, after removing what must go.

        For :func:`asyncroles.outputs.open_writer`.  Returns the sink and how many
        records the file holds, or None when there was no file to resume (a
        fresh start).
        """
        _check_unchanged(self)
        return _reopen(self) if self.exists else None

    def _account(self, user_id: str, status: str, roles: int, *span: int) -> None:
        if status == "failed":
            self.retry += 1
        elif not self.done.add(user_id):
            self.duplicates += 1
        else:
            self.counts.add(status, roles)
            return
        self._drop.extend(span)


def load_resume(path: str | None, fmt: OutputFormat) -> ResumeState:
    """Read an existing output for ``--resume``; a missing file is a fresh start.

    Raises :class:`UsageError` if the file holds another format than ``fmt`` and
    :class:`InputError` (``path:line``) if it is damaged anywhere but at its end.
    """
    if path is None or path == "-":
        raise UsageError("--resume needs an output file", hint="pass -o PATH")
    state = ResumeState(path, fmt)
    state._fingerprint = _stat(path)
    if state._fingerprint is None:
        return state
    try:
        f = open(path, "rb")  # noqa: SIM115  # closed below; errors are mapped first
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        found = _sniff(f.read(64), path)
        f.seek(0)
        if found is None:  # empty: a run that stopped before its first flush
            return state
        if found != fmt:
            raise UsageError(
                f"{path} holds {found} records, not {fmt}",
                hint=f"resume with --format {found}, or choose another -o",
            )
        state.exists = True
        if fmt == "jsonl":
            _load_jsonl(f, size, state)
        elif fmt == "csv":
            _load_csv(f, size, state)
        else:
            _load_json(f, state)
    return state


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path}: not a regular file", hint=_RESUME_HINT)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _check_unchanged(state: ResumeState) -> None:
    if _stat(state.path) != state._fingerprint:
        raise UsageError(
            f"{state.path} changed after --resume read it",
            hint="make sure no other run writes to it, then resume again",
        )


def _sniff(head: bytes, path: str) -> OutputFormat | None:
    start = head.lstrip()
    if not start:
        return None
    if start.startswith(b"["):
        return "json"
    if start.startswith(b"{"):
        return "jsonl"
    if head.startswith(_CSV_HEADER_LINE[: len(head)]):
        return "csv"
    raise InputError(
        "not an asyncroles output file (JSON Lines, CSV or JSON)",
        path=path,
        line=1,
        hint=_RESUME_HINT,
    )


def _bad_record(state: ResumeState, lineno: int, what: str) -> InputError:
    return InputError(
        f"damaged {state.format} record: {what}",
        path=state.path,
        line=lineno,
        hint="only the end of an output can be cut by a crash; " + _RESUME_HINT,
    )


def _record_fields(value: Any) -> tuple[str, str, int] | None:
    """``(user_id, status, roles)`` of a JSON record, or None if it is not one."""
    if not isinstance(value, dict):
        return None
    user_id, status, roles = value.get("user_id"), value.get("status"), value.get("roles")
    if not isinstance(user_id, str) or status not in _STATUSES:
        return None
    if status == "ok" and not isinstance(roles, list):
        return None
    return user_id, str(status), len(roles) if isinstance(roles, list) else 0


def _load_jsonl(f: io.BufferedReader, size: int, state: ResumeState) -> None:
    offset = 0
    for lineno, raw in enumerate(f, 1):
        start, offset = offset, offset + len(raw)
        if not raw.strip():
            continue
        fields: tuple[str, str, int] | None = None
        if raw.endswith(b"\n"):
            with contextlib.suppress(orjson.JSONDecodeError):
                fields = _record_fields(orjson.loads(raw))
        if fields is None:
            if offset < size:
                raise _bad_record(state, lineno, "not a JSON record with user_id and status")
            state._keep_bytes, state.dropped_tail = start, True  # cut by a crash
            return
        state._account(*fields, start, offset)
    state._keep_bytes = offset


class _Group:
    """The contiguous CSV rows of one user."""

    __slots__ = ("error", "roles", "rows", "start", "status", "user_id")

    def __init__(self, row: list[str], start: int) -> None:
        self.user_id = row[0] if row else ""
        self.status = row[1] if len(row) > 1 else ""
        self.start = start  # byte offset of its first row
        self.rows = 0
        self.roles = 0
        self.error: tuple[int, str] | None = None

    def add(self, row: list[str], lineno: int) -> None:
        self.rows += 1
        if self.error is not None:
            return
        has_role = len(row) == len(CSV_HEADER) and bool(row[2])
        if len(row) != len(CSV_HEADER):
            what = f"row has {len(row)} cells, not {len(CSV_HEADER)}"
        elif not row[0]:
            what = "empty user_id"
        elif row[1] not in _STATUSES:
            what = f"unknown status {row[1]!r}"
        elif row[1] != self.status:
            what = f"rows of user {self.user_id!r} disagree on status"
        elif has_role and self.status != "ok":
            what = f"a {self.status} row with a role"
        elif not has_role and any(row[2:]):
            what = "role cells without a role_id"
        elif self.rows > 1 and (not has_role or self.roles == 0):
            what = f"user {self.user_id!r} has a row without a role beside other rows"
        else:
            self.roles += has_role
            return
        self.error = (lineno, what)


def _load_csv(f: io.BufferedReader, size: int, state: ResumeState) -> None:
    header = f.read(len(_CSV_HEADER_LINE))
    if header != _CSV_HEADER_LINE:
        if len(header) < len(_CSV_HEADER_LINE) and size == len(header):
            state._keep_bytes = 0  # the header itself was cut: start over
            state.dropped_tail = True
            return
        raise _bad_record(state, 1, f"the header is not {','.join(CSV_HEADER)}")
    pos = len(header)
    starts: list[int] = []  # where each line read for the current row starts

    def lines() -> Iterator[str]:
        nonlocal pos
        for lineno, raw in enumerate(f, 2):
            starts.append(pos)
            pos += len(raw)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                if pos < size:
                    raise _bad_record(state, lineno, "not UTF-8 text") from None
                yield raw.decode("utf-8", "replace")  # cut mid-character: dropped below

    # A crash cuts the file inside a row unless it ends with our row terminator.
    f.seek(max(size - 2, 0))
    cut = f.read(2) != b"\r\n"
    f.seek(pos)
    reader = csv.reader(lines(), strict=True)
    # ``group`` is the last user's rows, never kept.  ``previous`` is kept only
    # once the file is known to end cleanly: a cut row can carry a user id cut
    # short, which looks like a new user and hides that ``previous`` lost rows.
    previous: _Group | None = None
    group: _Group | None = None
    lineno = 2
    try:
        for row in reader:
            row_start, row_line, lineno = starts[0], lineno, reader.line_num + 2
            starts.clear()
            if group is None or not row or row[0] != group.user_id:
                if previous is not None and group is not None:
                    _close_group(state, previous, group.start)
                previous, group = group, _Group(row, row_start)
            group.add(row, row_line)
    except csv.Error as error:
        if pos < size:
            raise _bad_record(state, lineno, str(error)) from None
        cut = True  # inside a quoted cell
        if group is None:
            state._keep_bytes, state.dropped_tail = starts[0], True
            return
    if group is None:
        state._keep_bytes = pos
        return
    state.dropped_tail = True
    if cut and previous is not None:
        state._keep_bytes = previous.start
        return
    if previous is not None:
        _close_group(state, previous, group.start)
    # Even a clean end may fall between two rows of the last user: drop that user.
    state._keep_bytes = group.start


def _close_group(state: ResumeState, group: _Group, end: int) -> None:
    if group.error is not None:
        raise _bad_record(state, *group.error)
    state._account(group.user_id, group.status, group.roles, group.start, end)


def _load_json(f: io.BufferedReader, state: ResumeState) -> None:
    try:
        for index, (lineno, value) in enumerate(iter_array(iter_text(f))):
            fields = _record_fields(value)
            if fields is None:
                raise _bad_record(state, lineno, "not a record with user_id and status")
            state._account(*fields, index)
    except JsonArrayError as error:
        raise _bad_record(state, error.line, error.reason) from None


def _reopen(state: ResumeState) -> tuple[_Sink, int]:
    path = state.path
    if state.format == "json":
        fd, tmp = _temp_beside(path)
        sink = _Sink(path, fd, tmp)
        try:
            records = _copy_json(state, sink)
        except BaseException:
            sink.discard()
            raise
        return sink, records
    records = state.counts.users
    if not state._drop:
        # Only a cut tail to remove, if any: truncating in place is cheap and safe,
        # since the bytes dropped are ones we would never keep.
        fd = _open_fd(path, 0)
        os.ftruncate(fd, state._keep_bytes)
        os.lseek(fd, state._keep_bytes, os.SEEK_SET)
        sink = _Sink(path, fd)
    else:
        # Records in the middle must go: copy the rest to a temporary file and rename
        # it over the original, which stays whole until that moment.
        fd, tmp = _temp_beside(path)
        try:
            _copy_spans(state, fd)
            os.fsync(fd)
            os.replace(tmp, path)
        except BaseException:
            _Sink(path, fd, tmp).discard()
            raise
        sink = _Sink(path, fd)
    if state.format == "csv" and state._keep_bytes == 0:
        sink.write(_CSV_HEADER_LINE)
    return sink, records


def _copy_spans(state: ResumeState, fd: int) -> None:
    drop = state._drop
    with open(state.path, "rb") as src:
        cursor = 0
        for i in range(0, len(drop), 2):
            _copy_range(src, fd, cursor, drop[i])
            cursor = drop[i + 1]
        _copy_range(src, fd, cursor, state._keep_bytes)


def _copy_range(src: io.BufferedReader, fd: int, start: int, end: int) -> None:
    src.seek(start)
    left = end - start
    while left > 0:
        chunk = src.read(min(left, _COPY_BYTES))
        if not chunk:
            raise AsyncrolesError(f"{src.name}: changed while being copied")
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]
        left -= len(chunk)


def _copy_json(state: ResumeState, sink: _Sink) -> int:
    """Write ``[`` and the kept records of the old array; returns how many."""
    drop = state._drop
    skip = 0
    kept = 0
    parts = [b"["]
    with open(state.path, "rb") as src:
        for index, (_, value) in enumerate(iter_array(iter_text(src))):
            if skip < len(drop) and drop[skip] == index:
                skip += 1
                continue
            parts.append((b",\n" if kept else b"\n") + orjson.dumps(value))
            kept += 1
            if len(parts) >= 1024:
                sink.write(b"".join(parts))
                parts.clear()
    sink.write(b"".join(parts))
    return kept
