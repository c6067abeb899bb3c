"""What a contender returns when it has more to say than the roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContenderRun", "Roles"]

#: user id -> role ids, or None when the contender got no answer for that user.
Roles = dict[str, list[str] | None]


@dataclass
class ContenderRun:
    roles: Roles
    info: dict[str, Any] = field(default_factory=dict)
