"""The dashboard through Starlette's test client: every page behind a signed link, every refusal, and what
each role may see; then the Slack side, where a click on View details is answered with a link for the
clicker alone, which opens the page."""

from __future__ import annotations

import html as html_lib
import re
import warnings
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr
from slack_bolt import App

from bot.app import make_operations
from bot.config import Settings
from bot.dashboard.access import SESSION_COOKIE, DashboardSetupError, Signer
from bot.dashboard.app import build_dashboard
from bot.services.common import Actor
from bot.web import build_web
from store import governance, monitoring, registry
from store.models import (
    Alert,
    Blueprint,
    BlueprintStep,
    CheckKind,
    Decision,
    Model,
    Person,
    Project,
    RiskTier,
    Verdict,
)
from tests.support.factories import fraud_project, grant

with warnings.catch_warnings():  # starlette nags about its httpx dependency; not ours to fix
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "dashboard-test-secret-0123456789abcdef"
BASE = "https://flywheel.example.com"
ELI, NOOR, RITA, DANA, OMAR = "U0ML0001", "U0ML0002", "U0RISK01", "U0BIZ001", "U0OPS001"
START = datetime(2026, 10, 5)
WEEK = timedelta(days=7)
NOW = START + 6 * WEEK + timedelta(hours=1)
FEATURES = (("card_age_days", "numeric", "Wasserstein", 0.15), ("amount", "numeric", "Wasserstein", 0.1),
            ("country", "categorical", "Jensen-Shannon", 0.1))
SPEC = {"kpis": [{"name": "missed_fraud_amount", "alert": {"above": 10000}},
                 {"name": "missed_fraud_rate", "alert": {"above_baseline_pct": 25, "baseline_windows": 4}}],
        "performance": {"alert": {"recall": {"below": 0.6}}},
        "data": {"production": {"url": "postgresql+psycopg://fraud:hunter2@db.internal/tx", "table": "scored"},
                 "reference": {"path": "data/reference.parquet"}, "timestamp": "event_time", "label": "is_fraud"},
        "features": {"numeric": ["card_age_days", "amount"], "categorical": ["country"]}}


def _drift(week: int) -> tuple[dict, Verdict, str]:
    drifted = week >= 4
    features = [{"feature": f, "kind": kind, "method": label.lower(), "method_label": label,
                 "statistic": (0.05 + 0.07 * week) if f == "card_age_days" else 0.02 + 0.001 * week,
                 "threshold": line, "p_value": 1e-9 if drifted and f == "card_age_days" else 0.4,
                 "drifted": drifted and f == "card_age_days", "severity": 0, "reference_missing": 0,
                 "current_missing": 0, "unseen_categories": []} for f, kind, label, line in FEATURES]
    message = "1 of 3 features drifted: card_age_days Wasserstein 0.33 (alert 0.15)" if drifted else "no drift"
    return ({"reference_rows": 5000, "current_rows": 5000, "alpha": 0.05, "features": features},
            Verdict.breach if drifted else Verdict.ok, message)


def _kpi(week: int) -> tuple[dict, Verdict, str]:
    amount = 4000 + 2500 * week
    history = [[(START + w * WEEK).isoformat(), 4000 + 2500 * w] for w in range(week + 1)]
    kpis = [{"name": "missed_fraud_amount", "label": "Fraud amount missed", "unit": "USD", "value": amount,
             "baseline": None, "baseline_windows": 4, "threshold": 10000.0, "rule": "above $10,000",
             "breached": amount > 10000, "history": history},
            {"name": "missed_fraud_rate", "label": "Missed fraud", "unit": "rate", "value": 0.017 + 0.002 * week,
             "baseline": 0.017, "baseline_windows": 4, "threshold": None, "rule": "25% above the 4-window baseline",
             "breached": False, "history": []}]
    breached = amount > 10000
    message = f"KPI breached: Fraud amount missed ${amount:,} (above $10,000)" if breached else "2 KPIs within"
    return {"kpis": kpis, "rows": 5000}, Verdict.breach if breached else Verdict.ok, message


