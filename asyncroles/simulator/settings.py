"""Every knob of the simulated tenant, in one dataclass, plus the clock it reads.

Each field carries its help text in ``metadata["help"]``: the ``simulate`` command
builds one option per field from it, so ``asyncroles simulate --help`` documents
every setting and cannot drift from this file.

Where ``/work/shared/auth0-api.md`` marks a behaviour "(unsure)", the setting
defaults to the first-named behaviour and offers the other.

A running simulator reads its settings on every request, so tests may change
fields mid-run (fault probabilities, ``background_rps``, ``unknown_user`` ...).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Clock", "ResetMode", "SimulatorSettings", "derived_credentials"]

ResetMode = Literal["next-token", "full"]
BadCredentials = Literal["access_denied", "invalid_client"]
UnknownUser = Literal["404", "200"]

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _seeded_text(seed: int, label: str, length: int, alphabet: str) -> str:
    """Deterministic text of ``length`` characters drawn from ``alphabet``."""
    out: list[str] = []
    counter = 0
    while len(out) < length:
        digest = hashlib.sha256(f"{seed}:{label}:{counter}".encode()).digest()
        out.extend(alphabet[b % len(alphabet)] for b in digest)
        counter += 1
    return "".join(out[:length])


def derived_credentials(seed: int) -> tuple[str, str]:
    """The default client id and secret for ``seed``.

    Real Auth0 client ids are 32 alphanumerics; secrets are 64 characters of
    base64url.  Deriving both from the seed keeps ``simulate --seed S`` printing the
    same credentials on every start.
    """
    client_id = _seeded_text(seed, "client_id", 32, _ALNUM)
    client_secret = _seeded_text(seed, "client_secret", 64, _ALNUM + "-_")
    return client_id, client_secret


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class SimulatorSettings:
    """The simulated tenant's size, limits, credentials and misbehaviour."""

    # --- tenant -------------------------------------------------------------
    users: int = field(default=1000, metadata=_help("number of users in the tenant"))
    roles: int = field(
        default=50, metadata=_help("number of roles (Auth0 allows at most 1000 per tenant)")
    )
    seed: int = field(
        default=1, metadata=_help("seed for the tenant, credentials and every random draw")
    )

    # --- rate limit (auth0-api.md "Rate limits") ---------------------------
    bucket: int = field(
        default=50, metadata=_help("burst: size of the tenant-wide /api/v2 token bucket")
    )
    refill_per_s: float = field(
        default=16.0,
        metadata={
            "help": "sustained rate: tokens added to the bucket per second (fractions allowed)",
            "flag": "--refill",
        },
    )
    reset_mode: ResetMode = field(
        default="next-token",
        metadata=_help(
            "what x-ratelimit-reset means: epoch second of the next token (next-token) "
            "or of a full bucket again (full)"
        ),
    )
    retry_after: bool = field(
        default=True, metadata=_help("send Retry-After (whole seconds, >= 1) on 429s")
    )
    token_bucket: int = field(
        default=30, metadata=_help("burst of the separate /oauth/token rate limit")
    )
    token_refill_per_s: float = field(
        default=10.0, metadata=_help("refill per second of the /oauth/token rate limit")
    )

    # --- auth (auth0-api.md "Tokens") --------------------------------------
    client_id: str = field(
        default="", metadata=_help("client id (default: 32 characters derived from --seed)")
    )
    client_secret: str = field(
        default="", metadata=_help("client secret (default: 64 characters derived from --seed)")
    )
    token_lifetime_s: float = field(
        default=86400.0, metadata=_help("lifetime of issued access tokens in seconds")
    )
    scopes: tuple[str, ...] = field(
        default=("read:users", "read:roles", "read:role_members"),
        metadata=_help("scopes granted to the client (space or comma separated)"),
    )
    bad_credentials: BadCredentials = field(
        default="access_denied",
        metadata=_help(
            "401 body for a wrong client id/secret: access_denied (seen from real "
            "tenants) or invalid_client (the spec)"
        ),
    )
    client_grant: bool = field(
        default=True,
        metadata=_help("the client has a grant for the Management API (else /oauth/token 403s)"),
    )

    # --- API behaviour ------------------------------------------------------
    unknown_user: UnknownUser = field(
        default="404",
        metadata=_help("GET /users/{id}/roles for an unknown user: 404 inexistent_user or 200 []"),
    )
    max_take: int = field(
        default=100,
        metadata=_help("largest checkpoint 'take' accepted (Public Cloud may cap at 50)"),
    )
    offset_limit: int = field(
        default=1000, metadata=_help("records reachable by offset paging of /roles/{id}/users")
    )
    cursor_ttl_s: float = field(
        default=86400.0, metadata=_help("seconds a checkpoint cursor ('next') stays valid")
    )

    # --- export job (auth0-api.md "Exporting users") -----------------------
    export_duration_s: float = field(
        default=3.0, metadata=_help("seconds an export job takes from pending to completed")
    )
    location_ttl_s: float = field(
        default=60.0, metadata=_help("seconds a job's signed download location stays valid")
    )
    export_fail: bool = field(default=False, metadata=_help("export jobs end 'failed'"))
    download_cut: float = field(
        default=0.0, metadata=_help("probability that an export download is cut short mid-body")
    )

    # --- realism ------------------------------------------------------------
    latency_ms: float = field(
        default=0.0,
        metadata=_help(
            "mean round trip added to /api/v2 calls (half before the bucket, half after)"
        ),
    )
    jitter_ms: float = field(
        default=0.0, metadata=_help("uniform +/- jitter on the added round trip")
    )
    p_500: float = field(default=0.0, metadata=_help("probability of a 500 JSON error"))
    p_503: float = field(default=0.0, metadata=_help("probability of a 503 JSON error"))
    p_502: float = field(
        default=0.0, metadata=_help("probability of a 502 with a proxy's HTML body, no headers")
    )
    p_reset: float = field(
        default=0.0, metadata=_help("probability of a connection reset (no response)")
    )
    p_truncated: float = field(
        default=0.0, metadata=_help("probability of a 200 whose JSON body is cut short")
    )
    p_stall: float = field(
        default=0.0, metadata=_help("probability of no answer for --stall-s seconds")
    )
    stall_s: float = field(default=30.0, metadata=_help("how long a stalled request hangs"))
    background_rps: float = field(
        default=0.0,
        metadata=_help("tokens/s another application spends from the same bucket"),
    )
    deleted_fraction: float = field(
        default=0.0, metadata=_help("share of users deleted during the first --delete-over-s")
    )
    delete_over_s: float = field(
        default=10.0, metadata=_help("seconds over which --deleted-fraction users are deleted")
    )
    record_requests: bool = field(
        default=True, metadata=_help("keep a per-request log (time, endpoint, status, id)")
    )

    def __post_init__(self) -> None:
        derived_id, derived_secret = derived_credentials(self.seed)
        if not self.client_id:
            self.client_id = derived_id
        if not self.client_secret:
            self.client_secret = derived_secret
        self.scopes = tuple(self.scopes)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting out of range."""
        checks: list[tuple[bool, str]] = [
            (self.users >= 0, "users must be >= 0"),
            (0 <= self.roles <= 1000, "roles must be within 0..1000 (Auth0's tenant maximum)"),
            (self.bucket >= 1, "bucket must be >= 1"),
            (self.refill_per_s > 0, "refill_per_s must be > 0"),
            (self.token_bucket >= 1, "token_bucket must be >= 1"),
            (self.token_refill_per_s > 0, "token_refill_per_s must be > 0"),
            (self.reset_mode in ("next-token", "full"), "reset_mode must be next-token or full"),
            (
                self.bad_credentials in ("access_denied", "invalid_client"),
                "bad_credentials must be access_denied or invalid_client",
            ),
            (self.unknown_user in ("404", "200"), "unknown_user must be 404 or 200"),
            (1 <= self.max_take <= 100, "max_take must be within 1..100"),
            (self.offset_limit >= 1, "offset_limit must be >= 1"),
            (self.export_duration_s >= 0, "export_duration_s must be >= 0"),
            (self.latency_ms >= 0 and self.jitter_ms >= 0, "latency and jitter must be >= 0"),
            (self.background_rps >= 0, "background_rps must be >= 0"),
            (0 <= self.deleted_fraction <= 1, "deleted_fraction must be within 0..1"),
            (self.delete_over_s >= 0, "delete_over_s must be >= 0"),
        ]
        for name in ("p_500", "p_503", "p_502", "p_reset", "p_truncated", "p_stall"):
            value = getattr(self, name)
            checks.append((0 <= value <= 1, f"{name} must be within 0..1"))
        checks.append((0 <= self.download_cut <= 1, "download_cut must be within 0..1"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class Clock:
    """The simulator's two clocks, injectable so tests can move time without sleeping.

    ``monotonic`` drives the buckets, the export jobs and the request log (it is
    ``time.monotonic`` so tests can compare with their own stamps); ``time`` gives
    the epoch seconds shown in headers, tokens and signed links.  ``advance(s)``
    moves both forward: a test ages a token or a link without waiting.

    ``Clock(frozen=True)`` stands still except through ``advance``: rate-limit
    arithmetic then no longer depends on how fast the test machine runs.
    """

    def __init__(self, *, frozen: bool = False) -> None:
        self.offset_s = 0.0
        self._frozen: tuple[float, float] | None = (
            (time.monotonic(), time.time()) if frozen else None
        )

    def monotonic(self) -> float:
        base = time.monotonic() if self._frozen is None else self._frozen[0]
        return base + self.offset_s

    def time(self) -> float:
        base = time.time() if self._frozen is None else self._frozen[1]
        return base + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds
