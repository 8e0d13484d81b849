"""`flywheel apply` with a blueprint library: library and projects in any order, the library stored for a
project applied later, and a library applied alone re-syncing the projects that use it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.services.library import stored_library
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


STRICT = """\
  - name: strict
    steps:
      - {name: technical validation, role: ml_engineer}
      - {name: risk review, role: risk_manager}
"""


@pytest.fixture
def applied(run, tmp_path):
    """loans takes reviewed by its risk tier (medium), cards names strict; both applied with the library."""
    library = tmp_path / "blueprints.yml"
    library.write_text(LIBRARY + STRICT)
    loans = _project(tmp_path / "loans")
    cards = _project(tmp_path / "cards", project="cards", model="card-risk")
    cards.write_text(cards.read_text().replace("channels:", "blueprint: strict\nchannels:"))
    done = run(library, loans, cards)
    assert done.exit_code == 0, done.output
    return library, loans, cards


def _stored(db) -> tuple[list[str], dict[str, tuple[str, list[str]]]]:
    with db.read() as s:
        library = sorted(stored_library(session=s))
        blueprints = {key: (registry.get_project(session=s, key=key).blueprint.library,
                            [st.name for st in registry.get_project(session=s, key=key).blueprint.steps])
                      for key in ("loans", "cards")}
    return library, blueprints


def test_a_blueprint_left_out_of_the_library_while_a_project_names_it_is_refused(run, db, applied):
    library, _, _ = applied
    before = _stored(db)
    library.write_text(LIBRARY.replace("technical validation", "model review"))

    refused = run(library)

    assert refused.exit_code == 2, refused.output
    assert refused.output.strip().splitlines() == [
        "Error: blueprint strict is left out of blueprints.yml, but project cards (by name) still uses it: keep it "
        "in the file, or give cards another blueprint first (blueprint: NAME in its spec, applied with the file); "
        "nothing was applied"]
    assert _stored(db) == before  # reviewed's change was not stored either


def test_a_blueprint_left_out_while_a_project_takes_it_by_its_risk_tier_is_refused(run, db, applied):
    library, _, _ = applied
    before = _stored(db)
    library.write_text("blueprints:\n" + STRICT)

    refused = run(library)

    assert refused.exit_code == 2, refused.output
    assert refused.output.strip().splitlines() == [
        "Error: blueprint reviewed is left out of blueprints.yml, but project loans (by its risk tier, medium, "
        "which no other blueprint lists) still uses it: keep it in the file, or give loans another blueprint first "
        "(blueprint: NAME in its spec, applied with the file, or list its tier in another blueprint); nothing "
        "was applied"]
    assert _stored(db) == before


def test_a_blueprint_no_project_uses_any_more_is_removed_with_the_file(run, db, applied):
    library, _, cards = applied
    cards.write_text(cards.read_text().replace("blueprint: strict", "blueprint: reviewed"))
    library.write_text(LIBRARY.replace("tiers: [medium]", "tiers: [medium, high]"))

    moved = run(library, cards)

    assert moved.exit_code == 0, moved.output
    assert "  removed library blueprint strict" in moved.output
    library_now, blueprints = _stored(db)
    assert library_now == ["reviewed"]
    assert blueprints["cards"] == ("reviewed", ["technical validation"])


def test_a_project_taking_a_removed_blueprint_by_its_tier_moves_to_the_one_now_listing_it(run, db, applied):
    library, _, _ = applied
    library.write_text(LIBRARY.replace("name: reviewed", "name: reviewed-2")
                       + "      - {name: risk review, role: risk_manager}\n" + STRICT)

    moved = run(library)

    assert moved.exit_code == 0, moved.output
    assert "  removed library blueprint reviewed" in moved.output
    library_now, blueprints = _stored(db)
    assert library_now == ["reviewed-2", "strict"]
    assert blueprints["loans"] == ("reviewed-2", ["technical validation", "risk review"])
