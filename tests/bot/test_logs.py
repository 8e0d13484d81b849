"""Logs as an operator reads them (bot/logs.py): the text a terminal shows, the JSON a pipeline parses, the
request id and Slack ids on a request's lines, and no secret in either."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import subprocess
import sys
import threading
from datetime import timedelta, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

from bot.cli import main
from bot.config import Settings
from bot.logs import REDACTED, Redactor, configure
from store.models import WorkItem
from tests.support.slack_fake import TEAM_ID, command_body
from tests.support.slack_world import ELI, MODEL

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-4242-4242-unittestbottoken"
SIGNING_SECRET = "unit-test-signing-secret-99"
SECRET_KEY = "unit-test-dashboard-key-" + "s" * 24
LINK_TOKEN = "U0ML0001.1796500000." + "A" * 43


@pytest.fixture
def logs():
    """configure() writing to a buffer; the process's logging is put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()

    def set_up(**settings: object) -> io.StringIO:
        configure(Settings(SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN), SLACK_SIGNING_SECRET=SecretStr(SIGNING_SECRET),
                           FLYWHEEL_SECRET_KEY=SecretStr(SECRET_KEY), **settings), stream=buffer)
        return buffer

    yield set_up
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.contextvars.clear_contextvars()


def _leaky(logger_name: str) -> None:
    """The same leaky line from the standard library and from structlog, with context bound."""
    with structlog.contextvars.bound_contextvars(request_id="req-12345678", model=MODEL):
        logging.getLogger(logger_name).warning("posting with %s and %s to https://fw.example.com/models?t=%s",
                                               BOT_TOKEN, SIGNING_SECRET, LINK_TOKEN)
        structlog.stdlib.get_logger(logger_name).warning("signed", key=SECRET_KEY, other="xapp-1-A0-1-abc",
                                                         url="postgresql+psycopg://flywheel:hunter22@db/flywheel")


def test_json_lines_carry_time_level_logger_event_and_context_for_both_apis_and_no_secret(logs):
    buffer = logs(FLYWHEEL_LOG_FORMAT="json")
    _leaky("flywheel.test")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(line["level"], line["logger"], line["request_id"], line["model"]) for line in lines] == \
        [("warning", "flywheel.test", "req-12345678", MODEL)] * 2
    for line in lines:
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0)
    assert lines[0]["event"] == f"posting with {REDACTED} and {REDACTED} to https://fw.example.com/models?t={REDACTED}"
    assert (lines[1]["event"], lines[1]["key"], lines[1]["other"], lines[1]["url"]) == \
        ("signed", REDACTED, REDACTED, f"postgresql+psycopg://flywheel:{REDACTED}@db/flywheel")


def test_the_default_text_reads_as_before_with_the_context_after_it_and_no_secret(logs):
    buffer = logs()
    _leaky("flywheel.test")
    logging.getLogger("flywheel.test").info("not shown: a terminal gets warnings and worse unless --verbose")
    first, second = buffer.getvalue().splitlines()
    assert first == (f"WARNING flywheel.test: posting with {REDACTED} and {REDACTED} to "
                     f"https://fw.example.com/models?t={REDACTED} [model={MODEL} request_id=req-12345678]")
    assert second.startswith("WARNING flywheel.test: signed [") and "hunter22" not in second \
        and SECRET_KEY not in second and "xapp-" not in second


def test_a_traceback_is_redacted_too(logs):
    buffer = logs(FLYWHEEL_LOG_FORMAT="json")
    try:
        raise RuntimeError(f"Slack refused {BOT_TOKEN}")
    except RuntimeError:
        logging.getLogger("flywheel.test").exception("sending failed")
    line = json.loads(buffer.getvalue())
    assert "RuntimeError: Slack refused [redacted]" in line["exception"] and BOT_TOKEN not in buffer.getvalue()


def test_the_redactor_takes_the_longest_secret_first_and_leaves_ordinary_words():
    redactor = Redactor(["abc", "secret-value", "secret-value-longer"])
    assert redactor.text("secret-value-longer and secret-value, abc") == f"{REDACTED} and {REDACTED}, abc"
    assert redactor.value({"nested": [f"Bearer {BOT_TOKEN}", 3]}) == {"nested": [f"Bearer {REDACTED}", 3]}


