"""The progress display: pure rendering, and the shell with a fake client."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from asyncroles.client import ClientStats
from asyncroles.pacing import PacerState
from asyncroles.progress import Progress, Snapshot, render_line, render_summary


def snapshot(**changes: object) -> Snapshot:
    values: dict[str, object] = {
        "done": 400,
        "total": 1000,
        "failed": 0,
        "requests": 400,
        "throttled": 2,
        "retries": 3,
        "elapsed_s": 25.0,
        "current_rps": 16.0,
        "ceiling_rps": 16.0,
        "ceiling_learned": True,
        "tokens": 5.4,
        "limit": 50,
        "paused": None,
    }
    values.update(changes)
    return Snapshot(**values)  # type: ignore[arg-type]


def test_the_status_line_says_everything_a_long_run_needs() -> None:
    line = render_line(snapshot())
    assert line == (
        "users 400/1,000 (40%) | 16.0 req/s of 16.0 | tokens 5/50 | 429s 2 | retries 3 | ETA 38s"
    )


def test_the_status_line_says_why_it_is_paused_and_what_is_a_guess() -> None:
    line = render_line(
        snapshot(paused="429: waiting Retry-After 1s", ceiling_learned=False, failed=4)
    )
    assert "of 16.0?" in line
    assert line.endswith("paused: 429: waiting Retry-After 1s")
    assert "failed 4" in line


def test_by_role_counts_planned_requests() -> None:
    line = render_line(snapshot(done=0, requests=60, requests_total=240, current_rps=20.0))
    assert line.startswith("requests 60/~240 (25%)")
    assert "ETA 9s" in line


def test_the_summary_compares_with_the_lower_bound() -> None:
    text = render_summary(
        snapshot(requests=1000, elapsed_s=62.1), ok=990, not_found=8, failed=2, burst=45
    )
    assert "users: 990 ok, 8 not_found, 2 failed" in text
    assert "requests: 1,000 sent, 2 answered 429, 3 retried" in text
    assert "(lower bound 59.7s)" in text


@dataclass
class FakeClient:
    stats: ClientStats = field(default_factory=ClientStats)
    rate_limit: PacerState = field(
        default_factory=lambda: PacerState(50, 5, 7.0, 16.0, True, 3, 0.06, None, None)
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_line_redrawn_and_notes_above_it() -> None:
    terminal = Terminal()
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0])
    progress = Progress(
        FakeClient(),  # type: ignore[arg-type]
        total=10,
        done=lambda: (4, 0),
        stream=terminal,
        clock=lambda: next(clock),
    )
    progress.draw()
    progress.note("strategy per-user")
    progress.draw()
    out = terminal.getvalue()
    assert out.startswith("\rusers 4/10 (40%)")
    assert "\r\x1b[Kasyncroles: strategy per-user\n" in out
    assert "\n" not in out.split("per-user\n", 1)[1]  # the status line stays one line


def test_a_log_gets_plain_lines_and_quiet_gets_nothing() -> None:
    log = io.StringIO()
    progress = Progress(
        FakeClient(),  # type: ignore[arg-type]
        total=10,
        done=lambda: (4, 0),
        stream=log,
    )
    progress.draw()
    assert log.getvalue().startswith("asyncroles: users 4/10 (40%)")
    assert log.getvalue().endswith("\n")
    quiet = io.StringIO()
    Progress(FakeClient(), total=1, done=lambda: (0, 0), stream=quiet, quiet=True).note("x")  # type: ignore[arg-type]
    assert quiet.getvalue() == ""
