"""Run one contender in this (fresh) process and write what it did as JSON.

    AUTH0_DOMAIN=... AUTH0_CLIENT_ID=... AUTH0_CLIENT_SECRET=... \\
        python benchmarks/contend.py guide --ids ids.json --out result.json

The harness starts this once per contender and scenario, so the CPU time and the
peak resident memory measured here are the contender's alone.  Wall and CPU time
cover ``run()`` only (not the interpreter's start nor the imports); peak memory is
the whole process's high-water mark (``VmHWM``), imports included -- what a user's process
would show.  Credentials come from the environment, never the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import contenders
from contenders.base import ContenderRun


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    On Linux from ``VmHWM`` (the high-water mark of this program's own memory):
    ``ru_maxrss`` survives ``exec`` and so reports the parent's size when the
    parent is bigger (``subprocess`` starts children with vfork).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def call(run: Any, args: tuple[Any, ...], kwargs: dict[str, Any], loop: str) -> Any:
    if not inspect.iscoroutinefunction(run):
        return run(*args, **kwargs)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(run(*args, **kwargs))
    return asyncio.run(run(*args, **kwargs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("contender", choices=list(contenders.CONTENDERS))
    parser.add_argument("--ids", type=Path, required=True, help="JSON array of user ids")
    parser.add_argument("--out", type=Path, required=True, help="where to write the result")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--options", default="{}", help="JSON keyword arguments for run()")
    args = parser.parse_args()

    module = contenders.load(args.contender)
    out: dict[str, Any] = {"contender": args.contender, "error": None, "skipped": None}
    reason = module.unavailable()
    if reason is not None:
        out["skipped"] = reason
        args.out.write_text(json.dumps(out))
        return 0
    user_ids: list[str] = json.loads(args.ids.read_text())
    domain = os.environ["AUTH0_DOMAIN"]
    client_id = os.environ["AUTH0_CLIENT_ID"]
    client_secret = os.environ["AUTH0_CLIENT_SECRET"]
    kwargs: dict[str, Any] = json.loads(args.options)

    gc.collect()
    t0_monotonic = time.monotonic()
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        result = call(module.run, (domain, client_id, client_secret, user_ids), kwargs, args.loop)
    except Exception as error:
        result = ContenderRun({})
        out["error"] = f"{type(error).__name__}: {error}"
        out["traceback"] = traceback.format_exc()
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    if not isinstance(result, ContenderRun):
        result = ContenderRun(result)
    out.update(
        wall_s=wall_s,
        cpu_s=cpu_s,
        peak_rss_mb=peak_rss_mb(),
        t0_monotonic=t0_monotonic,
        loop=args.loop,
        roles=result.roles,
        info=result.info,
    )
    args.out.write_text(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
