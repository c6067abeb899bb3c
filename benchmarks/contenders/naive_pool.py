"""The usual first attempt: 20 concurrent tasks, no rate awareness at all.

A fixed pool of asyncio tasks takes user ids from a shared iterator and calls
``GET /api/v2/users/{id}/roles``; a 429 is retried after ``Retry-After`` (or 1 s
when absent), anything else that is not a 200 or 404 leaves the user unanswered.
The token is fetched once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import quote

import aiohttp
from yarl import URL

from contenders.base import ContenderRun, Roles

ROUTE = "per-user"
TASKS = 20
URI_COMPONENT_SAFE = "-_.!~*'()"  # what encodeURIComponent leaves alone


def unavailable() -> str | None:
    return None


async def run(domain: str, client_id: str, client_secret: str, user_ids: list[str]) -> ContenderRun:
    roles: Roles = {}
    failures: Counter[str] = Counter()
    retried_429 = 0
    async with aiohttp.ClientSession() as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "audience": f"{domain}/api/v2/",
        }
        async with http.post(f"{domain}/oauth/token", data=form) as response:
            response.raise_for_status()
            token = (await response.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        ids = iter(user_ids)

        async def worker() -> None:
            nonlocal retried_429
            for user_id in ids:
                path = f"/api/v2/users/{quote(user_id, safe=URI_COMPONENT_SAFE)}/roles"
                url = URL(domain + path, encoded=True)
                while True:
                    try:
                        async with http.get(url, headers=headers) as response:
                            status = response.status
                            retry_after = response.headers.get("Retry-After")
                            body = await response.json() if status == 200 else None
                    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                        status, body = 0, None
                        failures[type(error).__name__] += 1
                        break
                    if status != 429:
                        break
                    retried_429 += 1
                    await asyncio.sleep(float(retry_after) if retry_after else 1.0)
                if status == 200 and isinstance(body, list):
                    roles[user_id] = [role["id"] for role in body]
                else:
                    roles[user_id] = None
                    if status:
                        failures[str(status)] += 1

        await asyncio.gather(*(worker() for _ in range(TASKS)))
    return ContenderRun(roles, {"failed": dict(failures), "retried_429": retried_429})
