"""The `flywheel` command. Each subcommand fails with a one-line reason and exit code 2, `--verbose` adding the
traceback (common.py: Failure, FlywheelGroup).

Subcommands by group: registry.py (demo, apply, check, models), serving.py (serve, worker, run),
admin.py (report, db, audit, artifacts), catalog.py (catalog), versions.py (versions list, register),
governance.py (retrain, submit, approve, reject, deploy, rollback: Slack's governed buttons, as --as),
dashboard.py (link, dashboard), evidence.py (evidence), doctor.py (doctor), mlflow.py (mlflow sync).
"""

from __future__ import annotations

import click

from bot.cli import admin, catalog, dashboard, doctor, evidence, governance, mlflow, registry, serving, versions
from bot.cli.common import Failure, FlywheelGroup


@click.group(cls=FlywheelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what is happening, and show the traceback of a failure.")
def main(verbose: bool) -> None:
    """Flywheel: chat-ops for the models your team runs in production."""
    from bot.logs import LogSetupError, configure

    try:
        configure(verbose=verbose)  # FLYWHEEL_LOG_FORMAT, FLYWHEEL_LOG_LEVEL, SENTRY_DSN
    except LogSetupError as exc:
        raise Failure(str(exc)) from None


for command in (registry.demo, registry.apply, registry.check, registry.models, serving.serve, serving.worker,
                serving.run, admin.report, admin.db, admin.audit, admin.artifacts, catalog.catalog, versions.versions,
                governance.retrain, governance.submit, governance.approve, governance.reject, governance.deploy,
                governance.rollback, dashboard.link, dashboard.dashboard, evidence.evidence, doctor.doctor,
                mlflow.mlflow):
    main.add_command(command)
