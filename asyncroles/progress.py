"""Progress on long runs: a status line on a terminal, a log line every few seconds
elsewhere, a summary at the end.

``render_*`` are pure (a ``Snapshot`` in, text out); ``Progress`` is the small
asyncio shell that samples the client and writes to stderr.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from asyncroles.client import Client

__all__ = ["Progress", "Snapshot", "format_duration", "render_line", "render_summary"]

RATE_WINDOW_S = 5.0
TTY_EVERY_S = 0.25
LOG_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    done: int
    total: int | None
    failed: int
    requests: int
    throttled: int
    retries: int
    elapsed_s: float
    current_rps: float
    ceiling_rps: float | None
    ceiling_learned: bool
    tokens: float | None
    limit: int | None
    paused: str | None
    requests_total: int | None = None  # by role: the planned requests (users come last)

    @property
    def eta_s(self) -> float | None:
        rate = self.current_rps or self.ceiling_rps
        if not rate:
            return None
        if self.requests_total is not None:
            return max(0, self.requests_total - self.requests) / rate
        if self.total is None or self.done >= self.total:
            return None
        # Per-user fetching costs one request per user: the remaining users at the rate.
        return (self.total - self.done) / rate


def format_duration(seconds: float) -> str:
    """1h02m, 3m05s, 7s: short enough for a status line."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def render_line(s: Snapshot) -> str:
    """One status line: users, rates, tokens, 429s, retries, ETA, and why paused."""
    if s.requests_total:
        # By role, users are known only at the end: count the planned requests.
        share = min(100.0, 100 * s.requests / s.requests_total)
        parts = [f"requests {s.requests:,}/~{s.requests_total:,} ({share:.0f}%)"]
    else:
        users = f"{s.done:,}/{s.total:,}" if s.total is not None else f"{s.done:,}"
        if s.total:
            users += f" ({100 * s.done / s.total:.0f}%)"
        parts = [f"users {users}"]
    rate = f"{s.current_rps:.1f} req/s"
    if s.ceiling_rps is not None:
        learned = "" if s.ceiling_learned else "?"
        rate += f" of {s.ceiling_rps:.1f}{learned}"
    parts.append(rate)
    if s.tokens is not None and s.limit is not None:
        parts.append(f"tokens {max(0.0, s.tokens):.0f}/{s.limit}")
    parts.append(f"429s {s.throttled}")
    parts.append(f"retries {s.retries}")
    if s.failed:
        parts.append(f"failed {s.failed}")
    eta = s.eta_s
    parts.append(
        f"ETA {format_duration(eta)}" if eta is not None else f"{format_duration(s.elapsed_s)}"
    )
    if s.paused:
        parts.append(f"paused: {s.paused}")
    return " | ".join(parts)


def render_summary(s: Snapshot, *, ok: int, not_found: int, failed: int, burst: int | None) -> str:
    """The end of a run: outcomes, requests, 429s, time, and the rate against the ceiling."""
    lines = [
        f"users: {ok:,} ok, {not_found:,} not_found, {failed:,} failed",
        f"requests: {s.requests:,} sent, {s.throttled} answered 429, {s.retries} retried",
    ]
    achieved = s.requests / s.elapsed_s if s.elapsed_s > 0 else 0.0
    timing = f"elapsed: {format_duration(s.elapsed_s)} ({s.elapsed_s:.1f}s), {achieved:.1f} req/s"
    if s.ceiling_rps:
        timing += f" against a ceiling of {s.ceiling_rps:.1f} req/s"
        if burst is not None and s.requests > burst:
            # The physical lower bound: what the burst cannot cover, at the refill rate.
            bound = (s.requests - burst) / s.ceiling_rps
            timing += f" (lower bound {bound:.1f}s)"
    lines.append(timing)
    return "\n".join(lines)


class Progress:
    """Samples a client while a run lasts and reports on ``stream``."""

    def __init__(
        self,
        client: Client,
        *,
        total: int | None,
        done: Callable[[], tuple[int, int]],
        stream: TextIO,
        quiet: bool = False,
        on_tick: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.total = total
        self.requests_total: int | None = None
        self._done = done  # () -> (users done, users failed) so far
        self._stream = stream
        self._quiet = quiet
        self._tty = stream.isatty()
        self._clock = clock
        self._on_tick = on_tick  # e.g. flush the output while nothing else writes
        self._started = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._drawn = False

    def snapshot(self) -> Snapshot:
        now = self._clock()
        stats = self._client.stats
        state = self._client.rate_limit
        samples = self._samples
        samples.append((now, stats.requests))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        first_t, first_requests = samples[0]
        span = now - first_t
        current = (stats.requests - first_requests) / span if span > 0 else 0.0
        done, failed = self._done()
        return Snapshot(
            done=done,
            total=self.total,
            failed=failed,
            requests=stats.requests,
            throttled=stats.throttled,
            retries=stats.retries,
            elapsed_s=now - self._started,
            current_rps=current,
            ceiling_rps=state.refill_per_s,
            ceiling_learned=state.refill_learned,
            tokens=state.remaining_estimate,
            limit=state.limit,
            paused=state.pause_reason,
            requests_total=self.requests_total,
        )

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        last_log = self._clock()
        while True:
            await asyncio.sleep(TTY_EVERY_S)
            if self._on_tick is not None:
                self._on_tick()
            if self._quiet:
                continue
            snapshot = self.snapshot()  # every tick: the rate window needs the samples
            if self._tty:
                self.draw(snapshot)
            elif self._clock() - last_log >= LOG_EVERY_S:
                last_log = self._clock()
                self.draw(snapshot)

    def draw(self, snapshot: Snapshot | None = None) -> None:
        line = render_line(snapshot or self.snapshot())
        if self._tty:
            # \r and "erase to end of line": one line, redrawn in place.
            self._stream.write(f"\r{line}\x1b[K")
            self._drawn = True
        else:
            self._stream.write(f"asyncroles: {line}\n")
        self._stream.flush()

    def note(self, text: str) -> None:
        """A line of its own, above the status line."""
        if self._quiet:
            return
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._drawn = False
        self._stream.write(f"asyncroles: {text}\n")
        self._stream.flush()

    async def stop(self) -> Snapshot:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._drawn:
            self.draw()
            self._stream.write("\n")
            self._drawn = False
        return self.snapshot()
