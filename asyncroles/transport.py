"""HTTP: the only module that imports aiohttp.

It returns ``(status, headers, body)`` and turns every way a request can fail in
transit into one ``TransportFailure`` with a plain reason.  TLS is always verified:
against the system trust store (OpenSSL's defaults, so ``SSL_CERT_FILE`` works) or a
CA bundle the caller names.  ``HTTPS_PROXY`` / ``NO_PROXY`` are honoured
(``trust_env``), as corporate networks need.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from asyncroles import __version__
from asyncroles.errors import AsyncrolesError, ConnectError

__all__ = ["Reply", "Transport", "TransportFailure"]

Reply = tuple[int, Mapping[str, str], bytes]


class TransportFailure(AsyncrolesError):
    """The request got no complete answer: worth retrying (bounded).

    ``unreachable`` marks failures before any byte was exchanged (DNS, refused
    connection): on first contact they mean a wrong domain, not a passing fault.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    # create_default_context verifies certificates and host names, and loads the
    # system store via OpenSSL's default paths (honouring SSL_CERT_FILE/SSL_CERT_DIR).
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as error:
        raise ConnectError(
            f"cannot load the CA bundle {ca_bundle}: {error}",
            hint="name a PEM file of CA certificates",
        ) from error


class Transport:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 15.0,
        ca_bundle: str | None = None,
        max_connections: int = 256,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._ssl = _ssl_context(ca_bundle) if self.base_url.startswith("https:") else None
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the caller's running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=self._ssl or False, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=True,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=10),
                headers={"User-Agent": f"asyncroles/{__version__}"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        absolute: bool = False,
    ) -> Reply:
        """Send one request; ``path`` is already percent-encoded (sent as is)."""
        url = URL(path if absolute else self.base_url + path, encoded=True)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self._open().request(method, url, headers=headers, json=json) as response:
                body = await response.read()
                return response.status, response.headers, body
        except asyncio.TimeoutError as error:
            raise TransportFailure(f"no answer within {self.timeout_s:g}s") from error
        except aiohttp.ClientConnectorCertificateError as error:
            raise ConnectError(
                f"TLS certificate of {url.host} not trusted: {error.certificate_error}",
                hint="if a proxy inspects TLS, point SSL_CERT_FILE at its CA bundle",
            ) from error
        except aiohttp.ClientConnectorError as error:
            raise TransportFailure(
                f"cannot connect to {url.host}:{url.port}: {error.os_error}", unreachable=True
            ) from error
        except aiohttp.ClientPayloadError as error:
            raise TransportFailure("response body cut short") from error
        except aiohttp.ServerDisconnectedError as error:
            raise TransportFailure("server closed the connection without answering") from error
        except aiohttp.ClientError as error:
            raise TransportFailure(f"connection failed: {type(error).__name__}: {error}") from error
