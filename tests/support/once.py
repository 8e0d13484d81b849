"""Expensive session set-up done once per test run, however many pytest-xdist workers share it.

Under xdist every worker is a session of its own. What a session fixture builds into a folder (the README's
demo, the fraud data, the migrated SQLite template) is built by the first worker that asks, under a file
lock in the run's shared temporary folder (pytest-xdist's "Making session-scoped fixtures execute only
once"), and each worker gets its own copy of it, so tests that add files to it (candidate artifacts) or
open its databases never meet another worker's. Without xdist it is built in the session's own temporary
folder as before.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def worker_id() -> str:
    """`gw0`, `gw1`... under xdist; `master` when the run is one process (also with `-p no:xdist`)."""
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


TEXT_SUFFIXES = (".json", ".yml", ".yaml", ".txt")


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None], *,
               copy: bool = True) -> Path:
    """A folder holding what `build(folder)` wrote, built once for the whole run.

    With `copy` (the default) each worker gets a copy of its own, in which the small text files that name
    the built folder (say, an artifact's URI in a JSON file) name the copy instead; without it, every worker
    reads the one built folder and must not change it."""
    if worker_id() == "master":  # not under xdist: this session is the whole run
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's popen-gwN
    built, done = shared / f"{name}-built", shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(built, ignore_errors=True)  # a worker that failed half-way left it
            built.mkdir()
            build(built)
            done.touch()
    if not copy:
        return built
    folder = tmp_path_factory.mktemp(name)
    shutil.copytree(built, folder, symlinks=True, dirs_exist_ok=True)
    for path in folder.rglob("*"):
        if path.suffix in TEXT_SUFFIXES and path.is_file() and not path.is_symlink():
            text = path.read_text()
            if str(built) in text:
                path.write_text(text.replace(str(built), str(folder)))
    return folder
