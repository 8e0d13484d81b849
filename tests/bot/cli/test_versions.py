"""`flywheel versions list` and `versions register`: a model's versions, and a file the team already has
registered as a candidate or adopted as the version serving today, on the artifact rules."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.bot.cli.conftest import LENA, RECENT, v1_file
from tests.support.slack_world import ELI, MODEL, NOOR, register_fraud_model


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_register_production_is_an_adoption_with_metrics_on_the_latest_window(recent):
    adopted = recent("versions", "register", MODEL, "--artifact", str(v1_file(recent.folder)), "--production",
                     "--as", ELI)
    assert adopted.exit_code == 0, adopted.output
    first, second = adopted.output.splitlines()
    assert first.startswith(f"Adopted {MODEL} v1 as the version in production (SHA-256 ")
    assert second.startswith("Its metrics on the labelled window ") and "recall 0." in second
    assert "precision 0." in second and "roc_auc 0." in second
    assert recent.stages() == {1: "production"}
    [event] = recent.audit("version.adopted")
    assert (event.actor, event.subject) == (ELI, f"model:{MODEL}/v1")
    assert recent.audit("version.compared")[0].details["champion"] is None
    listed = recent("versions", "list", MODEL)
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert cells(header) == ["version", "stage", "trained on", "metrics", "sign-off", "who / when"]
    version, stage, trained, metrics, sign_off, who = cells(row)
    assert (version, stage, trained, sign_off) == ("v1", "production", "-", "adopted without sign-off")
    assert metrics.startswith("recall 0.") and "roc_auc" in metrics
    assert who.startswith("registered by Eli ") and "; in production since " in who and who.endswith(" by Eli")


def test_register_production_is_refused_while_a_version_serves(cli):
    copy = cli.folder / "artifacts" / "adopt-me.joblib"
    shutil.copyfile(v1_file(cli.folder), copy)
    refused = cli("versions", "register", MODEL, "--artifact", str(copy), "--production", "--as", ELI)
    assert refused.exit_code == 2
    assert refused.output == (f"Error: {MODEL} already has v1 in production, so it can't adopt another: register the "
                              "file without --production, then submit, sign off and deploy it.\n")
    assert [e.actor for e in cli.audit("version.adopt.refused")] == [ELI]
    assert cli.stages() == {1: "production"}


def test_register_a_candidate_compares_it_with_production(db, recent_data, tmp_path):
    from tests.bot.cli.conftest import Cli

    register_fraud_model(db, recent_data, RECENT)
    cli = Cli(db, recent_data, tmp_path)
    copy = recent_data / "artifacts" / f"team-{tmp_path.name}.joblib"
    shutil.copyfile(v1_file(recent_data), copy)
    registered = cli("versions", "register", MODEL, "--artifact", copy.as_uri(), "--as", "noor")
    assert registered.exit_code == 0, registered.output
    first, second = registered.output.splitlines()
    assert first.startswith(f"Registered {MODEL} v2 as a candidate (SHA-256 ")
    assert second.startswith("Compared with production on the latest labelled window: recall 0.")
    assert cli.stages() == {1: "production", 2: "candidate"}
    assert [(e.actor, e.subject) for e in cli.audit("version.registered")][-1] == (NOOR, f"model:{MODEL}/v2")
    version, stage, trained, metrics, sign_off, who = cells(cli("versions", "list", MODEL).output.splitlines()[1])
    assert (version, stage, trained, sign_off) == ("v2", "candidate", "-", "not submitted")
    assert metrics.startswith("recall 0.") and who.startswith("registered by Noor")


def test_register_refuses_files_outside_the_roots_and_people_without_the_role(cli, tmp_path):
    outside = tmp_path / "model.joblib"
    shutil.copyfile(v1_file(cli.folder), outside)
    refused = cli("versions", "register", MODEL, "--artifact", str(outside), "--as", ELI)
    assert refused.exit_code == 2 and "outside the artifact roots" in refused.output
    assert [e.actor for e in cli.audit("version.register.refused")] == [ELI]
    inside = cli.folder / "artifacts" / f"lena-{tmp_path.name}.joblib"
    shutil.copyfile(v1_file(cli.folder), inside)
    lena = cli("versions", "register", MODEL, "--artifact", str(inside), "--as", LENA)
    assert lena.exit_code == 2
    assert "Registering a version of fraud-detector needs the ML engineer role on Card fraud detection" in lena.output
    assert cli.stages() == {1: "production"}


def test_list_shows_sign_off_state_and_refuses_an_unknown_model(cli):
    cli.add_candidate()
    assert cli("submit", MODEL, "2", "--as", ELI).exit_code == 0
    assert cli("approve", MODEL, "2", "--reason", "fine", "--as", NOOR).exit_code == 0
    lines = cli("versions", "list", MODEL).output.splitlines()
    assert cells(lines[1])[:5] == ["v2", "in review", "-", "recall 0.810, precision 0.620, roc_auc 0.930",
                                   "waiting for risk review: 0 of 1; signed technical validation by Noor"]
    assert cells(lines[2])[:5] == ["v1", "production", "Sep 21, 2026 to Sep 28, 2026",
                                   "recall 0.700, precision 0.620, roc_auc 0.930", "adopted without sign-off"]
    unknown = cli("versions", "list", "fraud-detectr")
    assert unknown.exit_code == 2
    assert unknown.output == "Error: No model called fraud-detectr. Did you mean fraud-detector?\n"


def test_an_adoption_without_labelled_rows_lately_still_adopts_and_says_why_there_are_no_metrics(db, fraud_data,
                                                                                                   tmp_path):
    from bot.services.specs import apply_spec
    from jobs.spec import load_spec
    from tests.bot.cli.conftest import Cli

    with db.session() as s:  # the Slack tests' data ends weeks before today
        apply_spec(session=s, loaded=load_spec(fraud_data / "card-fraud.yml"))
    cli = Cli(db, fraud_data, tmp_path)
    adopted = cli("versions", "register", MODEL, "--artifact", str(v1_file(fraud_data)), "--production",
                  "--as", ELI)
    assert adopted.exit_code == 0, adopted.output
    first, second = adopted.output.splitlines()
    assert first.startswith(f"Adopted {MODEL} v1 as the version in production")
    assert second.startswith(f"Its metrics could not be computed: no labelled rows for {MODEL} between ")
    assert cli.stages() == {1: "production"} and len(cli.audit("version.adopted")) == 1


@pytest.mark.parametrize("command", [["versions", "list"], ["versions", "register"], ["retrain"], ["submit"],
                                     ["approve"], ["reject"], ["deploy"], ["rollback"], ["link"], ["dashboard"]])
def test_every_new_command_has_help(command):
    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output
    if command not in (["versions", "list"], ["dashboard"]):
        assert "FLYWHEEL_AS" in result.output
