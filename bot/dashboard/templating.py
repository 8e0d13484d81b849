"""The dashboard's Jinja environment: its filters say figures, dates, checks and roles the way every page
(and the evidence pack, written without a server) says them."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bot.blocks.dates import day_text, when_html
from bot.blocks.policy import policy_phrase

from bot.charts import format_value, metric_name
from jobs.tasks import lower_is_better

CHECK_NAMES = {"drift": "Input drift", "performance": "Performance", "kpi": "Business KPIs",
               "data_quality": "Data quality"}
ROLE_NAMES = {"business": "business", "ml_engineer": "ML engineer", "risk_manager": "risk manager",
              "it_ops": "IT operations", "admin": "admin"}


def environment() -> Environment:
    env = Environment(loader=PackageLoader("bot.dashboard", "templates"), autoescape=select_autoescape(),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        value=lambda v, unit=None: format_value(v, unit) if v is not None else "n/a",
        when=lambda d: Markup(when_html(d)) if d else "",  # when_html escapes its text
        day=lambda d: day_text(d) if d else "unknown",
        words=lambda s: str(s).replace("_", " "), metric=metric_name,
        action=lambda s: str(s).replace(".", " ").replace("_", " "),
        check=lambda k: CHECK_NAMES.get(k, k), role=lambda r: ROLE_NAMES.get(r, r), policy=policy_phrase)
    env.globals["check_names"] = CHECK_NAMES
    env.globals["lower_is_better"] = lower_is_better
    return env
