"""The columns a model's spec reads, each with where it is used and which column kinds it accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.expressions import parse

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class _ColumnRef:
    loc: Loc
    column: str
    kinds: frozenset[str] | None  # the column kinds this use accepts; None for any
    purpose: str = ""


_NUMBERS = frozenset({"numeric", "bool"})


def _column_refs(model: Any) -> list[_ColumnRef]:
    """`model`: a jobs.spec.model.ModelSpec (not imported here: it imports this module)."""
    data = model.data
    refs = [_ColumnRef(("data", "timestamp"), data.timestamp, frozenset({"datetime"}), "the timestamp"),
            _ColumnRef(("data", "prediction"), data.prediction, None)]
    if data.score is not None:
        refs.append(_ColumnRef(("data", "score"), data.score, _NUMBERS, "the score"))
    if data.label is not None:
        refs.append(_ColumnRef(("data", "label"), data.label, None))
    if data.label_time is not None:
        refs.append(_ColumnRef(("data", "label_time"), data.label_time, frozenset({"datetime"}), "label_time"))
    refs += [_ColumnRef(("features", "numeric", i), name, _NUMBERS, "a numeric feature")
             for i, name in enumerate(model.features.numeric)]
    refs += [_ColumnRef(("features", "categorical", i), name, None)
             for i, name in enumerate(model.features.categorical)]
    refs += [_ColumnRef(("segments", i), name, None) for i, name in enumerate(model.segments)]
    for index, kpi in enumerate(model.kpis):
        if kpi.column is not None:
            refs.append(_ColumnRef(("kpis", index, "column"), kpi.column, _NUMBERS, f"aggregate '{kpi.aggregate}'"))
        for clause in ("where", "of"):
            text = getattr(kpi, clause)
            if text is not None:
                refs += [_ColumnRef(("kpis", index, clause), name, None) for name in sorted(parse(text).columns)]
    return refs
