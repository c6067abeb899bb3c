"""The simulator answers in the shapes of the Auth0 samples under tests/samples/.

Same keys and value types everywhere; the same text where auth0-api.md quotes
Auth0's exact words (429, expired token, missing scope, unknown user, the offset
400, the token endpoint's errors).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from asyncroles.simulator import Simulator

SAMPLES = Path(__file__).parent / "samples"

# Samples whose text must match word for word (auth0-api.md quotes them).
EXACT = {
    "user_roles/400_per_page.json",
    "user_roles/401_expired.json",
    "user_roles/401_invalid.json",
    "user_roles/403_scope.json",
    "user_roles/404.json",
    "user_roles/429.json",
    "roles_users_checkpoint/404.json",
    "roles_users_offset/400.json",
    "token/401.json",
    "token/401_invalid_client.json",
    "token/403.json",
    "token/429.json",
}


def load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def assert_same_shape(actual: Any, sample: Any, where: str = "$") -> None:
    """Same keys and JSON types, recursively; a null matches a string (nullable fields)."""
    if sample is None or actual is None:
        assert actual is None or isinstance(actual, str), where
        return
    if isinstance(sample, dict):
        assert isinstance(actual, dict), where
        assert set(actual) == set(sample), f"{where}: {sorted(actual)} != {sorted(sample)}"
        for key in sample:
            assert_same_shape(actual[key], sample[key], f"{where}.{key}")
    elif isinstance(sample, list):
        assert isinstance(actual, list), where
        # Item by item when the lengths agree, else every item against the first.
        pairs = (
            zip(actual, sample, strict=True)
            if len(actual) == len(sample)
            else ((a, sample[0]) for a in actual)
        )
        if sample:
            for item, model in pairs:
                assert_same_shape(item, model, f"{where}[]")
    else:
        assert type(actual) is type(sample), f"{where}: {actual!r} vs {sample!r}"


class Caller:
    def __init__(self, sim: Simulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session
        self.token = sim.issue_token()

    async def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        url = URL(self.sim.domain + path, encoded=True)
        async with self.session.get(url, headers=headers) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: dict[str, Any], auth: bool = True) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        async with self.session.post(self.sim.domain + path, json=body, headers=headers) as r:
            return r.status, await r.json()


def token_body(sim: Simulator, **changes: str) -> dict[str, str]:
    body = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "audience": f"{sim.domain}/api/v2/",
    }
    body.update(changes)
    return body


async def produce(sim: Simulator, name: str, http: aiohttp.ClientSession) -> tuple[int, Any]:
    call = Caller(sim, http)
    user = next(u for u, roles in sim.tenant.truth().items() if roles)
    user_path = f"/api/v2/users/{user.replace('|', '%7C')}/roles"
    role = sim.tenant.roles[0].id
    small_role = sim.tenant.roles[-1].id  # the least popular: one checkpoint page
    if name == "user_roles/200.json":
        return await call.get(user_path)
    if name in ("user_roles/200_totals.json",):
        return await call.get(user_path + "?per_page=50&include_totals=true")
    if name == "user_roles/400_per_page.json":
        return await call.get(user_path + "?per_page=1000")
    if name == "user_roles/401_expired.json":
        return await call.get(user_path, token=sim.issue_token(lifetime_s=-5))
    if name == "user_roles/401_invalid.json":
        return await call.get(user_path, token="eyJhbGciOiJSUzI1NiJ9.e30.bm90LW91cnM")
    if name == "user_roles/403_scope.json":
        return await call.get(user_path, token=sim.issue_token(scopes=["read:users"]))
    if name == "user_roles/404.json":
        return await call.get("/api/v2/users/auth0%7Cnobody/roles")
    if name == "user_roles/429.json":
        sim.settings.bucket = 1
        await call.get(user_path)
        return await call.get(user_path)
    if name == "roles/200_totals.json":
        return await call.get("/api/v2/roles?include_totals=true")
    if name == "roles_users_checkpoint/200.json":
        return await call.get(f"/api/v2/roles/{role}/users?take=2")
    if name == "roles_users_checkpoint/200_last.json":
        return await call.get(f"/api/v2/roles/{small_role}/users?take=100&from=")
    if name == "roles_users_checkpoint/404.json":
        return await call.get("/api/v2/roles/rol_0000000000000000/users?take=50")
    if name == "roles_users_offset/200_totals.json":
        return await call.get(f"/api/v2/roles/{role}/users?per_page=50&include_totals=true")
    if name == "roles_users_offset/400.json":
        return await call.get(f"/api/v2/roles/{role}/users?page=10&per_page=100")
    if name == "token/200.json":
        return await call.post("/oauth/token", token_body(sim), auth=False)
    if name == "token/401.json":
        return await call.post("/oauth/token", token_body(sim, client_secret="x"), auth=False)
    if name == "token/401_invalid_client.json":
        sim.settings.bad_credentials = "invalid_client"
        return await call.post("/oauth/token", token_body(sim, client_secret="x"), auth=False)
    if name == "token/403.json":
        sim.settings.client_grant = False
        return await call.post("/oauth/token", token_body(sim), auth=False)
    if name == "token/429.json":
        sim.settings.token_bucket = 1
        await call.post("/oauth/token", token_body(sim), auth=False)
        return await call.post("/oauth/token", token_body(sim), auth=False)
    if name == "jobs/users_exports_200.json":
        body = {
            "format": "csv",
            "limit": 5,
            "connection_id": sim.tenant.connections["Username-Password-Authentication"],
            "fields": [{"name": "user_id"}, {"name": "email", "export_as": "Email"}],
        }
        return await call.post("/api/v2/jobs/users-exports", body)
    if name == "jobs/job_completed_200.json":
        sim.settings.export_duration_s = 0.0
        body = {
            "format": "csv",
            "limit": 5,
            "connection_id": sim.tenant.connections["Username-Password-Authentication"],
            "fields": [{"name": "user_id"}, {"name": "email", "export_as": "Email"}],
        }
        _, job = await call.post("/api/v2/jobs/users-exports", body)
        return await call.get(f"/api/v2/jobs/{job['id']}")
    raise AssertionError(f"no producer for sample {name}")


NAMES = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/*.json"))


def test_every_sample_has_a_producer() -> None:
    assert len(NAMES) >= 20


@pytest.mark.parametrize("name", NAMES)
async def test_simulator_matches_sample(name: str, start_simulator, http) -> None:
    sample = load(name)
    sim = await start_simulator(users=300, bucket=1000)
    status, actual = await produce(sim, name, http)
    expected_status = int(re.findall(r"\d{3}", Path(name).stem)[0])  # 200_totals -> 200
    assert status == expected_status
    assert_same_shape(actual, sample)
    if name in EXACT:
        # The samples write the tenant's domain as https://DOMAIN.
        text = json.dumps(actual).replace(sim.domain, "https://DOMAIN")
        assert json.loads(text) == sample
