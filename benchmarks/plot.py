"""One PNG per scenario: requests per second reaching the tenant, per contender.

Drawn from the simulator's ``per_second`` counts (``[requests, 429s]`` per whole
second since it started), shifted so that 0 is the moment the contender began.
A horizontal line marks the bucket's sustained rate (and, when another app spends
from it, the rate left for us); 429s are crosses at their count per second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import Scenario

__all__ = ["draw_scenario"]


def series(row: Mapping[str, Any]) -> tuple[list[float], list[int], list[float], list[int]]:
    """(t, requests/s, t of seconds with 429s, 429s/s), t in seconds since the start."""
    offset = float(row.get("start_offset_s") or 0.0)
    t: list[float] = []
    rate: list[int] = []
    t429: list[float] = []
    n429: list[int] = []
    for second, (requests, throttled) in enumerate(row["per_second"]):
        x = second + 0.5 - offset
        if x < -0.5:
            continue
        t.append(x)
        rate.append(requests)
        if throttled:
            t429.append(x)
            n429.append(throttled)
    return t, rate, t429, n429


def draw_scenario(scenario: Scenario, rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(rows):
        if row["skipped"] or not row["per_second"]:
            continue
        color = colors[i % len(colors)]  # by position in the table: stable per contender
        ours = str(row["contender"]).startswith("asyncroles")
        t, rate, t429, n429 = series(row)
        ratio = f"x{row['ratio']:.2f}" if row["ratio"] else "-"
        label = f"{row['contender']} ({row['wall_s']:.0f} s, {ratio}, {row['count_429']} 429s)"
        # asyncroles on top and thicker: it hugs the sustained-rate line.
        ax.step(
            t, rate, where="mid", color=color, linewidth=2.0 if ours else 1.2,
            zorder=4 if ours else 2, label=label,
        )  # fmt: skip
        if t429:
            ax.scatter(t429, n429, marker="x", color=color, s=28, linewidths=1.2, zorder=5)
    ax.axhline(
        scenario.refill_per_s,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"sustained rate {scenario.refill_per_s:g}/s",
    )
    if scenario.background_rps:
        ax.axhline(
            scenario.net_refill_per_s,
            color="grey",
            linestyle=":",
            linewidth=1,
            label=f"left for us {scenario.net_refill_per_s:g}/s",
        )
    ax.scatter([], [], marker="x", color="black", label="x = 429s in that second")
    users = rows[0]["users"] if rows else 0
    ax.set_title(f"{scenario.title}: {scenario.describe()}; {users} users")
    ax.set_xlabel("seconds since the contender started")
    ax.set_ylabel("requests per second reaching the tenant")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=-1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
