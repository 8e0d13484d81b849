"""Retrain and deploy backends against a local HTTP receiver: what the team's system receives, how it
checks the signature, and what the ML engineer reads when it fails."""

import base64
import hashlib
import hmac
import time
from datetime import datetime

import pytest
from pydantic import SecretStr

from bot.config import Settings
from jobs.backends import BackendError, DeployRequest, HttpPolicy, TrainingRequest, call_deploy_webhook, dispatch
from jobs.backends.signing import verify_signature
from jobs.spec import RetrainSpec
from tests.support.receiver import Answer, Receiver, closed_port_url

SECRET = "whsec-test-0123456789abcdef"
GITHUB_TOKEN = "ghp_testtoken0123456789"
AIRFLOW_PASSWORD = "airflow-pass-42"
QUICK = HttpPolicy(timeout=5, attempts=3, backoff=0)
REQUEST = TrainingRequest(model_key="fraud-detector", number=3, work_item=17, train_start=datetime(2026, 10, 5),
                          train_end=datetime(2026, 11, 2), reason="retrained automatically after input drift on "
                          "card_age_days", requested_by="flywheel", callback_url="https://fw.example.com/api/versions")


def settings(**extra) -> Settings:
    return Settings(FLYWHEEL_WEBHOOK_SECRET=SecretStr(SECRET), FLYWHEEL_GITHUB_TOKEN=SecretStr(GITHUB_TOKEN),
                    FLYWHEEL_AIRFLOW_PASSWORD=SecretStr(AIRFLOW_PASSWORD), **extra)


def webhook(url: str) -> RetrainSpec:
    return RetrainSpec(backend="webhook", url=url)


# --- signing -----------------------------------------------------------------------------------

def test_the_receiver_verifies_the_webhook_signature_and_refuses_tampering_and_replays():
    with Receiver() as receiver:
        dispatch(webhook(f"{receiver.url}/train"), REQUEST, settings(), policy=QUICK)
    got = receiver.requests[0]
    stamp, signed = got.header("X-Flywheel-Timestamp"), got.header("X-Flywheel-Signature")
    assert signed.startswith("v1=")
    assert verify_signature(SECRET, stamp, got.body, signed)
    # What the receiver would compute by hand from the documented scheme.
    expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert signed == f"v1={expected}"
    assert not verify_signature(SECRET, stamp, got.body.replace(b'"version":3', b'"version":4'), signed)
    assert not verify_signature("another-secret", stamp, got.body, signed)
    assert not verify_signature(SECRET, str(int(stamp) + 1), got.body, signed)
    assert not verify_signature(SECRET, stamp, got.body, signed, now=int(stamp) + 301)  # a replay, 5 minutes on
    assert verify_signature(SECRET, stamp, got.body, signed, now=int(stamp) + 299)
    assert not verify_signature(SECRET, None, got.body, signed)
    assert not verify_signature(SECRET, "yesterday", got.body, signed)
    assert not verify_signature(SECRET, stamp, got.body, "")


def test_a_signature_header_with_an_old_and_a_new_secret_passes_with_either():
    body, stamp = b'{"a":1}', int(time.time())
    from jobs.backends.signing import signature

    header = f"{signature('old-secret', stamp, body)}, {signature('new-secret', stamp, body)}"
    assert verify_signature("new-secret", stamp, body, header)
    assert verify_signature("old-secret", stamp, body, header)
    assert not verify_signature("third", stamp, body, header)


# --- webhook retrain ---------------------------------------------------------------------------

