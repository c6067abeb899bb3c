"""``asyncroles simulate`` as a user runs it: a real subprocess, its printed credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys

import aiohttp
import pytest

from asyncroles.simulator import SimulatorSettings, Tenant
from asyncroles.simulator.cli import flag_of

TOO_MANY = {
    "statusCode": 429,
    "error": "Too Many Requests",
    "message": "Global limit has been reached",
    "errorCode": "too_many_requests",
}


def test_help_documents_every_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asyncroles", "simulate", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    text = result.stdout
    assert "example session" in text
    assert "AUTH0_DOMAIN=" in text
    assert "--port" in text
    for field in dataclasses.fields(SimulatorSettings):
        flag = flag_of(field)
        assert flag in text, flag
        assert str(field.metadata["help"]).split()[0] in text, field.name
    assert "--no-retry-after" in text
    assert "--refill" in text


def test_bad_setting_is_one_plain_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asyncroles", "simulate", "--roles", "5000"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "roles must be within 0..1000" in result.stderr


@pytest.mark.timeout(60)
async def test_simulate_subprocess_end_to_end() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncroles", "simulate", "--port", "0",
        "--users", "200", "--seed", "5", "--bucket", "5", "--refill", "0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [
            (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip() for _ in range(3)
        ]
        env = dict(line.split("=", 1) for line in lines)
        assert list(env) == ["AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"]
        domain = env["AUTH0_DOMAIN"]
        assert domain.startswith("http://127.0.0.1:")
        assert len(env["AUTH0_CLIENT_ID"]) == 32
        assert len(env["AUTH0_CLIENT_SECRET"]) == 64
        # Same seed, same tenant: we know its users without asking.
        tenant = Tenant(200, 50, seed=5)
        user = next(u for u, roles in tenant.truth().items() if len(roles) >= 2)
        async with aiohttp.ClientSession() as http:
            form = {
                "grant_type": "client_credentials",
                "client_id": env["AUTH0_CLIENT_ID"],
                "client_secret": env["AUTH0_CLIENT_SECRET"],
                "audience": f"{domain}/api/v2/",
            }
            async with http.post(f"{domain}/oauth/token", data=form) as response:
                assert response.status == 200
                token = (await response.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            url = f"{domain}/api/v2/users/{user.replace('|', '%7C')}/roles?per_page=50"
            async with http.get(url, headers=headers) as response:
                assert response.status == 200
                roles = await response.json()
                assert {r["id"] for r in roles} == tenant.truth()[user]
                assert response.headers["x-ratelimit-limit"] == "5"
                assert response.headers["x-ratelimit-remaining"] == "4"
                assert int(response.headers["x-ratelimit-reset"]) > 0
            statuses = []
            for _ in range(10):
                async with http.get(url, headers=headers) as response:
                    statuses.append(response.status)
                    if response.status == 429:
                        assert await response.json() == TOO_MANY
                        assert response.headers["x-ratelimit-remaining"] == "0"
                        assert int(response.headers["Retry-After"]) >= 1
                        break
            assert statuses == [200, 200, 200, 200, 429]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert b"Traceback" not in err
    assert b"200 users" in err
