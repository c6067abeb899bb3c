"""The by-role route: every user's roles from each role's member list.

Per-user fetching costs one request per user.  Auth0 also lists each role's members
(``GET /api/v2/roles/{id}/users``, checkpoint pagination, up to 100 a page), so the
whole mapping costs about ``ceil(roles/100) + sum(ceil(members/take))`` requests
(``/work/shared/auth0-api.md``, "Per role"): for most tenants a hundred times fewer.

How: list every role, then read several roles at once, each one page after another
(a checkpoint cursor chains the pages), all through the client's ``_request`` and so
through its one shared scheduler.  The biggest roles start first: a role's pages are
sequential (a role of M members takes at least M/100 round trips, whatever the
rate), and a long chain started last would be the run's tail.  Results come at the
end: a user's roles are known only once every role is read.

What it answers, and its limits (say them wherever by-role is offered):

* With input ids: exactly one ``ok`` record per distinct input id; users in no role
  get ``roles=()``.  By-role cannot tell a deleted or unknown user from a user
  without roles (``not_found`` is a per-user answer): both get ``roles=()``.
* Without input: one record for every user that holds at least one role.
* The answer is as of the moment each role is read.  A role deleted mid-run (404 on
  a page) is dropped: its users keep their other roles.  Roles created mid-run are
  not seen.  Role objects are the ones the listing gave (a role renamed mid-run
  keeps the listed name), with the same ``id``, ``name`` and ``description`` fields
  ``/users/{id}/roles`` gives.
* An expired or invalid cursor (a 400 on a ``from``; cursors live 24 h) restarts that
  role from its first page; members seen twice count once.
* ``take=100`` is tried first; when the tenant answers 400 the run falls back to 50
  for good ("(unsure) Public Cloud may cap it at 50").  The first page goes alone
  until a take is confirmed, so a capped tenant costs one 400, not one per reader.
* A user's roles come out sorted by role name (then id): deterministic, whatever
  order the roles were read in.

Memory: user id -> an ``int`` bitmask of role indices (bit ``i`` = the ``i``-th role
by name).  Masks are interned, so users with the same roles share one object; the
cost is the id string plus a dict slot, 100 to 150 bytes a user (a million users
holding 20 roles each: 105 MiB; holding a random 10 of 20: 138 MiB; measured by
``benchmarks/byrole_memory.py``).  With input ids, the ids are collected first into
that same dict (members outside it are skipped as they arrive), so the input costs
about the same per id and the tenant's other users nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator, Sequence
from typing import Any, Literal

from asyncroles.client import Client, _GaveUp
from asyncroles.errors import ApiError, RetryError, UsageError
from asyncroles.models import Role, UserRoles
from asyncroles.pipeline import stream
from asyncroles.planner import (
    DEFAULT_TAKE,
    FALLBACK_TAKE,
    Plan,
    RoleCensus,
    Strategy,
    list_roles,
    survey,
)
from asyncroles.protocol import Decoded, Kind, role_users_checkpoint_path

__all__ = ["RoleMap", "collect_ids", "fetch_by_role", "fetch_routed"]

STRATEGIES: tuple[Strategy, ...] = ("per-user", "by-role", "auto")
#: Restarts of one role after an expired or invalid cursor before the run gives up.
MAX_RESTARTS = 3
#: Rounds of the client's bounded retries one page gets before the run gives up:
#: a role that cannot be read leaves every user's answer in doubt.
PAGE_ROUNDS = 3
#: Distinct masks shared between users (and role tuples cached when emitting):
#: enough for any realistic tenant's role combinations, bounded for adversarial ones.
MAX_INTERNED = 1 << 16


class RoleMap:
    """User id -> roles, as one ``int`` bitmask per user over ``roles`` (in order).

    ``wanted``: the input ids, each mapped to 0 (see :func:`collect_ids`); members
    outside it are skipped.  None: every member is kept.  Adding a member twice is
    a no-op (bits), which is what dedupes a role read again after a restart.
    """

    __slots__ = ("_dropped", "_interned", "_masks", "_open", "roles")

    def __init__(self, roles: Sequence[Role], wanted: dict[str, int] | None = None) -> None:
        self.roles = tuple(roles)
        self._open = wanted is None
        self._masks: dict[str, int] = {} if wanted is None else wanted
        self._interned: dict[int, int] = {}
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._masks)

    def add(self, index: int, user_ids: Iterable[str]) -> None:
        """Record that every one of ``user_ids`` holds ``roles[index]``."""
        bit = 1 << index
        masks, interned, is_open = self._masks, self._interned, self._open
        for user_id in user_ids:
            old = masks.get(user_id)
            if old is None:
                if not is_open:
                    continue  # not an input id
                old = 0
            new = old | bit
            if new == old:
                continue
            shared = interned.get(new)
            if shared is None:
                shared = new
                if len(interned) < MAX_INTERNED:
                    interned[new] = new
            masks[user_id] = shared

    def drop(self, index: int) -> None:
        """``roles[index]`` no longer exists: leave it out of every answer."""
        self._dropped |= 1 << index

    def roles_of(self, mask: int) -> tuple[Role, ...]:
        roles = self.roles
        out: list[Role] = []
        while mask:
            low = mask & -mask  # lowest set bit
            out.append(roles[low.bit_length() - 1])
            mask ^= low
        return tuple(out)

    def results(self) -> Iterator[UserRoles]:
        """One ``ok`` record per input id, or per user holding a role (no input)."""
        keep = ~self._dropped
        cache: dict[int, tuple[Role, ...]] = {}
        for user_id, raw in self._masks.items():
            mask = raw & keep
            if not mask and self._open:
                continue  # held only roles deleted mid-run
            roles = cache.get(mask)
            if roles is None:
                roles = self.roles_of(mask)
                if len(cache) < MAX_INTERNED:
                    cache[mask] = roles
            yield UserRoles(user_id, "ok", roles)


async def collect_ids(user_ids: Iterable[str] | AsyncIterable[str]) -> dict[str, int]:
    """The distinct input ids, each mapped to 0: the seed of a :class:`RoleMap`."""
    if isinstance(user_ids, AsyncIterable):
        wanted: dict[str, int] = {}
        async for user_id in user_ids:
            wanted[user_id] = 0
        return wanted
    return dict.fromkeys(user_ids, 0)


async def fetch_routed(
    client: Client,
    user_ids: Iterable[str] | AsyncIterable[str] | None,
    strategy: Strategy,
    plan: Plan | None,
) -> AsyncGenerator[UserRoles, None]:
    """``Client.fetch_roles`` for every strategy: plan if asked, then take one route."""
    if strategy not in STRATEGIES:
        raise UsageError(
            f"unknown strategy {strategy!r}", hint="use 'per-user', 'by-role' or 'auto'"
        )
    wanted: dict[str, int] | None = None
    route = strategy
    if strategy == "auto":
        if plan is None and user_ids is not None:
            # The planner needs the count, and by-role the set: collect them once.
            wanted = await collect_ids(user_ids)
        if plan is None:
            plan = await survey(client, None if wanted is None else len(wanted), exact=False)
        route = plan.choice
    if route == "per-user":
        if user_ids is None:
            raise UsageError(
                "the per-user strategy needs user ids",
                hint="pass the ids, or use strategy 'by-role' to read every user holding a role",
            )
        source: Iterable[str] | AsyncIterable[str] = user_ids if wanted is None else wanted
        results = stream(source, client._fetch_user, workers=client._workers_wanted)
        try:
            async for result in results:
                yield result
        finally:
            await results.aclose()
        return
    if user_ids is not None and wanted is None:
        wanted = await collect_ids(user_ids)
    census = plan.census if plan is not None else None
    async for result in fetch_by_role(client, wanted, census=census):
        yield result


async def fetch_by_role(
    client: Client, wanted: dict[str, int] | None, *, census: RoleCensus | None = None
) -> AsyncGenerator[UserRoles, None]:
    """Read every role's members, then yield the records (see the module docstring).

    ``wanted`` (from :func:`collect_ids`) becomes the map itself; None reads every
    user holding a role.  ``census`` (from ``Client.plan``) saves listing the roles
    again and reading the roles it read whole.
    """
    if wanted is not None and not wanted:
        return  # no input ids: nothing to answer, nothing to read
    if census is None:
        census = await list_roles(client)
    counts = dict(zip((r.id for r in census.roles), census.members or (), strict=False))
    roles = sorted(census.roles, key=lambda role: (role.name, role.id))
    role_map = RoleMap(roles, wanted)
    unread: list[int] = []
    for index, role in enumerate(roles):
        members = census.complete.get(role.id)
        if members is None:
            unread.append(index)
        else:
            role_map.add(index, members)
    # Biggest first: each role is a chain of round trips (sorted() is stable, so
    # without counts this keeps the name order).
    unread = sorted(unread, key=lambda i: -counts.get(roles[i].id, 0))
    reader = _Reader(client, role_map)

    def readers(current: int) -> int:
        return min(len(unread), client._workers_wanted(current))

    # queue_size=1: a role is handed out only when a reader is free, so the pool
    # keeps growing (while the tenant has tokens to spare) until the last one is.
    pages = stream(unread, reader.read, workers=readers, queue_size=1)
    try:
        async for _ in pages:
            pass
    finally:
        await pages.aclose()
    for result in role_map.results():
        client._stats.users_ok += 1
        yield result


Blame = Literal["cursor", "take", "other"]


def _blame(decoded: Decoded) -> Blame:
    """What a 400 on a members page complains about."""
    data = decoded.data if isinstance(decoded.data, dict) else {}
    text = decoded.message.lower()
    if data.get("errorCode") == "invalid_paging" or "'from'" in text or "property from" in text:
        return "cursor"
    if "take" in text:
        return "take"
    return "other"


class _Reader:
    """Reads roles' member pages into a ``RoleMap``; shared by every reader task."""

    def __init__(self, client: Client, role_map: RoleMap) -> None:
        self._client = client
        self._map = role_map
        self.take = DEFAULT_TAKE
        self._take_confirmed = False
        self._learning = asyncio.Lock()

    async def read(self, index: int) -> None:
        """Every member of ``roles[index]``, following the cursor to the last page."""
        role = self._map.roles[index]
        cursor: str | None = None
        restarts = 0
        while True:
            decoded, path, take = await self._page(role, cursor)
            if decoded.kind is Kind.NOT_FOUND:
                # Deleted mid-run: drop it; its users keep their other roles.
                self._map.drop(index)
                return
            if decoded.kind is Kind.REJECTED:
                blame = _blame(decoded)
                # Once a page came back with this take, a 400 is about the cursor
                # unless Auth0 names the take.
                take_suspect = blame == "take" or (blame == "other" and not self._take_confirmed)
                if take > FALLBACK_TAKE and take_suspect:
                    # auth0-api.md: take may be capped at 50; 50 for the rest of the run.
                    self.take = min(self.take, FALLBACK_TAKE)
                    continue
                if cursor is None or restarts >= MAX_RESTARTS:
                    raise _refused(role, path, decoded, restarts)
                # An expired or invalid cursor: start the role over (members seen
                # again are no-ops in the map).
                restarts += 1
                cursor = None
                continue
            user_ids, following = _members(decoded.data, path)
            self._map.add(index, user_ids)
            # No "next" is the last page; an empty page or a cursor that does not
            # move would loop forever, so both end the role too.
            if following is None or not user_ids or following == cursor:
                return
            cursor = following

    async def _page(self, role: Role, cursor: str | None) -> tuple[Decoded, str, int]:
        while not self._take_confirmed:
            # Until a page has come back with this take, one request at a time: a
            # tenant that caps take then costs one 400, not one per reader.
            async with self._learning:
                if self._take_confirmed:
                    break
                take = self.take
                decoded, path = await self._call(role, cursor, take)
                if decoded.kind is Kind.OK:
                    self._take_confirmed = True
                return decoded, path, take
        take = self.take
        decoded, path = await self._call(role, cursor, take)
        return decoded, path, take

    async def _call(self, role: Role, cursor: str | None, take: int) -> tuple[Decoded, str]:
        path = role_users_checkpoint_path(role.id, take, cursor)
        for attempt in range(1, PAGE_ROUNDS + 1):
            try:
                return await self._client._request("GET", path), path
            except _GaveUp as gave_up:
                if attempt == PAGE_ROUNDS:
                    raise RetryError(
                        f"could not read the members of role {role.name!r}: {gave_up.reason}",
                        reason=gave_up.reason,
                        attempts=gave_up.attempts * PAGE_ROUNDS,
                    ) from None
        raise AssertionError("unreachable")


def _members(data: Any, path: str) -> tuple[list[str], str | None]:
    """The member ids of a checkpoint page and its ``next`` cursor (None: last page)."""
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, list):
        raise _shape(path)
    ids: list[str] = []
    for user in users:
        user_id = user.get("user_id") if isinstance(user, dict) else None
        if not isinstance(user_id, str):
            raise _shape(path)
        ids.append(user_id)
    following = data.get("next")
    return ids, following if isinstance(following, str) and following else None


def _shape(path: str) -> ApiError:
    return ApiError(
        f"unexpected response shape from {path.split('?')[0]} in checkpoint mode",
        status=200,
        path=path,
        hint="this tenant does not page role members as Auth0 does; use --strategy per-user",
    )


def _refused(role: Role, path: str, decoded: Decoded, restarts: int) -> ApiError:
    why = f" after {restarts} restarts" if restarts else ""
    return ApiError(
        f"Auth0 refused the members of role {role.name!r}{why}: {decoded.message}",
        status=decoded.status,
        path=path,
        hint="run again, or use --strategy per-user",
    )
