"""Retrain and deploy backends that call the team's own systems over HTTP.

`signing` is the one place webhooks are signed (and where receivers find `verify_signature`), `http`
sends with retries and safe messages, `trainers` starts training runs, `deployers` switches serving.
"""

from jobs.backends.deployers import DeployRequest, call_deploy_webhook
from jobs.backends.http import BackendError, HttpPolicy
from jobs.backends.signing import verify_signature
from jobs.backends.trainers import Dispatched, TrainingRequest, dispatch

__all__ = ["BackendError", "DeployRequest", "Dispatched", "HttpPolicy", "TrainingRequest", "call_deploy_webhook",
           "dispatch", "verify_signature"]