def test_the_retrain_webhook_carries_the_run_and_an_idempotency_key():
    with Receiver() as receiver:
        receiver.answer(202)
        sent = dispatch(webhook(f"{receiver.url}/hooks/train?team=fraud"), REQUEST, settings(), policy=QUICK)
    got = receiver.requests[0]
    assert (got.method, got.path) == ("POST", "/hooks/train?team=fraud")
    assert got.json() == {"model": "fraud-detector", "version": 3, "work_item": 17,
                          "train_start": "2026-10-05T00:00:00", "train_end": "2026-11-02T00:00:00",
                          "reason": REQUEST.reason, "requested_by": "flywheel",
                          "callback_url": "https://fw.example.com/api/versions"}
    assert got.header("Content-Type") == "application/json"
    assert got.header("Idempotency-Key") == "flywheel-work-17"
    assert got.header("X-Flywheel-Event") == "retrain"
    assert sent.backend == "webhook" and sent.reference == "flywheel-work-17"
    assert "team=fraud" not in sent.description  # query strings may hold credentials


def test_transient_failures_are_retried_with_the_same_idempotency_key_and_a_fresh_signature():
    slept = []
    policy = HttpPolicy(timeout=5, attempts=3, backoff=0.5, sleep=slept.append)
    with Receiver() as receiver:
        receiver.answer(503, Answer(429, headers={"Retry-After": "2"}), 202)
        dispatch(webhook(f"{receiver.url}/train"), REQUEST, settings(), policy=policy)
    assert len(receiver.requests) == 3
    assert {r.header("Idempotency-Key") for r in receiver.requests} == {"flywheel-work-17"}
    assert all(verify_signature(SECRET, r.header("X-Flywheel-Timestamp"), r.body, r.header("X-Flywheel-Signature"))
               for r in receiver.requests)
    assert slept == [0.5, 2.0]  # exponential backoff, then the Retry-After the receiver asked for


def test_a_server_error_that_persists_fails_after_the_last_attempt_saying_what_the_receiver_answered():
    with Receiver() as receiver:
        receiver.default = Answer(500, {"error": "trainer queue is full"})
        with pytest.raises(BackendError) as failure:
            dispatch(webhook(f"{receiver.url}/train?token=abc123"), REQUEST, settings(), policy=QUICK)
    assert len(receiver.requests) == 3
    message = str(failure.value)
    assert message == (f"The retrain webhook at {receiver.url}/train answered 500 Internal Server Error: "
                       "trainer queue is full (3 attempts)")
    assert "abc123" not in message


def test_a_refusal_is_not_retried_and_secrets_echoed_back_never_reach_the_message():
    def echo(received):
        return Answer(400, {"message": f"bad request; you sent {received.header('X-Flywheel-Signature')} "
                                       f"and the secret {SECRET}"})

    with Receiver() as receiver:
        receiver.answer(echo)
        with pytest.raises(BackendError) as failure:
            dispatch(webhook(f"{receiver.url}/train"), REQUEST, settings(), policy=QUICK)
    assert len(receiver.requests) == 1
    assert "answered 400 Bad Request" in str(failure.value)
    assert SECRET not in str(failure.value) and "[secret]" in str(failure.value)


def test_an_unreachable_or_silent_trainer_fails_with_a_clear_message():
    with pytest.raises(BackendError, match=r"could not be reached \(ConnectError.*\(3 attempts\)"):
        dispatch(webhook(f"{closed_port_url()}/train"), REQUEST, settings(), policy=QUICK)
    with Receiver() as receiver:
        receiver.default = Answer(202, delay=1.0)
        with pytest.raises(BackendError, match=r"did not answer within 0.2 seconds \(2 attempts\)"):
            dispatch(webhook(f"{receiver.url}/train"), REQUEST, settings(),
                     policy=HttpPolicy(timeout=0.2, attempts=2, backoff=0))


def test_without_a_webhook_secret_nothing_is_sent_unsigned():
    with Receiver() as receiver:
        with pytest.raises(BackendError, match="FLYWHEEL_WEBHOOK_SECRET is not set on the worker"):
            dispatch(webhook(f"{receiver.url}/train"), REQUEST, Settings(), policy=QUICK)
    assert receiver.requests == []


# --- GitHub Actions ----------------------------------------------------------------------------

def github(ref: str | None = None) -> RetrainSpec:
    return RetrainSpec(backend="github_actions", repo="acme/fraud-training", workflow="retrain.yml",
                       **({"ref": ref} if ref else {}))


