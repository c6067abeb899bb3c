"""The by-role route and ``auto`` against simulated tenants: exact answers, and the
request counts of the formula (``ceil(roles/100) + sum(max(1, ceil(members/take)))``),
asserted from the simulator's side.  No sleeps: mid-run events hook into the
client's ``_request`` (a recording subclass, not a mock) or move the simulator's clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from asyncroles import Client, Plan, RetryPolicy, Role, UsageError, UserRoles
from asyncroles.byrole import RoleMap, _blame
from asyncroles.planner import MIN_SAVING, Strategy
from asyncroles.protocol import Decoded, Kind
from asyncroles.simulator import Simulator
from tests.conftest import StartSimulator

ROLES = "GET /api/v2/roles"
ROLE_USERS = "GET /api/v2/roles/{id}/users"
USER_ROLES = "GET /api/v2/users/{id}/roles"
FAST = {"bucket": 100, "refill_per_s": 5000.0}
QUICK_RETRY = RetryPolicy(max_attempts=12, base_delay_s=0.01, max_delay_s=0.05)

Hook = Callable[[str, Decoded], object]


class HookedClient(Client):
    """A client that calls ``hook(path, decoded)`` after each answer, before its caller."""

    def __init__(self, *args: Any, hook: Hook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hook = hook

    async def _request(self, method: str, path: str, *, json: Any = None) -> Decoded:
        decoded = await super()._request(method, path, json=json)
        if self.hook is not None:
            self.hook(path, decoded)
        return decoded


def client_of(sim: Simulator, **kwargs: Any) -> HookedClient:
    kwargs.setdefault("retry", QUICK_RETRY)
    return HookedClient(
        sim.domain, client_id=sim.client_id, client_secret=sim.client_secret, **kwargs
    )


async def fetch(
    client: Client,
    user_ids: Iterable[str] | None,
    strategy: Strategy,
    plan: Plan | None = None,
) -> dict[str, UserRoles]:
    results: dict[str, UserRoles] = {}
    ids = None if user_ids is None else list(user_ids)
    async with contextlib.aclosing(client.fetch_roles(ids, strategy=strategy, plan=plan)) as it:
        async for result in it:
            assert result.user_id not in results, "a user answered twice"
            results[result.user_id] = result
    if ids is not None:
        assert set(results) == set(ids)
    return results


def members(sim: Simulator) -> dict[str, int]:
    return {role.id: len(sim.tenant.members_of(role.id)) for role in sim.tenant.roles}


def pages(counts: Iterable[int], take: int = 100) -> int:
    return sum(max(1, math.ceil(m / take)) for m in counts)


def role_path_of(sim: Simulator, role_id: str) -> str:
    return f"/api/v2/roles/{role_id}/users?"


def assert_matches_truth(sim: Simulator, results: dict[str, UserRoles]) -> None:
    """Every existing user's exact role set; by-role says ``ok, ()`` for the rest."""
    truth = sim.tenant.truth()
    by_id = {role.id: role for role in sim.tenant.roles}
    for user_id, result in results.items():
        assert result.status == "ok", result
        assert result.roles is not None
        held = truth.get(user_id, frozenset())
        assert {r.id for r in result.roles} == held, user_id
        for role in result.roles:
            listed = by_id[role.id]
            assert (role.name, role.description) == (listed.name, listed.description)
        names = [(r.name, r.id) for r in result.roles]
        assert names == sorted(names), "roles sorted by name"


