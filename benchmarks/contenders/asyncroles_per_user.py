"""asyncroles, ``Client.fetch_roles(ids, strategy="per-user")``."""

from __future__ import annotations

from contenders._asyncroles import contender

ROUTE = "per-user"
unavailable, run = contender("per-user")
