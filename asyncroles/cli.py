"""The ``asyncroles`` command line: a thin shell over the library.

Each command lives in its own module and contributes ``add_parser(subparsers)``,
which registers the command and sets ``run`` (a function of the parsed arguments
returning an exit code).  Library errors are caught once, here, and printed as a
single plain line; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from asyncroles import errors

__all__ = ["EXIT_AUTH", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1  # some users failed (all written), or a call failed
EXIT_USAGE = 2  # bad usage or input
EXIT_AUTH = 3  # credentials or permissions
EXIT_INTERRUPTED = 130


def exit_code_for(error: errors.AsyncrolesError) -> int:
    if isinstance(error, errors.AuthError):
        return EXIT_AUTH
    if isinstance(error, (errors.UsageError, errors.ConnectError)):
        return EXIT_USAGE
    return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    from asyncroles.simulator import cli as simulate_cli

    parser = argparse.ArgumentParser(
        prog="asyncroles",
        description=(
            "Read the roles of every user of an Auth0 tenant as fast as the tenant's "
            "Management API rate limit allows, without tripping it."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (simulate_cli,):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("asyncroles: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors.AsyncrolesError as error:
        if verbose:
            traceback.print_exc()
        print(f"asyncroles: error: {error}", file=sys.stderr)
        return exit_code_for(error)
