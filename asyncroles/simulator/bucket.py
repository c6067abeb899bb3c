"""The tenant-wide token bucket, as pure arithmetic: every method takes ``now``.

Auth0 meters the Management API with a token bucket per tenant (auth0-api.md
"Rate limits"): a burst of B requests, refilled at R tokens per second "by
milliseconds", i.e. continuously.  Every /api/v2 call spends one token; a call
that finds the bucket empty gets a 429 and spends nothing.

No asyncio here: the server passes its clock in, tests pass plain numbers.
"""

from __future__ import annotations

import math

from asyncroles.simulator.settings import ResetMode

__all__ = ["BackgroundSpender", "TokenBucket"]


class TokenBucket:
    """Capacity ``capacity``, continuous refill of ``refill_per_s``; starts full."""

    def __init__(
        self,
        capacity: int,
        refill_per_s: float,
        now: float,
        *,
        reset_mode: ResetMode = "next-token",
        epoch_offset_s: float = 0.0,
    ) -> None:
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.reset_mode: ResetMode = reset_mode
        # Headers speak UNIX epoch seconds while ``now`` is usually monotonic:
        # epoch = now + epoch_offset_s.
        self.epoch_offset_s = epoch_offset_s
        # A fresh tenant has its whole burst available.
        self.tokens = float(capacity)
        self.updated_at = now

    def _refill(self, now: float) -> None:
        # Tokens accrue continuously since the last update; a clock that steps
        # backwards (concurrent callers racing) adds nothing rather than removing.
        elapsed = max(0.0, now - self.updated_at)
        # The bucket never holds more than its capacity.
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.refill_per_s)
        self.updated_at = max(self.updated_at, now)

    def configure(
        self, capacity: int, refill_per_s: float, reset_mode: ResetMode, now: float
    ) -> None:
        """Apply new limits from ``now`` on (a test may change settings mid-run)."""
        if (capacity, refill_per_s, reset_mode) == (
            self.capacity,
            self.refill_per_s,
            self.reset_mode,
        ):
            return
        # Time up to ``now`` refilled at the old rate ...
        self._refill(now)
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.reset_mode = reset_mode
        # ... and a smaller bucket drops what no longer fits.
        self.tokens = min(self.tokens, float(capacity))

    def take(self, now: float) -> bool:
        """Spend one token if a whole one is available; False means answer 429."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        # A refused request spends nothing: the 429 costs the client only time.
        return False

    def peek(self, now: float) -> float:
        """The tokens held at ``now`` (refills, spends nothing)."""
        self._refill(now)
        return self.tokens

    # --- header values, valid right after ``take`` at the same ``now`` ----

    @property
    def remaining(self) -> int:
        """``x-ratelimit-remaining``: whole tokens left after the charge."""
        return math.floor(self.tokens)

    def seconds_to_next_token(self) -> float:
        """Time until the token count reaches its next whole number (0 when full)."""
        if self.tokens >= self.capacity:
            return 0.0
        # The next whole token is floor(tokens) + 1; the gap refills at the rate.
        return (math.floor(self.tokens) + 1.0 - self.tokens) / self.refill_per_s

    def seconds_to_full(self) -> float:
        """Time until the bucket holds its whole capacity again."""
        return (self.capacity - self.tokens) / self.refill_per_s

    def reset_epoch_s(self, now: float) -> int:
        """``x-ratelimit-reset``: whole epoch seconds, rounded up, per ``reset_mode``.

        auth0-api.md marks the meaning "(unsure)": the current docs say the time
        the next token arrives, an Auth0 maintainer (2020) said the time the
        bucket is full.  ``reset_mode`` picks one.
        """
        wait = (
            self.seconds_to_next_token()
            if self.reset_mode == "next-token"
            else (self.seconds_to_full())
        )
        return math.ceil(now + self.epoch_offset_s + wait)

    def retry_after_s(self) -> int:
        """``Retry-After`` for a 429: seconds until one whole token, rounded up, >= 1."""
        # ``tokens`` is below 1 after a refusal; the missing fraction refills at the rate.
        missing = max(0.0, 1.0 - self.tokens)
        return max(1, math.ceil(missing / self.refill_per_s))


class BackgroundSpender:
    """Another application of the tenant spending ``rps`` tokens/s from the same bucket.

    It spends evenly, one token every ``1/rps`` seconds, and like any client it
    cannot spend what the bucket lacks: a tick that finds the bucket empty is that
    application's own 429 and spends nothing.  Ticks are replayed lazily, in time
    order, whenever the server looks at the bucket, so the result is exact and
    deterministic without a timer task.
    """

    def __init__(self) -> None:
        self.spent = 0
        self.refused = 0
        self._next_tick: float | None = None

    def advance(self, bucket: TokenBucket, rps: float, now: float) -> int:
        """Replay the ticks due up to ``now``; return how many tokens they spent."""
        if rps <= 0:
            # Off (or switched off mid-run): forget the schedule.
            self._next_tick = None
            return 0
        interval = 1.0 / rps
        if self._next_tick is None:
            # Switched on now: the first token goes one interval later.
            self._next_tick = now + interval
        spent = 0
        while self._next_tick <= now:
            if bucket.take(self._next_tick):
                spent += 1
            else:
                self.refused += 1
            self._next_tick += interval
        self.spent += spent
        return spent
