"""The official Python SDK (``auth0-python``) in a loop, with its built-in retries.

auth0-python 6.x is a generated client.  Its convenience ``ManagementClient``
hard-codes ``https://{domain}/api/v2`` (and its token provider
``https://{domain}/oauth/token``), so it cannot reach a plain-http simulator.  The
generated ``auth0.management.Auth0`` underneath documents a ``base_url`` option
("The base url to use for requests from the client") and takes a token or a
callable returning one; the token comes from the SDK's own
``auth0.authentication.GetToken``, whose documented ``protocol`` option ("Useful for
testing") selects http.  The callable caches the token the way ``ManagementClient``'s
``TokenProvider`` does: until 10 s before it expires.

Per user: ``for role in client.users.roles.list(id)`` -- the documented usage.  The
pager asks for the next page until one comes back empty, so every user holding a
role costs two calls.  Retries are the SDK's defaults (``max_retries=2``: 429, 408,
409, 5xx and connection errors, waiting ``Retry-After`` or the reset or 1 s, 2 s).
A user whose call still fails is left unanswered and the loop goes on.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

from contenders.base import ContenderRun, Roles

ROUTE = "per-user"
LEEWAY_S = 10  # auth0.management.token_provider.LEEWAY_SECONDS


def unavailable() -> str | None:
    try:
        version = importlib.metadata.version("auth0-python")
    except importlib.metadata.PackageNotFoundError:
        return "auth0-python is not installed (pip install -e '.[bench]')"
    if int(version.split(".")[0]) < 5:
        return f"auth0-python {version}: this benchmark is written for 5.x/6.x"
    try:
        from auth0.management import Auth0  # noqa: F401 - availability check
    except ImportError:
        return f"auth0-python {version} has no auth0.management.Auth0 (base_url option)"
    return None


def token_supplier(domain: str, client_id: str, client_secret: str) -> Callable[[], str]:
    from auth0.authentication import GetToken

    parts = urlsplit(domain)
    get_token = GetToken(
        parts.netloc, client_id, client_secret=client_secret, protocol=parts.scheme
    )
    cached: dict[str, float | str] = {}

    def token() -> str:
        if "token" not in cached or time.time() >= float(cached["expires_at"]) - LEEWAY_S:
            answer = get_token.client_credentials(f"{domain}/api/v2/")
            cached["token"] = answer["access_token"]
            cached["expires_at"] = time.time() + float(answer["expires_in"])
        return str(cached["token"])

    return token


def run(domain: str, client_id: str, client_secret: str, user_ids: list[str]) -> ContenderRun:
    from auth0.management import Auth0
    from auth0.management.core.api_error import ApiError

    client = Auth0(
        base_url=f"{domain}/api/v2", token=token_supplier(domain, client_id, client_secret)
    )
    roles: Roles = {}
    failures: Counter[str] = Counter()
    for user_id in user_ids:
        try:
            roles[user_id] = [role.id for role in client.users.roles.list(user_id)]
        except ApiError as error:
            roles[user_id] = None
            failures[str(error.status_code)] += 1
        except Exception as error:  # httpx transport errors, bodies cut short
            roles[user_id] = None
            failures[type(error).__name__] += 1
    return ContenderRun(roles, {"failed": dict(failures)})
