"""Alerts behave like Sentry's and Alertmanager's: one message per incident, updated in place, threaded,
silenced by snooze until it ends, no reminders once acknowledged, resolved when the check passes."""

import json
from datetime import timedelta

import pytest

from bot.app import make_notifier
from bot.config import Settings
from bot.delivery import FolderOutbox
from bot.services.specs import apply_spec
from jobs.monitor import check_model
from jobs.spec import load_spec
from store import registry
from store.models import Alert, AlertState, CheckKind, OutboxMessage
from tests.support.projects import append_weeks, week, week_end, write_project


@pytest.fixture
def loans(db, tmp_path):
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(write_project(tmp_path)))
        v1 = registry.register_version(session=s, model_key="default-risk", created_by="U0ML0001", artifact_uri="x")
        registry.adopt_as_production(session=s, version=v1, actor="U0ML0001")
    append_weeks(tmp_path, [week(w) for w in range(4)] + [week(w, shift=1.0 + (w - 4) * 0.3) for w in range(4, 8)]
                 + [week(8), week(9)])
    outbox = FolderOutbox(tmp_path / "outbox")
    notifier = make_notifier(Settings(FLYWHEEL_PUBLIC_URL="https://f.example.com"), db, delivery=outbox,
                             charts_dir=tmp_path / "charts")
    return db, outbox, notifier


def _cycle(db, notifier, w):
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(w), kinds={CheckKind.drift}, now=week_end(w))
    return notifier.on_checks(checked)


def _drift_record(outbox):
    folder = next(p for p in (outbox.root / "messages").iterdir() if p.name.endswith("drift_alert"))
    return json.loads((folder / "message.json").read_text())


def test_a_repeated_breach_edits_the_message_and_says_what_moved(loans):
    db, outbox, notifier = loans
    assert len(_cycle(db, notifier, 4)) == 1
    assert _cycle(db, notifier, 5) == []  # no second message for the same incident
    record = _drift_record(outbox)
    assert len(list((outbox.root / "messages").iterdir())) == 1
    (reply,) = [t["text"] for t in record["thread"]]
    assert reply.startswith("Still drifting (Feb 16, 2026): income 1.0") and " -> 1.3" in reply
    assert "Wasserstein 1.3" in json.dumps(record["blocks"])  # the message itself shows the new figure


@pytest.mark.charts
def test_a_repeat_draws_charts_again_only_where_the_edit_shows_them(loans, tmp_path):
    """Slack keeps the charts uploaded into the alert's thread, so an edit there is not drawn again (it was
    15% of a worker's check time); the folder preview shows the edited message with new charts."""
    import shutil

    from bot.outbox import OutboxDelivery

    db, outbox, notifier = loans
    _cycle(db, notifier, 4)
    charts = tmp_path / "charts"
    shutil.rmtree(charts)
    _cycle(db, notifier, 5)
    assert sorted(p.name for p in charts.rglob("*.png")) == ["dist-income.png", "drift.png"]  # the preview's

    shutil.rmtree(charts)
    notifier.delivery = OutboxDelivery(db)  # as the worker delivers to Slack
    _cycle(db, notifier, 6)
    assert not charts.exists()
    with db.session() as s:
        (edit,) = s.query(OutboxMessage).filter_by(kind="update").all()
    assert "Wasserstein" in json.dumps(edit.payload["blocks"]) and edit.payload["charts"] == []


def test_with_charts_off_an_alert_goes_without_them(loans, tmp_path):
    """FLYWHEEL_CHARTS=off, as in every test not marked `charts`: the same message, no chart drawn."""
    db, outbox, notifier = loans
    assert notifier.settings.charts is False
    assert len(_cycle(db, notifier, 4)) == 1
    record = _drift_record(outbox)
    assert record["charts"] == [] and "Wasserstein" in json.dumps(record["blocks"])
    assert not (tmp_path / "charts").exists()


def test_snooze_silences_until_it_ends_and_acknowledge_stops_reminders(loans):
    db, outbox, notifier = loans
    _cycle(db, notifier, 4)
    with db.session() as s:
        alert = s.query(Alert).one()
        alert.state, alert.snoozed_until = AlertState.snoozed, week_end(4) + timedelta(days=10)
    _cycle(db, notifier, 5)  # inside the snooze: silent
    assert _drift_record(outbox)["thread"] == []
    _cycle(db, notifier, 6)  # snooze over
    assert _drift_record(outbox)["thread"][0]["text"].startswith("Snooze ended. Still drifting")
    with db.session() as s:
        alert = s.query(Alert).one()
        assert alert.state == AlertState.open
        alert.state = AlertState.acknowledged
    _cycle(db, notifier, 7)
    assert len(_drift_record(outbox)["thread"]) == 1  # acknowledged: no more reminders


def test_a_passing_check_resolves_the_alert_and_says_so(loans):
    db, outbox, notifier = loans
    _cycle(db, notifier, 4)
    _cycle(db, notifier, 9)
    with db.session() as s:
        assert s.query(Alert).one().state == AlertState.resolved
    assert _drift_record(outbox)["thread"][-1]["text"].startswith(":white_check_mark: Resolved: drift check passed")
