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
from asyncroles.cli_common import refuse_secrets_in_argv

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
    from asyncroles import demo, export_cli, fetch_cli, plan_cli
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
    for module in (fetch_cli, plan_cli, export_cli, demo, simulate_cli):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in arguments or "--verbose" in arguments
    try:
        refuse_secrets_in_argv(arguments)
        args = build_parser().parse_args(arguments)
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
    except OSError as error:  # the disk is full, the output directory vanished ...
        if verbose:
            traceback.print_exc()
        print(f"asyncroles: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # a bug of ours: still one line, the traceback on demand
        if verbose:
            traceback.print_exc()
        print(
            f"asyncroles: internal error: {type(error).__name__}: {error} "
            "(run with --verbose for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILED
