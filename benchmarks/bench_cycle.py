"""Models checked per minute by one worker: every check of every model, through the worker's own path.

The script writes synthetic card transactions for `--datasets` teams (one drifted), scored by one
fraud model, as Parquet files: a reference week and nine production weeks of `--rows` rows each,
in day-sized row groups. It writes one project spec per team, `--models` models in all spread over
the teams (teams share their data files, as real ones do; drift methods rotate over the models so
every method runs), applies them with `bot.services.specs` as `flywheel apply` does, gives every model a
production version, then runs cycles. A cycle calls `jobs.worker.run_scheduled_check` (what
APScheduler calls) for each model and each check kind its spec enables: the check of
`bot.app.build_worker`, which runs `jobs.monitor.check_model` and hands the result to the
notifier, whose Slack messages go into the outbox table. Each model's current window is its own
read of about `--rows` rows, compared with its own read of the reference.

Cycle 1 finds new alerts (charts rendered, messages queued); later cycles run an hour later, as
the hourly schedule would, and find repeats (messages updated in place, thread replies).

    python benchmarks/bench_cycle.py                                # 200 models, 100k rows, SQLite
    python benchmarks/bench_cycle.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/bench_cycle.py --data-dir /tmp/cycle-data     # keep the data (80 s to write) for next time
    python benchmarks/bench_cycle.py --workers 2                    # two worker processes
    python benchmarks/bench_cycle.py --own-reference                # a reference file per model, none shared
    python benchmarks/bench_cycle.py --models 20 --profile /tmp/cycle.prof   # cProfile, one process

Printed per cycle: models per minute, p50/p99/max seconds per model (all its kinds), CPU seconds
of the worker processes (the statistics' own threads included), their peak resident memory, the
other load on the machine meanwhile, and the verdicts found.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ack import (  # noqa: E402
    code_version,
    cpu_seconds,
    machine_busy_seconds,
    peak_rss_mb,
    percentile,
    tree_of,
)
from benchmarks.harness import main_running, scratch_database  # noqa: E402

START = datetime(2026, 6, 1)  # a Monday: week 0 is the reference
WEEKS = 9  # production weeks; the checks read eight windows of history, and later cycles an hour of week 9
AS_OF = START + timedelta(days=7 * WEEKS)  # cycle 1 judges week 8
DRIFT_WEEK = WEEKS - 1
PEOPLE = [("U0BIZ001", "Dana", "business"), ("U0ML0001", "Eli", "ml_engineer"),
          ("U0ML0002", "Noor", "ml_engineer"), ("U0RISK01", "Rita", "risk_manager"), ("U0OPS001", "Omar", "it_ops")]
NUMERIC_METHODS = ("wasserstein", "wasserstein", "psi", "ks")
CATEGORICAL_METHODS = ("jensen_shannon", "jensen_shannon", "psi", "chi_square")
READY = "bench_cycle: checking"  # printed when the first cycle starts; bench_ack --with-cycle waits for it


# -- data and specs -------------------------------------------------------------------------------

def write_data(folder: Path, *, datasets: int, drifted: int, rows: int, log=print) -> Path:
    """Reference and production Parquet files per team, and v1's artifact; reused when already there."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs import synthetic, training

    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    wanted = {"datasets": datasets, "drifted": drifted, "rows": rows, "weeks": WEEKS, "start": START.isoformat(),
              "v1_sha256": True}  # manifests written before artifacts carried digests are rewritten
    if manifest.exists() and json.loads(manifest.read_text()).get("data") == wanted:
        return folder
    began = time.perf_counter()
    log(f"Writing {datasets} data sets of {WEEKS + 1} weeks x {rows:,} rows into {folder} ...")
    first = synthetic.Scenario(start=START, weeks=WEEKS, rows_per_week=rows, seed=1000)
    features = dict(numeric=list(synthetic.NUMERIC_FEATURES), categorical=list(synthetic.CATEGORICAL_FEATURES))
    v1 = training.train(synthetic.generate_week(first, 0), **features, label=synthetic.LABEL,
                        artifacts_dir=folder / "artifacts", name="bench-v1")
    model = training.load_model(v1.artifact_uri, sha256=v1.artifact_sha256, roots=[folder / "artifacts"])
    for index in range(datasets):
        scenario = synthetic.Scenario(start=START, weeks=WEEKS, rows_per_week=rows, seed=1000 + index,
                                      drift_from_week=DRIFT_WEEK if index < drifted else 10 * WEEKS)
        team = folder / f"team-{index:02d}"
        team.mkdir(exist_ok=True)
        training.score(model, synthetic.generate_week(scenario, 0)).to_parquet(team / "reference.parquet",
                                                                                 index=False)
        writer = None
        for week in range(1, WEEKS + 1):
            table = pa.Table.from_pandas(training.score(model, synthetic.generate_week(scenario, week)),
                                         preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(team / "production.parquet", table.schema)
            writer.write_table(table, row_group_size=max(1, rows // 7))  # a row group a day
        writer.close()
    manifest.write_text(json.dumps({"data": wanted, "v1": {"uri": v1.artifact_uri, "sha256": v1.artifact_sha256,
                                                           "metrics": v1.metrics}}))
    log(f"  written in {time.perf_counter() - began:.0f} s")
    return folder


def model_spec(key: str, index: int, reference: str = "reference.parquet") -> dict:
    numeric, categorical = NUMERIC_METHODS[index % 4], CATEGORICAL_METHODS[index % 4]
    thresholds = {"default": 0.05 if numeric == "ks" else 0.1}
    return {
        "key": key, "description": f"Card fraud classifier {index}", "owner": "U0ML0001",
        "task": "binary_classification", "tags": ["bench"],
        "data": {"reference": {"path": reference}, "production": {"path": "production.parquet"},
                 "timestamp": "event_time", "prediction": "predicted_fraud", "score": "fraud_score",
                 "label": "is_fraud"},
        "features": {"numeric": ["amount", "card_age_days", "hour", "distance_km"],
                     "categorical": ["merchant_category", "country", "channel"]},
        "drift": {"window": "7d", "numeric_method": numeric, "categorical_method": categorical,
                  "thresholds": thresholds, "alpha": 0.05},
        "kpis": [
            {"name": "missed_fraud_rate", "label": "Missed fraud", "aggregate": "rate",
             "where": "is_fraud == 1 and predicted_fraud == 0", "of": "is_fraud == 1",
             "alert": {"above_baseline_pct": 25, "baseline_windows": 4}},
            {"name": "missed_fraud_amount", "label": "Fraud amount missed", "aggregate": "sum", "column": "amount",
             "where": "is_fraud == 1 and predicted_fraud == 0", "unit": "USD", "alert": {"above": 10000}},
            {"name": "false_alarm_rate", "label": "Good customers blocked", "aggregate": "rate",
             "where": "predicted_fraud == 1 and is_fraud == 0", "of": "is_fraud == 0",
             "alert": {"above_baseline_pct": 50}},
        ],
        "performance": {"metrics": ["precision", "recall", "roc_auc"], "alert": {"recall": {"below": 0.6}}},
        "data_quality": {"max_null_share": 0.05, "min_rows_vs_baseline_pct": 50, "baseline_windows": 4},
        "schedule": "0 * * * *",
    }


def write_specs(folder: Path, *, models: int, datasets: int, own_reference: bool = False) -> list[Path]:
    """One project spec per team, beside its data (relative paths resolve against the spec's folder).

    own_reference: each model gets its own reference file (a link to its team's), as if no two models
    shared one, so nothing summarised from one model's reference serves another."""
    import yaml

    teams: dict[int, list[dict]] = {}
    for index in range(models):
        key, team = f"bench-model-{index:03d}", index % datasets
        reference = "reference.parquet"
        if own_reference:
            reference = f"reference-{key}.parquet"
            if not (folder / f"team-{team:02d}" / reference).exists():
                os.link(folder / f"team-{team:02d}" / "reference.parquet", folder / f"team-{team:02d}" / reference)
        teams.setdefault(team, []).append(model_spec(key, index, reference))
    paths = []
    for team, specs in sorted(teams.items()):
        document = {
            "project": {"key": f"bench-team-{team:02d}", "name": f"Bench team {team}", "owner": "U0ML0001",
                        "initiative": "Reduce payment fraud losses", "risk_tier": "high", "tags": ["bench"]},
            "people": [{"slack_id": s, "name": n, "roles": [r]} for s, n, r in PEOPLE],
            "channels": {"business": f"C0BIZ{team:02d}", "ml_engineer": f"C0ML{team:02d}",
                         "risk_manager": "C0RISK", "it_ops": "C0OPS"},
            "blueprint": {"name": "customer-facing", "steps": [{"name": "technical validation", "role": "ml_engineer"},
                                                                {"name": "risk review", "role": "risk_manager"}]},
            "models": specs,
        }
        path = folder / f"team-{team:02d}" / f"bench-team-{team:02d}.yml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        paths.append(path)
    return paths


def register(url: str, spec_paths: list[Path], v1: dict) -> list[str]:
    """Apply the specs as `flywheel apply` does and adopt v1 as every model's production version."""
    from store import registry
    from bot.services.specs import apply_spec
    from store.db import Database
    from jobs.spec import load_specs

    db = Database(url)
    try:
        if db.engine.dialect.name == "sqlite":
            db.ensure_schema()
        elif db.current_revision() != db.head_revision():
            db.upgrade()
        keys = []
        with db.session() as s:
            for loaded in load_specs(spec_paths):
                apply_spec(session=s, loaded=loaded, actor="U0ML0001")
                keys += [m.key for m in loaded.spec.models]
        with db.session() as s:
            for key in keys:
                model = registry.get_model(session=s, key=key)
                if registry.production_version(session=s, model=model) is not None:
                    continue
                version = registry.register_version(
                    session=s, model_key=key, created_by="U0ML0001", artifact_uri=v1["uri"],
                    artifact_sha256=v1.get("sha256"), metrics=v1["metrics"],
                    train_start=START, train_end=START + timedelta(days=7), now=START + timedelta(days=7))
                registry.adopt_as_production(session=s, version=version, actor="U0ML0001",
                                             now=START + timedelta(days=7))
        return sorted(keys)
    finally:
        db.dispose()


# -- the worker's check path, in this process or in each pool process ------------------------------

@dataclass
class _Clock:
    now: datetime = AS_OF

    def __call__(self) -> datetime:
        return self.now


_CLOCK = _Clock()
_WORKER = None
_PROFILE: cProfile.Profile | None = None


def start_worker(env: dict[str, str], profile: bool = False, nice: int | None = None) -> None:
    """Build the worker as `flywheel worker` does (its priority, build_worker), without leading or scheduling."""
    global _WORKER, _PROFILE
    os.environ.update(env)
    from bot.app import build_worker
    from bot.config import Settings
    from jobs.worker import Worker, lower_priority

    settings = Settings()
    lower_priority(settings.worker_nice if nice is None else nice)
    _WORKER, _ = build_worker(settings, clock=_CLOCK)
    Worker._current = _WORKER
    if profile:
        _PROFILE = cProfile.Profile()


def check_one_model(key: str, kinds: list[str], as_of: datetime) -> tuple[str, float, float]:
    """Every enabled kind of one model, as the scheduler's jobs would run them; (key, wall s, thread CPU s)."""
    from jobs.worker import run_scheduled_check

    _CLOCK.now = as_of
    began, cpu = time.perf_counter(), time.thread_time()
    if _PROFILE is not None:
        _PROFILE.enable()
    try:
        for kind in kinds:
            run_scheduled_check(key, kind)
    finally:
        if _PROFILE is not None:
            _PROFILE.disable()
    return key, time.perf_counter() - began, time.thread_time() - cpu


def dump_profile(path: str) -> None:
    if _PROFILE is not None:
        _PROFILE.dump_stats(path)


def enabled_kinds(url: str, keys: list[str]) -> dict[str, list[str]]:
    """The kinds each model's spec enables, which the worker schedules."""
    from jobs.monitor import enabled_kinds as kinds_of
    from jobs.monitor import load_spec
    from store import registry
    from store.db import Database

    db = Database(url)
    try:
        with db.read() as s:
            return {key: [k.value for k in kinds_of(load_spec(registry.get_model(session=s, key=key)))]
                    for key in keys}
    finally:
        db.dispose()


def forget_firings(url: str) -> None:
    """The worker runs each firing of a schedule once (store/ticks.py) and a firing is named by the wall
    clock's hour; the next cycle stands for the next hour's firing, so this hour's records go."""
    try:
        from store import ticks
    except ImportError:  # a tree from before firings were recorded
        return
    from store.clock import utcnow
    from store.db import Database

    db = Database(url)
    try:
        with db.session() as s:
            ticks.prune(session=s, older_than=timedelta(0), now=utcnow() + timedelta(days=1))
    finally:
        db.dispose()


def cycle_summary(url: str, since_run: int, since_outbox: int) -> tuple[Counter, int, int, int]:
    """Verdicts recorded since the given ids, and the highest ids now (for the next cycle)."""
    from sqlalchemy import func, select

    from store.db import Database
    from store.models import CheckRun, OutboxMessage

    db = Database(url)
    try:
        with db.session() as s:
            verdicts = Counter(f"{kind.value} {verdict.value}" for kind, verdict in s.execute(
                select(CheckRun.kind, CheckRun.verdict).where(CheckRun.id > since_run)))
            top_run = s.execute(select(func.max(CheckRun.id))).scalar() or 0
            top_outbox = s.execute(select(func.max(OutboxMessage.id))).scalar() or 0
        return verdicts, top_outbox - since_outbox, top_run, top_outbox
    finally:
        db.dispose()


# -- measuring ------------------------------------------------------------------------------------

@dataclass
class CycleResult:
    number: int
    as_of: datetime
    seconds: float
    per_model: list[float]
    cpu: float | None
    others: float | None
    verdicts: Counter
    queued: int
    failures: list[str]


def run_cycle(pool: Executor, number: int, as_of: datetime, kinds: dict[str, list[str]], url: str,
              ids: list[int]) -> CycleResult:
    forget_firings(url)
    me = os.getpid()
    cpu0, busy0, ours0 = cpu_seconds(me), machine_busy_seconds(), time.monotonic()
    began = time.perf_counter()
    futures = [pool.submit(check_one_model, key, model_kinds, as_of) for key, model_kinds in kinds.items()]
    per_model, failures = [], []
    for future in futures:
        try:
            _, seconds, _ = future.result()
            per_model.append(seconds)
        except Exception as exc:  # a check that raised: the worker reported it to the ML channel; count it
            failures.append(f"{exc.__class__.__name__}: {exc}")
    seconds = time.perf_counter() - began
    cpu1, busy1, ours1 = cpu_seconds(me), machine_busy_seconds(), time.monotonic()
    cpu = cpu1 - cpu0 if None not in (cpu0, cpu1) else None
    others = max(0.0, (busy1 - busy0) - cpu) / (ours1 - ours0) if cpu is not None and None not in (busy0, busy1) \
        else None
    verdicts, queued, ids[0], ids[1] = cycle_summary(url, ids[0], ids[1])
    return CycleResult(number, as_of, seconds, per_model, cpu, others, verdicts, queued, failures)


def report(result: CycleResult, models: int, rss: dict[int, float]) -> None:
    ms = sorted(result.per_model)
    rate = len(ms) / result.seconds * 60
    cpu = f"{result.cpu:.1f} s CPU ({result.cpu / max(1, len(ms)):.2f} s a model)" if result.cpu is not None else ""
    others = f"other load {result.others:.2f} cores" if result.others is not None else ""
    print(f"cycle {result.number} (as of {result.as_of:%Y-%m-%d %H:%M}): {len(ms)} of {models} models in "
          f"{result.seconds:.1f} s = {rate:.0f} models/min; per model p50 {percentile(ms, 50):.2f} s, "
          f"p99 {percentile(ms, 99):.2f} s, max {ms[-1]:.2f} s; {cpu}; {others}; peak RSS "
          f"{' + '.join(f'{v:.0f}' for v in rss.values())} MB")
    print(f"  verdicts: {', '.join(f'{n} {v}' for v, n in sorted(result.verdicts.items()))}; "
          f"{result.queued} outbox rows added")
    for failure in result.failures[:5]:
        print(f"  FAILED: {failure}")


def run(args: argparse.Namespace, stack: ExitStack) -> None:
    from bot.config import Settings
    from jobs.worker import lower_priority

    # First, as `flywheel worker` does: threads started from now on (pyarrow's too) inherit the niceness.
    args.nice = lower_priority(Settings().worker_nice if args.nice is None else args.nice)
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flywheel-bench-cycle-")))
    data = write_data(args.data_dir or folder / "data", datasets=args.datasets, drifted=args.drifted,
                      rows=args.rows)
    v1 = json.loads((data / "manifest.json").read_text())["v1"]
    if args.use_database:
        url = args.use_database
    else:
        url = stack.enter_context(scratch_database(args.database_url, folder))
    began = time.perf_counter()
    keys = register(url, write_specs(data, models=args.models, datasets=args.datasets,
                                     own_reference=args.own_reference), v1)
    kinds = enabled_kinds(url, keys)
    print(f"{len(keys)} models registered in {time.perf_counter() - began:.1f} s "
          f"({'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}), {args.datasets} teams "
          f"({args.drifted} drifted){', a reference file per model' if args.own_reference else ''}, "
          f"{args.rows:,} rows a window, {sum(map(len, kinds.values()))} checks a cycle; "
          f"{code_version()}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}.")
    # The outbox needs a Slack token to be chosen; nothing is sent: the queued rows are the output.
    env = {"FLYWHEEL_DATABASE_URL": url, "FLYWHEEL_ARTIFACTS": str(folder / "artifacts"),
           "FLYWHEEL_OUTBOX": str(folder / "outbox"), "SLACK_BOT_TOKEN": "xoxb-bench-not-sent",
           "FLYWHEEL_SLACK_API_URL": "http://127.0.0.1:9/api/"}
    profile = args.profile is not None
    pool: Executor
    if args.workers > 1:
        pool = ProcessPoolExecutor(args.workers, initializer=start_worker, initargs=(env, profile, args.nice))
        mode = f"{args.workers} worker processes"
    else:
        start_worker(env, profile, args.nice)
        pool = ThreadPoolExecutor(args.threads)
        mode = f"one worker process, {args.threads} thread(s)"
    mode += f" at niceness {pool.submit(os.nice, 0).result()}"
    # On Ctrl-C the checks already running finish; the cycle's others are dropped.
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    print(f"{mode}; cycles of every model and kind.\n", flush=True)
    ids = list(cycle_summary(url, 0, 0)[2:])  # count only what the cycles add
    print(READY, flush=True)
    number = 0
    while args.cycles == 0 or number < args.cycles:
        number += 1
        result = run_cycle(pool, number, AS_OF + timedelta(hours=number - 1), kinds, url, ids)
        report(result, len(keys), peak_rss_mb(tree_of(os.getpid())))
        sys.stdout.flush()
    if profile and args.workers <= 1:
        dump_profile(str(args.profile))
        print(f"cProfile of the checks: {args.profile}  (python -m pstats {args.profile})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200, help="models to register and check (default 200)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per weekly window (default 100,000)")
    parser.add_argument("--datasets", type=int, default=10, help="teams, each with its own data files (default 10)")
    parser.add_argument("--drifted", type=int, default=1, help="teams whose latest week drifts (default 1)")
    parser.add_argument("--cycles", type=int, default=2, help="cycles to run; 0 runs until stopped (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1: this process)")
    parser.add_argument("--threads", type=int, default=1, help="threads in a single worker process (default 1)")
    parser.add_argument("--database-url", help="a PostgreSQL server on 127.0.0.1, e.g. "
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test; a fresh database is created there "
                        "and dropped (default: a temporary SQLite file)")
    parser.add_argument("--use-database", help="an existing, migrated registry to add the models to and check in "
                        "(kept afterwards; bench_ack --with-cycle uses its own registry this way)")
    parser.add_argument("--own-reference", action="store_true",
                        help="give each model its own reference file instead of its team's shared one")
    parser.add_argument("--data-dir", type=Path, help="keep the generated data here and reuse it on the next run")
    parser.add_argument("--profile", type=Path, help="cProfile the checks into this file (one process only)")
    parser.add_argument("--nice", type=int, choices=range(20), metavar="0-19",
                        help="the worker's niceness (default: FLYWHEEL_WORKER_NICE's, as `flywheel worker`)")
    args = parser.parse_args(argv)
    for name in ("models", "rows", "datasets", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0 <= args.drifted <= args.datasets:
        parser.error(f"--drifted must be between 0 and --datasets ({args.datasets}), got {args.drifted}")
    if args.cycles < 0:
        parser.error(f"--cycles must be 0 (until stopped) or more, got {args.cycles}")
    if args.profile and args.workers > 1:
        parser.error("--profile runs in one process: leave out --workers")
    return args


main = main_running("bench_cycle", parse_args, run, interrupted="the temporary data and database are removed.")


if __name__ == "__main__":
    sys.exit(main())
