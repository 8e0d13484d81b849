"""An alert's message for its persona, built from what the check found, with its charts drawn."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot import charts
from bot.blocks import business, ml_engineer
from bot.blocks.common import Message
from bot.blocks.wording import baseline_words, kpi_change, period
from bot.charts.bands import alert_band
from bot.notifier.outlet import Outlet
from jobs import explain
from jobs.checks import metric_rule
from jobs.incidents import (
    DataQualityIncident,
    DriftIncident,
    FeatureFigure,
    KpiFigure,
    KpiIncident,
    MetricFigure,
    ModelRef,
    PerformanceIncident,
)
from jobs.monitor import CheckResult, ModelChecks, load_spec
from store import monitoring, registry
from store.models import CheckKind


class AlertMessages:
    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet

    def build(self, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None,
              *, charts: bool = True) -> Message:
        """The alert's message; without `charts`, none are rendered (an edit whose delivery won't show them)."""
        with self.outlet.db.session() as s:
            model = registry.get_model(session=s, key=checked.model_key)
            version = registry.production_version(session=s, model=model)
            ref = self.outlet.model_ref(model, version, result.alert_id)
            run = monitoring.check_history(session=s, model=model, kind=result.kind, limit=1)[-1]
            spec = load_spec(model)
            performance = spec.performance
            alerts = performance.alert if performance else {}
            kpi_alerts = {k.name: k.alert for k in spec.kpis}
            importances = registry.measured_importances(session=s, version=version) \
                if version and result.kind in (CheckKind.kpi, CheckKind.drift) else None
        folder = self.outlet.charts_dir / f"alert-{result.alert_id}" if self.outlet.settings.charts else None
        details = self.outlet.settings.link(f"alerts/{result.alert_id}")
        figures = result.outcome.figures
        if result.kind == CheckKind.kpi:
            drift = checked.result(CheckKind.drift)
            drifted = tuple(f for f in _features(drift.outcome.figures, importances) if f.drifted) \
                if drift is not None and drift.alert_id is not None and "features" in drift.outcome.figures else ()
            return self._kpi(ref, checked, figures, folder if charts else None, details, run.created_at, kpi_alerts,
                             drifted)
        if result.kind == CheckKind.drift:
            return self._drift(ref, checked, result, kpi_result, folder if charts else None, details,
                               run.created_at, importances)
        if result.kind == CheckKind.performance:
            return ml_engineer.performance_alert(PerformanceIncident(
                model=ref, window_start=checked.window_start, window_end=checked.window_end, checked_at=run.created_at,
                metrics=tuple(MetricFigure(m, v, figures["training_metrics"].get(m), metric_rule(alerts.get(m)),
                                           m in figures["breaches"]) for m, v in figures["metrics"].items()),
                labelled_rows=figures["labelled_rows"], rows=figures["rows"], details_url=details))
        return ml_engineer.data_quality_alert(DataQualityIncident(
            model=ref, window_start=checked.window_start, window_end=checked.window_end, checked_at=run.created_at,
            problems=tuple(figures["problems"]), rows=figures["rows"], details_url=details))

    def _kpi(self, ref: ModelRef, checked: ModelChecks, figures: dict, folder: Path | None, details: str,
             checked_at: datetime, kpi_alerts: dict, drifted: tuple[FeatureFigure, ...]) -> Message:
        kpis = tuple(KpiFigure(
            name=k["name"], label=k["label"], unit=k["unit"], value=k["value"], baseline=k["baseline"],
            threshold=k["threshold"], breached=k["breached"], rule=k["rule"],
            points=tuple((datetime.fromisoformat(t), v) for t, v in k["history"]), **KpiFigure.baseline_of(k))
            for k in figures["kpis"]
            if k["value"] is not None)
        # The chart shows money when there is a money KPI: that is what this reader weighs.
        shown = next((k for k in kpis if (k.unit or "").lower() in ("usd", "$")), None) or \
            next((k for k in kpis if k.breached), kpis[0])
        breaches = [i for i, (_, v) in enumerate(shown.points)
                    if shown.threshold is not None and v > shown.threshold]
        if shown.breached and len(shown.points) - 1 not in breaches:
            breaches.append(len(shown.points) - 1)
        baseline_n = next((k["baseline_windows"] for k in figures["kpis"]), 4)
        length = checked.window_end - checked.window_start
        named = baseline_words(shown, baseline_n, period(length)[1]).removeprefix("over the ")
        rendered = () if folder is None else (charts.kpi_trend(
            label=shown.label, unit=shown.unit, points=list(shown.points), threshold=shown.threshold,
            breach_indices=breaches, out=folder / f"kpi-{shown.name}.png", baseline=shown.baseline,
            baseline_name=f"baseline: {named}", **alert_band(kpi_alerts.get(shown.name), shown.baseline, shown.unit)),)
        incident = KpiIncident(model=ref, window_start=checked.window_start, window_end=checked.window_end,
                               checked_at=checked_at, kpis=kpis,
                               labels_complete_to=_parse(figures.get("labels_complete_to")),
                               details_url=details, charts=tuple(self.outlet.chart_ref(c) for c in rendered),
                               drifted=drifted)
        return business.kpi_alert(incident, baseline_windows=baseline_n)

    def _drift(self, ref: ModelRef, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None,
               folder: Path | None, details: str, checked_at: datetime, importances: dict | None) -> Message:
        figures = result.outcome.figures
        features = _features(figures, importances)
        rendered = []
        top = next(iter(result.outcome.evidence.items()), None)
        if folder is not None and top is not None:
            name, (reference, current) = top
            stat = next(f for f in features if f.feature == name)
            kind = next(f["kind"] for f in figures["features"] if f["feature"] == name)
            rendered.append(charts.distribution(
                feature=name, kind=kind, reference=reference, current=current, out=folder / f"dist-{name}.png",
                statistic_text=f"{stat.method_label} {stat.statistic:.2f} (alert {stat.threshold:.2f})"))
        if folder is not None:
            rendered.append(charts.drift_bars(
                model=ref.key, features=[(f.feature, f.statistic, f.threshold, f.drifted) for f in features],
                method_label=" / ".join(dict.fromkeys(f.method_label for f in features)), out=folder / "drift.png"))
        related = None
        if kpi_result is not None and kpi_result.alert_id is not None:
            lead = next(k for k in kpi_result.outcome.figures["kpis"] if k["breached"])
            figure = KpiFigure(lead["name"], lead["label"], lead["unit"], lead["value"], lead["baseline"],
                               lead["threshold"], True, lead["rule"], **KpiFigure.baseline_of(lead))
            length = checked.window_end - checked.window_start
            related = (f"{figure.label} is {kpi_change(figure, length)} over the same window"  # escaped where shown
                       if figure.baseline is not None else
                       f"{figure.label} is {charts.format_value(figure.value, figure.unit)} over the same window")
        incident = DriftIncident(model=ref, window_start=checked.window_start, window_end=checked.window_end,
                                 checked_at=checked_at, features=features,
                                 current_rows=figures["current_rows"], reference_rows=figures["reference_rows"],
                                 details_url=details, related=related,
                                 charts=tuple(self.outlet.chart_ref(c) for c in rendered))
        return ml_engineer.drift_alert(incident)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _features(figures: dict, importances: dict | None) -> tuple[FeatureFigure, ...]:
    """A drift run's features, each with where it stands among the production version's importances."""
    standings = explain.standings(importances)

    def standing(name: str) -> dict:
        found = standings.get(name)
        return {"rank": found.rank, "ranked": found.ranked, "relied_on": found.relied_on} if found else {}
    return tuple(FeatureFigure(f["feature"], f["method_label"], f["statistic"], f["threshold"], f["p_value"],
                               f["drifted"], _missing_moved(f), **standing(f["feature"])) for f in figures["features"])


def _missing_moved(figure: dict) -> tuple[float, float] | None:
    """The reference and current missing shares of a feature whose missing share moved (older runs: None)."""
    if not figure.get("missing_drifted"):
        return None
    return figure["reference_missing_share"], figure["current_missing_share"]
