"""Evidence a reviewer can take away: the audit log's records with their hash chain, for one project or all,
checked link by link while they are written (`flywheel audit export`); and one version's evidence pack
(`flywheel evidence`): its card, comparison, importances, sign-offs and audit records."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select

from bot.services import pages
from bot.services.common import Actor, refusals_audited
from bot.services.pages.card import Card
from jobs.incidents import Comparison
from jobs.retrain import comparison_of
from store import audit, authority, governance, projects, registry
from store.errors import Forbidden
from store.models import Alert, AuditEvent, Model, Project, Role

FORMATS = ("jsonl", "csv")
FIELDS = ("seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash")
WHOLE_LOG = "audit:all"


@dataclass(frozen=True)
class ExportReport:
    exported: int  # records written
    walked: int  # records of the whole chain checked on the way
    chain: audit.ChainReport  # the whole chain's verdict: its first broken link, if any
    scope: str  # "project:fraud-ops" or the whole log


def record_of(event: AuditEvent) -> dict[str, Any]:
    """One exported record: the fields the hash covers, `at` written exactly as hashed (UTC, no offset)."""
    return {"seq": event.seq, "at": event.at.isoformat(timespec="microseconds"), "actor": event.actor,
            "action": event.action, "subject": event.subject, "details": event.details,
            "prev_hash": event.prev_hash, "hash": event.hash}


class Evidence:
    def __init__(self, ops) -> None:
        self.ops = ops

    def export_audit(self, actor: Actor, out: TextIO, *, fmt: str = "jsonl", project: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> ExportReport:
        """Write the audit records of `project` (all when None) between since (inclusive) and until
        (exclusive) to `out`, walking the whole chain to verify every link, then audit the export itself.

        A project's records need its risk manager (or admin); the whole log needs the admin role on every
        project."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
        write = _writer(fmt, out)
        exported = walked = 0
        first_break: audit.ChainReport | None = None
        last_hash = audit.GENESIS
        asked = f"project:{project}" if project is not None else WHOLE_LOG
        with refusals_audited(self.ops.db, actor.slack_id, "audit.export", asked), self.ops.db.read() as s:
            wanted, scope = self._scope(s, actor, project)
            for event, problem in audit.walk(session=s):
                walked += 1
                if problem is not None and first_break is None:
                    first_break = audit.ChainReport(walked - 1, event.seq, problem)
                last_hash = event.hash
                if (since is None or event.at >= since) and (until is None or event.at < until) \
                        and wanted(event.subject):
                    write(record_of(event))
                    exported += 1
            chain = first_break or audit.head_report(session=s, count=walked, last_hash=last_hash)
        out.flush()
        with self.ops.db.session() as s:
            audit.record(session=s, actor=actor.slack_id, action="audit.exported", subject=scope,
                         details={"format": fmt, "records": exported,
                                  "since": since.isoformat() if since else None,
                                  "until": until.isoformat() if until else None,
                                  "chain_whole": chain.whole}, changes_status=False)
        return ExportReport(exported, walked, chain, scope)

    def pack(self, actor: Actor, model_key: str, number: int) -> EvidencePack:
        """The pack for MODEL vNUMBER, for someone who sees the project's monitoring and audit trail."""
        with self.ops.db.session() as s:
            return evidence_pack(s, actor.slack_id, model_key, number, now=self.ops.clock())

    @staticmethod
    def _scope(session, actor: Actor, project_key: str | None) -> tuple[Callable[[str], bool], str]:
        if project_key is not None:
            project = projects.get_project(session=session, key=project_key)
            authority.require(session=session, slack_id=actor.slack_id, project=project, team=actor.team,
                              roles=[Role.risk_manager], doing=f"Exporting the audit log of {project.name}")
            return _subjects_of(session, project), f"project:{project.key}"
        everything = projects.list_projects(session=session)
        lacking = [p.name for p in everything
                   if not authority.holds(session=session, slack_id=actor.slack_id, project=p, roles=[],
                                          team=actor.team)]
        if lacking:
            raise Forbidden(f"Exporting the whole audit log needs the admin role on every project; you are not "
                            f"an admin of {', '.join(lacking[:3])}{' and others' if len(lacking) > 3 else ''}. "
                            "Name one project with --project.")
        return (lambda _subject: True), WHOLE_LOG


