"""The users-export job: create, poll, sign a download link, render the file. Pure.

Follows auth0-api.md "Exporting users": ``POST /api/v2/jobs/users-exports``
answers a ``pending`` job; ``GET /api/v2/jobs/{id}`` moves pending -> processing
-> completed (or failed) over ``export_duration_s`` and, once completed, gives a
``location``: a pre-signed link to a gzip file, valid ``location_ttl_s`` (60 s),
signed afresh on every GET.  The link is served by the simulator under
``/__exports/`` like S3 would: no rate limit, no bearer check, an S3-style XML
403 once expired or when the signature is wrong.

File formats:
- json: NDJSON, one user object a line, keys = ``export_as`` else the field name.
- csv: a header row of ``export_as`` else the field name, then one row per user;
  every string cell is quoted and prefixed with ``'`` (Auth0's CSV-injection
  guard: ``"'auth0|abc"`` means ``auth0|abc``); numbers and booleans are bare;
  a field the user lacks is an empty cell.
With no ``fields`` the job exports ``DEFAULT_FIELDS`` (our choice: Auth0 only
says "a predefined set").
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import orjson

from asyncroles.simulator import bodies
from asyncroles.simulator.bodies import Reply
from asyncroles.simulator.settings import SimulatorSettings
from asyncroles.simulator.tenant import Tenant

__all__ = ["DEFAULT_FIELDS", "ExportJob", "Exports", "render_file"]

DEFAULT_FIELDS: tuple[str, ...] = ("user_id", "email", "name", "created_at")
_CONNECTION_ID = re.compile(r"^con_[A-Za-z0-9]{16}$")
_PENDING_SHARE = 0.2  # the first fifth of the duration is "pending", the rest "processing"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_XML = "application/xml"


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _json_type(value: Any) -> str:
    """The JSON-schema name of a decoded JSON value's type (for validation messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if isinstance(value, float) else "integer"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _payload_error(detail: str, prop: str, doc: str) -> Reply:
    return bodies.bad_request(
        f"Payload validation error: '{detail}' on property {prop} ({doc}).",
        "invalid_body",
    )


@dataclass
class ExportJob:
    id: str
    created_mono: float
    created_at: str
    format: str
    fields: list[dict[str, str]]
    connection_id: str | None
    connection: str | None
    limit: int | None
    file: bytes | None = None  # rendered on first download, then served as is

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "users_export", "status": "pending"}
        if self.connection_id is not None:
            out["connection_id"] = self.connection_id
            out["connection"] = self.connection
        out["format"] = self.format
        if self.limit is not None:
            out["limit"] = self.limit
        out["fields"] = self.fields
        out["created_at"] = self.created_at
        out["id"] = self.id
        return out

    @property
    def file_name(self) -> str:
        return f"{self.id}.{self.format}.gz"


