"""``Simulator``: a simulated Auth0 tenant served on 127.0.0.1, as an async context manager.

    async with Simulator(users=1000, bucket=50, refill_per_s=16.0) as sim:
        ...  # talk to sim.domain with sim.client_id / sim.client_secret

No global state: several simulators can run in one process, each on its own
port with its own tenant, buckets, tokens and stats.
"""

from __future__ import annotations

import asyncio
import dataclasses
from types import TracebackType
from typing import Any

from aiohttp import web

from asyncroles.simulator.app import make_app
from asyncroles.simulator.bucket import TokenBucket
from asyncroles.simulator.service import Service
from asyncroles.simulator.settings import Clock, SimulatorSettings, derived_credentials
from asyncroles.simulator.stats import Stats
from asyncroles.simulator.tenant import Tenant

__all__ = ["Simulator"]

HOST = "127.0.0.1"  # loopback only, never 0.0.0.0
_BUILD_IN_THREAD = 50_000  # users; larger tenants are generated off the event loop
_SHUTDOWN_TIMEOUT_S = 0.25  # close() waits this long for in-flight (stalled) requests


def _build_tenant(s: SimulatorSettings) -> Tenant:
    """Generate a large tenant and its role-member index (seconds at a million users)."""
    tenant = Tenant(s.users, s.roles, s.seed)
    if s.roles:
        tenant.sorted_members(0)  # builds every role's member list at once
    return tenant


class Simulator:
    """A running simulated tenant.  ``Simulator(settings, port=0)`` or ``Simulator(users=...)``.

    ``settings`` is live: change a field while it runs and the next request sees
    it.  ``clock`` is injectable (see ``Clock.advance``) so tests can age tokens,
    links and cursors without sleeping.
    """

    def __init__(
        self,
        settings: SimulatorSettings | None = None,
        *,
        port: int = 0,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> None:
        if settings is None:
            settings = SimulatorSettings(**overrides)
        elif overrides:
            if "seed" in overrides:
                # Credentials derived from the old seed follow the new one.
                derived_id, derived_secret = derived_credentials(settings.seed)
                if settings.client_id == derived_id:
                    overrides.setdefault("client_id", "")
                if settings.client_secret == derived_secret:
                    overrides.setdefault("client_secret", "")
            settings = dataclasses.replace(settings, **overrides)
        self.settings = settings
        self.clock = clock or Clock()
        self._requested_port = port
        self._service: Service | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Generate the tenant and start serving on 127.0.0.1."""
        if self._runner is not None:
            return
        s = self.settings
        if s.users > _BUILD_IN_THREAD:
            tenant = await asyncio.to_thread(_build_tenant, s)
        else:
            tenant = Tenant(s.users, s.roles, s.seed)
        service = Service(s, tenant, self.clock)
        runner = web.AppRunner(
            make_app(service),
            access_log=None,  # logging each request would halve the throughput
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        address = runner.addresses[0]
        self.port = int(address[1])
        service.base_url = f"http://{HOST}:{self.port}"
        self._service = service
        self._runner = runner

    async def close(self) -> None:
        """Stop serving; in-flight requests get a brief grace period."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- what clients and tests use -------------------------------------------

    @property
    def service(self) -> Service:
        if self._service is None:
            raise RuntimeError("the simulator is not started: use 'async with Simulator(...)'")
        return self._service

    @property
    def domain(self) -> str:
        """``http://127.0.0.1:PORT`` (what ``AUTH0_DOMAIN`` is set to)."""
        return self.service.base_url

    @property
    def audience(self) -> str:
        """The Management API audience: ``<domain>/api/v2/``."""
        return self.service.audience

    @property
    def client_id(self) -> str:
        return self.settings.client_id

    @property
    def client_secret(self) -> str:
        return self.settings.client_secret

    @property
    def tenant(self) -> Tenant:
        return self.service.tenant

    def sync(self) -> None:
        """Bring time-driven state up to now: background spending, deletions, new settings.

        Requests do this on arrival; tests call it after moving the clock.
        """
        self.service.sync(self.clock.monotonic())

    @property
    def stats(self) -> Stats:
        """Counters, brought up to date (background spending, deletions) first."""
        self.sync()
        return self.service.stats

    @property
    def bucket(self) -> TokenBucket:
        return self.service.bucket

    def issue_token(
        self, scopes: tuple[str, ...] | list[str] | None = None, lifetime_s: float | None = None
    ) -> str:
        """A valid bearer token without calling /oauth/token (lifetime <= 0: expired)."""
        return self.service.issue_token(None if scopes is None else tuple(scopes), lifetime_s)
