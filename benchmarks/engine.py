"""The engine's benchmark (issue 3): asyncroles per-user against the physical floor.

    python benchmarks/engine.py                   # ~1-2 min per scenario
    python benchmarks/engine.py --quick           # ~15 s per scenario
    python benchmarks/engine.py --scenario large --users 3000

Per scenario: wall time divided by the lower bound
``(requests - (burst - reserve)) / refill`` (reserve = ``default_reserve(burst)``,
refill = what the other application leaves), the 429s and the requests sent; then
the client's CPU time per request with limits and latency off (a bucket too big to
matter, latency 0), on the default asyncio loop and on uvloop.  The client runs in
its own process (``contend.py``), the simulator in another.

Targets: time / lower bound <= 1.05 with zero 429s when alone; with another app
spending tokens, every user answered and 429s under 1% of requests; CPU <= 0.5 ms
per request.  Where a run misses, the "where the time goes" lines say why: how
many requests were sent by 1, 2 and 5 s against an ideal client (usable burst at
once, then the refill rate), when the client had learned the rate, the rate held
in the middle of the run, and the tail after the last request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import BENCH, Scenario, fmt, measure, tree_state

CONTENDER = "asyncroles-per-user"
BIG = 1_000_000_000

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "enterprise", "Enterprise production", users=1500, quick_users=300,
            bucket=50, refill_per_s=16.0, latency_ms=60.0, jitter_ms=20.0,
        ),
        Scenario(
            "large", "Large limits", users=9000, quick_users=1500,
            bucket=100, refill_per_s=100.0, latency_ms=150.0, jitter_ms=50.0,
        ),
        Scenario(
            "shared", "Enterprise, another app spending 4/s", users=1100, quick_users=250,
            bucket=50, refill_per_s=16.0, latency_ms=60.0, jitter_ms=20.0, background_rps=4.0,
        ),
    )
}  # fmt: skip
CPU = Scenario(
    "cpu", "Limits and latency off", users=20_000, quick_users=4000,
    bucket=BIG, refill_per_s=float(BIG),
)  # fmt: skip


def sent_by(row: Mapping[str, Any], t_s: float) -> int:
    """Requests that reached the tenant in the contender's first ``t_s`` seconds."""
    offset = float(row["start_offset_s"])
    total = 0
    for second, (requests, _) in enumerate(row["per_second"]):
        if second + 1 - offset <= t_s + 1e-9:
            total += requests
    return total


