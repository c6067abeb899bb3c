"""TLS is verified, a named CA bundle or SSL_CERT_FILE is trusted, proxies from the
environment are used and NO_PROXY bypasses them."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from asyncroles.errors import ConnectError
from asyncroles.transport import Transport, TransportFailure
from tests.conftest import StartSimulator


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def https_server(certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "tls"})

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}"
    await runner.cleanup()


async def test_an_untrusted_certificate_is_refused(https_server: str) -> None:
    transport = Transport(https_server)
    with pytest.raises(ConnectError) as caught:
        await transport.request("GET", "/hello")
    await transport.close()
    assert "not trusted" in str(caught.value)


async def test_a_named_ca_bundle_is_trusted(
    https_server: str, certificate: tuple[Path, Path]
) -> None:
    transport = Transport(https_server, ca_bundle=str(certificate[0]))
    status, _, body = await transport.request("GET", "/hello")
    await transport.close()
    assert (status, body) == (200, b'{"hello": "tls"}')


async def test_ssl_cert_file_is_honoured(
    https_server: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    transport = Transport(https_server)
    status, _, _ = await transport.request("GET", "/hello")
    await transport.close()
    assert status == 200


async def test_a_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it(
    start_simulator: StartSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await start_simulator(users=5, roles=2)
    # Port 9 on loopback: nothing listens, so going through the proxy fails loudly.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = Transport(sim.domain)
    with pytest.raises(TransportFailure) as caught:
        await proxied.request("GET", "/api/v2/roles")
    await proxied.close()
    assert "proxy http://127.0.0.1:9" in str(caught.value)
    assert sim.stats.api_requests == 0

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = Transport(sim.domain)
    status, _, _ = await direct.request("GET", "/api/v2/roles")
    await direct.close()
    assert status == 401  # reached the tenant itself (no token given)
