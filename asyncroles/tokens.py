"""Access tokens: one cached token shared by every worker, refreshed once.

A client-credentials token is fetched on first use, refreshed a little before it
expires, and refreshed when Auth0 answers 401 "Expired token" -- once for all the
workers that saw that 401 (single flight), not once per worker.  ``/oauth/token``
has its own rate limit (auth0-api.md "Tokens"), so its 429s and 5xx are retried
here with their own bounded backoff, outside the Management API's scheduler.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from asyncroles.errors import ConnectError, CredentialsError
from asyncroles.protocol import Decoded, TokenGrant, decode_token_response
from asyncroles.retry import RetryPolicy
from asyncroles.transport import Transport, TransportFailure

__all__ = ["ClientCredentials", "StaticToken", "TokenSource"]


def refresh_margin_s(lifetime_s: float) -> float:
    # Refresh ahead of expiry so no request carries a token that dies in flight:
    # 10% of the lifetime, between 1 s and 5 min.
    return min(300.0, max(1.0, lifetime_s * 0.1))


class TokenSource:
    """What the client asks for a bearer token."""

    fetched = 0  # tokens obtained so far (the first one, then each refresh)

    async def get(self) -> str:
        raise NotImplementedError

    async def refresh(self, stale: str) -> str:
        """A token newer than ``stale`` (which Auth0 called expired)."""
        raise NotImplementedError


class StaticToken(TokenSource):
    """A ready token (``AUTH0_TOKEN``): nothing to refresh it with."""

    def __init__(self, token: str) -> None:
        self._token = token.strip()

    async def get(self) -> str:
        return self._token

    async def refresh(self, stale: str) -> str:
        raise CredentialsError(
            "the access token has expired",
            status=401,
            path="/api/v2",
            hint="get a fresh token, or give client credentials so asyncroles can refresh it",
        )


class ClientCredentials(TokenSource):
    def __init__(
        self,
        transport: Transport,
        *,
        client_id: str,
        client_secret: str,
        audience: str,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._body = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "audience": audience,
        }
        self._retry = retry
        self._clock = clock
        self._rng = random.Random()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._pending: asyncio.Task[str] | None = None
        self.granted_scope: str | None = None

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self._body['client_id']!r}, secret=<redacted>)"

    async def get(self) -> str:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return await self._single_flight()

    async def refresh(self, stale: str) -> str:
        if self._token is not None and self._token != stale:
            return self._token  # another worker refreshed already
        self._refresh_at = 0.0
        return await self._single_flight()

    async def _single_flight(self) -> str:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._fetch())
        pending = self._pending
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done() and self._pending is pending:
                self._pending = None

    async def _fetch(self) -> str:
        started = self._clock()
        attempts = 0
        while True:
            try:
                status, headers, body = await self._transport.request(
                    "POST", "/oauth/token", json=self._body
                )
            except TransportFailure as failure:
                if failure.unreachable and self._token is None:
                    # First contact failed before any exchange: a wrong domain or port,
                    # not a passing fault; say so now rather than after retries.
                    raise ConnectError(
                        str(failure),
                        hint="check AUTH0_DOMAIN (the tenant's domain) and the network",
                    ) from failure
                outcome: TokenGrant | Decoded | str = str(failure)
            else:
                outcome = decode_token_response(status, headers, body, now_epoch_s=time.time())
            if isinstance(outcome, TokenGrant):
                self._token = outcome.access_token
                self._refresh_at = (
                    self._clock() + outcome.expires_in_s - refresh_margin_s(outcome.expires_in_s)
                )
                self.granted_scope = outcome.scope
                self.fetched += 1
                return outcome.access_token
            if isinstance(outcome, Decoded):
                outcome.raise_for_fatal()
                reason, server_says = outcome.message, outcome.retry_after_s
            else:
                reason, server_says = outcome, None
            attempts += 1
            if not self._retry.allows(attempts, self._clock() - started):
                raise ConnectError(
                    f"could not get an access token from {self._transport.base_url}: {reason}",
                    hint="check AUTH0_DOMAIN and the network (proxy: HTTPS_PROXY)",
                )
            await asyncio.sleep(self._retry.backoff_s(attempts, self._rng, server_says=server_says))
