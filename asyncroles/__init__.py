"""asyncroles: every Auth0 user's roles at the Management API's rate-limit ceiling.

The public API: ``Client`` (an async context manager for code that already runs an
event loop), the records it returns (``UserRoles``, ``Role``), what it learned of the
tenant's rate limit (``PacerState``), its retry bounds (``RetryPolicy``), the route
planner's verdict (``Plan``, ``Strategy``, ``Pace``), and one
small hierarchy of errors rooted at ``AsyncrolesError``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from asyncroles.client import Client, ClientStats
from asyncroles.errors import (
    ApiError,
    AsyncrolesError,
    AuthError,
    ConnectError,
    CredentialsError,
    ExportError,
    InputError,
    NotFoundError,
    RetryError,
    ScopeError,
    UsageError,
)
from asyncroles.export import (
    ExportField,
    ExportPolicy,
    ExportProgress,
    ExportResult,
    export_user_ids,
    export_users,
)
from asyncroles.models import Role, Status, UserRoles
from asyncroles.pacing import PacerState
from asyncroles.planner import Pace, Plan, Strategy
from asyncroles.retry import RetryEvent, RetryPolicy

__all__ = [
    "ApiError",
    "AsyncrolesError",
    "AuthError",
    "Client",
    "ClientStats",
    "ConnectError",
    "CredentialsError",
    "ExportError",
    "ExportField",
    "ExportPolicy",
    "ExportProgress",
    "ExportResult",
    "InputError",
    "NotFoundError",
    "Pace",
    "PacerState",
    "Plan",
    "RetryError",
    "RetryEvent",
    "RetryPolicy",
    "Role",
    "ScopeError",
    "Status",
    "Strategy",
    "UsageError",
    "UserRoles",
    "__version__",
    "export_user_ids",
    "export_users",
]