def _performance(week: int) -> tuple[dict, Verdict, str]:
    metrics = {"recall": 0.75 - 0.03 * week, "precision": 0.8, "roc_auc": 0.93}
    return ({"metrics": metrics, "training_metrics": {"recall": 0.76, "precision": 0.8, "roc_auc": 0.94},
             "rows": 5000, "labelled_rows": 4000, "breaches": []}, Verdict.ok, "recall 0.7")


@pytest.fixture
def story(db):
    """fraud-detector: v1 in production through six weekly checks; drift from week 4 and money from week 3
    raise alerts; Eli acknowledges the drift alert; v2 is retrained, compared, and signed by Noor for
    technical validation, waiting for Rita's risk review."""
    with db.session() as s:
        model = fraud_project(s)
        model.spec = SPEC
        v1 = registry.register_version(session=s, model_key=model.key, created_by=ELI, artifact_uri="v1",
                                       train_start=START - 2 * WEEK, train_end=START - WEEK,
                                       metrics={"recall": 0.76, "precision": 0.8}, now=START - WEEK)
        registry.adopt_as_production(session=s, version=v1, actor=ELI, now=START - WEEK)
        for week in range(1, 7):
            as_of = START + week * WEEK
            for kind, make in ((CheckKind.drift, _drift), (CheckKind.kpi, _kpi), (CheckKind.performance, _performance)):
                figures, verdict, message = make(week)
                run = monitoring.record_check_run(session=s, model=model, version=v1, kind=kind,
                                                  window_start=as_of - WEEK, window_end=as_of, as_of=as_of,
                                                  figures=figures, verdict=verdict, message=message, now=as_of)
                if kind == CheckKind.performance:
                    registry.record_evaluation(session=s, version=v1, window_start=as_of - WEEK, window_end=as_of,
                                               metrics=figures["metrics"], rows=4000, now=as_of)
                if verdict == Verdict.breach:
                    persona = "business" if kind == CheckKind.kpi else "ml_engineer"
                    monitoring.raise_alert(session=s, run=run, persona=persona,
                                           subjects=["card_age_days"] if kind == CheckKind.drift else ["amount"],
                                           channel="C0ML", now=as_of)
        v2 = registry.register_version(session=s, model_key=model.key, created_by=ELI, artifact_uri="v2",
                                       train_start=START + 2 * WEEK, train_end=START + 5 * WEEK,
                                       parameters={"trigger": "retrained after input drift on card_age_days"},
                                       metrics={"recall": 0.82}, parent=v1, now=START + 5 * WEEK)
        for version, recall in ((v2, 0.81), (v1, 0.64)):
            registry.record_evaluation(session=s, version=version, window_start=START + 5 * WEEK,
                                       window_end=START + 6 * WEEK, metrics={"recall": recall, "precision": 0.78},
                                       rows=3900, now=START + 6 * WEEK)
        governance.submit_for_review(session=s, version=v2, by=ELI, now=NOW)
        governance.sign_off(session=s, version=v2, person=registry.require_person(session=s, slack_id=NOOR),
                            decision=Decision.approve, reason="holdout and backtest look right", now=NOW)
        alerts = {a.kind: a.id for a in s.query(Alert)}
    settings = _settings(db)
    make_operations(settings, db, notifier=None, clock=lambda: NOW).alerts.acknowledge(
        Actor(ELI, registry_person(db, ELI)), alerts[CheckKind.drift]).result()
    return settings, alerts


def registry_person(db, slack_id):
    with db.session() as s:
        person = registry.get_person(session=s, slack_id=slack_id)
        s.expunge(person)
    return person


def _settings(db, tmp_path=None, **extra) -> Settings:
    return Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL=BASE, FLYWHEEL_SECRET_KEY=SecretStr(SECRET),
                    **extra)


@pytest.fixture
def site(db, story, tmp_path):
    settings, alerts = story
    settings = settings.model_copy(update={"artifacts": tmp_path / "artifacts"})
    clock = {"now": NOW}
    app = build_dashboard(settings, db, clock=lambda: clock["now"])
    return Site(app, Signer(settings), clock, alerts)


