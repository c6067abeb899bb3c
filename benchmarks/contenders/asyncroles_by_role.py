"""asyncroles, ``Client.fetch_roles(ids, strategy="by-role")``."""

from __future__ import annotations

from contenders._asyncroles import contender

ROUTE = "by-role"
unavailable, run = contender("by-role")
