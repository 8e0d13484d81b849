"""Buttons and menus on Flywheel's messages.

Every listener acknowledges at once (Slack shows an error after 3 seconds), records the change
through an operation, then updates the clicked message in place or answers the clicker privately.
Clicks that start work (retrain, deploy, rollback) and sign-offs commit before Slack gets its answer;
alert clicks (Acknowledge, Snooze, Useful / Noise) are checked, queued for the next group commit and
answered at once, their change, audit event and message edit committed together moments later.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from slack_bolt import Ack
from slack_sdk import WebClient

from bot.blocks.common import mention, notice_modal, page_link, settled_json
from bot.blocks.dates import without_tokens
from bot.blocks.digest import thread_answer
from bot.blocks.modals import reject_modal
from bot.dashboard.access import Signer, describe
from bot.ids import ActionContext, ActionId
from bot.services.alerts import WrittenWith
from bot.services.common import Actor
from bot.services.operations import Operations
from bot.services.releases import Deploy
from handlers.errors import new_reference, unexpected_text
from handlers.routing import ActionRouter
from store.errors import FlywheelError
from store.models import Decision


def _context(action: dict) -> ActionContext:
    value = action.get("value") or (action.get("selected_option") or {}).get("value")
    return ActionContext.decode(value)


class Clicked:
    """The message a click came from, and the ways to answer it."""

    def __init__(self, body: dict, client: WebClient, respond: Callable[..., object], delivery=None):
        # `delivery`: the notifier's. Under `flywheel serve` that is the outbox, so an edit or a thread reply
        # a click causes is written first and sent (retried, in order) by the worker like every other message.
        self.body, self.client, self.respond, self.delivery = body, client, respond, delivery
        self.response_url = body.get("response_url")
        container = body.get("container") or {}
        self.channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        self.ts = container.get("message_ts")
        self.message = body.get("message") or {}
        self.ephemeral = bool(container.get("is_ephemeral"))
        # A message that is itself a thread reply (a digest's per-model alert) answers in its parent's thread.
        self.thread_ts = container.get("thread_ts") or self.message.get("thread_ts") or self.ts

    def settle(self, note: str) -> None:
        """Replace the message's buttons with who did what and when."""
        if self.ephemeral and self.response_url:  # Slack sends no blocks of a private answer: the note replaces it
            self.respond(text=note, response_type="ephemeral", replace_original=True)
            return
        if not self._settleable:
            self.tell(note)
            return
        if self._outboxed:
            self._write_settled(None, note)
        else:
            self.client.chat_update(channel=self.channel, ts=self.ts, text=self._fallback(note),
                                    blocks=settled_json(self.message["blocks"], note))

    def _fallback(self, note: str) -> str:
        """The notification text of the edit: the message's own, or the note, with dates said in full."""
        return without_tokens(self.message.get("text") or note)

    @property
    def _outboxed(self) -> bool:
        """Edits go through the outbox table, so they can be written in the change's own unit of work."""
        return bool(getattr(self.delivery, "edits_in_unit_of_work", False))

    @property
    def _settleable(self) -> bool:
        return bool(self.channel and self.ts and self.message.get("blocks"))

    @property
    def settle_within(self) -> WrittenWith | None:
        """When follow-ups go through the outbox: settles the message inside the operation's own unit of
        work, so the change and the edit that shows it commit together, in one write instead of two.
        None otherwise (no outbox, or nothing to edit): `settle` after the ack then."""
        return self._write_settled if self._outboxed and self._settleable else None

    def _write_settled(self, session: object | None, note: str) -> None:
        """The settled message into the outbox, in `session` or a unit of work of its own."""
        self.delivery.edit(f"{self.channel}:{self.ts}", channel=self.channel, text=self._fallback(note),
                           blocks=settled_json(self.message["blocks"], note), session=session)

    def thread(self, text: str) -> None:
        if not (self.channel and self.ts):
            self.tell(text)
        elif self.delivery is not None:
            self.delivery.reply(f"{self.channel}:{self.thread_ts}", text)
        else:
            self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=text)

    def tell(self, text: str) -> None:
        self.respond(text=text, response_type="ephemeral", replace_original=False)


