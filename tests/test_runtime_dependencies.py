"""`pip install -e .` alone must be enough to run flywheel.

The suite always runs with the test extra installed, so a package the code needs but only an extra (or a
test dependency's dependency) brings would pass every other test and break a fresh install, as greenlet
once did. Here a subprocess hides every installed distribution outside the runtime closure of flywheel's
own `dependencies` (followed through the extras they ask for, such as `sqlalchemy[asyncio]`), then
imports every module of the four packages and runs the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: computes the closure, installs the blocking finder, imports, reports JSON.
PROBE = textwrap.dedent(r'''
    import importlib, importlib.metadata as md, json, pkgutil, sys, traceback
    from packaging.requirements import Requirement

    def norm(name):
        return name.lower().replace("_", "-").replace(".", "-")

    def closure():
        wanted, queue = set(), [("flywheel", frozenset())]
        while queue:
            name, extras = queue.pop()
            key = (norm(name), extras)
            if key in wanted:
                continue
            wanted.add(key)
            try:
                dist = md.distribution(name)
            except md.PackageNotFoundError:
                continue
            for text in dist.requires or []:
                req = Requirement(text)
                envs = [{"extra": e} for e in extras] or [{"extra": ""}]
                if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                    queue.append((req.name, frozenset(req.extras)))
        return {name for name, _ in wanted}

    allowed = closure()
    owners = md.packages_distributions()
    hidden = {top: dists for top, dists in owners.items()
              if not any(norm(d) in allowed for d in dists) and top not in sys.stdlib_module_names}
    ours = {"bot", "jobs", "store", "handlers"}

    class Hide:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in hidden and top not in ours:
                raise ModuleNotFoundError(f"No module named {name!r} (installed only by {hidden[top]})",
                                          name=name)
            return None

    sys.meta_path.insert(0, Hide())
    failures = {}
    for package in sorted(ours):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if ".migrations" in info.name or info.name.endswith(".__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except ModuleNotFoundError as exc:
                failures[info.name] = [exc.name, str(exc)]
            except Exception as exc:
                failures[info.name] = [None, f"{exc.__class__.__name__}: {exc}"]
    from click.testing import CliRunner
    from bot.cli import main
    result = CliRunner().invoke(main, ["--help"])
    print(json.dumps({"failures": failures, "help_exit": result.exit_code, "help": result.output[:200],
                      "hidden": sorted(hidden)}))
''')


def _extras_modules() -> set[str]:
    """Top-level modules that flywheel's optional extras bring: a module for an optional integration may
    import them, as long as the commands themselves don't."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    extras = {Requirement(r).name.lower().replace("_", "-") for r in md.distribution("flywheel").requires or []
              if "extra ==" in r and '"test"' not in r and "'test'" not in r}
    return {top for top, dists in md.packages_distributions().items()
            if any(d.lower().replace("_", "-") in extras for d in dists)}


@pytest.fixture(scope="module")
def report() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_module_imports_with_only_the_runtime_dependencies_installed(report: dict) -> None:
    # The probe must really hide something: the test extra's own packages are outside the runtime closure.
    assert {"pytest", "moto"} <= set(report["hidden"])
    optional = _extras_modules()
    unexpected = {module: message for module, (missing, message) in report["failures"].items()
                  if (missing or "").partition(".")[0] not in optional}
    assert not unexpected, f"modules that need a package `pip install -e .` does not bring: {unexpected}"
    assert report["help_exit"] == 0, report["help"]


def test_the_commands_need_no_optional_extra(report: dict) -> None:
    """The modules every command goes through import without any extra: only integrations may need one."""
    core = ("bot.cli", "bot.app", "bot.web", "bot.demo", "bot.api", "handlers", "jobs.worker", "jobs.monitor",
            "store.db", "store.installations")
    on_the_path = {m: f for m, f in report["failures"].items() if m.startswith(core)}
    assert not on_the_path, on_the_path
