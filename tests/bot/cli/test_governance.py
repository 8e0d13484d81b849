"""`flywheel submit`, `approve`, `reject`, `deploy`, `rollback` and `retrain`: Slack's governed buttons from
the terminal, acting as the person named with --as, on the same rules and audit log."""

from __future__ import annotations

from tests.bot.cli.conftest import LENA, RECENT
from tests.support.slack_world import ELI, MODEL, NOOR, OMAR, RITA, register_fraud_model


def _signed_off(cli, number: int) -> None:
    assert cli("submit", MODEL, f"v{number}", "--as", ELI).exit_code == 0
    assert cli("approve", MODEL, str(number), "--reason", "holds up on the holdout", "--as", NOOR).exit_code == 0
    assert cli("approve", MODEL, f"v{number}", "--reason", "risk accepted", "--as", "rita").exit_code == 0


def test_submit_sign_and_deploy_as_the_buttons_do(cli):
    number = cli.add_candidate()
    submitted = cli("submit", MODEL, f"v{number}", "--as", ELI)
    assert submitted.exit_code == 0, submitted.output
    assert submitted.output.startswith(f"{MODEL} v2 submitted for sign-off by Eli. Waiting for: technical validation")
    early = cli("deploy", MODEL, "2", "--as", ELI)
    assert early.exit_code == 2
    assert early.output.startswith(f"Error: {MODEL} v2 can't be deployed yet. Waiting for: technical validation: "
                                   "0 of 1, risk review: 0 of 1.")
    # The refusal is audited twice, as the Slack button's is: by the service and as the deploy request noted.
    assert {e.actor for e in cli.audit("deploy.refused")} == {ELI}
    assert cli.stages() == {1: "production", 2: "in_review"}
    noor = cli("approve", MODEL, "v2", "--reason", "holds up on the holdout", "--as", "Noor")
    assert noor.exit_code == 0, noor.output
    assert 'Approved by Noor (technical validation)' in noor.output and '"holds up on the holdout"' in noor.output
    assert "still waits for other sign-offs" in noor.output
    rita = cli("approve", MODEL, "2", "--reason", "risk accepted", "--as", RITA)
    assert rita.exit_code == 0 and "Every sign-off is in: `flywheel deploy fraud-detector v2`" in rita.output
    deployed = cli("deploy", MODEL, "v2", "--as", NOOR)
    assert deployed.exit_code == 0, deployed.output
    assert deployed.output == f"{MODEL} v2 is live. Previous production version: v1.\n"
    assert cli.stages() == {1: "archived", 2: "production"}
    actions = [e.action for e in cli.audit() if e.subject.startswith(f"model:{MODEL}/v2")]
    assert actions[-4:] == ["signoff.approve", "signoff.approve", "version.approved", "version.deployed"]
    again = cli("deploy", MODEL, "v2", "--as", NOOR)
    assert again.exit_code == 0 and again.output.startswith(f"{MODEL} v2 is already in production (deployed by Noor")
    assert again.output.endswith("UTC). Nothing changed.\n")


def test_a_person_with_roles_on_another_project_only_is_refused_and_nothing_changes(cli):
    number = cli.add_candidate()
    before = len(cli.audit())
    for args, action in ((["submit", MODEL, "v2"], "version.submit.refused"),
                         (["deploy", MODEL, "v2"], "deploy.refused"),
                         (["rollback", MODEL, "--to", "v1"], "rollback.refused"),
                         (["approve", MODEL, "v2", "--reason", "fine"], "signoff.approve.refused"),
                         (["retrain", MODEL], "retrain.refused")):
        refused = cli(*args, "--as", LENA)
        assert refused.exit_code == 2, refused.output
        assert len(refused.output.strip().splitlines()) == 1
        assert [e.actor for e in cli.audit(action)] == [LENA], action
    assert "needs the ML engineer role on Card fraud detection; you have none there." in \
        cli("submit", MODEL, "v2", "--as", "Lena").output
    rollback = cli("rollback", MODEL, "--to", "v1", "--as", LENA).output
    assert "needs the IT operations or ML engineer role on Card fraud detection" in rollback
    assert cli.stages() == {1: "production", number: "candidate"}
    assert all(e.action.endswith(".refused") for e in cli.audit()[before:])


