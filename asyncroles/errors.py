"""One small hierarchy of errors users can catch.

``AsyncrolesError`` is the base.  Per-user outcomes (``not_found``, ``failed``) are
never exceptions: they are results.  An exception means the whole run cannot go on
(bad input, bad credentials, a missing scope) or a single library call failed.

Every error carries a ``hint``: one sentence that tells the user how to fix it.  The
command line prints ``str(error)`` (message plus hint) as its single line.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ApiError",
    "AsyncrolesError",
    "AuthError",
    "ConnectError",
    "CredentialsError",
    "ExportError",
    "InputError",
    "NotFoundError",
    "RetryError",
    "ScopeError",
    "UsageError",
]


class AsyncrolesError(Exception):
    """Base of every error asyncroles raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AsyncrolesError):
    """A bad option or setting: a domain we refuse, conflicting options."""


class InputError(UsageError):
    """A bad input file: names the file and, where it can, the line."""

    def __init__(
        self, message: str, *, path: str, line: int | None = None, hint: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}", hint=hint)


class ConnectError(AsyncrolesError):
    """The tenant could not be reached at all (DNS, refused connection, TLS)."""


class ApiError(AsyncrolesError):
    """An HTTP answer from Auth0 that ends a call: status, headers and Auth0's message."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        path: str,
        headers: Mapping[str, str] | None = None,
        error_code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.path = path
        self.headers: Mapping[str, str] = dict(headers or {})
        self.error_code = error_code


class NotFoundError(ApiError):
    """A single-call lookup of something Auth0 says does not exist (a user, a role, a job)."""


class AuthError(ApiError):
    """Credentials or permissions: the run cannot go on until the user fixes them."""


class CredentialsError(AuthError):
    """Bad client id/secret, a client without a grant for the API, or a bad token."""


class ScopeError(AuthError):
    """The token lacks a scope the call needs; ``scope`` names it when Auth0 says."""

    def __init__(
        self,
        message: str,
        *,
        scope: str | None = None,
        status: int = 403,
        path: str,
        headers: Mapping[str, str] | None = None,
        error_code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            message, status=status, path=path, headers=headers, error_code=error_code, hint=hint
        )
        self.scope = scope


class RetryError(AsyncrolesError):
    """A single call still failed after its bounded retries; ``reason`` is the last cause."""

    def __init__(self, message: str, *, reason: str, attempts: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.attempts = attempts


class ExportError(AsyncrolesError):
    """A users-export job failed, or its file could not be downloaded whole."""
