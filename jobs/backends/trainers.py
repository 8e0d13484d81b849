"""Starting a training run on the team's own system: a signed webhook, a GitHub Actions workflow or an
Airflow DAG run (Airflow 2's REST API /api/v1, or Airflow 3's /api/v2). Each run carries the callback
URL; the trainer registers the version it produced by calling POST /api/versions (bot/api.py) with the
work item id, which finishes the retrain.

A worker resumed after a crash may start the same request again. The webhook repeats its idempotency
key, Airflow refuses a second run with the same dag_run_id (409, taken as done), and GitHub can't
deduplicate, but a second callback for the same work item returns the version of the first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import httpx

from jobs.backends.http import BackendError, HttpPolicy, send, shown_url
from jobs.backends.signing import EVENT_HEADER, IDEMPOTENCY_HEADER, signed_headers
from jobs.spec import RetrainSpec

GITHUB_API_VERSION = "2022-11-28"
_LINKABLE = re.compile(r"https://[^\s<>|]+")  # a URL that can sit inside Slack's <url|text> unescaped


@dataclass(frozen=True)
class TrainingRequest:
    model_key: str
    number: int  # the version number it should get (the next free one when it was asked for)
    work_item: int
    train_start: datetime
    train_end: datetime
    reason: str
    requested_by: str
    callback_url: str

    @property
    def idempotency_key(self) -> str:
        return f"flywheel-work-{self.work_item}"

    def payload(self) -> dict[str, object]:
        return {"model": self.model_key, "version": self.number, "work_item": self.work_item,
                "train_start": self.train_start.isoformat(), "train_end": self.train_end.isoformat(),
                "reason": self.reason, "requested_by": self.requested_by, "callback_url": self.callback_url}


@dataclass(frozen=True)
class Dispatched:
    backend: str
    reference: str  # what the team's system knows the run by
    description: str  # for people: where the run went


def secrets_of(settings) -> list[str]:
    """Every secret setting's value, so error messages can be scrubbed of them."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            values.append(value.get_secret_value())
    return [v for v in values if v]


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def dispatch(spec: RetrainSpec, request: TrainingRequest, settings, *, policy: HttpPolicy | None = None
             ) -> Dispatched:
    """Start the run through the spec's backend; raise BackendError with a message for the ML engineer."""
    policy = policy or HttpPolicy.from_settings(settings)
    if spec.backend == "webhook":
        return _webhook(spec, request, settings, policy)
    if spec.backend == "github_actions":
        return _github_actions(spec, request, settings, policy)
    if spec.backend == "airflow":
        return _airflow(spec, request, settings, policy)
    raise BackendError(f"the {spec.backend} retrain backend runs inside Flywheel, not through a dispatch")


def _webhook(spec: RetrainSpec, request: TrainingRequest, settings, policy: HttpPolicy) -> Dispatched:
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise BackendError("FLYWHEEL_WEBHOOK_SECRET is not set on the worker, so Flywheel can't sign the "
                           f"retrain webhook to {shown_url(spec.url)}.")
    secret = settings.webhook_secret
    send(f"The retrain webhook at {shown_url(spec.url)}", spec.url, content=_json(request.payload()),
         headers={"Content-Type": "application/json", IDEMPOTENCY_HEADER: request.idempotency_key,
                  EVENT_HEADER: "retrain"},
         sign=lambda body: signed_headers(secret, body), policy=policy, secrets=secrets_of(settings))
    return Dispatched("webhook", request.idempotency_key, f"the retrain webhook at {shown_url(spec.url)}")


def _github_actions(spec: RetrainSpec, request: TrainingRequest, settings, policy: HttpPolicy) -> Dispatched:
    if settings.github_token is None or not settings.github_token.get_secret_value():
        raise BackendError(f"FLYWHEEL_GITHUB_TOKEN is not set on the worker, so Flywheel can't start the "
                           f"{spec.workflow} workflow of {spec.repo}.")
    owner, _, repo = spec.repo.partition("/")
    url = (f"{settings.github_api_url.rstrip('/')}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"
           f"/actions/workflows/{quote(spec.workflow, safe='')}/dispatches")
    # workflow_dispatch inputs are strings, at most 10, and each must be declared by the workflow.
    inputs = {k: str(v) for k, v in request.payload().items() if k != "requested_by"}
    # return_run_details: GitHub answers 200 with the new run's id and page instead of an empty 204.
    answer = send(
        f"GitHub ({spec.repo}, workflow {spec.workflow})", url,
        content=_json({"ref": spec.ref, "inputs": inputs, "return_run_details": True}),
        headers={"Accept": "application/vnd.github+json", "Content-Type": "application/json",
                 "Authorization": f"Bearer {settings.github_token.get_secret_value()}",
                 "X-GitHub-Api-Version": GITHUB_API_VERSION, "User-Agent": "flywheel"},
        policy=policy, secrets=secrets_of(settings),
        hints={401: "Check FLYWHEEL_GITHUB_TOKEN: GitHub did not accept it.",
               403: "The token needs the actions:write permission on the repository.",
               404: "Check the repository and workflow file names, and that the token can see the repository.",
               422: f"The workflow must have a workflow_dispatch trigger declaring the inputs "
                    f"{', '.join(inputs)}."})
    where = f"the {spec.workflow} workflow of {spec.repo} on {spec.ref}"
    run_id, page = _github_run(answer)
    if run_id is None:  # a GitHub that predates run details (an older Enterprise Server): 204, nothing to link
        return Dispatched("github_actions", f"{spec.repo}:{spec.workflow}@{spec.ref}", where)
    return Dispatched("github_actions", f"{spec.repo}:{spec.workflow}@{spec.ref}#{run_id}",
                      f"{where} (<{page}|run {run_id}>)" if page else f"{where} (run {run_id})")


