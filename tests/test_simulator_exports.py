"""The users-export job: lifecycle, signed links that expire, files that parse back."""

from __future__ import annotations

import csv
import gzip
import io
import re

import aiohttp
import orjson
import pytest
from yarl import URL

from asyncroles.simulator import Clock

FIELDS = [{"name": "user_id"}, {"name": "email", "export_as": "Email"}, {"name": "name"}]


async def make_job(client, **body) -> dict:
    answer = await client.request("POST", "/api/v2/jobs/users-exports", json=body)
    assert answer.status == 200, answer.body
    return answer.json()


async def poll(client, job_id: str) -> dict:
    answer = await client.get(f"/api/v2/jobs/{job_id}")
    assert answer.status == 200
    return answer.json()


async def download(http: aiohttp.ClientSession, location: str) -> tuple[int, bytes]:
    async with http.get(URL(location, encoded=True)) as response:
        return response.status, await response.read()


@pytest.fixture
async def exporting(start_simulator, client_for):
    clock = Clock()
    sim = await start_simulator(users=300, export_duration_s=3.0, clock=clock, bucket=1000)
    return sim, client_for(sim), clock


async def test_job_moves_pending_processing_completed(exporting, http) -> None:
    sim, client, clock = exporting
    job = await make_job(client, format="json", fields=FIELDS)
    assert job["type"] == "users_export"
    assert job["status"] == "pending"
    assert re.fullmatch(r"job_[A-Za-z0-9]{16}", job["id"])
    assert job["format"] == "json"
    assert job["fields"] == FIELDS
    assert isinstance(job["created_at"], str)
    first = await poll(client, job["id"])
    assert first["status"] == "pending"
    assert first["percentage_done"] == 0
    assert first["time_left_seconds"] >= 1
    assert "location" not in first
    clock.advance(1.8)
    middle = await poll(client, job["id"])
    assert middle["status"] == "processing"
    assert 0 < middle["percentage_done"] < 100
    clock.advance(1.5)
    done = await poll(client, job["id"])
    assert done["status"] == "completed"
    assert done["percentage_done"] == 100
    assert done["location"].startswith(f"{sim.domain}/__exports/{job['id']}.json.gz?")


async def test_json_export_parses_back_to_the_tenant(exporting, http) -> None:
    sim, client, clock = exporting
    job = await make_job(client, format="json", fields=FIELDS)
    clock.advance(3.1)
    status, data = await download(http, (await poll(client, job["id"]))["location"])
    assert status == 200
    records = [orjson.loads(line) for line in gzip.decompress(data).splitlines()]
    assert [r["user_id"] for r in records] == list(sim.tenant.user_ids)
    assert all(set(r) == {"user_id", "Email", "name"} for r in records)
    assert records[0]["Email"] == sim.tenant.profile(0)["email"]


async def test_csv_export_quotes_and_prefixes_cells(exporting, http) -> None:
    sim, client, clock = exporting
    job = await make_job(client, format="csv", fields=FIELDS)
    clock.advance(3.1)
    _status, data = await download(http, (await poll(client, job["id"]))["location"])
    text = gzip.decompress(data).decode()
    lines = text.splitlines()
    assert lines[0] == "user_id,Email,name"
    assert lines[1].startswith(f'"\'{sim.tenant.user_ids[0]}",')
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["user_id", "Email", "name"]
    assert all(cell.startswith("'") for row in rows[1:] for cell in row)
    ids = [row[0][1:] for row in rows[1:]]  # strip the CSV-injection guard
    assert ids == list(sim.tenant.user_ids)  # awkward ids (quotes, commas...) survive


async def test_default_fields_connection_and_limit(exporting, http) -> None:
    sim, client, clock = exporting
    connection_id = sim.tenant.connections["Corp-SSO"]
    job = await make_job(client, format="json", connection_id=connection_id, limit=5)
    assert job["connection_id"] == connection_id
    assert job["limit"] == 5
    assert [f["name"] for f in job["fields"]] == ["user_id", "email", "name", "created_at"]
    clock.advance(3.1)
    _, data = await download(http, (await poll(client, job["id"]))["location"])
    records = [orjson.loads(line) for line in gzip.decompress(data).splitlines()]
    assert len(records) == 5
    assert all(r["user_id"].startswith("samlp|Corp-SSO|") for r in records)
    assert set(records[0]) == {"user_id", "email", "name", "created_at"}


async def test_export_skips_deleted_users(exporting, http) -> None:
    sim, client, clock = exporting
    gone = sim.tenant.user_ids[5]
    sim.tenant.delete_user(gone)
    job = await make_job(client, format="json", fields=[{"name": "user_id"}])
    clock.advance(3.1)
    _, data = await download(http, (await poll(client, job["id"]))["location"])
    ids = [orjson.loads(line)["user_id"] for line in gzip.decompress(data).splitlines()]
    assert gone not in ids
    assert len(ids) == 299


async def test_expired_link_403_then_a_fresh_one_works(exporting, http) -> None:
    sim, client, clock = exporting
    job = await make_job(client, format="json")
    clock.advance(3.1)
    location = (await poll(client, job["id"]))["location"]
    clock.advance(sim.settings.location_ttl_s + 1)
    status, body = await download(http, location)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body
    assert b"Request has expired" in body
    fresh = (await poll(client, job["id"]))["location"]
    assert fresh != location
    status, data = await download(http, fresh)
    assert status == 200
    assert gzip.decompress(data)
    # Downloads are S3's: outside the rate limit and the bearer check.
    assert ("GET /__exports", 403) in sim.stats.requests
    assert sim.stats.count_for("GET /__exports") == 2


async def test_tampered_link_403(exporting, http) -> None:
    _sim, client, clock = exporting
    job = await make_job(client, format="csv")
    clock.advance(3.1)
    location = (await poll(client, job["id"]))["location"]
    status, body = await download(http, location[:-4] + "0000")
    assert status == 403
    assert b"SignatureDoesNotMatch" in body
    status, _ = await download(http, location.split("?")[0])
    assert status == 403


async def test_failed_job_has_no_location(exporting) -> None:
    sim, client, clock = exporting
    sim.settings.export_fail = True
    job = await make_job(client, format="json")
    clock.advance(3.1)
    done = await poll(client, job["id"])
    assert done["status"] == "failed"
    assert "location" not in done


async def test_cut_download(exporting, http) -> None:
    sim, client, clock = exporting
    sim.settings.download_cut = 1.0
    job = await make_job(client, format="json")
    clock.advance(3.1)
    location = (await poll(client, job["id"]))["location"]
    with pytest.raises(aiohttp.ClientPayloadError):
        await download(http, location)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"format": "xml"}, 'No enum match for: "xml"\' on property format'),
        ({"connection_id": "nope"}, "String does not match pattern"),
        ({"connection_id": "con_0000000000000000"}, "The connection does not exist"),
        ({"limit": 0}, "Value 0 is less than minimum 1"),
        ({"fields": [{"export_as": "x"}]}, "Missing required property: name"),
    ],
)
async def test_bad_export_requests_400(exporting, body, fragment) -> None:
    _, client, _ = exporting
    answer = await client.request("POST", "/api/v2/jobs/users-exports", json=body)
    assert answer.status == 400
    assert answer.json()["statusCode"] == 400
    assert fragment in answer.json()["message"]


async def test_unknown_job_404(exporting) -> None:
    _, client, _ = exporting
    answer = await client.get("/api/v2/jobs/job_0000000000000000")
    assert answer.status == 404
    assert answer.json()["statusCode"] == 404
