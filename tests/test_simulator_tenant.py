"""The generated tenant: deterministic, realistic ids, skewed roles, working hooks."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from asyncroles.simulator import Tenant
from asyncroles.simulator.tenant import CONNECTIONS

# One predicate per awkward id kind the tenant must contain at 50 users or more.
AWKWARD = {
    "slash": lambda uid: "/" in uid,
    "plus": lambda uid: "+" in uid,
    "space": lambda uid: " " in uid,
    "percent": lambda uid: "%" in uid,
    "literal %2F": lambda uid: "%2F" in uid,
    "non-ASCII": lambda uid: not uid.isascii(),
    "emoji": lambda uid: any(ord(c) > 0xFFFF for c in uid),
    "josé/ñ": lambda uid: uid == "auth0|josé/ñ",
}
REALISTIC = {
    "auth0": re.compile(r"^auth0\|[0-9a-f]{24}$"),
    "google-oauth2": re.compile(r"^google-oauth2\|\d{21}$"),
    "samlp": re.compile(r"^samlp\|Corp-SSO\|[a-z]+\.[a-z]+\d*@example\.com$"),
    "email": re.compile(r"^email\|[0-9a-f]{24}$"),
    "oidc": re.compile(r"^oidc\|"),
    "waad": re.compile(r"^waad\|"),
}


@pytest.fixture(scope="module")
def big() -> Tenant:
    return Tenant(users=20_000, roles=50, seed=3)


def test_same_seed_same_tenant() -> None:
    a, b = Tenant(500, 20, seed=9), Tenant(500, 20, seed=9)
    assert list(a.user_ids) == list(b.user_ids)
    assert a.truth() == b.truth()
    assert [r.id for r in a.roles] == [r.id for r in b.roles]
    assert list(Tenant(500, 20, seed=10).user_ids) != list(a.user_ids)


@pytest.mark.parametrize("users", [50, 51, 137, 2000])
def test_every_awkward_and_realistic_kind_present(users: int) -> None:
    tenant = Tenant(users, 50, seed=users)
    ids = list(tenant.user_ids)
    assert len(set(ids)) == len(ids) == users
    for kind, matches in AWKWARD.items():
        assert any(matches(uid) for uid in ids), kind
    for kind, pattern in REALISTIC.items():
        assert any(pattern.match(uid) for uid in ids), kind


def test_most_ids_are_auth0_database_users(big: Tenant) -> None:
    share = sum(REALISTIC["auth0"].match(uid) is not None for uid in big.user_ids) / 20_000
    assert 0.6 < share < 0.8


def test_roles_have_auth0_shapes() -> None:
    tenant = Tenant(100, 200, seed=1)
    assert len(tenant.roles) == 200
    assert all(re.fullmatch(r"rol_[A-Za-z0-9]{16}", r.id) for r in tenant.roles)
    assert len({r.name for r in tenant.roles}) == 200
    assert any(r.description is None for r in tenant.roles)
    assert any(r.description for r in tenant.roles)


@pytest.mark.parametrize("users", [20, 21, 500])
def test_a_user_holds_exactly_fifty_roles(users: int) -> None:
    tenant = Tenant(users, 60, seed=users)
    assert any(len(roles) == 50 for roles in tenant.truth().values())
    assert max(len(roles) for roles in tenant.truth().values()) == 50


def test_assignment_is_skewed(big: Tenant) -> None:
    counts = Counter(len(roles) for roles in big.truth().values())
    n = 20_000
    assert 0.30 <= counts[0] / n <= 0.40
    assert sum(counts[k] for k in (1, 2, 3)) / n > 0.4
    assert sum(counts[k] for k in range(4, 11)) > 0
    assert counts[50] >= 1
    members = sorted((len(big.members_of(r.id)) for r in big.roles), reverse=True)
    assert sum(m > 1000 for m in members) >= 3  # several roles beyond offset paging
    assert members[-1] < members[0] / 10  # and a long tail


def test_members_and_truth_agree(big: Tenant) -> None:
    truth = big.truth()
    for role in big.roles[:10]:
        members = big.members_of(role.id)
        assert members == sorted(members)
        assert set(members) == {uid for uid, roles in truth.items() if role.id in roles}


def test_profiles_follow_the_id_prefix() -> None:
    tenant = Tenant(200, 10, seed=1)
    for i, uid in enumerate(tenant.user_ids):
        profile = tenant.profile(i)
        prefix = uid.split("|", 1)[0]
        assert profile["user_id"] == uid
        assert "@" in profile["email"]
        assert profile["connection"] == CONNECTIONS[prefix][0]
        assert profile["connection_id"] == tenant.connections[profile["connection"]]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", profile["created_at"])
    saml = next(i for i, uid in enumerate(tenant.user_ids) if uid.startswith("samlp|"))
    assert tenant.user_ids[saml].endswith("|" + tenant.profile(saml)["email"])


def test_roles_of_unknown_user_raises() -> None:
    tenant = Tenant(50, 5, seed=1)
    with pytest.raises(KeyError):
        tenant.roles_of("auth0|nobody")


def test_delete_user_removes_it_everywhere() -> None:
    tenant = Tenant(300, 5, seed=2)
    uid = next(u for u, roles in tenant.truth().items() if roles)
    role_id = next(iter(tenant.truth()[uid]))
    assert uid in tenant.members_of(role_id)
    tenant.delete_user(uid)
    assert not tenant.exists(uid)
    assert uid not in tenant.truth()
    assert uid not in tenant.members_of(role_id)
    with pytest.raises(KeyError):
        tenant.roles_of(uid)


def test_delete_and_rename_role() -> None:
    tenant = Tenant(300, 5, seed=2)
    gone, kept = tenant.roles[0], tenant.roles[1]
    tenant.delete_role(gone.id)
    assert gone.id not in {r.id for r in tenant.roles}
    assert all(gone.id not in roles for roles in tenant.truth().values())
    with pytest.raises(KeyError):
        tenant.members_of(gone.id)
    tenant.rename_role(kept.id, "Renamed")
    assert next(r for r in tenant.roles if r.id == kept.id).name == "Renamed"
    with pytest.raises(ValueError, match="already exists"):
        tenant.rename_role(tenant.roles[2].id, "Renamed")


def test_add_user() -> None:
    tenant = Tenant(50, 5, seed=2)
    role_ids = [r.id for r in tenant.roles[:2]]
    tenant.members_of(role_ids[0])  # build the member index first: it must be updated
    tenant.add_user("custom|a/b c%2F", role_ids)
    assert set(tenant.roles_of("custom|a/b c%2F")) == set(role_ids)
    assert "custom|a/b c%2F" in tenant.members_of(role_ids[0])
    with pytest.raises(ValueError, match="already exists"):
        tenant.add_user("custom|a/b c%2F")
    with pytest.raises(KeyError):
        tenant.add_user("custom|other", ["rol_doesnotexist00"])
