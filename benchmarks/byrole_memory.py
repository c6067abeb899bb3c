"""Memory of by-role's user -> roles map (``asyncroles.byrole.RoleMap``), measured.

Builds the map a by-role run builds for a tenant of ``--users`` users and
``--roles`` roles, fed role by role in pages of 100 as the API would feed it, and
reports what tracemalloc counts (every object the map holds: id strings, the dict,
the masks) and the process's peak RSS.  Three shapes:

* ``typical``: the simulator's skew (35 % of users in no role, most in 1-3);
* ``all``: every user holds every role (20 roles each: the brief's worst case);
* ``random``: every user holds a random half of the roles (many distinct masks).

    python benchmarks/byrole_memory.py [--users 1000000] [--roles 20] [--shape typical]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc

from asyncroles.byrole import RoleMap
from asyncroles.models import Role

PAGE = 100


def user_id(i: int) -> str:
    # Real ids look like this (auth0| + 24 hex digits); a fresh string per member,
    # as parsing each page's JSON makes one.
    return f"auth0|{i:024x}"


def memberships(users: int, roles: int, shape: str, seed: int) -> list[list[int]]:
    """Member indices of each role."""
    rnd = random.Random(seed)
    members: list[list[int]] = [[] for _ in range(roles)]
    for i in range(users):
        if shape == "all":
            held: list[int] = list(range(roles))
        elif shape == "random":
            held = rnd.sample(range(roles), roles // 2)
        else:
            r = rnd.random()
            k = 0 if r < 0.35 else 1 if r < 0.6 else 2 if r < 0.75 else 3 if r < 0.85 else 6
            weights = [1 / (j + 1) ** 1.1 for j in range(roles)]
            held = list(set(rnd.choices(range(roles), weights, k=k)))
        for r_index in held:
            members[r_index].append(i)
    return members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--roles", type=int, default=20)
    parser.add_argument("--shape", choices=("typical", "all", "random"), default="typical")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    members = memberships(args.users, args.roles, args.shape, args.seed)
    roles = [Role(f"rol_{k:016d}", f"Role {k}", None) for k in range(args.roles)]
    assignments = sum(len(m) for m in members)
    tracemalloc.start()
    started = time.perf_counter()
    role_map = RoleMap(roles)
    for index, holders in enumerate(members):
        for start in range(0, len(holders), PAGE):
            role_map.add(index, [user_id(i) for i in holders[start : start + PAGE]])
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    users = len(role_map)
    print(
        f"{args.shape}: {users:,} users holding {assignments:,} role assignments over "
        f"{args.roles} roles; map {current / 2**20:,.0f} MiB "
        f"({current / max(1, users):,.0f} B a user), peak {peak / 2**20:,.0f} MiB; "
        f"built in {seconds:.1f} s; process peak RSS {rss_mb:,.0f} MiB "
        "(includes this script's own membership lists)",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
