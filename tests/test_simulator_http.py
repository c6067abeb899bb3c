"""Over loopback: the rate limit, its headers on every answer, tokens, scopes, faults."""

from __future__ import annotations

import math
import time
from typing import Any

import aiohttp
import orjson
import pytest

from asyncroles.simulator import Clock, Simulator

TOO_MANY = {
    "statusCode": 429,
    "error": "Too Many Requests",
    "message": "Global limit has been reached",
    "errorCode": "too_many_requests",
}
LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def limits(answer: Any) -> tuple[int, int, int]:
    """(x-ratelimit-limit, -remaining, -reset) as integers."""
    limit, remaining, reset = (int(answer.headers[h]) for h in LIMIT_HEADERS)
    return limit, remaining, reset


async def test_drained_bucket_answers_429_with_the_real_body(start_simulator, client_for) -> None:
    # A frozen clock: no token refills while the test runs, however slow the machine.
    sim = await start_simulator(users=60, bucket=5, refill_per_s=0.5, clock=Clock(frozen=True))
    client = client_for(sim)
    uid = sim.tenant.user_ids[0]
    remaining = [limits(await client.user_roles(uid))[1] for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    answer = await client.user_roles(uid)
    assert answer.status == 429
    assert answer.json() == TOO_MANY
    limit, left, reset = limits(answer)
    assert (limit, left) == (5, 0)
    # Refill 0.5/s from an empty bucket: the next token is exactly 2 s away.
    assert reset == math.ceil(sim.clock.time() + 2.0)
    assert answer.headers["Retry-After"] == "2"
    stats = sim.stats
    assert stats.count_429 == 1
    assert stats.api_requests == 6
    assert stats.requests[("GET /api/v2/users/{id}/roles", 429)] == 1
    assert stats.peak_1s == 6


async def test_429_spends_nothing_and_refill_resumes(start_simulator, client_for) -> None:
    clock = Clock(frozen=True)
    sim = await start_simulator(users=60, bucket=3, refill_per_s=2.0, clock=clock)
    client = client_for(sim)
    uid = sim.tenant.user_ids[0]
    statuses = [(await client.user_roles(uid)).status for _ in range(10)]
    assert statuses == [200] * 3 + [429] * 7
    clock.advance(1.0)  # two tokens refill, whatever the 429s did
    statuses = [(await client.user_roles(uid)).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_no_retry_after_when_disabled(start_simulator, client_for) -> None:
    sim = await start_simulator(users=60, bucket=1, refill_per_s=0.1, retry_after=False)
    client = client_for(sim)
    await client.user_roles(sim.tenant.user_ids[0])
    answer = await client.user_roles(sim.tenant.user_ids[0])
    assert answer.status == 429
    assert "Retry-After" not in answer.headers
    assert answer.json() == TOO_MANY


@pytest.mark.parametrize("mode", ["next-token", "full"])
async def test_reset_header_per_mode(start_simulator, client_for, mode: str) -> None:
    clock = Clock(frozen=True)
    sim = await start_simulator(users=60, bucket=10, refill_per_s=0.5, reset_mode=mode, clock=clock)
    client = client_for(sim)
    uid = sim.tenant.user_ids[0]
    for _ in range(10):
        answer = await client.user_roles(uid)
    _, left, reset = limits(answer)
    assert left == 0
    # Empty at 0.5/s: the next token in 2 s, a full bucket (10 tokens) in 20 s.
    wait = 2.0 if mode == "next-token" else 20.0
    assert reset == math.ceil(clock.time() + wait)
    clock.advance(1.0)  # half a token back
    _, left, reset = limits(await client.user_roles(uid))  # a 429
    assert left == 0
    assert reset == math.ceil(clock.time() + (1.0 if mode == "next-token" else 19.0))


async def test_settings_changed_mid_run_apply_to_the_next_request(sim, sim_client) -> None:
    uid = sim.tenant.user_ids[0]
    assert limits(await sim_client.user_roles(uid))[0] == 10_000
    sim.settings.bucket = 7
    assert limits(await sim_client.user_roles(uid))[:2] == (7, 6)


async def test_limit_headers_on_every_kind_of_answer(sim, sim_client) -> None:
    expired = sim.issue_token(lifetime_s=-1)
    no_scope = sim.issue_token(scopes=["read:users"])
    uid = sim.tenant.user_ids[0]
    role = sim.tenant.roles[0].id
    cases = [
        (sim_client.user_roles(uid), 200),
        (sim_client.user_roles("auth0|nobody"), 404),
        (sim_client.user_roles(uid, "per_page=1000"), 400),
        (sim_client.get(f"/api/v2/roles/{role}/users?page=20&per_page=100"), 400),
        (sim_client.user_roles(uid, "per_page=5"), 200),
        (sim_client.get("/api/v2/users/x/roles", token="garbage"), 401),
        (sim_client.get("/api/v2/users/x/roles", token=expired), 401),
        (sim_client.get("/api/v2/users/x/roles", token=no_scope), 403),
        (sim_client.get("/api/v2/users/x/roles", token=None), 401),
        (sim_client.get("/api/v2/nothing/here"), 404),
        (sim_client.request("DELETE", "/api/v2/roles"), 405),
        (sim_client.get("/api/v2/jobs/job_doesnotexist0000"), 404),
    ]
    for pending, status in cases:
        answer = await pending
        assert answer.status == status
        assert set(LIMIT_HEADERS) <= set(k.lower() for k in answer.headers), status
        assert answer.headers["Content-Type"].startswith("application/json")
    sim.settings.p_500 = 1.0
    answer = await sim_client.user_roles(uid)
    assert answer.status == 500
    assert set(LIMIT_HEADERS) <= {k.lower() for k in answer.headers}
    sim.settings.p_500, sim.settings.p_503 = 0.0, 1.0
    answer = await sim_client.user_roles(uid)
    assert answer.status == 503
    assert set(LIMIT_HEADERS) <= {k.lower() for k in answer.headers}
    assert answer.json()["statusCode"] == 503
    sim.settings.p_503, sim.settings.p_502 = 0.0, 1.0
    answer = await sim_client.user_roles(uid)
    # A proxy's 502: HTML, and no rate-limit headers.
    assert answer.status == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert b"502 Bad Gateway" in answer.body
    assert not set(LIMIT_HEADERS) & {k.lower() for k in answer.headers}


async def test_faults_spend_tokens_and_are_counted(start_simulator, client_for) -> None:
    sim = await start_simulator(users=60, bucket=4, refill_per_s=0.01, p_500=1.0)
    client = client_for(sim)
    statuses = [(await client.user_roles(sim.tenant.user_ids[0])).status for _ in range(6)]
    assert statuses == [500] * 4 + [429] * 2  # a faulting request still spent its token
    assert sim.stats.requests[("GET /api/v2/users/{id}/roles", 500)] == 4


async def test_reset_and_truncated_faults(sim, sim_client) -> None:
    uid = sim.tenant.user_ids[7]  # 50 roles: a long body to cut
    sim.settings.p_reset = 1.0
    with pytest.raises(aiohttp.ClientConnectionError):
        await sim_client.user_roles(uid)
    sim.settings.p_reset, sim.settings.p_truncated = 0.0, 1.0
    with pytest.raises(aiohttp.ClientPayloadError):
        await sim_client.user_roles(uid)
    sim.settings.p_truncated = 0.0
    assert (await sim_client.user_roles(uid)).status == 200
    statuses = [status for _, _, status, _ in sim.stats.log]
    assert 0 in statuses  # the reset: no HTTP status


async def test_faults_are_deterministic_given_the_seed(start_simulator, client_for) -> None:
    async def run() -> list[int]:
        sim = await start_simulator(users=60, bucket=10_000, refill_per_s=1e4, p_500=0.3)
        client = client_for(sim)
        return [(await client.user_roles(sim.tenant.user_ids[1])).status for _ in range(40)]

    first, second = await run(), await run()
    assert first == second
    assert 500 in first
    assert 200 in first


async def test_stall_holds_the_answer(sim, sim_client) -> None:
    sim.settings.p_stall = 1.0
    sim.settings.stall_s = 30.0
    timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(TimeoutError):
        async with sim_client.session.get(
            sim_client.url("/api/v2/roles"),
            headers={"Authorization": f"Bearer {sim_client.token}"},
            timeout=timeout,
        ) as response:
            await response.read()


# --- tokens ---------------------------------------------------------------


def token_form(sim: Simulator, **changes: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "audience": f"{sim.domain}/api/v2/",
    }
    form.update(changes)
    return form


async def post_token(
    http: aiohttp.ClientSession, sim: Simulator, *, as_json: bool = True, **changes: str
) -> tuple[int, Any, Any]:
    form = token_form(sim, **changes)
    kwargs: dict[str, Any] = {"json": form} if as_json else {"data": form}
    async with http.post(f"{sim.domain}/oauth/token", **kwargs) as response:
        return response.status, await response.json(), response.headers


@pytest.mark.parametrize("as_json", [True, False])
async def test_token_exchange_json_and_form(sim, http, as_json: bool) -> None:
    status, body, _headers = await post_token(http, sim, as_json=as_json)
    assert status == 200
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert body["scope"] == "read:users read:roles read:role_members"
    async with http.get(
        f"{sim.domain}/api/v2/roles", headers={"Authorization": f"Bearer {body['access_token']}"}
    ) as response:
        assert response.status == 200
    assert sim.stats.tokens_issued >= 1


async def test_token_lifetime_setting(start_simulator, http) -> None:
    sim = await start_simulator(users=50, token_lifetime_s=120)
    status, body, _ = await post_token(http, sim)
    assert status == 200
    assert body["expires_in"] == 120


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("access_denied", {"error": "access_denied", "error_description": "Unauthorized"}),
        (
            "invalid_client",
            {"error": "invalid_client", "error_description": "Client authentication failed"},
        ),
    ],
)
async def test_wrong_secret_401_in_both_styles(start_simulator, http, style, expected) -> None:
    sim = await start_simulator(users=50, bad_credentials=style)
    status, body, _ = await post_token(http, sim, client_secret="wrong")
    assert (status, body) == (401, expected)
    status, body, _ = await post_token(http, sim, client_id="wrong")
    assert (status, body) == (401, expected)


