"""The token bucket's arithmetic, with ``now`` passed in: no sleeping, no event loop."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncroles.simulator import BackgroundSpender, TokenBucket

T0 = 1_000.0


def drain(bucket: TokenBucket, now: float) -> int:
    """Take until refused; return how many were allowed."""
    allowed = 0
    while bucket.take(now):
        allowed += 1
    return allowed


def test_starts_full_and_allows_exactly_the_burst() -> None:
    bucket = TokenBucket(50, 16.0, T0)
    assert drain(bucket, T0) == 50
    assert bucket.remaining == 0
    assert not bucket.take(T0)


def test_refills_at_the_set_rate_after_the_burst() -> None:
    bucket = TokenBucket(50, 16.0, T0)
    drain(bucket, T0)
    # One second later exactly 16 tokens have arrived, no more.
    assert drain(bucket, T0 + 1.0) == 16
    # Half a second later, 8 more.
    assert drain(bucket, T0 + 1.5) == 8


def test_fractional_rate_accumulates_fractions() -> None:
    bucket = TokenBucket(10, 2.5, T0)
    drain(bucket, T0)
    assert drain(bucket, T0 + 1.0) == 2  # 2.5 tokens: two whole ones
    # The half token left over plus 0.2 s * 2.5 = 1 more whole token.
    assert drain(bucket, T0 + 1.2) == 1
    assert drain(bucket, T0 + 1.59) == 0
    assert drain(bucket, T0 + 1.61) == 1


def test_refill_never_exceeds_capacity() -> None:
    bucket = TokenBucket(5, 100.0, T0)
    drain(bucket, T0)
    assert drain(bucket, T0 + 3600) == 5


def test_refused_request_spends_nothing() -> None:
    bucket = TokenBucket(2, 1.0, T0)
    drain(bucket, T0)
    for _ in range(100):
        assert not bucket.take(T0 + 0.5)
    # The half token that accrued is still there: one more half second gives a token.
    assert bucket.take(T0 + 1.0)


def test_headers_next_token_mode() -> None:
    bucket = TokenBucket(10, 2.0, T0, reset_mode="next-token", epoch_offset_s=1_700_000_000.0)
    assert bucket.take(T0)
    assert bucket.remaining == 9
    # 9 tokens held: the 10th arrives 0.5 s later; rounded up to a whole epoch second.
    assert bucket.reset_epoch_s(T0) == math.ceil(1_700_000_000.0 + T0 + 0.5)
    drain(bucket, T0)
    assert bucket.remaining == 0
    assert bucket.reset_epoch_s(T0) == math.ceil(1_700_000_000.0 + T0 + 0.5)
    assert bucket.retry_after_s() == 1


def test_headers_full_mode() -> None:
    bucket = TokenBucket(10, 2.0, T0, reset_mode="full", epoch_offset_s=1_700_000_000.0)
    drain(bucket, T0)
    # Empty: full again after 10 / 2 = 5 s.
    assert bucket.reset_epoch_s(T0) == math.ceil(1_700_000_000.0 + T0 + 5.0)
    assert bucket.take(T0 + 0.5)  # a token arrived and went: still empty
    assert bucket.reset_epoch_s(T0 + 0.5) == math.ceil(1_700_000_000.0 + T0 + 0.5 + 5.0)


def test_reset_of_a_full_bucket_is_now() -> None:
    bucket = TokenBucket(10, 2.0, T0, epoch_offset_s=0.25)
    assert bucket.peek(T0) == 10
    assert bucket.reset_epoch_s(T0) == math.ceil(T0 + 0.25)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(16.0, 1), (1.0, 1), (0.5, 2), (0.3, 4), (2.5, 1), (0.1, 10)],
)
def test_retry_after_rounds_up_to_whole_seconds(rate: float, expected: int) -> None:
    bucket = TokenBucket(3, rate, T0)
    drain(bucket, T0)
    assert not bucket.take(T0)
    assert bucket.retry_after_s() == expected


def test_retry_after_counts_the_fraction_already_refilled() -> None:
    bucket = TokenBucket(3, 0.5, T0)
    drain(bucket, T0)
    # 1.5 s later 0.75 of a token is there: the rest takes 0.5 s -> 1 s.
    assert not bucket.take(T0 + 1.5)
    assert bucket.retry_after_s() == 1


def test_configure_changes_limits_from_now_on() -> None:
    bucket = TokenBucket(10, 1.0, T0)
    drain(bucket, T0)
    bucket.configure(10, 10.0, "next-token", T0 + 1.0)  # 1 token accrued at the old rate
    assert drain(bucket, T0 + 1.0) == 1
    assert drain(bucket, T0 + 1.5) == 5  # then 10/s
    bucket.configure(3, 10.0, "next-token", T0 + 60)
    assert drain(bucket, T0 + 60) == 3  # shrunk bucket: what no longer fits is gone


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 60),
    rate=st.floats(0.05, 200.0),
    steps=st.lists(st.tuples(st.floats(0.0, 2.0), st.integers(0, 80)), min_size=1, max_size=40),
)
def test_never_allows_more_than_burst_plus_refill(
    capacity: int, rate: float, steps: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(capacity, rate, T0)
    now = T0
    allowed = 0
    for dt, attempts in steps:
        now += dt
        for _ in range(attempts):
            if bucket.take(now):
                allowed += 1
            else:
                # A refusal means less than one whole token is held.
                assert bucket.tokens < 1.0
            assert 0.0 <= bucket.tokens <= capacity
            assert bucket.remaining == math.floor(bucket.tokens)
            wait = bucket.reset_epoch_s(now) - now
            assert wait >= 0
    assert allowed <= capacity + rate * (now - T0) + 1e-6


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(2, 60),
    rate=st.floats(0.5, 50.0),
    dts=st.lists(st.floats(0.001, 1.0), min_size=1, max_size=40),
)
def test_greedy_client_gets_everything_that_refilled(
    capacity: int, rate: float, dts: list[float]
) -> None:
    """When the bucket never overflows, a greedy client gets the burst plus the refill."""
    bucket = TokenBucket(capacity, rate, T0)
    now = T0
    allowed = drain(bucket, now)
    for dt in dts:
        # Keep the refill of one step below the capacity so nothing is capped away.
        dt = min(dt, (capacity - 1) / rate)
        now += dt
        allowed += drain(bucket, now)
    # Less than one token is ever left unspent (1e-9: float rounding of the sum).
    assert allowed > capacity + rate * (now - T0) - 1.0 - 1e-9


def test_background_spender_spends_evenly_below_the_refill() -> None:
    bucket = TokenBucket(10, 5.0, T0)
    spender = BackgroundSpender()
    spender.advance(bucket, 2.0, T0)  # switched on: first token at T0 + 0.5
    assert spender.advance(bucket, 2.0, T0 + 10.0) == 20
    assert spender.spent == 20
    assert spender.refused == 0
    # Its spending leaves the bucket full for everyone else (refill 5/s > 2/s).
    assert bucket.peek(T0 + 10.2) == 10


def test_background_spender_never_spends_more_than_the_bucket_allows() -> None:
    bucket = TokenBucket(10, 1.0, T0)
    spender = BackgroundSpender()
    spender.advance(bucket, 4.0, T0)
    spender.advance(bucket, 4.0, T0 + 10.0)
    assert spender.spent + spender.refused == 40  # one tick every 0.25 s
    # The burst plus the refill, at most.
    assert spender.spent <= 10 + 10
    assert spender.spent >= 10 + 10 - 1
    assert spender.refused > 0


def test_background_spender_switched_off_spends_nothing() -> None:
    bucket = TokenBucket(10, 1.0, T0)
    spender = BackgroundSpender()
    assert spender.advance(bucket, 0.0, T0 + 100) == 0
    assert bucket.peek(T0 + 100) == 10
