"""The alert page's PNG charts, from the chart module that draws the Slack alerts.

Charts posted with the alert (the notifier's folder) are shown as they were; the drift bars and KPI
trends are drawn again from the check run's stored figures, once per run, and kept on disk.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot import charts
from bot.services.pages.alert import AlertPage

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.png$")
MAX_KPI_CHARTS = 3


@dataclass(frozen=True)
class ChartFile:
    name: str
    title: str
    alt_text: str
    path: Path


def _drawn(folder: Path, name: str, draw) -> ChartFile:
    """Draw once per run: the PNG and its title and alt text, written atomically beside each other."""
    path, meta = folder / name, folder / f"{name}.json"
    if not (path.is_file() and meta.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        # Scratch names of this process and thread: `flywheel serve --processes N` may draw it twice at once.
        scratch = folder / f".{os.getpid()}-{threading.get_ident()}-{name}"
        chart = draw(scratch)
        scratch_meta = scratch.with_name(f"{scratch.name}.json")
        scratch_meta.write_text(json.dumps({"title": chart.title, "alt_text": chart.alt_text}))
        os.replace(scratch_meta, meta)  # the text first: once the PNG is there, both are whole
        os.replace(scratch, path)
    saved = json.loads(meta.read_text())
    return ChartFile(name, saved["title"], saved["alt_text"], path)


def alert_charts(page: AlertPage, *, posted_dir: Path, cache_dir: Path) -> list[ChartFile]:
    if not page.evidence:
        return []
    found: list[ChartFile] = []
    posted = posted_dir / f"alert-{page.alert.id}"
    for path in sorted(posted.glob("dist-*.png")) if posted.is_dir() else []:
        feature = path.stem.removeprefix("dist-")
        found.append(ChartFile(path.name, f"{feature}: reference vs the window that opened the alert, as "
                               "posted to Slack", f"Distribution of {feature} in the reference data and in the "
                               "window that opened the alert, as posted to Slack with it.", path))
    folder = cache_dir / f"alert-{page.alert.id}"
    run, figures = page.run.id, page.figures
    if page.alert.kind == "drift" and figures.get("features"):
        features = [(f["feature"], f["statistic"], f["threshold"], f["drifted"]) for f in figures["features"]]
        method = " / ".join(dict.fromkeys(f["method_label"] for f in figures["features"]))
        found.append(_drawn(folder, f"run-{run}-drift.png", lambda out: charts.drift_bars(
            model=page.model_key, features=features, method_label=method, out=out)))
    if page.alert.kind == "kpi":
        kpis = [k for k in figures.get("kpis", []) if k.get("history")]
        for k in sorted(kpis, key=lambda k: not k.get("breached"))[:MAX_KPI_CHARTS]:
            found.append(_drawn(folder, f"run-{run}-kpi-{k['name'].lower()}.png", lambda out, k=k: _kpi(k, out)))
    return [c for c in found if NAME.match(c.name)]


def _kpi(k: dict, out: Path) -> charts.Chart:
    points = [(datetime.fromisoformat(t), float(v)) for t, v in k["history"]]
    threshold = k.get("threshold")
    breaches = [i for i, (_, v) in enumerate(points) if threshold is not None and v > threshold]
    if k.get("breached") and len(points) - 1 not in breaches:
        breaches.append(len(points) - 1)
    return charts.kpi_trend(label=k["label"], unit=k.get("unit"), points=points, threshold=threshold,
                            breach_indices=breaches, out=out, baseline=k.get("baseline"),
                            baseline_name=_baseline_name(k))


def _baseline_name(k: dict) -> str | None:
    """"baseline: 4 windows before Nov 2, 2026", when the run named its baseline."""
    if not k.get("baseline_end"):
        return None
    end = datetime.fromisoformat(k["baseline_end"])
    return f"baseline: {k.get('baseline_windows', 4)} windows before {end:%b} {end.day}, {end.year}"
