"""The Auth0 Management API protocol, sans I/O.

This module builds request paths and decides what a response means; it performs no
I/O of its own (after gidgethub's ``sansio``).  The HTTP layer hands it
``(status, headers, body)`` and acts on the returned ``Decoded``: data, the
rate-limit state, and what to do next.  Facts cited are from ``auth0-api.md``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from asyncroles.errors import ApiError, AsyncrolesError, AuthError, CredentialsError, ScopeError
from asyncroles.ratelimit import RateLimitHeaders, header, parse_retry_after

__all__ = [
    "USER_ROLES_PER_PAGE",
    "Decoded",
    "Kind",
    "TokenGrant",
    "decode_response",
    "decode_token_response",
    "quote_segment",
    "role_users_checkpoint_path",
    "role_users_offset_path",
    "roles_path",
    "user_roles_path",
]

#: A user holds at most 50 roles (an Auth0 entity limit), so one page of 50 with
#: totals answers every user in one call; ``total`` is still followed defensively.
USER_ROLES_PER_PAGE = 50

# encodeURIComponent leaves A-Z a-z 0-9 and these unescaped; everything else,
# including "/", "|", "@", "+", "%" and non-ASCII (as UTF-8), is percent-encoded once.
_URI_COMPONENT_SAFE = "-_.!~*'()"


def quote_segment(value: str) -> str:
    """Percent-encode one path segment exactly like JavaScript's encodeURIComponent."""
    return quote(value, safe=_URI_COMPONENT_SAFE, encoding="utf-8", errors="strict")


def user_roles_path(user_id: str, page: int = 0, per_page: int = USER_ROLES_PER_PAGE) -> str:
    # per_page is always sent: its default is disputed between sources.
    query = urlencode({"per_page": per_page, "page": page, "include_totals": "true"})
    return f"/api/v2/users/{quote_segment(user_id)}/roles?{query}"


def roles_path(page: int, per_page: int = 100, *, include_totals: bool = True) -> str:
    query = {"per_page": per_page, "page": page, "include_totals": str(include_totals).lower()}
    return f"/api/v2/roles?{urlencode(query)}"


def role_users_offset_path(
    role_id: str, page: int, per_page: int, *, include_totals: bool = True
) -> str:
    query = {"per_page": per_page, "page": page, "include_totals": str(include_totals).lower()}
    return f"/api/v2/roles/{quote_segment(role_id)}/users?{urlencode(query)}"


def role_users_checkpoint_path(role_id: str, take: int, cursor: str | None = None) -> str:
    # Checkpoint mode: ``take`` and no ``from`` on the first page, then ``from=next``.
    query: dict[str, Any] = {"take": take}
    if cursor is not None:
        query["from"] = cursor
    return f"/api/v2/roles/{quote_segment(role_id)}/users?{urlencode(query)}"


class Kind(enum.Enum):
    OK = "ok"  # 2xx with a JSON body
    NOT_FOUND = "not_found"  # 404 (a user, role or job that does not exist)
    THROTTLED = "throttled"  # 429: pause every worker, then retry; never a failure
    EXPIRED_TOKEN = "expired_token"  # 401 "Expired token": refresh once, then retry
    RETRY = "retry"  # 5xx, non-JSON or cut-short bodies: back off and retry, bounded
    REJECTED = "rejected"  # 400 and other 4xx: Auth0 refused this one request
    FATAL = "fatal"  # bad credentials or scope: the run cannot go on


@dataclass(frozen=True, slots=True)
class Decoded:
    kind: Kind
    status: int
    data: Any
    rate: RateLimitHeaders | None
    retry_after_s: float | None
    message: str
    error: AsyncrolesError | None = None

    def raise_for_fatal(self) -> None:
        if self.error is not None:
            raise self.error


# Auth0 says "Expired token received for JSON Web Token validation"; JWT libraries
# behind other gateways say "jwt expired" or "token has expired".  Any 401 that
# calls the token expired gets one refresh; a fresh token refused again is fatal.
_EXPIRED = "expired"
_SCOPE = re.compile(r"expected (?:any|all) of:\s*(?P<scopes>[\w:, ]+)", re.IGNORECASE)


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_JSON


_NOT_JSON = object()


