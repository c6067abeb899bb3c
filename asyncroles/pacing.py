"""The shared, self-adjusting token bucket: pure arithmetic, ``now`` passed in.

Auth0 meters the Management API with one token bucket per tenant: ``limit`` tokens,
refilled continuously; each request spends one; a request finding it empty gets 429.
Every other application of the tenant spends from the same bucket.  The ``Pacer``
keeps a running estimate of that bucket and answers one question, "how long until
the next request may go?", so that the bucket hovers just above a reserve left for
the tenant's other applications.  Then throughput equals the refill rate (the
ceiling), tokens are never lost to a full bucket, and no request meets an empty one.

How the estimate works:

* Each response's ``x-ratelimit-remaining`` is the bucket right after *that*
  request, at the moment the server handled it (taken as the midpoint of its round
  trip).  Projected to now it reads ``remaining + refill * elapsed``, minus every
  request of ours the server may have handled after it: those still in flight (or
  lost) that were sent after it, or so shortly before it that they may have been
  overtaken on the way (concurrent requests reorder by up to the round-trip jitter).
* Each recent response gives such a bound; the estimate is the lowest.  The
  response the server handled last gives the tightest one, and it need not be the
  last to come back: in a burst, answers return in any order.  Taking the lowest
  needs no assumption about order, and errors never accumulate, since every answer
  re-bases the estimate.
* The refill rate is learned, not assumed: ``remaining + requests sent`` grows at
  the net refill rate, so a least-squares line through those points over a sliding
  window gives it, robust to whole-token rounding and to reordering.  "Net" is the
  point: what other applications spend is subtracted already.  ``x-ratelimit-reset``
  is never needed for this (its meaning is disputed and it has whole seconds only).
  Spans that may include a full bucket (refill wasted at the cap) are dropped from
  learning; a 429 (a request that spent nothing) is not counted as spent.
* Before the first response, one request goes alone: the pacer starts from what the
  tenant says, not from an assumed full bucket.  After a 429 every worker pauses at
  once and then one request goes alone again, so resuming never bursts.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from dataclasses import dataclass

from asyncroles.ratelimit import RateLimitHeaders

__all__ = ["Pacer", "PacerState", "default_reserve"]

#: A learned rate is trusted once its standard error is this small a share of it
#: (whole-token rounding of ``remaining`` and jitter make early points noisy).
MAX_REL_ERROR = 0.05
MIN_LEARN_POINTS = 5
#: The fit is trusted only over points this spread in time (a burst's answers,
#: reordered within milliseconds, can look precise and be wrong), and a rough bound
#: (slope +- 2 standard errors) moves the guess from half of it.
MIN_LEARN_SPREAD_S = 1.0
MIN_BOUND_SPREAD_S = 0.5
#: ...and short enough to follow another application that starts or stops.
LEARN_WINDOW_S = 30.0
#: Never assume the tenant refills slower than this: a floor keeps us probing.
MIN_REFILL_PER_S = 0.1
#: With no news for this long and nothing in flight, send one request to look.
MAX_BLIND_S = 5.0
#: Responses kept for the lowest-bound estimate: all those handled within the
#: overtaking window of the newest, however many a burst brings (up to this many).
RECENT_RESPONSES = 512
#: A lost request (no answer) may still have spent a token; count it this long.
GHOST_S = 1.0
#: Backoff for a 429 that says nothing about when to come back.
THROTTLE_BACKOFF_BASE_S = 0.5
THROTTLE_BACKOFF_MAX_S = 10.0


def default_reserve(limit: int) -> int:
    """Tokens left for the tenant's other applications.

    10% of the bucket, at least 5 (the threshold of Auth0's own guide), but at most
    ``(limit - 1) // 2`` so that a tiny bucket (Free: 2) stays usable at all.
    """
    return max(0, min(max(math.ceil(limit * 0.1), 5), (limit - 1) // 2))


def _guess_refill(limit: int) -> float:
    # Until learned, assume a slow refill.  Published plans refill at 15-100% of the
    # bucket per second; a tenth is below all of them, so a wrong guess only delays.
    # (A 429 before the rate is learned halves the guess: see ``on_throttled``.)
    return max(1.0, limit / 10.0)


@dataclass(frozen=True, slots=True)
class PacerState:
    """A read-only snapshot of what the client has learned about the tenant's bucket."""

    limit: int | None
    reserve: int | None
    remaining_estimate: float | None
    refill_per_s: float | None  # learned net refill (others' spending subtracted)
    refill_learned: bool
    in_flight: int
    rtt_s: float | None
    paused_until: float | None  # monotonic seconds, while a 429 pause lasts
    pause_reason: str | None


class Pacer:
    """Pure token-bucket estimator; the asyncio ``Scheduler`` wraps it."""

    def __init__(self, *, reserve: int | None = None, rng: random.Random | None = None) -> None:
        self._reserve_override = reserve
        self._rng = rng or random.Random()
        self.limit: int | None = None
        self._next_seq = 0
        self._in_flight: dict[int, float] = {}  # seq -> send time, in send order
        self._ghosts: dict[int, tuple[float, float]] = {}  # lost: seq -> (send time, expiry)
        # Recent responses: (server time, remaining, send time), oldest first.
        self._recent: deque[tuple[float, int, float]] = deque(maxlen=RECENT_RESPONSES)
        self._newest: tuple[float, int, int] | None = None  # (server time, remaining, seq)
        # The last answer that found the bucket full: (server time, seq, 429s and lost
        # requests so far, whether nothing else was on its way meanwhile).  Right
        # after it the bucket held exactly limit - 1.
        self._last_full: tuple[float, int, int, bool] | None = None
        self._lost = 0
        self._sends: deque[float] = deque(maxlen=2)  # the last two send times
        self._last_news_t: float | None = None
        self._fit = _RefillFit()
        self._learned: float | None = None
        self._guess: float | None = None
        self._refunded = 0  # 429s so far: requests that spent no token
        self._rtt_s: float | None = None
        self._rtt_var_s = 0.0
        # One request alone until a response with headers: at the start (nothing is
        # known) and after a 429 pause (so that resuming never bursts).
        self._probing = True
        self._probe_seq: int | None = None
        self._paused_until = 0.0
        self._pause_reason: str | None = None
        self._throttled_in_a_row = 0
        # After a 429, sends are spaced at twice the refill rate until the bucket is
        # back down at the reserve: what refilled during the pause is spent as a slope,
        # not dumped on the tenant at once.
        self._gentle = False

    # -- what the scheduler asks ------------------------------------------------

    @property
    def reserve(self) -> int | None:
        if self._reserve_override is not None:
            return self._reserve_override
        return None if self.limit is None else default_reserve(self.limit)

    @property
    def refill_per_s(self) -> float | None:
        if self.limit is None:
            return None
        if self._learned is not None:
            return self._learned
        return self._guess if self._guess is not None else _guess_refill(self.limit)

    @property
    def _overtake_s(self) -> float:
        # How far apart two sends can be and still reach the server in either order:
        # a generous bound on one-way jitter, from the round trip's variation.
        return 4 * self._rtt_var_s + 0.002

    def tokens_at(self, t: float) -> float | None:
        """Estimated tokens in the tenant's bucket at time ``t``, our sends counted."""
        refill = self.refill_per_s
        if self.limit is None or refill is None or not self._recent:
            return None
        self._expire_ghosts(t)
        unsure = sorted([*self._in_flight.values(), *(g[0] for g in self._ghosts.values())])
        overtake = self._overtake_s
        best = math.inf
        for t_server, remaining, sent in self._recent:
            projected = min(float(self.limit), remaining + refill * max(0.0, t - t_server))
            # Our requests the server may have handled after this one.
            after = len(unsure) - _count_at_most(unsure, sent - overtake)
            best = min(best, projected - after)
        return best

    def delay(self, now: float) -> float | None:
        """Seconds until the next request may go: 0 = now, None = wait for a response."""
        if now < self._paused_until:
            return self._paused_until - now
        if self._probing:
            alone = self._probe_seq is None or self._probe_seq not in self._in_flight
            return 0.0 if alone else None
        reserve = self.reserve or 0
        refill = self.refill_per_s or MIN_REFILL_PER_S
        spacing = 0.0
        if self._gentle and self._sends:
            spacing = self._sends[-1] + 0.5 / refill - now
        # The token is spent when the request reaches the server, half a round trip on;
        # when exactly is uncertain by the jitter, worth ``refill * overtake`` tokens.
        tokens = self.tokens_at(now + (self._rtt_s or 0.0) / 2) or 0.0
        margin = min(refill * self._overtake_s, (self.limit or 0) / 4)
        short = reserve + 1 + margin - tokens
        if short > 1e-9:
            self._gentle = False  # the bucket holds us back again: the slope is over
        elif spacing <= 1e-9:  # float dust must not become a sub-nanosecond timer
            return 0.0
        wait = max(spacing, short / max(refill, MIN_REFILL_PER_S))
        if self._last_news_t is not None and not self._in_flight:
            # Long silence with nothing in flight: look rather than trust a stale rate.
            blind_left = self._last_news_t + MAX_BLIND_S - now
            if blind_left <= 0:
                return 0.0
            wait = min(wait, blind_left)
        return wait

    # -- what the workers report ------------------------------------------------

    def on_send(self, now: float) -> int:
        seq = self._next_seq
        self._next_seq += 1
        self._in_flight[seq] = now
        self._sends.append(now)
        if self._probing:
            self._probe_seq = seq
        return seq

    def on_lost(self, seq: int, now: float) -> None:
        """No usable answer (connection reset, timeout, a proxy's page).

        The request may or may not have spent a token: it stays counted as spent
        (the safe side) for a while, until newer answers have surely counted it.
        """
        sent = self._in_flight.pop(seq, None)
        if sent is not None:
            self._lost += 1
            self._ghosts[seq] = (sent, now + max(GHOST_S, 2 * (self._rtt_s or 0.0)))

    def on_response(
        self, seq: int, now: float, rate: RateLimitHeaders | None, *, usable: bool = True
    ) -> None:
        """A response that is not a 429; ``rate`` is None when headers are missing.

        ``usable`` is False for answers that say the calls cannot work (a refused
        token or scope): they still tell the bucket's state, but one request at a
        time keeps going alone, so a run that is about to stop sends no burst.
        """
        if rate is None:
            self.on_lost(seq, now)
            return
        sent = self._in_flight.get(seq)
        if sent is None:
            return
        t_server = (sent + now) / 2
        # The bucket was full just before this request, so refill was wasted at the
        # cap and the span says nothing about the rate.  (Between our requests the
        # bucket only grows, so a bucket not full now was not full since the last.)
        filled = rate.remaining >= rate.limit - 1
        del self._in_flight[seq]
        self._observe_rtt(now - sent)
        self._throttled_in_a_row = 0
        if usable:
            self._probing = False
        if rate.limit != self.limit:
            self.limit = rate.limit
            self._fit.clear()
            self._last_full = None
        self._observe(t_server, rate.remaining, sent, now)
        newest = self._newest
        if newest is None or seq > newest[2]:
            self._newest = (t_server, rate.remaining, seq)
        if filled:
            self._raise_to(self._filled_since(newest, t_server, seq, rate))
            self._fit.break_line(since=t_server - 2 * self._overtake_s)
            return
        # ``remaining + tokens spent`` grows at the net refill rate (module doc).
        self._fit.add(t_server, rate.remaining + seq - self._refunded)
        fitted = self._fit.slope()
        if fitted is None:
            return
        slope, error, spread_s = fitted
        if error <= MAX_REL_ERROR * slope and spread_s >= MIN_LEARN_SPREAD_S:
            self._learned = max(MIN_REFILL_PER_S, slope)
            return
        guess = self.refill_per_s or 0.0
        if self._learned is not None or spread_s < MIN_BOUND_SPREAD_S:
            return  # (bursts within milliseconds reorder too much to say anything)
        if 0 < slope + 2 * error < guess:
            # Not precise yet, but surely slower than the guess: lower the guess now,
            # before sending at it drains the reserve.
            self._guess = max(MIN_REFILL_PER_S, slope + 2 * error, guess / 4)
        elif slope - 2 * error > guess:
            # Surely faster: a guess too low lets the bucket fill and wastes refill.
            self._guess = min(slope - 2 * error, 2.0 * (self.limit or 1))

    def on_throttled(
        self,
        seq: int,
        now: float,
        rate: RateLimitHeaders | None,
        *,
        retry_after_s: float | None,
        now_epoch_s: float,
    ) -> float:
        """A 429: pause every worker; returns the pause in seconds.

        The wait is ``Retry-After`` when present, else derived from the reset header
        (capped: if reset means "bucket full" we need not wait that long), else a
        bounded exponential backoff with jitter.
        """
        sent = self._in_flight.pop(seq, None)
        self._throttled_in_a_row += 1
        self._refunded += 1  # the rejected request spent nothing
        if self._learned is None and self.limit is not None:
            # Tripped while still guessing: the guess was too high.
            self._guess = max(MIN_REFILL_PER_S, (self.refill_per_s or 1.0) / 2)
        if rate is not None:
            self.limit = rate.limit
            if sent is not None:
                self._observe((sent + now) / 2, rate.remaining, sent, now)
        refill = self.refill_per_s or 1.0
        if retry_after_s is not None:
            pause, why = retry_after_s, f"429: waiting Retry-After {retry_after_s:g}s"
        elif rate is not None and rate.reset_epoch_s is not None:
            until_reset = rate.reset_epoch_s - now_epoch_s
            cap = max(1.0, ((self.reserve or 0) + 1) / refill)
            pause = min(max(until_reset, 1.0 / refill), cap)
            why = f"429: waiting {pause:.1f}s for x-ratelimit-reset"
        else:
            k = self._throttled_in_a_row - 1
            base = min(THROTTLE_BACKOFF_MAX_S, THROTTLE_BACKOFF_BASE_S * 2**k)
            pause = base * (0.5 + self._rng.random() / 2)
            why = f"429: backing off {pause:.1f}s"
        self._paused_until = max(self._paused_until, now + pause)
        self._pause_reason = why
        self._probing = True  # resume with one request, never a burst
        self._probe_seq = None
        self._gentle = True
        return pause

    # -- internals --------------------------------------------------------------

    def _filled_since(
        self,
        newest: tuple[float, int, int] | None,
        t_server: float,
        seq: int,
        rate: RateLimitHeaders,
    ) -> float:
        """The least refill rate that can have filled the bucket by ``t_server``.

        A guess below it would leave the bucket full and the rate unlearned.  Two
        bounds, both only between answers surely handled in order (in a burst they
        overtake each other): since the previous answer, which left fewer than
        ``remaining + 1`` tokens; and since the last full bucket, which left exactly
        ``limit - 1``, while the ``k`` requests sent since spent (tight where
        rounding makes the first useless: a bucket of 2).  The second needs paced
        requests: nothing on its way beside the last full one, and this one sent
        well after the one before it, so that the ``k`` were handled in between.
        """
        at_least = 0.0
        order_s = 2 * self._overtake_s
        if newest is not None and seq > newest[2] and t_server - newest[0] > order_s:
            at_least = (rate.limit - newest[1] - 1) / (t_server - newest[0])
        full = self._last_full
        paced = len(self._sends) < 2 or self._sends[-1] - self._sends[0] > order_s
        if (
            full is not None
            and full[3]  # nothing overlapped the last full answer
            and full[2] == self._refunded + self._lost  # no 429 or lost request since
            and paced
            and seq == self._next_seq - 1
            and t_server - full[0] > order_s
        ):
            spent = seq - full[1] - 1
            at_least = max(at_least, (1 + spent) / (t_server - full[0]))
        alone = not self._in_flight and seq == self._next_seq - 1
        self._last_full = (t_server, seq, self._refunded + self._lost, alone)
        # Published plans refill at most a bucket a second: never raise beyond twice that.
        return min(at_least, 2.0 * rate.limit)

    def _raise_to(self, at_least: float) -> None:
        if at_least > (self.refill_per_s or 0.0):
            self._guess = at_least
            if self._learned is not None:
                self._learned = at_least

    def _observe(self, t_server: float, remaining: int, sent: float, now: float) -> None:
        recent = self._recent
        recent.append((t_server, remaining, sent))
        # A response handled well before the newest one says nothing the newest does
        # not (it was surely handled first), and its projection only goes stale.
        newest = max(point[0] for point in recent)
        while len(recent) > 1 and recent[0][0] < newest - 2 * self._overtake_s:
            recent.popleft()
        self._last_news_t = now

    def _observe_rtt(self, rtt: float) -> None:
        # Mean and mean deviation, exponentially weighted, as TCP keeps them (RFC 6298).
        if self._rtt_s is None:
            self._rtt_s, self._rtt_var_s = rtt, rtt / 2
            return
        self._rtt_var_s = 0.75 * self._rtt_var_s + 0.25 * abs(rtt - self._rtt_s)
        self._rtt_s = 0.875 * self._rtt_s + 0.125 * rtt

    def _expire_ghosts(self, now: float) -> None:
        if self._ghosts:
            for seq in [seq for seq, (_, expiry) in self._ghosts.items() if expiry <= now]:
                del self._ghosts[seq]

    def state(self, now: float) -> PacerState:
        paused = self._paused_until if now < self._paused_until else None
        return PacerState(
            limit=self.limit,
            reserve=self.reserve,
            remaining_estimate=self.tokens_at(now),
            refill_per_s=self.refill_per_s,
            refill_learned=self._learned is not None,
            in_flight=len(self._in_flight),
            rtt_s=self._rtt_s,
            paused_until=paused,
            pause_reason=self._pause_reason if paused is not None else None,
        )


def _count_at_most(sorted_times: list[float], bound: float) -> int:
    return bisect.bisect_right(sorted_times, bound)


class _Segment:
    """Running sums of one unbroken stretch of points (times relative to ``origin``)."""

    __slots__ = ("n", "origin", "points", "st", "stt", "sty", "sy", "syy")

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.points: deque[tuple[float, float]] = deque()
        self.n = 0
        self.st = self.sy = self.stt = self.sty = self.syy = 0.0

    def account(self, t: float, y: float, sign: int) -> None:
        self.n += sign
        self.st += sign * t
        self.sy += sign * y
        self.stt += sign * t * t
        self.sty += sign * t * y
        self.syy += sign * y * y

    def centred(self) -> tuple[float, float, float]:
        """(Sxx, Sxy, Syy) about the segment's own means."""
        if self.n < 2:
            return 0.0, 0.0, 0.0
        return (
            self.stt - self.st * self.st / self.n,
            self.sty - self.st * self.sy / self.n,
            self.syy - self.sy * self.sy / self.n,
        )


class _RefillFit:
    """Least-squares slope of ``remaining + spent`` over time, in a sliding window.

    A full bucket breaks the line (refill is wasted at the cap), so points come in
    segments and the slope is pooled within segments: each segment keeps its own
    intercept, and a bucket that fills now and then does not wipe what was learned.
    The pacer trusts the slope once its standard error is within ``MAX_REL_ERROR``
    of it: a burst of answers within milliseconds says little, a paced second a lot.
    Running sums make each point O(1).
    """

    def __init__(self) -> None:
        self.segments: deque[_Segment] = deque()

    def clear(self) -> None:
        self.segments.clear()

    def break_line(self, since: float | None = None) -> None:
        """A full bucket at ``since``: start a new segment.

        Points from ``since`` on may have been handled before or after it (answers
        overtake each other), so they go: kept, whichever side got them would be a
        biased pick of a reordered burst.
        """
        if not self.segments:
            return
        last = self.segments[-1]
        while since is not None and last.points and last.points[-1][0] + last.origin >= since:
            old_t, old_y = last.points.pop()
            last.account(old_t, old_y, -1)
        if last.n:
            self.segments.append(_Segment(last.origin))

    def add(self, t_abs: float, y: float) -> None:
        if not self.segments:
            self.segments.append(_Segment(t_abs))
        last = self.segments[-1]
        t = t_abs - last.origin
        last.points.append((t, y))
        last.account(t, y, +1)
        while self.segments:  # forget points older than the window
            first = self.segments[0]
            if not first.points:
                self.segments.popleft()
                continue
            old_t, old_y = first.points[0]
            if t_abs - (old_t + first.origin) <= LEARN_WINDOW_S:
                break
            first.points.popleft()
            first.account(old_t, old_y, -1)
        if t > 4 * LEARN_WINDOW_S:
            # Hours into a run: move the origin up so the sums keep their precision.
            kept = [[(pt + seg.origin, py) for pt, py in seg.points] for seg in self.segments]
            self.segments.clear()
            for points in kept:
                self.break_line()
                for pt, py in points:
                    self.add(pt, py)

    def slope(self) -> tuple[float, float, float] | None:
        """The pooled slope, its standard error and the points' spread in time (as
        the width of a uniform span with the same variance), or None with too few."""
        sxx = sxy = syy = 0.0
        points = lines = 0
        for seg in self.segments:
            seg_xx, seg_xy, seg_yy = seg.centred()
            sxx, sxy, syy = sxx + seg_xx, sxy + seg_xy, syy + seg_yy
            points += seg.n
            lines += 1 if seg.n else 0
        freedom = points - lines - 1
        if points < MIN_LEARN_POINTS or freedom < 1 or sxx <= 1e-12:
            return None
        slope = sxy / sxx
        residual = max(0.0, syy - slope * sxy) / freedom
        # Whole-token rounding alone leaves a residual spread of about 0.3 tokens.
        standard_error = math.sqrt(max(residual, 1 / 12) / sxx)
        return slope, standard_error, math.sqrt(12 * sxx / points)
