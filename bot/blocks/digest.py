"""Digest messages: a storm of alerts as one message, and a business channel's daily digest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from slack_sdk.models.blocks import HeaderBlock, SectionBlock

from bot.blocks.common import (
    MAX_BLOCKS,
    Message,
    button,
    context,
    escape_mrkdwn,
    link_button,
    md,
    when,
)
from bot.blocks.wording import count_words, kpi_headline, kpi_sentence
from bot.charts import format_value, metric_name
from bot.ids import ActionContext, ActionId, BlockId
from jobs.incidents import KpiFigure
from store.digests import FAR, WELL, DailyChannel, DigestAlert
from store.models import AlertState, CheckKind

OPEN_THREAD = "Open thread"
VIEW_DETAILS = "View details"
KIND_WORDS = {CheckKind.drift: "input drift", CheckKind.kpi: "KPI", CheckKind.performance: "performance",
              CheckKind.data_quality: "data quality"}
MAX_FEATURES = 3  # per drift line; the full alert in the thread lists them all
MAX_LINE = 2900  # Slack allows 3,000 characters in a section's text
STORM_INTRO = ("They came in the same check cycle, so they are one message instead of {count}. "
               f"*{OPEN_THREAD}* posts a model's full alert (charts, figures and its buttons) in this thread.")
DAILY_FOOTER = "`/flywheel subscribe business #channel immediate` to get alerts as they happen"


def severity(alert: DigestAlert) -> tuple[str, str]:
    """An icon and words for how far past its line the worst figure is."""
    if alert.state == AlertState.resolved:
        return ":white_check_mark:", "resolved"
    if alert.overshoot >= FAR:
        return ":red_circle:", "far past its line"
    if alert.overshoot >= WELL:
        return ":large_orange_circle:", "well past its line"
    return ":large_yellow_circle:", "just past its line"


def _kpis(figures: dict, *, breached_only: bool = True, names: set[str] | None = None) -> list[KpiFigure]:
    return [KpiFigure(k["name"], k["label"], k["unit"], k["value"], k["baseline"], k["threshold"], k["breached"],
                      k["rule"], **KpiFigure.baseline_of(k)) for k in figures.get("kpis", [])
            if k.get("value") is not None and (k["breached"] or not breached_only)
            and (names is None or k["name"] in names)]


def breach_text(alert: DigestAlert) -> str:
    """What breached, with its figure and line, in one short sentence: plain text, escaped where it meets mrkdwn."""
    figures = alert.figures
    if alert.kind == CheckKind.drift:
        drifted = [f for f in figures.get("features", []) if f.get("drifted")]
        shown = ", ".join(f"{f['feature']} ({f['method_label']} {format_value(f['statistic'], None)}, alert "
                          f"{format_value(f['threshold'], None)})" for f in drifted[:MAX_FEATURES])
        more = f" and {len(drifted) - MAX_FEATURES} more" if len(drifted) > MAX_FEATURES else ""
        return f"Input drift on {shown}{more}"
    if alert.kind == CheckKind.kpi:
        return "; ".join(f"{k.label} {format_value(k.value, k.unit)} ({k.rule})" for k in _kpis(figures))
    if alert.kind == CheckKind.performance:
        metrics = figures.get("metrics", {})
        return "; ".join(f"{metric_name(m)} {format_value(metrics[m], None)}{_rule_text(alert.rules.get(m, {}))}"
                         for m in figures.get("breaches", []) if m in metrics)
    problems = figures.get("problems", [])
    return "Data quality: " + "; ".join(problems) if problems else "Data quality problem"


def _rule_text(rule: dict[str, float]) -> str:
    if "below" in rule:
        return f" (alert below {format_value(rule['below'], None)})"
    if "above" in rule:
        return f" (alert above {format_value(rule['above'], None)})"
    return ""


def _state_note(alert: DigestAlert) -> str:
    if alert.state == AlertState.acknowledged:
        return " · acknowledged"
    if alert.state == AlertState.snoozed and alert.snoozed_until:
        return f" · snoozed until {when(alert.snoozed_until)}"
    return ""


def _by_model(alerts: Sequence[DigestAlert]) -> dict[str, list[DigestAlert]]:
    grouped: dict[str, list[DigestAlert]] = {}
    for alert in alerts:
        grouped.setdefault(alert.model_key, []).append(alert)
    return grouped


def _title(alert: DigestAlert) -> str:
    return f"*{alert.model_key}* {alert.version or ''} · {escape_mrkdwn(alert.project_name)}".replace("  ", " ")


def _worst(alerts: Sequence[DigestAlert]) -> DigestAlert:
    live = [a for a in alerts if a.state != AlertState.resolved]
    return max(live, key=lambda a: a.overshoot) if live else alerts[0]


# --- storms -------------------------------------------------------------------------------------

def storm_line(alert: DigestAlert) -> str:
    icon, words = severity(alert)
    if alert.state == AlertState.resolved:
        return f"{icon} Resolved {when(alert.resolved_at or alert.window_end)}: {escape_mrkdwn(breach_text(alert))}"
    return f"{icon} {escape_mrkdwn(breach_text(alert))} · _{words}_{_state_note(alert)}"


def storm_digest(alerts: Sequence[DigestAlert], *, gathered_at: datetime) -> Message:
    """One message for many models' alerts to one channel: a line per model, worst first, and a
    button that posts the model's full alert in the thread."""
    models = _by_model(alerts)
    kinds = Counter(k for lines in models.values() for k in {a.kind for a in lines})
    summary = ", ".join(f"{KIND_WORDS[k]} on {n}" for k, n in kinds.most_common())
    headline = f"{len(models)} models breaching at once · {summary}"
    keys = list(models)
    room = MAX_BLOCKS - 4  # header, intro, context and the "more" line
    blocks = [HeaderBlock(text=headline[:150]),
              SectionBlock(text=md(STORM_INTRO.format(count=count_words(len(alerts), "alert"))))]
    for key in keys[:room]:
        lines = models[key]
        first = lines[0]
        text = f"{_title(first)}\n" + "\n".join(storm_line(a) for a in lines)
        blocks.append(SectionBlock(
            block_id=f"{BlockId.digest_line}:{key}", text=md(text[:MAX_LINE]),
            accessory=button(OPEN_THREAD, ActionId.digest_thread, ActionContext(model=key, alert=first.alert_id))))
    if len(keys) > room:
        blocks.append(SectionBlock(text=md(f"And {len(keys) - room} more: {', '.join(keys[room:])}"[:MAX_LINE])))
    blocks.append(context(f"gathered {when(gathered_at)}", "worst first"))
    persona = Counter(a.persona for a in alerts).most_common(1)[0][0]
    return Message(kind="storm_digest", persona=persona, model_key="", text=f"{headline}: {', '.join(keys)}.",
                   blocks=tuple(blocks))


