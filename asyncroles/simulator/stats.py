"""What the simulated tenant saw: counts by endpoint and status, 429s, peaks, a log.

Tests and benchmarks read these to check a client from the server's side: did it
stay under the limit, how many 429s did it cause, which users did it ask for.
Served as JSON at ``GET /__sim/stats`` (outside /api/v2, never rate limited).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogRecord", "Stats"]

#: One /api/v2 request: (monotonic time it reached the bucket, endpoint key,
#: status, the user or role id it named or None).  Status 0 = no HTTP answer
#: (a connection reset).
LogRecord = tuple[float, str, int, "str | None"]


@dataclass
class Stats:
    """Counters a running simulator keeps; ``started_at`` is on the monotonic clock."""

    started_at: float
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    api_requests: int = 0
    count_429: int = 0
    peak_1s: int = 0
    background_spent: int = 0
    tokens_issued: int = 0
    #: ``per_second[s] == [api requests, 429s]`` during whole second ``s`` since start.
    per_second: list[list[int]] = field(default_factory=list)
    log: list[LogRecord] = field(default_factory=list)
    _window: deque[float] = field(default_factory=deque, repr=False)

    def count(self, endpoint_key: str, status: int) -> None:
        """Count a request outside /api/v2 (token endpoint, export downloads)."""
        self.requests[(endpoint_key, status)] += 1

    def api_request(
        self, now: float, endpoint_key: str, status: int, subject: str | None, record: bool
    ) -> None:
        """Count one /api/v2 request that reached the bucket at ``now``."""
        self.requests[(endpoint_key, status)] += 1
        self.api_requests += 1
        is_429 = status == 429
        if is_429:
            self.count_429 += 1
        # Sliding 1 s window: keep the arrivals of the last second, the peak is
        # the most ever held at once.
        window = self._window
        window.append(now)
        while now - window[0] >= 1.0:
            window.popleft()
        if len(window) > self.peak_1s:
            self.peak_1s = len(window)
        second = int(now - self.started_at) if now > self.started_at else 0
        per_second = self.per_second
        while len(per_second) <= second:
            per_second.append([0, 0])
        per_second[second][0] += 1
        if is_429:
            per_second[second][1] += 1
        if record:
            self.log.append((now, endpoint_key, status, subject))

    def count_for(self, endpoint_key: str, status: int | None = None) -> int:
        """Requests to ``endpoint_key`` (with ``status`` when given)."""
        return sum(
            n
            for (key, code), n in self.requests.items()
            if key == endpoint_key and (status is None or code == status)
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (the log is left out: it can be huge)."""
        return {
            "requests": [
                {"endpoint": key, "status": status, "count": n}
                for (key, status), n in sorted(self.requests.items())
            ],
            "api_requests": self.api_requests,
            "count_429": self.count_429,
            "peak_1s": self.peak_1s,
            "background_spent": self.background_spent,
            "tokens_issued": self.tokens_issued,
            "per_second": self.per_second,
            "logged": len(self.log),
        }