def _acting(ops: Operations, ack: Ack, body: dict, client: WebClient, respond, context: dict,
            act: Callable[[Actor, ActionContext, Clicked], Callable[[], None] | None]) -> None:
    """Ack, act, then hand the Slack follow-up (update, thread, refusal) to a background thread."""
    ack()
    clicked = Clicked(body, client, respond, getattr(ops.notifier, "delivery", None))
    action = body["actions"][0]
    try:
        follow_up = act(context["actor"], _context(action), clicked)
    except FlywheelError as exc:
        follow_up = lambda text=str(exc): clicked.tell(text)  # noqa: E731
    except Exception as exc:  # noqa: BLE001 - answered with a reference, logged with the traceback
        follow_up = lambda text=unexpected_text(new_reference(exc)): clicked.tell(text)  # noqa: E731
    if follow_up is not None:
        ops.later(follow_up)


def _when_committed(ops: Operations, queued: Future[str], clicked: Clicked,
                    then: Callable[[str], None] | None) -> None:
    """An alert click queued for the group commit: Slack has had its ack; once the change is committed
    `then(note)` follows (unless the edit was written with the change), or the clicker hears the refusal."""
    def answer(done: Future[str]) -> None:
        problem = done.exception()
        if isinstance(problem, FlywheelError):
            ops.later(clicked.tell, str(problem))
        elif problem is not None:
            ops.later(clicked.tell, unexpected_text(new_reference(problem)))
        elif then is not None:
            ops.later(then, done.result())
    queued.add_done_callback(answer)