def test_an_unknown_person_version_or_model_is_refused_in_one_line(cli):
    cli.add_candidate()
    unknown = cli("submit", MODEL, "v2", "--as", "U0NOBODY")
    assert unknown.exit_code == 2
    assert unknown.output == ("Error: U0NOBODY is not a Flywheel user: add them to a project spec's people "
                              "(`- {slack_id: U..., name: ..., roles: [...]}`) and run `flywheel apply SPEC.yml`.\n")
    missing = cli("submit", MODEL, "v9", "--as", ELI)
    assert missing.exit_code == 2 and missing.output == f"Error: {MODEL} has no version v9. Versions: v1, v2.\n"
    for bad in ("two", "v", "2.0", "v2b", "V 2"):
        worded = cli("deploy", MODEL, bad, "--as", ELI)
        assert worded.exit_code != 0 and "is not a version: use its number, e.g. 2 or v2" in worded.output, bad
    model = cli("submit", "fraud-detectr", "2", "--as", ELI)
    assert model.exit_code == 2 and "No model called fraud-detectr. Did you mean fraud-detector?" in model.output
    nobody = cli("submit", MODEL, "2")
    assert nobody.exit_code == 2 and "Missing option '--as'" in nobody.output
    from_env = cli("submit", MODEL, "2", FLYWHEEL_AS=ELI)
    assert from_env.exit_code == 0 and "submitted for sign-off by Eli" in from_env.output


def test_approve_and_reject_need_a_reason(cli):
    cli.add_candidate()
    assert cli("submit", MODEL, "2", "--as", ELI).exit_code == 0
    for verb in ("approve", "reject"):
        bare = cli(verb, MODEL, "v2", "--as", NOOR)
        assert bare.exit_code == 2 and "Missing option '--reason'" in bare.output
        blank = cli(verb, MODEL, "v2", "--reason", "  ", "--as", NOOR)
        assert blank.exit_code == 2 and "say why with --reason" in blank.output
    assert not cli.audit("signoff.approve") and not cli.audit("signoff.reject")
    rejected = cli("reject", MODEL, "v2", "--reason", "recall <0.5 & falling", "--as", NOOR)
    assert rejected.exit_code == 0, rejected.output
    assert 'Rejected by Noor (technical validation)' in rejected.output and '"recall <0.5 & falling"' in rejected.output
    assert cli.stages()[2] == "rejected"
    assert cli.audit("signoff.reject")[0].actor == NOOR
    stale = cli("approve", MODEL, "v2", "--reason", "looked fine to me", "--as", RITA)
    assert stale.exit_code == 2
    assert stale.output.startswith(f"Error: {MODEL} v2 is no longer waiting for sign-off: ")
    assert "v2 was rejected by Noor, " in stale.output and stale.output.endswith("Your sign-off was not recorded.\n")
    assert [e.actor for e in cli.audit("signoff.approve.refused")] == [RITA]
    assert cli.stages()[2] == "rejected"


def test_rollback_to_the_version_in_production_changes_nothing(cli):
    cli.add_candidate()
    _signed_off(cli, 2)
    assert cli("deploy", MODEL, "2", "--as", ELI).exit_code == 0
    same = cli("rollback", MODEL, "--to", "v2", "--as", OMAR)
    assert same.exit_code == 0, same.output
    assert same.output.startswith(f"{MODEL} is already on v2 (deployed by Eli, ")
    assert same.output.endswith("UTC). Nothing changed.\n")
    assert cli.stages() == {1: "archived", 2: "production"}
    back = cli("rollback", MODEL, "--to", "1", "--as", OMAR)
    assert back.exit_code == 0, back.output
    assert back.output.startswith("Rolled back by Omar, ") and f"{MODEL} v1 is live again, v2 stopped." in back.output
    assert cli.stages() == {1: "production", 2: "archived"}
    assert [e.actor for e in cli.audit("version.rolled_back")] == [OMAR]


def test_retrain_runs_here_and_says_what_it_made(db, recent_data, tmp_path):
    from tests.bot.cli.conftest import Cli

    register_fraud_model(db, recent_data, RECENT)
    cli = Cli(db, recent_data, tmp_path)
    done = cli("retrain", MODEL, "--reason", "card-age drift", "--as", ELI)
    assert done.exit_code == 0, done.output
    assert done.output == (f"Retrained {MODEL}: v2 is a candidate, compared with production. "
                           f"Next: `flywheel submit {MODEL} v2`.\n")
    assert cli.stages() == {1: "production", 2: "candidate"}
    [requested] = cli.audit("work.retrain.requested")
    assert requested.actor == ELI
    assert cli.audit("version.compared")[-1].subject == f"model:{MODEL}/v2"
    queued = cli("retrain", MODEL, "--no-wait", "--as", NOOR)
    assert queued.exit_code == 0
    assert queued.output == f"Retraining {MODEL}. Queued: `flywheel worker` trains it and posts when the new version " \
                            "is ready.\n"
    again = cli("retrain", MODEL, "--as", ELI)
    assert again.exit_code == 0
    assert again.output == f"{MODEL} is already retraining (requested by Noor). It is queued for `flywheel worker`.\n"
    assert cli.stages() == {1: "production", 2: "candidate"}
