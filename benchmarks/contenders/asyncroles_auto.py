"""asyncroles, ``Client.fetch_roles(ids, strategy="auto")``."""

from __future__ import annotations

from contenders._asyncroles import contender

ROUTE = "best"
unavailable, run = contender("auto")