def _subjects_of(session, project: Project) -> Callable[[str], bool]:
    """Whether an audit subject belongs to the project: the project itself, its models and their versions,
    their alerts, and its catalog entries."""
    models = list(session.execute(select(Model.key, Model.id).where(Model.project_id == project.id)))
    keys = {key for key, _ in models}
    alerts = {f"alert:{i}" for i in session.execute(
        select(Alert.id).where(Alert.model_id.in_([i for _, i in models]))).scalars()} if models else set()
    exact = {f"project:{project.key}", f"catalog:project:{project.key}", *alerts,
             *(f"model:{k}" for k in keys), *(f"catalog:model:{k}" for k in keys)}
    prefixes = (*(f"model:{k}/" for k in keys), *(f"catalog:model:{k}/" for k in keys),
                f"catalog:dataset:{project.key}/")

    def belongs(subject: str) -> bool:
        return subject in exact or subject.startswith(prefixes)
    return belongs


def _writer(fmt: str, out: TextIO) -> Callable[[dict[str, Any]], None]:
    if fmt == "jsonl":
        def line(record: dict[str, Any]) -> None:
            out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        return line
    table = csv.DictWriter(out, fieldnames=FIELDS)
    table.writeheader()

    def row(record: dict[str, Any]) -> None:
        table.writerow({**record, "details": json.dumps(record["details"], sort_keys=True, default=str)})
    return row


def check_exported(records: Iterable[dict[str, Any]]) -> audit.ChainReport:
    """An exported file checked on its own: every record's hash recomputed from its fields, and each record
    that follows its predecessor in the chain (seq + 1) linked to its hash. A project's export skips other
    projects' records, so only consecutive records can be linked."""
    count, previous = 0, None
    for record in records:
        at = datetime.fromisoformat(record["at"])
        details = record["details"] if isinstance(record["details"], dict) else json.loads(record["details"])
        seq = int(record["seq"])
        where = f"record #{seq} ({record['action']} by {record['actor']})"
        if audit.digest_fields(seq=seq, at=at, actor=record["actor"], action=record["action"],
                               subject=record["subject"], details=details,
                               prev_hash=record["prev_hash"]) != record["hash"]:
            return audit.ChainReport(count, seq, f"{where}: its contents do not match its hash")
        if previous is not None and seq == int(previous["seq"]) + 1 and record["prev_hash"] != previous["hash"]:
            return audit.ChainReport(count, seq, f"{where}: does not link to record #{previous['seq']}")
        count, previous = count + 1, record
    return audit.ChainReport(count, None, f"every record's hash checks out: {count} records")


@dataclass(frozen=True)
class EvidencePack:
    """Everything a reviewer needs about one version, gathered in one read: what `flywheel evidence` and the
    dashboard's download write as a self-contained HTML file and its JSON."""

    card: Card
    comparison: Comparison | None  # with the money at stake and the importances of both versions
    artifact_uri: str
    artifact_sha256: str | None
    records: tuple[dict[str, Any], ...]  # the version's audit records, as `audit export` writes them
    records_check: audit.ChainReport  # each record's hash recomputed
    generated_at: datetime
    generated_by: str
    generated_by_name: str
    deploy_policy: str = "block"  # in force on the project (governance.policy_of): block, warn or allow

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, indent=2, sort_keys=True)


def evidence_pack(session, slack_id: str, model_key: str, number: int, *, now: datetime) -> EvidencePack:
    """One version's evidence pack for this person (the CLI and the dashboard's download), audited in the
    caller's unit of work."""
    s = session
    version = registry.get_version(session=s, model_key=model_key, number=number)
    project = version.model.project
    seen = pages.viewer(session=s, slack_id=slack_id)
    if seen is None:
        raise Forbidden("You're not set up in Flywheel yet, so there is no evidence pack to give you.")
    seen = seen.within(project)
    if not seen.sees_monitoring:
        raise Forbidden(f"The evidence pack of {model_key} {version.label} holds its audit trail: it needs the "
                        f"ML engineer, risk manager or IT operations role on {project.name}.")
    card = pages.model_card(session=s, key=model_key, number=number, viewer=seen, now=now)
    records = tuple(record_of(e) for e in audit.events_of(session=s, subject=f"model:{model_key}/{version.label}"))
    comparison = comparison_of(session=s, model_key=model_key, number=number)
    audit.record(session=s, actor=slack_id, action="evidence.packed", subject=f"model:{model_key}/v{number}",
                 details={"records": len(records)}, changes_status=False)
    return EvidencePack(card, comparison, version.artifact_uri, version.artifact_sha256, records,
                        check_exported(records), now, slack_id, seen.name, governance.policy_of(project))