class Site:
    def __init__(self, app, signer, clock, alerts):
        self.app, self.signer, self.clock, self.alerts = app, signer, clock, alerts

    def browser(self) -> TestClient:
        return TestClient(self.app, base_url=BASE)

    def link(self, path: str, user: str, *, at: datetime = NOW) -> str:
        return self.signer.link(BASE + path, slack_id=user, now=at)[0]

    def open(self, path: str, user: str, browser: TestClient | None = None):
        return (browser or self.browser()).get(self.link(path, user))


PAGES = {
    "/models/fraud-detector": ["fraud-detector", "v1", "Fraud amount missed", "$19,000", "v2", "Risk review",
                               "due now", "card_age_days", "Performance over time", "Audit trail", "<svg"],
    "/models/fraud-detector/versions/2": ["Model card: fraud-detector v2", "retrained after input drift",
                                          "Against v1 on the same labelled window", "0.81", "0.64", "Noor",
                                          "holdout and backtest look right"],
    "/models/fraud-detector/versions/2/card": ["Model card: fraud-detector v2", "Download as Markdown"],
    "/models/fraud-detector/versions/1/card": ["Model card: fraud-detector v1", "6 drift checks while v1 served",
                                               "Eli recorded v1 as the production version"],
    "/projects/card-fraud": ["Card fraud detection", "Reduce payment fraud losses", "High", "Dana",
                             "customer-facing", "fraud-detector v2", "Risk review", "due now", "Noor"],
    "/projects": ["Projects you govern", "Card fraud detection", "waiting for sign-off",
                  "fraud-detector v2: risk review 0 of 1"],
    "/": ["fraud-detector", "Card fraud detection"],
}


