"""The App Home tab: one section per role the viewer holds, each answering that persona's first question."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DividerBlock,
    HeaderBlock,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.blocks.catalog import facts, title_link
from bot.blocks.common import (
    button,
    confirm,
    context,
    day,
    escape_mrkdwn,
    link_button,
    md,
    mention,
    span,
    when,
)
from bot.blocks.risk import APPROVE, MODEL_CARD, REJECT, step_line
from bot.blocks.wording import kpi_sentence, period
from bot.ids import ActionContext, ActionId, BlockId
from bot.services.home import (
    MAX_ASSETS,
    MAX_DEPLOYMENTS,
    MAX_GOVERNED,
    MAX_MODELS,
    MAX_PROJECTS,
    MAX_SIGNOFFS,
    GovernedProject,
    HomeData,
    ModelKpis,
    OwnedModel,
    PendingSignOff,
    ProjectKpis,
    RecentDeployment,
    VersionLine,
)
from bot.services.home_urgency import OpenAlert
from jobs.incidents import KpiFigure, StepStatus
from store.models import Role

MAX_VIEW_BLOCKS = 100  # Slack's limit for a Home tab
MAX_TEXT = 3000  # per section text
MAX_LINES_PER_PROJECT = 10
MAX_MESSAGE = 200  # a check's message, quoted on one line

VIEW_DETAILS = "View details"
SUBMIT = "Submit for sign-off"
DEPLOY = "Deploy"

WELCOME = "Welcome to Flywheel"
STRANGER = ("Flywheel watches models in production and tells each person what matters to them: money at "
            "risk, drift, sign-offs and deployments. You are not in its registry yet, so there is nothing "
            "here for you.")
HOW_TO_JOIN = ("*To get added*, ask a project's owner to list you under `people:` in its project spec, then "
               "run `flywheel apply SPEC.yml`:\n```people:\n  - {{slack_id: {slack_id}, name: Your name, "
               "roles: [business]}}```")
ROLES_HELP = ("Roles: business (KPIs and alerts) · ml_engineer (models you own) · risk_manager (sign-offs) · "
              "it_ops (deployments) · admin (everything)")
NO_ROLES = ("You are in Flywheel's registry but hold no role yet, so there is nothing to show. Ask a project's "
            "owner to give you roles under `people:` in its project spec (business, ml_engineer, risk_manager, "
            "it_ops), then run `flywheel apply SPEC.yml`.")

BUSINESS = "Your projects: KPIs and open alerts"
NO_PROJECTS = "No projects yet. A project appears here once its spec is applied with `flywheel apply SPEC.yml`."
MODELS = "Your models"
NO_MODELS = "You own no models yet. A model's owner is set in its project spec (`owner:` under `models:`)."
NO_CHECKS = "No checks have run yet."
SIGNOFFS = "Waiting for your sign-off"
NO_SIGNOFFS = "Nothing is waiting for your sign-off."
GOVERNED = "Projects you govern"
NO_GOVERNED = ("No project's blueprint has a step for your roles yet. Blueprints are set in a project spec "
               "(`blueprint:`).")
ALERTS = "Your open alerts, most urgent first"
ALERT_STATES = {"open": ":red_circle: not acknowledged", "acknowledged": ":large_yellow_circle: acknowledged",
                "snoozed": ":zzz: snoozed"}
DEPLOYMENTS = "Recent deployments"
NO_DEPLOYMENTS = "No deployments yet."
ASSETS = "Your assets in the catalog"
ASSETS_HINT = "People find them with `/catalog`; list yours with `/catalog owner:me`."

CHECK_NAMES = {"drift": "Input drift", "performance": "Performance", "kpi": "KPIs", "data_quality": "Data quality"}
VERDICT_ICONS = {"ok": ":white_check_mark:", "warn": ":warning:", "breach": ":red_circle:", "error": ":x:"}


def home_view(data: HomeData, *, public_url: str) -> View:
    if not data.known:
        blocks = _stranger(data)
    else:
        sections = _sections(data, public_url.rstrip("/"))
        blocks = [*_greeting(data)]
        for section in sections:
            blocks += [DividerBlock(), *section]
        if not sections:
            blocks.append(SectionBlock(text=md(NO_ROLES)))
    # The per-section caps keep the worst case near 80 blocks; the cut is a backstop, never the plan.
    return View(type="home", blocks=blocks[:MAX_VIEW_BLOCKS])


def _sections(data: HomeData, url: str) -> list[list[Block]]:
    sections = []
    if data.alerts:  # none open: the greeting and the sections below say so
        sections.append(_alerts(data, url))
    if data.sees(Role.business):
        sections.append(_business(data, url))
    if data.sees(Role.ml_engineer):
        sections.append(_models(data, url))
    # A step due from an ML engineer (technical validation) is theirs to sign too.
    if data.sees(Role.risk_manager) or data.pending_signoffs:
        sections.append(_signoffs(data, url))
    if data.sees(Role.risk_manager):
        sections.append(_governed(data))
    if data.sees(Role.it_ops):
        sections.append(_deployments(data))
    if data.assets:
        sections.append(_assets(data))
    return sections


# --- pieces ------------------------------------------------------------------------------------

def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _at(moment: datetime) -> str:
    return when(moment)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _role(role: str) -> str:
    return role.replace("_", " ")


def _block_id(prefix: BlockId, *parts: object) -> str:
    return _clip(":".join([prefix, *map(str, parts)]), 255)


def _more(n: int, what: str) -> list[Block]:
    return [context(f"…and {n} more {what}.")] if n > 0 else []


def _section(text: str, **kwargs) -> SectionBlock:
    return SectionBlock(text=md(_clip(text, MAX_TEXT)), **kwargs)




def _blueprint(steps: tuple[StepStatus, ...]) -> str:
    return " · ".join(step_line(s) for s in steps)


# --- greeting, and strangers ---------------------------------------------------------------------

def _greeting(data: HomeData) -> list[Block]:
    parts = []
    if data.sees(Role.business):
        alerts = sum(p.open_alerts for p in data.business)
        parts.append(f"{_plural(alerts, 'open alert')} on your projects" if alerts else
                     "no open alerts on your projects")
    if data.sees(Role.ml_engineer):
        failing = sum(any(v.verdict in ("breach", "error") for v in m.verdicts) for m in data.models)
        parts.append(f"{_plural(failing, 'model')} with a failing check" if failing else
                     "no failing checks on your models")
    pending = len(data.pending_signoffs) + data.more.pending_signoffs
    if data.sees(Role.risk_manager) or pending:
        parts.append(f"{_plural(pending, 'sign-off')} waiting for you" if pending else "no sign-offs waiting")
    if data.sees(Role.it_ops) and data.deployments:
        last = data.deployments[0]
        parts.append(f"last deployment {last.model_key} {last.label}, {_at(last.deployed_at)}")
    summary = f"*Hi {escape_mrkdwn(data.person_name)}.*"
    if parts:
        summary += f" {_first_upper('; '.join(parts))}."
    roles = ", ".join(_role(r) for r in data.roles) or "none"
    return [_section(summary), context(f"Your roles: {roles}", f"updated {_at(data.as_of)}")]


def _stranger(data: HomeData) -> list[Block]:
    return [
        HeaderBlock(text=WELCOME),
        _section(STRANGER),
        _section(HOW_TO_JOIN.format(slack_id=data.slack_id)),
        context(ROLES_HELP),
    ]


# --- business ------------------------------------------------------------------------------------

def _business(data: HomeData, url: str) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=BUSINESS)]
    if not data.business:
        return blocks + [_section(NO_PROJECTS)]
    for project in data.business[:MAX_PROJECTS]:
        blocks += _project_kpis(project, url)
    return blocks + _more(len(data.business[MAX_PROJECTS:]) + data.more.business, "projects")


def _project_kpis(project: ProjectKpis, url: str) -> list[Block]:
    alerts = project.open_alerts
    head = f"*{escape_mrkdwn(project.name)}* · " + \
        (f":red_circle: {_plural(alerts, 'open alert')}" if alerts else "no open alerts")
    lines = [head]
    for model in project.models:
        if len(project.models) > 1:
            lines.append(f"_{model.model_key}_")
        lines += _kpi_lines(model)
    if len(lines) > MAX_LINES_PER_PROJECT:
        lines = lines[:MAX_LINES_PER_PROJECT] + [f"…and {len(lines) - MAX_LINES_PER_PROJECT} more lines."]
    checked = [f"{m.model_key} checked {_at(m.checked_at)}, owner {mention(m.owner)}"
               for m in project.models if m.checked_at]
    return [
        _section("\n".join(lines), block_id=_block_id(BlockId.home_project, project.key),
                 accessory=link_button(VIEW_DETAILS, f"{url}/projects/{project.key}", ActionId.view_details)),
        *([context(*checked[:10])] if checked else []),
    ]


def _kpi_lines(model: ModelKpis) -> list[str]:
    if model.verdict is None:
        return ["No KPI check has run yet."]
    if not model.kpis:
        return [f":x: The KPI check could not run: {escape_mrkdwn(_clip(model.message, MAX_MESSAGE))}"]
    length = model.window_end - model.window_start
    lines = []
    for k in model.kpis:
        if k.value is None:
            lines.append(f"• {escape_mrkdwn(k.label)}: no value {period(length)[0]}.")
            continue
        figure = KpiFigure(k.name, k.label, k.unit, k.value, k.baseline, k.threshold, k.breached, k.rule,
                           **KpiFigure.baseline_of({"baseline_end": k.baseline_end,
                                                    "baseline_earliest": k.baseline_earliest,
                                                    "aggregate": k.aggregate}))
        lines.append(f"{':red_circle:' if k.breached else '•'} {kpi_sentence(figure, length, k.baseline_windows)}")
    return lines


# --- ML engineer ---------------------------------------------------------------------------------

def _models(data: HomeData, url: str) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=MODELS)]
    if not data.models:
        return blocks + [_section(NO_MODELS)]
    for model in data.models[:MAX_MODELS]:
        blocks += _owned_model(model, url)
    return blocks + _more(len(data.models[MAX_MODELS:]) + data.more.models, "models")


def _version_line(version: VersionLine) -> str:
    label = f"*{version.label}*"
    if version.status == "candidate":
        trained = f", trained on {span(version.train_start, version.train_end)}" if version.train_start else ""
        return f"• {label} candidate{trained} by {mention(version.created_by)}, not submitted for sign-off"
    if version.status == "in_review":
        due = next((s for s in version.steps if not s.done), None)
        return f"• {label} in review, " + (
            f"waiting for {escape_mrkdwn(due.name)}: {len(due.approvers)} of {due.quorum}" if due
            else "every sign-off is in")
    return f"• {label} approved, ready to deploy"


def _owned_model(model: OwnedModel, url: str) -> list[Block]:
    head = [f"*{model.key}*", escape_mrkdwn(model.project_name),
            f"{model.production} in production" if model.production else "nothing in production yet"]
    if model.open_alerts:
        head.append(f":red_circle: {_plural(model.open_alerts, 'open alert')}")
    if model.verdicts:
        head.append(f"checked {_at(max(v.checked_at for v in model.verdicts))}")
    lines = [" · ".join(head)]
    lines += [f"{VERDICT_ICONS.get(v.verdict, '')} *{CHECK_NAMES.get(v.kind, v.kind)}:* "
              f"{escape_mrkdwn(_clip(v.message, MAX_MESSAGE))}"
              for v in model.verdicts] or [NO_CHECKS]
    lines += [_version_line(v) for v in model.versions]
    if model.more_versions:
        lines.append(f"…and {model.more_versions} older unreleased versions.")
    elements = []
    candidate = next((v for v in model.versions if v.status == "candidate"), None)
    if candidate:
        elements.append(button(f"{SUBMIT}: {candidate.label}", ActionId.submit_for_signoff,
                               ActionContext(model=model.key, version=candidate.number), style="primary"))
    approved = next((v for v in model.versions if v.status == "approved"), None)
    if approved:
        replaces = f"; {model.production} stops serving" if model.production else ""
        elements.append(button(f"{DEPLOY} {approved.label}", ActionId.deploy,
                               ActionContext(model=model.key, version=approved.number), confirm=confirm(
                                   f"Deploy {approved.label}?",
                                   _clip(f"{approved.label} becomes the production version of {model.key}"
                                         f"{replaces}.", 300), DEPLOY)))
    elements.append(link_button(VIEW_DETAILS, f"{url}/models/{model.key}", ActionId.view_details))
    return [_section("\n".join(lines)),
            ActionsBlock(block_id=_block_id(BlockId.home_model, model.key), elements=elements)]


# --- sign-offs and governed projects -------------------------------------------------------------

def _alerts(data: HomeData, url: str) -> list[Block]:
    """One section for all of them: a line per alert keeps the view far from Slack's 100 blocks."""
    return [HeaderBlock(text=ALERTS), _section("\n".join(_alert_line(a, url) for a in data.alerts)),
            *_more(data.more.alerts, "open alerts")]


