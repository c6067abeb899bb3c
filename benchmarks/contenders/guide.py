"""The guide's algorithm, as written: one user at a time, sleeping on its headers.

What users follow today (issue 7): get a token once; for each user call
``GET /api/v2/users/{id}/roles``; after each 200, when ``x-ratelimit-remaining`` is
below 5, sleep until ``x-ratelimit-reset`` + 1 s; on a 429 sleep ``Retry-After``
(or, absent, until the reset) and try again; wait 50 ms between calls.

Anything else -- a 5xx, a dropped connection, an expired token -- the guide does not
handle: that user gets no answer and the loop goes on (the script would otherwise
stop there).  Plain standard-library HTTP, as a guide would write it.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message

from contenders.base import ContenderRun, Roles

ROUTE = "per-user"
THRESHOLD = 5
URI_COMPONENT_SAFE = "-_.!~*'()"  # what encodeURIComponent leaves alone
BETWEEN_CALLS_S = 0.05

# Loopback only: never consult a proxy from the environment.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def unavailable() -> str | None:
    return None


def get_token(domain: str, client_id: str, client_secret: str) -> str:
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "audience": f"{domain}/api/v2/",
        }
    ).encode()
    with _http.open(f"{domain}/oauth/token", data=form, timeout=30) as response:
        token: str = json.loads(response.read())["access_token"]
        return token


def get(url: str, token: str) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with _http.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def sleep_until_reset(headers: Message, plus_s: float) -> None:
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        time.sleep(max(0.0, int(reset) + plus_s - time.time()))


def run(domain: str, client_id: str, client_secret: str, user_ids: list[str]) -> ContenderRun:
    token = get_token(domain, client_id, client_secret)
    roles: Roles = {}
    failures: dict[str, int] = {}
    for user_id in user_ids:
        url = f"{domain}/api/v2/users/{urllib.parse.quote(user_id, safe=URI_COMPONENT_SAFE)}/roles"
        while True:
            try:
                status, headers, body = get(url, token)
            except (OSError, http.client.HTTPException) as error:  # not in the guide
                status, headers, body = 0, Message(), str(error).encode()
            if status != 429:
                break
            retry_after = headers.get("retry-after")
            if retry_after is not None:
                time.sleep(float(retry_after))
            else:
                sleep_until_reset(headers, 0.0)
        try:
            answer = json.loads(body) if status == 200 else None
        except ValueError:  # a body cut short: not in the guide either
            status, answer = -1, None
        if answer is not None:
            roles[user_id] = [role["id"] for role in answer]
            remaining = headers.get("x-ratelimit-remaining")
            if remaining is not None and int(remaining) < THRESHOLD:
                sleep_until_reset(headers, 1.0)
        else:
            roles[user_id] = None
            failures[str(status)] = failures.get(str(status), 0) + 1
        time.sleep(BETWEEN_CALLS_S)
    return ContenderRun(roles, {"failed_by_status": failures})