def steady_rate(row: Mapping[str, Any]) -> float | None:
    """Mean requests/s over the middle half of the run (whole seconds)."""
    seconds = [r for r, _ in row["per_second"]]
    offset = int(row["start_offset_s"]) + 1
    body = seconds[offset:]
    if len(body) < 8:
        return None
    middle = body[len(body) // 4 : 3 * len(body) // 4]
    return float(sum(middle)) / len(middle)


def diagnose(scenario: Scenario, row: Mapping[str, Any]) -> list[str]:
    info = row["info"]
    usable = scenario.bucket - scenario.reserve
    refill = scenario.net_refill_per_s
    lines = []
    ideal = {t: min(row["requests_needed"], usable + refill * t) for t in (1, 2, 5)}
    lines.append(
        "sent by 1/2/5 s: "
        + ", ".join(f"{sent_by(row, t)} (ideal {ideal[t]:.0f})" for t in (1, 2, 5))
    )
    samples = info.get("samples", [])
    learned = next((s["t"] for s in samples if s["learned"]), None)
    lines.append(
        f"first result at {fmt(info.get('first_result_s'), 3)} s; refill learned at "
        f"{fmt(learned, 2)} s as {fmt(info.get('learned_refill_per_s'), 2)}/s "
        f"(true {refill:g}/s); reserve {info.get('reserve')}"
    )
    rate = steady_rate(row)
    lines.append(
        f"mid-run rate {fmt(rate, 2)}/s against {refill:g}/s"
        + (f" ({rate / refill:.1%})" if rate else "")
    )
    done = info.get("done_at") or []
    if done:
        gap = row["wall_s"] - done[-1]
        lines.append(f"last result at {done[-1]:.2f} s, {gap:.2f} s before the end")
        tail = [t for t in done if t > done[-1] - 2.0]
        lines.append(f"results in the last 2 s: {len(tail)} ({len(tail) / 2:.1f}/s)")
    if info.get("pauses"):
        lines.append(f"429 pauses: {info['pauses'][:5]}")
    excess = row["wall_s"] - row["lower_bound_s"]
    lines.append(
        f"excess over the bound: {excess:.2f} s = {excess * refill:.0f} tokens' worth "
        f"(one round trip is {scenario.latency_ms / 1000:.2f} s)"
    )
    return lines


def verdict(scenario: Scenario, row: Mapping[str, Any]) -> str:
    if row["skipped"] or not row["ok"]:
        return "did not run"
    answered = row["exact"]
    if scenario.background_rps:
        share = row["count_429"] / max(1, row["requests"])
        good = answered and share < 0.01 and (row["ratio"] or 99) <= 1.05
        return f"{'meets' if good else 'MISSES'} (429s {share:.2%} of requests)"
    good = answered and row["count_429"] == 0 and (row["ratio"] or 99) <= 1.05
    return "meets" if good else "MISSES"


def say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    choices = [*SCENARIOS, "cpu"]
    parser.add_argument("--scenario", action="append", choices=choices, help="default: all")
    parser.add_argument("--quick", action="store_true", help="~15 s per scenario")
    parser.add_argument("--users", type=int, help="tenant size for every chosen scenario")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="output directory")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / "work"
    chosen: Sequence[str] = args.scenario or choices
    rows: list[dict[str, Any]] = []
    for name in chosen:
        if name == "cpu":
            continue
        scenario = SCENARIOS[name]
        say(f"scenario {name}: {scenario.describe()}")
        [row] = measure(
            scenario,
            [CONTENDER],
            quick=args.quick,
            users=args.users,
            workdir=workdir,
            timeout_s=args.timeout,
            options={CONTENDER: {"trace": True}},
            say=say,
        )
        row["verdict"] = verdict(scenario, row)
        row["diagnosis"] = diagnose(scenario, row) if row["ok"] else []
        rows.append(row)
    cpu_rows: list[dict[str, Any]] = []
    if "cpu" in chosen:
        for loop in ("asyncio", "uvloop"):
            say(f"cpu: limits and latency off, {loop} loop")
            [row] = measure(
                CPU,
                [CONTENDER],
                quick=args.quick,
                users=args.users,
                workdir=workdir,
                timeout_s=args.timeout,
                loop=loop,
                say=say,
            )
            row["loop"] = loop
            cpu_rows.append(row)

    command = "python benchmarks/engine.py " + " ".join(sys.argv[1:])
    tree = tree_state()
    lines = [f"Command: `{command}` (asyncroles at {tree})", ""]
    if rows:
        lines += [
            "| scenario | users | lower bound s | wall s | time / bound | requests | 429s "
            "| exact | CPU ms/req | peak RSS MB | target |",
            "|---|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['scenario']} ({SCENARIOS[r['scenario']].describe()}) | {r['users']} "
                f"| {r['lower_bound_s']:.1f} | {fmt(r['wall_s'])} | {fmt(r['ratio'], 3)} "
                f"| {r['requests']} | {r['count_429']} | {'yes' if r['exact'] else 'no'} "
                f"| {fmt(r['cpu_ms_per_request'], 3)} | {fmt(r['peak_rss_mb'], 0)} "
                f"| {r['verdict']} |"
            )
        lines.append("")
        for r in rows:
            lines.append(f"Where the time goes, {r['scenario']}:")
            lines += [f"- {d}" for d in r["diagnosis"]]
            lines.append("")
    for r in cpu_rows:
        per = r["cpu_ms_per_request"]
        lines.append(
            f"CPU, limits and latency off, {r['loop']}: {r['requests']} requests in "
            f"{fmt(r['wall_s'], 2)} s, client CPU {fmt(r['cpu_s'], 2)} s = "
            f"{fmt(per, 3)} ms per request "
            f"({'meets' if per is not None and per <= 0.5 else 'MISSES'} <= 0.5 ms); "
            f"peak RSS {fmt(r['peak_rss_mb'], 0)} MB; exact: {'yes' if r['exact'] else 'no'}"
        )
    report = "\n".join(lines)
    print("\n" + report)
    (out / "engine.md").write_text(report + "\n")
    (out / "engine.json").write_text(
        json.dumps({"command": command, "tree": tree, "rows": rows, "cpu": cpu_rows}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