@pytest.mark.parametrize(
    ("users", "roles", "seed", "sample"),
    [
        (400, 60, 1, None),  # every user, nonexistent ids too
        (3000, 250, 7, 1200),  # three listing pages; some roles empty
        (20000, 50, 3, 1500),  # roles of more than 1000 members
    ],
)
async def test_both_routes_give_identical_records(
    start_simulator: StartSimulator, users: int, roles: int, seed: int, sample: int | None
) -> None:
    sim = await start_simulator(users=users, roles=roles, seed=seed, **FAST)
    every = list(sim.tenant.user_ids)
    # The first 50 users hold every awkward id form; user 7 holds 50 roles.
    ids = every if sample is None else every[:50] + every[50 :: len(every) // sample]
    ids += ["auth0|does-not-exist", "weird/%2F+ ü|gone"]
    async with client_of(sim) as client:
        per_user = await fetch(client, ids, "per-user")
        by_role = await fetch(client, ids, "by-role")
    for user_id in ids:
        a, b = per_user[user_id], by_role[user_id]
        if a.status == "not_found":
            # The documented limit: by-role cannot tell a deleted user from one
            # without roles.
            assert b.status == "ok"
            assert b.roles == ()
            continue
        assert a.status == b.status == "ok"
        assert a.roles is not None
        assert b.roles is not None
        assert set(a.roles) == set(b.roles), user_id  # same id, name and description
        assert len(b.roles) == len(a.roles)
    assert len(by_role[every[7]].roles or ()) == min(50, roles)
    assert_matches_truth(sim, by_role)
    counts = members(sim)
    assert sim.stats.count_for(ROLES) == math.ceil(roles / 100)
    assert sim.stats.count_for(ROLE_USERS) == pages(counts.values())
    if users >= 20000:
        assert max(counts.values()) > 1000


async def test_without_input_every_user_holding_a_role(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=3000, roles=250, seed=2, **FAST)
    async with client_of(sim) as client:
        results = await fetch(client, None, "by-role")
        stats = client.stats
    truth = sim.tenant.truth()
    assert set(results) == {user_id for user_id, held in truth.items() if held}
    assert_matches_truth(sim, results)
    counts = members(sim)
    assert 0 in counts.values()  # an empty role still costs its one page
    assert sim.stats.count_for(ROLES) == 3
    assert sim.stats.count_for(ROLE_USERS) == pages(counts.values())
    assert sim.stats.count_for(USER_ROLES) == 0
    assert stats.users_ok == len(results)
    assert stats.requests == 3 + pages(counts.values())


async def test_auto_stays_per_user_for_a_few_ids_of_a_large_tenant(
    start_simulator: StartSimulator,
) -> None:
    sim = await start_simulator(users=20000, roles=50, **FAST)
    few = [*sim.tenant.user_ids[: MIN_SAVING - 1], "auth0|nobody"]
    async with client_of(sim) as client:
        results = await fetch(client, few, "auto")
        assert results["auth0|nobody"].status == "not_found"  # per-user's answer
        assert sim.stats.api_requests == len(few)  # no planning request at all
        # 70 ids against 50 roles: by-role needs at least 50, so per-user after
        # one planning request (the first page of the role list).
        more = list(sim.tenant.user_ids[100:170])
        before = sim.stats.api_requests
        await fetch(client, more, "auto")
    assert sim.stats.api_requests - before == 1 + len(more)
    assert sim.stats.count_for(ROLES) == 1
    assert sim.stats.count_for(ROLE_USERS) == 0


async def test_auto_goes_by_role_for_a_whole_tenant(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=3000, roles=50, **FAST)
    ids = list(sim.tenant.user_ids)
    async with client_of(sim) as client:
        results = await fetch(client, ids, "auto")
    assert_matches_truth(sim, results)
    counts = members(sim).values()
    assert sim.stats.count_for(USER_ROLES) == 0
    assert sim.stats.count_for(ROLES) == 1  # listed once: the census is reused
    # One count per role (which reads roles of at most 100 members whole), then
    # the bigger roles in checkpoint pages.
    big = [m for m in counts if m > 100]
    assert big
    assert sim.stats.count_for(ROLE_USERS) == len(counts) + pages(big)


async def test_auto_without_input_is_by_role_with_no_planning(
    start_simulator: StartSimulator,
) -> None:
    sim = await start_simulator(users=1000, roles=40, **FAST)
    async with client_of(sim) as client:
        results = await fetch(client, None, "auto")
    assert_matches_truth(sim, results)
    assert sim.stats.count_for(ROLE_USERS) == pages(members(sim).values())


async def test_a_plan_is_reused_by_the_fetch(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=3000, roles=50, **FAST)
    ids = list(sim.tenant.user_ids)
    async with client_of(sim) as client:
        plan = await client.plan(len(ids))
        assert plan.choice == "by-role"
        assert plan.roles == 50
        assert plan.planning_requests == 1 + 50
        spent = sim.stats.api_requests
        results = await fetch(client, ids, "auto", plan=plan)
    assert_matches_truth(sim, results)
    assert sim.stats.api_requests - spent == plan.by_role_requests
    assert sim.stats.count_for(ROLES) == 1


async def test_take_falls_back_to_50_once(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=3000, roles=50, max_take=50, **FAST)
    async with client_of(sim) as client:
        results = await fetch(client, None, "by-role")
    assert_matches_truth(sim, results)
    # The first page goes alone until a take works: one 400, not one per reader.
    assert sim.stats.count_for(ROLE_USERS, 400) == 1
    assert sim.stats.count_for(ROLE_USERS) == 1 + pages(members(sim).values(), take=50)


async def test_a_role_deleted_mid_run_is_dropped(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=3000, roles=50, **FAST)
    counts = members(sim)
    doomed = max(counts, key=lambda role_id: counts[role_id])  # many pages: deleted between
    only_doomed = [u for u, held in sim.tenant.truth().items() if held == {doomed}]
    assert only_doomed

    def delete_after_first_page(path: str, decoded: Decoded) -> None:
        if path.startswith(role_path_of(sim, doomed)) and "from=" not in path:
            sim.tenant.delete_role(doomed)

    ids = list(sim.tenant.user_ids)
    async with client_of(sim, hook=delete_after_first_page) as client:
        with_input = await fetch(client, ids, "by-role")
    assert sim.stats.count_for(ROLE_USERS, 404) == 1
    assert_matches_truth(sim, with_input)  # truth now: the role is gone
    assert all(with_input[u].roles == () for u in only_doomed)
    assert not any(doomed in {r.id for r in res.roles or ()} for res in with_input.values())
    async with client_of(sim) as client:
        without = await fetch(client, None, "by-role")
    assert not set(only_doomed) & set(without)


async def test_an_expired_cursor_restarts_the_role(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=3000, roles=30, **FAST)
    counts = members(sim)
    big = max(counts, key=lambda role_id: counts[role_id])
    assert counts[big] > 300
    aged = False

    def age_cursors_once(path: str, decoded: Decoded) -> None:
        nonlocal aged
        if not aged and path.startswith(role_path_of(sim, big)) and "from=" in path:
            aged = True
            sim.clock.advance(86400 + 60)  # cursors live 24 h (and so does the token)

    async with client_of(sim, concurrency=1, hook=age_cursors_once) as client:
        results = await fetch(client, None, "by-role")
    assert_matches_truth(sim, results)
    assert sim.stats.count_for(ROLE_USERS, 400) == 1
    # The big role: two pages, the refused third, then all of it again.
    assert sim.stats.count_for(ROLE_USERS, 200) == pages(counts.values()) + 2


async def test_a_role_deleted_while_planning_is_left_out(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=2000, roles=30, **FAST)
    doomed = sim.tenant.roles[3].id

    def delete_after_listing(path: str, decoded: Decoded) -> None:
        if path.startswith("/api/v2/roles?"):
            sim.tenant.delete_role(doomed)

    ids = list(sim.tenant.user_ids)
    async with client_of(sim, hook=delete_after_listing) as client:
        plan = await client.plan(len(ids))
        assert plan.roles == 29
        assert plan.census is not None
        assert doomed not in {role.id for role in plan.census.roles}
        results = await fetch(client, ids, "auto", plan=plan)
    assert sim.stats.count_for(ROLE_USERS, 404) == 1
    assert_matches_truth(sim, results)


async def test_no_input_ids_reads_nothing(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=100, roles=10, **FAST)
    async with client_of(sim) as client:
        for strategy in ("by-role", "auto"):
            assert await fetch(client, [], strategy) == {}
    assert sim.stats.api_requests == 0


def test_a_400_blames_the_cursor_or_the_take() -> None:
    def rejected(body: dict[str, Any]) -> Decoded:
        return Decoded(Kind.REJECTED, 400, body, None, None, f"HTTP 400: {body['message']}")

    expired = {"message": "The 'from' parameter is invalid or has expired.", "errorCode": "x"}
    assert _blame(rejected(expired)) == "cursor"
    assert _blame(rejected({"message": "Bad paging", "errorCode": "invalid_paging"})) == "cursor"
    too_big = "Query validation error: 'Value 100 is greater than maximum 50' on property take"
    assert _blame(rejected({"message": too_big})) == "take"
    assert _blame(rejected({"message": "Bad Request"})) == "other"


async def test_a_role_renamed_mid_run_keeps_its_listed_name(
    start_simulator: StartSimulator,
) -> None:
    sim = await start_simulator(users=500, roles=20, **FAST)
    target = sim.tenant.roles[0]

    def rename_after_listing(path: str, decoded: Decoded) -> None:
        if path.startswith("/api/v2/roles?") and decoded.kind is Kind.OK:
            sim.tenant.rename_role(target.id, "Renamed Meanwhile")

    async with client_of(sim, hook=rename_after_listing) as client:
        results = await fetch(client, None, "by-role")
    names = {r.name for res in results.values() for r in res.roles or () if r.id == target.id}
    assert names == {target.name}


async def test_strategy_misuse_is_a_usage_error(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=10, roles=5, **FAST)
    async with client_of(sim) as client:
        with pytest.raises(UsageError, match="needs user ids"):
            await fetch(client, None, "per-user")
        with pytest.raises(UsageError, match="unknown strategy"):
            await fetch(client, ["a"], "fastest")  # type: ignore[arg-type]
    assert sim.stats.api_requests == 0


def test_role_map_dedupes_drops_filters_and_shares() -> None:
    roles = [Role("rol_a", "Alpha"), Role("rol_b", "Beta", "b"), Role("rol_c", "Gamma")]
    open_map = RoleMap(roles)
    open_map.add(2, ["u1", "u2"])
    open_map.add(0, ["u1"])
    open_map.add(0, ["u1"])  # a role read again after a restart
    open_map.add(1, ["u3"])
    open_map.drop(1)
    out = {r.user_id: r.roles for r in open_map.results()}
    assert out == {"u1": (roles[0], roles[2]), "u2": (roles[2],)}  # u3 held only Beta
    wanted = RoleMap(roles, {"u1": 0, "u9": 0})
    wanted.add(0, ["u1", "u2"])
    assert {r.user_id: r.roles for r in wanted.results()} == {"u1": (roles[0],), "u9": ()}
    # Users with the same roles share one mask object (compact memory).
    many = RoleMap(roles)
    users = [f"user{i}" for i in range(1000)]
    many.add(0, users)
    many.add(2, users)
    assert len({id(mask) for mask in many._masks.values()}) == 1


async def test_plan_command_prints_both_routes(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=2000, roles=50, **FAST)
    ids = list(sim.tenant.user_ids[:1500])
    users_file = tmp_path / "users.txt"
    users_file.write_text("\n".join([*ids, ids[0]]) + "\n", encoding="utf-8")  # a duplicate
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH0_")}
    env.update(
        AUTH0_DOMAIN=sim.domain,
        AUTH0_CLIENT_ID=sim.client_id,
        AUTH0_CLIENT_SECRET=sim.client_secret,
    )
    counts = members(sim).values()

    async def plan(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asyncroles", "plan", *args,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await plan("-i", str(users_file), "--json", "-q")
    assert code == 0, err
    data = json.loads(out)
    assert data["users"] == 1500
    assert data["per_user"]["requests"] == 1500
    assert data["by_role"]["requests"] == 1 + pages(counts)  # what a fresh by-role run costs
    assert data["choice"] == "by-role"
    assert data["planning_requests"] == 1 + 50
    code, out, err = await plan("--rate", "16")
    assert code == 0, err
    assert "per-user  needs a list of users" in out
    assert f"by-role   {1 + pages(counts):,} requests" in out
    assert "16.0 requests/s, as given" in out
    assert sim.stats.count_for(USER_ROLES) == 0  # planning fetched no mapping
