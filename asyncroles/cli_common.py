"""Options every command that talks to a tenant shares: where it is and who we are.

Credentials follow Auth0's own tools: ``AUTH0_DOMAIN``, ``AUTH0_CLIENT_ID``,
``AUTH0_CLIENT_SECRET`` from the environment, or a ready token in ``AUTH0_TOKEN``.
A secret can also come from a file (``--client-secret-file``, ``--token-file``),
never from the command line, where other users of the machine could read it
(``ps``) and shells keep it in their history.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from asyncroles.client import Client
from asyncroles.errors import UsageError

__all__ = [
    "SECRET_OPTIONS",
    "add_connection_options",
    "add_pacing_options",
    "client_from_args",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "refuse_secrets_in_argv",
]

#: Options people try that would put a secret in argv: refused, never echoed.
SECRET_OPTIONS = ("--client-secret", "--secret", "--token", "--access-token", "--password")

CONNECTION_EPILOG = """\
credentials (as Auth0's own tools name them):
  AUTH0_DOMAIN          the tenant, e.g. tenant.us.auth0.com (or http://127.0.0.1:PORT
                        for a local 'asyncroles simulate')
  AUTH0_CLIENT_ID       a Machine to Machine application of the tenant, authorized for
  AUTH0_CLIENT_SECRET   the Management API with read:users, read:roles, read:role_members
  AUTH0_TOKEN           or a ready Management API access token instead
Secrets are read from the environment or from files, never from the command line."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tenant and credentials")
    group.add_argument(
        "--domain",
        metavar="DOMAIN",
        help="the tenant's domain (default: $AUTH0_DOMAIN); http:// only for 127.0.0.1",
    )
    group.add_argument("--client-id", metavar="ID", help="client id (default: $AUTH0_CLIENT_ID)")
    group.add_argument(
        "--client-secret-file",
        metavar="PATH",
        help="read the client secret from this file (default: $AUTH0_CLIENT_SECRET)",
    )
    group.add_argument(
        "--token-file",
        metavar="PATH",
        help="read a ready access token from this file (default: $AUTH0_TOKEN)",
    )
    group.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help="trust these CA certificates (PEM) instead of the system store",
    )


def add_pacing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pacing (defaults follow the tenant's rate limit)")
    group.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="requests in flight at most (default: sized from the learned rate and latency)",
    )
    group.add_argument(
        "--max-rps",
        type=positive_float,
        metavar="R",
        help="never exceed R requests/s, whatever the tenant allows",
    )
    group.add_argument(
        "--reserve",
        type=non_negative_int,
        metavar="N",
        help="tokens left in the bucket for the tenant's other apps "
        "(default: 10%% of the bucket, at least 5)",
    )


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as error:
        raise UsageError(
            f"cannot read the {what} file {path}: {error.strerror}",
            hint=f"give a readable file holding only the {what}",
        ) from error
    if not value:
        raise UsageError(f"the {what} file {path} is empty", hint=f"put the {what} in it")
    return value


def client_from_args(
    args: argparse.Namespace, env: Mapping[str, str] | None = None, **client_kwargs: Any
) -> Client:
    """A ``Client`` from the connection options, falling back to the environment."""
    env = os.environ if env is None else env
    domain = args.domain or env.get("AUTH0_DOMAIN", "")
    token: str | None = None
    if args.token_file:
        token = _read_secret(args.token_file, "token")
    client_id = args.client_id or env.get("AUTH0_CLIENT_ID") or None
    secret: str | None = None
    if args.client_secret_file:
        secret = _read_secret(args.client_secret_file, "client secret")
    elif client_id:
        secret = env.get("AUTH0_CLIENT_SECRET") or None
    if token is None and not (client_id and secret):
        token = env.get("AUTH0_TOKEN") or None
    if token is None and not (client_id and secret):
        missing = "AUTH0_CLIENT_ID" if not client_id else "AUTH0_CLIENT_SECRET"
        raise UsageError(
            f"no credentials: {missing} is not set",
            hint="export AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (or AUTH0_TOKEN), "
            "or pass --client-id with --client-secret-file",
        )
    if token is not None:
        client_id = secret = None
    for name in ("concurrency", "max_rps", "reserve", "ca_bundle"):
        value = getattr(args, name, None)
        if value is not None:
            client_kwargs.setdefault(name, value)
    return Client(domain, client_id=client_id, client_secret=secret, token=token, **client_kwargs)


def refuse_secrets_in_argv(argv: list[str]) -> None:
    """Stop before argparse echoes a secret back in its 'unrecognized arguments'."""
    for arg in argv:
        option = arg.split("=", 1)[0]
        if option in SECRET_OPTIONS:
            raise UsageError(
                f"there is no {option} option: secrets never go on the command line",
                hint="export AUTH0_CLIENT_SECRET (or AUTH0_TOKEN), or use "
                "--client-secret-file / --token-file",
            )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value
