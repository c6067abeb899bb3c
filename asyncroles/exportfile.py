"""The users-export file once downloaded: is it whole, and into place with it.  No network.

auth0-api.md "Exporting users": the job's ``location`` is a pre-signed storage (S3)
link to a **gzip** file, valid 60 s.  Storage answers a stale link with an
S3-style XML 403 (``<Code>AccessDenied</Code><Message>Request has expired``).
:func:`check_reply` decides what a download's answer means; :func:`install` turns
a complete download into the destination file, after checking it the way
``fetch --input`` will read it.  Both raise :class:`DownloadRetry` when another
attempt with a fresh link may succeed, and ``ExportError`` when it will not.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from asyncroles.errors import ExportError, InputError
from asyncroles.inputs import scan_input

__all__ = ["DownloadRetry", "check_reply", "install", "temp_file"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK_BYTES = 256 * 1024
_S3_CODE = re.compile(rb"<Code>([^<]{1,80})</Code>")
_S3_MESSAGE = re.compile(rb"<Message>([^<]{1,200})</Message>")


class DownloadRetry(Exception):
    """A download that another attempt, with a fresh link, may get whole.

    ``backoff``: wait before trying again (a cut or a storage 5xx); an expired
    link is asked for again at once.
    """

    def __init__(self, reason: str, *, backoff: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.backoff = backoff


def temp_file(target: Path) -> tuple[IO[bytes], str]:
    """A new file next to ``target`` (same file system, so the rename is atomic), 0o600."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    return os.fdopen(fd, "wb"), name


def check_reply(status: int, headers: Mapping[str, str], body: bytes, size: int) -> None:
    """Accept a whole 200; else raise what the storage's answer calls for."""
    if status == 200:
        # aiohttp already refuses a body shorter than its Content-Length; this is
        # the same check for any transport.  A Content-Encoding changes the length.
        length = headers.get("Content-Length", "")
        if length.isdigit() and "Content-Encoding" not in headers and int(length) != size:
            raise DownloadRetry(f"download cut short ({size} of {length} bytes)", backoff=True)
        return
    what = storage_error(status, body)
    if status in (403, 404, 410):
        # A link past its 60 s (or otherwise refused): the job signs a fresh one.
        raise DownloadRetry(f"the download link was refused ({what})", backoff=False)
    if status >= 500 or status in (408, 429):
        raise DownloadRetry(f"the storage answered {what}", backoff=True)
    raise ExportError(f"could not download the export file: {what}", hint="run the export again")


def storage_error(status: int, body: bytes) -> str:
    """``HTTP 403 AccessDenied: Request has expired`` from an S3-style XML error body."""
    code = _S3_CODE.search(body)
    message = _S3_MESSAGE.search(body)
    text = f"HTTP {status}"
    if code:
        text += " " + code.group(1).decode("utf-8", "replace")
    if message:
        text += ": " + message.group(1).decode("utf-8", "replace")
    return text


def install(raw: str, target: Path, *, format: str, job_id: str) -> tuple[int, int]:
    """Check the download ``raw`` and move it to ``target``: ``(users, size_bytes)``.

    ``target`` ending in ``.gz`` keeps the gzip file, any other name gets it
    decompressed.  Decompressing to the end is the wholeness check: a gzip stream
    cut short raises.  (A proxy may have undone the compression in transit: then
    the bytes are compressed here for a ``.gz`` target.)  Blocking: run it in a thread.
    """
    with open(raw, "rb") as source:
        gzipped = source.read(2) == _GZIP_MAGIC
    compress = target.name.endswith(".gz")
    made: str | None = None
    try:
        if gzipped == compress:
            if gzipped:
                _gunzip(raw, None)
            ready = raw
        else:
            sink, made = temp_file(target)
            with sink:
                if gzipped:
                    _gunzip(raw, sink)
                else:
                    with open(raw, "rb") as source, gzip.GzipFile(fileobj=sink, mode="wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK_BYTES)
            ready = made
        users = _count_users(ready, format, job_id)
        os.chmod(ready, 0o600)  # mkstemp's mode already; said again because it matters
        os.replace(ready, target)
        made = None
        return users, os.path.getsize(target)
    finally:
        if made is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(made)


def _gunzip(path: str, sink: IO[bytes] | None) -> None:
    """Decompress ``path`` to its end (into ``sink`` when given)."""
    try:
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
            while chunk := unpacked.read(_CHUNK_BYTES):
                if sink is not None:
                    sink.write(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        # EOFError: "Compressed file ended before the end-of-stream marker was reached".
        raise DownloadRetry(
            f"the gzip file is damaged or cut short ({error})", backoff=True
        ) from None


def _count_users(path: str, format: str, job_id: str) -> int:
    """Read the ids as ``fetch --input`` will: the file must feed it as it is."""
    try:
        with scan_input(path) as scan:
            form, users = scan.form, scan.total
    except InputError as error:
        raise ExportError(
            f"the file of export job {job_id} is whole but not readable: {error.message}",
            hint="run the export again",
        ) from None
    expected = "csv" if format == "csv" else "ndjson"
    # NDJSON of no users is an empty file, read as an empty list of ids; a CSV
    # always has its header row.
    if form != expected and not (format == "json" and users == 0):
        raise ExportError(
            f"the file of export job {job_id} reads as {form}, not the {format} asked for",
            hint="run the export again",
        )
    return users
