"""The `flywheel` command as a user runs it: real files, a real SQLite registry."""

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from bot.cli import main
from store.db import Database
from store.models import AuditEvent
from tests.support.projects import (
    append_weeks,
    week,
    week_end,
    write_project,
    write_project_with_production,
)


def _invoker(tmp_path, database_url):
    env = {"FLYWHEEL_DATABASE_URL": database_url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
           "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), "SLACK_BOT_TOKEN": None, "SLACK_SIGNING_SECRET": None,
           "SLACK_APP_TOKEN": None}

    def invoke(*args):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return invoke


@pytest.fixture
def run(tmp_path, database_url):
    return _invoker(tmp_path, database_url)


@pytest.mark.parametrize("command", [[], ["demo"], ["apply"], ["check"], ["models"], ["db"], ["db", "upgrade"],
                                     ["audit"], ["audit", "verify"], ["audit", "export"], ["artifacts"], ["artifacts", "pin"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output


def test_apply_then_check_then_list(run, tmp_path):
    spec = write_project(tmp_path)
    append_weeks(tmp_path, [week(w) for w in range(4)])
    applied = run("apply", str(spec))
    assert applied.exit_code == 0 and "loans: 15 change(s)" in applied.output and "granted Eli the ml_engineer role on loans" in applied.output
    assert "loans: no change" in run("apply", str(spec)).output
    checked = run("check", "default-risk", "--as-of", week_end(3).isoformat())
    assert checked.exit_code == 0
    assert "default-risk  -        drift         ok" in checked.output
    listed = run("models")
    assert "default-risk  loans    -           -               drift ok" in listed.output


def test_a_bad_spec_is_refused_with_file_line_and_a_one_line_reason(run, tmp_path):
    spec = write_project_with_production(tmp_path)
    spec.write_text(spec.read_text().replace("risk_tier: medium", "risk_tier: hihg"))
    result = run("apply", str(spec))
    assert result.exit_code == 2
    assert "loans.yml:6 project.risk_tier" in result.output
    assert result.output.strip().splitlines()[-1] == "Error: 1 problem(s) found; nothing was applied"
    assert "no models registered" in run("models").output.lower()


def test_unknown_model_and_bad_time_fail_with_a_reason(run, tmp_path):
    run("apply", str(write_project_with_production(tmp_path)))
    unknown = run("check", "default-rsk")
    assert unknown.exit_code == 2 and "No model called default-rsk. Did you mean default-risk?" in unknown.output
    bad_time = run("check", "--as-of", "last tuesday")
    assert bad_time.exit_code == 2 and "--as-of 'last tuesday' is not a time" in bad_time.output


def test_check_exits_non_zero_when_a_check_errors(run, tmp_path):
    run("apply", str(write_project_with_production(tmp_path)))
    (tmp_path / "data" / "production.db").unlink()  # the production data went away after apply
    result = run("check", "--as-of", week_end(0).isoformat())
    assert result.exit_code == 1 and "error" in result.output and "cannot read production data" in result.output


def test_audit_verify_names_a_tampered_event(run, tmp_path, database_url):
    run("apply", str(write_project_with_production(tmp_path)))
    assert run("audit", "verify").output.startswith("the audit chain is whole: 1 events")
    database = Database(database_url)
    with database.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(actor="U0EVIL01"))
    result = run("audit", "verify")
    assert result.exit_code == 2 and "audit event #1" in result.output and "contents were changed" in result.output


def test_db_upgrade_reports_the_revision(tmp_path, empty_database_url):
    result = _invoker(tmp_path, empty_database_url)("db", "upgrade")
    database = Database(empty_database_url)
    assert result.exit_code == 0 and f"is at revision {database.head_revision()}" in result.output
    assert database.current_revision() == database.head_revision()
    database.dispose()


def test_check_sends_new_alerts_to_the_outbox_and_threads_repeats(run, tmp_path):
    spec = write_project(tmp_path)
    append_weeks(tmp_path, [week(w) for w in range(4)] + [week(4, shift=1.0, miss=0.6), week(5, shift=1.0, miss=0.6)])
    run("apply", str(spec))
    first = run("check", "default-risk", "--as-of", week_end(4).isoformat())
    assert first.exit_code == 0 and f"new alert(s) sent to {tmp_path / 'outbox' / 'index.html'}" in first.output
    folders = sorted(p.name for p in (tmp_path / "outbox" / "messages").iterdir())
    assert any(name.endswith("ml_engineer-drift_alert") for name in folders)
    again = run("check", "default-risk", "--as-of", week_end(5).isoformat())  # a new process, the same incident
    assert "new alert(s)" not in again.output
    assert sorted(p.name for p in (tmp_path / "outbox" / "messages").iterdir()) == folders
    drift = next(p for p in (tmp_path / "outbox" / "messages").iterdir() if p.name.endswith("drift_alert"))
    assert "Still drifting" in (drift / "message.json").read_text()


def test_serve_refuses_to_start_without_its_secrets_and_names_them(run):
    result = run("serve")
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: can't start the Slack app: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
                                     "are not set")
    socket = CliRunner().invoke(main, ["serve", "--socket"], env={"SLACK_BOT_TOKEN": "xoxb-secret-value",
                                                                  "SLACK_SIGNING_SECRET": "s3cret",
                                                                  "SLACK_APP_TOKEN": None})
    assert socket.exit_code == 2 and "SLACK_APP_TOKEN is not set" in socket.output
    assert "xoxb-secret-value" not in socket.output and "s3cret" not in socket.output


def test_worker_refuses_a_niceness_outside_unix_range_and_names_the_setting(run, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_WORKER_NICE", "20")
    result = run("worker")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: bad setting: FLYWHEEL_WORKER_NICE: Input should be less than or equal to 19"


def test_artifacts_pin_records_the_digest_of_a_version_from_before_digests_once(run, tmp_path, database_url):
    import hashlib

    from store import registry
    from tests.support.factories import fraud_project

    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "v1.joblib").write_bytes(b"the model serving since before the upgrade")
    (tmp_path / "v2.joblib").write_bytes(b"a model outside the roots")
    db = Database(database_url)
    with db.session() as s:
        fraud_project(s)
        for uri in ((tmp_path / "artifacts" / "v1.joblib").as_uri(), (tmp_path / "v2.joblib").as_uri()):
            registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001", artifact_uri=uri)
    digest = hashlib.sha256(b"the model serving since before the upgrade").hexdigest()

    pinned = run("artifacts", "pin", "fraud-detector", "v1", "--actor", "U0OPS001")
    assert pinned.exit_code == 0 and pinned.output == f"Recorded SHA-256 {digest} for fraud-detector v1\n"
    again = run("artifacts", "pin", "fraud-detector", "1", "--actor", "U0OPS001")
    assert again.exit_code == 2 and "already has its artifact's SHA-256 recorded" in again.output
    outside = run("artifacts", "pin", "fraud-detector", "v2", "--actor", "U0OPS001")
    assert outside.exit_code == 2 and "outside the artifact roots" in outside.output
    with db.session() as s:
        versions = registry.get_model(session=s, key="fraud-detector").versions
        assert [v.artifact_sha256 for v in versions] == [digest, None]
        pins = s.query(AuditEvent).filter_by(action="version.artifact_pinned").all()
        assert [(e.actor, e.subject, e.details["artifact_sha256"]) for e in pins] == [
            ("U0OPS001", "model:fraud-detector/v1", digest)]
    db.dispose()
