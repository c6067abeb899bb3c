"""What every benchmark script shares: a simulator in its own process, a contender in
another, and the arithmetic of the lower bound.

The simulator is ``python -m asyncroles simulate --port 0`` in a subprocess (its
settings only through its command-line flags).  Each contender runs in a fresh
child process (``contend.py``), so its CPU time and peak resident memory are its
own, not the simulator's nor a previous contender's.  Statistics and ground truth
come from the simulator's ``GET /__sim/stats`` and ``GET /__sim/truth``.

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from asyncroles.pacing import default_reserve

__all__ = [
    "BENCH",
    "REPO",
    "ContenderOutcome",
    "Scenario",
    "SimProcess",
    "by_role_requests",
    "check_exact",
    "lower_bound_s",
    "per_user_requests",
    "run_contender",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = sys.executable
#: Per page of ``GET /users/{id}/roles`` and ``take`` of ``/roles/{id}/users``.
USER_ROLES_PER_PAGE = 50
ROLE_MEMBERS_PER_PAGE = 100
ROLES_PER_PAGE = 100

# Loopback only: make sure no proxy from the environment is ever consulted.
_NO_PROXY = "127.0.0.1,localhost"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def local_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with loopback exempt from any proxy, plus ``extra``."""
    env = dict(os.environ)
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = _NO_PROXY + ("," + env[name] if env.get(name) else "")
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Scenario:
    """One simulated tenant: its size, limits, latency and misbehaviour."""

    name: str
    title: str
    users: int
    quick_users: int
    bucket: int
    refill_per_s: float
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    background_rps: float = 0.0
    roles: int = 50
    seed: int = 1
    #: Further ``asyncroles simulate`` flags (faults, token lifetime ...).
    extra_flags: tuple[str, ...] = ()
    #: ``extra_flags`` for ``--quick`` runs (None: the same).
    quick_flags: tuple[str, ...] | None = None

    def user_count(self, quick: bool) -> int:
        return self.quick_users if quick else self.users

    def flags(self, users: int, quick: bool = False) -> list[str]:
        extra = self.quick_flags if quick and self.quick_flags is not None else self.extra_flags
        return [
            "--users", str(users), "--roles", str(self.roles), "--seed", str(self.seed),
            "--bucket", str(self.bucket), "--refill", repr(self.refill_per_s),
            "--latency-ms", repr(self.latency_ms), "--jitter-ms", repr(self.jitter_ms),
            "--background-rps", repr(self.background_rps),
            *extra,
        ]  # fmt: skip

    @property
    def reserve(self) -> int:
        return int(default_reserve(self.bucket))

    @property
    def net_refill_per_s(self) -> float:
        """What refills for us: the bucket's rate less what the other app spends."""
        return self.refill_per_s - self.background_rps

    def describe(self) -> str:
        text = f"burst {self.bucket}, {self.refill_per_s:g}/s"
        if self.latency_ms:
            text += f", {self.latency_ms:g}±{self.jitter_ms:g} ms"
        if self.background_rps:
            text += f", another app spends {self.background_rps:g}/s"
        return text


# -- the lower bound -----------------------------------------------------------------


def per_user_requests(truth: Mapping[str, Sequence[str]], user_ids: Iterable[str]) -> int:
    """Fewest calls of ``GET /users/{id}/roles`` that answer ``user_ids``."""
    return sum(max(1, math.ceil(len(truth.get(uid, ())) / USER_ROLES_PER_PAGE)) for uid in user_ids)


def by_role_requests(truth: Mapping[str, Sequence[str]], roles: int) -> int:
    """Fewest calls of ``/roles`` + ``/roles/{id}/users`` that map the whole tenant."""
    members: dict[str, int] = {}
    for held in truth.values():
        for role_id in held:
            members[role_id] = members.get(role_id, 0) + 1
    listing = max(1, math.ceil(roles / ROLES_PER_PAGE))
    # A role without members still costs one (empty) page; roles the truth does not
    # name are exactly those.
    empty = max(0, roles - len(members))
    pages = sum(max(1, math.ceil(n / ROLE_MEMBERS_PER_PAGE)) for n in members.values())
    return listing + pages + empty


