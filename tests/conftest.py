"""Shared fixtures: a simulated tenant per test and an HTTP client for it.

    async def test_something(start_simulator, client_for):
        sim = await start_simulator(users=200, bucket=5)      # closed after the test
        client = client_for(sim)                               # or the sim_client fixture
        answer = await client.get("/api/v2/roles")

Keep fixtures here generic: any test of the client can use them too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from multidict import CIMultiDictProxy
from yarl import URL

from asyncroles.simulator import Simulator, SimulatorSettings

StartSimulator = Callable[..., Awaitable[Simulator]]

#: What JavaScript's encodeURIComponent leaves alone (auth0-api.md: encode ids once, like it).
URI_COMPONENT_SAFE = "-_.!~*'()"


def encode_id(user_id: str) -> str:
    """Percent-encode an id exactly once, like ``encodeURIComponent``."""
    return quote(user_id, safe=URI_COMPONENT_SAFE)


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class SimClient:
    """A thin HTTP helper for a running simulator; sends paths exactly as given."""

    def __init__(self, sim: Simulator, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session
        self.token = sim.issue_token()

    def url(self, path: str) -> URL:
        # encoded=True: the path goes on the wire as written, never re-encoded.
        return URL(self.sim.domain + path, encoded=True)

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "default",
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
    ) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault(
                "Authorization", f"Bearer {self.token if token == 'default' else token}"
            )
        async with self.session.request(
            method, self.url(path), headers=sent, json=json, data=data
        ) as response:
            return Answer(response.status, response.headers, await response.read())

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def user_roles(
        self, user_id: str, query: str = "per_page=50&include_totals=true"
    ) -> Answer:
        return await self.get(f"/api/v2/users/{encode_id(user_id)}/roles?{query}")


@pytest.fixture
async def start_simulator() -> AsyncIterator[StartSimulator]:
    """Start simulators inside a test: ``await start_simulator(settings or **fields)``."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: SimulatorSettings | None = None, **overrides: Any) -> Simulator:
            return await stack.enter_async_context(Simulator(settings, **overrides))

        yield start


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sim(start_simulator: StartSimulator) -> Simulator:
    """A small default tenant (200 users, 50 roles, a bucket too big to matter)."""
    return await start_simulator(users=200, roles=50, bucket=10_000, refill_per_s=10_000.0)


@pytest.fixture
def sim_client(sim: Simulator, http: aiohttp.ClientSession) -> SimClient:
    """A ``SimClient`` for the ``sim`` fixture, holding a valid token."""
    return SimClient(sim, http)


@pytest.fixture
def client_for(http: aiohttp.ClientSession) -> Callable[[Simulator], SimClient]:
    """Make a ``SimClient`` for any simulator started in the test."""
    return lambda simulator: SimClient(simulator, http)