def _alert_line(alert: OpenAlert, url: str) -> str:
    about = f" · {escape_mrkdwn(', '.join(alert.subjects))}" if alert.subjects else ""
    state = ALERT_STATES.get(alert.state, alert.state)
    if alert.state == "snoozed" and alert.snoozed_until:
        state += f" until {day(alert.snoozed_until)}"
    return (f"<{url}/alerts/{alert.id}|{CHECK_NAMES.get(alert.kind, alert.kind)}> on *{alert.model_key}*{about}"
            f" · {state} · opened {day(alert.opened_at)} · {alert.risk_tier} risk")


def _signoffs(data: HomeData, url: str) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=SIGNOFFS)]
    if not data.pending_signoffs:
        return blocks + [_section(NO_SIGNOFFS)]
    for pending in data.pending_signoffs[:MAX_SIGNOFFS]:
        blocks += _pending(pending, url)
    return blocks + _more(len(data.pending_signoffs[MAX_SIGNOFFS:]) + data.more.pending_signoffs, "sign-offs")


def _pending(pending: PendingSignOff, url: str) -> list[Block]:
    name = f"{pending.model_key} {pending.label}"
    trained = f"trained on {span(pending.train_start, pending.train_end)}" if pending.train_start else ""
    facts = [f"initiative: {escape_mrkdwn(pending.initiative or 'not stated')}", f"{pending.risk_tier} risk",
             f"requested by {mention(pending.requested_by)}", trained]
    due = escape_mrkdwn(pending.due.name)
    text = "\n".join([f"*{name}* · {escape_mrkdwn(pending.project_name)} · due now: *{due}*",
                      _blueprint(pending.steps), _first_upper(" · ".join(f for f in facts if f))])
    ctx = ActionContext(model=pending.model_key, version=pending.number)
    return [
        _section(text),
        ActionsBlock(block_id=_block_id(BlockId.home_signoff, pending.model_key, pending.number), elements=[
            button(APPROVE, ActionId.approve, ctx, style="primary", confirm=confirm(
                f"Approve {pending.label}?",
                _clip(f"You are signing *{due}* for {name}. This is recorded in the audit log.", 300),
                APPROVE)),
            button(REJECT, ActionId.reject, ctx, style="danger"),
            link_button(MODEL_CARD, f"{url}/models/{pending.model_key}/versions/{pending.number}/card",
                        ActionId.model_card),
        ]),
    ]


