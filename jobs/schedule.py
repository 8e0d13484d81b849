"""Crontab expressions as APScheduler triggers, with cron's own day-of-week numbers.

APScheduler 3 reads a numeric day of week as Monday = 0, where crontab(5) says Sunday = 0 (and 7):
`from_crontab("0 6 * * 1")` fires on Tuesdays (agronholm/apscheduler#286, fixed only in 4.x). Specs
are written by people who know cron, so the day-of-week field is turned into day names first. And
where cron runs on either of a restricted day of month and day of week ("0 9 1 * mon": the 1st and
every Monday), APScheduler runs only when both match; such a schedule becomes two triggers, either firing.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab(5): 0 (or 7) is Sunday


def _day(text: str) -> int:
    text = text.strip().lower()
    if text in CRON_DAYS:
        return CRON_DAYS.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    raise ValueError(f"'{text}' is not a day of the week (0-7 or sun-sat)")


def _days(field: str) -> list[int]:
    chosen: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step '/{step_text}' must be at least 1")
        if span in ("*", "?"):
            first, last = 0, 6
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = _day(first_text), _day(last_text)
            if last_text.strip() == "7":  # 5-7 means Friday to Sunday
                last = 7
            if last < first:
                raise ValueError(f"range '{span}' runs backwards")
        else:
            first = last = _day(span)
            if step_text:  # "1/2": from Monday every second day, as cron reads it
                last = 6
        chosen.update(day % 7 for day in range(first, last + 1, step))
    return sorted(chosen)


def _restricted(field: str) -> bool:
    return not field.startswith(("*", "?"))  # crontab(5): a field starting with "*" restricts nothing


def cron_trigger(expression: str, timezone: tzinfo | str = "UTC") -> BaseTrigger:
    """A trigger for a five-field crontab expression; ValueError naming what is wrong otherwise."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a cron schedule has 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    days = weekday if weekday in ("*", "?") else ",".join(CRON_DAYS[d] for d in _days(weekday))

    def cron(day: str, days: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=timezone)
    if _restricted(day) and _restricted(weekday):
        return OrTrigger([cron(day, "*"), cron("*", days)])
    return cron(day, days)
