"""`flywheel catalog add | search | remove | sync` as a user runs them, on a real registry."""

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.support.projects import write_project_with_production


@pytest.fixture
def run(tmp_path, database_url):
    env = {"FLYWHEEL_DATABASE_URL": database_url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
           "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), "SLACK_BOT_TOKEN": None, "SLACK_SIGNING_SECRET": None,
           "SLACK_APP_TOKEN": None}

    def invoke(*args):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    invoke("apply", str(write_project_with_production(tmp_path)))
    return invoke


@pytest.mark.parametrize("command", [["catalog"], ["catalog", "add"], ["catalog", "search"], ["catalog", "remove"],
                                     ["catalog", "sync"]])
def test_every_catalog_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output


def test_add_then_search_then_remove(run):
    added = run("catalog", "add", "--kind", "notebook", "--title", "Loan feature exploration", "--owner", "U0ML0002",
                "--project", "loans", "--tag", "eda", "--link", "https://github.com/acme/loans/eda.ipynb",
                "--description", "Income and debt distributions per region")
    assert added.exit_code == 0
    assert added.output == ("Added notebook 'Loan feature exploration' owned by Noor "
                            "(key notebook:loans/loan-feature-exploration)\n")
    found = run("catalog", "search", "distributions", "kind:notebook")
    assert found.exit_code == 0
    assert found.output.splitlines()[1].split() == ["Loan", "feature", "exploration", "notebook", "loans", "Noor", "-",
                                                    found.output.splitlines()[1].split()[7],
                                                    "notebook:loans/loan-feature-exploration"]
    removed = run("catalog", "remove", "notebook:loans/loan-feature-exploration")
    assert removed.exit_code == 0 and removed.output == "Removed notebook:loans/loan-feature-exploration\n"
    assert run("catalog", "search", "distributions").output == "Nothing in the catalog matches 'distributions'.\n"


def test_the_registry_is_in_the_catalog_after_apply(run):
    listed = run("catalog", "search", "project:loans", "--limit", "2")
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == 4  # header, 2 rows, "More results"
    assert listed.output.splitlines()[-1] == "More results: add --limit 4."
    synced = run("catalog", "sync")
    assert synced.exit_code == 0 and synced.output == "Synced the registry assets of 1 project(s)\n"


def test_bad_input_fails_with_one_line(run):
    bad_link = run("catalog", "add", "--kind", "dashboard", "--title", "X", "--owner", "U0ML0001", "--link", "ftp://x")
    assert bad_link.exit_code == 2 and bad_link.output == "Error: links[0]: expected an http(s) URL, got 'ftp://x'\n"
    nobody = run("catalog", "add", "--kind", "dashboard", "--title", "X", "--owner", "@zed")
    assert nobody.exit_code == 2 and nobody.output == "Error: No one called @zed is in Flywheel.\n"
    registry_asset = run("catalog", "remove", "model:default-risk")
    assert registry_asset.exit_code == 2 and "follows the registry" in registry_asset.output
    typo = run("catalog", "search", "kind:notebok")
    assert typo.exit_code == 2 and "Did you mean kind:notebook?" in typo.output
    suggested = run("catalog", "search", "lon")
    assert suggested.output == "Nothing in the catalog matches 'lon'. Closest known: 'Loan defaults'.\n"
