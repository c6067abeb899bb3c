"""The encode-once round trip: an id encoded like encodeURIComponent finds exactly that user."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from yarl import URL

from asyncroles.simulator import Simulator

SAFE = "-_.!~*'()"  # what encodeURIComponent leaves alone


def encode(user_id: str) -> str:
    return quote(user_id, safe=SAFE)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared():
    """One simulator and session for the whole module (hypothesis runs many examples)."""
    async with (
        Simulator(
            users=2000, roles=50, bucket=10**9, refill_per_s=1e9, record_requests=False
        ) as sim,
        aiohttp.ClientSession() as session,
    ):
        yield sim, session, sim.issue_token()


async def fetch_roles(shared, encoded: str) -> tuple[int, object]:
    sim, session, token = shared
    url = URL(f"{sim.domain}/api/v2/users/{encoded}/roles?per_page=50", encoded=True)
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


def awkward_ids(sim: Simulator) -> list[str]:
    return [uid for uid in sim.tenant.user_ids if not all(c.isalnum() or c in "|-" for c in uid)]


@pytest.mark.asyncio(loop_scope="module")
async def test_every_awkward_id_round_trips(shared) -> None:
    sim = shared[0]
    ids = awkward_ids(sim)
    assert "auth0|josé/ñ" in ids
    assert any("%2F" in uid for uid in ids)
    for uid in ids:
        status, body = await fetch_roles(shared, encode(uid))
        assert status == 200, uid
        assert [r["id"] for r in body] == sim.tenant.roles_of(uid), uid


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("wire", "user_id"),
    [
        ("auth0%7Cliteral%252Fslash24", "auth0|literal%2Fslash24"),  # %25 decodes once only
        ("auth0%7Cteam%2Falpha%2F3", "auth0|team/alpha/3"),  # %2F is part of the id
        ("auth0%7Cfirst+tag9%40example.com", "auth0|first+tag9@example.com"),  # "+" is a plus
    ],
)
async def test_decoded_exactly_once(shared, wire: str, user_id: str) -> None:
    sim = shared[0]
    assert sim.tenant.exists(user_id)
    status, body = await fetch_roles(shared, wire)
    assert status == 200
    assert [r["id"] for r in body] == sim.tenant.roles_of(user_id)


@pytest.mark.asyncio(loop_scope="module")
async def test_double_encoded_id_is_another_user(shared) -> None:
    status, body = await fetch_roles(shared, encode(encode("auth0|team/alpha/3")))
    assert status == 404
    assert body["errorCode"] == "inexistent_user"
    status, _ = await fetch_roles(shared, "auth0%7Cteam/alpha/3")  # "/" unencoded
    assert status == 404


@pytest.mark.asyncio(loop_scope="module")
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    text=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40),
    pick=st.integers(0, 49),
)
async def test_arbitrary_text_ids_round_trip(shared, text: str, pick: int) -> None:
    sim = shared[0]
    # "." and ".." are path segments every URL library normalises away: no id can be them.
    assume(text not in {".", ".."})
    role = sim.tenant.roles[pick]
    if not sim.tenant.exists(text):
        assume(text not in sim.tenant.user_ids)  # once deleted, an id stays taken
        sim.tenant.add_user(text, [role.id])
    status, body = await fetch_roles(shared, encode(text))
    assert status == 200
    assert [r["id"] for r in body] == sim.tenant.roles_of(text)
