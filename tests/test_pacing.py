"""The pacer on virtual time: no sockets, no sleeping (tests/bucket_model.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncroles.pacing import Pacer, default_reserve
from asyncroles.ratelimit import RateLimitHeaders
from tests.bucket_model import run_model

# The three scenarios of the engine issue, plus small and slow tenants.
SCENARIOS = [
    {"limit": 50, "refill_per_s": 16.0, "latency_s": 0.06, "jitter_s": 0.02},
    {"limit": 100, "refill_per_s": 100.0, "latency_s": 0.15, "jitter_s": 0.04},
    {"limit": 10, "refill_per_s": 2.0, "latency_s": 0.06, "jitter_s": 0.02},
    {"limit": 10, "refill_per_s": 2.5, "latency_s": 0.3, "jitter_s": 0.1},
    {"limit": 50, "refill_per_s": 50.0, "latency_s": 0.02, "jitter_s": 0.0},
]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("reset_mode", ["next-token", "full"])
@pytest.mark.parametrize("retry_after", [True, False])
def test_alone_on_the_tenant_runs_at_the_ceiling_with_no_429(
    scenario: dict[str, float], reset_mode: str, retry_after: bool
) -> None:
    result = run_model(
        requests=int(scenario["refill_per_s"] * 60) + 100,
        reset_mode=reset_mode,
        retry_after=retry_after,
        **scenario,  # type: ignore[arg-type]
    )
    assert result.throttled == 0
    assert result.virtual_s <= 1.05 * result.bound_s + 0.5


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    limit=st.integers(min_value=2, max_value=200),
    # Auth0's published Management API limits refill at 2.5/s and up.
    refill=st.floats(min_value=1.0, max_value=150.0),
    latency=st.floats(min_value=0.001, max_value=0.3),
    jitter_share=st.floats(min_value=0.0, max_value=0.5),
    workers=st.integers(min_value=1, max_value=64),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_never_trips_the_limit_alone(
    limit: int, refill: float, latency: float, jitter_share: float, workers: int, seed: int
) -> None:
    result = run_model(
        requests=max(50, int(refill * 20)),
        limit=limit,
        refill_per_s=refill,
        latency_s=latency,
        jitter_s=latency * jitter_share,
        workers=workers,
        seed=seed,
    )
    assert result.throttled == 0


@pytest.mark.parametrize("refill", [0.2, 0.5])
def test_slower_than_any_published_plan_costs_a_few_429s_at_most(refill: float) -> None:
    # The first guess of the rate is too high here; a 429 halves it until learned.
    result = run_model(requests=40, limit=2, refill_per_s=refill, latency_s=0.25, workers=4)
    assert result.throttled <= 3


def test_shares_the_bucket_with_another_application() -> None:
    alone_rate = 16.0
    result = run_model(
        requests=2000,
        limit=50,
        refill_per_s=alone_rate,
        latency_s=0.06,
        jitter_s=0.02,
        other_rps=4.0,
    )
    assert result.throttled <= 0.01 * 2000
    # The run takes the time of what is left to us: 12 of 16 tokens/s.
    shared_bound = (2000 - 45) / (alone_rate - 4.0)
    assert result.virtual_s <= 1.05 * shared_bound


def test_reserve_defaults() -> None:
    assert default_reserve(50) == 5  # at least 5: the guide's threshold
    assert default_reserve(100) == 10  # 10% of the bucket
    assert default_reserve(1000) == 100
    assert default_reserve(10) == 4  # never more than (limit - 1) // 2
    assert default_reserve(2) == 0  # a Free tenant's bucket stays usable


def headers(limit: int, remaining: int, reset: int | None = None) -> RateLimitHeaders:
    return RateLimitHeaders(limit, remaining, reset)


def test_first_request_goes_alone_and_starts_from_the_headers() -> None:
    pacer = Pacer()
    assert pacer.delay(0.0) == 0.0
    first = pacer.on_send(0.0)
    assert pacer.delay(0.0) is None  # wait for the first answer: nothing is known yet
    pacer.on_response(first, 0.1, headers(50, 12))
    # The tenant says 12 left, not a full 50: spend down to the reserve of 5, no more.
    sent = 0
    while pacer.delay(0.1) == 0.0:
        pacer.on_send(0.1)
        sent += 1
    assert 6 <= sent <= 7


def test_a_429_pauses_everyone_then_resumes_with_one_request() -> None:
    pacer = Pacer()
    first = pacer.on_send(0.0)
    pacer.on_response(first, 0.05, headers(50, 40))
    ticket = pacer.on_send(0.05)
    pause = pacer.on_throttled(
        ticket, 0.1, headers(50, 0, 1_000), retry_after_s=2.0, now_epoch_s=999.0
    )
    assert pause == 2.0
    assert pacer.delay(0.1) == pytest.approx(2.0)
    assert pacer.delay(2.0) == pytest.approx(0.1)
    assert pacer.state(1.0).pause_reason == "429: waiting Retry-After 2s"
    probe = pacer.on_send(2.1)
    assert pacer.delay(2.1) is None  # no burst: the probe goes alone
    pacer.on_response(probe, 2.2, headers(50, 30))
    # 30 tokens are back, but they are spent as a slope (twice the refill rate),
    # not dumped at once on a tenant whose other application just ran it dry.
    refill = pacer.refill_per_s
    assert refill is not None
    assert pacer.delay(2.1 + 0.5 / refill) == 0.0
    pacer.on_send(2.1 + 0.5 / refill)
    assert pacer.delay(2.1 + 0.5 / refill) == pytest.approx(0.5 / refill)


@pytest.mark.parametrize(
    ("retry_after", "reset", "expected_max"),
    [(None, 1_001, 1.0), (None, 1_010, 2.5), (None, None, 0.5)],
)
def test_429_pause_without_retry_after(
    retry_after: float | None, reset: int | None, expected_max: float
) -> None:
    pacer = Pacer(rng=random.Random(1))
    first = pacer.on_send(0.0)
    pacer.on_response(first, 0.05, headers(50, 40))
    ticket = pacer.on_send(0.1)
    pause = pacer.on_throttled(
        ticket, 0.2, headers(50, 0, reset), retry_after_s=retry_after, now_epoch_s=1_000.0
    )
    # A reset that means "bucket full" (10 s away) must not stall us for 10 s.
    assert 0 < pause <= expected_max


def test_429_backoff_without_any_hint_grows_and_is_bounded() -> None:
    pacer = Pacer(rng=random.Random(2))
    pauses = []
    now = 0.0
    for _ in range(12):
        ticket = pacer.on_send(now)
        pauses.append(pacer.on_throttled(ticket, now, None, retry_after_s=None, now_epoch_s=now))
        now += pauses[-1]
    assert pauses[3] > pauses[0]
    assert max(pauses) <= 10.0


def test_learns_the_refill_rate_from_remaining() -> None:
    result_pacer = Pacer()
    # A tenant refilling 16/s; we send 20/s for 5 s from a bucket of 50.
    tokens, t, sent_at = 50.0, 0.0, []
    for _ in range(100):
        tokens = min(50.0, tokens + 16.0 * 0.05)
        seq = result_pacer.on_send(t)
        tokens -= 1
        result_pacer.on_response(seq, t + 0.01, headers(50, int(tokens)))
        sent_at.append(t)
        t += 0.05
    assert result_pacer.refill_per_s == pytest.approx(16.0, rel=0.05)
