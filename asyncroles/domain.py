"""Where the tenant is: ``AUTH0_DOMAIN`` to a base URL and an API audience. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from asyncroles.errors import UsageError

__all__ = ["Tenant", "parse_domain"]

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


@dataclass(frozen=True, slots=True)
class Tenant:
    base_url: str  # scheme://host[:port], no trailing slash
    audience: str  # the Management API identifier: base_url + "/api/v2/"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_domain(domain: str) -> Tenant:
    """Accept ``tenant.region.auth0.com``, ``host:port`` or an https URL (HTTPS), and
    an ``http://`` URL for loopback hosts only (a local simulator)."""
    raw = (domain or "").strip()
    if not raw:
        raise UsageError(
            "no Auth0 domain given", hint="set AUTH0_DOMAIN or pass --domain tenant.us.auth0.com"
        )
    text = raw if "://" in raw else f"https://{raw}"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
        bad_port = True
    else:
        bad_port = False
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or bad_port:
        raise UsageError(
            f"cannot read the Auth0 domain {raw!r}",
            hint="give the tenant's domain, e.g. tenant.us.auth0.com or a custom domain",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise UsageError(
            f"the Auth0 domain {raw!r} must be a host name only, without a path",
            hint="drop everything after the host, e.g. tenant.us.auth0.com",
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise UsageError(
            f"refusing plain http to {host}: Auth0 tenants are reached over HTTPS only",
            hint="use the domain without http:// (http is accepted for 127.0.0.1/localhost only)",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    base = f"{parts.scheme}://{netloc}"
    return Tenant(base_url=base, audience=f"{base}/api/v2/")