def _message(data: Any, status: int) -> str:
    if isinstance(data, dict):
        for key in ("message", "error_description", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    return f"HTTP {status}"


def _error_code(data: Any) -> str | None:
    if isinstance(data, dict):
        code = data.get("errorCode") or data.get("error")
        return code if isinstance(code, str) else None
    return None


def decode_response(
    status: int, headers: Mapping[str, str], body: bytes, *, path: str, now_epoch_s: float
) -> Decoded:
    """Classify one Management API response; never raises (see ``raise_for_fatal``)."""
    rate = RateLimitHeaders.from_headers(headers)
    retry_after = parse_retry_after(header(headers, "retry-after"), now_epoch_s)

    def out(kind: Kind, data: Any, message: str, error: AsyncrolesError | None = None) -> Decoded:
        return Decoded(kind, status, data, rate, retry_after, message, error)

    if status == 429:
        return out(Kind.THROTTLED, None, "429 Too Many Requests")
    data = _load(body)
    if data is _NOT_JSON:
        if status >= 500 or 200 <= status < 300:
            # A proxy's HTML 502, or a body cut short: transient (auth0-api.md, faults).
            return out(Kind.RETRY, None, f"HTTP {status} with a body that is not JSON")
        # A non-JSON 4xx is not Auth0 speaking: the domain points somewhere else.
        return out(
            Kind.FATAL,
            None,
            f"HTTP {status} with a non-JSON body",
            ApiError(
                f"{path}: HTTP {status} that is not from the Auth0 Management API",
                status=status,
                path=path,
                headers=headers,
                hint="check the domain: it must be the tenant's domain, e.g. tenant.us.auth0.com",
            ),
        )
    message = _message(data, status)
    code = _error_code(data)
    if 200 <= status < 300:
        return out(Kind.OK, data, "ok")
    if status == 404:
        return out(Kind.NOT_FOUND, data, message)
    if status == 401:
        if _EXPIRED in message.lower():
            return out(Kind.EXPIRED_TOKEN, data, message)
        return out(
            Kind.FATAL,
            data,
            message,
            CredentialsError(
                f"Auth0 rejected the access token: {message}",
                status=status,
                path=path,
                headers=headers,
                error_code=code,
                hint="check AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET or the token you passed",
            ),
        )
    if status == 403:
        return out(Kind.FATAL, data, message, _forbidden(message, code, path, headers))
    if status >= 500 or status in (408, 425):
        return out(Kind.RETRY, data, f"HTTP {status}: {message}")
    return out(Kind.REJECTED, data, f"HTTP {status}: {message}")


def _forbidden(message: str, code: str | None, path: str, headers: Mapping[str, str]) -> AuthError:
    match = _SCOPE.search(message)
    if match or code == "insufficient_scope":
        scope = match.group("scopes").strip() if match else None
        needed = f"the {scope} scope" if scope else "the missing scope"
        return ScopeError(
            f"Auth0 refused {path.split('?')[0]}: {message}",
            scope=scope,
            status=403,
            path=path,
            headers=headers,
            error_code=code,
            hint=(
                f"grant {needed} to the application (Dashboard > Applications > APIs > "
                "Auth0 Management API > Machine to Machine Applications), then run again"
            ),
        )
    return AuthError(
        f"Auth0 refused {path.split('?')[0]}: {message}",
        status=403,
        path=path,
        headers=headers,
        error_code=code,
        hint="check the application's permissions on the Auth0 Management API",
    )


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in_s: float
    scope: str | None

    def __repr__(self) -> str:  # never print a token, even by accident
        return f"TokenGrant(access_token=<redacted>, expires_in_s={self.expires_in_s})"


def decode_token_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now_epoch_s: float
) -> TokenGrant | Decoded:
    """``POST /oauth/token``: a grant, a ``Decoded`` to retry (429, 5xx), or FATAL."""
    path = "/oauth/token"
    retry_after = parse_retry_after(header(headers, "retry-after"), now_epoch_s)
    data = _load(body)
    if status == 429 or status >= 500 or (data is _NOT_JSON and status < 400):
        return Decoded(Kind.RETRY, status, None, None, retry_after, f"/oauth/token: HTTP {status}")
    if 200 <= status < 300 and isinstance(data, dict) and isinstance(data.get("access_token"), str):
        expires = data.get("expires_in")
        return TokenGrant(
            access_token=data["access_token"],
            expires_in_s=float(expires) if isinstance(expires, (int, float)) else 86400.0,
            scope=data.get("scope") if isinstance(data.get("scope"), str) else None,
        )
    description = _message(data, status) if data is not _NOT_JSON else f"HTTP {status}"
    code = _error_code(data) if data is not _NOT_JSON else None
    if status == 403:
        error: AuthError = AuthError(
            f"Auth0 would not issue a Management API token: {description}",
            status=status,
            path=path,
            headers=headers,
            error_code=code,
            hint=(
                "authorize the application for the Auth0 Management API "
                "(Dashboard > Applications > APIs > Auth0 Management API > "
                "Machine to Machine Applications) with read:users, read:roles, read:role_members"
            ),
        )
    else:
        error = CredentialsError(
            f"Auth0 rejected the client credentials: {description}",
            status=status,
            path=path,
            headers=headers,
            error_code=code,
            hint=(
                "check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (a Machine to Machine "
                "application of this tenant) and AUTH0_DOMAIN"
            ),
        )
    return Decoded(Kind.FATAL, status, data, None, retry_after, description, error)
