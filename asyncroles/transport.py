"""HTTP: the only module that imports aiohttp.

It returns ``(status, headers, body)`` and turns every way a request can fail in
transit into one ``TransportFailure`` with a plain reason.  TLS is always verified:
against the system trust store (OpenSSL's defaults, so ``SSL_CERT_FILE`` works) or a
CA bundle the caller names.  ``HTTPS_PROXY`` / ``NO_PROXY`` are honoured, as
corporate networks need: looked up once per host rather than by aiohttp's
``trust_env``, which asks the environment and ``~/.netrc`` in a thread on every
request (two thread hops per call, a third of the client's CPU).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from typing import IO, Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from asyncroles import __version__
from asyncroles.errors import AsyncrolesError, ConnectError

__all__ = ["Reply", "Transport", "TransportFailure"]

Reply = tuple[int, Mapping[str, str], bytes]
_Proxy = tuple[URL | None, aiohttp.BasicAuth | None]


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


def _untrusted(url: URL, error: aiohttp.ClientConnectorCertificateError) -> ConnectError:
    return ConnectError(
        f"TLS certificate of {url.host} not trusted: {error.certificate_error}",
        hint="if a proxy inspects TLS, point SSL_CERT_FILE at its CA bundle",
    )


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
        self._ca_bundle = ca_bundle
        self._storage_ssl: ssl.SSLContext | None = None
        self._ssl = _ssl_context(ca_bundle) if self.base_url.startswith("https:") else None
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str | None, int | None], _Proxy] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the caller's running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=self._ssl or False, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=10),
                headers={"User-Agent": f"asyncroles/{__version__}"},
            )
        return self._session

    def _proxy_for(self, url: URL) -> _Proxy:
        key = (url.scheme, url.host, url.port)
        if key not in self._proxies:
            try:  # aiohttp's own reading of HTTP(S)_PROXY, NO_PROXY and proxy credentials
                self._proxies[key] = get_env_proxy_for_url(url)
            except LookupError:
                self._proxies[key] = (None, None)
        return self._proxies[key]

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
        proxy, proxy_auth = self._proxy_for(url)
        try:
            async with self._open().request(
                method, url, headers=headers, json=json, proxy=proxy, proxy_auth=proxy_auth
            ) as response:
                body = await response.read()
                return response.status, response.headers, body
        except asyncio.TimeoutError as error:
            raise TransportFailure(f"no answer within {self.timeout_s:g}s") from error
        except aiohttp.ClientConnectorCertificateError as error:
            raise _untrusted(url, error) from error
        except aiohttp.ClientProxyConnectionError as error:
            raise TransportFailure(
                f"cannot connect to the proxy {proxy} (from the environment, e.g. "
                f"HTTPS_PROXY): {error.os_error}",
                unreachable=True,
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

    async def download(
        self,
        url: str,
        sink: IO[bytes],
        *,
        on_bytes: Callable[[int], None] | None = None,
        chunk_bytes: int = 256 * 1024,
    ) -> Reply:
        """GET an absolute URL with no credentials, streaming a 200 body into ``sink``.

        For pre-signed storage links (the users-export file, auth0-api.md "Exporting
        users"): no Authorization header, sent exactly as given (the signature covers
        the query), verified TLS even when the tenant itself is a loopback http
        simulator, and no total time limit -- a large export takes minutes -- only
        ``timeout_s`` of silence.  Returns ``(status, headers, body)`` where ``body``
        is the (small) error body of a non-200 and empty for a 200; ``on_bytes`` gets
        the running count of bytes written.
        """
        target = URL(url, encoded=True)
        tls: ssl.SSLContext | bool = True
        if target.scheme == "https":
            # The session's connector skips TLS settings for an http (simulator)
            # tenant, so a storage link on https gets a verifying context of its own.
            if self._storage_ssl is None:
                self._storage_ssl = self._ssl or _ssl_context(self._ca_bundle)
            tls = self._storage_ssl
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.timeout_s)
        proxy, proxy_auth = self._proxy_for(target)  # storage sits behind the same proxy
        try:
            async with self._open().get(
                target, ssl=tls, timeout=timeout, proxy=proxy, proxy_auth=proxy_auth
            ) as response:
                if response.status != 200:
                    return response.status, response.headers, await response.read()
                written = 0
                async for chunk in response.content.iter_chunked(chunk_bytes):
                    sink.write(chunk)
                    written += len(chunk)
                    if on_bytes is not None:
                        on_bytes(written)
                return response.status, response.headers, b""
        except asyncio.TimeoutError as error:
            raise TransportFailure(f"download stalled for {self.timeout_s:g}s") from error
        except aiohttp.ClientConnectorCertificateError as error:
            raise _untrusted(target, error) from error
        except aiohttp.ClientPayloadError as error:
            raise TransportFailure("download cut short") from error
        except aiohttp.ClientError as error:
            raise TransportFailure(f"download failed: {type(error).__name__}: {error}") from error
