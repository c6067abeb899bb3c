"""A discrete-event model of a tenant's token bucket and a pool of workers.

It drives the pure ``Pacer`` on virtual time: no sockets, no sleeping, thousands of
requests in milliseconds.  The server side is written from auth0-api.md, not from
the pacer: a continuous refill capped at the bucket size, one token per request
on arrival, 429 (spending nothing) when empty, ``remaining`` floored to whole tokens.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

from asyncroles.pacing import Pacer
from asyncroles.ratelimit import RateLimitHeaders


@dataclass
class ModelBucket:
    limit: int
    refill_per_s: float
    reset_mode: str = "next-token"  # or "full"
    tokens: float = field(init=False)
    t: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.limit)

    def advance(self, now: float) -> None:
        self.tokens = min(self.limit, self.tokens + (now - self.t) * self.refill_per_s)
        self.t = now

    def take(self, now: float) -> bool:
        self.advance(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def headers(self, now: float, epoch0: float) -> RateLimitHeaders:
        missing = (
            (1.0 - self.tokens % 1.0)
            if self.reset_mode == "next-token"
            else self.limit - self.tokens
        )
        reset = math.ceil(epoch0 + now + missing / self.refill_per_s)
        return RateLimitHeaders(self.limit, math.floor(self.tokens), reset)


@dataclass
class RunResult:
    virtual_s: float  # when the last answer came, on the model's virtual clock
    sent: int
    throttled: int
    bound_s: float
    peak_in_flight: int


def run_model(
    *,
    requests: int,
    limit: int,
    refill_per_s: float,
    latency_s: float,
    jitter_s: float = 0.0,
    workers: int = 32,
    other_rps: float = 0.0,
    reset_mode: str = "next-token",
    retry_after: bool = True,
    seed: int = 0,
    reserve: int | None = None,
) -> RunResult:
    """Send ``requests`` successful requests through the pacer; count 429s."""
    rng = random.Random(seed)
    pacer = Pacer(reserve=reserve, rng=random.Random(seed))
    bucket = ModelBucket(limit, refill_per_s, reset_mode)
    epoch0 = 1_700_000_000.0
    events: list[tuple[float, int, str, int]] = []  # (time, order, kind, seq)
    order = 0

    def push(t: float, kind: str, seq: int = -1) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, kind, seq))

    done = throttled = sent = 0
    idle = workers
    in_flight = peak = 0
    verdicts: dict[int, tuple[bool, RateLimitHeaders, float | None]] = {}
    if other_rps > 0:
        push(1.0 / other_rps, "other")
    push(0.0, "wake")
    now = 0.0
    wake_at: float | None = 0.0
    while done < requests:
        now, _, kind, seq = heapq.heappop(events)
        if kind == "arrive":
            ok = bucket.take(now)
            headers = bucket.headers(now, epoch0)
            retry = (
                math.ceil((1 - bucket.tokens) / refill_per_s) if (not ok and retry_after) else None
            )
            verdicts[seq] = (ok, headers, retry)
            back = latency_s / 2 + rng.uniform(-jitter_s, jitter_s) / 2
            push(now + max(0.0, back), "respond", seq)
        elif kind == "respond":
            ok, headers, retry = verdicts.pop(seq)
            in_flight -= 1
            idle += 1
            if ok:
                done += 1
                pacer.on_response(seq, now, headers)
            else:
                throttled += 1
                pacer.on_throttled(seq, now, headers, retry_after_s=retry, now_epoch_s=epoch0 + now)
        elif kind == "other":
            bucket.take(now)
            push(now + 1.0 / other_rps, "other")
        # The gate: send while the pacer allows and a worker is free.
        while idle and done + in_flight < requests and pacer.delay(now) == 0.0:
            seq = pacer.on_send(now)
            sent += 1
            idle -= 1
            in_flight += 1
            peak = max(peak, in_flight)
            out = latency_s / 2 + rng.uniform(-jitter_s, jitter_s) / 2
            push(now + max(0.0, out), "arrive", seq)
        delay = pacer.delay(now)
        if delay and (wake_at is None or wake_at <= now or now + delay < wake_at):
            wake_at = now + delay
            push(wake_at, "wake")
    usable = limit - (pacer.reserve or 0)
    bound = max(0.0, (requests - usable) / refill_per_s)
    return RunResult(now, sent, throttled, bound, peak)