class Exports:
    """Every export job of one simulator, and the key that signs their links."""

    def __init__(self, seed: int, signing_key: bytes) -> None:
        self.jobs: dict[str, ExportJob] = {}
        self._key = signing_key
        self._ids = random.Random(f"asyncroles:{seed}:jobs")

    # --- POST /api/v2/jobs/users-exports -----------------------------------

    def create(self, raw_body: bytes, tenant: Tenant, now_mono: float, now_epoch: float) -> Reply:
        try:
            body = orjson.loads(raw_body or b"{}")
        except orjson.JSONDecodeError:
            return bodies.bad_request("Invalid request payload JSON format", "invalid_body")
        if not isinstance(body, dict):
            return _payload_error(
                f"Expected type object but found type {_json_type(body)}", "body", "body"
            )
        fmt = body.get("format", "csv")
        if fmt not in ("json", "csv"):
            return _payload_error(
                f"No enum match for: {orjson.dumps(fmt).decode()}",
                "format",
                "Format of the file. Must be json or csv.",
            )
        fields_doc = (
            "List of fields to be included in the CSV. Defaults to a predefined set of fields."
        )
        raw_fields = body.get("fields")
        if raw_fields is None:
            fields = [{"name": name} for name in DEFAULT_FIELDS]
        elif not isinstance(raw_fields, list):
            found = _json_type(raw_fields)
            return _payload_error(
                f"Expected type array but found type {found}", "fields", fields_doc
            )
        elif not raw_fields:
            return _payload_error("Array is too short (0), minimum 1", "fields", fields_doc)
        else:
            fields = []
            for item in raw_fields:
                if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                    return _payload_error("Missing required property: name", "fields", fields_doc)
                entry = {"name": item["name"]}
                if isinstance(item.get("export_as"), str):
                    entry["export_as"] = item["export_as"]
                fields.append(entry)
        limit = body.get("limit")
        if limit is not None:
            limit_doc = "Limit the number of records."
            if not isinstance(limit, int) or isinstance(limit, bool):
                found = _json_type(limit)
                return _payload_error(
                    f"Expected type integer but found type {found}", "limit", limit_doc
                )
            if limit < 1:
                return _payload_error(f"Value {limit} is less than minimum 1", "limit", limit_doc)
        connection_id = body.get("connection_id")
        connection = None
        if connection_id is not None:
            if not isinstance(connection_id, str) or not _CONNECTION_ID.match(connection_id):
                return _payload_error(
                    f"String does not match pattern ^con_[A-Za-z0-9]{{16}}$: {connection_id}",
                    "connection_id",
                    "connection_id of the connection from which users will be exported.",
                )
            by_id = {cid: name for name, cid in tenant.connections.items()}
            connection = by_id.get(connection_id)
            if connection is None:
                return bodies.bad_request("The connection does not exist", "inexistent_connection")
        job_id = "job_" + "".join(self._ids.choices(_ALNUM, k=16))
        job = ExportJob(
            job_id, now_mono, _iso(now_epoch), fmt, fields, connection_id, connection, limit
        )
        self.jobs[job_id] = job
        return Reply(200, orjson.dumps(job.to_json()))

    # --- GET /api/v2/jobs/{id} ----------------------------------------------

    def status(
        self,
        job_id: str,
        settings: SimulatorSettings,
        now_mono: float,
        now_epoch: float,
        base_url: str,
    ) -> Reply:
        job = self.jobs.get(job_id)
        if job is None:
            return Reply(404, bodies.JOB_NOT_FOUND)
        out = job.to_json()
        duration = settings.export_duration_s
        elapsed = now_mono - job.created_mono
        if elapsed >= duration:
            if settings.export_fail:
                out["status"] = "failed"
            else:
                out["status"] = "completed"
                out["location"] = self.location(job, now_epoch + settings.location_ttl_s, base_url)
            out["percentage_done"] = 100
            out["time_left_seconds"] = 0
        else:
            pending_for = duration * _PENDING_SHARE
            if elapsed < pending_for:
                out["percentage_done"] = 0
            else:
                out["status"] = "processing"
                share = (elapsed - pending_for) / (duration - pending_for)
                out["percentage_done"] = min(99, int(100 * share))
            out["time_left_seconds"] = math.ceil(duration - elapsed)
        return Reply(200, orjson.dumps(out))

    # --- signed links (S3-like) ---------------------------------------------

    def _signature(self, file_name: str, expires: int) -> str:
        message = f"GET\n/__exports/{file_name}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def location(self, job: ExportJob, expires_epoch: float, base_url: str) -> str:
        expires = math.floor(expires_epoch)
        signature = self._signature(job.file_name, expires)
        return (
            f"{base_url}/__exports/{quote(job.file_name)}"
            f"?AWSAccessKeyId=AKIASIMULATOR&Expires={expires}&Signature={signature}"
        )

    def authorize(
        self, file_name: str, query: Mapping[str, str], now_epoch: float
    ) -> tuple[ExportJob | None, Reply | None]:
        """The job a download link names, or the S3-style refusal to send."""
        expires_text = query.get("Expires", "")
        signature = query.get("Signature", "")
        if not expires_text.isdigit() or not signature:
            return None, _s3_error(
                403,
                "AccessDenied",
                "Query-string authentication requires the Signature, Expires and "
                "AWSAccessKeyId parameters",
            )
        expires = int(expires_text)
        if now_epoch > expires:
            return None, _s3_error(
                403,
                "AccessDenied",
                "Request has expired",
                f"<Expires>{_iso(expires)}</Expires><ServerTime>{_iso(now_epoch)}</ServerTime>",
            )
        if not hmac.compare_digest(signature, self._signature(file_name, expires)):
            return None, _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        job = self.jobs.get(file_name.split(".", 1)[0])
        if job is None or job.file_name != file_name:
            return None, _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return job, None


def _s3_error(status: int, code: str, message: str, extra: str = "") -> Reply:
    request_id = "".join(random.choices("0123456789ABCDEF", k=16))
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
        f"<RequestId>{request_id}</RequestId><HostId>simulator</HostId></Error>"
    )
    return Reply(status, xml.encode(), content_type=_XML)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    # Auth0's CSV-injection guard: quote every string and prefix it with "'".
    return '"' + ("'" + str(value)).replace('"', '""') + '"'


def _csv_header(title: str) -> str:
    if any(c in title for c in ',"\r\n'):
        return '"' + title.replace('"', '""') + '"'
    return title


def render_file(job: ExportJob, tenant: Tenant, indices: Sequence[int]) -> bytes:
    """The gzip file of ``job`` over users ``indices`` (already filtered and limited)."""
    names = [f["name"] for f in job.fields]
    titles = [f.get("export_as") or f["name"] for f in job.fields]
    lines: list[bytes] = []
    if job.format == "csv":
        lines.append((",".join(_csv_header(t) for t in titles) + "\n").encode())
        for i in indices:
            profile = tenant.profile(i)
            row = ",".join(_csv_cell(profile.get(name)) for name in names)
            lines.append((row + "\n").encode())
    else:
        for i in indices:
            profile = tenant.profile(i)
            record = {t: profile[n] for n, t in zip(names, titles, strict=True) if n in profile}
            lines.append(orjson.dumps(record) + b"\n")
    # Level 1: fast; the simulator serves files, it does not archive them.
    return gzip.compress(b"".join(lines), compresslevel=1)


def select_users(job: ExportJob, tenant: Tenant) -> list[int]:
    """The users a job exports: existing ones, of its connection, up to its limit."""
    chosen: list[int] = []
    for i in tenant.alive_indices():
        if job.connection is not None and tenant.connection_of(i) != job.connection:
            continue
        chosen.append(i)
        if job.limit is not None and len(chosen) >= job.limit:
            break
    return chosen
