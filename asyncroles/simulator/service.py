"""The simulated Management API as a pure function of (request, time) -> Reply.

``app.py`` turns aiohttp requests into calls here and replies into responses;
everything Auth0-specific is decided here, without I/O, in this order for each
/api/v2 call (auth0-api.md "Rate limits"):

1. the tenant-wide bucket is charged: empty -> 429, nothing spent;
2. a fault may be drawn (the limiter sits in front of the service, so a faulting
   request has spent its token);
3. the route, the bearer token and its scopes are checked;
4. the endpoint answers.

Every answer but the 502 a proxy sends carries ``x-ratelimit-*``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import math
import random
from collections.abc import Mapping
from urllib.parse import unquote

import orjson

from asyncroles.simulator import bodies
from asyncroles.simulator.auth import REQUIRED_SCOPES, TokenStore
from asyncroles.simulator.bodies import QueryError, Reply, parse_bool, parse_int
from asyncroles.simulator.bucket import BackgroundSpender, TokenBucket
from asyncroles.simulator.exports import Exports
from asyncroles.simulator.faults import BODY_500, BODY_502, BODY_503, FaultDrawer
from asyncroles.simulator.settings import Clock, SimulatorSettings
from asyncroles.simulator.stats import Stats
from asyncroles.simulator.tenant import Tenant

__all__ = ["USER_ROLES", "Service"]

USER_ROLES = "GET /api/v2/users/{id}/roles"
ROLES = "GET /api/v2/roles"
ROLE_USERS = "GET /api/v2/roles/{id}/users"
EXPORT_CREATE = "POST /api/v2/jobs/users-exports"
JOB = "GET /api/v2/jobs/{id}"
TOKEN = "POST /oauth/token"
DOWNLOAD = "GET /__exports"

_CURSOR_MAC_BYTES = 12


def _route(method: str, parts: list[str]) -> tuple[str | None, str | None, bool]:
    """(endpoint key, id segment still encoded, method allowed) for /api/v2/<parts>."""
    n = len(parts)
    if n == 3 and parts[0] == "users" and parts[2] == "roles" and parts[1]:
        return USER_ROLES, parts[1], method == "GET"
    if n == 1 and parts[0] == "roles":
        return ROLES, None, method == "GET"
    if n == 3 and parts[0] == "roles" and parts[2] == "users" and parts[1]:
        return ROLE_USERS, parts[1], method == "GET"
    if n == 2 and parts[0] == "jobs" and parts[1] == "users-exports":
        return EXPORT_CREATE, None, method == "POST"
    if n == 2 and parts[0] == "jobs" and parts[1]:
        return JOB, parts[1], method == "GET"
    return None, None, False


class Service:
    """All state of one simulated tenant's API: buckets, tokens, jobs, stats."""

    def __init__(self, settings: SimulatorSettings, tenant: Tenant, clock: Clock) -> None:
        self.settings = settings
        self.tenant = tenant
        self.clock = clock
        now = clock.monotonic()
        self.started_at = now
        epoch_offset = clock.time() - now
        self.bucket = TokenBucket(
            settings.bucket,
            settings.refill_per_s,
            now,
            reset_mode=settings.reset_mode,
            epoch_offset_s=epoch_offset,
        )
        self.token_bucket = TokenBucket(
            settings.token_bucket,
            settings.token_refill_per_s,
            now,
            reset_mode=settings.reset_mode,
            epoch_offset_s=epoch_offset,
        )
        self.background = BackgroundSpender()
        self.tokens = TokenStore()
        self.faults = FaultDrawer(settings.seed)
        key = hashlib.sha256(f"asyncroles:{settings.seed}:{settings.client_secret}".encode())
        self._key = key.digest()
        self.exports = Exports(settings.seed, self._key)
        self.stats = Stats(started_at=now)
        self.base_url = "http://127.0.0.1:0"  # the server sets it once bound
        self._delete_order: list[int] | None = None
        self._deleted_upto = 0
        # The other application (background_rps) starts spending when the tenant does.
        self.background.advance(self.bucket, settings.background_rps, now)

    @property
    def audience(self) -> str:
        # The Management API identifier: https://DOMAIN/api/v2/ with the trailing slash.
        return f"{self.base_url}/api/v2/"

    # --- time-driven state --------------------------------------------------

    def sync(self, now: float) -> None:
        """Bring settings changes, the background spender and deletions up to ``now``."""
        s = self.settings
        self.bucket.configure(s.bucket, s.refill_per_s, s.reset_mode, now)
        self.token_bucket.configure(s.token_bucket, s.token_refill_per_s, s.reset_mode, now)
        self.stats.background_spent += self.background.advance(self.bucket, s.background_rps, now)
        if s.deleted_fraction > 0:
            self._apply_deletions(now)

    def _apply_deletions(self, now: float) -> None:
        s = self.settings
        if self._delete_order is None:
            # A fixed, seeded order over the generated users: the first k are the
            # deleted ones, so raising the fraction mid-run only extends the list.
            order = list(range(len(self.tenant.user_ids)))
            random.Random(f"asyncroles:{s.seed}:deleted").shuffle(order)
            self._delete_order = order
        order = self._delete_order
        target = round(s.deleted_fraction * len(order))
        elapsed = now - self.started_at
        progress = 1.0 if s.delete_over_s <= 0 else min(1.0, elapsed / s.delete_over_s)
        due = math.floor(target * progress)
        ids = self.tenant.user_ids
        while self._deleted_upto < due:
            self.tenant.delete_user(ids[order[self._deleted_upto]])
            self._deleted_upto += 1

    def _limit_headers(self, bucket: TokenBucket, now: float) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(bucket.capacity),
            "x-ratelimit-remaining": str(bucket.remaining),
            "x-ratelimit-reset": str(bucket.reset_epoch_s(now)),
        }

    # --- /api/v2 --------------------------------------------------------------

    def handle_api(
        self,
        method: str,
        raw_path: str,
        query: Mapping[str, str],
        authorization: str | None,
        body: bytes,
    ) -> tuple[Reply, str, str | None]:
        """Answer one /api/v2 request; also returns (endpoint key, subject id) for stats."""
        s = self.settings
        now = self.clock.monotonic()
        self.sync(now)
        path = raw_path.partition("?")[0]
        parts = path.split("/")[3:]  # "", "api", "v2", ...
        key, segment, allowed = _route(method, parts)
        # The id is percent-decoded exactly once: "%2F" is part of the id and a
        # "+" is a literal plus (auth0-api.md: encodeURIComponent, never twice).
        subject = unquote(segment) if segment is not None else None
        endpoint = key or f"{method} /api/v2/*"
        reply = self._answer(method, key, subject, allowed, query, authorization, body, now)
        status = 0 if reply.fault == "reset" else reply.status
        self.stats.api_request(now, endpoint, status, subject, s.record_requests)
        return reply, endpoint, subject

    def _answer(
        self,
        method: str,
        key: str | None,
        subject: str | None,
        allowed: bool,
        query: Mapping[str, str],
        authorization: str | None,
        body: bytes,
        now: float,
    ) -> Reply:
        s = self.settings
        bucket = self.bucket
        if not bucket.take(now):
            reply = Reply(429, bodies.TOO_MANY_REQUESTS, headers=self._limit_headers(bucket, now))
            if s.retry_after:
                reply.headers["Retry-After"] = str(bucket.retry_after_s())
            return reply
        fault = self.faults.draw(s)
        if fault == "502":
            return Reply(502, BODY_502, content_type="text/html")
        if fault == "500":
            reply = Reply(500, BODY_500)
        elif fault == "503":
            reply = Reply(503, BODY_503)
        elif fault == "reset":
            reply = Reply(0, b"", fault="reset")
        else:
            reply = self._endpoint(method, key, subject, allowed, query, authorization, body)
            reply.fault = fault  # None, "truncated" or "stall"
        reply.headers.update(self._limit_headers(bucket, now))
        return reply

    def _endpoint(
        self,
        method: str,
        key: str | None,
        subject: str | None,
        allowed: bool,
        query: Mapping[str, str],
        authorization: str | None,
        body: bytes,
    ) -> Reply:
        if key is None:
            return Reply(404, bodies.ROUTE_NOT_FOUND)
        if not allowed:
            return Reply(405, bodies.METHOD_NOT_ALLOWED)
        epoch = self.clock.time()
        refusal = self.tokens.check(authorization, REQUIRED_SCOPES[key], epoch)
        if refusal is not None:
            return refusal
        try:
            if key == USER_ROLES:
                return self._user_roles(subject or "", query)
            if key == ROLES:
                return self._roles(query)
            if key == ROLE_USERS:
                return self._role_users(subject or "", query, epoch)
            if key == EXPORT_CREATE:
                return self.exports.create(body, self.tenant, self.clock.monotonic(), epoch)
            return self.exports.status(
                subject or "", self.settings, self.clock.monotonic(), epoch, self.base_url
            )
        except QueryError as error:
            return error.reply

    def _user_roles(self, user_id: str, query: Mapping[str, str]) -> Reply:
        per_page = parse_int(query, "per_page", 50, 1, 100)
        page = parse_int(query, "page", 0, 0, None)
        totals = parse_bool(query, "include_totals")
        i = self.tenant.user_index(user_id)
        if i is None:
            # auth0-api.md: 404 inexistent_user (unsure: maybe a bare 200 []).
            if self.settings.unknown_user == "200":
                return Reply(200, bodies.EMPTY_ARRAY)
            return Reply(404, bodies.USER_NOT_FOUND)
        held = self.tenant.role_indices_of(i)
        start = page * per_page
        fragments = self.tenant.role_fragments
        array = b"[" + b",".join([fragments[r] for r in held[start : start + per_page]]) + b"]"
        if not totals:
            return Reply(200, array)
        tail = b',"start":%d,"limit":%d,"total":%d}' % (start, per_page, len(held))
        return Reply(200, b'{"roles":' + array + tail)

    def _roles(self, query: Mapping[str, str]) -> Reply:
        per_page = parse_int(query, "per_page", 50, 1, 100)
        page = parse_int(query, "page", 0, 0, None)
        totals = parse_bool(query, "include_totals")
        name_filter = (query.get("name_filter") or "").casefold()
        roles = [r for r in self.tenant.roles if name_filter in r.name.casefold()]
        start = page * per_page
        chunk = [r.to_json() for r in roles[start : start + per_page]]
        if not totals:
            return Reply(200, orjson.dumps(chunk))
        out = {"roles": chunk, "start": start, "limit": per_page, "total": len(roles)}
        return Reply(200, orjson.dumps(out))

    def _role_users(self, role_id: str, query: Mapping[str, str], epoch: float) -> Reply:
        s = self.settings
        checkpoint = "take" in query or "from" in query
        if checkpoint:
            take = parse_int(query, "take", 50, 1, s.max_take)
        else:
            per_page = parse_int(query, "per_page", 50, 1, 100)
            page = parse_int(query, "page", 0, 0, None)
            totals = parse_bool(query, "include_totals")
            if page * per_page + per_page > s.offset_limit:
                return bodies.bad_request(
                    f"Requesting page {page} exceeds the allowed maximum of {s.offset_limit} "
                    f"records. To fetch results beyond {s.offset_limit}, use the checkpoint "
                    "pagination method."
                )
        r = self.tenant.role_index(role_id)
        if r is None:
            return Reply(404, bodies.ROLE_NOT_FOUND)
        members = self.tenant.sorted_members(r)
        if checkpoint:
            cursor = query.get("from") or ""
            start = 0
            if cursor:
                after = self._read_cursor(cursor, role_id, epoch)
                if after is None:
                    return bodies.bad_request(
                        "The 'from' parameter is invalid or has expired.", "invalid_paging"
                    )
                # Keyset paging: resume after the last id served, so users deleted
                # meanwhile shift nothing.
                start = bisect.bisect_right(members, after)
            chunk = members[start : start + take]
            out: dict[str, object] = {"users": self.tenant.members_json(chunk)}
            if chunk and start + take < len(members):
                out["next"] = self._make_cursor(role_id, chunk[-1], epoch)
            return Reply(200, orjson.dumps(out))
        start = page * per_page
        users = self.tenant.members_json(members[start : start + per_page])
        if not totals:
            return Reply(200, orjson.dumps(users))
        out = {"users": users, "start": start, "limit": per_page, "total": len(members)}
        return Reply(200, orjson.dumps(out))

    # Checkpoint cursors are opaque to clients: base64url of a MAC and
    # [role id, last user id served, issue time]; valid cursor_ttl_s (24 h).
    def _make_cursor(self, role_id: str, last_user_id: str, epoch: float) -> str:
        payload = orjson.dumps([role_id, last_user_id, math.floor(epoch)])
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]
        return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()

    def _read_cursor(self, cursor: str, role_id: str, epoch: float) -> str | None:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            return None
        mac, payload = raw[:_CURSOR_MAC_BYTES], raw[_CURSOR_MAC_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return None
        cursor_role, last_user_id, issued = orjson.loads(payload)
        if cursor_role != role_id or epoch - issued > self.settings.cursor_ttl_s:
            return None
        return str(last_user_id)

    # --- /oauth/token ---------------------------------------------------------

    def handle_token(self, form: Mapping[str, str] | None) -> Reply:
        """Answer ``POST /oauth/token``; ``form`` None means an unparseable body."""
        now = self.clock.monotonic()
        self.sync(now)
        bucket = self.token_bucket
        if not bucket.take(now):
            reply = Reply(429, bodies.TOKEN_TOO_MANY_REQUESTS)
            if self.settings.retry_after:
                reply.headers["Retry-After"] = str(bucket.retry_after_s())
        elif form is None:
            reply = Reply(400, bodies.token_error("invalid_request", "Invalid request body"))
        else:
            reply = self.tokens.exchange(
                self.settings, form, self.audience, self.base_url + "/", self.clock.time()
            )
            if reply.status == 200:
                self.stats.tokens_issued += 1
        reply.headers.update(self._limit_headers(bucket, now))
        self.stats.count(TOKEN, reply.status)
        return reply

    def issue_token(
        self, scopes: tuple[str, ...] | None = None, lifetime_s: float | None = None
    ) -> str:
        token, _grant = self.tokens.issue(
            self.settings, self.audience, self.base_url + "/", self.clock.time(), scopes, lifetime_s
        )
        self.stats.tokens_issued += 1
        return token

    def truth_json(self) -> bytes:
        truth = self.tenant.truth()
        return orjson.dumps({uid: sorted(roles) for uid, roles in truth.items()})
