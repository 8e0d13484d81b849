"""A risk manager's portfolio in Slack (`/flywheel portfolio`): the projects they govern, overdue sign-offs
first, the same lines as the dashboard's portfolio page."""

from __future__ import annotations

from bot.services import pages
from bot.services.common import Actor, Service
from store.errors import Forbidden


class Portfolios(Service):
    def of(self, actor: Actor) -> pages.Portfolio:
        with self.db.read() as s:
            seen = pages.viewer(session=s, slack_id=actor.slack_id)
            if seen is None:
                raise Forbidden("You're not set up in Flywheel yet, so you govern no project.")
            return pages.portfolio(session=s, viewer=seen, now=self.clock())
