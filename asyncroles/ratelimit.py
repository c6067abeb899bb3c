"""Reading Auth0's rate-limit headers: pure, no I/O.

Every Management API response carries ``x-ratelimit-limit`` (bucket size),
``x-ratelimit-remaining`` (tokens left after this request) and
``x-ratelimit-reset`` (UNIX epoch seconds, whole numbers).  What ``reset`` means is
disputed (the next token, or a full bucket; auth0-api.md "Rate limits"), so the
pacer never depends on it for steady-state pacing.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RateLimitHeaders", "header", "parse_retry_after"]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works on plain dicts (tests, samples)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    limit: int
    remaining: int
    reset_epoch_s: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitHeaders | None:
        """The headers' values, or None when a response lacks them (a proxy's 502)."""
        limit = _int(header(headers, "x-ratelimit-limit"))
        remaining = _int(header(headers, "x-ratelimit-remaining"))
        if limit is None or remaining is None or limit <= 0:
            return None
        reset = _int(header(headers, "x-ratelimit-reset"))
        return cls(limit=limit, remaining=max(0, min(remaining, limit)), reset_epoch_s=reset)


def parse_retry_after(value: str | None, now_epoch_s: float) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_epoch_s)