def register(router: ActionRouter, ops: Operations) -> None:
    def on(action_id: ActionId, act) -> None:
        @router.on(action_id)
        def listener(ack: Ack, body: dict, client: WebClient, respond, context: dict) -> None:
            _acting(ops, ack, body, client, respond, context, act)

    def acknowledge(actor: Actor, ctx: ActionContext, clicked: Clicked):
        within = clicked.settle_within
        _when_committed(ops, ops.alerts.acknowledge(actor, ctx.alert, also=within), clicked,
                        then=None if within else clicked.settle)

    def snooze(actor: Actor, ctx: ActionContext, clicked: Clicked):
        within = clicked.settle_within
        _when_committed(ops, ops.alerts.snooze(actor, alert_id=ctx.alert, duration=ctx.choice or "", also=within),
                        clicked, then=None if within else clicked.settle)

    def retrain(actor: Actor, ctx: ActionContext, clicked: Clicked):
        note = ops.retraining.request_retrain(actor, ctx.model, alert_id=ctx.alert, reason="from the alert",
                                   response_url=clicked.body.get("response_url"))
        return lambda: clicked.thread(f"{note} (requested by {mention(actor.slack_id)})")

    def compare_again(actor: Actor, ctx: ActionContext, clicked: Clicked):
        asked = ops.retraining.request_evaluation(actor, ctx.model, ctx.version, alert_id=ctx.alert,
                                       response_url=clicked.response_url)
        if not asked.queued:  # already waiting, or another comparison is running: the button stays
            return lambda: clicked.tell(asked.note)
        return lambda: clicked.settle(f"Compare again asked by {mention(actor.slack_id)}. {asked.note}")

    def submit(actor: Actor, ctx: ActionContext, clicked: Clicked):
        note = ops.releases.submit(actor, ctx.model, ctx.version)
        return lambda: clicked.settle(note)

    def approve(actor: Actor, ctx: ActionContext, clicked: Clicked):
        note, done = ops.releases.sign(actor, ctx.model, ctx.version, Decision.approve,
                                       shown_on=f"{clicked.channel}:{clicked.ts}")
        if done:  # redrawn from the registry: every step with who signed it, when and why, and no buttons
            return lambda: ops.notifier.settle_signoff(f"{clicked.channel}:{clicked.ts}", ctx.model, ctx.version,
                                                       note)
        return lambda: clicked.thread(note)

    def reject(actor: Actor, ctx: ActionContext, clicked: Clicked):
        # trigger_id lives for 3 seconds: the modal opens now, not in the follow-up.
        clicked.client.views_open(trigger_id=clicked.body["trigger_id"],
                                  view=reject_modal(ctx, channel=clicked.channel, message_ts=clicked.ts))
        return None

    def deploy(actor: Actor, ctx: ActionContext, clicked: Clicked):
        deploy = ops.releases.deploy(actor, ctx.model, ctx.version, response_url=clicked.response_url)
        if deploy.outcome == Deploy.ALREADY_ASKED:  # someone else's deploy is running: this message stays
            return lambda: clicked.tell(deploy.note)
        if deploy.outcome == Deploy.ASKED:  # a deploy webhook runs it: say who asked, not that it is done
            return lambda: clicked.settle(f"Deploy asked by {mention(actor.slack_id)}. {deploy.note}")
        return lambda: clicked.settle(f"Deployed by {mention(actor.slack_id)}. {deploy.note}")

    def rollback(actor: Actor, ctx: ActionContext, clicked: Clicked):
        # The button names what it was drawn for: from the version live then (`version`) back to `to`.
        note = ops.releases.rollback(actor, ctx.model, to=ctx.to, seen_live=ctx.version, response_url=clicked.response_url)
        return lambda: clicked.settle(note)

    def ask_ml_team(actor: Actor, ctx: ActionContext, clicked: Clicked):
        owner = ops.people.owner_of(ctx.model)
        return lambda: clicked.thread(f"{mention(owner)}, {mention(actor.slack_id)} is asking about this alert "
                                      f"on {ctx.model}.")

    def open_digest_thread(actor: Actor, ctx: ActionContext, clicked: Clicked):
        """A storm digest's per-model button: the full alert in the digest's thread, once."""
        opened = ops.notifier.open_in_digest(ctx.alert, now=ops.clock())

        def answer() -> None:
            permalink = None
            if opened.posted and not opened.queued_now:
                channel, _, ts = opened.posted.partition(":")
                permalink = clicked.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
            clicked.tell(thread_answer(opened.model_key, queued_now=opened.queued_now, permalink=permalink))
        return answer

    def feedback(noise: bool):
        def act(actor: Actor, ctx: ActionContext, clicked: Clicked):
            _when_committed(ops, ops.alerts.feedback(actor, ctx.alert, noise=noise), clicked, then=clicked.tell)
        return act

    def threshold(accept: bool):
        def act(actor: Actor, ctx: ActionContext, clicked: Clicked):
            ops.tuning.decide(actor, ctx.suggestion, accept=accept)  # settles the message in place
            return None
        return act

    on(ActionId.threshold_accept, threshold(True))
    on(ActionId.threshold_dismiss, threshold(False))
    on(ActionId.useful, feedback(False))
    on(ActionId.noise, feedback(True))
    on(ActionId.acknowledge, acknowledge)
    on(ActionId.snooze, snooze)
    on(ActionId.retrain, retrain)
    on(ActionId.submit_for_signoff, submit)
    on(ActionId.compare_again, compare_again)
    on(ActionId.approve, approve)
    on(ActionId.reject, reject)
    on(ActionId.deploy, deploy)
    on(ActionId.rollback, rollback)
    on(ActionId.ask_ml_team, ask_ml_team)
    on(ActionId.digest_thread, open_digest_thread)

    @router.on(ActionId.view_details, ActionId.model_card)
    def open_page(ack: Ack, body: dict, client: WebClient, respond, context: dict) -> None:
        """View details / Model card: answer the clicker alone with a dashboard link signed for them."""
        ack()
        action, actor = body["actions"][0], context["actor"]
        if not action.get("value"):
            return  # the signed link's own button: the browser opens it, there is nothing to answer
        try:
            if actor.person is None:
                raise FlywheelError("You're not set up in Flywheel yet, so the dashboard has nothing to show you. "
                                    "Ask an admin to add you to a project spec's people.")
            signer = Signer(ops.settings)
            url, expires = signer.link(action["value"], slack_id=actor.slack_id, now=ops.clock(), team=actor.team)
            text, blocks = page_link(url, describe(signer.page_path(action["value"])), expires,
                                     ActionId(action["action_id"]))
        except FlywheelError as exc:
            text, blocks = str(exc), []
        if body.get("response_url"):
            ops.later(lambda: respond(text=text, blocks=[b.to_dict() for b in blocks] or None,
                                      response_type="ephemeral", replace_original=False))
        else:  # App Home: no message to answer under, and trigger_id lives for 3 seconds
            client.views_open(trigger_id=body["trigger_id"], view=notice_modal(blocks or text))
