"""`flywheel apply` with a blueprint library: library and projects in any order, the library stored for a
project applied later, and a library applied alone re-syncing the projects that use it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from store import registry
from tests.support.projects import write_project_with_production

INLINE = """\
blueprint:
  name: standard
  steps:
    - {name: technical validation, role: ml_engineer}
"""
LIBRARY = """\
blueprints:
  - name: reviewed
    tiers: [medium]
    steps:
      - {name: technical validation, role: ml_engineer}
"""


@pytest.fixture
def run(tmp_path, database_url):
    env = {"FLYWHEEL_DATABASE_URL": database_url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
           "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), "SLACK_BOT_TOKEN": None, "SLACK_SIGNING_SECRET": None,
           "SLACK_APP_TOKEN": None}
    return lambda *args: CliRunner().invoke(main, ["apply", *(str(a) for a in args)], env=env)


def _project(folder, **kwargs):
    folder.mkdir(parents=True)
    path = write_project_with_production(folder, **kwargs)
    path.write_text(path.read_text().replace(INLINE, ""))
    return path


def test_the_library_is_stored_for_later_projects_and_reapplied_alone_reaches_them(run, db, tmp_path):
    library = tmp_path / "blueprints.yml"
    library.write_text(LIBRARY)
    loans = _project(tmp_path / "loans")
    first = run(loans, library)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[0] == "blueprint library blueprints.yml: 1 change(s)"

    cards = _project(tmp_path / "cards", project="cards", model="card-risk")
    later = run(cards)  # the registry's library chooses its blueprint
    assert later.exit_code == 0, later.output

    library.write_text(LIBRARY + "      - {name: risk review, role: risk_manager}\n")
    alone = run(library)
    assert alone.exit_code == 0, alone.output
    assert "cards: 1 change(s)\n  added blueprint step risk review" in alone.output
    assert "loans: 1 change(s)\n  added blueprint step risk review" in alone.output
    with db.read() as s:
        for key in ("loans", "cards"):
            steps = registry.get_project(session=s, key=key).blueprint.steps
            assert [st.name for st in steps] == ["technical validation", "risk review"]


def test_a_project_naming_an_unknown_blueprint_is_refused_with_its_line(run, tmp_path):
    loans = _project(tmp_path / "loans")
    loans.write_text(loans.read_text().replace("channels:", "blueprint: strict\nchannels:"))
    refused = run(loans)
    assert refused.exit_code == 2, refused.output
    line = next(i for i, text in enumerate(loans.read_text().splitlines(), start=1) if text == "blueprint: strict")
    assert f"{loans}:{line} blueprint: unknown blueprint 'strict'; the library is empty" in refused.output
    assert "nothing was applied" in refused.output