@pytest.mark.parametrize("path", list(PAGES))
def test_a_signed_link_opens_its_page_once_and_leaves_a_session(site, path):
    browser = site.browser()
    first = browser.get(site.link(path, RITA), follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == path
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=U0RISK01.") and "HttpOnly" in cookie and "Secure" in cookie
    assert "samesite=lax" in cookie.lower() and SECRET not in cookie
    page = browser.get(path)
    assert page.status_code == 200, page.text
    for text in PAGES[path]:
        assert text in page.text, f"{text!r} missing from {path}"
    assert SECRET not in page.text and "hunter2" not in page.text


def test_the_model_page_answers_the_ml_engineer(site):
    page = site.open("/models/fraud-detector", ELI).text
    assert re.search(r"Open alerts</div><div class=\"v open\">2<", page)
    assert "technical validation" in page.lower() and "holdout and backtest look right" in page
    assert "acknowledged" in page  # the drift alert's state
    assert page.count('<svg class="chart"') >= 3 + 2 + 2  # features, KPIs, metrics
    assert "alert below 0.60" in page  # the performance line from the spec


def test_the_range_of_history_is_chosen_by_days(site):
    browser = site.browser()
    browser.get(site.link("/models/fraud-detector", ELI))
    assert "<strong>7 days</strong>" in browser.get("/models/fraud-detector?days=7").text
    bad = browser.get("/models/fraud-detector?days=12")
    assert bad.status_code == 404 and "use one of 7, 30, 90, 365" in bad.text
    assert browser.get("/models/fraud-detector?days=abc").status_code == 400


def test_a_business_reader_sees_money_not_model_internals(site):
    browser = site.browser()
    model = site.open("/models/fraud-detector", DANA, browser).text
    assert "Fraud amount missed" in model and "$19,000" in model
    for hidden in ('id="checks"', 'id="drift"', 'id="performance"', 'id="audit"', "Wasserstein"):
        assert hidden not in model
    assert "shown to ML engineers, risk managers and IT operations" in model
    drift = browser.get(f"/alerts/{site.alerts[CheckKind.drift]}").text
    assert "card_age_days" in drift and "Wasserstein" not in drift and "shown to ML engineers" in drift
    kpi = browser.get(f"/alerts/{site.alerts[CheckKind.kpi]}").text
    assert "$19,000" in kpi and "above $10,000" in kpi
    portfolio = browser.get("/projects")
    assert portfolio.status_code == 403 and "projects a risk manager governs" in portfolio.text


def test_the_alert_page_shows_evidence_and_what_happened_since(site):
    browser = site.browser()
    page = site.open(f"/alerts/{site.alerts[CheckKind.drift]}", ELI, browser)
    text = page.text
    assert "Input drift alert on fraud-detector v1" in text and "acknowledged" in text
    assert "0.47" in text and "drifted" in text  # card_age_days in the latest breaching run, week 6
    assert "Eli acknowledged it" in text and "Eli registered v2" in text
    assert "Noor signed off v2 (technical validation)" in text
    charts = re.findall(r'<img class="png" src="([^"]+)" alt="([^"]+)"', text)
    assert charts and charts[0][0].endswith("-drift.png") and "card_age_days 0.47 (alert 0.15)" in charts[0][1]
    png = browser.get(charts[0][0])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert browser.get(f"/alerts/{site.alerts[CheckKind.drift]}/charts/../../etc.png").status_code == 404
    assert browser.get(f"/alerts/{site.alerts[CheckKind.drift]}/charts/other.png").status_code == 404
    kpi = browser.get(f"/alerts/{site.alerts[CheckKind.kpi]}").text
    assert re.search(r'src="/alerts/\d+/charts/run-\d+-kpi-missed_fraud_amount.png"', kpi)


def test_the_model_card_downloads_as_markdown(site):
    browser = site.browser()
    response = site.open("/models/fraud-detector/versions/2/card.md", RITA, browser)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"] == 'attachment; filename="fraud-detector-v2-model-card.md"'
    card = response.text
    assert card.startswith("# Model card: fraud-detector v2\n")
    for text in ("## Purpose", "Reduce payment fraud losses", "| Risk tier | high |", "retrained after input drift",
                 "| Recall | 0.81 | 0.64 |", "| technical validation | Noor | approve |",
                 "Waiting for: risk review (0 of 1).", "table scored in a postgresql database"):
        assert text in card, text
    assert "hunter2" not in card and "db.internal" not in card


# --- refusals ------------------------------------------------------------------------------------

def _refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.text, response.text
    assert "/flywheel status fraud-detector" in response.text or status == 403


def test_no_link_and_no_session_is_refused_with_the_way_to_a_fresh_link(site):
    response = site.browser().get("/models/fraud-detector")
    _refused(response, 401, "open from the links Flywheel sends you in Slack")
    assert response.headers["www-authenticate"].startswith("Signed-Link")
    assert "/flywheel status MODEL" in site.browser().get("/alerts/1").text


@pytest.mark.parametrize("tamper", ["mac", "user", "expiry", "page", "garbage"])
def test_a_forged_link_is_refused(site, tamper):
    link = site.link("/models/fraud-detector", ELI)
    path, token = link.removeprefix(BASE).split("?t=")
    user, expiry, mac = token.split(".")
    forged = {"mac": f"{user}.{expiry}.{mac[:-2]}xx", "user": f"{RITA}.{expiry}.{mac}",
              "expiry": f"{user}.{int(expiry) + 86400}.{mac}", "page": token, "garbage": "nonsense"}[tamper]
    if tamper == "page":
        path = "/models/fraud-detector/versions/2/card"
    _refused(site.browser().get(f"{path}?t={forged}"), 401, "This link")


def test_an_expired_link_is_refused(site):
    link = site.link("/models/fraud-detector", ELI, at=NOW - timedelta(days=8))
    _refused(site.browser().get(link), 401, "This link expired ")


def test_a_link_for_someone_else_is_refused_in_a_signed_in_browser(site):
    browser = site.browser()
    assert site.open("/models/fraud-detector", RITA, browser).status_code == 200
    _refused(browser.get(site.link("/models/fraud-detector", ELI)), 401,
             "This link was made for Eli, and this browser is signed in as Rita")


def test_sessions_expire_and_cannot_be_forged(site):
    browser = site.browser()
    assert site.open("/models/fraud-detector", ELI, browser).status_code == 200
    value = browser.cookies[SESSION_COOKIE]
    forged = site.browser()
    forged.cookies.set(SESSION_COOKIE, value.replace(ELI, RITA), domain="flywheel.example.com")
    _refused(forged.get("/models/fraud-detector"), 401, "open from the links")
    site.clock["now"] = NOW + timedelta(hours=13)
    _refused(browser.get("/models/fraud-detector"), 401, "open from the links")


def test_a_person_no_longer_in_the_registry_is_refused(site):
    _refused(site.open("/models/fraud-detector", "U0GONE01"), 403, "not a Flywheel user")


def _loans(db, *people: tuple[str, str, str]) -> None:
    """A second team's project, loans, with its own model and `people` as (slack id, name, role)."""
    with db.session() as s:
        project = Project(key="loans", name="Loan defaults", owner="U0LOAN01", risk_tier=RiskTier.medium)
        project.blueprint = Blueprint(name="standard", steps=[
            BlueprintStep(position=1, name="risk review", role="risk_manager", quorum=1)])
        s.add(Model(key="default-risk", project=project, owner="U0LOAN01", task="binary_classification"))
        for slack_id, name, role in people:
            person = registry.get_person(session=s, slack_id=slack_id) or Person(slack_id=slack_id, name=name)
            s.add(grant(person, project, role))


def test_pages_of_a_project_are_refused_to_people_without_a_role_on_it(site, db):
    _loans(db, ("U0LOAN01", "Lena", "ml_engineer"))
    for path in ("/models/fraud-detector", f"/alerts/{site.alerts[CheckKind.drift]}", "/projects/card-fraud",
                 "/models/fraud-detector/versions/2/card"):
        _refused(site.open(path, "U0LOAN01"), 403, "Card fraud detection is not one of your projects")
    browser = site.browser()
    index = browser.get(site.link("/", "U0LOAN01")).text
    assert "default-risk" in index and "fraud-detector" not in index
    assert "Not for your roles" in browser.get("/projects").text  # she governs nothing
    assert site.open("/models/default-risk", "U0LOAN01").status_code == 200


def test_a_session_opens_the_projects_its_links_were_for(site, db):
    _loans(db, (RITA, "Rita", "risk_manager"))
    browser = site.browser()
    assert site.open("/models/fraud-detector", RITA, browser).status_code == 200
    assert browser.get("/projects/card-fraud").status_code == 200  # same project, no new link needed
    _refused(browser.get("/models/default-risk"), 403, "and loans is not one of them yet")
    assert site.open("/projects/loans", RITA, browser).status_code == 200  # a link for loans adds it
    assert browser.get("/models/default-risk").status_code == 200
    assert browser.get("/models/fraud-detector").status_code == 200
    portfolio = browser.get("/projects").text
    assert "Card fraud detection" in portfolio and "Loan defaults" in portfolio
    widened = site.browser()
    assert site.open("/projects", RITA, widened).status_code == 200  # a page across projects: all of hers
    assert widened.get("/models/default-risk").status_code == 200
    forged = site.browser()  # a session's projects are signed: naming another one breaks it
    forged.cookies.set(SESSION_COOKIE, browser.cookies[SESSION_COOKIE].replace(".", ".*.", 1),
                       domain="flywheel.example.com")
    _refused(forged.get("/models/fraud-detector"), 401, "open from the links")


def test_unknown_things_say_what_exists(site):
    browser = site.browser()
    site.open("/", ELI, browser)
    missing = browser.get("/models/fraud-detectr")
    assert missing.status_code == 404 and "Did you mean fraud-detector?" in missing.text
    assert "There is no alert 999" in browser.get("/alerts/999").text
    assert "has no version v9" in browser.get("/models/fraud-detector/versions/9/card").text


def test_nothing_is_writable_and_pages_never_leak_their_token(site):
    browser = site.browser()
    site.open("/models/fraud-detector", ELI, browser)
    assert browser.post("/models/fraud-detector").status_code == 405
    page = browser.get("/models/fraud-detector")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script" not in page.headers["content-security-policy"] and "<script" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"


def test_the_dashboard_refuses_to_start_without_a_proper_secret(db):
    with pytest.raises(DashboardSetupError, match="FLYWHEEL_SECRET_KEY is not set"):
        build_dashboard(Settings(FLYWHEEL_DATABASE_URL=db.url), db)
    with pytest.raises(DashboardSetupError, match="FLYWHEEL_SECRET_KEY is 5 characters; use at least 32"):
        build_dashboard(Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_SECRET_KEY="short"), db)


