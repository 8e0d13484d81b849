"""Digests: a storm digest's lines kept up to date, its "Open thread", and the daily digest of business
channels subscribed with `digest`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.blocks import digest as digest_blocks
from bot.notifier.outlet import Outlet
from store import digests
from store.models import Digest


class Digests:
    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet

    def refresh_storm(self, digest_id: int) -> None:
        """A storm digest's lines show its alerts as they are now (figures, acknowledged, resolved)."""
        with self.outlet.db.read() as s:
            digest = s.get(Digest, digest_id)
            lines = digests.storm_lines(session=s, digest=digest)
            ref, channel, made = digest.message_ref, digest.channel, digest.created_at
        if ref:
            message = digest_blocks.storm_digest(lines, gathered_at=made)
            self.outlet.delivery.update(ref, replace(message, channel=channel))

    def open_in_digest(self, alert_id: int, *, now: datetime) -> digests.Opened:
        """A storm digest's "Open thread": the model's full alerts go into the digest's thread, once."""
        with self.outlet.db.session() as s:
            return digests.open_thread(session=s, alert_id=alert_id, now=now)

    def daily_digest(self, now: datetime) -> list[str]:
        """Each business channel subscribed with `digest` gets the last day's KPI alerts in one message
        at the digest hour. A channel with nothing to report gets nothing; a period is sent once."""
        until = now.replace(hour=self.outlet.settings.digest_hour, minute=0, second=0, microsecond=0)
        if until > now:
            until -= timedelta(days=1)
        since = until - timedelta(days=1)
        with self.outlet.db.read() as s:
            report = digests.daily_report(session=s, since=since, until=until)
        posted = []
        link = self.outlet.settings.link
        for channel in report:
            message = digest_blocks.daily_digest(channel, since=since, until=until, details_url=link)
            if message is None:
                continue
            ref = self.outlet.post(message, channel.channel)
            with self.outlet.db.session() as s:
                digests.record_daily(session=s, channel=channel.channel, persona=channel.persona, since=since,
                                     until=until, message_ref=ref, alert_ids=[a.alert_id for a in channel.alerts],
                                     now=now)
            posted.append(ref)
        return posted
