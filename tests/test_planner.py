"""The planner's arithmetic: plain values in, a ``Plan`` out; no I/O, no clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncroles.errors import UsageError
from asyncroles.pacing import PacerState
from asyncroles.planner import (
    MIN_SAVING,
    Pace,
    by_role_requests,
    choose,
    choose_early,
    duration_s,
    listing_requests,
    role_pages,
)


def state(**fields: object) -> PacerState:
    base: dict[str, object] = {
        "limit": 50,
        "reserve": 5,
        "remaining_estimate": 30.0,
        "refill_per_s": 16.0,
        "refill_learned": True,
        "in_flight": 0,
        "rtt_s": 0.1,
        "paused_until": None,
        "pause_reason": None,
    }
    base.update(fields)
    return PacerState(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("roles", "pages"), [(0, 1), (1, 1), (100, 1), (101, 2), (250, 3), (1000, 10)]
)
def test_listing_pages_of_100(roles: int, pages: int) -> None:
    assert listing_requests(roles) == pages


@pytest.mark.parametrize(
    ("members", "take", "pages"),
    [(0, 100, 1), (1, 100, 1), (100, 100, 1), (101, 100, 2), (1000, 50, 20), (6502, 100, 66)],
)
def test_an_empty_role_still_costs_one_page(members: int, take: int, pages: int) -> None:
    assert role_pages(members, take) == pages


def test_by_role_requests_skips_roles_the_census_read_whole() -> None:
    members = [0, 5, 100, 101, 2500]
    assert by_role_requests(members, 100) == 1 + 1 + 1 + 2 + 25
    assert by_role_requests(members, 50) == 1 + 1 + 2 + 3 + 50
    assert by_role_requests(members, 100, prefetched=100) == 2 + 25


def test_whole_tenant_without_a_list_goes_by_role() -> None:
    plan = choose(None, [10, 2000, 0])
    assert plan.choice == "by-role"
    assert plan.per_user_requests is None
    assert plan.by_role_requests == 1 + 1 + 20 + 1
    assert "no list of users" in plan.reason
    assert plan.memberships == 2010
    assert plan.largest_role == 2000
    assert plan.chain == 20


def test_many_users_go_by_role_and_say_how_many_times_fewer() -> None:
    plan = choose(1_000_000, [120_000] * 20, take=100, planning_spent=21)
    assert plan.choice == "by-role"
    assert plan.by_role_requests == 1 + 20 * 1200
    assert plan.per_user_requests == 1_000_000
    assert plan.planning_requests == 21
    assert "42x fewer" in plan.reason


def test_savings_up_to_min_saving_stay_per_user() -> None:
    members = [10] * 30  # by-role: 1 listing page + 30 pages
    by_role = 31
    at_margin = choose(by_role + MIN_SAVING, members)
    assert at_margin.choice == "per-user"
    assert "tells deleted users apart" in at_margin.reason
    assert choose(by_role + MIN_SAVING + 1, members).choice == "by-role"
    assert choose(by_role, members).choice == "per-user"  # a tie


def test_listed_and_prefetched_count_only_what_is_left() -> None:
    plan = choose(500, [50, 80, 150, 1200], listed=True, prefetched=100)
    assert plan.by_role_requests == 2 + 12
    assert plan.chain == 12
    assert plan.choice == "by-role"


def test_take_must_be_positive() -> None:
    with pytest.raises(UsageError):
        choose(10, [1], take=0)


def test_choose_early_is_certain_only_when_by_role_cannot_win() -> None:
    # Nothing known: only a handful of ids is certain (and costs no request).
    few = choose_early(MIN_SAVING, None)
    assert few is not None
    assert few.choice == "per-user"
    assert few.by_role_requests is None
    assert choose_early(MIN_SAVING + 1, None) is None
    assert choose_early(None, None) is None
    # 50 roles: by-role needs at least 50 more requests (a count or a page per role).
    bound = choose_early(70, 50, planning_spent=1)
    assert bound is not None
    assert bound.choice == "per-user"
    assert bound.by_role_requests == 50
    assert bound.by_role_bound
    assert bound.planning_requests == 1
    assert choose_early(71, 50) is None
    assert choose_early(79, 50, listing_left=9) is not None


def test_duration_spends_the_burst_at_once_then_the_refill_rate() -> None:
    pace = Pace(refill_per_s=16.0, burst=45, rtt_s=0.15)
    assert duration_s(45, pace) == 0.0
    assert duration_s(45 + 160, pace) == pytest.approx(10.0)
    # by-role follows one role's cursor page after page: a chain of round trips.
    assert duration_s(50, pace, chain=100) == pytest.approx(15.0)


def test_pace_from_the_clients_state() -> None:
    assert Pace.from_state(state(limit=None, refill_per_s=None)) is None
    pace = Pace.from_state(state())
    assert pace == Pace(16.0, 25, 0.1, True)
    fresh = Pace.from_state(state(), full_bucket=True)
    assert fresh is not None
    assert fresh.burst == 45


def test_plan_seconds_and_json() -> None:
    plan = choose(10_000, [5000, 300], pace=Pace(16.0, 45, 0.1, True))
    assert plan.per_user_s == pytest.approx((10_000 - 45) / 16.0)
    # 54 requests fit the burst, but the big role's 50 pages are 50 round trips.
    assert plan.by_role_s == pytest.approx(max((1 + 50 + 3 - 45) / 16.0, 50 * 0.1))
    data = plan.to_json()
    assert data["choice"] == "by-role"
    assert data["per_user"]["requests"] == 10_000
    assert data["by_role"] == {"requests": 54, "at_least": False, "seconds": 5.0}
    assert data["rate"] == {"refill_per_s": 16.0, "burst": 45, "learned": True}
    without = choose(10, [1])
    assert without.per_user_s is None
    assert without.to_json()["rate"] is None


@given(
    users=st.one_of(st.none(), st.integers(0, 10**7)),
    members=st.lists(st.integers(0, 10**6), max_size=1000),
    take=st.sampled_from([50, 100]),
)
def test_the_issue_formula_and_the_choice_rule(
    users: int | None, members: list[int], take: int
) -> None:
    plan = choose(users, members, take=take)
    formula = math.ceil(len(members) / 100) or 1
    formula += sum(max(1, math.ceil(m / take)) for m in members)
    assert plan.by_role_requests == formula
    if users is None:
        assert plan.choice == "by-role"
    else:
        assert (plan.choice == "by-role") == (users - formula > MIN_SAVING)
