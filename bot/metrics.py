"""Prometheus metrics: Slack's side (Web API calls, rate-limit waits, how fast requests are acknowledged), the
figures read from the database at scrape time, and their exposition on `GET /metrics` and on the worker's
`--metrics-port`. The jobs layer's own metrics (checks, alerts, work, leadership) are in
jobs/metrics_registry.py; both live in prometheus_client's default registry.

Under `flywheel serve --processes N` each process writes its values to files in PROMETHEUS_MULTIPROC_DIR
(set by serve before the processes start) and whichever process answers a scrape adds them all up
(prometheus_client's MultiProcessCollector). The database's figures are read once per scrape, by the
process answering it."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from store import heartbeat, vitals
from store.clock import utcnow
from store.db import Database

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

SLACK_CALLS = Counter("flywheel_slack_api_calls", "Slack Web API calls, by method and outcome (ok, error: Slack "
                      "answered ok=false, rate_limited, unreachable).", ["method", "outcome"])
RATE_LIMIT_WAITS = Counter("flywheel_slack_rate_limit_waits", "Waits Slack asked for with HTTP 429: slept inside a "
                           "call (client) or a queued message put off (outbox).", ["where"])
RATE_LIMIT_WAIT_SECONDS = Counter("flywheel_slack_rate_limit_wait_seconds", "Seconds of those waits.", ["where"])
# Slack gives an app 3 seconds to acknowledge; the buckets are fine below that and coarse above it.
ACK_SECONDS = Histogram("flywheel_slack_ack_seconds", "Time from a signed request's arrival on /slack/events to "
                        "its acknowledgement, by kind of request.", ["request"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5))
REQUEST_KINDS = {"block_actions": "action", "interactive_message": "action", "view_submission": "view",
                 "view_closed": "view", "event_callback": "event", "block_suggestion": "options",
                 "shortcut": "shortcut", "message_action": "shortcut", "url_verification": "event"}


def request_kind(body: dict) -> str:
    """A bounded label for a Slack request: command, action, view, event, options, shortcut or other."""
    return "command" if "command" in body else REQUEST_KINDS.get(str(body.get("type")), "other")


def acknowledged(body: dict, seconds: float) -> None:
    ACK_SECONDS.labels(request=request_kind(body)).observe(seconds)


def rate_limited(where: str, seconds: float) -> None:
    RATE_LIMIT_WAITS.labels(where=where).inc()
    RATE_LIMIT_WAIT_SECONDS.labels(where=where).inc(seconds)


class CountingWebClient(WebClient):
    """slack_sdk's WebClient, counting each call by method and outcome. A call the SDK retried (after a 429
    or a 5xx) counts once, with its final outcome."""

    def api_call(self, api_method: str, *args, **kwargs):
        outcome = "unreachable"
        try:
            response = super().api_call(api_method, *args, **kwargs)
            outcome = "ok"
            return response
        except SlackApiError as exc:
            outcome = "rate_limited" if exc.response.status_code == 429 else "error"
            raise
        finally:
            SLACK_CALLS.labels(method=api_method, outcome=outcome).inc()


def count_listener_calls(app) -> None:
    """Bolt gives each request its own plain WebClient (`context.client`, what listeners call). A global
    middleware makes it a CountingWebClient: the class adds no state, so the instance is changed in place
    rather than a second client built on every request Slack waits for."""

    def counting(context, next) -> None:  # noqa: A002 - Bolt passes it by this name
        client = context.get("client")
        if type(client) is WebClient:
            client.__class__ = CountingWebClient
        next()

    app.middleware(counting)


class CountingRateLimitHandler(RateLimitErrorRetryHandler):
    """slack_sdk's handler that sleeps for Slack's Retry-After, counting each wait."""

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None) -> None:
        if response is None:
            raise error  # as the SDK's own does
        retry_after = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        try:
            seconds = int(retry_after[0] if isinstance(retry_after, list) else retry_after) + random.random()
        except (TypeError, ValueError):
            seconds = 1 + random.random()
        rate_limited("client", seconds)
        state.next_attempt_requested = True
        time.sleep(seconds)
        state.increment_current_attempt()


class DatabaseCollector:
    """Gauges read from the database at scrape time: the outbox's depth and oldest pending message, work items
    by kind and state, the audit chain's length and the worker heartbeat's age. Four indexed aggregate
    queries; a database that does not answer shows as flywheel_database_up 0 and no other figure."""

    def __init__(self, db: Database, clock=utcnow):
        self.db, self.clock = db, clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("flywheel_database_up", "1 when the database answered this scrape's queries.")
        try:
            with self.db.read() as s:
                backlog = vitals.outbox_backlog(session=s)
                work = vitals.work_counts(session=s)
                chain = vitals.audit_length(session=s)
                beat = heartbeat.latest(session=s)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; the database being away is the figure
            log.warning("metrics: the database did not answer: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = self.clock()
        yield GaugeMetricFamily("flywheel_outbox_pending", "Slack messages queued and not yet sent.",
                                value=backlog.pending)
        yield GaugeMetricFamily("flywheel_outbox_oldest_pending_age_seconds",
                                "Age of the oldest message still waiting to go to Slack (0 when none waits).",
                                value=_age(now, backlog.oldest_created_at))
        items = GaugeMetricFamily("flywheel_work_items", "Work items (retrain, evaluate, deploy, rollback) by kind "
                                  "and state.", labels=["kind", "state"])
        for (kind, state), count in sorted(work.items()):
            items.add_metric([kind, state], count)
        yield items
        yield GaugeMetricFamily("flywheel_audit_chain_length", "Events in the audit log's hash chain.", value=chain)
        if beat is not None:
            yield GaugeMetricFamily("flywheel_worker_heartbeat_age_seconds",
                                    "Age of the newest worker heartbeat in the database.", value=_age(now, beat))


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class _Process:
    """This process's metrics, or with several processes everything they wrote to PROMETHEUS_MULTIPROC_DIR."""

    def collect(self) -> Iterator[Metric]:
        if multiprocess():
            from prometheus_client import multiprocess as mp

            yield from mp.MultiProcessCollector(CollectorRegistry()).collect()
        else:
            yield from REGISTRY.collect()


def registry_for(db: Database | None) -> CollectorRegistry:
    """What one scrape shows: the process's (or processes') metrics, and the database's when given."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Process())
    if db is not None:
        registry.register(DatabaseCollector(db))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve_worker_metrics(port: int, host: str, db: Database):
    """The worker's metrics on http://host:port/metrics, from a daemon thread; returns the server."""
    from prometheus_client import start_http_server

    server, _ = start_http_server(port, addr=host, registry=registry_for(db))
    return server
