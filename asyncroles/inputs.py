"""Reading the user files people have, in whatever form, as a stream of distinct ids.

Forms, told apart by content and never by file name:

* ``ndjson``: the users-export job's ``json`` format, one object a line (a line may
  also be a bare JSON string, which is what ``jq`` prints without ``-r``);
* ``csv``: the export job's ``csv`` format (header from ``export_as``, every string
  cell quoted and prefixed with ``'``) and the legacy Import/Export extension's CSV
  (user-id column ``Id``);
* ``json-array``: one JSON array of strings and/or objects;
* ``text``: one id a line, no header;

each of them plain or gzip-compressed (the export job's download is always gzip),
from a file or from standard input (``-``).  See "Exporting users" in
``/work/shared/auth0-api.md`` and Auth0's "Bulk User Exports" docs.

Detection: gzip by its magic bytes, then a UTF-8 BOM is dropped and the first
non-blank line decides.  ``[`` starts a JSON array and ``{`` NDJSON.  A JSON string
is NDJSON of strings, unless it names the id column (a quoted one-column header).
Two or more CSV cells, or one cell naming the id column (``user_id``, ``Id``,
``--id-column``), make a CSV with that header row.  Anything else is plain text,
so a list of ids whose first id holds a comma reads as a CSV without an id column
and is refused at line 1.

A run must not spend credentials on a file it cannot read to the end, so reading
is two passes: :func:`scan_input` reads and validates everything and counts, then
:meth:`InputScan.iter_ids` streams the distinct ids lazily.  Neither pass holds the
ids: dedupe uses an :class:`~asyncroles.idset.IdSet` of 64-bit hashes.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import os
import shutil
import stat
import sys
import tempfile
import weakref
import zlib
from collections.abc import Container, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, Literal

import orjson

from asyncroles._jsonarray import JsonArrayError, iter_array, iter_text
from asyncroles.errors import InputError
from asyncroles.idset import IdSet, hash_id

__all__ = ["DEFAULT_ID_COLUMNS", "InputForm", "InputScan", "scan_input"]

InputForm = Literal["ndjson", "csv", "json-array", "text"]

#: Looked for, in this order, when ``--id-column`` is not given: the export job's
#: field name, then the legacy Import/Export extension's column title.
DEFAULT_ID_COLUMNS = ("user_id", "Id")

_BOM = codecs.BOM_UTF8
_GZIP_MAGIC = b"\x1f\x8b"
_HEAD_BYTES = 64 * 1024
_CHUNK_BYTES = 256 * 1024
_COLUMN_HINT = "pass --id-column NAME to name the column that holds the user ids"

# Files people pass by mistake, by their leading bytes: say what they are.
_FOREIGN_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)", "save it as CSV (UTF-8)"),
    (b"BZh", "bzip2-compressed", "decompress it first (only gzip is read as is)"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (only gzip is read as is)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first (only gzip is read as is)"),
    (b"\xff\xfe", "UTF-16 text", "save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "save it as UTF-8"),
)


class InputScan:
    """What :func:`scan_input` found: the form, the counts, and a way to read the ids.

    Counts are of the whole file: ``total`` distinct ids, ``duplicates`` further
    occurrences of an id already seen, ``blank`` skipped blank lines or rows, and
    ``excluded`` distinct ids that :meth:`iter_ids` will skip (``pending`` is the rest).
    Close it (or use it as a context manager) to remove the copy of standard input.
    """

    def __init__(
        self,
        source: _Source,
        form: InputForm,
        wanted: str | None,
        exclude: Container[str] | None,
    ) -> None:
        self._source = source
        self._wanted = wanted
        self._exclude = exclude
        self.path = source.display
        self.form: InputForm = form
        self.compressed = source.compressed
        #: The header cell or object key the ids came from (None for plain text and
        #: for JSON strings); a file may use several keys, this is the first.
        self.id_column: str | None = None
        self.total = 0
        self.duplicates = 0
        self.blank = 0
        self.excluded = 0

    @property
    def pending(self) -> int:
        """How many ids :meth:`iter_ids` yields."""
        return self.total - self.excluded

    def iter_ids(self) -> Iterator[str]:
        """Yield each distinct id once, in file order, skipping excluded ones."""
        self._source.check_unchanged()
        seen = IdSet()
        exclude = self._exclude
        for _, user_id in _read_ids(self._source, self.form, self._wanted, _Tally()):
            h = hash_id(user_id)
            if seen.add_hash(h) and not _excluded(exclude, h, user_id):
                yield user_id

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> InputScan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"InputScan(path={self.path!r}, form={self.form!r}, compressed={self.compressed},"
            f" id_column={self.id_column!r}, total={self.total}, duplicates={self.duplicates},"
            f" blank={self.blank}, excluded={self.excluded})"
        )


def scan_input(
    path: str, id_column: str | None = None, *, exclude: Container[str] | None = None
) -> InputScan:
    """Read ``path`` (``-`` for standard input) to the end, validate it and count.

    ``id_column`` names the CSV column or object key holding the ids; by default
    ``user_id``, else ``Id``, matched exactly first, then ignoring case.  ``exclude``
    holds ids to skip, typically :attr:`asyncroles.resume.ResumeState.done` (an
    :class:`IdSet` is checked by hash, without re-hashing).

    Raises :class:`InputError` naming ``path:line`` for a file that cannot be read as
    a whole: no id column, a malformed line, an empty id, an unreadable gzip stream.
    """
    source = _Source(path)
    try:
        form = _detect(source, id_column)
        tally = _Tally()
        scan = InputScan(source, form, id_column, exclude)
        seen = IdSet()
        for _, user_id in _read_ids(source, form, id_column, tally):
            h = hash_id(user_id)
            if not seen.add_hash(h):
                scan.duplicates += 1
                continue
            scan.total += 1
            if _excluded(exclude, h, user_id):
                scan.excluded += 1
        scan.blank = tally.blank
        scan.id_column = tally.column
    except BaseException:
        source.close()
        raise
    return scan


def _excluded(exclude: Container[str] | None, h: int, user_id: str) -> bool:
    if exclude is None:
        return False
    if isinstance(exclude, IdSet):
        return exclude.contains_hash(h)
    return user_id in exclude


class _Tally:
    """What a reading pass noticed besides the ids."""

    __slots__ = ("blank", "column")

    def __init__(self) -> None:
        self.blank = 0
        self.column: str | None = None


class _Source:
    """Where the bytes are; each pass opens a fresh, decompressed binary stream.

    Standard input, a pipe (``-i <(zcat users.gz)``) or ``/dev/stdin`` can be read
    only once, so they are copied to a temporary file (created 0o600, removed on
    close or when the scan is collected) that both passes read.
    """

    def __init__(self, path: str) -> None:
        self._tmp: str | None = None
        self.display = "<stdin>" if path == "-" else path
        self._path = path
        try:
            if path == "-":
                self._path = self._spool(sys.stdin.buffer)
            elif not stat.S_ISREG(self._mode()):
                with self._open_raw() as pipe:
                    self._path = self._spool(pipe)
            self._stat = self._fingerprint()
            with self._open_raw() as raw:
                magic = raw.read(6)
        except BaseException:
            self.close()
            raise
        self.compressed = magic.startswith(_GZIP_MAGIC)
        self.foreign = next((m for m in _FOREIGN_MAGIC if magic.startswith(m[0])), None)

    def _mode(self) -> int:
        try:
            return os.stat(self._path).st_mode
        except OSError as error:
            raise _open_error(self.display, error) from None

    def _spool(self, stream: BinaryIO | io.BufferedIOBase) -> str:
        fd, tmp = tempfile.mkstemp(prefix="asyncroles-input-")
        self._tmp = tmp
        # If the scan is never closed, still remove the copy when the object goes.
        self._finalizer = weakref.finalize(self, _unlink, tmp)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, _CHUNK_BYTES)
        return tmp

    def _fingerprint(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self._path)
        except OSError as error:
            raise _open_error(self.display, error) from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def check_unchanged(self) -> None:
        if self._fingerprint() != self._stat:
            raise InputError(
                "the file changed after it was checked",
                path=self.display,
                hint="run again once nothing is writing to it",
            )

    def _open_raw(self) -> io.BufferedIOBase:
        try:
            return io.BufferedReader(io.FileIO(self._path, "rb"), _CHUNK_BYTES)
        except OSError as error:
            raise _open_error(self.display, error) from None

    @contextlib.contextmanager
    def stream(self) -> Iterator[io.BufferedIOBase]:
        """The decompressed bytes; read errors become :class:`InputError`."""
        with self._open_raw() as raw:
            try:
                if self.compressed:
                    with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                        yield unzipped
                else:
                    yield raw
            except (EOFError, zlib.error, gzip.BadGzipFile) as error:
                # EOFError: "Compressed file ended before the end-of-stream marker".
                raise InputError(
                    f"not a readable gzip file: {error}",
                    path=self.display,
                    hint="download the export again; the file is damaged or cut short",
                ) from None
            except OSError as error:
                raise InputError(f"could not read: {error}", path=self.display) from None

    def close(self) -> None:
        if self._tmp is not None:
            self._finalizer()
            self._tmp = None


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _open_error(display: str, error: OSError) -> InputError:
    if isinstance(error, FileNotFoundError):
        return InputError("no such file", path=display, hint="check the path given to -i")
    if isinstance(error, IsADirectoryError):
        return InputError("is a directory, not a file", path=display, hint="name the file in it")
    if isinstance(error, PermissionError):
        return InputError("permission denied", path=display, hint="check the file's permissions")
    return InputError(f"cannot open: {error.strerror or error}", path=display)


# --- detection --------------------------------------------------------------------


def _detect(source: _Source, wanted: str | None) -> InputForm:
    """Pick the form from the first non-blank line of the decompressed content."""
    if source.foreign is not None:
        _, what, hint = source.foreign
        raise InputError(f"this is {what}, not a list of users", path=source.display, hint=hint)
    with source.stream() as stream:
        head = stream.read(_HEAD_BYTES)
    head = head.removeprefix(_BOM)
    if b"\x00" in head:
        raise InputError(
            "binary data, not a list of users",
            path=source.display,
            hint="pass the users-export file (NDJSON, CSV or gzip of either) or one id a line",
        )
    lineno, first = 0, b""
    for lineno, raw in enumerate(head.split(b"\n"), 1):  # noqa: B007  # lineno used below
        first = raw.strip()
        if first:
            break
    if not first:
        return "text"  # empty or blank: nothing to read, which is not an error
    if first.startswith(b"["):
        return "json-array"
    if first.startswith(b"{"):
        return "ndjson"
    # "replace": the line may be cut mid-character at _HEAD_BYTES; the reading pass
    # reports real decoding errors with their line.
    text = first.decode("utf-8", "replace")
    if first.startswith(b'"'):
        # A JSON string a line, as ``jq .user_id`` prints without -r; unless it is a
        # quoted one-column CSV header such as "user_id".
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(first)
            if isinstance(value, str):
                return "csv" if _pick_column([_unguard(value)], wanted) is not None else "ndjson"
    cells = [_unguard(cell) for cell in next(csv.reader([text]))]
    if len(cells) >= 2 or _pick_column(cells, wanted) is not None:
        return "csv"
    if wanted is not None:
        raise InputError(
            f'no "{wanted}" column: the file has no header row (first line {_clip(text)})',
            path=source.display,
            line=lineno,
            hint="drop --id-column for a plain list of ids, or add a header row",
        )
    return "text"


def _decode(raw: bytes, display: str, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})",
            path=display,
            line=lineno,
            hint="save the file as UTF-8",
        ) from None


def _unguard(cell: str) -> str:
    """A CSV cell's value: the export's ``'`` injection guard and spaces removed."""
    cell = cell.strip()
    if cell.startswith("'"):
        cell = cell[1:].strip()
    return cell


