"""The contenders: each a module with ``run(domain, client_id, client_secret, user_ids)``.

``run`` (sync or async) returns every asked user's role ids -- ``None`` for a user
it got no answer for -- either as a plain dict or as a ``ContenderRun`` that also
carries figures of its own (``info``).  ``ROUTE`` names the route its lower bound
is taken from (``per-user``, ``by-role``, or ``best`` of the two), and
``unavailable()`` returns why it cannot run here (then it is skipped), else None.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["CONTENDERS", "load"]

#: name -> module, in the order tables list them.
CONTENDERS: dict[str, str] = {
    "asyncroles-per-user": "contenders.asyncroles_per_user",
    "asyncroles-by-role": "contenders.asyncroles_by_role",
    "asyncroles-auto": "contenders.asyncroles_auto",
    "guide": "contenders.guide",
    "naive-pool": "contenders.naive_pool",
    "sdk": "contenders.sdk",
}


def load(name: str) -> ModuleType:
    if name not in CONTENDERS:
        raise SystemExit(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")
    return importlib.import_module(CONTENDERS[name])