def lower_bound_s(requests: int, scenario: Scenario) -> float:
    """``(requests - (burst - reserve)) / refill``: the physical floor for ``requests``.

    ``refill`` is what is left after the other application's spending.  Never below
    one round trip (a run that fits in the usable burst still takes that long).
    """
    usable = scenario.bucket - scenario.reserve
    floor = max(0, requests - usable) / scenario.net_refill_per_s
    return max(floor, scenario.latency_ms / 1000.0)


# -- the simulator in its own process -----------------------------------------------


class SimProcess:
    """``asyncroles simulate`` in a subprocess; ``with SimProcess(flags) as sim: ...``."""

    def __init__(self, flags: Sequence[str], *, log_path: Path | None = None) -> None:
        self.flags = list(flags)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        #: ``time.monotonic()`` when it printed its credentials: the start of its
        #: ``per_second`` buckets, within milliseconds (one clock for all processes).
        self.ready_monotonic = 0.0

    def __enter__(self) -> SimProcess:
        command = [PYTHON, "-m", "asyncroles", "simulate", "--port", "0", *self.flags]
        with contextlib.ExitStack() as stack:
            stderr: IO[bytes] | int = subprocess.DEVNULL
            if self.log_path is not None:
                stderr = stack.enter_context(open(self.log_path, "wb"))
            self.proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, cwd=REPO, env=local_env()
            )
        assert self.proc.stdout is not None
        for _ in range(3):
            line = self.proc.stdout.readline().decode()
            if not line:
                self.__exit__()
                raise RuntimeError(f"the simulator did not start: {' '.join(command)}")
            name, _, value = line.strip().partition("=")
            self.env[name] = value
        self.ready_monotonic = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def domain(self) -> str:
        return self.env["AUTH0_DOMAIN"]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _get(self, path: str) -> Any:
        with _LOCAL.open(self.domain + path, timeout=120) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """``GET /__sim/stats``: requests by endpoint and status, 429s, ``per_second``."""
        stats: dict[str, Any] = self._get("/__sim/stats")
        return stats

    def truth(self) -> dict[str, list[str]]:
        """``GET /__sim/truth``: every existing user -> sorted role ids."""
        truth: dict[str, list[str]] = self._get("/__sim/truth")
        return truth

    def cpu_s(self) -> float | None:
        """The simulator's user + system CPU seconds so far (Linux; else None)."""
        stat = Path(f"/proc/{self.pid}/stat")
        if not stat.exists():
            return None
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_counts(stats: Mapping[str, Any]) -> dict[int, int]:
    """/api/v2 requests by status (0 = connection reset, no answer)."""
    out: dict[int, int] = {}
    for row in stats["requests"]:
        if str(row["endpoint"]).split(" ", 1)[-1].startswith("/api/v2"):
            out[int(row["status"])] = out.get(int(row["status"]), 0) + int(row["count"])
    return out


def token_requests(stats: Mapping[str, Any]) -> int:
    return sum(int(r["count"]) for r in stats["requests"] if r["endpoint"] == "POST /oauth/token")


# -- a contender in its own process ------------------------------------------------------


@dataclass
class ContenderOutcome:
    """What one contender did against one fresh simulator."""

    contender: str
    ok: bool  # it ran to the end (``error`` says why not)
    error: str | None = None
    skipped: str | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    roles: dict[str, list[str] | None] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    t0_monotonic: float = 0.0


