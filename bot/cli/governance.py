"""`flywheel retrain`, `submit`, `approve`, `reject`, `deploy` and `rollback`: the governed actions of Slack's
buttons, from the terminal. Each goes through the same operation as the button (the person's roles on the
model's project, the blueprint's sign-offs, the audit log), acting as the person named with --as."""

from __future__ import annotations

import click

from bot.cli.acting import WORK_SECONDS, as_option, operations, plain, version_number
from bot.cli.common import Failure

VERSION_HELP = "VERSION is a version number: 2 or v2."
SLACK_PROMISE = " I'll post here when the new version is ready."  # the end of the service's sentence, for a Slack thread


@click.command()
@click.argument("model")
@click.option("--reason", default="", help="Why, for the messages and the audit log.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Train here and wait for the new version; --no-wait queues it for `flywheel worker`.")
@as_option
def retrain(model: str, reason: str, wait: bool, who: str) -> None:
    """Retrain MODEL on its latest labelled data and compare the new version with production (needs the ML
    engineer role on its project). Backends other than `python` hand the training to the team's trainer."""
    from store.models import WorkState

    with operations(inline=wait) as ops:
        actor = ops.people.named(who)
        said = plain(ops.retraining.request_retrain(actor, model, reason=reason.strip()), ops)
        if not wait:
            if said.endswith(SLACK_PROMISE):
                said = f"{said.removesuffix(SLACK_PROMISE)} Queued: `flywheel worker` trains it and posts when the " \
                       "new version is ready."
            click.echo(said)
            return
        ops.runner.join(timeout=WORK_SECONDS)
        outcome = ops.retraining.retrain_outcome(model)
    if outcome is None or outcome.state in (WorkState.queued, WorkState.running):
        # one asked earlier is under way: in another process, or queued for the worker (--no-wait)
        click.echo(said + (" It is queued for `flywheel worker`." if outcome and outcome.state == WorkState.queued
                           else ""))
    elif outcome.state == WorkState.failed:
        raise Failure(f"Retraining {model} failed: {outcome.error}")
    elif outcome.state == WorkState.dispatched:
        click.echo(f"Retraining {model}: handed to its {outcome.backend} trainer, which registers the new version "
                   "when it calls back.")
    elif not outcome.compared:
        click.echo(f"Retrained {model}: v{outcome.version} is a candidate, but its comparison with production "
                   f"failed (the reason went to the ML engineers). See `flywheel versions list {model}`.")
    else:
        click.echo(f"Retrained {model}: v{outcome.version} is a candidate, compared with production. "
                   f"Next: `flywheel submit {model} v{outcome.version}`.")


@click.command(help="Ask for sign-off of MODEL VERSION, as its Submit for sign-off button does. " + VERSION_HELP)
@click.argument("model")
@click.argument("version")
@as_option
def submit(model: str, version: str, who: str) -> None:
    number = version_number(version)
    with operations() as ops:
        click.echo(plain(ops.releases.submit(ops.people.named(who), model, number), ops))


def _sign(model: str, version: str, reason: str, who: str, approve: bool) -> None:
    from store.models import Decision

    number = version_number(version)
    if not reason.strip():
        raise Failure(f"say why with --reason: a sign-off decision of {model} v{number} is recorded with its reason")
    with operations() as ops:
        note, over = ops.releases.sign(ops.people.named(who), model, number,
                                       Decision.approve if approve else Decision.reject, reason.strip())
        click.echo(plain(note, ops))
    if approve and over:
        click.echo(f"Every sign-off is in: `flywheel deploy {model} v{number}` puts it in production.")
    elif approve:
        click.echo(f"{model} v{number} still waits for other sign-offs (`flywheel versions list {model}`).")


@click.command(help="Sign off the blueprint step of MODEL VERSION that is yours to sign. " + VERSION_HELP)
@click.argument("model")
@click.argument("version")
@click.option("--reason", required=True, help="Why you approve, for the audit log and the model card.")
@as_option
def approve(model: str, version: str, reason: str, who: str) -> None:
    _sign(model, version, reason, who, approve=True)


@click.command(help="Reject MODEL VERSION at the blueprint step that is yours to sign. " + VERSION_HELP)
@click.argument("model")
@click.argument("version")
@click.option("--reason", required=True, help="Why you reject it, for the ML engineers and the audit log.")
@as_option
def reject(model: str, version: str, reason: str, who: str) -> None:
    _sign(model, version, reason, who, approve=False)


@click.command(help="Put MODEL VERSION in production once every sign-off is in (needs the ML engineer role). "
                    + VERSION_HELP)
@click.argument("model")
@click.argument("version")
@as_option
def deploy(model: str, version: str, who: str) -> None:
    from store.governance import Settled

    number = version_number(version)
    with operations() as ops:
        try:
            click.echo(plain(ops.releases.deploy(ops.people.named(who), model, number).note, ops))
        except Settled as exc:
            if not exc.already:
                raise
            click.echo(plain(str(exc), ops))  # says "Nothing changed."


@click.command()
@click.argument("model")
@click.option("--to", "to", metavar="VERSION", help="The version to return to (2 or v2). Default: the one that "
                                                    "served before the current one.")
@as_option
def rollback(model: str, to: str | None, who: str) -> None:
    """Return MODEL's production to an earlier version (needs the IT operations or ML engineer role). Rolling
    back to the version already in production changes nothing and exits 0."""
    from store.governance import Settled

    number = version_number(to) if to is not None else None
    with operations() as ops:
        try:
            click.echo(plain(ops.releases.rollback(ops.people.named(who), model, to=number), ops))
        except Settled as exc:
            if not exc.already:
                raise
            click.echo(plain(str(exc), ops))  # says "Nothing changed."