def test_github_actions_gets_a_workflow_dispatch_with_the_run_as_string_inputs():
    with Receiver() as receiver:
        receiver.answer(204)
        sent = dispatch(github("release"), REQUEST, settings(FLYWHEEL_GITHUB_API_URL=receiver.url), policy=QUICK)
    got = receiver.requests[0]
    assert (got.method, got.path) == ("POST", "/repos/acme/fraud-training/actions/workflows/retrain.yml/dispatches")
    assert got.header("Authorization") == f"Bearer {GITHUB_TOKEN}"
    assert got.header("Accept") == "application/vnd.github+json"
    assert got.header("X-GitHub-Api-Version") == "2022-11-28"
    assert got.json() == {"ref": "release", "return_run_details": True, "inputs": {
        "model": "fraud-detector", "version": "3", "work_item": "17", "train_start": "2026-10-05T00:00:00",
        "train_end": "2026-11-02T00:00:00", "reason": REQUEST.reason,
        "callback_url": "https://fw.example.com/api/versions"}}
    assert len(got.json()["inputs"]) <= 10  # GitHub's limit
    # A GitHub without run details (204, empty) still dispatches; there is just no run to link.
    assert sent.description == "the retrain.yml workflow of acme/fraud-training on release"
    assert sent.reference == "acme/fraud-training:retrain.yml@release"
    assert got.header("X-Flywheel-Signature") is None  # GitHub authenticates us by the token


def test_the_run_github_started_is_linked_for_the_ml_engineer():
    run_page = "https://github.com/acme/fraud-training/actions/runs/987654321"
    with Receiver() as receiver:
        receiver.answer(Answer(200, {"workflow_run_id": 987654321, "html_url": run_page, "run_url":
                                     "https://api.github.com/repos/acme/fraud-training/actions/runs/987654321"}),
                        Answer(200, {"workflow_run_id": 55, "html_url": "https://evil.example.com/x|click me>"}),
                        Answer(200, {"workflow_run_id": "55"}))
        to_github = settings(FLYWHEEL_GITHUB_API_URL=receiver.url)
        linked, unlinkable, malformed = (dispatch(github(), REQUEST, to_github, policy=QUICK) for _ in range(3))
    assert linked.description == \
        f"the retrain.yml workflow of acme/fraud-training on main (<{run_page}|run 987654321>)"
    assert linked.reference == "acme/fraud-training:retrain.yml@main#987654321"
    # A page that would break out of Slack's <url|text> link is not shown; an id that is no number is ignored.
    assert unlinkable.description == "the retrain.yml workflow of acme/fraud-training on main (run 55)"
    assert malformed.description == "the retrain.yml workflow of acme/fraud-training on main"


def test_github_refusals_name_the_fix_and_never_the_token():
    with Receiver() as receiver:
        receiver.answer(lambda r: Answer(422, {"message": f"Unexpected inputs provided: [\"work_item\"] "
                                                          f"(auth {r.header('Authorization')})"}))
        with pytest.raises(BackendError) as failure:
            dispatch(github(), REQUEST, settings(FLYWHEEL_GITHUB_API_URL=receiver.url), policy=QUICK)
    message = str(failure.value)
    assert message.startswith("GitHub (acme/fraud-training, workflow retrain.yml) answered 422 Unprocessable")
    assert "Unexpected inputs provided" in message and "workflow_dispatch trigger" in message
    assert GITHUB_TOKEN not in message
    assert receiver.requests[0].json()["ref"] == "main"  # the spec's default ref


def test_github_without_a_token_is_refused_before_any_request():
    with Receiver() as receiver:
        with pytest.raises(BackendError, match="FLYWHEEL_GITHUB_TOKEN is not set"):
            dispatch(github(), REQUEST, Settings(FLYWHEEL_GITHUB_API_URL=receiver.url), policy=QUICK)
    assert receiver.requests == []


# --- Airflow -----------------------------------------------------------------------------------

