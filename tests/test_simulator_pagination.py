"""Pagination edges of the three read routes, checked against the tenant's ground truth."""

from __future__ import annotations

import pytest

from asyncroles.simulator import Clock

OFFSET_400 = (
    "Requesting page 10 exceeds the allowed maximum of 1000 records. To fetch results "
    "beyond 1000, use the checkpoint pagination method."
)


def full_user(sim) -> str:
    return next(uid for uid, roles in sim.tenant.truth().items() if len(roles) == 50)


async def test_user_with_fifty_roles_fits_one_page(sim, sim_client) -> None:
    uid = full_user(sim)
    answer = await sim_client.user_roles(uid, "per_page=50&include_totals=true")
    body = answer.json()
    assert answer.status == 200
    assert set(body) == {"roles", "start", "limit", "total"}
    assert (body["start"], body["limit"], body["total"]) == (0, 50, 50)
    assert {r["id"] for r in body["roles"]} == set(sim.tenant.roles_of(uid))
    assert all(set(r) == {"id", "name", "description"} for r in body["roles"])


async def test_user_roles_pages_and_bare_array(sim, sim_client) -> None:
    uid = full_user(sim)
    seen: list[str] = []
    for page in range(3):
        answer = await sim_client.user_roles(uid, f"per_page=20&page={page}")
        body = answer.json()
        assert isinstance(body, list)  # no include_totals: a bare array
        seen += [r["id"] for r in body]
    assert len(seen) == 50
    assert set(seen) == set(sim.tenant.roles_of(uid))
    answer = await sim_client.user_roles(uid, "per_page=20&page=3&include_totals=true")
    assert answer.json()["roles"] == []
    assert answer.json()["total"] == 50


@pytest.mark.parametrize(
    ("query", "detail", "prop"),
    [
        ("per_page=1000", "Value 1000 is greater than maximum 100", "per_page"),
        ("per_page=0", "Value 0 is less than minimum 1", "per_page"),
        ("per_page=ten", "Expected type integer but found type string", "per_page"),
        ("page=-1", "Value -1 is less than minimum 0", "page"),
        ("include_totals=yes", "Expected type boolean but found type string", "include_totals"),
    ],
)
async def test_user_roles_query_validation(sim, sim_client, query, detail, prop) -> None:
    answer = await sim_client.user_roles(sim.tenant.user_ids[0], query)
    body = answer.json()
    assert answer.status == 400
    assert body["statusCode"] == 400
    assert body["error"] == "Bad Request"
    assert body["errorCode"] == "invalid_query_string"
    assert body["message"].startswith(f"Query validation error: '{detail}' on property {prop} (")


async def test_roles_list_offset_pagination(start_simulator, client_for) -> None:
    sim = await start_simulator(users=50, roles=230, bucket=1000, refill_per_s=1000.0)
    client = client_for(sim)
    ids: list[str] = []
    page = 0
    while True:
        body = (
            await client.get(f"/api/v2/roles?per_page=100&page={page}&include_totals=true")
        ).json()
        assert body["total"] == 230
        assert body["start"] == page * 100
        assert body["limit"] == 100
        ids += [r["id"] for r in body["roles"]]
        if len(body["roles"]) < 100:
            break
        page += 1
    assert ids == [r.id for r in sim.tenant.roles]
    default = (await client.get("/api/v2/roles")).json()
    assert isinstance(default, list)
    assert len(default) == 50
    filtered = (await client.get("/api/v2/roles?name_filter=billing%20viewer")).json()
    # Case-insensitive substring match on the name.
    assert [r["name"] for r in filtered] == ["Billing Viewer", "Billing Viewer 1"]


@pytest.fixture
async def crowd(start_simulator):
    """A tenant big enough for roles with more than 1000 members."""
    return await start_simulator(users=20_000, roles=50, bucket=100_000, refill_per_s=1e5)


def big_role(sim) -> tuple[str, list[str]]:
    role = max(sim.tenant.roles, key=lambda r: len(sim.tenant.members_of(r.id)))
    members = sim.tenant.members_of(role.id)
    assert len(members) > 1000
    return role.id, members


