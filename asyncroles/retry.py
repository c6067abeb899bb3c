"""When to retry a request, and after how long: pure, after stamina's rules.

Retries are bounded by attempts *and* by total time.  They cover what is transient:
5xx, connection resets, timeouts, non-JSON or cut-short bodies.  429s are not
retries in this sense: they pause every worker through the scheduler and are
bounded separately (``max_throttled``), since a 429 is the tenant saying "later",
not "broken".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryEvent", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds and backoff for one request (one user's call, one page)."""

    max_attempts: int = 6
    max_elapsed_s: float = 120.0
    base_delay_s: float = 0.25
    max_delay_s: float = 10.0
    #: 429s one request may meet before it is reported ``failed``.
    max_throttled: int = 50

    @classmethod
    def testing(cls, **overrides: float) -> RetryPolicy:
        """No backoff at all: for tests of code that embeds asyncroles."""
        values: dict[str, float] = {"base_delay_s": 0.0, "max_delay_s": 0.0}
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def allows(self, attempts: int, elapsed_s: float) -> bool:
        """May a request that has failed ``attempts`` times, ``elapsed_s`` in, go again?"""
        return attempts < self.max_attempts and elapsed_s < self.max_elapsed_s

    def backoff_s(
        self, attempts: int, rng: random.Random, *, server_says: float | None = None
    ) -> float:
        """Delay before retry number ``attempts`` (1-based).

        A wait the server gave (``Retry-After``) replaces the computed backoff.  Else
        exponential with "equal jitter": half fixed, half random, so that workers
        failing together do not come back together.
        """
        if server_says is not None:
            return max(0.0, server_says)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempts - 1))
        return float(ceiling / 2 + rng.random() * ceiling / 2)


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One retry or pause, as the progress display and logs see it."""

    kind: str  # "retry", "throttled", "token_refresh", "gave_up"
    what: str  # the user id or the request path
    attempt: int
    reason: str
    delay_s: float