def test_a_slack_request_gets_a_request_id_on_its_lines_its_answer_and_the_work_it_queues(logs, world, db):
    buffer = logs(FLYWHEEL_LOG_FORMAT="json")
    body = command_body("/flywheel", f"retrain {MODEL}", user_id=ELI, response_url=world.fake.response_url())
    answer = world.send(body, "application/x-www-form-urlencoded", headers={"X-Request-Id": "incident-4711-a"})
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "incident-4711-a"
    world.ops.join()
    line = next(json.loads(line) for line in buffer.getvalue().splitlines() if '"http request"' in line)
    assert (line["request_id"], line["slack_team"], line["slack_user"], line["path"], line["status"]) == \
        ("incident-4711-a", TEAM_ID, ELI, "/slack/events", 200)
    with db.read() as s:
        assert s.execute(select(WorkItem.request_id)).scalars().all() == ["incident-4711-a"]

    # An id that is not a plain id is not taken (nor logged): the request gets its own.
    forged = world.send(body, "application/x-www-form-urlencoded", headers={"X-Request-Id": 'x" injected=1'})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])


def test_health_probes_get_no_line(logs, world):
    buffer = logs(FLYWHEEL_LOG_FORMAT="json")
    assert world.http.get("/healthz").status_code == 200
    assert world.http.get("/nowhere").status_code == 404
    assert [json.loads(line)["path"] for line in buffer.getvalue().splitlines() if '"flywheel.web"' in line] == \
        ["/nowhere"]


def test_an_unknown_log_format_is_named_with_the_choices(tmp_path):
    result = CliRunner().invoke(main, ["models"], env={"FLYWHEEL_LOG_FORMAT": "xml",
                                                       "FLYWHEEL_DATABASE_URL": f"sqlite:///{tmp_path}/r.db"})
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == \
        "Error: FLYWHEEL_LOG_FORMAT is 'xml': input should be 'text' or 'json'"


# -- Sentry, in processes of their own: the SDK, once initialised, stays so for the process ------------------

SENTRY_PROBE = """
import logging, sys
import sentry_sdk
from bot.logs import configure
configure()
print("active" if sentry_sdk.get_client().is_active() else "inactive")
if len(sys.argv) > 1:
    try:
        raise RuntimeError("Slack refused " + sys.argv[1])
    except RuntimeError:
        logging.getLogger("flywheel.test").exception("posting with %s failed", sys.argv[1])
    sentry_sdk.flush(timeout=10)
"""


def _probe(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", SENTRY_PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[0]


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FLYWHEEL_", "SENTRY_"))}


def test_without_sentry_dsn_nothing_is_initialised():
    pytest.importorskip("sentry_sdk")
    assert _probe(_clean_env()) == "inactive"


def test_an_error_reaches_sentry_without_a_secret():
    pytest.importorskip("sentry_sdk")
    received: list[bytes] = []
    encodings: list[str] = []

    class Sentry(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802: the standard library's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            encoding = self.headers.get("Content-Encoding", "")
            received.append(gzip.decompress(body) if encoding == "gzip" else body)
            encodings.append(encoding)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sentry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**_clean_env(), "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/42",
               "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
        assert _probe(env, f"{BOT_TOKEN} {SIGNING_SECRET}") == "active"
    finally:
        server.shutdown()
        server.server_close()
    assert set(encodings) <= {"", "gzip"}, encodings
    sent = b"\n".join(received).decode("utf-8", "replace")
    assert "Slack refused [redacted] [redacted]" in sent  # the event arrived, its exception redacted
    assert BOT_TOKEN not in sent and SIGNING_SECRET not in sent


def test_each_socket_mode_request_gets_its_own_id_team_and_user_for_its_listener():
    from slack_bolt import App, BoltRequest
    from slack_sdk import WebClient

    from bot.logs import socket_mode_context
    from tests.support.slack_fake import FakeSlack, command_payload

    seen = []
    with FakeSlack() as fake:
        # As bot/app.py builds it: listeners run in the thread that dispatched, after the middleware.
        app = App(client=WebClient(token=fake.token, base_url=fake.api_url), signing_secret="unused",
                  process_before_response=True, request_verification_enabled=False,
                  token_verification_enabled=False)
        app.use(socket_mode_context)

        @app.command("/flywheel")
        def record(ack) -> None:
            seen.append(structlog.contextvars.get_contextvars())
            ack()

        for _ in range(2):
            payload = command_payload("/flywheel", "help", user_id=ELI, response_url=fake.response_url())
            assert app.dispatch(BoltRequest(body=payload, mode="socket_mode")).status == 200
    assert [(s["slack_team"], s["slack_user"]) for s in seen] == [(TEAM_ID, ELI)] * 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", s["request_id"]) for s in seen)
    assert seen[0]["request_id"] != seen[1]["request_id"]
    structlog.contextvars.clear_contextvars()