async def test_audience_needs_the_trailing_slash(sim, http) -> None:
    status, body, _ = await post_token(http, sim, audience=f"{sim.domain}/api/v2")
    assert status == 403
    assert body == {
        "error": "access_denied",
        "error_description": f"Service not found: {sim.domain}/api/v2",
    }


async def test_client_without_grant_gets_403(start_simulator, http) -> None:
    sim = await start_simulator(users=50, client_grant=False)
    status, body, _ = await post_token(http, sim)
    assert status == 403
    assert body["error"] == "access_denied"
    assert body["error_description"].startswith(
        f'Client is not authorized to access "{sim.domain}/api/v2/". You need to create a '
        '"client-grant"'
    )


async def test_token_endpoint_has_its_own_limit(start_simulator, http) -> None:
    sim = await start_simulator(users=50, token_bucket=2, token_refill_per_s=0.01)
    assert (await post_token(http, sim))[0] == 200
    assert (await post_token(http, sim))[0] == 200
    status, body, headers = await post_token(http, sim)
    assert status == 429
    assert body == {
        "error": "too_many_requests",
        "error_description": "Global limit has been reached",
    }
    assert int(headers["Retry-After"]) >= 1
    # The /api/v2 bucket is untouched by token requests.
    assert sim.bucket.remaining == 50