def test_links_from_another_flywheel_are_not_signed(site):
    with pytest.raises(Exception, match="is not a page of this Flywheel"):
        site.signer.link("https://evil.example.com/models/fraud-detector", slack_id=ELI, now=NOW)


def test_the_web_app_serves_slack_health_and_the_dashboard_together(site):
    bolt = App(signing_secret="s", token="xoxb-test", token_verification_enabled=False)
    web = TestClient(build_web(bolt, dashboard=site.app), base_url=BASE)
    assert web.get("/healthz").json() == {"status": "ok"}
    assert web.get(site.link("/models/fraud-detector", ELI)).status_code == 200
    assert TestClient(build_web(bolt), base_url=BASE).get("/models/fraud-detector").status_code == 404


# --- from Slack: a click answered with a link for the clicker alone --------------------------------

@pytest.fixture(scope="module")
def fraud_folder(tmp_path_factory):
    from tests.support.slack_world import write_fraud_data

    folder = tmp_path_factory.mktemp("fraud")
    write_fraud_data(folder)
    return folder


@pytest.fixture
def slack(db, fraud_folder, monkeypatch):
    from tests.support.slack_fake import FakeSlack
    from tests.support.slack_world import World, register_fraud_model

    monkeypatch.setenv("FLYWHEEL_SECRET_KEY", SECRET)
    register_fraud_model(db, fraud_folder)
    with FakeSlack() as fake:
        world = World(db, fraud_folder, fake)
        yield world
        world.close()
        assert fake.invalid == [], "the app sent a payload Slack would refuse"


