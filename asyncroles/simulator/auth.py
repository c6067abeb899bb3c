"""Access tokens: the client-credentials exchange and the bearer check. Pure.

``POST /oauth/token`` follows auth0-api.md "Tokens": client credentials, the
audience ``<domain>/api/v2/`` with its trailing slash, the two real bodies for
wrong credentials, the 403 for a client without a grant.  Tokens look like
Auth0's (an RS256-shaped JWT whose payload a client may decode for ``exp``), but
the server only trusts its own table of issued tokens.
"""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from asyncroles.simulator import bodies
from asyncroles.simulator.bodies import Reply
from asyncroles.simulator.settings import SimulatorSettings

__all__ = ["REQUIRED_SCOPES", "TokenStore"]

#: The scopes each /api/v2 endpoint accepts: a token needs any one of them.
#: auth0-api.md says sources disagree on which are strictly needed for reading
#: roles, and the 403 it quotes names read:roles alone; so the per-user route
#: and the roles list accept read:roles, role members need read:role_members,
#: and export jobs need read:users (Auth0's bulk-export docs).
REQUIRED_SCOPES: Mapping[str, tuple[str, ...]] = {
    "GET /api/v2/users/{id}/roles": ("read:roles",),
    "GET /api/v2/roles": ("read:roles",),
    "GET /api/v2/roles/{id}/users": ("read:role_members",),
    "POST /api/v2/jobs/users-exports": ("read:users",),
    "GET /api/v2/jobs/{id}": ("read:users",),
}


@dataclass(frozen=True, slots=True)
class Grant:
    expires_at: float  # epoch seconds
    scopes: frozenset[str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenStore:
    """Issued tokens -> (expiry, scopes); checks credentials and bearer headers."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}

    def issue(
        self,
        settings: SimulatorSettings,
        audience: str,
        issuer: str,
        now_epoch: float,
        scopes: tuple[str, ...] | None = None,
        lifetime_s: float | None = None,
    ) -> tuple[str, Grant]:
        """A new token; a lifetime <= 0 gives one that is already expired (tests)."""
        granted = tuple(settings.scopes if scopes is None else scopes)
        lifetime = settings.token_lifetime_s if lifetime_s is None else lifetime_s
        iat = math.floor(now_epoch)
        header = {"alg": "RS256", "typ": "JWT", "kid": "simulator"}
        payload = {
            "iss": issuer,
            "sub": f"{settings.client_id}@clients",
            "aud": audience,
            "iat": iat,
            "exp": math.floor(now_epoch + lifetime),
            "scope": " ".join(granted),
            "gty": "client-credentials",
            "azp": settings.client_id,
        }
        token = ".".join(
            (_b64(orjson.dumps(header)), _b64(orjson.dumps(payload)), _b64(secrets.token_bytes(64)))
        )
        grant = Grant(now_epoch + lifetime, frozenset(granted))
        self._grants[token] = grant
        return token, grant

    def exchange(
        self,
        settings: SimulatorSettings,
        form: Mapping[str, str],
        audience: str,
        issuer: str,
        now_epoch: float,
    ) -> Reply:
        """Answer a ``POST /oauth/token`` body (JSON or form, already parsed)."""
        grant_type = form.get("grant_type")
        if not grant_type:
            return Reply(
                400, bodies.token_error("invalid_request", "Missing required parameter: grant_type")
            )
        if grant_type != "client_credentials":
            return Reply(
                403,
                bodies.token_error(
                    "unauthorized_client", f"Grant type '{grant_type}' not allowed for the client."
                ),
            )
        if (form.get("client_id"), form.get("client_secret")) != (
            settings.client_id,
            settings.client_secret,
        ):
            return Reply(401, bodies.BAD_CREDENTIALS[settings.bad_credentials])
        requested_audience = form.get("audience")
        if not requested_audience:
            return Reply(
                403,
                bodies.token_error(
                    "access_denied",
                    "No audience parameter was provided, and no default audience has been "
                    "configured",
                ),
            )
        if requested_audience != audience:
            # The audience must match the API identifier exactly: trailing slash included.
            return Reply(
                403, bodies.token_error("access_denied", f"Service not found: {requested_audience}")
            )
        if not settings.client_grant:
            return Reply(
                403,
                bodies.token_error(
                    "access_denied",
                    f'Client is not authorized to access "{audience}". You need to create a '
                    '"client-grant" associated to this API. See: '
                    "https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants",
                ),
            )
        scopes = tuple(settings.scopes)
        requested = form.get("scope")
        if requested:
            wanted = tuple(requested.split())
            missing = [s for s in wanted if s not in scopes]
            if missing:
                return Reply(
                    403,
                    bodies.token_error(
                        "access_denied", f"Client has not been granted scopes: {' '.join(missing)}"
                    ),
                )
            scopes = wanted
        token, grant = self.issue(settings, audience, issuer, now_epoch, scopes)
        body = {
            "access_token": token,
            "scope": " ".join(scopes),
            "expires_in": max(0, math.floor(grant.expires_at - now_epoch)),
            "token_type": "Bearer",
        }
        return Reply(
            200, orjson.dumps(body), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
        )

    def check(
        self, authorization: str | None, required: tuple[str, ...], now_epoch: float
    ) -> Reply | None:
        """None when the bearer token may call an endpoint needing any of ``required``."""
        if not authorization:
            return Reply(401, bodies.MISSING_AUTH)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Reply(400, bodies.BAD_AUTH_HEADER)
        grant = self._grants.get(token.strip())
        if grant is None:
            return Reply(401, bodies.INVALID_TOKEN)
        if now_epoch >= grant.expires_at:
            return Reply(401, bodies.EXPIRED_TOKEN)
        if required and grant.scopes.isdisjoint(required):
            return Reply(403, bodies.insufficient_scope(required))
        return None
