"""Many models breaching at once, for the digest tests: a fleet of loan models on disk, a check cycle,
and readers of what the fake Slack received."""

from __future__ import annotations

from datetime import timedelta

from bot.ids import BlockId
from jobs.monitor import check_model
from store import registry
from bot.services.specs import apply_spec
from store.models import CheckKind
from jobs.spec import load_spec
from tests.support.projects import append_weeks, week, week_end, write_project


class Clock:
    """Time the test moves on by hand."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


def register_fleet(db, folder, count: int) -> list[str]:
    """`count` loan models, each in its own project with its ML channel C0ML, drifting from week 4."""
    keys = []
    for n in range(count):
        home = folder / f"fleet-{n}"
        key = f"risk-{n}"
        spec = write_project(home, project=f"loans-{n}", model=key)
        with db.session() as s:
            apply_spec(session=s, loaded=load_spec(spec))
            v1 = registry.register_version(session=s, model_key=key, created_by="U0ML0001", artifact_uri="x")
            registry.adopt_as_production(session=s, version=v1, actor="U0ML0001")
        # Week 4 drifts (income moved by one standard deviation), week 5 drifts further, week 6 is back.
        append_weeks(home, [week(4, shift=1.0, seed=n), week(5, shift=1.3, seed=n), week(6, seed=n)])
        keys.append(key)
    return keys


def cycle(db, notifier, keys, w: int):
    for key in keys:
        notifier.on_checks(check_model(db=db, model_key=key, as_of=week_end(w), kinds={CheckKind.drift},
                                       now=week_end(w)))


def drain(sender, clock, passes: int = 30) -> None:
    """Send passes a second apart (posts to one channel are paced) until nothing is left to send."""
    for _ in range(passes):
        sender.send_due()
        clock.advance(seconds=1)


def top_level(fake, channel):
    return [(ts, m) for (ch, ts), m in sorted(fake.messages.items(), key=lambda kv: float(kv[0][1]))
            if ch == channel and not m.get("thread_ts")]


def header(message) -> str:
    return next(b["text"]["text"] for b in message["blocks"] if b["type"] == "header")


def lines(message) -> list[dict]:
    return [b for b in message["blocks"] if b.get("block_id", "").startswith(f"{BlockId.digest_line}:")]
