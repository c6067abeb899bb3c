"""The engine against a simulated tenant over loopback: assert on outputs and on
what the simulator saw, never on wall-clock durations."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from asyncroles import Client, NotFoundError, RetryEvent, RetryPolicy, ScopeError, UserRoles
from asyncroles.errors import CredentialsError
from asyncroles.simulator import Simulator
from tests.conftest import StartSimulator

USER_ROLES = "GET /api/v2/users/{id}/roles"
FAST = {"bucket": 20, "refill_per_s": 400.0}  # a real bucket, but quick to refill
QUICK_RETRY = RetryPolicy(max_attempts=12, base_delay_s=0.01, max_delay_s=0.05)


def client_of(sim: Simulator, **kwargs: object) -> Client:
    kwargs.setdefault("retry", QUICK_RETRY)
    return Client(
        sim.domain,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        **kwargs,  # type: ignore[arg-type]
    )


async def fetch_all(
    client: Client,
    user_ids: list[str],
    after: dict[int, Callable[[], object]] | None = None,
) -> dict[str, UserRoles]:
    """Every result by user id; ``after[n]()`` runs once n results are in."""
    results: dict[str, UserRoles] = {}
    async with contextlib.aclosing(client.fetch_roles(user_ids)) as stream:
        async for result in stream:
            assert result.user_id not in results, "a user answered twice"
            results[result.user_id] = result
            hook = (after or {}).get(len(results))
            if hook is not None:
                outcome = hook()
                if hasattr(outcome, "__await__"):
                    await outcome  # type: ignore[misc]
    assert set(results) == set(user_ids)
    return results


def assert_exact(sim: Simulator, results: dict[str, UserRoles]) -> None:
    truth = sim.tenant.truth()
    for user_id, result in results.items():
        if user_id in truth:
            assert result.status == "ok", (user_id, result)
            assert result.roles is not None
            assert {role.id for role in result.roles} == truth[user_id], user_id
        else:
            assert result.status == "not_found", (user_id, result)


def api_requests_after(sim: Simulator, since: float) -> list[tuple[float, str, int]]:
    return [(t, key, status) for t, key, status, _ in sim.stats.log if t > since]


async def test_exact_roles_for_every_id_form_and_zero_429(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=400, roles=60, **FAST)
    ids = [*sim.tenant.user_ids, "auth0|does-not-exist", "weird/%2F+ ü|gone"]
    async with client_of(sim) as client:
        results = await fetch_all(client, ids)
        stats = client.stats
    assert_exact(sim, results)
    assert any(len(r.roles or ()) == 50 for r in results.values())  # the 50-role maximum
    assert sim.stats.count_429 == 0
    # One call per user: per_page=50 answers every user at once.
    assert sim.stats.count_for(USER_ROLES) == len(ids)
    assert stats.requests == len(ids)
    assert stats.users_ok + stats.users_not_found == len(ids)


async def test_single_calls_and_async_iterables(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=60, roles=10, **FAST)
    user = next(u for u in sim.tenant.user_ids if sim.tenant.roles_of(u))

    async def ids() -> AsyncIterator[str]:
        for user_id in sim.tenant.user_ids:
            yield user_id

    async with client_of(sim) as client:
        roles = await client.user_roles(user)
        assert {r.id for r in roles} == set(sim.tenant.roles_of(user))
        with pytest.raises(NotFoundError):
            await client.user_roles("auth0|nobody")
        results = {r.user_id: r async for r in client.fetch_roles(ids())}
        assert client.rate_limit.limit == 20
    assert_exact(sim, results)


async def test_200_empty_answer_for_unknown_users_means_not_found(
    start_simulator: StartSimulator,
) -> None:
    sim = await start_simulator(users=50, roles=10, unknown_user="200", **FAST)
    roleless = [u for u in sim.tenant.user_ids if not sim.tenant.roles_of(u)]
    assert roleless
    async with client_of(sim) as client:
        results = await fetch_all(client, [*roleless[:5], "auth0|ghost"])
    assert results["auth0|ghost"].status == "not_found"
    assert all(results[u].status == "ok" and results[u].roles == () for u in roleless[:5])


@pytest.mark.parametrize(
    ("retry_after", "reset_mode"),
    [(True, "next-token"), (False, "next-token"), (False, "full")],
)
async def test_a_429_pauses_every_worker_and_loses_nothing(
    start_simulator: StartSimulator, retry_after: bool, reset_mode: str
) -> None:
    sim = await start_simulator(
        users=200,
        roles=20,
        bucket=20,
        refill_per_s=60.0,
        retry_after=retry_after,
        reset_mode=reset_mode,
    )

    def other_app_stops_when_we_are_throttled(event: RetryEvent) -> None:
        if event.kind == "throttled":
            sim.settings.background_rps = 0.0

    # Another application spends faster than the refill until it has cost us a 429.
    async with client_of(
        sim, concurrency=16, on_event=other_app_stops_when_we_are_throttled
    ) as client:
        results = await fetch_all(
            client,
            list(sim.tenant.user_ids),
            after={60: lambda: setattr(sim.settings, "background_rps", 400.0)},
        )
        throttled = client.stats.throttled
    assert_exact(sim, results)
    assert throttled >= 1
    log = sim.stats.log
    ours = [(t, status) for t, key, status, _ in log if key == USER_ROLES]
    first_429 = next(t for t, status in ours if status == 429)
    # Every worker paused at once: after our first 429, the next requests of ours
    # reach the tenant only after a pause (in-flight ones aside), and then at the
    # refill rate, not in a burst.
    later = [t for t, _ in ours if t > first_429 + 0.02]
    assert later, "the run went on"
    assert later[0] - first_429 >= 1 / 60.0
    busiest_100ms = max(sum(1 for t in later if start <= t < start + 0.1) for start in later)
    assert busiest_100ms <= 2 * 60 * 0.1 + 2, "resumed with a burst"


async def test_token_expiring_mid_run_is_refreshed_once(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=200, roles=20, **FAST)
    async with client_of(sim) as client:
        results = await fetch_all(
            client, list(sim.tenant.user_ids), after={50: lambda: sim.clock.advance(2 * 86400)}
        )
        refreshes = client.stats.token_refreshes
    assert_exact(sim, results)
    assert sim.stats.count_for("POST /oauth/token", 200) == 2
    assert refreshes == 1
    assert sim.stats.count_for(USER_ROLES, 401) >= 1


@pytest.mark.timeout(60)
async def test_faults_still_give_exact_output(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(
        users=300,
        roles=20,
        bucket=50,
        refill_per_s=1000.0,
        p_500=0.04,
        p_503=0.04,
        p_502=0.04,
        p_reset=0.04,
        p_truncated=0.04,
        p_stall=0.01,
        stall_s=60.0,
    )
    async with client_of(sim, timeout_s=0.5) as client:
        results = await fetch_all(client, list(sim.tenant.user_ids))
        stats = client.stats
    assert_exact(sim, results)
    assert stats.retries > 0
    assert stats.users_failed == 0


async def test_retries_are_bounded_then_the_user_fails(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(users=20, roles=5, p_500=1.0, **FAST)
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0)
    events = []
    async with client_of(sim, retry=policy, on_event=events.append) as client:
        results = await fetch_all(client, list(sim.tenant.user_ids)[:4])
    assert {r.status for r in results.values()} == {"failed"}
    assert all("HTTP 500" in (r.error or "") for r in results.values())
    assert sim.stats.count_for(USER_ROLES, 500) == 4 * 3
    assert sum(1 for e in events if e.kind == "retry") == 4 * 2


async def test_users_deleted_mid_run_are_not_found(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(
        users=300, roles=20, bucket=20, refill_per_s=300.0, deleted_fraction=0.3, delete_over_s=0.5
    )
    before = sim.tenant.truth()
    async with client_of(sim) as client:
        results = await fetch_all(client, list(sim.tenant.user_ids))
    after = sim.tenant.truth()
    deleted = set(before) - set(after)
    assert deleted
    for user_id, result in results.items():
        if user_id in deleted:
            assert result.status == "not_found" or (
                result.roles is not None and {r.id for r in result.roles} == before[user_id]
            )
        else:
            assert result.status == "ok"
            assert {r.id for r in result.roles or ()} == before[user_id]
    assert any(results[u].status == "not_found" for u in deleted)


async def test_sharing_the_bucket_with_another_app(start_simulator: StartSimulator) -> None:
    sim = await start_simulator(
        users=400, roles=20, bucket=20, refill_per_s=200.0, background_rps=50.0
    )
    async with client_of(sim) as client:
        results = await fetch_all(client, list(sim.tenant.user_ids))
    assert_exact(sim, results)
    assert sim.stats.background_spent > 0
    assert sim.stats.count_429 <= 0.01 * len(results)


async def test_missing_scope_stops_the_run_with_the_scope_named(
    start_simulator: StartSimulator,
) -> None:
    sim = await start_simulator(users=500, roles=20, scopes=("read:users",), **FAST)
    async with client_of(sim) as client:
        with pytest.raises(ScopeError) as caught:
            await fetch_all(client, list(sim.tenant.user_ids))
    assert caught.value.scope == "read:roles"
    assert "read:roles" in str(caught.value)
    # The first request goes alone, and so does the next after a refusal: the run
    # stops within a request or two, never after a burst of 403s.
    assert sim.stats.count_for(USER_ROLES) <= 2


@pytest.mark.parametrize("style", ["access_denied", "invalid_client"])
async def test_bad_credentials_are_one_clear_error(
    start_simulator: StartSimulator, style: str
) -> None:
    sim = await start_simulator(users=10, roles=5, bad_credentials=style)
    client = Client(sim.domain, client_id=sim.client_id, client_secret="wrong-secret")
    async with client:
        with pytest.raises(CredentialsError) as caught:
            await client.user_roles(sim.tenant.user_ids[0])
    assert "wrong-secret" not in str(caught.value)
    assert sim.stats.api_requests == 0


async def test_a_user_ceiling_in_requests_per_second_is_honoured(
    start_simulator: StartSimulator,
) -> None:
    sim = await start_simulator(users=150, roles=10, bucket=1000, refill_per_s=5000.0)
    async with client_of(sim, max_rps=50.0) as client:
        results = await fetch_all(client, list(sim.tenant.user_ids))
    assert_exact(sim, results)
    # The tenant would allow 1000 at once; the ceiling keeps any second to 50 (+1 for
    # the window's edges).
    assert sim.stats.peak_1s <= 51


async def test_a_short_lived_token_is_refreshed_before_it_expires(
    start_simulator: StartSimulator,
) -> None:
    # Tokens live 1.5 s; the run takes longer (250 users at 100/s), so the client
    # must fetch a fresh one ahead of expiry rather than wait for a 401.
    sim = await start_simulator(
        users=250, roles=10, bucket=100, refill_per_s=100.0, token_lifetime_s=1.5
    )
    async with client_of(sim) as client:
        results = await fetch_all(client, list(sim.tenant.user_ids))
    assert_exact(sim, results)
    assert sim.stats.count_for("POST /oauth/token", 200) >= 2
    assert sim.stats.count_for(USER_ROLES, 401) == 0
