"""The asyncroles contenders' shared body: ``Client.fetch_roles`` with a strategy.

Besides the roles it records what the client reports through its public API:
``client.stats``, every retry/pause event, and ``client.rate_limit`` sampled four
times a second (when the rate was learned, how the estimate moved) -- the
evidence for where the time goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from asyncroles import Client, RetryEvent
from asyncroles.planner import Strategy
from contenders.base import ContenderRun, Roles

SAMPLE_EVERY_S = 0.25


def contender(
    strategy: Strategy,
) -> tuple[Callable[[], str | None], Callable[..., Awaitable[ContenderRun]]]:
    """``(unavailable, run)`` of the contender module for ``strategy``."""

    def unavailable() -> str | None:
        return None  # the library itself: always there

    async def run(
        domain: str, client_id: str, client_secret: str, user_ids: list[str], *, trace: bool = False
    ) -> ContenderRun:
        return await fetch(
            domain, client_id, client_secret, user_ids, strategy=strategy, trace=trace
        )

    return unavailable, run


async def fetch(
    domain: str,
    client_id: str,
    client_secret: str,
    user_ids: list[str],
    *,
    strategy: Strategy,
    trace: bool = False,
) -> ContenderRun:
    events: Counter[str] = Counter()
    pauses: list[tuple[float, str, float]] = []
    t0 = time.monotonic()

    def on_event(event: RetryEvent) -> None:
        events[event.kind] += 1
        if event.kind == "throttled":
            pauses.append((round(time.monotonic() - t0, 3), event.reason, event.delay_s))

    roles: Roles = {}
    samples: list[dict[str, Any]] = []
    done_at: list[float] = []
    first_result_s: float | None = None
    async with Client(
        domain, client_id=client_id, client_secret=client_secret, on_event=on_event
    ) as client:

        async def sample() -> None:
            while True:
                state = client.rate_limit
                samples.append(
                    {
                        "t": round(time.monotonic() - t0, 3),
                        "requests": client.stats.requests,
                        "refill_per_s": state.refill_per_s,
                        "learned": state.refill_learned,
                        "remaining": state.remaining_estimate,
                        "in_flight": state.in_flight,
                        "rtt_s": state.rtt_s,
                    }
                )
                await asyncio.sleep(SAMPLE_EVERY_S)

        sampler = asyncio.ensure_future(sample())
        try:
            async with contextlib.aclosing(
                client.fetch_roles(user_ids, strategy=strategy)
            ) as results:
                async for result in results:
                    if first_result_s is None:
                        first_result_s = time.monotonic() - t0
                    if trace:
                        done_at.append(round(time.monotonic() - t0, 4))
                    roles[result.user_id] = (
                        [role.id for role in result.roles]
                        if result.status == "ok" and result.roles is not None
                        else None
                    )
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        stats = dataclasses.asdict(client.stats)
        state = client.rate_limit
    info: dict[str, Any] = {
        "client_stats": stats,
        "events": dict(events),
        "pauses": pauses,
        "first_result_s": first_result_s,
        "last_result_s": time.monotonic() - t0,
        "learned_refill_per_s": state.refill_per_s,
        "reserve": state.reserve,
        "samples": samples,
    }
    if trace:
        info["done_at"] = done_at
    return ContenderRun(roles, info)