def _link_in(answer: dict) -> str:
    return next(b["accessory"]["url"] for b in answer["blocks"] if b.get("accessory", {}).get("url"))


def test_view_details_is_answered_with_a_link_that_opens_the_alert_for_the_clicker(slack):
    from jobs.monitor import check_model
    from tests.support.slack_world import NOW as SLACK_NOW

    slack.ops.notifier.on_checks(check_model(db=slack.db, model_key="fraud-detector", as_of=SLACK_NOW, now=SLACK_NOW))
    alert = slack.posted("C0ML", "Input drift on fraud-detector v1")
    clicked = slack.click("flywheel.view_details", alert, NOOR)
    answer = slack.responses(clicked.response_url)[-1]
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert answer["text"].startswith("Your link to alert ") and "It opens for you only, until" in answer["text"]
    link = _link_in(answer)
    assert link.startswith(f"{BASE}/alerts/") and "?t=U0ML0002~T0TEST." in link
    browser = TestClient(build_dashboard(slack.ops.settings, slack.db, clock=lambda: SLACK_NOW), base_url=BASE)
    page = browser.get(link)
    assert page.status_code == 200 and "Input drift alert on fraud-detector v1" in page.text
    assert "card_age_days" in page.text and "Noor" in page.text

    # Someone Flywheel doesn't know gets no link; the link's own button only needs an ack.
    stranger = slack.click("flywheel.view_details", alert, "U0STRANGER")
    assert slack.responses(stranger.response_url)[-1]["text"].startswith("You're not set up in Flywheel yet")
    assert "blocks" not in slack.responses(stranger.response_url)[-1] or \
        not slack.responses(stranger.response_url)[-1]["blocks"]


