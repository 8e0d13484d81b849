"""`flywheel audit export`: a reviewer takes a project's audit records away with their hash chain, checked
while they are written and checkable again from the file alone; a person may export only what they govern."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import timedelta

from sqlalchemy import update

from bot.services.evidence import FIELDS
from bot.services.specs import apply_spec
from jobs.spec import load_spec
from store.clock import utcnow
from store.models import AuditEvent
from tests.bot.cli.conftest import LENA
from tests.support.slack_world import ELI, MODEL, NOOR, RITA

ADA = "U0ADMIN1"  # an admin of both projects


def _fraud_story(cli) -> None:
    number = cli.add_candidate()
    assert cli("submit", MODEL, f"v{number}", "--as", ELI).exit_code == 0
    assert cli("approve", MODEL, f"v{number}", "--reason", "holds up", "--as", NOOR).exit_code == 0
    assert cli("approve", MODEL, f"v{number}", "--reason", "risk accepted", "--as", RITA).exit_code == 0
    assert cli("deploy", MODEL, f"v{number}", "--as", NOOR).exit_code == 0


def _fraud_subject(subject: str) -> bool:
    return subject == "project:card-fraud" or subject == f"model:{MODEL}" or subject.startswith(f"model:{MODEL}/")


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_risk_manager_exports_exactly_the_records_of_the_project_they_govern(cli, tmp_path):
    _fraud_story(cli)
    out = tmp_path / "fraud.jsonl"

    result = cli("audit", "export", "--project", "card-fraud", "--out", str(out), "--as", RITA)

    assert result.exit_code == 0, result.output
    exported = _lines(out)
    expected = [e for e in cli.audit() if _fraud_subject(e.subject) and e.action != "audit.exported"]
    assert [r["seq"] for r in exported] == [e.seq for e in expected]
    assert not any(r["subject"] == "project:loans" for r in exported)  # the other project's spec, not here
    assert [r["action"] for r in exported][-2:] == ["version.approved", "version.deployed"]
    assert {r["hash"] for r in exported} == {e.hash for e in expected}
    assert set(exported[0]) == set(FIELDS)
    assert f"Exported {len(exported)} of " in result.output and "The chain is whole." in result.output
    # The export is itself on the record: who took what.
    taken = cli.audit("audit.exported")[-1]
    assert (taken.actor, taken.subject, taken.details["records"]) == (RITA, "project:card-fraud", len(exported))
    # docs/security.md's recipe recomputes every hash with nothing but the standard library.
    for r in exported:
        body = {"seq": r["seq"], "at": r["at"], "actor": r["actor"], "action": r["action"],
                "subject": r["subject"], "details": r["details"], "prev": r["prev_hash"]}
        assert hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest() == r["hash"]
    # The file checks out on its own, and a record edited in it is named.
    assert cli("audit", "verify", "--file", str(out)).output.startswith("every record's hash checks out")
    exported[1]["details"] = {**exported[1]["details"], "reason": "edited"}
    out.write_text("".join(json.dumps(r) + "\n" for r in exported))
    edited = cli("audit", "verify", "--file", str(out))
    assert edited.exit_code == 2 and f"record #{exported[1]['seq']}" in edited.output


def test_csv_with_dates_keeps_only_the_days_asked_for(cli, tmp_path):
    _fraud_story(cli)  # today; the model was registered weeks ago
    today = utcnow().date().isoformat()
    out = tmp_path / "today.csv"

    result = cli("audit", "export", "--project", "card-fraud", "--since", today, "--until", today,
                 "--format", "csv", "--out", str(out), "--as", RITA)

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="")))
    today_events = [e for e in cli.audit() if _fraud_subject(e.subject) and e.at.date() == utcnow().date()
                    and e.action != "audit.exported"]
    assert [int(r["seq"]) for r in rows] == [e.seq for e in today_events] and rows
    assert json.loads(rows[-1]["details"]) == today_events[-1].details
    assert cli("audit", "verify", "--file", str(out)).exit_code == 0
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    none = cli("audit", "export", "--project", "card-fraud", "--since", today, "--until", yesterday, "--as", RITA)
    assert none.exit_code == 2 and "is not before --until" in none.output


def test_a_tampered_record_fails_the_export_with_exit_1_and_names_it(cli, db, tmp_path):
    _fraud_story(cli)
    deployed = cli.audit("version.deployed")[-1]
    with db.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == deployed.seq).values(actor="U0EVIL01"))
    out = tmp_path / "fraud.jsonl"

    result = cli("audit", "export", "--project", "card-fraud", "--out", str(out), "--as", RITA)

    assert result.exit_code == 1
    assert f"audit chain broken: audit event #{deployed.seq}" in result.output
    assert "contents were changed" in result.output
    assert any(r["seq"] == deployed.seq for r in _lines(out))  # the evidence is kept for the reviewer


def test_nobody_exports_what_they_do_not_govern_and_nothing_is_written(cli, db, tmp_path):
    out = tmp_path / "x.jsonl"
    lena = cli("audit", "export", "--project", "card-fraud", "--out", str(out), "--as", LENA)
    assert lena.exit_code == 2 and "needs the risk manager role on Card fraud detection" in lena.output
    everything = cli("audit", "export", "--out", str(out), "--as", RITA)
    assert everything.exit_code == 2 and "needs the admin role on every project" in everything.output
    assert not out.exists() and not (tmp_path / "x.jsonl.partial").exists()
    refused = cli.audit("audit.export.refused")
    assert [(e.actor, e.subject) for e in refused] == [(LENA, "project:card-fraud"), (RITA, "audit:all")]
    assert cli("audit", "export", "--since", "last tuesday", "--as", RITA).output.strip() == (
        "Error: --since 'last tuesday' is not a date; use ISO 8601, e.g. 2026-11-23 or 2026-11-23T06:00")
    # An admin of every project takes the whole log, every record in chain order.
    for spec in (cli.folder / "card-fraud.yml", tmp_path / "loans" / "loans.yml"):
        changed = spec.with_name(f"admin-{spec.name}")  # beside it: its data paths are relative
        changed.write_text(spec.read_text().replace(
            "people:\n", f"people:\n  - {{slack_id: {ADA}, name: Ada, roles: [admin]}}\n", 1))
        with db.session() as s:
            apply_spec(session=s, loaded=load_spec(changed))
    whole = cli("audit", "export", "--out", str(out), "--as", ADA)
    assert whole.exit_code == 0, whole.output
    assert [r["seq"] for r in _lines(out)] == [e.seq for e in cli.audit() if e.action != "audit.exported"
                                              or e.actor != ADA]
