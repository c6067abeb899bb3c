"""``asyncroles fetch`` and ``demo`` as users run them: in a subprocess, against a
simulator served from the test's own event loop."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import os
import signal
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from asyncroles.simulator import Simulator
from tests.conftest import StartSimulator

FAST = {"bucket": 20, "refill_per_s": 500.0}


@dataclass
class Ran:
    code: int
    stdout: bytes
    stderr: str


def env_for(sim: Simulator, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH0_")}
    env.update(
        AUTH0_DOMAIN=sim.domain,
        AUTH0_CLIENT_ID=sim.client_id,
        AUTH0_CLIENT_SECRET=sim.client_secret,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


async def start_cli(
    *args: str, env: dict[str, str], cwd: Path, stdin: bytes | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncroles",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def cli(*args: str, env: dict[str, str], cwd: Path, stdin: bytes | None = None) -> Ran:
    process = await start_cli(*args, env=env, cwd=cwd, stdin=stdin)
    out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return Ran(process.returncode, out, err.decode())


def no_secret(sim: Simulator, *runs: Ran) -> None:
    for ran in runs:
        assert sim.client_secret not in ran.stderr
        assert sim.client_secret.encode() not in ran.stdout


def read_jsonl(data: bytes) -> dict[str, dict[str, object]]:
    records: dict[str, dict[str, object]] = {}
    for line in data.splitlines():
        record = orjson.loads(line)
        assert record["user_id"] not in records, "a user written twice"
        records[record["user_id"]] = record
    return records


def role_ids(record: dict[str, object]) -> frozenset[str] | None:
    roles = record["roles"]
    return None if roles is None else frozenset(r["id"] for r in roles)  # type: ignore[attr-defined]


def assert_matches_truth(
    sim: Simulator, records: dict[str, dict[str, object]], ids: list[str]
) -> None:
    truth = sim.tenant.truth()
    assert set(records) == set(ids)
    for user_id in ids:
        record = records[user_id]
        if user_id in truth:
            assert record["status"] == "ok", record
            assert role_ids(record) == truth[user_id]
        else:
            assert record["status"] == "not_found"
            assert record["roles"] is None


async def test_export_file_in_every_output_format(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=120, roles=55, **FAST)
    ids = [*sim.tenant.user_ids, "auth0|gone-user"]
    # The users-export job's CSV: quoted, '-prefixed cells, export_as headers; gzip.
    lines = ['"User ID","Email"'] + [f'"\'{u}","\'x@example.com"' for u in ids]
    (tmp_path / "users.csv.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    env = env_for(sim)
    jsonl = await cli(
        "fetch",
        "-i",
        "users.csv.gz",
        "--id-column",
        "User ID",
        "--strategy",
        "per-user",
        "-o",
        "out.jsonl",
        env=env,
        cwd=tmp_path,
    )
    assert jsonl.code == 0, jsonl.stderr
    assert_matches_truth(sim, read_jsonl((tmp_path / "out.jsonl").read_bytes()), ids)
    assert stat.S_IMODE((tmp_path / "out.jsonl").stat().st_mode) == 0o600

    as_csv = await cli(
        "fetch",
        "-i",
        "users.csv.gz",
        "--id-column",
        "User ID",
        "--strategy",
        "per-user",
        "-o",
        "out.csv",
        env=env,
        cwd=tmp_path,
    )
    assert as_csv.code == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text(), newline="")))
    by_user: dict[str, set[str]] = {}
    statuses: dict[str, str] = {}
    for row in rows:
        by_user.setdefault(row["user_id"], set())
        statuses[row["user_id"]] = row["status"]
        if row["role_id"]:
            by_user[row["user_id"]].add(row["role_id"])
    truth = sim.tenant.truth()
    assert set(by_user) == set(ids)
    assert all(by_user[u] == truth[u] for u in truth)
    assert statuses["auth0|gone-user"] == "not_found"

    as_json = await cli(
        "fetch",
        "-i",
        "users.csv.gz",
        "--id-column",
        "User ID",
        "--strategy",
        "per-user",
        "-o",
        "out.json",
        env=env,
        cwd=tmp_path,
    )
    assert as_json.code == 0, as_json.stderr
    array = json.loads((tmp_path / "out.json").read_text())
    assert_matches_truth(sim, {r["user_id"]: r for r in array}, ids)
    no_secret(sim, jsonl, as_csv, as_json)


async def test_stdin_and_stdout(start_simulator: StartSimulator, tmp_path: Path) -> None:
    sim = await start_simulator(users=40, roles=10, **FAST)
    ids = list(sim.tenant.user_ids)
    text = "\ufeff" + "\r\n".join(ids + ids[:5] + [""]) + "\r\n"  # BOM, CRLF, dupes, blank
    ran = await cli("fetch", "-i", "-", env=env_for(sim), cwd=tmp_path, stdin=text.encode())
    assert ran.code == 0, ran.stderr
    assert_matches_truth(sim, read_jsonl(ran.stdout), ids)
    assert "5 duplicate ids" in ran.stderr


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("users.ndjson", b'{"user_id": "auth0|a"}\n{"user_id": "auth0|b"\n', "users.ndjson:2:"),
        ("users.csv", b"email,name\nx@example.com,X\n", "users.csv:1:"),
        ("users.gz", b"\x1f\x8b\x08\x00garbage", "users.gz"),
        ("users.json", b'[\n"auth0|a",\n{"email": "x"}\n]', "users.json:3:"),
    ],
)
async def test_bad_input_stops_before_credentials_are_spent(
    start_simulator: StartSimulator, tmp_path: Path, name: str, content: bytes, where: str
) -> None:
    sim = await start_simulator(users=10, roles=5, **FAST)
    (tmp_path / name).write_bytes(content)
    ran = await cli("fetch", "-i", name, "-o", "out.jsonl", env=env_for(sim), cwd=tmp_path)
    assert ran.code == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert where in lines[0]
    assert "Traceback" not in ran.stderr
    assert sim.stats.count_for("POST /oauth/token") == 0
    assert not (tmp_path / "out.jsonl").exists()


def when_requests_reach(sim: Simulator, count: int) -> asyncio.Event:
    """An event set once the tenant has seen ``count`` API requests."""
    reached = asyncio.Event()
    stats = sim.service.stats
    original = stats.api_request

    def counting(*args: object, **kwargs: object) -> object:
        result = original(*args, **kwargs)  # type: ignore[arg-type]
        if stats.api_requests >= count:
            reached.set()
        return result

    stats.api_request = counting  # type: ignore[method-assign]
    return reached


@pytest.mark.parametrize(
    ("stop_after", "how"), [(3, signal.SIGINT), (90, signal.SIGINT), (180, signal.SIGTERM)]
)
async def test_interrupt_then_resume_is_exact(
    start_simulator: StartSimulator, tmp_path: Path, stop_after: int, how: signal.Signals
) -> None:
    sim = await start_simulator(users=240, roles=20, bucket=20, refill_per_s=120.0)
    ids = list(sim.tenant.user_ids)
    (tmp_path / "users.txt").write_text("\n".join(ids))
    env = env_for(sim)
    reached = when_requests_reach(sim, stop_after)
    process = await start_cli(
        "fetch",
        "-i",
        "users.txt",
        "-o",
        "roles.csv",
        "--strategy",
        "per-user",
        env=env,
        cwd=tmp_path,
    )
    await reached.wait()
    process.send_signal(how)
    _, err = await process.communicate()
    assert process.returncode == 130, err.decode()
    assert "--resume" in err.decode()
    partial = (tmp_path / "roles.csv").read_text()
    resumed = await cli(
        "fetch", "-i", "users.txt", "-o", "roles.csv", "--resume", env=env, cwd=tmp_path
    )
    assert resumed.code == 0, resumed.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "roles.csv").read_text(), newline="")))
    seen: dict[str, set[str]] = {}
    last = None
    for row in rows:
        if row["user_id"] != last:
            assert row["user_id"] not in seen, "a user written twice"
            seen[row["user_id"]] = set()
            last = row["user_id"]
        if row["role_id"]:
            seen[row["user_id"]].add(row["role_id"])
    truth = sim.tenant.truth()
    assert seen == {u: set(truth[u]) for u in ids}
    assert len(partial) <= len((tmp_path / "roles.csv").read_text())


async def test_resume_after_a_crash_cut_the_last_line(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=60, roles=10, **FAST)
    ids = list(sim.tenant.user_ids)
    (tmp_path / "users.txt").write_text("\n".join(ids))
    env = env_for(sim)
    first = await cli("fetch", "-i", "users.txt", "-o", "roles.jsonl", env=env, cwd=tmp_path)
    assert first.code == 0
    whole = (tmp_path / "roles.jsonl").read_bytes()
    cut = whole[: len(whole) // 2 + 7]  # mid-record, as a crash leaves it
    (tmp_path / "roles.jsonl").write_bytes(cut)
    resumed = await cli(
        "fetch", "-i", "users.txt", "-o", "roles.jsonl", "--resume", env=env, cwd=tmp_path
    )
    assert resumed.code == 0, resumed.stderr
    assert_matches_truth(sim, read_jsonl((tmp_path / "roles.jsonl").read_bytes()), ids)


async def test_existing_output_is_not_overwritten_by_accident(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=5, roles=5, **FAST)
    (tmp_path / "users.txt").write_text("\n".join(sim.tenant.user_ids))
    (tmp_path / "roles.jsonl").write_text("precious\n")
    ran = await cli("fetch", "-i", "users.txt", "-o", "roles.jsonl", env=env_for(sim), cwd=tmp_path)
    assert ran.code == 2
    assert "--resume" in ran.stderr
    assert (tmp_path / "roles.jsonl").read_text() == "precious\n"


async def test_missing_scope_exits_3_after_one_request(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=300, roles=10, scopes=("read:users",), **FAST)
    (tmp_path / "users.txt").write_text("\n".join(sim.tenant.user_ids))
    ran = await cli("fetch", "-i", "users.txt", "-o", "roles.jsonl", env=env_for(sim), cwd=tmp_path)
    assert ran.code == 3
    assert "read:roles" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) <= 2
    assert "Traceback" not in ran.stderr
    assert sim.stats.api_requests <= 2
    no_secret(sim, ran)


async def test_bad_secret_exits_3_without_echoing_it(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=5, roles=5, **FAST)
    (tmp_path / "users.txt").write_text("\n".join(sim.tenant.user_ids))
    env = env_for(sim, AUTH0_CLIENT_SECRET="not-the-secret-123")
    ran = await cli("fetch", "-i", "users.txt", env=env, cwd=tmp_path)
    assert ran.code == 3
    assert "not-the-secret-123" not in ran.stderr
    assert "AUTH0_CLIENT_SECRET" in ran.stderr


@pytest.mark.parametrize(
    "domain", ["http://tenant.us.auth0.com", "http://10.0.0.8:8080", "http://example.com"]
)
async def test_plain_http_to_a_non_loopback_host_is_refused(tmp_path: Path, domain: str) -> None:
    (tmp_path / "users.txt").write_text("auth0|a\n")
    env = {**os.environ, "AUTH0_DOMAIN": domain, "AUTH0_TOKEN": "t"}
    ran = await cli("fetch", "-i", "users.txt", env=env, cwd=tmp_path)
    assert ran.code == 2
    assert "https" in ran.stderr.lower() or "HTTPS" in ran.stderr


async def test_a_secret_on_the_command_line_is_refused_and_not_echoed(tmp_path: Path) -> None:
    ran = await cli(
        "fetch", "--client-secret", "hunter2-secret", env=dict(os.environ), cwd=tmp_path
    )
    assert ran.code == 2
    assert "hunter2-secret" not in ran.stderr


async def test_demo_runs_and_checks_itself(tmp_path: Path) -> None:
    ran = await cli("demo", "--users", "60", "--dir", "out", env=dict(os.environ), cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "60/60 users have exactly their roles" in ran.stderr
    assert len((tmp_path / "out" / "roles.jsonl").read_bytes().splitlines()) == 60


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    from asyncroles.cli import build_parser, main

    parser = build_parser()
    commands: Callable[[], list[str]] = lambda: [  # noqa: E731
        name
        for action in parser._subparsers._group_actions  # type: ignore[union-attr]
        for name in action.choices  # type: ignore[union-attr]
    ]
    assert {"fetch", "demo", "simulate"} <= set(commands())
    for command in commands():
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert f"usage: asyncroles {command}" in out


async def test_auto_takes_by_role_for_a_whole_tenant_and_per_user_for_a_few(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=2500, roles=30, bucket=50, refill_per_s=2000.0)
    ids = list(sim.tenant.user_ids)
    (tmp_path / "all.txt").write_text("\n".join(ids))
    (tmp_path / "few.txt").write_text("\n".join(ids[:8]))
    env = env_for(sim)
    whole = await cli("fetch", "-i", "all.txt", "-o", "all.jsonl", env=env, cwd=tmp_path)
    assert whole.code == 0, whole.stderr
    assert "strategy by-role" in whole.stderr
    assert sim.stats.api_requests < len(ids) / 10
    assert_matches_truth(sim, read_jsonl((tmp_path / "all.jsonl").read_bytes()), ids)
    before = sim.stats.api_requests
    few = await cli("fetch", "-i", "few.txt", "-o", "few.jsonl", env=env, cwd=tmp_path)
    assert few.code == 0, few.stderr
    assert "strategy per-user" in few.stderr
    assert sim.stats.api_requests - before == 8
    assert_matches_truth(sim, read_jsonl((tmp_path / "few.jsonl").read_bytes()), ids[:8])


async def test_without_input_every_user_holding_a_role(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=400, roles=20, **FAST)
    ran = await cli("fetch", "-o", "roles.jsonl", env=env_for(sim), cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    holders = [u for u, roles in sim.tenant.truth().items() if roles]
    assert_matches_truth(sim, read_jsonl((tmp_path / "roles.jsonl").read_bytes()), holders)
    per_user = await cli("fetch", "--strategy", "per-user", env=env_for(sim), cwd=tmp_path)
    assert per_user.code == 2
    assert "list of users" in per_user.stderr


async def test_all_users_exports_then_answers_everyone_and_resumes_on_the_same_list(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=500, roles=20, export_duration_s=0.2, **FAST)
    env = env_for(sim)
    ran = await cli("fetch", "--all-users", "-o", "roles.jsonl", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    ids = list(sim.tenant.user_ids)
    records = read_jsonl((tmp_path / "roles.jsonl").read_bytes())
    assert_matches_truth(sim, records, ids)
    assert any(r["roles"] == [] for r in records.values())  # users without roles too
    assert sim.stats.count_for("POST /api/v2/jobs/users-exports") == 1
    # A cut run resumes on the same exported list, without a second export.
    lines = (tmp_path / "roles.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "roles.jsonl").write_bytes(b"".join(lines[:200]) + lines[200][:10])
    again = await cli(
        "fetch", "--all-users", "-o", "roles.jsonl", "--resume", env=env, cwd=tmp_path
    )
    assert again.code == 0, again.stderr
    assert_matches_truth(sim, read_jsonl((tmp_path / "roles.jsonl").read_bytes()), ids)
    assert sim.stats.count_for("POST /api/v2/jobs/users-exports") == 1


async def test_resume_by_role_without_input_writes_each_user_once(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=300, roles=20, **FAST)
    env = env_for(sim)
    first = await cli("fetch", "-o", "roles.jsonl", env=env, cwd=tmp_path)
    assert first.code == 0
    lines = (tmp_path / "roles.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "roles.jsonl").write_bytes(b"".join(lines[:50]))
    resumed = await cli("fetch", "-o", "roles.jsonl", "--resume", env=env, cwd=tmp_path)
    assert resumed.code == 0, resumed.stderr
    holders = [u for u, roles in sim.tenant.truth().items() if roles]
    assert_matches_truth(sim, read_jsonl((tmp_path / "roles.jsonl").read_bytes()), holders)


async def test_quiet_prints_nothing_and_a_log_gets_a_summary(
    start_simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = await start_simulator(users=30, roles=5, **FAST)
    (tmp_path / "users.txt").write_text("\n".join(sim.tenant.user_ids))
    env = env_for(sim)
    quiet = await cli("fetch", "-i", "users.txt", "-o", "a.jsonl", "-q", env=env, cwd=tmp_path)
    assert quiet.code == 0
    assert quiet.stderr == ""
    loud = await cli("fetch", "-i", "users.txt", "-o", "b.jsonl", env=env, cwd=tmp_path)
    assert "users: 30 ok, 0 not_found, 0 failed" in loud.stderr
    assert "\x1b[" not in loud.stderr  # not a terminal: no redrawn line
