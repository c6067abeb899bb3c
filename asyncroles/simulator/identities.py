"""What simulated users look like: id forms, connections, names, profile fields. Pure.

User ids come in every realistic form (``auth0|<hex>``, ``google-oauth2|<digits>``,
``samlp|Corp-SSO|first.last@example.com``, ``email|<hex>`` ...) and in legal but
awkward forms a client must percent-encode exactly once: auth0-api.md says ids
"can contain ``/``, ``+``, spaces, ``%`` and non-ASCII" (custom database
connections accept almost anything).

Profile fields are computed from the user's index and the seed, never stored, so
a million users cost no more memory than their ids.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "AWKWARD_KINDS",
    "CONNECTIONS",
    "REALISTIC_KINDS",
    "connection_of",
    "email_of",
    "make_id",
    "profile",
]

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

#: Connection name and provider per user-id prefix (the part before the first ``|``).
CONNECTIONS: dict[str, tuple[str, str]] = {
    "auth0": ("Username-Password-Authentication", "auth0"),
    "google-oauth2": ("google-oauth2", "google-oauth2"),
    "samlp": ("Corp-SSO", "samlp"),
    "email": ("email", "email"),
    "sms": ("sms", "sms"),
    "oidc": ("my-oidc", "oidc"),
    "waad": ("Contoso-AzureAD", "waad"),
    "github": ("github", "github"),
    "windowslive": ("windowslive", "windowslive"),
    "apple": ("apple", "apple"),
}

#: Realistic id forms and how common each is (weights, not probabilities).
REALISTIC_KINDS: tuple[tuple[str, float], ...] = (
    ("auth0", 70.0),
    ("google-oauth2", 12.0),
    ("samlp", 8.0),
    ("email", 5.0),
    ("oidc", 1.5),
    ("waad", 1.5),
    ("github", 0.8),
    ("windowslive", 0.4),
    ("apple", 0.4),
    ("sms", 0.4),
)

#: The awkward id kinds (see ``make_id``).
AWKWARD_KINDS = ("slash", "plus", "space", "percent", "pct2f", "nonascii", "emoji", "query")

_FIRST = (
    "james", "mary", "jose", "li", "aisha", "olga", "kenji", "fatima", "lucas", "emma",
    "noah", "sofia", "arjun", "chloe", "mateo", "zoe", "lukasz", "ingrid", "omar", "yuki",
)  # fmt: skip
_FIRST_DISPLAY = {"jose": "José", "zoe": "Zoë", "lukasz": "Łukasz"}
_LAST = (
    "smith", "garcia", "chen", "okafor", "novak", "tanaka", "muller", "silva", "kim",
    "haddad", "rossi", "jensen", "patel", "dubois", "kowalski", "nguyen",
)  # fmt: skip
_EPOCH_2019 = 1546300800  # 2019-01-01T00:00:00Z, the oldest account


def _mix(i: int, seed: int) -> int:
    """A cheap deterministic 32-bit hash of (index, seed) for profile fields."""
    x = (i * 0x9E3779B1 + seed * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    x = (x * 0x297A2D39) & 0xFFFFFFFF
    return x ^ (x >> 15)


def _names(i: int, seed: int) -> tuple[str, str]:
    x = _mix(i, seed)
    return _FIRST[x % len(_FIRST)], _LAST[(x >> 8) % len(_LAST)]


def email_of(i: int, seed: int) -> str:
    """The email of user ``i`` (unique: the index is part of it)."""
    first, last = _names(i, seed)
    return f"{first}.{last}{i}@example.com"


def make_id(kind: str, i: int, rnd: random.Random, seed: int, first_of_kind: bool) -> str:
    """A user id of ``kind`` for user ``i``; random parts come from ``rnd``."""
    if kind == "auth0":
        return f"auth0|{rnd.getrandbits(96):024x}"
    if kind == "google-oauth2":
        return f"google-oauth2|1{rnd.randrange(10**20):020d}"
    if kind == "samlp":
        return f"samlp|Corp-SSO|{email_of(i, seed)}"
    if kind in ("email", "sms"):
        return f"{kind}|{rnd.getrandbits(96):024x}"
    if kind == "oidc":
        h = f"{rnd.getrandbits(128):032x}"
        return f"oidc|my-oidc|{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if kind == "waad":
        return "waad|" + "".join(rnd.choices(_ALNUM + "-_", k=43))
    if kind == "github":
        return f"github|{rnd.randrange(10**6, 10**8)}"
    if kind == "windowslive":
        return f"windowslive|{rnd.getrandbits(64):016x}"
    if kind == "apple":
        team, key, n = rnd.randrange(10**6), rnd.getrandbits(128), rnd.randrange(10**4)
        return f"apple|{team:06d}.{key:032x}.{n:04d}"
    # Awkward but legal.  The index keeps each one unique.
    awkward = {
        "slash": f"auth0|team/alpha/{i}",
        "plus": f"auth0|first+tag{i}@example.com",
        "space": f"samlp|Corp-SSO|jane doe {i}",
        "percent": f"auth0|100%sure{i}",
        # A literal "%2F" inside the id: encoded once it is "%252F".
        "pct2f": f"auth0|literal%2Fslash{i}",
        "nonascii": "auth0|josé/ñ" if first_of_kind else f"auth0|josé/ñ{i}",
        "emoji": f"auth0|🦊fox{i}",
        "query": f"auth0|what?#&={i}",
    }
    if kind not in awkward:
        raise ValueError(f"unknown id kind {kind!r}")
    return awkward[kind]


def connection_of(user_id: str) -> str:
    """The connection a user id belongs to, from its prefix."""
    provider_key, _, rest = user_id.partition("|")
    if provider_key == "samlp":
        # Enterprise ids carry the connection: samlp|Corp-SSO|<id>.
        return rest.partition("|")[0] or CONNECTIONS["samlp"][0]
    return CONNECTIONS.get(provider_key, (provider_key, provider_key))[0]


def _picture(email: str, first: str, last: str) -> str:
    digest = hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
    initials = unicodedata.normalize("NFKD", first[:1] + last[:1]).encode("ascii", "ignore")
    return (
        f"https://s.gravatar.com/avatar/{digest}?s=480&r=pg&d="
        f"https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials.decode().lower()}.png"
    )


def profile(user_id: str, i: int, seed: int, connection_ids: Mapping[str, str]) -> dict[str, Any]:
    """Every exportable field of user ``i`` (as the users-export job sees it)."""
    provider_key, _, rest = user_id.partition("|")
    provider = CONNECTIONS.get(provider_key, (provider_key, provider_key))[1]
    connection = connection_of(user_id)
    first, last = _names(i, seed)
    email = email_of(i, seed)
    if provider_key == "samlp" and "@" in rest:
        email = rest.partition("|")[2]
    created = _EPOCH_2019 + i * 97 + _mix(i, seed + 1) % 86400
    created_at = (
        datetime.fromtimestamp(created, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{created % 1000:03d}Z"
    )
    given = _FIRST_DISPLAY.get(first, first.title())
    return {
        "user_id": user_id,
        "email": email,
        "email_verified": provider_key != "auth0" or i % 3 != 0,
        "name": f"{given} {last.title()}",
        "given_name": given,
        "family_name": last.title(),
        "nickname": f"{first}.{last}",
        "picture": _picture(email, first, last),
        "created_at": created_at,
        "updated_at": created_at,
        "connection": connection,
        "connection_id": connection_ids.get(connection, ""),
        "provider": provider,
        "identities[0].connection": connection,
        "identities[0].provider": provider,
        "identities[0].user_id": rest,
        "logins_count": _mix(i, seed + 2) % 200,
    }