async def test_big_role_read_fully_with_checkpoint(crowd, client_for) -> None:
    client = client_for(crowd)
    role_id, members = big_role(crowd)
    seen: list[str] = []
    answer = await client.get(f"/api/v2/roles/{role_id}/users?take=100")
    calls = 1
    while True:
        body = answer.json()
        assert answer.status == 200
        assert set(body) <= {"users", "next"}  # no totals in checkpoint mode
        assert all(set(u) == {"user_id", "email", "name", "picture"} for u in body["users"])
        seen += [u["user_id"] for u in body["users"]]
        if "next" not in body:
            break
        answer = await client.get(f"/api/v2/roles/{role_id}/users?take=100&from={body['next']}")
        calls += 1
    assert seen == members  # every member once, in a stable order
    assert calls == -(-len(members) // 100)
    assert {uid for uid, roles in crowd.tenant.truth().items() if role_id in roles} == set(seen)


async def test_offset_mode_stops_at_1000_records(crowd, client_for) -> None:
    client = client_for(crowd)
    role_id, members = big_role(crowd)
    body = (
        await client.get(f"/api/v2/roles/{role_id}/users?page=9&per_page=100&include_totals=true")
    ).json()
    assert set(body) == {"users", "start", "limit", "total"}
    assert (body["start"], body["limit"], body["total"]) == (900, 100, len(members))
    assert [u["user_id"] for u in body["users"]] == members[900:1000]
    answer = await client.get(f"/api/v2/roles/{role_id}/users?page=10&per_page=100")
    assert answer.status == 400
    assert answer.json() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": OFFSET_400,
        "errorCode": "invalid_query_string",
    }
    # page * per_page + per_page > 1000 is the rule, whatever per_page is.
    assert (await client.get(f"/api/v2/roles/{role_id}/users?page=19&per_page=50")).status == 200
    assert (await client.get(f"/api/v2/roles/{role_id}/users?page=20&per_page=50")).status == 400


async def test_max_take_fifty(start_simulator, client_for) -> None:
    sim = await start_simulator(users=300, max_take=50, bucket=1000, refill_per_s=1000.0)
    client = client_for(sim)
    role_id = sim.tenant.roles[0].id
    answer = await client.get(f"/api/v2/roles/{role_id}/users?take=100")
    assert answer.status == 400
    assert "Value 100 is greater than maximum 50" in answer.json()["message"]
    assert (await client.get(f"/api/v2/roles/{role_id}/users?take=50")).status == 200


async def test_last_checkpoint_page_has_no_next(sim, sim_client) -> None:
    role = min(
        (r for r in sim.tenant.roles if sim.tenant.members_of(r.id)),
        key=lambda r: len(sim.tenant.members_of(r.id)),
    )
    members = sim.tenant.members_of(role.id)
    body = (await sim_client.get(f"/api/v2/roles/{role.id}/users?take={len(members)}")).json()
    assert "next" not in body
    assert [u["user_id"] for u in body["users"]] == members
    empty = sim.tenant.roles[-1]
    for uid in sim.tenant.members_of(empty.id):
        sim.tenant.delete_user(uid)
    assert (await sim_client.get(f"/api/v2/roles/{empty.id}/users?take=10")).json() == {"users": []}


async def test_bad_and_expired_cursor(start_simulator, client_for) -> None:
    clock = Clock()
    sim = await start_simulator(users=500, cursor_ttl_s=60, clock=clock, bucket=1000)
    client = client_for(sim)
    role_id = sim.tenant.roles[0].id
    first = (await client.get(f"/api/v2/roles/{role_id}/users?take=5")).json()
    answer = await client.get(f"/api/v2/roles/{role_id}/users?take=5&from=bm9wZQ")
    assert answer.status == 400
    assert answer.json()["statusCode"] == 400
    other_role = sim.tenant.roles[1].id
    answer = await client.get(f"/api/v2/roles/{other_role}/users?take=5&from={first['next']}")
    assert answer.status == 400  # a cursor belongs to its role
    clock.advance(61)
    answer = await client.get(f"/api/v2/roles/{role_id}/users?take=5&from={first['next']}")
    assert answer.status == 400
    assert isinstance(answer.json()["message"], str)


async def test_role_deleted_mid_pagination_404s(sim, sim_client) -> None:
    role_id = sim.tenant.roles[0].id
    first = (await sim_client.get(f"/api/v2/roles/{role_id}/users?take=5")).json()
    sim.tenant.delete_role(role_id)
    answer = await sim_client.get(f"/api/v2/roles/{role_id}/users?take=5&from={first['next']}")
    assert answer.status == 404
    assert answer.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "The role does not exist.",
        "errorCode": "inexistent_role",
    }


async def test_users_deleted_mid_pagination_do_not_shift_checkpoint(sim, sim_client) -> None:
    role_id = sim.tenant.roles[0].id
    members = sim.tenant.members_of(role_id)
    first = (await sim_client.get(f"/api/v2/roles/{role_id}/users?take=5")).json()
    for uid in members[:5]:
        sim.tenant.delete_user(uid)  # already served: must not shift what follows
    second = (
        await sim_client.get(f"/api/v2/roles/{role_id}/users?take=5&from={first['next']}")
    ).json()
    assert [u["user_id"] for u in second["users"]] == members[5:10]
