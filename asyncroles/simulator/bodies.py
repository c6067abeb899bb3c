"""Auth0's response bodies and query validation, as plain bytes and values.

Every body here is copied from ``/work/shared/auth0-api.md`` where it quotes
one; the rest follow the same shape (Auth0 answers API errors with hapi/Boom
``{"statusCode","error","message","errorCode"?}`` objects, and the token
endpoint with OAuth ``{"error","error_description"}`` objects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "JSON",
    "QueryError",
    "Reply",
    "api_error",
    "bad_request",
    "parse_bool",
    "parse_int",
    "token_error",
]

JSON = "application/json; charset=utf-8"


@dataclass(slots=True)
class Reply:
    """One HTTP answer: status, body, content type, extra headers.

    ``fault`` asks the HTTP layer to misbehave while sending it
    (``"reset"``, ``"truncated"``, ``"stall"``); see ``faults.py``.
    """

    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None


def api_error(
    status: int, error: str, message: str, error_code: str | None = None, **extra: Any
) -> bytes:
    """A Management API error body: ``{"statusCode","error","message","errorCode"?}``."""
    body: dict[str, Any] = {"statusCode": status, "error": error, "message": message}
    if error_code is not None:
        body["errorCode"] = error_code
    body.update(extra)
    return orjson.dumps(body)


def bad_request(message: str, error_code: str = "invalid_query_string") -> Reply:
    return Reply(400, api_error(400, "Bad Request", message, error_code))


def token_error(error: str, description: str) -> bytes:
    """An Authentication API (``/oauth/token``) error body."""
    return orjson.dumps({"error": error, "error_description": description})


# --- bodies quoted in auth0-api.md (exactly) --------------------------------

TOO_MANY_REQUESTS = api_error(
    429, "Too Many Requests", "Global limit has been reached", "too_many_requests"
)
TOKEN_TOO_MANY_REQUESTS = token_error("too_many_requests", "Global limit has been reached")
EXPIRED_TOKEN_MESSAGE = "Expired token received for JSON Web Token validation"
EXPIRED_TOKEN = api_error(
    401, "Unauthorized", EXPIRED_TOKEN_MESSAGE, attributes={"error": EXPIRED_TOKEN_MESSAGE}
)
USER_NOT_FOUND = api_error(404, "Not Found", "The user does not exist.", "inexistent_user")
BAD_CREDENTIALS: Mapping[str, bytes] = {
    "access_denied": token_error("access_denied", "Unauthorized"),
    "invalid_client": token_error("invalid_client", "Client authentication failed"),
}

# --- bodies in the same style (wording from real Auth0 answers in public issues)

# auth0/auth0-authorization-extension#138 and go-auth0#22 show this body for a
# token the API does not recognise; auth0/auth0.net#123 shows "Missing
# authentication" for a request without an Authorization header.
INVALID_TOKEN = api_error(401, "Unauthorized", "Invalid token")
MISSING_AUTH = api_error(401, "Unauthorized", "Missing authentication")
# auth0/node-auth0#118: an Authorization header that is not "Bearer <token>".
BAD_AUTH_HEADER = api_error(400, "Bad Request", "Bad HTTP authentication header format")
ROLE_NOT_FOUND = api_error(404, "Not Found", "The role does not exist.", "inexistent_role")
JOB_NOT_FOUND = api_error(404, "Not Found", "The job does not exist.", "inexistent_job")
ROUTE_NOT_FOUND = api_error(404, "Not Found", "Not Found")
METHOD_NOT_ALLOWED = api_error(405, "Method Not Allowed", "Method Not Allowed")
EMPTY_ARRAY = b"[]"


def insufficient_scope(scopes: tuple[str, ...]) -> bytes:
    """403 for a token missing every scope the endpoint accepts (auth0-api.md)."""
    return api_error(
        403,
        "Forbidden",
        f"Insufficient scope, expected any of: {','.join(scopes)}",
        "insufficient_scope",
    )


# --- query validation (Auth0's "Query validation error: '...' on property p (doc)")

# Descriptions of the query properties, as Auth0's OpenAPI document words them;
# Auth0 echoes them in parentheses after the property name.
QUERY_DOCS: Mapping[str, str] = {
    "per_page": "Number of results per page. Defaults to 50.",
    "page": "Page index of the results to return. First page is 0.",
    "include_totals": (
        "Return results inside an object that contains the total result count (true) "
        "or as a direct array of results (false, default)."
    ),
    "take": "Number of results per page. Defaults to 50.",
    "from": "Optional Id from which to start selection.",
    "name_filter": "Optional filter on name (case-insensitive).",
}


class QueryError(Exception):
    """A query value Auth0 would refuse; ``reply`` is the 400 to send."""

    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(detail)
        doc = QUERY_DOCS.get(prop, prop)
        self.reply = bad_request(f"Query validation error: '{detail}' on property {prop} ({doc}).")


def parse_int(
    query: Mapping[str, str], prop: str, default: int, minimum: int, maximum: int | None
) -> int:
    """An integer query value within ``minimum..maximum``, else QueryError."""
    raw = query.get(prop)
    if raw is None:
        return default
    text = raw.strip()
    if not text.lstrip("-").isdigit() or not text.isascii():
        raise QueryError(prop, "Expected type integer but found type string")
    value = int(text)
    if value < minimum:
        raise QueryError(prop, f"Value {value} is less than minimum {minimum}")
    if maximum is not None and value > maximum:
        raise QueryError(prop, f"Value {value} is greater than maximum {maximum}")
    return value


def parse_bool(query: Mapping[str, str], prop: str) -> bool:
    """``true``/``false`` (Auth0 coerces those two strings), else QueryError."""
    raw = query.get(prop)
    if raw is None:
        return False
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise QueryError(prop, "Expected type boolean but found type string")
