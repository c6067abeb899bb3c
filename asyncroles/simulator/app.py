"""The aiohttp layer: requests in, ``Reply`` objects out, faults acted out on the wire.

The only simulator module that imports ``aiohttp.web``.  Routing of /api/v2 is
not aiohttp's: the service parses ``request.raw_path`` itself so a ``%2F`` inside
a user id stays part of the id.  Outside /api/v2 (not rate limited, no bearer):
``POST /oauth/token`` (its own limit), ``GET /__exports/<file>`` (the S3 stand-in),
``GET /__sim/stats`` and ``GET /__sim/truth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from asyncroles.simulator import bodies
from asyncroles.simulator.bodies import Reply
from asyncroles.simulator.exports import ExportJob, render_file, select_users
from asyncroles.simulator.service import DOWNLOAD, Service

__all__ = ["make_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _response(reply: Reply) -> web.Response:
    reply.headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, body=reply.body, headers=reply.headers)


def _reset(request: web.Request) -> web.Response:
    """Drop the connection with a TCP RST and no response at all."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: close() sends RST instead of FIN, as a crashed peer does.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp fails to write this to the aborted transport and drops it quietly.
    return web.Response(status=500)


async def _cut_short(request: web.Request, reply: Reply, share: float) -> web.StreamResponse:
    """Announce the whole body in Content-Length, send only ``share`` of it, then close."""
    response = web.StreamResponse(status=reply.status, headers=reply.headers)
    response.content_type = reply.content_type.split(";")[0]
    response.content_length = len(reply.body)
    await response.prepare(request)
    await response.write(reply.body[: int(len(reply.body) * share)])
    if request.transport is not None:
        request.transport.abort()
    return response


def make_app(service: Service) -> web.Application:
    """The simulator's aiohttp application around ``service``."""
    render_lock = asyncio.Lock()

    async def api(request: web.Request) -> web.StreamResponse:
        settings = service.settings
        # Latency is a network round trip: half before the request reaches the
        # bucket, half on the way back.
        latency = service.faults.latency_s(settings)
        if latency:
            await asyncio.sleep(latency / 2)
        body = await request.read() if request.body_exists else b""
        reply, _key, _subject = service.handle_api(
            request.method,
            request.raw_path,
            request.query,
            request.headers.get("Authorization"),
            body,
        )
        if latency:
            await asyncio.sleep(latency / 2)
        if reply.fault is None:
            return _response(reply)
        if reply.fault == "reset":
            return _reset(request)
        if reply.fault == "truncated":
            reply.headers.setdefault("Content-Type", reply.content_type)
            return await _cut_short(request, reply, 0.5)
        # "stall": hold the answer; a client without a read timeout hangs here.
        await asyncio.sleep(settings.stall_s)
        return _response(reply)

    async def token(request: web.Request) -> web.StreamResponse:
        # Auth0 takes the token request as JSON or as a form.
        raw = await request.read()
        form: dict[str, str] | None
        if request.content_type == "application/json":
            try:
                decoded = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                decoded = None
            form = (
                {k: v if isinstance(v, str) else str(v) for k, v in decoded.items()}
                if isinstance(decoded, dict)
                else None
            )
        else:
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return _response(service.handle_token(form))

    async def download(request: web.Request) -> web.StreamResponse:
        now_epoch = service.clock.time()
        job, refusal = service.exports.authorize(
            request.match_info["name"], request.query, now_epoch
        )
        if refusal is not None or job is None:
            reply = refusal or Reply(404, b"")
            service.stats.count(DOWNLOAD, reply.status)
            return _response(reply)
        data = await _file_of(job)
        service.stats.count(DOWNLOAD, 200)
        reply = Reply(200, data, content_type="binary/octet-stream")
        if service.faults.cut_download(service.settings):
            return await _cut_short(request, reply, 0.5)
        return _response(reply)

    async def _file_of(job: ExportJob) -> bytes:
        async with render_lock:
            if job.file is None:
                # Rendering a million users takes seconds: keep the loop serving.
                tenant = service.tenant
                indices = await asyncio.to_thread(select_users, job, tenant)
                job.file = await asyncio.to_thread(render_file, job, tenant, indices)
            return job.file

    async def stats(_request: web.Request) -> web.StreamResponse:
        now = service.clock.monotonic()
        service.sync(now)
        out = service.stats.to_json()
        bucket = service.bucket
        out["bucket"] = {
            "capacity": bucket.capacity,
            "refill_per_s": bucket.refill_per_s,
            "tokens": round(bucket.peek(now), 3),
        }
        return _response(Reply(200, orjson.dumps(out)))

    async def truth(_request: web.Request) -> web.StreamResponse:
        service.sync(service.clock.monotonic())
        return _response(Reply(200, service.truth_json()))

    async def not_found(_request: web.Request) -> web.StreamResponse:
        return _response(Reply(404, bodies.ROUTE_NOT_FOUND))

    app = web.Application()
    # [\s\S]* rather than .*: a decoded id may hold a newline, which "." skips.
    app.router.add_route("*", "/api/v2", api)
    app.router.add_route("*", r"/api/v2/{tail:[\s\S]*}", api)
    app.router.add_post("/oauth/token", token)
    app.router.add_get("/__exports/{name}", download)
    app.router.add_get("/__sim/stats", stats)
    app.router.add_get("/__sim/truth", truth)
    app.router.add_route("*", r"/{tail:[\s\S]*}", not_found)
    return app