def _governed(data: HomeData) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=GOVERNED)]
    if not data.governed:
        return blocks + [_section(NO_GOVERNED)]
    blocks += [_governed_project(p) for p in data.governed[:MAX_GOVERNED]]
    return blocks + _more(len(data.governed[MAX_GOVERNED:]) + data.more.governed, "projects")


def _governed_project(project: GovernedProject) -> SectionBlock:
    sponsors = escape_mrkdwn(", ".join(project.sponsors)) or "none named"
    lines = [f"*{escape_mrkdwn(project.name)}* · {project.risk_tier.capitalize()} risk · blueprint "
             f"{escape_mrkdwn(project.blueprint)}",
             f"Initiative: {escape_mrkdwn(project.initiative or 'not stated')} · Sponsors: {sponsors}"]
    for model in project.models[:MAX_LINES_PER_PROJECT]:
        if model.number is None:
            lines.append(f"• {model.key}: nothing in production or in review yet")
        elif model.status == "production":
            lines.append(f"• {model.key} v{model.number} in production, nothing waiting for sign-off")
        else:
            lines.append(f"• {model.key} v{model.number} {_role(model.status)}: {_blueprint(model.steps)}")
    if len(project.models) > MAX_LINES_PER_PROJECT:
        lines.append(f"…and {len(project.models) - MAX_LINES_PER_PROJECT} more models.")
    return _section("\n".join(lines))


