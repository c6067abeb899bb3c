"""The plain records asyncroles returns: roles and one result per user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Role", "Status", "UserRoles"]

#: ``ok``: ``roles`` holds the user's roles (possibly empty).
#: ``not_found``: Auth0 says the user does not exist; ``roles`` is None.
#: ``failed``: retries were exhausted or Auth0 refused the request; ``error`` says why.
Status = Literal["ok", "not_found", "failed"]


@dataclass(frozen=True, slots=True)
class Role:
    """A role as ``GET /api/v2/users/{id}/roles`` returns it."""

    id: str
    name: str
    description: str | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Role:
        return cls(id=obj["id"], name=obj.get("name") or "", description=obj.get("description"))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description}


@dataclass(frozen=True, slots=True)
class UserRoles:
    """The outcome for one user: exactly one of these per distinct input user."""

    user_id: str
    status: Status
    roles: tuple[Role, ...] | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON Lines record: ``error`` appears only on ``failed`` records."""
        out: dict[str, Any] = {
            "user_id": self.user_id,
            "status": self.status,
            "roles": None if self.roles is None else [r.to_json() for r in self.roles],
        }
        if self.status == "failed":
            out["error"] = self.error
        return out
