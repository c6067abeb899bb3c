"""Realism settings: users deleted during a run, another application spending tokens, latency."""

from __future__ import annotations

import math

from asyncroles.simulator import Clock, SimulatorSettings
from asyncroles.simulator.faults import FaultDrawer


async def test_deleted_users_vanish_gradually(start_simulator, client_for) -> None:
    clock = Clock()
    sim = await start_simulator(
        users=1000, deleted_fraction=0.2, delete_over_s=10.0, clock=clock, bucket=10_000
    )
    client = client_for(sim)
    all_ids = list(sim.tenant.user_ids)
    assert len(sim.tenant.truth()) >= 990  # nothing much yet
    clock.advance(5.0)
    sim.sync()  # deletions happen as time passes; requests (or sync) apply them
    halfway = len(sim.tenant.truth())
    assert 880 <= halfway <= 920
    clock.advance(6.0)
    await client.get("/api/v2/roles")  # any request brings deletions up to date
    truth = sim.tenant.truth()
    assert len(truth) == 800
    gone = [uid for uid in all_ids if uid not in truth]
    # A deleted user answers as unknown, and is no role's member any more.
    answer = await client.user_roles(gone[0])
    assert answer.status == 404
    assert answer.json()["errorCode"] == "inexistent_user"
    for role in sim.tenant.roles[:5]:
        body = (await client.get(f"/api/v2/roles/{role.id}/users?take=100")).json()
        assert not {u["user_id"] for u in body["users"]} & set(gone)


async def test_deleted_users_are_the_same_for_the_same_seed(start_simulator) -> None:
    async def deleted(seed: int) -> set[str]:
        sim = await start_simulator(users=500, seed=seed, deleted_fraction=0.1, delete_over_s=0.0)
        sim.sync()
        return set(sim.tenant.user_ids) - set(sim.tenant.truth())

    first, again = await deleted(4), await deleted(4)
    assert first == again
    assert len(first) == 50


async def test_background_consumer_spends_from_the_same_bucket(start_simulator, client_for):
    clock = Clock()
    sim = await start_simulator(
        users=60, bucket=50, refill_per_s=1.0, background_rps=20.0, clock=clock
    )
    client = client_for(sim)
    background = sim.service.background
    clock.advance(1.0)  # 20 ticks of the other application, 1 token refilled
    answer = await client.user_roles(sim.tenant.user_ids[0])
    spent = background.spent  # as of that request
    assert spent >= 20
    assert background.refused == 0  # plenty of tokens: every tick spent one
    # Full bucket of 50, -spent by the other app, -1 by us, + the refill meanwhile.
    remaining = int(answer.headers["x-ratelimit-remaining"])
    assert 50 - spent - 1 <= remaining <= 50 - spent - 1 + math.ceil(spent / 20)
    clock.advance(10.0)  # it drains the bucket, then spends only what refills
    sim.sync()
    simulated_s = clock.monotonic() - sim.service.started_at  # on the simulator's clock
    # Never more than the bucket allowed: burst + refill, less our one token.
    assert 50 + simulated_s - 3 <= background.spent + 1 <= 50 + simulated_s
    assert background.refused > 0
    assert sim.stats.background_spent == background.spent
    # Whatever we get now, the bucket is at its floor.
    answer = await client.user_roles(sim.tenant.user_ids[0])
    assert answer.headers["x-ratelimit-remaining"] == "0"
    sim.settings.background_rps = 0.0
    clock.advance(5.0)
    before = sim.stats.background_spent
    clock.advance(5.0)
    assert sim.stats.background_spent == before  # switched off mid-run


def test_latency_draws_stay_around_the_mean() -> None:
    drawer = FaultDrawer(seed=1)
    settings = SimulatorSettings(latency_ms=40.0, jitter_ms=10.0)
    draws = [drawer.latency_s(settings) for _ in range(1000)]
    assert all(0.030 <= d <= 0.050 for d in draws)
    assert 0.039 < sum(draws) / len(draws) < 0.041
    assert drawer.latency_s(SimulatorSettings()) == 0.0


def test_fault_draws_follow_the_probabilities() -> None:
    drawer = FaultDrawer(seed=1)
    settings = SimulatorSettings(p_500=0.1, p_503=0.1, p_502=0.1, p_reset=0.1)
    draws = [drawer.draw(settings) for _ in range(10_000)]
    for kind in ("500", "503", "502", "reset"):
        assert 800 < draws.count(kind) < 1200
    assert draws.count(None) > 5000
    assert FaultDrawer(seed=1).draw(settings) == draws[0]


async def test_latency_setting_is_applied(start_simulator, client_for) -> None:
    sim = await start_simulator(users=60, latency_ms=20.0)
    client = client_for(sim)
    answer = await client.user_roles(sim.tenant.user_ids[0])
    assert answer.status == 200  # served through both half-delays
