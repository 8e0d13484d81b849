"""The layers point one way, nothing imports in a circle, handlers never query the store, and no source
module is too long to read (docs/architecture.md says what lives where and why)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.architecture import MAX_LINES, read_shape

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shape():
    return read_shape(ROOT)


def test_each_layer_imports_only_from_the_layers_below_it(shape):
    assert shape.upward == []


def test_no_module_imports_itself_through_others(shape):
    assert shape.cycles == []


def test_handlers_reach_the_store_only_through_services(shape):
    assert shape.handler_store == []


def test_no_source_module_is_over_the_limit(shape):
    assert shape.long == [], f"split modules over {MAX_LINES} lines by responsibility"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for top in ("store", "jobs", "bot", "handlers"):
        (root / top).mkdir(exist_ok=True)
        (root / top / "__init__.py").touch()
    return root


def test_the_check_sees_each_kind_of_breach(tmp_path):
    """The checks above would pass on an empty tree; this one proves they read imports as Python does."""
    root = _tree(tmp_path, {
        "store/db.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from jobs.sources import Source\n",
        "jobs/a.py": "def f():\n    from jobs import b\n",
        "jobs/b.py": "from . import a\n",
        "handlers/commands.py": "from store import registry\nfrom store.models import Role\nfrom store.errors import NotFound\n",
        "store/registry.py": "x = 1\n" * (MAX_LINES + 1),
        "bot/app.py": "from handlers import commands\n",
        "bot/web.py": "from handlers import commands\n",
    })
    shape = read_shape(root)
    assert sorted(shape.upward) == ["bot/web.py:1 imports handlers.commands", "store/db.py:3 imports jobs.sources"]
    assert shape.cycles == [["jobs.a", "jobs.b"]]
    assert shape.handler_store == ["handlers/commands.py:1 imports store.registry"]
    assert shape.long == [f"store/registry.py has {MAX_LINES + 1} lines"]