def _norm(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _pick_column(names: Sequence[str], wanted: str | None) -> int | None:
    """Index of the id column: exact names first, then ignoring case.

    Without ``--id-column``, a last try ignores case, spaces, ``_`` and ``-`` for
    ``user_id``, because ``export_as`` names such as "User ID" or "userId" are common.
    """
    candidates = (wanted,) if wanted is not None else DEFAULT_ID_COLUMNS
    for candidate in candidates:
        for i, name in enumerate(names):
            if name == candidate:
                return i
    for candidate in candidates:
        folded = candidate.casefold()
        for i, name in enumerate(names):
            if name.casefold() == folded:
                return i
    if wanted is None:
        for i, name in enumerate(names):
            if _norm(name) == "userid":
                return i
    return None


def _looked_for(wanted: str | None) -> str:
    names = (wanted,) if wanted is not None else DEFAULT_ID_COLUMNS
    return ", ".join(f'"{name}"' for name in names)


def _listed(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(_clip(n, 40) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "") or "none"


def _clip(text: str, limit: int = 60, *, quote: bool = True) -> str:
    """``text`` for an error message: shortened to keep the message one line, quoted."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return f'"{text}"' if quote else text


# --- reading ----------------------------------------------------------------------


def _read_ids(
    source: _Source, form: InputForm, wanted: str | None, tally: _Tally
) -> Iterator[tuple[int, str]]:
    """Yield ``(line, id)`` for every id occurrence, duplicates included."""
    with source.stream() as stream:
        if form == "json-array":
            yield from _json_array_ids(stream, source.display, wanted, tally)
        elif form == "ndjson":
            yield from _ndjson_ids(stream, source.display, wanted, tally)
        elif form == "csv":
            yield from _csv_ids(stream, source.display, wanted, tally)
        else:
            yield from _text_ids(stream, source.display, tally)


def _text_ids(stream: io.BufferedIOBase, display: str, tally: _Tally) -> Iterator[tuple[int, str]]:
    for lineno, raw in enumerate(stream, 1):
        if lineno == 1:
            raw = raw.removeprefix(_BOM)
        if b"\x00" in raw:
            raise InputError("binary data (a NUL byte)", path=display, line=lineno)
        user_id = _decode(raw, display, lineno).strip()
        if user_id:
            yield lineno, user_id
        else:
            tally.blank += 1


def _ndjson_ids(
    stream: io.BufferedIOBase, display: str, wanted: str | None, tally: _Tally
) -> Iterator[tuple[int, str]]:
    ids = _IdOf(display, wanted, tally, "line is neither a JSON object nor a JSON string")
    for lineno, raw in enumerate(stream, 1):
        if lineno == 1:
            raw = raw.removeprefix(_BOM)
        if not raw.strip():
            tally.blank += 1
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise InputError(
                f"malformed JSON line: {error.msg} at column {error.colno}",
                path=display,
                line=lineno,
                hint="NDJSON holds one whole JSON object a line; a JSON file must be one array",
            ) from None
        yield lineno, ids(value, lineno)


def _json_array_ids(
    stream: io.BufferedIOBase, display: str, wanted: str | None, tally: _Tally
) -> Iterator[tuple[int, str]]:
    ids = _IdOf(display, wanted, tally, "array element is neither a string nor an object")
    try:
        for lineno, value in iter_array(iter_text(stream)):
            user_id = ids(value, lineno)
            if not user_id.isascii():
                _check_unicode(user_id, display, lineno)
            yield lineno, user_id
    except JsonArrayError as error:
        raise InputError(
            f"malformed JSON: {error.reason}",
            path=display,
            line=error.line,
            hint="a JSON input must be one array of ids or of user objects",
        ) from None


def _check_unicode(user_id: str, display: str, lineno: int) -> None:
    # The stdlib's JSON decoder lets "\ud800" through; such an id could not be
    # written out (orjson, like UTF-8, refuses lone surrogates), so refuse it here.
    try:
        user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            "user id is not valid Unicode (a lone surrogate escape)", path=display, line=lineno
        ) from None


class _IdOf:
    """The id in one JSON value: a string, or an object's id key."""

    def __init__(self, display: str, wanted: str | None, tally: _Tally, neither: str) -> None:
        self.display = display
        self.wanted = wanted
        self.tally = tally
        self.neither = neither
        self.key: str | None = None  # the last key found; objects usually share it

    def __call__(self, value: Any, lineno: int) -> str:
        if isinstance(value, str):
            user_id = value.strip()
            if not user_id:
                raise InputError("empty user id", path=self.display, line=lineno)
            return user_id
        if not isinstance(value, dict):
            raise InputError(
                f"{self.neither} with {_looked_for(self.wanted)} (got {type(value).__name__})",
                path=self.display,
                line=lineno,
            )
        key = self.key
        if key is None or key not in value:
            keys = list(value)
            index = _pick_column(keys, self.wanted)
            if index is None:
                raise InputError(
                    f"no user id key (looked for {_looked_for(self.wanted)};"
                    f" keys are {_listed(keys)})",
                    path=self.display,
                    line=lineno,
                    hint=_COLUMN_HINT,
                )
            key = self.key = keys[index]
            if self.tally.column is None:
                self.tally.column = key
        raw = value[key]
        if not isinstance(raw, str):
            got = _clip(orjson.dumps(raw).decode(), 30, quote=False)
            raise InputError(
                f'"{key}" is not a string (got {got})',
                path=self.display,
                line=lineno,
                hint='user ids are strings such as "auth0|5f1c..."',
            )
        user_id = raw.strip()
        if not user_id:
            raise InputError(f'empty user id in "{key}"', path=self.display, line=lineno)
        return user_id


def _csv_ids(
    stream: io.BufferedIOBase, display: str, wanted: str | None, tally: _Tally
) -> Iterator[tuple[int, str]]:
    def lines() -> Iterator[str]:
        for lineno, raw in enumerate(stream, 1):
            if lineno == 1:
                raw = raw.removeprefix(_BOM)
            yield _decode(raw, display, lineno)

    # strict: a stray quote is an error rather than a silently different id.
    reader = csv.reader(lines(), strict=True)
    index = width = 0
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            lineno, start = start, reader.line_num + 1
            cell = _unguard(row[index]) if index < len(row) else ""
            if not cell and not any(c.strip() for c in row):
                tally.blank += 1
                continue
            if header is None:
                header = [_unguard(c) for c in row]
                found = _pick_column(header, wanted)
                if found is None:
                    raise InputError(
                        f"no user id column (looked for {_looked_for(wanted)};"
                        f" columns are {_listed(header)})",
                        path=display,
                        line=lineno,
                        hint=_COLUMN_HINT,
                    )
                index, width = found, len(header)
                tally.column = header[index]
                continue
            if len(row) > width and any(c.strip() for c in row[width:]):
                raise InputError(
                    f"row has {len(row)} cells but the header has {width}",
                    path=display,
                    line=lineno,
                    hint="quote values that contain commas",
                )
            if not cell:
                what = (
                    f'empty user id in column "{header[index]}"'
                    if index < len(row)
                    else f'row has {len(row)} cells, too few to reach column "{header[index]}"'
                )
                raise InputError(what, path=display, line=lineno)
            yield lineno, cell
    except csv.Error as error:
        raise InputError(f"malformed CSV: {error}", path=display, line=start) from None
