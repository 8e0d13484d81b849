"""The `webhook` deploy backend: a signed POST telling the team's serving system to switch versions.

Its 2xx answer is the signal that the switch happened; only then does Flywheel move production in the
registry. Rollbacks use the same URL with event `rollback`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from jobs.backends.http import BackendError, HttpPolicy, send, shown_url
from jobs.backends.signing import EVENT_HEADER, IDEMPOTENCY_HEADER, signed_headers
from jobs.backends.trainers import secrets_of


@dataclass(frozen=True)
class DeployRequest:
    event: str  # deploy | rollback
    model_key: str
    number: int  # the version that should serve
    artifact_uri: str
    previous: str | None  # the label of the version serving now
    requested_by: str
    work_item: int

    def payload(self) -> dict[str, object]:
        return {"event": self.event, "model": self.model_key, "version": self.number,
                "artifact_uri": self.artifact_uri, "previous_version": self.previous,
                "requested_by": self.requested_by, "work_item": self.work_item}


def call_deploy_webhook(url: str, request: DeployRequest, settings, *, policy: HttpPolicy | None = None) -> None:
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise BackendError(f"FLYWHEEL_WEBHOOK_SECRET is not set on the worker, so Flywheel can't sign the "
                           f"deploy webhook to {shown_url(url)}.")
    secret = settings.webhook_secret
    send(f"The deploy webhook at {shown_url(url)}", url,
         content=json.dumps(request.payload(), separators=(",", ":"), sort_keys=True).encode(),
         headers={"Content-Type": "application/json", IDEMPOTENCY_HEADER: f"flywheel-work-{request.work_item}",
                  EVENT_HEADER: request.event},
         sign=lambda body: signed_headers(secret, body), policy=policy or HttpPolicy.from_settings(settings),
         secrets=secrets_of(settings))