def run_contender(
    name: str,
    sim: SimProcess,
    ids_path: Path,
    out_path: Path,
    *,
    timeout_s: float,
    loop: str = "asyncio",
    options: Mapping[str, Any] | None = None,
) -> ContenderOutcome:
    """Run contender ``name`` in a child process against ``sim``; read what it wrote.

    The credentials go through the environment, never the command line.
    """
    env = local_env(
        {
            "AUTH0_DOMAIN": sim.env["AUTH0_DOMAIN"],
            "AUTH0_CLIENT_ID": sim.env["AUTH0_CLIENT_ID"],
            "AUTH0_CLIENT_SECRET": sim.env["AUTH0_CLIENT_SECRET"],
        }
    )
    command = [
        PYTHON, str(BENCH / "contend.py"), name,
        "--ids", str(ids_path), "--out", str(out_path), "--loop", loop,
        "--options", json.dumps(dict(options or {})),
    ]  # fmt: skip
    out_path.unlink(missing_ok=True)
    try:
        done = subprocess.run(command, env=env, cwd=REPO, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return ContenderOutcome(name, ok=False, error=f"timed out after {timeout_s:g} s")
    if not out_path.exists():
        return ContenderOutcome(name, ok=False, error=f"exited {done.returncode} with no result")
    data = json.loads(out_path.read_text())
    return ContenderOutcome(
        contender=name,
        ok=data.get("error") is None and data.get("skipped") is None,
        error=data.get("error"),
        skipped=data.get("skipped"),
        wall_s=float(data.get("wall_s", 0.0)),
        cpu_s=float(data.get("cpu_s", 0.0)),
        peak_rss_mb=float(data.get("peak_rss_mb", 0.0)),
        roles=data.get("roles", {}),
        info=data.get("info", {}),
        t0_monotonic=float(data.get("t0_monotonic", 0.0)),
    )


def check_exact(
    truth: Mapping[str, Sequence[str]],
    user_ids: Sequence[str],
    got: Mapping[str, Sequence[str] | None],
) -> tuple[bool, int]:
    """(every asked user answered with exactly its roles, how many were not)."""
    wrong = 0
    for uid in user_ids:
        answer = got.get(uid)
        expected = truth.get(uid)
        if expected is None:  # not in the tenant: the right answer is "none"
            wrong += answer is not None
        elif answer is None or sorted(answer) != sorted(expected):
            wrong += 1
    return wrong == 0 and len(got) >= len(user_ids), wrong


def write_ids(path: Path, user_ids: Sequence[str]) -> None:
    # JSON, not lines: an id may legally hold any character, a newline too.
    path.write_text(json.dumps(list(user_ids), ensure_ascii=False))


# -- one scenario, every contender ----------------------------------------------------


def route_requests(route: str, needed: Mapping[str, int]) -> tuple[str, int]:
    """(route named in the table, requests it needs) for a contender's ``ROUTE``."""
    if route == "best":
        best = min(needed, key=lambda name: needed[name])
        return best, needed[best]
    return route, needed[route]


def measure(
    scenario: Scenario,
    names: Sequence[str],
    *,
    quick: bool,
    workdir: Path,
    users: int | None = None,
    timeout_s: float = 1200.0,
    loop: str = "asyncio",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    say: Any = print,
) -> list[dict[str, Any]]:
    """Run each contender against a fresh simulator of ``scenario``; one row each.

    Every contender asks for every user of the tenant, in the same order.
    """
    import contenders  # here: run.py and engine.py put benchmarks/ on sys.path

    workdir.mkdir(parents=True, exist_ok=True)
    count = users if users is not None else scenario.user_count(quick)
    flags = scenario.flags(count, quick)
    rows: list[dict[str, Any]] = []
    ids_path = workdir / f"{scenario.name}.ids.json"
    for name in names:
        route = getattr(contenders.load(name), "ROUTE", "per-user")
        log = workdir / f"{scenario.name}.{name}.sim.log"
        with SimProcess(flags, log_path=log) as sim:
            truth = sim.truth()
            user_ids = list(truth)
            write_ids(ids_path, user_ids)
            needed = {
                "per-user": per_user_requests(truth, user_ids),
                "by-role": by_role_requests(truth, scenario.roles),
            }
            say(f"  {scenario.name}: {name} on {len(user_ids)} users ...")
            outcome = run_contender(
                name,
                sim,
                ids_path,
                workdir / f"{scenario.name}.{name}.result.json",
                timeout_s=timeout_s,
                loop=loop,
                options=(options or {}).get(name),
            )
            stats = sim.stats()
            sim_cpu_s = sim.cpu_s()
            ready = sim.ready_monotonic
        route_name, route_needed = route_requests(route, needed)
        bound = lower_bound_s(route_needed, scenario)
        statuses = status_counts(stats)
        exact, wrong = check_exact(truth, user_ids, outcome.roles)
        requests = int(stats["api_requests"])
        row: dict[str, Any] = {
            "scenario": scenario.name,
            "contender": name,
            "users": len(user_ids),
            "route": route_name,
            "requests_needed": route_needed,
            "requests_needed_by_route": needed,
            "lower_bound_s": bound,
            "ok": outcome.ok,
            "error": outcome.error,
            "skipped": outcome.skipped,
            "wall_s": outcome.wall_s,
            "ratio": outcome.wall_s / bound if bound and outcome.ok else None,
            "requests": requests,
            "count_429": int(stats["count_429"]),
            "count_5xx": sum(n for status, n in statuses.items() if 500 <= status < 600),
            "resets": statuses.get(0, 0),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "token_requests": token_requests(stats),
            "background_rps": scenario.background_rps,
            "background_spent": stats.get("background_spent", 0),
            "exact": exact,
            "wrong_users": wrong,
            "cpu_s": outcome.cpu_s,
            "cpu_ms_per_request": 1000 * outcome.cpu_s / requests if requests else None,
            "peak_rss_mb": outcome.peak_rss_mb,
            "sim_cpu_s": sim_cpu_s,
            "per_second": stats["per_second"],
            # Where the contender's start falls on the simulator's per_second axis.
            "start_offset_s": outcome.t0_monotonic - ready if outcome.t0_monotonic else 0.0,
            "info": outcome.info,
        }
        rows.append(row)
        if outcome.skipped:
            say(f"    skipped: {outcome.skipped}")
        else:
            say(
                f"    {outcome.wall_s:.1f} s (x{row['ratio'] or 0:.2f} of {bound:.1f} s), "
                f"{requests} requests, {row['count_429']} 429s, exact: {exact}"
                + (f", error: {outcome.error}" if outcome.error else "")
            )
    return rows


def other_app_denied(row: Mapping[str, Any]) -> int | None:
    """About how many of the other application's requests found the bucket empty.

    It ticks evenly at ``background_rps`` from the simulator's start until the
    stats were read (just after the contender ended); ``background_spent`` counts
    the ticks that found a token.  Approximate by a tick or so.
    """
    rps = float(row.get("background_rps") or 0.0)
    if not rps or row.get("skipped"):
        return None
    ticks = math.floor(rps * (float(row["start_offset_s"]) + float(row["wall_s"])))
    return max(0, ticks - int(row["background_spent"]))


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = (
        "| contender | wall s | time / lower bound | requests | 429s | 5xx + resets "
        "| exact | client CPU s | CPU ms/req | peak RSS MB | notes |\n"
        "|---|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---|"
    )
    lines = [head]
    for r in rows:
        if r["skipped"]:
            lines.append(f"| {r['contender']} | - | - | - | - | - | - | - | - | - | "
                         f"skipped: {r['skipped']} |")  # fmt: skip
            continue
        notes = []
        if r["error"]:
            notes.append(f"error: {r['error']}")
        if r["wrong_users"]:
            notes.append(f"{r['wrong_users']} users unanswered or wrong")
        if r["token_requests"] > 1:
            notes.append(f"{r['token_requests']} token requests")
        denied = other_app_denied(r)
        if denied is not None and denied >= 2:
            notes.append(f"the other app was refused ~{denied} of its tokens")
        ratio = r["ratio"]
        lines.append(
            f"| {r['contender']} | {fmt(r['wall_s'])} "
            f"| {fmt(ratio, 2)} ({r['route']}: {r['lower_bound_s']:.1f} s) "
            f"| {r['requests']} | {r['count_429']} | {r['count_5xx'] + r['resets']} "
            f"| {'yes' if r['exact'] else 'no'} | {fmt(r['cpu_s'], 2)} "
            f"| {fmt(r['cpu_ms_per_request'], 3)} | {fmt(r['peak_rss_mb'], 0)} "
            f"| {'; '.join(notes)} |"
        )
    return "\n".join(lines)


def tree_state() -> str:
    """The commit measured, and whether the library had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "asyncroles"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in asyncroles/' if dirty else ''}"
