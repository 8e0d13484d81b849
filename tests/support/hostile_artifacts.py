"""A model artifact an attacker might name: unpickling it runs code. Here the code only creates an empty
marker file, so a test can see whether anything unpickled it."""

from __future__ import annotations

from pathlib import Path

import joblib


class TouchOnLoad:
    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return Path.touch, (self.marker,)  # what pickle calls while loading: Path(marker).touch()


def write_hostile_pickle(path: Path, marker: Path) -> Path:
    """A joblib file that creates `marker` when loaded; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(TouchOnLoad(marker), path)
    return path