def airflow(url: str) -> RetrainSpec:
    return RetrainSpec(backend="airflow", url=url, dag_id="train_fraud")


def test_airflow_gets_a_dag_run_named_after_the_work_item_with_basic_auth():
    with Receiver() as receiver:
        receiver.answer(Answer(200, {"dag_run_id": "flywheel-fraud-detector-work-17", "state": "queued"}))
        sent = dispatch(airflow(f"{receiver.url}/airflow/"), REQUEST,
                        settings(FLYWHEEL_AIRFLOW_USERNAME="flywheel"), policy=QUICK)
    got = receiver.requests[0]
    assert (got.method, got.path) == ("POST", "/airflow/api/v1/dags/train_fraud/dagRuns")
    assert got.header("Authorization") == "Basic " + base64.b64encode(f"flywheel:{AIRFLOW_PASSWORD}".encode()).decode()
    assert got.json() == {"dag_run_id": "flywheel-fraud-detector-work-17", "conf": REQUEST.payload()}
    assert sent.reference == "flywheel-fraud-detector-work-17"


def test_a_repeated_airflow_trigger_is_taken_as_done_and_a_token_is_sent_as_bearer():
    with Receiver() as receiver:
        receiver.answer(Answer(409, {"title": "Conflict", "detail": "DAGRun already exists"}))
        dispatch(airflow(receiver.url), REQUEST, settings(FLYWHEEL_AIRFLOW_TOKEN=SecretStr("af-token")),
                 policy=QUICK)
    assert len(receiver.requests) == 1
    assert receiver.requests[0].header("Authorization") == "Bearer af-token"


def test_airflow_refusing_the_credentials_says_which_settings_to_set():
    with Receiver() as receiver:
        receiver.answer(Answer(401, {"title": "Unauthorized", "detail": "None"}))
        with pytest.raises(BackendError) as failure:
            dispatch(airflow(receiver.url), REQUEST, settings(FLYWHEEL_AIRFLOW_USERNAME="flywheel"), policy=QUICK)
    assert "answered 401 Unauthorized" in str(failure.value)
    assert "FLYWHEEL_AIRFLOW_USERNAME" in str(failure.value) and AIRFLOW_PASSWORD not in str(failure.value)


def airflow3(url: str) -> RetrainSpec:
    return RetrainSpec(backend="airflow", url=url, dag_id="train_fraud", api="v2")


def test_airflow_3_gets_a_dag_run_through_api_v2_with_a_jwt_for_the_user():
    """Airflow 3 takes no basic auth: the user and password buy a JWT at /auth/token first."""
    with Receiver() as receiver:
        receiver.answer(Answer(201, {"access_token": "jwt-from-airflow"}),
                        Answer(200, {"dag_run_id": "flywheel-fraud-detector-work-17", "state": "queued"}))
        sent = dispatch(airflow3(f"{receiver.url}/airflow/"), REQUEST,
                        settings(FLYWHEEL_AIRFLOW_USERNAME="flywheel"), policy=QUICK)
    login, trigger = receiver.requests
    assert (login.method, login.path) == ("POST", "/airflow/auth/token")
    assert login.json() == {"username": "flywheel", "password": AIRFLOW_PASSWORD}
    assert (trigger.method, trigger.path) == ("POST", "/airflow/api/v2/dags/train_fraud/dagRuns")
    assert trigger.header("Authorization") == "Bearer jwt-from-airflow"
    # Airflow 3's body model forbids unknown keys and requires logical_date (null for a manual run).
    assert trigger.json() == {"dag_run_id": "flywheel-fraud-detector-work-17", "logical_date": None,
                              "conf": REQUEST.payload()}
    assert sent.reference == "flywheel-fraud-detector-work-17"


