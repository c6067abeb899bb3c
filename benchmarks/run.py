"""Every contender on every scenario: a Markdown table, JSON figures, one PNG each.

    python benchmarks/run.py                      # all scenarios (~18 min on 2 cores)
    python benchmarks/run.py --quick              # small tenants, a smoke test (~6 min)
    python benchmarks/run.py --scenario free --contender guide --contender sdk

Each contender runs in its own process against a fresh simulator (its own process,
same seed and limits) and asks for every user of the tenant.  The tenant is small
enough for the slowest contender (the guide's sequential loop) to finish in a few
minutes, and every contender of a scenario gets the same users.  Written to
``--out`` (default ``benchmarks/results/``): ``<scenario>.json`` (every figure,
the per-second request counts, what each contender reported), ``<scenario>.png``
and ``results.md`` (the tables).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import contenders
from harness import BENCH, Scenario, markdown_table, measure, tree_state
from plot import draw_scenario

ENTERPRISE: dict[str, Any] = {
    "bucket": 50, "refill_per_s": 16.0, "latency_ms": 60.0, "jitter_ms": 20.0,
}  # fmt: skip
FAULTS = ("--p-500", "0.005", "--p-503", "0.005", "--p-502", "0.005", "--p-reset", "0.005")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("enterprise", "Enterprise production", users=500, quick_users=100, **ENTERPRISE),
        Scenario(
            "free", "Free, small tenant", users=60, quick_users=16,
            bucket=2, refill_per_s=2.0, latency_ms=60.0, jitter_ms=20.0,
        ),
        Scenario(
            "large", "Large limits", users=500, quick_users=150,
            bucket=100, refill_per_s=100.0, latency_ms=150.0, jitter_ms=50.0,
        ),
        Scenario(
            "shared", "Shared with another app spending a quarter",
            users=400, quick_users=100, background_rps=4.0, **ENTERPRISE,
        ),
        Scenario(
            "faulty", "Faulty (2% 5xx/resets, short-lived tokens)",
            users=600, quick_users=300, **ENTERPRISE,
            extra_flags=(*FAULTS, "--token-lifetime-s", "20"),
            quick_flags=(*FAULTS, "--token-lifetime-s", "12"),
        ),
    )
}  # fmt: skip


def heading(scenario: Scenario, rows: list[dict[str, Any]], quick: bool) -> str:
    ran = [r for r in rows if not r["skipped"]]
    users = rows[0]["users"] if rows else 0
    needed = rows[0]["requests_needed_by_route"] if rows else {}
    flags = scenario.quick_flags if quick and scenario.quick_flags is not None else None
    extra = " ".join(flags if flags is not None else scenario.extra_flags)
    return (
        f"### {scenario.name}: {scenario.title}\n\n"
        f"{scenario.describe()}{'; ' + extra if extra else ''}. "
        f"{users} users, the same for every contender ({len(ran)} ran). "
        f"Lower bound = (requests needed - (burst - reserve {scenario.reserve})) / "
        f"{scenario.net_refill_per_s:g} per s; requests needed: "
        + ", ".join(f"{route} {n}" for route, n in needed.items())
        + "."
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable (default: all)"
    )
    parser.add_argument(
        "--contender",
        action="append",
        choices=list(contenders.CONTENDERS),
        help="repeatable (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small tenants: a smoke test")
    parser.add_argument("--users", type=int, help="tenant size for every chosen scenario")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="output directory")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per contender")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop for async contenders (default: asyncio, as an app embedding them)",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNGs")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: rebuild results.md and the PNGs from the JSON in --out",
    )
    args = parser.parse_args()
    if args.render:
        return render(args.out, args.scenario or list(SCENARIOS), plot=not args.no_plot)

    names = args.contender or list(contenders.CONTENDERS)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / "work"
    sections: list[str] = []
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    tree = tree_state()
    for name in args.scenario or list(SCENARIOS):
        scenario = SCENARIOS[name]
        print(f"scenario {name}: {scenario.describe()}", flush=True)
        started = time.monotonic()
        rows = measure(
            scenario,
            names,
            quick=args.quick,
            users=args.users,
            workdir=workdir,
            timeout_s=args.timeout,
            loop=args.loop,
            say=lambda text: print(text, flush=True),
        )
        took = time.monotonic() - started
        document = {
            "scenario": dataclasses.asdict(scenario),
            "quick": args.quick,
            "loop": args.loop,
            "command": command,
            "tree": tree,
            "took_s": took,
            "rows": rows,
        }
        (out / f"{name}.json").write_text(json.dumps(document, indent=1, ensure_ascii=False))
        if not args.no_plot:
            draw_scenario(scenario, rows, out / f"{name}.png")
        section = f"{heading(scenario, rows, args.quick)}\n\n{markdown_table(rows)}\n"
        sections.append(section)
        print("\n" + section + f"\n(scenario took {took:.0f} s)\n", flush=True)
    report = f"Command: `{command}` (asyncroles at {tree})\n\n" + "\n".join(sections)
    (out / "results.md").write_text(report)
    print(f"wrote {out}/results.md, <scenario>.json and <scenario>.png")
    return 0


def render(out: Path, names: list[str], *, plot: bool) -> int:
    """Rebuild the report (and plots) of earlier runs from ``<scenario>.json``."""
    sections: list[str] = []
    header = ""
    for name in names:
        path = out / f"{name}.json"
        if not path.exists():
            continue
        document = json.loads(path.read_text())
        scenario = Scenario(**{**document["scenario"], **_tuples(document["scenario"])})
        rows = document["rows"]
        if not header:
            header = f"Command: `{document['command']}` (asyncroles at {document.get('tree')})"
        if plot:
            draw_scenario(scenario, rows, out / f"{name}.png")
        quick = bool(document.get("quick"))
        sections.append(f"{heading(scenario, rows, quick)}\n\n{markdown_table(rows)}\n")
    if not sections:
        print(f"no <scenario>.json in {out}", file=sys.stderr)
        return 1
    (out / "results.md").write_text(header + "\n\n" + "\n".join(sections))
    print("\n".join(sections))
    return 0


def _tuples(fields: dict[str, Any]) -> dict[str, Any]:
    # JSON turned the flag tuples into lists.
    return {key: tuple(value) for key, value in fields.items() if isinstance(value, list)}


if __name__ == "__main__":
    raise SystemExit(main())
