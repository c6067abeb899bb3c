"""Users export through the Management API jobs, against the simulated tenant.

Jobs are kept short (``export_duration_s`` 0.3) and polled with
``ExportPolicy.testing()``; a link is aged by moving the simulator's clock, never
by sleeping, and nothing asserts on wall-clock time.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from aiohttp import web

from asyncroles import (
    Client,
    ConnectError,
    ExportError,
    ExportField,
    ExportPolicy,
    ExportProgress,
    RetryPolicy,
    ScopeError,
    UsageError,
    export_user_ids,
    export_users,
)
from asyncroles.export import poll_delay_s
from asyncroles.export_cli import format_for, parse_fields, render_progress
from asyncroles.inputs import scan_input
from asyncroles.simulator import Simulator
from tests.conftest import StartSimulator

DOWNLOAD = "GET /__exports"
JOB = "GET /api/v2/jobs/{id}"
CREATE = "POST /api/v2/jobs/users-exports"
QUICK_RETRY = RetryPolicy(max_attempts=6, base_delay_s=0.01, max_delay_s=0.05)
TESTING = ExportPolicy.testing()
ROOT = str(Path(__file__).resolve().parent.parent)


async def exporting_sim(start: StartSimulator, **overrides: Any) -> Simulator:
    settings: dict[str, Any] = {
        "users": 240,
        "roles": 10,
        "bucket": 1000,
        "refill_per_s": 1000.0,
        "export_duration_s": 0.3,
    }
    settings.update(overrides)
    return await start(**settings)


def client_of(sim: Simulator) -> Client:
    return Client(
        sim.domain, client_id=sim.client_id, client_secret=sim.client_secret, retry=QUICK_RETRY
    )


def ids_in(path: Path) -> list[str]:
    """The ids as ``fetch --input`` reads them (every one, duplicates included)."""
    with scan_input(str(path)) as scan:
        assert scan.duplicates == 0
        return list(scan.iter_ids())


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def leftovers(directory: Path) -> list[str]:
    return [name for name in files_in(directory) if name.endswith(".part")]


@pytest.mark.parametrize(
    ("name", "fmt", "gzipped"),
    [
        ("users.json.gz", "json", True),
        ("users.json", "json", False),
        ("users.csv.gz", "csv", True),
        ("users.csv", "csv", False),
    ],
)
async def test_export_matches_the_tenant_and_feeds_fetch(
    start_simulator: StartSimulator, tmp_path: Path, name: str, fmt: Any, gzipped: bool
) -> None:
    sim = await exporting_sim(start_simulator)
    sim.tenant.delete_user(sim.tenant.user_ids[7])
    alive = [u for i, u in enumerate(sim.tenant.user_ids) if i != 7]
    seen: list[ExportProgress] = []
    async with client_of(sim) as client:
        result = await export_users(
            client, tmp_path / name, format=fmt, on_progress=seen.append, policy=TESTING
        )
    assert result.path == tmp_path / name
    assert result.users == len(alive)
    assert result.compressed is gzipped
    assert result.downloads == 1
    assert [f.name for f in result.fields] == ["user_id", "email", "name"]
    data = result.path.read_bytes()
    assert data.startswith(b"\x1f\x8b") is gzipped
    assert result.size_bytes == len(data)
    assert stat.S_IMODE(os.stat(result.path).st_mode) == 0o600
    assert ids_in(result.path) == alive  # every user, exactly once, in the file's order
    assert leftovers(tmp_path) == []
    # Job calls are Management API calls; the download is storage, outside them.
    assert sim.stats.count_for(CREATE) == 1
    assert sim.stats.count_for(JOB) >= 1
    assert sim.stats.count_for(DOWNLOAD, 200) == 1
    stages = [p.stage for p in seen]
    assert stages[0] == "job"
    assert stages[-1] == "check"
    assert any(p.stage == "job" and p.status == "completed" for p in seen)
    assert any(p.stage == "download" and p.downloaded_bytes > 0 for p in seen)


async def test_fields_and_export_as_are_honoured(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await exporting_sim(start_simulator)
    fields = [ExportField("email", "Email"), "name"]  # user_id is added, first
    async with client_of(sim) as client:
        json_result = await export_users(client, tmp_path / "u.json", fields=fields, policy=TESTING)
        csv_result = await export_users(
            client,
            tmp_path / "u.csv",
            format="csv",
            fields=[ExportField("user_id", "User ID"), ExportField("email", "E-mail")],
            policy=TESTING,
        )
    records = [orjson.loads(line) for line in json_result.path.read_bytes().splitlines()]
    assert all(list(r) == ["user_id", "Email", "name"] for r in records)
    assert records[0]["Email"] == sim.tenant.profile(0)["email"]
    header = csv_result.path.read_text().splitlines()[0]
    assert header == "User ID,E-mail"
    assert ids_in(csv_result.path) == list(sim.tenant.user_ids)


async def test_fields_fetch_could_not_read_are_refused_before_any_request(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await exporting_sim(start_simulator)
    async with client_of(sim) as client:
        with pytest.raises(UsageError, match="would not be found by fetch"):
            await export_users(client, tmp_path / "u.json", fields=[ExportField("user_id", "k")])
        with pytest.raises(UsageError, match="given twice"):
            await export_users(client, tmp_path / "u.json", fields=["email", "email"])
        with pytest.raises(UsageError, match="no directory"):
            await export_users(client, tmp_path / "missing" / "u.json")
    assert sim.stats.count_for(CREATE) == 0


async def test_connection_and_limit(start_simulator: StartSimulator, tmp_path: Path) -> None:
    sim = await exporting_sim(start_simulator)
    connection_id = sim.tenant.connections["Corp-SSO"]
    async with client_of(sim) as client:
        everyone = await export_users(
            client, tmp_path / "corp.json.gz", connection_id=connection_id, policy=TESTING
        )
        few = await export_users(
            client, tmp_path / "few.json.gz", connection_id=connection_id, limit=3, policy=TESTING
        )
    corp = [u for u in sim.tenant.user_ids if u.startswith("samlp|Corp-SSO|")]
    assert ids_in(everyone.path) == corp
    assert ids_in(few.path) == corp[:3]


async def test_a_job_that_completes_without_processing(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    # Auth0 may go from pending straight to completed (auth0-api.md: "processing" unsure).
    sim = await exporting_sim(start_simulator, export_duration_s=0.0)
    seen: list[ExportProgress] = []
    async with client_of(sim) as client:
        result = await export_users(
            client, tmp_path / "u.json.gz", on_progress=seen.append, policy=TESTING
        )
    assert result.users == 240
    assert "processing" not in {p.status for p in seen}
    assert sim.stats.count_for(JOB) == 1


async def test_an_expired_link_is_renewed(start_simulator: StartSimulator, tmp_path: Path) -> None:
    sim = await exporting_sim(start_simulator)
    notes: list[str] = []

    def age_the_first_link(progress: ExportProgress) -> None:
        # Called just before the first download: let its 60 s link expire.
        if progress.stage == "download" and progress.attempt == 1 and not notes:
            notes.append("aged")
            sim.clock.advance(sim.settings.location_ttl_s + 1)
        if progress.note:
            notes.append(progress.note)

    async with client_of(sim) as client:
        result = await export_users(
            client, tmp_path / "u.json.gz", on_progress=age_the_first_link, policy=TESTING
        )
    assert result.downloads == 2
    assert ids_in(result.path) == list(sim.tenant.user_ids)
    assert sim.stats.count_for(DOWNLOAD, 403) == 1
    assert sim.stats.count_for(DOWNLOAD, 200) == 1
    assert any("AccessDenied: Request has expired" in note for note in notes)


async def test_a_failed_job_is_an_export_error(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await exporting_sim(start_simulator, export_fail=True)
    async with client_of(sim) as client:
        with pytest.raises(ExportError, match=r"users-export job job_\w+ failed \(status failed"):
            await export_users(client, tmp_path / "u.json.gz", policy=TESTING)
    assert files_in(tmp_path) == []
    assert sim.stats.count_for(DOWNLOAD) == 0


async def test_a_download_always_cut_short_is_retried_then_a_plain_error(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await exporting_sim(start_simulator, download_cut=1.0)
    async with client_of(sim) as client:
        with pytest.raises(ExportError) as caught:
            await export_users(client, tmp_path / "u.json.gz", policy=TESTING)
    error = caught.value
    assert type(error) is ExportError
    assert "after 5 attempts" in str(error)
    assert "cut short" in str(error)
    assert sim.stats.count_for(DOWNLOAD) == 5
    assert files_in(tmp_path) == []  # neither the file nor a temporary one


async def test_a_download_cut_now_and_then_still_succeeds(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    # Seed 5 cuts the first two downloads, then lets one through.
    sim = await exporting_sim(start_simulator, download_cut=0.5, seed=5)
    async with client_of(sim) as client:
        result = await export_users(client, tmp_path / "u.csv", format="csv", policy=TESTING)
    assert result.downloads == 3
    assert ids_in(result.path) == list(sim.tenant.user_ids)
    assert leftovers(tmp_path) == []


async def test_missing_read_users_scope(start_simulator: StartSimulator, tmp_path: Path) -> None:
    sim = await exporting_sim(start_simulator, scopes=("read:roles", "read:role_members"))
    async with client_of(sim) as client:
        with pytest.raises(ScopeError) as caught:
            await export_users(client, tmp_path / "u.json.gz", policy=TESTING)
    assert caught.value.scope == "read:users"
    assert "grant the read:users scope" in str(caught.value)
    assert "/api/v2/jobs/users-exports" in str(caught.value)


async def test_a_scope_error_without_the_scope_named_still_names_read_users(
    tmp_path: Path,
) -> None:
    class Refusing:
        async def _request(self, method: str, path: str, *, json: Any = None) -> Any:
            raise ScopeError("Auth0 refused it: Insufficient scope", scope=None, path=path)

    with pytest.raises(ScopeError) as caught:
        await export_users(Refusing(), tmp_path / "u.json")  # type: ignore[arg-type]
    assert caught.value.scope == "read:users"
    assert "grant the read:users scope" in str(caught.value)


async def test_a_job_that_never_ends_is_given_up_when_asked(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await exporting_sim(start_simulator, export_duration_s=3600.0)
    async with client_of(sim) as client:
        with pytest.raises(ExportError, match=r"is still (pending|processing) after"):
            await export_users(
                client, tmp_path / "u.json", policy=ExportPolicy.testing(max_wait_s=0.05)
            )
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("connection_id", ["con_0000000000000000", "not-a-connection"])
async def test_unknown_connection_is_a_usage_error(
    start_simulator: StartSimulator, tmp_path: Path, connection_id: str
) -> None:
    sim = await exporting_sim(start_simulator)
    async with client_of(sim) as client:
        with pytest.raises(UsageError) as caught:
            await export_users(client, tmp_path / "u.json", connection_id=connection_id)
    text = str(caught.value)
    assert f"no connection {connection_id!r}" in text
    assert "GET /api/v2/connections" in text
    assert sim.stats.count_for(CREATE, 400) == 1


async def test_export_user_ids_for_fetch_all_users(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await exporting_sim(start_simulator)
    async with client_of(sim) as client:
        path = await export_user_ids(client, tmp_path, policy=TESTING)
    assert path == tmp_path / "users-export.json.gz"
    records = [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert all(list(r) == ["user_id"] for r in records)
    assert ids_in(path) == list(sim.tenant.user_ids)


async def test_storage_download_sends_no_credentials(tmp_path: Path) -> None:
    """A pre-signed link on another host gets no bearer token and is sent as signed."""
    seen: dict[str, Any] = {}

    async def storage(request: web.Request) -> web.Response:
        seen["authorization"] = request.headers.get("Authorization")
        seen["path"] = request.raw_path
        return web.Response(body=gzip.compress(b'{"user_id":"auth0|a"}\n'))

    app = web.Application()
    app.router.add_get("/bucket/{name}", storage)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with Client("http://127.0.0.1:9", token="tok-never-sent") as client:
            with sink_at(tmp_path / "f") as sink:
                url = f"http://127.0.0.1:{port}/bucket/job.json.gz?X-Amz-Signature=a%2Fb"
                status, _, _ = await client._transport.download(url, sink)
    finally:
        await runner.cleanup()
    assert status == 200
    assert seen == {"authorization": None, "path": "/bucket/job.json.gz?X-Amz-Signature=a%2Fb"}
    assert gzip.decompress((tmp_path / "f").read_bytes()) == b'{"user_id":"auth0|a"}\n'


@pytest.fixture(scope="module")
def storage_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("storage-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_storage_is_verified_even_for_an_http_tenant(
    storage_certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """The tenant is a loopback http simulator; the storage link is https elsewhere."""
    cert, key = storage_certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def storage(request: web.Request) -> web.Response:
        assert "Authorization" not in request.headers
        return web.Response(body=gzip.compress(b'{"user_id":"auth0|a"}\n'))

    app = web.Application()
    app.router.add_get("/{name}", storage)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/job.json.gz?X-Amz-Expires=60"
    try:
        async with Client("http://127.0.0.1:9", token="t") as client:
            with sink_at(tmp_path / "a") as sink, pytest.raises(ConnectError, match="not trusted"):
                await client._transport.download(url, sink)
        async with Client("http://127.0.0.1:9", token="t", ca_bundle=str(cert)) as client:
            with sink_at(tmp_path / "b") as sink:
                status, _, _ = await client._transport.download(url, sink)
    finally:
        await runner.cleanup()
    assert status == 200
    assert gzip.decompress((tmp_path / "b").read_bytes()) == b'{"user_id":"auth0|a"}\n'


def sink_at(path: Path) -> IO[bytes]:
    return path.open("wb")


# --- pure parts -----------------------------------------------------------------


def test_poll_delay_follows_time_left_within_bounds() -> None:
    policy = ExportPolicy()
    assert poll_delay_s(4.0, None, policy) == 4.0
    assert poll_delay_s(0.2, None, policy) == policy.min_poll_s  # never a tight loop
    assert poll_delay_s(3600.0, None, policy) == policy.max_poll_s  # progress keeps moving
    # No estimate: a gentle backoff from the minimum, up to the ceiling.
    delays = [policy.min_poll_s]
    for _ in range(12):
        delays.append(poll_delay_s(None, delays[-1], policy))
    assert delays[:3] == [1.0, 1.5, 2.25]
    assert delays == sorted(delays)
    assert delays[-1] == policy.max_poll_s
    assert poll_delay_s(0.0, 2.0, policy) == 3.0  # "0 s left" but not done yet


def test_cli_options_parse() -> None:
    assert parse_fields(None) is None
    assert parse_fields("user_id, email=E-mail ,name") == [
        ExportField("user_id"),
        ExportField("email", "E-mail"),
        ExportField("name"),
    ]
    with pytest.raises(UsageError):
        parse_fields("user_id,,email")
    assert format_for("u.csv.gz", None) == "csv"
    assert format_for("u.CSV", None) == "csv"
    assert format_for("u.json.gz", None) == "json"
    assert format_for("u.txt", None) == "json"
    assert format_for("u.csv", "json") == "json"


def test_progress_lines() -> None:
    job = ExportProgress("job", "job_1", "processing", percentage_done=40, time_left_s=75)
    assert render_progress(job) == "export job_1: processing 40%, about 1m15s left"
    down = ExportProgress("download", "job_1", "completed", downloaded_bytes=3 * 1024 * 1024)
    assert render_progress(down) == "export job_1: downloading, 3.0 MiB"
    note = ExportProgress("download", "job_1", "completed", note="link expired; trying again")
    assert render_progress(note) == "export job_1: link expired; trying again"


# --- the command, as users run it -----------------------------------------------------


async def run_cli(
    sim: Simulator, *args: str, cwd: Path, secret: str | None = None
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "AUTH0_DOMAIN": sim.domain,
        "AUTH0_CLIENT_ID": sim.client_id,
        "AUTH0_CLIENT_SECRET": secret or sim.client_secret,
    }
    env.pop("AUTH0_TOKEN", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    # An asyncio subprocess: the simulator keeps serving in this loop meanwhile.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncroles",
        "export-users",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_no_secret(sim: Simulator, *texts: str) -> None:
    for text in texts:
        assert sim.client_secret not in text
        assert "Traceback" not in text


async def test_cli_end_to_end(start_simulator: StartSimulator, tmp_path: Path) -> None:
    # The command polls at its real pace (1 s at least): a job done at once keeps it quick.
    sim = await exporting_sim(start_simulator, export_duration_s=0.0)
    code, out, err = await run_cli(sim, "-o", "out.json.gz", cwd=tmp_path)
    assert code == 0, err
    assert_no_secret(sim, out, err)
    assert out == ""
    lines = err.splitlines()
    assert any("%" in line and line.startswith("asyncroles: export job_") for line in lines)
    assert lines[-1].startswith("asyncroles: exported 240 users to out.json.gz (json, gzip")
    assert "next: asyncroles fetch -i out.json.gz" in lines[-1]
    assert ids_in(tmp_path / "out.json.gz") == list(sim.tenant.user_ids)

    # An existing output is not replaced without --force; --quiet says nothing.
    code, _, err = await run_cli(sim, "-o", "out.json.gz", cwd=tmp_path)
    assert (code, err.count("\n")) == (2, 1)
    assert "out.json.gz already exists" in err
    code, out, err = await run_cli(
        sim, "-o", "out.json.gz", "--force", "-q", "--format", "csv", "--fields", "email=Mail",
        cwd=tmp_path,
    )  # fmt: skip
    assert (code, out, err) == (0, "", "")
    header = gzip.decompress((tmp_path / "out.json.gz").read_bytes()).splitlines()[0]
    assert header == b"user_id,Mail"


WRONG_SECRET = "wrong-" + "s" * 58


@pytest.mark.parametrize(
    ("settings", "args", "code", "fragment"),
    [
        ({"export_fail": True}, (), 1, "failed (status failed"),
        ({"scopes": ("read:roles",)}, (), 3, "grant the read:users scope"),
        ({}, ("--connection-id", "con_0000000000000000"), 2, "no connection 'con_0000"),
        ({}, ("--fields", "user_id=key"), 2, "would not be found by fetch"),
        ({"wrong_secret": True}, (), 3, "rejected the client credentials"),
    ],
)
async def test_cli_errors_are_one_line_with_the_exit_status(
    start_simulator: StartSimulator,
    tmp_path: Path,
    settings: dict[str, Any],
    args: tuple[str, ...],
    code: int,
    fragment: str,
) -> None:
    wrong = settings.pop("wrong_secret", False)
    sim = await exporting_sim(start_simulator, export_duration_s=0.0, **settings)
    secret = WRONG_SECRET if wrong else None
    returned, out, err = await run_cli(
        sim, "-o", "u.json.gz", "-q", *args, cwd=tmp_path, secret=secret
    )
    assert returned == code, err
    assert err.count("\n") == 1
    assert err.startswith("asyncroles: error: ")
    assert fragment in err
    assert WRONG_SECRET not in out + err
    assert_no_secret(sim, out, err)
    assert not (tmp_path / "u.json.gz").exists()
    assert leftovers(tmp_path) == []
