"""Useful / Noise on alerts, counted once per person, and the report that tunes thresholds."""

from click.testing import CliRunner

from bot.cli import main
from bot.ids import ActionId
from jobs.monitor import check_model
from store import monitoring
from store.models import AlertFeedback, AuditEvent
from tests.support.slack_world import DANA, ELI, MODEL, NOOR, NOW


def test_votes_count_once_per_person_and_feed_the_noise_report(world):
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    drift = world.posted("C0ML", f"Input drift on {MODEL} v1")
    kpi = world.posted("C0BIZ", "")
    said = world.click(ActionId.noise, drift, ELI)
    world.click(ActionId.noise, drift, ELI)  # a double click changes nothing
    world.click(ActionId.useful, drift, NOOR)
    world.click(ActionId.useful, kpi, DANA)
    assert world.responses(said.response_url)[0]["text"].startswith("Marked as noise")
    with world.db.session() as s:
        assert s.query(AlertFeedback).count() == 3
        rows = {(r.kind, r.subject): r for r in monitoring.noise_report(session=s)}
        assert s.query(AuditEvent).filter_by(action="alert.feedback").count() == 4
    card_age = rows[("drift", "card_age_days")]
    assert (card_age.alerts, card_age.noise, card_age.useful, card_age.noise_share) == (1, 1, 1, 0.5)
    report = CliRunner().invoke(main, ["report", "noise"], env={"FLYWHEEL_DATABASE_URL": world.db.url})
    assert report.exit_code == 0
    line = next(x for x in report.output.splitlines() if "card_age_days" in x)
    assert line.split() == [MODEL, "drift", "card_age_days", "1", "1", "1", "50%"]


def test_feedback_from_someone_unknown_is_refused_politely(world):
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    drift = world.posted("C0ML", f"Input drift on {MODEL} v1")
    said = world.click(ActionId.noise, drift, "U0STRANGER")
    assert "not set up in Flywheel yet" in world.responses(said.response_url)[0]["text"]
