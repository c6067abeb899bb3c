"""``Client``: the library API that code with a running event loop embeds.

    async with asyncroles.Client(domain, client_id=..., client_secret=...) as client:
        roles = await client.user_roles("auth0|abc")
        async for result in client.fetch_roles(user_ids):
            ...

No ``asyncio.run``, no global state, no event-loop policy: the client lives in the
caller's loop.  Every request goes through one shared ``Scheduler``; every response
is classified by the sans-I/O ``protocol`` module; per-user outcomes are
``UserRoles`` results, never exceptions.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from asyncroles.domain import parse_domain
from asyncroles.errors import CredentialsError, NotFoundError, RetryError, UsageError
from asyncroles.models import Role, UserRoles
from asyncroles.pacing import Pacer, PacerState
from asyncroles.pipeline import stream
from asyncroles.protocol import USER_ROLES_PER_PAGE, Decoded, Kind, decode_response, user_roles_path
from asyncroles.retry import RetryEvent, RetryPolicy
from asyncroles.scheduler import Scheduler
from asyncroles.tokens import ClientCredentials, StaticToken, TokenSource
from asyncroles.transport import Transport, TransportFailure

if TYPE_CHECKING:
    from asyncroles.planner import Plan, Strategy

__all__ = ["Client", "ClientStats"]

#: Default worker bounds: enough to fill the pipe of a 100/s tenant 150 ms away
#: twice over, few enough to be polite to a connection pool.
MIN_WORKERS = 8
MAX_WORKERS = 256


@dataclass(slots=True)
class ClientStats:
    """Counters of everything the client did; ``Client.stats`` returns a copy."""

    requests: int = 0  # Management API requests sent (each spends a token)
    throttled: int = 0  # 429s received
    retries: int = 0  # requests sent again after a transient failure
    token_refreshes: int = 0  # new tokens after the first (single flight: one per expiry)
    users_ok: int = 0
    users_not_found: int = 0
    users_failed: int = 0


class _GaveUp(Exception):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class Client:
    """A paced, retrying reader of the Auth0 Management API for one tenant.

    ``domain``: ``tenant.region.auth0.com`` or ``host:port`` (HTTPS), or an
    ``http://`` URL for a loopback host (a local simulator).  Give either
    ``client_id`` + ``client_secret`` (a Machine to Machine application; tokens are
    fetched and refreshed for you) or a ready ``token``.

    ``reserve``: tokens left in the tenant's bucket for its other applications
    (default 10% of the bucket, at least 5).  ``max_rps``: an optional ceiling of
    your own.  ``concurrency``: workers for ``fetch_roles`` (default: sized from the
    learned rate and round trip).  ``on_event`` receives every retry and pause.
    """

    def __init__(
        self,
        domain: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token: str | None = None,
        audience: str | None = None,
        ca_bundle: str | None = None,
        reserve: int | None = None,
        max_rps: float | None = None,
        concurrency: int | None = None,
        timeout_s: float = 15.0,
        retry: RetryPolicy | None = None,
        on_event: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self.tenant = parse_domain(domain)
        if token is None and not (client_id and client_secret):
            raise UsageError(
                "no credentials given",
                hint="give client_id and client_secret (AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET) "
                "or a ready access token (AUTH0_TOKEN)",
            )
        if max_rps is not None and max_rps <= 0:
            raise UsageError(f"max_rps must be positive, not {max_rps}")
        if concurrency is not None and concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}")
        if reserve is not None and reserve < 0:
            raise UsageError(f"reserve must be 0 or more, not {reserve}")
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self._transport = Transport(self.tenant.base_url, timeout_s=timeout_s, ca_bundle=ca_bundle)
        self._tokens: TokenSource
        if token is not None:
            self._tokens = StaticToken(token)
        else:
            assert client_id is not None
            assert client_secret is not None
            self._tokens = ClientCredentials(
                self._transport,
                client_id=client_id,
                client_secret=client_secret,
                audience=audience or self.tenant.audience,
                retry=self.retry,
            )
        self._scheduler = Scheduler(Pacer(reserve=reserve), max_rps=max_rps)
        self._on_event = on_event
        self._rng = random.Random()
        self._stats = ClientStats()

    def __repr__(self) -> str:
        return f"Client({self.tenant.base_url!r})"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.close()

    # -- what callers read -------------------------------------------------------

    @property
    def rate_limit(self) -> PacerState:
        """What the client has learned of the tenant's bucket, now."""
        return self._scheduler.state

    @property
    def stats(self) -> ClientStats:
        return replace(self._stats, token_refreshes=max(0, self._tokens.fetched - 1))

    # -- the calls ----------------------------------------------------------------

    async def user_roles(self, user_id: str) -> list[Role]:
        """One user's roles.  Raises ``NotFoundError`` for an unknown user."""
        result = await self._fetch_user(user_id)
        if result.status == "not_found":
            raise NotFoundError(
                f"user {user_id!r} does not exist", status=404, path=user_roles_path(user_id)
            )
        if result.status == "failed":
            raise RetryError(f"{user_id}: {result.error}", reason=result.error or "", attempts=0)
        return list(result.roles or ())

    async def fetch_roles(
        self,
        user_ids: Iterable[str] | AsyncIterable[str] | None = None,
        *,
        strategy: Strategy = "per-user",
        plan: Plan | None = None,
    ) -> AsyncGenerator[UserRoles, None]:
        """Every user's roles, streamed as they complete (not in input order).

        Exactly one ``UserRoles`` per id given (give distinct ids).  Bad credentials
        or a missing scope raise from the iteration and stop the run.  Close the
        iterator (``contextlib.aclosing``) if you stop early.

        ``strategy``: ``"per-user"`` (one request per user, streamed); ``"by-role"``
        (every role's member list: far fewer requests for many users; results come
        at the end; every id is ``ok``, since by-role cannot tell a deleted user from
        one without roles; without ids, every user holding a role); ``"auto"``
        (plan, then the cheaper route; a few ids stay per-user).  By-role and auto
        first collect the ids in memory (about 150 bytes an id).  ``plan``: a
        ``Client.plan()`` result for auto to follow and by-role to reuse.
        """
        if strategy == "per-user" and user_ids is not None:
            results = stream(user_ids, self._fetch_user, workers=self._workers_wanted)
        else:
            from asyncroles.byrole import fetch_routed  # it imports this module

            results = fetch_routed(self, user_ids, strategy, plan)
        try:
            async for result in results:
                yield result
        finally:
            await results.aclose()

    async def plan(self, user_count: int | None = None, *, exact: bool = True) -> Plan:
        """What per-user and by-role would cost for ``user_count`` distinct ids (None:
        no list, the whole tenant), and the cheaper.  Spends about one request per
        role (``exact=False``: only until the choice is certain, as auto does).  Pass
        it to ``fetch_roles(plan=...)`` so that by-role reuses what it counted."""
        from asyncroles.planner import survey  # it imports this module

        return await survey(self, user_count, exact=exact)

    # -- internals shared with the by-role and export modules ----------------------

    def _workers_wanted(self, current: int) -> int:
        if self.concurrency is not None:
            return self.concurrency
        state = self._scheduler.state
        rate = state.refill_per_s or 0.0
        if self._scheduler.max_rps is not None:
            rate = min(rate, self._scheduler.max_rps)
        # Little's law: requests in flight = rate x round trip; twice that absorbs
        # jitter and retries.
        wanted = math.ceil(rate * (state.rtt_s or 0.1) * 2) + 4
        starved = (
            current > 0
            and self._scheduler.waiting == 0
            and self._scheduler.pacer.delay(time.monotonic()) == 0.0
        )
        if starved:  # tokens to spend and nobody free to spend them
            wanted = max(wanted, current + max(1, current // 2))
            # At the start the whole spare burst can go at once: one worker a token.
            if state.remaining_estimate is not None and state.reserve is not None:
                wanted = max(wanted, math.ceil(state.remaining_estimate - state.reserve))
        return max(MIN_WORKERS, min(MAX_WORKERS, max(wanted, current)))

    def _event(self, kind: str, what: str, attempt: int, reason: str, delay_s: float) -> None:
        if self._on_event is not None:
            self._on_event(RetryEvent(kind, what, attempt, reason, delay_s))

    async def _request(self, method: str, path: str, *, json: Any = None) -> Decoded:
        """One paced Management API call, retried as Auth0 means it.

        Returns an OK, NOT_FOUND or REJECTED ``Decoded``; raises the fatal error for
        bad credentials or scope; raises ``_GaveUp`` when bounded retries run out.
        """
        scheduler = self._scheduler
        started = time.monotonic()
        attempts = throttled = refreshes = 0
        not_before: float | None = None
        while True:
            token = await self._tokens.get()
            ticket = await scheduler.acquire(not_before=not_before)
            not_before = None
            self._stats.requests += 1
            try:
                status, headers, body = await self._transport.request(
                    method, path, token=token, json=json
                )
            except TransportFailure as failure:
                scheduler.lost(ticket)
                reason, server_says = str(failure), None
            else:
                decoded = decode_response(status, headers, body, path=path, now_epoch_s=time.time())
                if decoded.kind is Kind.THROTTLED:
                    pause = scheduler.throttled(ticket, decoded.rate, decoded.retry_after_s)
                    self._stats.throttled += 1
                    throttled += 1
                    self._event("throttled", path, throttled, "429 Too Many Requests", pause)
                    if throttled >= self.retry.max_throttled:
                        raise _GaveUp(f"still rate limited after {throttled} 429s", attempts)
                    continue  # the scheduler holds every worker until the pause ends
                usable = decoded.kind not in (Kind.FATAL, Kind.EXPIRED_TOKEN)
                scheduler.response(ticket, decoded.rate, usable=usable)
                if decoded.kind is Kind.EXPIRED_TOKEN:
                    refreshes += 1
                    if refreshes > 2:
                        raise CredentialsError(
                            "Auth0 keeps calling fresh tokens expired",
                            status=401,
                            path=path,
                            hint="check the machine's clock and the tenant's token settings",
                        )
                    self._event("token_refresh", path, refreshes, decoded.message, 0.0)
                    await self._tokens.refresh(token)
                    continue
                decoded.raise_for_fatal()
                if decoded.kind is not Kind.RETRY:
                    return decoded
                reason, server_says = decoded.message, decoded.retry_after_s
            attempts += 1
            if not self.retry.allows(attempts, time.monotonic() - started):
                self._event("gave_up", path, attempts, reason, 0.0)
                raise _GaveUp(f"{reason} (gave up after {attempts} attempts)", attempts)
            delay = self.retry.backoff_s(attempts, self._rng, server_says=server_says)
            self._stats.retries += 1
            self._event("retry", path, attempts, reason, delay)
            not_before = time.monotonic() + delay

    async def _fetch_user(self, user_id: str) -> UserRoles:
        try:
            result = await self._user_roles_pages(user_id)
        except _GaveUp as gave_up:
            result = UserRoles(user_id, "failed", None, gave_up.reason)
        if result.status == "ok":
            self._stats.users_ok += 1
        elif result.status == "not_found":
            self._stats.users_not_found += 1
        else:
            self._stats.users_failed += 1
        return result

    async def _user_roles_pages(self, user_id: str) -> UserRoles:
        roles: list[Role] = []
        page = 0
        while True:
            decoded = await self._request("GET", user_roles_path(user_id, page))
            if decoded.kind is Kind.NOT_FOUND:
                return UserRoles(user_id, "not_found", None)
            if decoded.kind is Kind.REJECTED:
                return UserRoles(user_id, "failed", None, decoded.message)
            data = decoded.data
            if isinstance(data, list):
                # We asked for totals; a bare array means the tenant ignored the query.
                # A bare [] is how some tenants answer for users that do not exist
                # ("200 []", auth0-api.md): a real user's empty answer has totals.
                if page == 0 and not data:
                    return UserRoles(user_id, "not_found", None)
                batch, total = data, None
            elif isinstance(data, dict) and isinstance(data.get("roles"), list):
                batch, total = data["roles"], data.get("total")
            else:
                return UserRoles(user_id, "failed", None, "unexpected response shape")
            try:
                roles.extend(Role.from_json(item) for item in batch)
            except (KeyError, TypeError, AttributeError):
                return UserRoles(user_id, "failed", None, "role without an id in the response")
            more = (
                len(roles) < total if isinstance(total, int) else len(batch) >= USER_ROLES_PER_PAGE
            )
            if not batch or not more:
                return UserRoles(user_id, "ok", tuple(roles))
            page += 1
