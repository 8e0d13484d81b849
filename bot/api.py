"""The trainers' API on the web process: `POST /api/versions` registers a version an external trainer
produced (retrain backends `webhook`, `github_actions`, `airflow`).

    POST /api/versions
    Authorization: Bearer <FLYWHEEL_API_TOKEN>
    {"model": "fraud-detector", "artifact_uri": "file:///srv/models/fraud/v3.joblib", "metrics": {"recall": 0.81},
     "artifact_sha256": "9f2c...", "parameters": {"max_iter": 100}, "train_start": "2026-10-01T00:00:00Z",
     "train_end": "2026-11-20T00:00:00Z", "work_item": 12}

201 with the version on the first call, 200 with the same version when the call is repeated. The
artifact must be a file under FLYWHEEL_ARTIFACTS or the model spec's artifact_roots (422 otherwise); its
SHA-256 is recorded (and must equal artifact_sha256 when sent). The comparison with production is queued
for the worker; this process hashes the artifact but never unpickles or scores anything.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.request_body import BodyRefused, read_body
from bot.services.operations import Operations
from store.clock import to_utc_naive
from store.errors import Conflict, FlywheelError, NotFound

MAX_BODY_BYTES = 1_000_000
MAX_DEPTH = 32  # parameters nest a few levels; deeper is no trainer's
MAX_ID = 2**63 - 1  # the database's biggest integer
Metric = Annotated[float, Field(allow_inf_nan=False)]


def _shape_problem(data: Any) -> str | None:
    """What JSON that parsed still can't be stored as sent: nesting deeper than MAX_DEPTH, or a NUL character
    (PostgreSQL refuses it in text and JSON). Walked without recursion; None when neither."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"it nests deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            if "\x00" in value:
                return "a text holds a NUL character (\\u0000)"
        elif isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


class VersionCallback(BaseModel):
    """What a trainer sends when its run has produced a model."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model: str = Field(min_length=1, max_length=100)
    artifact_uri: str = Field(min_length=1, max_length=1000)
    artifact_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    metrics: dict[str, Metric] = {}
    parameters: dict[str, Any] = {}
    train_start: datetime | None = None
    train_end: datetime | None = None
    work_item: int | None = Field(None, ge=1, le=MAX_ID)

    @field_validator("train_start", "train_end")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            try:
                to_utc_naive(value)
            except OverflowError:  # year 1 or 9999 with an offset: no UTC time exists
                raise ValueError("is out of range once converted to UTC") from None
        return value

    @model_validator(mode="after")
    def _window(self) -> VersionCallback:
        if self.train_start and self.train_end and to_utc_naive(self.train_start) > to_utc_naive(self.train_end):
            raise ValueError("train_start is after train_end")
        return self


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _problems(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()}


def build_api(ops: Operations) -> Starlette:
    settings = ops.settings

    def authorized(request: Request) -> JSONResponse | None:
        token = settings.api_token
        if token is None or not token.get_secret_value():
            return _error(503, "The version API is off: set FLYWHEEL_API_TOKEN on the web process "
                               "(flywheel serve) and give the trainer the same token.")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _error(401, "Missing bearer token: send 'Authorization: Bearer <FLYWHEEL_API_TOKEN>'.")
        if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
            return _error(401, "Wrong API token: it is not this Flywheel's FLYWHEEL_API_TOKEN.")
        return None

    async def post_version(request: Request) -> JSONResponse:
        if refused := authorized(request):
            return refused
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyRefused as refused:
            if refused.status == 413:
                return _error(413, f"The body is over {MAX_BODY_BYTES:,} bytes; send metrics and parameters, "
                                   "not the model itself (artifact_uri says where it is).")
            return _error(refused.status, str(refused))
        try:
            data = json.loads(body)
        except RecursionError:
            return _error(400, "The body is not JSON Flywheel reads: it nests too deep.")
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and a number over Python's 4,300 digits
            return _error(400, f"The body is not JSON ({exc.__class__.__name__}: {str(exc)[:200]}).")
        if (problem := _shape_problem(data)) is not None:
            return _error(422, f"The callback has problems: {problem}.")
        try:
            callback = VersionCallback.model_validate(data)
        except ValidationError as exc:
            fields = _problems(exc)
            return _error(422, f"The callback has problems: {'; '.join(f'{k}: {v}' for k, v in fields.items())}.",
                          fields=fields)
        try:
            registered = await run_in_threadpool(
                ops.retraining.register_trained, model_key=callback.model, artifact_uri=callback.artifact_uri,
                artifact_sha256=callback.artifact_sha256, metrics=callback.metrics, parameters=callback.parameters,
                train_start=to_utc_naive(callback.train_start) if callback.train_start else None,
                train_end=to_utc_naive(callback.train_end) if callback.train_end else None,
                work_item=callback.work_item)
        except NotFound as exc:
            return _error(404, str(exc))
        except Conflict as exc:
            return _error(409, str(exc))
        except FlywheelError as exc:
            return _error(422, str(exc))
        number = registered.number
        return JSONResponse({"model": registered.model_key, "version": number, "label": f"v{number}",
                             "created": registered.created, "work_item": registered.work_item,
                             "evaluation": registered.evaluation,
                             "url": settings.link(f"models/{registered.model_key}/versions/{number}")},
                            status_code=201 if registered.created else 200)

    return Starlette(routes=[Route("/versions", post_version, methods=["POST"])])