def _github_run(answer: httpx.Response) -> tuple[int | None, str | None]:
    """The run GitHub started, and its page when it is a plain https link that Slack can show."""
    try:
        details = answer.json() if answer.status_code == 200 else {}
    except ValueError:
        details = {}
    run_id = details.get("workflow_run_id") if isinstance(details, dict) else None
    if not isinstance(run_id, int) or isinstance(run_id, bool):
        return None, None
    page = details.get("html_url")
    if not isinstance(page, str) or not _LINKABLE.fullmatch(page):
        page = None
    return run_id, page


def _airflow(spec: RetrainSpec, request: TrainingRequest, settings, policy: HttpPolicy) -> Dispatched:
    base = spec.url.rstrip("/")
    url = f"{base}/api/{spec.api}/dags/{quote(spec.dag_id, safe='')}/dagRuns"
    run_id = f"flywheel-{request.model_key}-work-{request.work_item}"
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    body: dict[str, object] = {"dag_run_id": run_id, "conf": request.payload()}
    auth = None
    if spec.api == "v2":
        body["logical_date"] = None  # required by Airflow 3 (null: a manual run not tied to a schedule)
    if settings.airflow_token is not None and settings.airflow_token.get_secret_value():
        headers["Authorization"] = f"Bearer {settings.airflow_token.get_secret_value()}"
    elif settings.airflow_username and settings.airflow_password is not None:
        if spec.api == "v2":  # Airflow 3 takes no basic auth: trade the user's password for a JWT
            headers["Authorization"] = f"Bearer {_airflow_jwt(base, settings, policy)}"
        else:
            auth = httpx.BasicAuth(settings.airflow_username, settings.airflow_password.get_secret_value())
    other = "v2" if spec.api == "v1" else "v1"
    send(f"Airflow at {shown_url(spec.url)} (DAG {spec.dag_id})", url, content=_json(body), headers=headers,
         auth=auth, policy=policy, secrets=secrets_of(settings), also_fine={409},
         hints={401: "Set FLYWHEEL_AIRFLOW_USERNAME and FLYWHEEL_AIRFLOW_PASSWORD, or FLYWHEEL_AIRFLOW_TOKEN, "
                     "to an Airflow user allowed to trigger the DAG.",
                403: "The Airflow user may not trigger this DAG.",
                404: f"Airflow has no DAG {spec.dag_id}, or its REST API is not at /api/{spec.api} (Airflow "
                     f"{'3' if other == 'v2' else '2'} serves /api/{other}: set `api: {other}` in the spec's "
                     "retrain section)."})
    return Dispatched("airflow", run_id, f"Airflow DAG {spec.dag_id} (run {run_id})")


def _airflow_jwt(base: str, settings, policy: HttpPolicy) -> str:
    """An access token from Airflow 3's auth manager for FLYWHEEL_AIRFLOW_USERNAME and _PASSWORD."""
    what = f"Airflow's token endpoint at {shown_url(base)}/auth/token"
    answer = send(what, f"{base}/auth/token", policy=policy, secrets=secrets_of(settings),
                  content=_json({"username": settings.airflow_username,
                                 "password": settings.airflow_password.get_secret_value()}),
                  headers={"Accept": "application/json", "Content-Type": "application/json"},
                  hints={401: "Airflow did not accept FLYWHEEL_AIRFLOW_USERNAME and FLYWHEEL_AIRFLOW_PASSWORD.",
                         404: "Airflow 2 has no /auth/token: set `api: v1` in the spec's retrain section."})
    try:
        token = answer.json()["access_token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise BackendError(f"{what} answered {answer.status_code} without an access_token.")
    return token