async def test_expired_token(sim, sim_client) -> None:
    token = sim.issue_token(lifetime_s=-1)
    answer = await sim_client.get("/api/v2/roles", token=token)
    message = "Expired token received for JSON Web Token validation"
    assert answer.status == 401
    assert answer.json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": message,
        "attributes": {"error": message},
    }


async def test_token_expires_when_the_clock_passes_its_lifetime(start_simulator, client_for):
    clock = Clock()
    sim = await start_simulator(users=50, token_lifetime_s=60, clock=clock)
    client = client_for(sim)
    assert (await client.get("/api/v2/roles")).status == 200
    clock.advance(61)
    answer = await client.get("/api/v2/roles")
    assert answer.status == 401
    assert answer.json()["message"] == "Expired token received for JSON Web Token validation"


async def test_invalid_and_missing_token(sim, sim_client) -> None:
    answer = await sim_client.get("/api/v2/roles", token="not-a-token")
    assert (answer.status, answer.json()) == (
        401,
        {"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"},
    )
    answer = await sim_client.get("/api/v2/roles", token=None)
    assert answer.status == 401
    assert answer.json()["message"] == "Missing authentication"


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/api/v2/users/auth0%7Cx/roles", "read:roles"),
        ("/api/v2/roles", "read:roles"),
        ("/api/v2/roles/rol_x/users", "read:role_members"),
        ("/api/v2/jobs/job_x", "read:users"),
    ],
)
async def test_missing_scope_403(sim, sim_client, path: str, scope: str) -> None:
    others = [s for s in ("read:users", "read:roles", "read:role_members") if s != scope]
    answer = await sim_client.get(path, token=sim.issue_token(scopes=others))
    assert answer.status == 403
    assert answer.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": f"Insufficient scope, expected any of: {scope}",
        "errorCode": "insufficient_scope",
    }


