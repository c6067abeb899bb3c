"""Running a coroutine from the command line, on uvloop when the platform has it.

Only the command line calls this.  The library never installs an event loop or a
policy: code that embeds asyncroles keeps whatever loop it already runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when importable, else on the default loop."""
    try:
        import uvloop
    except ImportError:  # Windows, PyPy: the default loop is fine, just slower
        return asyncio.run(main)
    return uvloop.run(main)
