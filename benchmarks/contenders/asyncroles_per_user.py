"""asyncroles, ``Client.fetch_roles(ids, strategy="per-user")`` (or no strategy before
strategies existed: per-user was the only one)."""

from __future__ import annotations

from contenders import _asyncroles
from contenders.base import ContenderRun

ROUTE = "per-user"
STRATEGY = "per-user"


def unavailable() -> str | None:
    return _asyncroles.unavailable(STRATEGY)


async def run(
    domain: str, client_id: str, client_secret: str, user_ids: list[str], *, trace: bool = False
) -> ContenderRun:
    return await _asyncroles.fetch(
        domain, client_id, client_secret, user_ids, strategy=STRATEGY, trace=trace
    )
