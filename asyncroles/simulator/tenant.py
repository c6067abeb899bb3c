"""A deterministic Auth0 tenant: users, roles, who holds what. Pure data, no I/O.

Built from ``(users, roles, seed)`` alone, so a test, a benchmark and a
``simulate`` process with the same three numbers see the same tenant.

Memory stays small at a million users: user ids are one list of strings plus one
dict id -> index; role assignments are one offset table and one flat array of
role indices (``array``), not lists of strings.  Profile fields (email, name,
picture, created_at) are computed from the user's index when asked for
(``identities.py``).

What it models (auth0-api.md):
- user ids in every realistic form and the legal but awkward ones a client must
  encode exactly once (``/``, ``+``, space, ``%`` and a literal ``%2F``, non-ASCII,
  emoji, ``?#&=``; see ``identities.py``).  With 50 users or more every awkward
  kind and every realistic form is present.
- a skewed assignment: about 35 % of users hold no role, most others 1-3, some
  4-10, a few exactly 50 (the per-user maximum).  Role popularity is Zipf-like,
  so at 20,000 users several roles have far more than 1000 members.
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from asyncroles.simulator import identities
from asyncroles.simulator.identities import AWKWARD_KINDS, CONNECTIONS, REALISTIC_KINDS

__all__ = ["AWKWARD_KINDS", "CONNECTIONS", "Role", "Tenant"]

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

_AWKWARD_SHARE = 0.002  # beyond the first 50 users

# Fixed slots among the first 50 users: every awkward kind and every realistic
# kind appears in any tenant of 50 users or more.
_FIXED_KINDS: dict[int, str] = {
    1: "google-oauth2",
    2: "samlp",
    3: "slash",
    4: "email",
    6: "oidc",
    8: "waad",
    9: "plus",
    11: "github",
    12: "windowslive",
    13: "apple",
    14: "space",
    16: "sms",
    18: "percent",
    24: "pct2f",
    28: "nonascii",
    33: "emoji",
    38: "query",
}
# Index 7 holds exactly 50 roles (or every role when there are fewer): any tenant
# of 20 users or more has a user at the Auth0 per-user maximum.
_FULL_USER = 7
_MAX_ROLES_PER_USER = 50  # Auth0 entity limit (auth0-api.md)

_ROLE_AREAS = (
    "Billing", "Support", "Sales", "Engineering", "Finance", "Marketing", "Security",
    "Operations", "Legal", "HR", "Data", "Product", "Partner", "Audit", "Reporting",
    "Infrastructure", "Content", "Compliance", "Research", "Admin",
)  # fmt: skip
_ROLE_LEVELS = ("Viewer", "Editor", "Admin", "Manager", "Analyst", "Owner", "Auditor", "Agent")


@dataclass(frozen=True, slots=True)
class Role:
    """A role as the Management API returns it."""

    id: str
    name: str
    description: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"id": self.id, "name": self.name, "description": self.description}


class Tenant:
    """Users, roles and assignments of one simulated tenant, with mutation hooks."""

    def __init__(self, users: int = 1000, roles: int = 50, seed: int = 1) -> None:
        if users < 0 or not 0 <= roles <= 65535:  # role indices are stored as uint16
            raise ValueError("users must be >= 0 and roles within 0..65535")
        self.seed = seed
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._alive = bytearray()
        # Role assignment table: the roles of user i are
        # _flat[_offsets[i]:_offsets[i + 1]] (role indices, ascending).
        self._offsets = array("L", [0])
        self._flat = array("H")
        self._roles: list[Role] = []
        self._role_alive: list[bool] = []
        self._role_index: dict[str, int] = {}
        self._roles_deleted = 0
        self._members: list[list[str]] | None = None  # built on first use
        self._fragments: list[bytes] | None = None
        self.connections: dict[str, str] = {
            name: "con_" + _seeded(seed, f"connection:{name}", 16)
            for name, _provider in CONNECTIONS.values()
        }
        self._make_roles(roles)
        self._make_users(users)

    # --- generation ---------------------------------------------------------

    def _make_roles(self, count: int) -> None:
        rnd = random.Random(f"asyncroles:{self.seed}:roles")
        names = [f"{area} {level}" for level in _ROLE_LEVELS for area in _ROLE_AREAS]
        for k in range(count):
            # 160 distinct "Area Level" names, then numbered ones: names stay unique.
            name = names[k] if k < len(names) else f"{names[k % len(names)]} {k // len(names)}"
            role_id = "rol_" + "".join(rnd.choices(_ALNUM, k=16))
            while role_id in self._role_index:
                role_id = "rol_" + "".join(rnd.choices(_ALNUM, k=16))
            # Some roles have no description (the API returns null).
            description = None if rnd.random() < 0.2 else f"Can work as {name.lower()}"
            self._role_index[role_id] = len(self._roles)
            self._roles.append(Role(role_id, name, description))
            self._role_alive.append(True)

    def _make_users(self, count: int) -> None:
        rnd = random.Random(f"asyncroles:{self.seed}:users")
        n_roles = len(self._roles)
        # Zipf-like popularity: role k is picked with weight 1 / (k + 1) ** 1.1.
        cumulative: list[float] = []
        total = 0.0
        for k in range(n_roles):
            total += 1.0 / (k + 1) ** 1.1
            cumulative.append(total)
        kinds = [kind for kind, _ in REALISTIC_KINDS]
        kind_cum: list[float] = []
        acc = 0.0
        for _, weight in REALISTIC_KINDS:
            acc += weight
            kind_cum.append(acc)
        for i in range(count):
            kind = _FIXED_KINDS.get(i)
            if kind is None:
                if i >= 50 and rnd.random() < _AWKWARD_SHARE:
                    kind = AWKWARD_KINDS[rnd.randrange(len(AWKWARD_KINDS))]
                else:
                    kind = kinds[bisect.bisect(kind_cum, rnd.random() * acc)]
            user_id = identities.make_id(kind, i, rnd, self.seed, i == _FIXED_NONASCII)
            while user_id in self._index:  # astronomically rare for the random forms
                user_id = identities.make_id("auth0", i, rnd, self.seed, False)
            k = _MAX_ROLES_PER_USER if i == _FULL_USER else self._role_count(rnd)
            k = min(k, n_roles)
            if k == 0:
                picked: Iterable[int] = ()
            elif k * 3 >= n_roles:
                picked = rnd.sample(range(n_roles), k)
            else:
                chosen: set[int] = set()
                while len(chosen) < k:
                    chosen.add(bisect.bisect(cumulative, rnd.random() * total))
                picked = chosen
            self._append(user_id, sorted(picked))

    @staticmethod
    def _role_count(rnd: random.Random) -> int:
        r = rnd.random()
        if r < 0.35:
            return 0
        if r < 0.60:
            return 1
        if r < 0.75:
            return 2
        if r < 0.85:
            return 3
        if r < 0.999:
            return rnd.randint(4, 10)
        return _MAX_ROLES_PER_USER

    def _append(self, user_id: str, role_indices: Sequence[int]) -> int:
        index = len(self._ids)
        self._ids.append(user_id)
        self._index[user_id] = index
        self._alive.append(1)
        self._flat.extend(role_indices)
        self._offsets.append(len(self._flat))
        return index

    # --- profile fields (computed, not stored) -----------------------------

    def profile(self, i: int) -> dict[str, Any]:
        """Every exportable field of user ``i`` (as the users-export job sees it)."""
        return identities.profile(self._ids[i], i, self.seed, self.connections)

    def member_json(self, i: int) -> dict[str, str]:
        """User ``i`` as ``GET /roles/{id}/users`` lists it."""
        p = self.profile(i)
        return {
            "user_id": p["user_id"],
            "email": p["email"],
            "name": p["name"],
            "picture": p["picture"],
        }

    def members_json(self, user_ids: Iterable[str]) -> list[dict[str, str]]:
        """Users (existing or not) as ``GET /roles/{id}/users`` lists them."""
        index = self._index
        return [self.member_json(index[user_id]) for user_id in user_ids]

    def connection_of(self, i: int) -> str:
        return identities.connection_of(self._ids[i])

    # --- ground truth ------------------------------------------------------

    @property
    def user_ids(self) -> Sequence[str]:
        """Every user id ever created, in generation order (deleted ones included)."""
        return self._ids

    @property
    def roles(self) -> list[Role]:
        """The roles that exist, in generation order."""
        return [r for r, alive in zip(self._roles, self._role_alive, strict=True) if alive]

    def exists(self, user_id: str) -> bool:
        i = self._index.get(user_id)
        return i is not None and bool(self._alive[i])

    def user_index(self, user_id: str) -> int | None:
        """The index of an existing user, None when unknown or deleted."""
        i = self._index.get(user_id)
        if i is None or not self._alive[i]:
            return None
        return i

    def role_indices_of(self, i: int) -> Sequence[int]:
        """Role indices held by user ``i``, ascending, deleted roles left out."""
        held = self._flat[self._offsets[i] : self._offsets[i + 1]]
        if self._roles_deleted == 0:
            return held
        return [r for r in held if self._role_alive[r]]

    def roles_of(self, user_id: str) -> list[str]:
        """Role ids of an existing user; KeyError when unknown or deleted."""
        i = self.user_index(user_id)
        if i is None:
            raise KeyError(user_id)
        return [self._roles[r].id for r in self.role_indices_of(i)]

    def truth(self) -> dict[str, frozenset[str]]:
        """Every existing user -> the ids of the roles it holds."""
        role_ids = [r.id for r in self._roles]
        alive_roles = self._role_alive
        out: dict[str, frozenset[str]] = {}
        flat, offsets = self._flat, self._offsets
        for i, user_id in enumerate(self._ids):
            if self._alive[i]:
                out[user_id] = frozenset(
                    role_ids[r] for r in flat[offsets[i] : offsets[i + 1]] if alive_roles[r]
                )
        return out

    def alive_indices(self) -> list[int]:
        """Indices of every existing user, in generation order."""
        alive = self._alive
        return [i for i in range(len(self._ids)) if alive[i]]

    def role_index(self, role_id: str) -> int | None:
        """The index of an existing role, None when unknown or deleted."""
        r = self._role_index.get(role_id)
        if r is None or not self._role_alive[r]:
            return None
        return r

    def role_at(self, r: int) -> Role:
        return self._roles[r]

    @property
    def role_fragments(self) -> list[bytes]:
        """Each role pre-serialised as JSON (responses are joined from these)."""
        if self._fragments is None:
            self._fragments = [orjson.dumps(role.to_json()) for role in self._roles]
        return self._fragments

    def sorted_members(self, r: int) -> list[str]:
        """Existing holders of role index ``r``, sorted by user id (stable paging)."""
        if self._members is None:
            members: list[list[str]] = [[] for _ in self._roles]
            flat, offsets, ids, alive = self._flat, self._offsets, self._ids, self._alive
            for i in range(len(ids)):
                if alive[i]:
                    user_id = ids[i]
                    for role in flat[offsets[i] : offsets[i + 1]]:
                        members[role].append(user_id)
            for holders in members:
                holders.sort()
            self._members = members
        return self._members[r]

    def members_of(self, role_id: str) -> list[str]:
        """Ids of the existing users holding ``role_id``, sorted; KeyError when unknown."""
        r = self.role_index(role_id)
        if r is None:
            raise KeyError(role_id)
        return list(self.sorted_members(r))

    # --- mutation hooks ----------------------------------------------------

    def add_user(self, user_id: str, role_ids: Iterable[str] = ()) -> None:
        """Create a user holding ``role_ids`` (tests use it for arbitrary ids)."""
        if user_id in self._index:
            raise ValueError(f"user {user_id!r} already exists (or existed)")
        indices: list[int] = []
        for role_id in role_ids:
            r = self.role_index(role_id)
            if r is None:
                raise KeyError(role_id)
            indices.append(r)
        indices = sorted(set(indices))
        if len(indices) > _MAX_ROLES_PER_USER:
            raise ValueError("a user holds at most 50 roles (Auth0 entity limit)")
        self._append(user_id, indices)
        if self._members is not None:
            for r in indices:
                bisect.insort(self._members[r], user_id)

    def delete_user(self, user_id: str) -> None:
        """Delete a user: it vanishes from both routes; KeyError when unknown."""
        i = self._index[user_id]
        if not self._alive[i]:
            return
        self._alive[i] = 0
        if self._members is not None:
            for r in self._flat[self._offsets[i] : self._offsets[i + 1]]:
                holders = self._members[r]
                at = bisect.bisect_left(holders, user_id)
                if at < len(holders) and holders[at] == user_id:
                    del holders[at]

    def delete_role(self, role_id: str) -> None:
        """Delete a role: unassigned from everyone; KeyError when unknown."""
        r = self._role_index[role_id]
        if self._role_alive[r]:
            self._role_alive[r] = False
            self._roles_deleted += 1

    def rename_role(self, role_id: str, name: str) -> None:
        """Rename a role (names are unique per tenant)."""
        r = self.role_index(role_id)
        if r is None:
            raise KeyError(role_id)
        if any(role.name == name for role in self.roles if role.id != role_id):
            raise ValueError(f"a role named {name!r} already exists")
        old = self._roles[r]
        self._roles[r] = Role(old.id, name, old.description)
        self._fragments = None


_FIXED_NONASCII = next(i for i, kind in _FIXED_KINDS.items() if kind == "nonascii")


def _seeded(seed: int, label: str, length: int) -> str:
    rnd = random.Random(f"asyncroles:{seed}:{label}")
    return "".join(rnd.choices(_ALNUM, k=length))