async def test_unknown_user_404_or_empty_200(sim, sim_client) -> None:
    answer = await sim_client.user_roles("auth0|nobody")
    assert answer.status == 404
    assert answer.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "The user does not exist.",
        "errorCode": "inexistent_user",
    }
    sim.settings.unknown_user = "200"
    answer = await sim_client.user_roles("auth0|nobody")
    assert (answer.status, answer.body) == (200, b"[]")


async def test_stats_and_truth_endpoints_are_not_rate_limited(start_simulator, http) -> None:
    sim = await start_simulator(users=60, bucket=1, refill_per_s=0.01)
    for _ in range(5):
        async with http.get(f"{sim.domain}/__sim/stats") as response:
            assert response.status == 200
            stats = await response.json()
    assert stats["api_requests"] == 0
    async with http.get(f"{sim.domain}/__sim/truth") as response:
        truth = orjson.loads(await response.read())
    assert {k: set(v) for k, v in truth.items()} == {
        k: set(v) for k, v in sim.tenant.truth().items()
    }


async def test_request_log_uses_the_monotonic_clock(sim, sim_client) -> None:
    before = time.monotonic()
    await sim_client.user_roles(sim.tenant.user_ids[3])
    after = time.monotonic()
    ((stamp, key, status, subject),) = sim.stats.log
    assert before <= stamp <= after
    assert (key, status, subject) == (
        "GET /api/v2/users/{id}/roles",
        200,
        sim.tenant.user_ids[3],
    )
    assert sim.stats.per_second[-1][0] == 1


async def test_two_simulators_in_one_process_are_independent(start_simulator, client_for):
    a = await start_simulator(users=50, seed=1, bucket=2, refill_per_s=0.01)
    b = await start_simulator(users=50, seed=2, bucket=2, refill_per_s=0.01)
    assert a.domain != b.domain
    assert a.client_id != b.client_id
    for _ in range(3):
        await client_for(a).get("/api/v2/roles")
    assert (await client_for(b).get("/api/v2/roles")).status == 200
    # A token from one tenant means nothing to the other.
    answer = await client_for(b).get("/api/v2/roles", token=a.issue_token())
    assert answer.status == 401