def test_airflow_3_with_a_token_setting_skips_the_login_and_takes_a_repeat_as_done():
    with Receiver() as receiver:
        receiver.answer(Answer(409, {"detail": "Unique constraint violation"}))
        dispatch(airflow3(receiver.url), REQUEST, settings(FLYWHEEL_AIRFLOW_TOKEN=SecretStr("af-jwt")), policy=QUICK)
    assert [r.path for r in receiver.requests] == ["/api/v2/dags/train_fraud/dagRuns"]
    assert receiver.requests[0].header("Authorization") == "Bearer af-jwt"


def test_airflow_3_refusing_the_login_names_the_settings_and_triggers_nothing():
    with Receiver() as receiver:
        receiver.answer(Answer(401, {"detail": "Invalid credentials"}))
        with pytest.raises(BackendError) as failure:
            dispatch(airflow3(receiver.url), REQUEST, settings(FLYWHEEL_AIRFLOW_USERNAME="flywheel"), policy=QUICK)
    said = str(failure.value)
    assert said.startswith(f"Airflow's token endpoint at {receiver.url}/auth/token answered 401 Unauthorized")
    assert "FLYWHEEL_AIRFLOW_USERNAME and FLYWHEEL_AIRFLOW_PASSWORD" in said and AIRFLOW_PASSWORD not in said
    assert [r.path for r in receiver.requests] == ["/auth/token"]


def test_a_login_answer_without_a_token_is_an_error_not_an_unauthenticated_trigger():
    with Receiver() as receiver:
        receiver.answer(Answer(201, {"token_type": "bearer"}))
        with pytest.raises(BackendError, match="answered 201 without an access_token"):
            dispatch(airflow3(receiver.url), REQUEST, settings(FLYWHEEL_AIRFLOW_USERNAME="flywheel"), policy=QUICK)
    assert len(receiver.requests) == 1


def test_the_wrong_airflow_api_says_which_one_to_set():
    with Receiver() as receiver:
        receiver.answer(Answer(404, {"detail": "Not Found"}), Answer(404, {"detail": "Not Found"}))
        with pytest.raises(BackendError) as on_v1:
            dispatch(airflow(receiver.url), REQUEST, settings(FLYWHEEL_AIRFLOW_TOKEN=SecretStr("af-jwt-token")),
                     policy=QUICK)
        with pytest.raises(BackendError) as on_v2:
            dispatch(airflow3(receiver.url), REQUEST, settings(FLYWHEEL_AIRFLOW_TOKEN=SecretStr("af-jwt-token")),
                     policy=QUICK)
    assert "Airflow 3 serves /api/v2: set `api: v2` in the spec's retrain section" in str(on_v1.value)
    assert "Airflow 2 serves /api/v1: set `api: v1` in the spec's retrain section" in str(on_v2.value)


def test_the_airflow_api_is_checked_in_the_spec():
    assert RetrainSpec(backend="airflow", url="https://af.example.com", dag_id="d").api == "v1"  # Airflow 2's
    with pytest.raises(ValueError, match="'v1' or 'v2'"):
        RetrainSpec(backend="airflow", url="https://af.example.com", dag_id="d", api="v3")
    with pytest.raises(ValueError, match="'api' does not apply to backend 'webhook'"):
        RetrainSpec(backend="webhook", url="https://hooks.example.com", api="v2")


# --- deploy webhook ----------------------------------------------------------------------------

def test_the_deploy_webhook_is_signed_the_same_way():
    request = DeployRequest("rollback", "fraud-detector", 1, "file:///models/v1.joblib", "v2", "U0OPS001", 9)
    with Receiver() as receiver:
        call_deploy_webhook(f"{receiver.url}/deploy", request, settings(), policy=QUICK)
    got = receiver.requests[0]
    assert verify_signature(SECRET, got.header("X-Flywheel-Timestamp"), got.body, got.header("X-Flywheel-Signature"))
    assert got.header("X-Flywheel-Event") == "rollback" and got.header("Idempotency-Key") == "flywheel-work-9"
    assert got.json() == {"event": "rollback", "model": "fraud-detector", "version": 1,
                          "artifact_uri": "file:///models/v1.joblib", "previous_version": "v2",
                          "requested_by": "U0OPS001", "work_item": 9}
