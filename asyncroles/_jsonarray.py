"""Reading one top-level JSON array element by element, with each element's line.

``json.load`` would hold the whole array (a million users) in memory at once and, on
a bad element, say only "char 12345678".  This reads text chunks, decodes one element
at a time with ``JSONDecoder.raw_decode`` (the stdlib's C scanner), and counts
newlines so errors and elements carry the line they start on.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["JsonArrayError", "iter_array", "iter_text"]

_WS = re.compile(r"[ \t\n\r]*")
_COMPACT_AT = 1 << 20  # drop consumed text once this much has piled up
_CHUNK_BYTES = 256 * 1024


class JsonArrayError(ValueError):
    """The text is not one JSON array; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def iter_array(chunks: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, element)`` for each element of the single array in ``chunks``.

    Anything but whitespace around the array is an error, as is a trailing comma.
    """
    decoder = json.JSONDecoder()
    source = iter(chunks)
    buf = ""
    pos = 0
    line = 1
    eof = False

    def fill(min_len: int) -> bool:
        """Read until ``buf`` holds ``min_len`` characters after ``pos``, or EOF."""
        nonlocal buf, pos, eof
        if pos >= _COMPACT_AT:
            buf, pos = buf[pos:], 0
        parts = [buf]
        have = len(buf) - pos
        while have < min_len and not eof:
            chunk = next(source, None)
            if chunk is None:
                eof = True
            else:
                parts.append(chunk)
                have += len(chunk)
        buf = "".join(parts)
        return len(buf) - pos >= min_len

    def skip_ws() -> str:
        """Skip whitespace (counting lines) and return the next character, "" at EOF."""
        nonlocal pos, line
        while True:
            end = _WS.match(buf, pos).end()  # type: ignore[union-attr]  # * always matches
            line += buf.count("\n", pos, end)
            pos = end
            if pos < len(buf):
                return buf[pos]
            if not fill(1):
                return ""

    def element() -> Any:
        nonlocal pos
        want = 4096
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as error:
                # Maybe the element runs past what we have read: read more and retry,
                # doubling what we ask for so a huge element costs linear time.
                if not eof:
                    fill(max(want, 2 * (len(buf) - pos)))
                    want *= 2
                    continue
                at = line + buf.count("\n", pos, error.pos)
                raise JsonArrayError(at, error.msg) from None
            # A number can stop at the end of what was read ("12" of "123"): be sure.
            if end == len(buf) and not eof and fill(len(buf) - pos + 1):
                continue
            line_inc = buf.count("\n", pos, end)
            pos = end
            return value, line_inc

    if skip_ws() != "[":
        raise JsonArrayError(line, "expected a JSON array starting with '['")
    pos += 1
    ch = skip_ws()
    if ch == "]":
        pos += 1
    else:
        while True:
            if ch == "":
                raise JsonArrayError(line, "the array is cut short (no closing ']')")
            start_line = line
            value, line_inc = element()
            line += line_inc
            yield start_line, value
            ch = skip_ws()
            if ch == "]":
                pos += 1
                break
            if ch != ",":
                what = "the array is cut short" if ch == "" else f"unexpected {ch!r}"
                raise JsonArrayError(line, f"{what}: expected ',' or ']' after an element")
            pos += 1
            ch = skip_ws()
            if ch == "]":
                raise JsonArrayError(line, "trailing comma before ']'")
    if skip_ws() != "":
        raise JsonArrayError(line, "unexpected text after the array's closing ']'")


def iter_text(stream: io.BufferedIOBase) -> Iterator[str]:
    """A binary stream's UTF-8 text in chunks, a leading BOM dropped.

    A decoding error becomes a :class:`JsonArrayError` naming its line.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    newlines = 0
    while True:
        chunk = stream.read(_CHUNK_BYTES)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            line = newlines + chunk[: max(error.start, 0)].count(b"\n") + 1
            raise JsonArrayError(line, "not UTF-8 text") from None
        newlines += chunk.count(b"\n")
        if text:
            yield text
        if not chunk:
            return