# --- IT ops --------------------------------------------------------------------------------------

def _deployments(data: HomeData) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=DEPLOYMENTS)]
    if not data.deployments:
        return blocks + [_section(NO_DEPLOYMENTS)]
    return blocks + [_deployment(d) for d in data.deployments[:MAX_DEPLOYMENTS]]


def _deployment(d: RecentDeployment) -> SectionBlock:
    name = f"*{d.model_key} {d.label}*"
    deployed = f"deployed by {mention(d.deployed_by)}, {_at(d.deployed_at)}"
    if not d.in_production:
        return _section(f"{name} · {deployed} · no longer serving")
    before = f"previous production version: {d.previous}" if d.previous else "the model's first production version"
    accessory = None
    if d.previous:
        accessory = button(f"Roll back to {d.previous}", ActionId.rollback,
                           ActionContext(model=d.model_key, version=d.number, to=d.previous_number), style="danger",
                           confirm=confirm(
                               f"Roll back to {d.previous}?",
                               _clip(f"Production of {d.model_key} goes back to {d.previous}; {d.label} stops "
                                     "serving.", 300), "Roll back", danger=True))
    return _section(f"{name} is live · {deployed} · {before}",
                    block_id=_block_id(BlockId.home_deployment, d.model_key, d.number), accessory=accessory)


# --- the viewer's catalog assets -----------------------------------------------------------------

def _assets(data: HomeData) -> list[Block]:
    lines = [f"{title_link(a)} · {facts(a, owner=False)}" for a in data.assets[:MAX_ASSETS]]
    more = len(data.assets[MAX_ASSETS:]) + data.more.assets
    return [HeaderBlock(text=ASSETS), _section("\n".join(lines)),
            context(f"…and {more} more. {ASSETS_HINT}" if more else ASSETS_HINT)]
