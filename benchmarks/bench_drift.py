"""Time Flywheel's drift_report against Evidently's DataDriftPreset and NannyML's univariate drift.

Same data for every tool: 21 features (13 numeric, 8 categorical), reference and current windows of
equal size, drift planted in two features (num_00 shifted by 0.3 std, cat_00 reweighted). Each run
happens in a fresh process (so one tool's memory does not count against the next) after a warm-up
on 2,000 rows. Printed: wall seconds, CPU seconds of all threads (steadier on a shared machine),
and peak extra memory: the resident-set peak during the run, sampled every 2 ms, minus the size
before it. Evidently and NannyML are optional (`pip install .[bench]`) and skipped, with the
reason, when they do not import (Evidently 0.7 does not import under pandas 3: run this script
from an environment with pandas < 3 to include it).

    python benchmarks/bench_drift.py                      # 100k and 1M rows, every installed tool
    python benchmarks/bench_drift.py --rows 100000 --tools flywheel nannyml --repeat 3
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Both optional tools phone home by default; a benchmark must not.
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

NUMERIC = [f"num_{i:02d}" for i in range(13)]
CATEGORICAL = [f"cat_{i:02d}" for i in range(8)]
DRIFTED = {"num_00", "cat_00"}
Verdicts = dict[str, str]


def make_window(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for i, name in enumerate(NUMERIC):
        shape = i % 4
        if shape == 0:
            values = rng.normal(50.0, 10.0, rows)
        elif shape == 1:
            values = rng.lognormal(3.0, 0.8, rows)
        elif shape == 2:
            values = rng.exponential(5.0, rows)
        else:
            values = rng.integers(0, 60, rows).astype(np.float64)  # many ties
        if drift and name == "num_00":
            values = values + 0.3 * 10.0
        columns[name] = values
    for i, name in enumerate(CATEGORICAL):
        levels = np.array([f"{name}_v{k}" for k in range(3 + 4 * i)])
        weights = np.linspace(2.0, 1.0, levels.size)
        if drift and name == "cat_00":
            weights = weights[::-1] ** 2
        columns[name] = pd.Series(levels[rng.choice(levels.size, rows, p=weights / weights.sum())], dtype="str")
    return pd.DataFrame(columns)


def run_flywheel(reference: pd.DataFrame, current: pd.DataFrame) -> Verdicts:
    from jobs.statistics import drift_report

    report = drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL)
    return {f.feature: f"{f.statistic:.3f}{' DRIFT' if f.drifted else ''}" for f in report.features}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> Verdicts:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    verdicts = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, score, threshold = config["method"], float(metric["value"]), config["threshold"]
            drifted = score < threshold if "p_value" in method else score >= threshold
            verdicts[config["column"]] = f"{score:.3f}{' DRIFT' if drifted else ''}"
    return verdicts


def run_nannyml(reference: pd.DataFrame, current: pd.DataFrame) -> Verdicts:
    import nannyml

    # NannyML's own default chunking (10 chunks); its thresholds come from the reference chunks.
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=NUMERIC + CATEGORICAL, treat_as_categorical=CATEGORICAL,
        continuous_methods=["kolmogorov_smirnov", "wasserstein"], categorical_methods=["chi2", "jensen_shannon"])
    calculator.fit(reference)
    table = calculator.calculate(current).filter(period="analysis").to_df()
    verdicts = {}
    for feature in NUMERIC + CATEGORICAL:
        method = "wasserstein" if feature in NUMERIC else "jensen_shannon"
        alerts = int(table[(feature, method, "alert")].sum())
        verdicts[feature] = f"{alerts}/{len(table)} chunks{' DRIFT' if alerts else ''}"
    return verdicts


TOOLS: dict[str, Callable[[pd.DataFrame, pd.DataFrame], Verdicts]] = {
    "flywheel": run_flywheel, "evidently": run_evidently, "nannyml": run_nannyml}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


Figures = tuple[float, float, float | None, Verdicts]  # wall seconds, CPU seconds, peak extra bytes, verdicts


def _timed_with_peak_memory(call: Callable[[], Verdicts]) -> Figures:
    """Wall and CPU time (all threads: the honest figure on a shared machine) and peak extra RSS."""
    if not Path("/proc/self/statm").exists():  # no cheap RSS reading: time only
        started, cpu = time.perf_counter(), time.process_time()
        verdicts = call()
        return time.perf_counter() - started, time.process_time() - cpu, None, verdicts
    baseline, peak, done = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started, cpu = time.perf_counter(), time.process_time()
    verdicts = call()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    done.set()
    sampler.join()
    return seconds, cpu_seconds, max(peak[0], _rss_bytes()) - baseline, verdicts


def measure(tool: str, rows: int) -> Figures | str:
    """In a fresh process: warm up, then time one run. Returns the figures or why the tool was skipped."""
    warnings.filterwarnings("ignore")
    run = TOOLS[tool]
    try:
        run(make_window(2_000, 1, False), make_window(2_000, 2, True))
    except ImportError as error:
        return f"not importable here ({error})"
    reference, current = make_window(rows, 1, False), make_window(rows, 2, True)
    return _timed_with_peak_memory(lambda: run(reference, current))


def _in_fresh_process(tool: str, rows: int) -> Figures | str:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, tool, rows).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--tools", nargs="+", choices=list(TOOLS), default=list(TOOLS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and size; the fastest is kept")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"{os.cpu_count()} cpus; drift planted in {sorted(DRIFTED)}")
    for rows in args.rows:
        print(f"\n== {rows:,} rows per window, {len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical features")
        results: dict[str, Figures] = {}
        for tool in args.tools:
            outcome = min((_in_fresh_process(tool, rows) for _ in range(args.repeat)),
                          key=lambda r: r[0] if isinstance(r, tuple) else 0.0)
            if isinstance(outcome, str):
                print(f"{tool:>10}: skipped, {outcome}")
                continue
            results[tool] = outcome
            seconds, cpu_seconds, extra, _ = outcome
            memory = f"{extra / 2**20:7.0f} MB" if extra is not None else "    n/a"
            print(f"{tool:>10}: {seconds:8.2f} s wall {cpu_seconds:8.2f} s CPU  peak extra memory {memory}")
        if "flywheel" in results:
            ours = results["flywheel"]
            for tool, (seconds, cpu_seconds, _, _) in results.items():
                if tool != "flywheel":
                    print(f"{'':>10}  flywheel is {seconds / ours[0]:.1f}x faster than {tool} "
                          f"({cpu_seconds / ours[1]:.1f}x less CPU)")
        print(f"\n{'feature':<10}" + "".join(f"{tool:>22}" for tool in results))
        for feature in NUMERIC + CATEGORICAL:
            mark = " *" if feature in DRIFTED else ""
            print(f"{feature + mark:<10}" + "".join(f"{verdicts.get(feature, '-'):>22}"
                                                   for *_, verdicts in results.values()))


if __name__ == "__main__":
    main()
