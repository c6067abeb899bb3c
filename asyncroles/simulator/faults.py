"""Deterministic misbehaviour: which /api/v2 request faults, and the added latency.

One ``random.Random`` seeded from the tenant seed draws one number per request,
so a run with the same seed and the same request order sees the same faults.
Latency has its own stream: switching latency on does not move the faults.

Faults sit behind the rate limiter (the limiter is in front of the service):
a faulting request has already spent its token and its answer carries the
rate-limit headers, except the 502 a proxy sends and the faults that send no
complete answer at all.
"""

from __future__ import annotations

import random

from asyncroles.simulator.bodies import api_error
from asyncroles.simulator.settings import SimulatorSettings

__all__ = ["BODY_500", "BODY_502", "BODY_503", "FAULTS", "FaultDrawer"]

#: Fault kinds in draw order, each with the setting holding its probability.
FAULTS: tuple[tuple[str, str], ...] = (
    ("500", "p_500"),
    ("503", "p_503"),
    ("502", "p_502"),
    ("reset", "p_reset"),
    ("truncated", "p_truncated"),
    ("stall", "p_stall"),
)

# Auth0's API answers errors through hapi/Boom, whose default 500 message is this.
BODY_500 = api_error(500, "Internal Server Error", "An internal server error occurred")
BODY_503 = api_error(503, "Service Unavailable", "Service Unavailable")
# What a proxy in front of the API sends: HTML, no rate-limit headers.
BODY_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class FaultDrawer:
    """Draws a fault (or None) and a latency per /api/v2 request."""

    def __init__(self, seed: int) -> None:
        self._faults = random.Random(f"asyncroles:{seed}:faults")
        self._latency = random.Random(f"asyncroles:{seed}:latency")
        self._downloads = random.Random(f"asyncroles:{seed}:downloads")

    def draw(self, settings: SimulatorSettings) -> str | None:
        """The fault for the next request; one draw per request, always."""
        x = self._faults.random()
        edge = 0.0
        for kind, name in FAULTS:
            edge += float(getattr(settings, name))
            if x < edge:
                return kind
        return None

    def latency_s(self, settings: SimulatorSettings) -> float:
        """Total added round trip in seconds: mean +/- uniform jitter, never negative."""
        if settings.latency_ms <= 0 and settings.jitter_ms <= 0:
            return 0.0
        jitter = self._latency.uniform(-settings.jitter_ms, settings.jitter_ms)
        return max(0.0, settings.latency_ms + jitter) / 1000.0

    def cut_download(self, settings: SimulatorSettings) -> bool:
        return settings.download_cut > 0 and self._downloads.random() < settings.download_cut
