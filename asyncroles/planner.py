"""Which route is cheaper, per-user or by-role: the cost arithmetic and the census behind it.

The arithmetic is pure (plain numbers in, a ``Plan`` out).  The census around it is
thin: it lists the roles and asks each role for its member count, through the
client's one shared scheduler like every other request.

Costs in requests, from ``/work/shared/auth0-api.md``:

* per-user: one request per user ("Per user": ``per_page=50`` answers any user in
  one call, since a user holds at most 50 roles);
* by-role: ``ceil(roles/100)`` pages of ``GET /api/v2/roles``, then each role's
  members in checkpoint pages of ``take`` (100, or 50 where Public Cloud caps it):
  ``max(1, ceil(members/take))`` a role, since even an empty role answers one
  (empty) page ("Per role").

The census asks each role for one offset page of 100 with ``include_totals=true``:
the member count for the plan, and for roles of at most 100 members (most of them,
in most tenants) the whole membership, so by-role does not read those roles again.
A planning request is never wasted on by-role's account except for roles of more
than 100 members, which are then read in checkpoint mode from the start (offset
paging shifts under concurrent edits; checkpoint paging does not).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from asyncroles.client import Client, _GaveUp
from asyncroles.errors import ApiError, RetryError, UsageError
from asyncroles.models import Role
from asyncroles.pacing import PacerState
from asyncroles.pipeline import stream
from asyncroles.protocol import Kind, role_users_offset_path, roles_path

__all__ = [
    "DEFAULT_TAKE",
    "FALLBACK_TAKE",
    "MIN_SAVING",
    "Pace",
    "Plan",
    "RoleCensus",
    "Route",
    "Strategy",
    "by_role_requests",
    "choose",
    "choose_early",
    "duration_s",
    "list_roles",
    "listing_requests",
    "role_pages",
    "survey",
]

#: What ``Client.fetch_roles(strategy=...)`` accepts; ``auto`` plans, then picks a route.
Strategy = Literal["per-user", "by-role", "auto"]
Route = Literal["per-user", "by-role"]

ROLES_PER_PAGE = 100  # /roles: per_page 1..100 ("Per role")
PROBE_PER_PAGE = 100  # the census's one offset page per role (page 0 is always allowed)
DEFAULT_TAKE = 100  # checkpoint take: 1..100 ...
FALLBACK_TAKE = 50  # ... "(unsure) Public Cloud may cap it at 50 -- fall back to 50 on a 400"

#: ``auto`` picks by-role only when it saves more than this many requests.  Below
#: that the difference is a second or two at any published rate, and per-user's
#: answer is the richer one: it tells a deleted user (``not_found``) from a user
#: without roles, which by-role cannot.  It also means an input of at most this many
#: ids goes per-user without a single planning request.
MIN_SAVING = 20


# -- pure arithmetic ------------------------------------------------------------------


def listing_requests(roles: int) -> int:
    """Pages of ``GET /api/v2/roles`` (100 a page) to list ``roles`` roles."""
    return max(1, math.ceil(roles / ROLES_PER_PAGE))


def role_pages(members: int, take: int) -> int:
    """Checkpoint pages to read a role of ``members`` members: an empty role costs one."""
    return max(1, math.ceil(members / take))


def by_role_requests(
    role_members: Sequence[int], take: int = DEFAULT_TAKE, *, prefetched: int | None = None
) -> int:
    """Requests to read every role's members in checkpoint pages of ``take``.

    ``prefetched``: roles of at most this many members are already read whole (the
    census's probe), so they cost nothing more.  The role listing is not included.
    """
    return sum(role_pages(m, take) for m in _unread(role_members, prefetched))


def _unread(role_members: Sequence[int], prefetched: int | None) -> list[int]:
    if prefetched is None:
        return list(role_members)
    return [m for m in role_members if m > prefetched]


@dataclass(frozen=True, slots=True)
class Pace:
    """The rate requests go at: what the client learned of the tenant's bucket."""

    refill_per_s: float  # sustained rate (net of what other applications spend)
    burst: int  # tokens spendable at once before the refill rate binds (above the reserve)
    rtt_s: float | None = None  # round trip: by-role reads a role's pages one after another
    learned: bool = False  # False: the refill rate is the client's cautious first guess

    @classmethod
    def from_state(cls, state: PacerState, *, full_bucket: bool = False) -> Pace | None:
        """From ``Client.rate_limit``; None before any response told the bucket's size.

        The burst is what is left in the bucket now, or (``full_bucket``) what a
        later run starting on a full bucket would have.
        """
        if state.limit is None or not state.refill_per_s:
            return None
        available = state.remaining_estimate if state.remaining_estimate is not None else 0.0
        if full_bucket:
            available = state.limit
        burst = max(0, math.floor(available) - (state.reserve or 0))
        return cls(state.refill_per_s, burst, state.rtt_s, state.refill_learned)


def duration_s(requests: int, pace: Pace, *, chain: int = 0) -> float:
    """Seconds to send ``requests`` at ``pace``: the burst goes at once, the rest at
    the refill rate; never less than ``chain`` requests one round trip after another
    (by-role follows each role's cursor in turn: the biggest role is such a chain)."""
    paced = max(0, requests - pace.burst) / pace.refill_per_s
    return max(paced, chain * (pace.rtt_s or 0.0))


@dataclass(frozen=True, slots=True)
class Plan:
    """What each route would still cost, which one to take, and why.

    Request counts are what is still to spend, planning excluded (it is spent:
    ``planning_requests``).  ``per_user_requests`` is None without a list of users:
    per-user needs one id per request.  ``by_role_bound`` marks ``by_role_requests``
    as a lower bound (members were not counted: per-user was cheaper regardless).
    """

    choice: Route
    reason: str
    users: int | None
    roles: int | None
    take: int
    planning_requests: int
    per_user_requests: int | None
    by_role_requests: int | None
    by_role_bound: bool = False
    memberships: int | None = None  # role assignments in total (a user with 3 roles: 3)
    largest_role: int | None = None  # members of the biggest role
    chain: int = 0  # pages of the biggest role still to read: sequential, one RTT each
    pace: Pace | None = None
    census: RoleCensus | None = field(default=None, repr=False, compare=False)

    @property
    def per_user_s(self) -> float | None:
        if self.pace is None or self.per_user_requests is None:
            return None
        return duration_s(self.per_user_requests, self.pace)

    @property
    def by_role_s(self) -> float | None:
        if self.pace is None or self.by_role_requests is None:
            return None
        return duration_s(self.by_role_requests, self.pace, chain=self.chain)

    def to_json(self) -> dict[str, Any]:
        pace = self.pace
        return {
            "choice": self.choice,
            "reason": self.reason,
            "users": self.users,
            "roles": self.roles,
            "memberships": self.memberships,
            "largest_role": self.largest_role,
            "take": self.take,
            "planning_requests": self.planning_requests,
            "per_user": {"requests": self.per_user_requests, "seconds": _round(self.per_user_s)},
            "by_role": {
                "requests": self.by_role_requests,
                "at_least": self.by_role_bound,
                "seconds": _round(self.by_role_s),
            },
            "rate": None
            if pace is None
            else {
                "refill_per_s": round(pace.refill_per_s, 3),
                "burst": pace.burst,
                "learned": pace.learned,
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def choose(
    users: int | None,
    role_members: Sequence[int],
    *,
    take: int = DEFAULT_TAKE,
    planning_spent: int = 0,
    listed: bool = False,
    prefetched: int | None = None,
    pace: Pace | None = None,
) -> Plan:
    """The cheaper route once every role's member count is known.

    ``users``: distinct input ids (None: no list, so by-role is the only route).
    ``listed``: the role list is in hand (else its pages are counted);
    ``prefetched``: roles of at most that many members are read already.  With the
    defaults, by-role costs the whole ``ceil(roles/100) + sum(max(1, ceil(m/take)))``.
    Ties, and savings of at most ``MIN_SAVING``, go to per-user.
    """
    if take < 1:
        raise UsageError(f"take must be at least 1, not {take}")
    roles = len(role_members)
    listing = 0 if listed else listing_requests(roles)
    by_role = listing + by_role_requests(role_members, take, prefetched=prefetched)
    unread = _unread(role_members, prefetched)
    common: dict[str, Any] = {
        "users": users,
        "roles": roles,
        "take": take,
        "planning_requests": planning_spent,
        "per_user_requests": users,
        "by_role_requests": by_role,
        "memberships": sum(role_members),
        "largest_role": max(role_members, default=0),
        "chain": max((role_pages(m, take) for m in unread), default=0),
        "pace": pace,
    }
    if users is None:
        reason = (
            f"no list of users: per-user needs one request per user id; by-role reads "
            f"every user that holds a role in {by_role:,} requests"
        )
        return Plan("by-role", reason, **common)
    if users - by_role > MIN_SAVING:
        reason = (
            f"by-role needs {by_role:,} requests, per-user {users:,}"
            f" ({_times(users, by_role)} fewer)"
        )
        return Plan("by-role", reason, **common)
    reason = f"per-user needs {users:,} requests, by-role {by_role:,}"
    if users > by_role:
        reason += f" (saving only {users - by_role}: per-user also tells deleted users apart)"
    return Plan("per-user", reason, **common)


def choose_early(
    users: int | None,
    roles: int | None,
    *,
    take: int = DEFAULT_TAKE,
    listing_left: int = 0,
    planning_spent: int = 0,
    pace: Pace | None = None,
) -> Plan | None:
    """Per-user, when that is already certain without counting members; else None.

    ``roles`` None: nothing is known yet, and by-role costs at least nothing, so
    only an input of at most ``MIN_SAVING`` ids is certain.  With ``roles`` known
    by-role costs at least ``listing_left`` more listing pages plus one request a
    role (a member count or a page), so ``MIN_SAVING`` more than that is certain.
    """
    if users is None:
        return None
    floor = 0 if roles is None else listing_left + roles
    if users - floor > MIN_SAVING:
        return None
    if roles is None:
        reason = f"only {users:,} users: per-user costs at most {users:,} requests"
    else:
        reason = (
            f"per-user needs {users:,} requests; by-role at least {floor:,} "
            f"(one a role for {roles:,} roles)"
        )
    return Plan(
        "per-user",
        reason,
        users=users,
        roles=roles,
        take=take,
        planning_requests=planning_spent,
        per_user_requests=users,
        by_role_requests=None if roles is None else floor,
        by_role_bound=True,
        pace=pace,
    )


def _times(big: int, small: int) -> str:
    if small <= 0:
        return "all"
    ratio = big / small
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


# -- the census -----------------------------------------------------------------------


@dataclass(slots=True)
class RoleCensus:
    """The roles, as listed, and what the planner learned of each.

    ``members[i]`` is the member count of ``roles[i]`` (None before counting).
    ``complete`` holds every member id of the roles the census read whole (at most
    ``PROBE_PER_PAGE`` members), by role id.  Roles that vanished while counting are
    left out of ``roles``.  Kept by ``Plan.census`` so that by-role does not list or
    read them again.
    """

    roles: list[Role]
    members: list[int] | None = None
    complete: dict[str, list[str]] = field(default_factory=dict)


async def survey(
    client: Client, users: int | None, *, take: int = DEFAULT_TAKE, exact: bool = True
) -> Plan:
    """Plan a run for ``users`` distinct input ids (None: the whole tenant, no list).

    ``exact``: count every role's members, so both estimates are exact (about one
    request per role; what ``asyncroles plan`` does).  Else stop as soon as the
    choice is certain: no request for at most ``MIN_SAVING`` ids, one request when
    the input is too small to beat one request per role, none at all without a list
    (by-role is then the only route); this is what ``strategy="auto"`` does.
    """
    requests_before = client.stats.requests

    def spent() -> int:
        return client.stats.requests - requests_before

    def pace() -> Pace | None:
        return Pace.from_state(client.rate_limit)

    if not exact:
        early = choose_early(users, None, take=take, pace=pace())
        if early is not None:
            return early
        if users is None:
            reason = "no list of users: by-role is the only route (per-user needs the ids)"
            return Plan(
                "by-role",
                reason,
                users=None,
                roles=None,
                take=take,
                planning_requests=0,
                per_user_requests=None,
                by_role_requests=None,
                pace=pace(),
            )
    first, total = await _roles_page(client, 0)
    if not exact:
        roles = total if total is not None else len(first)  # no totals: at least these
        early = choose_early(
            users,
            roles,
            take=take,
            listing_left=listing_requests(roles) - 1,
            planning_spent=spent(),
            pace=pace(),
        )
        if early is not None:
            return early
    census = await list_roles(client, first_page=(first, total))
    await _count_members(client, census)
    assert census.members is not None
    plan = choose(
        users,
        census.members,
        take=take,
        planning_spent=spent(),
        listed=True,
        prefetched=PROBE_PER_PAGE,
        pace=pace(),
    )
    return replace(plan, census=census)


async def list_roles(
    client: Client, *, first_page: tuple[list[Role], int | None] | None = None
) -> RoleCensus:
    """Every role, in offset pages of 100 (``/roles`` has no checkpoint mode).

    Deduplicated by id: a role created while listing can shift a role from one
    page onto the next; the result is the tenant's roles as of the listing.
    """
    roles: dict[str, Role] = {}
    page = 0
    batch, total = first_page if first_page is not None else await _roles_page(client, 0)
    while True:
        for role in batch:
            roles.setdefault(role.id, role)
        done = len(batch) < ROLES_PER_PAGE or (total is not None and len(roles) >= total)
        # Auth0 holds at most 1000 roles; a tenant answering forever is not Auth0.
        if done or page >= 1000 // ROLES_PER_PAGE + 1:
            return RoleCensus(list(roles.values()))
        page += 1
        batch, total = await _roles_page(client, page)


async def _roles_page(client: Client, page: int) -> tuple[list[Role], int | None]:
    path = roles_path(page, ROLES_PER_PAGE)
    data = await _get(client, path)
    if isinstance(data, list):  # a tenant that ignored include_totals
        items, total = data, None
    elif isinstance(data, dict) and isinstance(data.get("roles"), list):
        items, total = data["roles"], data.get("total")
    else:
        raise _shape_error(path)
    try:
        roles = [Role.from_json(item) for item in items]
    except (KeyError, TypeError, AttributeError):
        raise _shape_error(path) from None
    return roles, total if isinstance(total, int) else None


async def _count_members(client: Client, census: RoleCensus) -> None:
    """One offset page of 100 with totals per role, several roles at once."""
    counts: dict[str, int] = {}

    async def probe(role: Role) -> None:
        path = role_users_offset_path(role.id, 0, PROBE_PER_PAGE)
        data = await _get(client, path, missing_ok=True)
        if data is None:  # deleted since the listing: it has no members now
            return
        if isinstance(data, dict) and isinstance(data.get("users"), list):
            users, total = data["users"], data.get("total")
        elif isinstance(data, list):
            users, total = data, None
        else:
            raise _shape_error(path)
        ids = [u["user_id"] for u in users if isinstance(u, dict) and "user_id" in u]
        if not isinstance(total, int):
            # No totals: a short page is all there is, a full one at least that much.
            total = len(ids) if len(ids) < PROBE_PER_PAGE else PROBE_PER_PAGE + 1
        counts[role.id] = total
        if total <= PROBE_PER_PAGE and len(ids) == total:
            census.complete[role.id] = ids

    # queue_size=1: the pool keeps growing until the last role is handed out.
    results = stream(census.roles, probe, workers=client._workers_wanted, queue_size=1)
    try:
        async for _ in results:
            pass
    finally:
        await results.aclose()
    census.roles = [role for role in census.roles if role.id in counts]
    census.members = [counts[role.id] for role in census.roles]


async def _get(client: Client, path: str, *, missing_ok: bool = False) -> Any:
    """The JSON of one planning call; None for a 404 when ``missing_ok``."""
    try:
        decoded = await client._request("GET", path)
    except _GaveUp as gave_up:
        raise RetryError(
            f"{path}: {gave_up.reason}", reason=gave_up.reason, attempts=gave_up.attempts
        ) from None
    if decoded.kind is Kind.OK:
        return decoded.data
    if decoded.kind is Kind.NOT_FOUND and missing_ok:
        return None
    raise ApiError(
        f"Auth0 refused {path.split('?')[0]}: {decoded.message}",
        status=decoded.status,
        path=path,
        hint="check that the domain is an Auth0 tenant's, or use --strategy per-user",
    )


def _shape_error(path: str) -> ApiError:
    return ApiError(
        f"unexpected response shape from {path.split('?')[0]}",
        status=200,
        path=path,
        hint="this does not look like the Auth0 Management API; use --strategy per-user",
    )
