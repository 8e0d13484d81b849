"""Cron schedules mean what crontab(5) says, whatever APScheduler 3 numbers its weekdays from."""

from datetime import datetime, timezone

import pytest

from jobs.worker import latest_tick
from jobs.schedule import cron_trigger

THURSDAY = datetime(2026, 11, 26, 22, 47, 13)  # a Thursday


def _next_days(expression, count=7):
    trigger, fire, days = cron_trigger(expression), None, []
    now = THURSDAY.replace(tzinfo=timezone.utc)
    for _ in range(count):
        fire = trigger.get_next_fire_time(fire, fire or now)
        days.append(fire.strftime("%a"))
        now = fire
    return days


@pytest.mark.parametrize(("expression", "days"), [
    ("0 6 * * 1", ["Mon"]),
    ("0 6 * * 0", ["Sun"]),
    ("0 6 * * 7", ["Sun"]),
    ("0 6 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
    ("0 6 * * 5-7", ["Fri", "Sat", "Sun"]),
    ("0 6 * * */2", ["Tue", "Thu", "Sat", "Sun"]),
    ("0 6 * * mon,FRI", ["Mon", "Fri"]),
    ("0 6 * * *", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
])
def test_weekdays_follow_crontab_numbering(expression, days):
    assert sorted(set(_next_days(expression, 14)), key=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].index) \
        == days


@pytest.mark.parametrize(("expression", "problem"), [
    ("0 6 * * 8", "'8' is not a day of the week"),
    ("0 6 * * 5-1", "range '5-1' runs backwards"),
    ("0 6 * *", "a cron schedule has 5 fields"),
    ("0 6 * * 1/0", "step '/0' must be at least 1"),
])
def test_a_bad_schedule_is_named(expression, problem):
    with pytest.raises(ValueError, match=problem):
        cron_trigger(expression)


@pytest.mark.parametrize(("expression", "tick"), [
    ("0 * * * *", datetime(2026, 11, 26, 22, 0)),
    ("*/5 * * * *", datetime(2026, 11, 26, 22, 45)),
    ("0 6 * * *", datetime(2026, 11, 26, 6, 0)),
    ("0 6 * * 1", datetime(2026, 11, 23, 6, 0)),  # last Monday
    ("0 0 1 * *", datetime(2026, 11, 1, 0, 0)),
])
def test_a_late_run_belongs_to_the_latest_firing_before_it(expression, tick):
    assert latest_tick(expression, THURSDAY) == tick


def test_a_day_of_month_and_a_day_of_week_both_given_fire_on_either_as_in_crontab():
    trigger, fire, dates = cron_trigger("0 9 1,15 * mon"), None, []
    now = THURSDAY.replace(tzinfo=timezone.utc)
    for _ in range(6):
        fire = trigger.get_next_fire_time(fire, fire or now)
        dates.append(fire.strftime("%a %d %b %H:%M"))
        now = fire
    assert dates == ["Mon 30 Nov 09:00", "Tue 01 Dec 09:00", "Mon 07 Dec 09:00", "Mon 14 Dec 09:00",
                     "Tue 15 Dec 09:00", "Mon 21 Dec 09:00"]
    assert latest_tick("0 9 1,15 * mon", THURSDAY) == datetime(2026, 11, 23, 9, 0)  # a Monday, after the 15th
    # "*/2" starts with "*", so crontab ANDs it with Monday: odd-day Mondays only, the 23rd the latest
    assert latest_tick("0 9 */2 * mon", THURSDAY) == datetime(2026, 11, 23, 9, 0)


def test_a_schedule_that_has_not_fired_for_a_year_is_refused():
    with pytest.raises(ValueError, match="has not fired in the year before"):
        latest_tick("0 0 29 2 *", datetime(2027, 3, 1))
