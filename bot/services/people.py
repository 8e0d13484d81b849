"""Who is asking and where their alerts go: the actor behind a request, subscriptions, App Home viewers."""

from __future__ import annotations

import time

from bot.blocks.common import mention
from bot.services import home as home_store
from bot.services.common import ACTOR_TTL_SECONDS, Actor, Context, Service, refusals_audited
from store import authority, registry
from store import status as status_store
from store.errors import InvalidTransition, NotFound
from store.models import Role


class People(Service):
    # Handlers serve a Slack request as its workspace's (store.authority: B's projects don't exist for A).
    serve_as = staticmethod(authority.serve_as)
    acting_in = staticmethod(authority.acting_in)
    NO_WORKSPACE = authority.NO_WORKSPACE

    def __init__(self, ops: Context) -> None:
        super().__init__(ops)
        self._actors: dict[tuple[str, str | None], tuple[float, Actor]] = {}

    def actor(self, slack_id: str, team: str | None = None) -> Actor:
        """Who is asking (from which Slack workspace), resolved once per request; cached briefly so acks
        need no database read."""
        now = time.monotonic()
        cached = self._actors.get((slack_id, team))
        if cached is not None and now - cached[0] < ACTOR_TTL_SECONDS:
            return cached[1]
        with self.db.read() as s:
            person = registry.get_person(session=s, slack_id=slack_id)
            if person is not None:
                s.expunge(person)
        actor = Actor(slack_id, person, team)
        self._actors[(slack_id, team)] = (now, actor)
        return actor

    def named(self, who: str) -> Actor:
        """The person a terminal command acts as (`--as`): a Slack id, or a name held by one person only."""
        who = who.strip()
        with self.db.read() as s:
            person = registry.get_person(session=s, slack_id=who) if who else None
            found = [person] if person is not None else registry.people_named(session=s, name=who) if who else []
            if len(found) > 1:
                ids = ", ".join(p.slack_id for p in found)
                raise InvalidTransition(f"{len(found)} people are called {who} ({ids}): give the Slack id instead.")
            if not found:
                raise NotFound(f"{who or 'Nobody'} is not a Flywheel user: add them to a project spec's people "
                               "(`- {slack_id: U..., name: ..., roles: [...]}`) and run `flywheel apply SPEC.yml`.")
            slack_id = found[0].slack_id
        return self.actor(slack_id)

    def owner_of(self, model_key: str) -> str:
        with self.db.session() as s:
            return registry.get_model(session=s, key=model_key).owner

    def subscribe(self, actor: Actor, *, persona: str, channel: str, project_key: str | None,
                  mode: str | None) -> tuple[str, str]:
        """Point a persona's alerts of one project at a channel: the project's owner or admins only.
        Without a project key, the one project the person is in (or the only project there is)."""
        with refusals_audited(self.db, actor.slack_id, "subscribe", f"project:{project_key or '?'}"), \
                self.db.session() as s:
            projects = [project_key] if project_key else status_store.projects_of(session=s, slack_id=actor.slack_id)
            if not projects:
                projects = [p.key for p in registry.list_projects(session=s)]
            if len(projects) != 1:
                raise InvalidTransition(
                    f"Which project? Add its key: `/flywheel subscribe {persona} <#{channel}> PROJECT"
                    f"{' ' + mode if mode else ''}` (one of {', '.join(projects) or 'no projects yet'}).")
            project = registry.get_project(session=s, key=projects[0])
            if actor.slack_id != project.owner:
                authority.require(session=s, slack_id=actor.slack_id, project=project, roles=Role.admin,
                                  team=actor.team, doing=f"Choosing where {project.key}'s alerts go (its owner "
                                        f"{mention(project.owner)} can)")
            delivery = status_store.set_channel(session=s, project_key=project.key, persona=persona,
                                                channel=channel, actor=actor.slack_id, delivery=mode)
            return project.key, delivery

    def seen_home(self, slack_id: str) -> None:
        with self.db.session() as s:
            home_store.record_viewer(session=s, slack_id=slack_id, now=self.clock())

    def home_viewers(self) -> list[str]:
        with self.db.read() as s:
            return home_store.recent_viewers(session=s, now=self.clock())

    def whoami(self, actor: Actor) -> tuple[dict[str, list[str]], list[str]]:
        """The roles a person holds, per project, and the projects they are in."""
        with self.db.read() as s:
            return (authority.grants_of(session=s, slack_id=actor.slack_id, team=actor.team),
                    status_store.projects_of(session=s, slack_id=actor.slack_id))

    def home(self, slack_id: str) -> home_store.HomeData:
        """What this person's App Home shows now (a read: it takes no write lock)."""
        with self.db.read() as s:
            return home_store.home_for(session=s, slack_id=slack_id, now=self.clock())