def test_the_status_reply_and_app_home_lead_to_the_model_page(slack):
    from tests.support.slack_fake import action_body, block_action
    from tests.support.slack_world import NOW as SLACK_NOW

    status = slack.command("status fraud-detector", RITA)
    button = next(e for b in status.body["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["value"] == f"{BASE}/models/fraud-detector" and "url" not in button
    # A click in App Home has no message to answer under: the link comes in a modal.
    payload = block_action("flywheel.view_details", button["value"], user_id=RITA, channel_id="", message_ts="1.1",
                           response_url="")
    payload.pop("response_url")
    payload.pop("channel")
    payload["container"] = {"type": "view", "view_id": "V0HOME"}
    assert slack.send(action_body(payload), "application/x-www-form-urlencoded").status_code == 200
    modal = slack.fake.calls_to("views.open")[-1].params["view"]
    link = _link_in(modal)
    assert modal["type"] == "modal" and link.startswith(f"{BASE}/models/fraud-detector?t=U0RISK01~T0TEST.")
    browser = TestClient(build_dashboard(slack.ops.settings, slack.db, clock=lambda: SLACK_NOW), base_url=BASE)
    assert "fraud-detector" in browser.get(link).text


def test_the_catalog_page_searches_like_slash_catalog(site, db):
    from store import catalog_writes

    with db.session() as s:
        catalog_writes.sync_registry(session=s, now=NOW)
    browser = site.browser()
    page = site.open("/catalog?q=fraud", ELI, browser)
    assert page.status_code == 200 and 'value="fraud"' in page.text
    assert '<a href="/models/fraud-detector">fraud-detector</a>' in page.text
    assert '<a href="/projects/card-fraud">Card fraud detection</a>' in page.text
    nothing = browser.get("/catalog?q=zzzqqq").text
    assert "Nothing in the catalog matches" in nothing
    assert browser.get("/catalog?q=fraud&offset=x").status_code == 400
    assert site.browser().get("/catalog?q=fraud").status_code == 401


def test_hostile_query_strings_link_tokens_and_cookies_are_answered_never_raised(site):
    from bot.dashboard.access import TOKEN_PARAM

    browser = site.browser()
    assert site.open("/models/fraud-detector", ELI, browser).status_code == 200  # signed in
    for days in ("²", "9" * 4_000, "99999", "-1"):
        answer = browser.get("/models/fraud-detector", params={"days": days})
        assert answer.status_code == 400 and "is not a number of days" in answer.text
    for token in ("U0ML0001.²².x", "U0ML0001.1.é", "U0ML0001." + "9" * 4_400 + ".x", "...", "é"):
        answer = site.browser().get("/models/fraud-detector", params={TOKEN_PARAM: token})
        assert answer.status_code == 401 and "damaged" in answer.text
    for cookie in ("U0ML0001.²².x", "U0ML0001.1.é", "U0ML0001." + "9" * 4_400 + ".x"):
        raw = f"{SESSION_COOKIE}={cookie}".encode()
        assert site.browser().get("/models/fraud-detector", headers={"cookie": raw}).status_code == 401


def _rows(html: str, table_class: str) -> list[list[str]]:
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', html, re.DOTALL).group(1)
    return [[html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell))).strip()
             for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)]


def test_the_project_page_is_a_governance_overview(site):
    """Initiative, sponsors and tier; each version's place on the blueprint (who signed which step, which is
    open); the open alerts; the KPI trend."""
    html = site.open("/projects/card-fraud", RITA).text
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Business initiative Reduce payment fraud losses" in text and "Risk tier High" in text
    assert "Sponsors Dana" in text
    header, *rows = _rows(html, "places")
    assert header == ["Version", "Status", "Technical validation", "Risk review"]
    by_version = {r[0]: r for r in rows}
    assert set(by_version) == {"fraud-detector v1", "fraud-detector v2"}
    assert by_version["fraud-detector v1"][1:] == ["production", "not signed", "not signed"]
    v2 = by_version["fraud-detector v2"]
    assert v2[1] == "in review" and v2[2].startswith("Noor, ") and v2[3] == "open, 0 of 1 · due now"
    alerts = re.search(r'<h2 id="alerts">.*?</table>', html, re.DOTALL).group(0)
    assert all(f"/alerts/{i}" in alerts for i in site.alerts.values())
    trend = re.search(r'<h2 id="kpis">(.*?)<h2', html, re.DOTALL).group(1)
    assert "Fraud amount missed · fraud-detector" in trend and "<svg" in trend


@pytest.mark.parametrize("path", ["/models/fraud-detector", "/models/fraud-detector/versions/2/card",
                                  "/projects/card-fraud", "/projects"])
def test_every_table_scrolls_inside_its_own_box_on_a_narrow_screen(site, path):
    html = site.open(path, RITA).text
    tables = re.findall(r"(.{0,40})<table", html)
    assert tables and all(before.endswith('<div class="scroll">') for before in tables), tables
    style = re.search(r"\.scroll \{([^}]*)\}", html).group(1)
    assert "overflow-x:auto" in style.replace(" ", "")