def thread_answer(model_key: str, *, queued_now: bool, permalink: str | None) -> str:
    """What the person who clicked Open thread is told, privately."""
    if queued_now:
        return f"Posting {model_key}'s full alert in this message's thread."
    if permalink:
        return f"{model_key}'s full alert is already in this thread: <{permalink}|open it>."
    return f"{model_key}'s full alert is on its way to this thread."


# --- daily --------------------------------------------------------------------------------------

def _length(alert: DigestAlert) -> timedelta:
    return alert.window_end - alert.window_start


def _baseline_windows(figures: dict) -> int:
    return next((k.get("baseline_windows", 4) for k in figures.get("kpis", [])), 4)


def _is_money(kpi: KpiFigure) -> bool:
    return (kpi.unit or "").lower() in ("usd", "$")


def _money(alert: DigestAlert, figures: dict, names: set[str]) -> str:
    """The KPI sentences a business alert shows: the ones named (what breached), then the money
    figure, so 'are we losing money?' is answered even when the breach is a rate."""
    if alert.kind != CheckKind.kpi:
        return escape_mrkdwn(breach_text(alert)) + "."
    every = _kpis(figures, breached_only=False)
    kpis = [k for k in every if k.name in names] + [k for k in every if k.name not in names and _is_money(k)]
    return " ".join(kpi_sentence(k, _length(alert), _baseline_windows(figures)) for k in kpis) \
        or escape_mrkdwn(breach_text(alert)) + "."


def daily_line(alert: DigestAlert, *, since: datetime) -> str:
    breached = {k["name"] for k in alert.figures.get("kpis", []) if k.get("breached")}
    if alert.state == AlertState.resolved:  # where the figures are now, from the check that passed
        now = _money(alert, alert.latest or alert.figures, breached)
        return f":white_check_mark: Resolved {when(alert.resolved_at or alert.window_end)}: {now}"
    icon, _ = severity(alert)
    opened = f":new: Opened {when(alert.opened_at)}" if alert.opened_at >= since else \
        f"{icon} Open since {when(alert.opened_at)}"
    return f"{opened}{_state_note(alert)}: {_money(alert, alert.figures, breached)}"


def _daily_headline(report: DailyChannel, live: list[DigestAlert], resolved: list[DigestAlert]) -> str:
    if not live:
        return f"All clear: {count_words(len(resolved), 'KPI alert')} resolved in the last 24 hours"
    lead = max(live, key=lambda a: a.overshoot)
    kpis = _kpis(lead.figures)
    headline = kpi_headline(kpis[0], _length(lead)) if kpis else breach_text(lead)
    more = f" · {len(live) - 1} more open" if len(live) > 1 else ""
    return f"{headline} · {lead.project_name}{more}"


def daily_digest(report: DailyChannel, *, since: datetime, until: datetime,
                 details_url: Callable[[str], str]) -> Message | None:
    """A business channel's day: per model, the KPI alerts opened, still open and resolved, in money.
    Nothing happened: no message, so a quiet day stays quiet."""
    if not report.alerts:
        return None
    live = [a for a in report.alerts if a.state != AlertState.resolved]
    resolved = [a for a in report.alerts if a.state == AlertState.resolved]
    new = [a for a in live if a.opened_at >= since]
    headline = _daily_headline(report, live, resolved)
    counted = count_words(len(live), "KPI alert")
    summary = (f"{counted[0].upper()}{counted[1:]} open" + (f" ({len(new)} new)" if new else "")
               + f", {len(resolved) or 'none'} resolved in the last 24 hours.")
    models = _by_model(sorted(report.alerts, key=lambda a: (a.state == AlertState.resolved, -a.overshoot)))
    keys = list(models)
    room = MAX_BLOCKS - 4
    blocks = [HeaderBlock(text=headline[:150]), SectionBlock(text=md(summary))]
    for key in keys[:room]:
        lines = models[key]
        text = f"{_title(lines[0])}\n" + "\n".join(daily_line(a, since=since) for a in lines)
        blocks.append(SectionBlock(
            block_id=f"{BlockId.digest_model}:{key}", text=md(text[:MAX_LINE]),
            accessory=link_button(VIEW_DETAILS, details_url(f"models/{key}"), ActionId.view_details)))
    if len(keys) > room:
        blocks.append(SectionBlock(text=md(f"And {len(keys) - room} more: {', '.join(keys[room:])}"[:MAX_LINE])))
    blocks.append(context(f"Daily digest, {when(since)} - {when(until)}", DAILY_FOOTER))
    text = f"{escape_mrkdwn(headline)}. {summary}"
    return Message(kind="daily_digest", persona=report.persona, model_key="", text=text, blocks=tuple(blocks))
