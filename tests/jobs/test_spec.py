import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from jobs.spec import (
    DataQualitySpec,
    DeploySpec,
    LoadedSpec,
    ProjectSpec,
    RetrainSpec,
    SpecError,
    SpecIssue,
    format_duration,
    load_spec,
    load_specs,
    parse_duration,
)

DEMO_SPEC = Path(__file__).resolve().parents[2] / "bot" / "demo_spec" / "card-fraud.yml"

SPEC = """\
project:
  key: card-fraud
  name: Card fraud detection
  initiative: Reduce payment fraud losses
  owner: U0ML0001
  sponsors: [U0BIZ001]
  risk_tier: high
  tags: [fraud, payments]
people:
  - {slack_id: U0BIZ001, name: Dana, roles: [business]}
  - {slack_id: U0ML0001, name: Eli, roles: [ml_engineer]}
  - {slack_id: U0RISK01, name: Rita, roles: [risk_manager]}
  - {slack_id: U0OPS001, name: Omar, roles: [it_ops]}
channels: {business: C0BIZ, ml_engineer: C0ML, risk_manager: C0RISK, it_ops: C0OPS}
blueprint:
  name: customer-facing
  steps:
    - {name: technical validation, role: ml_engineer}
    - {name: risk review, role: risk_manager, quorum: 1}
models:
  - key: fraud-detector
    description: Classifier scoring card transactions at authorization
    owner: U0ML0001
    task: binary_classification
    data:
      reference: {path: data/reference.parquet}
      production: {url: "sqlite:///data/transactions.db", table: scored_transactions}
      timestamp: event_time
      prediction: predicted_fraud
      score: fraud_score
      label: is_fraud
    features:
      numeric: [amount, card_age_days, hour, distance_km]
      categorical: [merchant_category, country, channel]
    drift:
      window: 7d
      numeric_method: wasserstein
      categorical_method: jensen_shannon
      thresholds: {default: 0.1, card_age_days: 0.15}
    kpis:
      - name: missed_fraud_rate
        label: Missed fraud
        aggregate: rate
        where: "is_fraud == 1 and predicted_fraud == 0"
        of: "is_fraud == 1"
        alert: {above_baseline_pct: 25, baseline_windows: 4}
      - name: missed_fraud_amount
        label: Fraud amount missed
        aggregate: sum
        column: amount
        where: "is_fraud == 1 and predicted_fraud == 0"
        unit: USD
        alert: {above: 10000}
    performance:
      metrics: [precision, recall, roc_auc]
      alert: {recall: {below: 0.6}}
    schedule: "0 * * * *"
    retrain: {backend: python, entrypoint: "package.module:function", auto: true, cooldown: 24h}
"""


def reference_frame(rows: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "event_time": pd.date_range("2024-01-01", periods=rows, freq="h"),
        "amount": rng.gamma(2.0, 40.0, rows),
        "card_age_days": rng.integers(0, 2000, rows),
        "hour": rng.integers(0, 24, rows),
        "distance_km": rng.random(rows) * 500,
        "merchant_category": rng.choice(["grocery", "travel", "online"], rows),
        "country": rng.choice(["US", "CA", "FR"], rows),
        "channel": rng.choice(["web", "pos"], rows),
        "fraud_score": rng.random(rows),
        "predicted_fraud": rng.integers(0, 2, rows),
        "is_fraud": rng.integers(0, 2, rows),
    })


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec folder with real reference data; the working directory, so file names read as given."""
    (tmp_path / "data").mkdir()
    reference_frame().to_parquet(tmp_path / "data" / "reference.parquet")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, text: str, name: str = "fraud.yml") -> str:
    (folder / name).write_text(text)
    return name


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    """1-based line of the first line of `text` containing `fragment`."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


def problems(name: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(name)
    assert str(caught.value) == "\n".join(str(issue) for issue in caught.value.issues)
    return str(caught.value).splitlines()


# ---------------------------------------------------------------- valid specs


def test_valid_spec_loads_with_defaults(folder: Path) -> None:
    loaded = load_spec(write(folder, SPEC))
    assert isinstance(loaded, LoadedSpec)
    assert loaded.base_dir == folder.resolve() and loaded.path == (folder / "fraud.yml").resolve()
    spec = loaded.spec
    assert spec.project.key == "card-fraud" and spec.project.risk_tier == "high"
    assert spec.channels.for_role("risk_manager") == "C0RISK"
    assert [step.quorum for step in spec.blueprint.steps] == [1, 1]
    model = spec.get_model("fraud-detector")
    assert model is not None and spec.person(model.owner).name == "Eli"
    assert model.drift.window == timedelta(days=7) and model.drift.alpha == 0.05
    assert model.drift.threshold_for("card_age_days") == 0.15 and model.drift.threshold_for("hour") == 0.1
    assert model.performance.window == timedelta(days=7)
    assert [kpi.window for kpi in model.kpis] == [timedelta(days=7)] * 2
    assert model.kpis[0].alert.baseline_windows == 4 and model.kpis[1].alert.above == 10000
    assert model.data_quality == DataQualitySpec(min_rows_vs_baseline_pct=50, baseline_windows=4)
    assert model.data_quality.max_null_share is None  # judged against the reference's own missing share
    assert model.deploy == DeploySpec(backend="registry")
    assert model.retrain.cooldown == timedelta(hours=24) and model.retrain.auto is True
    assert model.kpis[0].where_expression().columns == frozenset({"is_fraud", "predicted_fraud"})
    assert model.columns() == ["event_time", "predicted_fraud", "fraud_score", "is_fraud", "amount",
                               "card_age_days", "hour", "distance_km", "merchant_category", "country", "channel"]


def test_json_dump_round_trips(folder: Path) -> None:
    spec = load_spec(write(folder, SPEC)).spec
    dumped = spec.model_dump(mode="json")
    assert dumped["models"][0]["drift"]["window"] == "7d"
    assert dumped["models"][0]["retrain"]["cooldown"] == "1d"
    assert ProjectSpec.model_validate(dumped) == spec


def test_optional_keys(folder: Path) -> None:
    text = edit(SPEC, "  initiative:", "  description: Blocks fraudulent card payments\n  initiative:")
    text = edit(text, "      label: is_fraud\n", "      label: is_fraud\n      label_time: event_time\n")
    text = edit(text, '    schedule: "0 * * * *"\n',
                '    schedule: "*/15 * * * 1-5"\n'
                "    data_quality: {max_null_share: 0.2, null_share_rise: {points: 0.1, relative: 1}}\n"
                "    deploy: {backend: webhook, url: 'https://deploy.example/hook'}\n")
    text = edit(text, "      alert: {recall: {below: 0.6}}", "      alert: {recall: {below: 0.6}}\n      window: 1d")
    text = edit(text, "        unit: USD", "        unit: USD\n        window: 12h")
    model = load_spec(write(folder, text)).spec.models[0]
    assert model.data.label_time == "event_time"
    assert model.data_quality.max_null_share == 0.2 and model.data_quality.baseline_windows == 4
    assert model.data_quality.null_share_rise.allowed(0.08) == pytest.approx(0.18)  # 8% may double; 0% may reach 10%
    assert model.data_quality.null_share_rise.allowed(0.0) == pytest.approx(0.1)
    assert model.deploy.url == "https://deploy.example/hook"
    assert model.performance.window == timedelta(days=1)
    assert [kpi.window for kpi in model.kpis] == [timedelta(days=7), timedelta(hours=12)]


def test_demo_spec_is_valid(tmp_path: Path) -> None:
    shutil.copy(DEMO_SPEC, tmp_path / "card-fraud.yml")
    (tmp_path / "data").mkdir()
    reference_frame().to_parquet(tmp_path / "data" / "reference.parquet")
    spec = load_spec(tmp_path / "card-fraud.yml").spec
    model = spec.models[0]
    assert model.retrain.entrypoint == "jobs.training:retrain"
    assert model.data.production.url == "sqlite:///data/transactions.db"
    assert model.data.reference.path == "data/reference.parquet"


def test_sql_reference_resolves_next_to_the_spec(folder: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{folder / 'data' / 'ref.db'}")
    reference_frame().to_sql("reference", engine, index=False)
    engine.dispose()
    text = edit(SPEC, "reference: {path: data/reference.parquet}",
                'reference: {url: "sqlite:///data/ref.db", table: reference}')
    (folder / "nested").mkdir()
    shutil.move(folder / "data", folder / "nested" / "data")
    write(folder / "nested", text)
    assert load_spec(folder / "nested" / "fraud.yml").spec.models[0].data.reference.table == "reference"


# ---------------------------------------------------------------- each mistake, its line and location


def test_unknown_column_with_suggestion(folder: Path) -> None:
    text = edit(SPEC, "numeric: [amount, card_age_days, hour, distance_km]",
                "numeric: [amount, card_age_days, card_agee, distance_km]")
    assert line_of(text, "card_agee") == 33
    assert problems(write(folder, text)) == [
        "fraud.yml:33 models[0].features.numeric[2]: unknown column 'card_agee' (did you mean 'card_age_days'?)"]


def test_unknown_column_in_a_kpi_expression(folder: Path) -> None:
    text = edit(SPEC, 'of: "is_fraud == 1"', 'of: "is_frad == 1"')
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'is_frad')} models[0].kpis[0].of: unknown column 'is_frad' "
        "(did you mean 'is_fraud'?)"]


def test_unknown_column_without_close_match(folder: Path) -> None:
    text = edit(SPEC, "      score: fraud_score", "      score: zzz")
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'score: zzz')} models[0].data.score: unknown column 'zzz' "
        "(not in the reference data)"]


def test_column_of_the_wrong_kind(folder: Path) -> None:
    text = edit(SPEC, "numeric: [amount,", "numeric: [country, amount,")
    text = edit(text, "categorical: [merchant_category, country, channel]", "categorical: [merchant_category, channel]")
    text = edit(text, "timestamp: event_time", "timestamp: hour")
    name = write(folder, text)
    assert problems(name) == [
        f"fraud.yml:{line_of(text, 'timestamp: hour')} models[0].data.timestamp: column 'hour' holds numeric values "
        "in the reference data; the timestamp needs date-times",
        f"fraud.yml:{line_of(text, 'numeric: [country')} models[0].features.numeric[0]: column 'country' holds string "
        "values in the reference data; a numeric feature needs numbers (list it under categorical?)",
    ]


def test_unknown_key_with_suggestion(folder: Path) -> None:
    text = edit(SPEC, "  owner: U0ML0001\n  sponsors", "  onwer: U0ML0001\n  sponsors")
    assert problems(write(folder, text)) == [
        "fraud.yml:1 project: missing required key 'owner'",
        "fraud.yml:5 project: unknown key 'onwer' (did you mean 'owner'?)",
    ]


def test_unknown_key_lists_the_allowed_ones(folder: Path) -> None:
    text = edit(SPEC, "    drift:\n", "    drift:\n      colour: blue\n")
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'colour')} models[0].drift: unknown key 'colour' (expected one of window, "
        "numeric_method, categorical_method, thresholds, alpha, missing_share_change)"]


def test_bad_enum(folder: Path) -> None:
    text = edit(SPEC, "risk_tier: high", "risk_tier: hihg")
    assert problems(write(folder, text)) == [
        "fraud.yml:7 project.risk_tier: expected one of low, medium, high, got 'hihg' (did you mean 'high'?)"]


def test_bad_enum_in_a_list_and_a_drift_method(folder: Path) -> None:
    text = edit(SPEC, "roles: [it_ops]", "roles: [it_ops, ops]")
    text = edit(text, "numeric_method: wasserstein", "numeric_method: kl")
    assert problems(write(folder, text)) == [
        "fraud.yml:13 people[3].roles[1]: expected one of business, ml_engineer, risk_manager, it_ops, admin, "
        "got 'ops' (did you mean 'it_ops'?)",
        f"fraud.yml:{line_of(text, 'numeric_method')} models[0].drift.numeric_method: expected one of wasserstein, "
        "psi, ks, got 'kl'",
    ]


def test_missing_required_key(folder: Path) -> None:
    text = edit(SPEC, "    owner: U0ML0001\n    task", "    task")
    assert problems(write(folder, text)) == ["fraud.yml:21 models[0]: missing required key 'owner'"]


def test_missing_top_level_key(folder: Path) -> None:
    text = SPEC[SPEC.index("people:"):]
    assert problems(write(folder, text)) == ["fraud.yml:1: missing required key 'project'"]


def test_wrong_types(folder: Path) -> None:
    text = edit(SPEC, "tags: [fraud, payments]", "tags: fraud")
    text = edit(text, "quorum: 1}", "quorum: lots}")
    text = edit(text, "auto: true", "auto: maybe")
    assert problems(write(folder, text)) == [
        "fraud.yml:8 project.tags: expected a list, got 'fraud'",
        "fraud.yml:19 blueprint.steps[1].quorum: expected a whole number, got 'lots'",
        f"fraud.yml:{line_of(text, 'auto: maybe')} models[0].retrain.auto: expected true or false, got 'maybe'",
    ]


def test_bad_cron(folder: Path) -> None:
    text = edit(SPEC, 'schedule: "0 * * * *"', 'schedule: "0 * * *"')
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'schedule')} models[0].schedule: invalid cron schedule '0 * * *': "
        "a cron schedule has 5 fields (minute hour day month weekday), got 4"]


def test_a_bad_day_of_week_is_named(folder: Path) -> None:
    text = edit(SPEC, 'schedule: "0 * * * *"', 'schedule: "0 6 * * 8"')
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'schedule')} models[0].schedule: invalid cron schedule '0 6 * * 8': "
        "'8' is not a day of the week (0-7 or sun-sat)"]


def test_bad_duration(folder: Path) -> None:
    text = edit(SPEC, "cooldown: 24h", "cooldown: 1 day")
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'cooldown')} models[0].retrain.cooldown: expected a duration like 30m, 1h, 7d or "
        "2w, got '1 day'"]


def test_unparsable_kpi_expression(folder: Path) -> None:
    text = edit(SPEC, 'of: "is_fraud == 1"', 'of: "__import__(\'os\').system(\'ls\')"')
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, '__import__')} models[0].kpis[0].of: function calls are not allowed: "
        "'__import__('os').system(...)'"]


def test_unknown_person_as_owner(folder: Path) -> None:
    text = edit(SPEC, "    owner: U0ML0001\n    task", "    owner: U0ML0002\n    task")
    text = edit(text, "sponsors: [U0BIZ001]", "sponsors: [Dana]")
    assert problems(write(folder, text)) == [
        "fraud.yml:6 project.sponsors[0]: unknown person 'Dana' (use the Slack id: Dana is 'U0BIZ001')",
        "fraud.yml:23 models[0].owner: unknown person 'U0ML0002' (not in people; did you mean 'U0ML0001'?)",
    ]


def test_duplicate_people_and_model_keys(folder: Path) -> None:
    text = edit(SPEC, "{slack_id: U0OPS001,", "{slack_id: U0RISK01,")
    model = SPEC[SPEC.index("  - key: fraud-detector"):]
    name = write(folder, text + model)
    second = len(text.splitlines()) + 1
    assert problems(name) == [
        "fraud.yml:13 people[3].slack_id: duplicate slack_id 'U0RISK01' (also people[2])",
        f"fraud.yml:{second} models[1].key: duplicate model key 'fraud-detector' (also at models[0].key)",
    ]


def test_yaml_syntax_error(folder: Path) -> None:
    text = edit(SPEC, "  tags: [fraud, payments]", "  tags: [fraud, payments")
    assert problems(write(folder, text)) == ["fraud.yml:9: invalid YAML: expected ',' or ']', but got ':'"]


def test_yaml_indentation_error(folder: Path) -> None:
    text = edit(SPEC, "  risk_tier: high", "   risk_tier: high")
    assert problems(write(folder, text)) == [
        "fraud.yml:7: invalid YAML: expected <block end>, but found '<block mapping start>' (check the indentation)"]


def test_duplicate_yaml_key(folder: Path) -> None:
    text = edit(SPEC, "  risk_tier: high", "  risk_tier: high\n  risk_tier: low")
    assert problems(write(folder, text)) == [
        "fraud.yml:8 project.risk_tier: duplicate key 'risk_tier' (first at line 7)"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "fraud.yml:1: the file is empty; expected project, people, channels, blueprint and models"),
    ("# nothing here\n", "fraud.yml:1: the file is empty; expected project, people, channels, blueprint and models"),
    ("- project\n- people\n", "fraud.yml:1: expected a mapping (project:, people:, ...) at the top level, got a list"),
    ("just text\n", "fraud.yml:1: expected a mapping (project:, people:, ...) at the top level, got 'just text'"),
    ("a: 1\n---\nb: 2\n", "fraud.yml:2: invalid YAML: but found another document"),
    ("x: !!python/object:os.system {}\n", "fraud.yml:1: invalid YAML: could not determine a constructor for the tag "
                                           "'tag:yaml.org,2002:python/object:os.system'"),
])
def test_not_a_spec(folder: Path, text: str, message: str) -> None:
    assert problems(write(folder, text)) == [message]


def test_missing_file(folder: Path) -> None:
    assert problems("nowhere.yml") == ["nowhere.yml:1: file not found"]
    assert problems("data") == ["data:1: is a folder, not a spec file"]


def test_not_utf8(folder: Path) -> None:
    (folder / "fraud.yml").write_bytes(SPEC.encode()[:30] + b"\n  name: Caf\xe9\n")
    assert problems("fraud.yml") == ["fraud.yml:4: the file is not UTF-8 text"]


def test_reference_source_unreadable(folder: Path) -> None:
    (folder / "data" / "reference.parquet").write_bytes(b"garbage")
    [message] = problems(write(folder, SPEC))
    assert message.startswith("fraud.yml:26 models[0].data.reference: cannot read the reference data: cannot read ")
    assert "reference.parquet as parquet" in message


def test_reference_source_missing(folder: Path) -> None:
    text = edit(SPEC, "data/reference.parquet", "data/ref-*.parquet")
    [message] = problems(write(folder, text))
    assert message.startswith("fraud.yml:26 models[0].data.reference: cannot read the reference data: no file matches ")


def test_multiple_problems_are_reported_together(folder: Path) -> None:
    text = edit(SPEC, "  owner: U0ML0001\n  sponsors", "  onwer: U0ML0001\n  sponsors")
    text = edit(text, "risk_tier: high", "risk_tier: hihg")
    text = edit(text, "hour, distance_km]", "hour, distanse_km]")
    text = edit(text, "window: 7d", "window: 7x")
    text = edit(text, "    owner: U0ML0001\n    task", "    owner: U0NOBODY\n    task")
    text = edit(text, 'schedule: "0 * * * *"', 'schedule: "61 * * * *"')
    assert problems(write(folder, text)) == [
        "fraud.yml:1 project: missing required key 'owner'",
        "fraud.yml:5 project: unknown key 'onwer' (did you mean 'owner'?)",
        "fraud.yml:7 project.risk_tier: expected one of low, medium, high, got 'hihg' (did you mean 'high'?)",
        "fraud.yml:23 models[0].owner: unknown person 'U0NOBODY' (not in people)",
        "fraud.yml:33 models[0].features.numeric[3]: unknown column 'distanse_km' (did you mean 'distance_km'?)",
        "fraud.yml:36 models[0].drift.window: expected a duration like 30m, 1h, 7d or 2w, got '7x'",
        "fraud.yml:57 models[0].schedule: invalid cron schedule '61 * * * *': Error validating expression '61': "
        "the last value (61) is higher than the maximum value (59)",
    ]


def test_issues_carry_their_parts(folder: Path) -> None:
    text = edit(SPEC, "risk_tier: high", "risk_tier: hihg")
    with pytest.raises(SpecError) as caught:
        load_spec(write(folder, text))
    assert caught.value.issues == [SpecIssue(
        file="fraud.yml", line=7, location="project.risk_tier",
        message="expected one of low, medium, high, got 'hihg' (did you mean 'high'?)")]


# ---------------------------------------------------------------- model rules


# (old, new, location, message, at): `at` is the text of the line the issue must point to, with
# an occurrence number when it repeats
MODEL_RULES = [
    ("thresholds: {default: 0.1, card_age_days: 0.15}", "thresholds: {default: 0.1, card_age: 0.15}",
     "models[0].drift.thresholds.card_age",
     "threshold for 'card_age', which is not a listed feature (did you mean 'card_age_days'?)", "thresholds:"),
    ("thresholds: {default: 0.1, card_age_days: 0.15}", "thresholds: {default: 0, card_age_days: 0.15}",
     "models[0].drift.thresholds.default", "must be greater than 0, got 0", "thresholds:"),
    ("alert: {recall: {below: 0.6}}", "alert: {recal: {below: 0.6}}",
     "models[0].performance.alert.recal", "unknown metric 'recal' (did you mean 'recall'?)", "recal:"),
    ("alert: {recall: {below: 0.6}}", "alert: {f1: {below: 0.6}}",
     "models[0].performance.alert.f1", "alert on 'f1', which is not in performance.metrics", "f1:"),
    ("alert: {recall: {below: 0.6}}", "alert: {recall: {below: 60}}",
     "models[0].performance.alert.recall.below", "recall is a share between 0 and 1, so a line below 60 can't be reached", "below: 60"),
    ("alert: {recall: {below: 0.6}}", "alert: {recall: {}}",
     "models[0].performance.alert.recall", "give 'above' or 'below' (or both)", "recall: {}"),
    ("metrics: [precision, recall, roc_auc]", "metrics: [precision, recall, auc]", "models[0].performance.metrics[2]",
     ("expected one of precision, recall, f1, roc_auc, accuracy, mae, rmse, r2, mape, macro_f1, weighted_f1, "
      "log_loss, got 'auc' (did you mean 'roc_auc'?)"), "auc]"),
    ("metrics: [precision, recall, roc_auc]", "metrics: []",
     "models[0].performance.metrics", "expected at least 1 item", "metrics: []"),
    ("        column: amount\n", "",
     "models[0].kpis[1]", "aggregate 'sum' needs 'column' (the numeric column to add up)",
     "- name: missed_fraud_amount"),
    ('        of: "is_fraud == 1"\n', "", "models[0].kpis[0]",
     "aggregate 'rate' needs 'where' (the rows counted) and 'of' (the rows it is a share of)",
     "- name: missed_fraud_rate"),
    ("aggregate: sum", "aggregate: count",
     "models[0].kpis[1]", "'column' only applies to aggregates sum and mean, not 'count'",
     "- name: missed_fraud_amount"),
    ("alert: {above: 10000}", "alert: {baseline_windows: 2}", "models[0].kpis[1].alert",
     "give at least one of above, below, above_baseline_pct, below_baseline_pct", "baseline_windows: 2"),
    ("name: missed_fraud_amount", "name: missed_fraud_rate",
     "models[0].kpis[1].name", "duplicate KPI name 'missed_fraud_rate' (also kpis[0])", ("missed_fraud_rate", 2)),
    ("name: missed_fraud_amount", "name: Missed Amount", "models[0].kpis[1].name",
     "expected a name of lowercase letters, digits and '_' (like missed_fraud_rate), got 'Missed Amount'",
     "Missed Amount"),
    ("- key: fraud-detector", "- key: Fraud_Detector", "models[0].key",
     "expected a slug of lowercase letters, digits and '-' (like card-fraud), got 'Fraud_Detector'", "Fraud_Detector"),
    ("categorical: [merchant_category, country, channel]", "categorical: [merchant_category, country, amount]",
     "models[0].features.categorical[2]", "feature 'amount' is listed twice", "categorical:"),
    ("{slack_id: U0OPS001,", "{slack_id: omar,",
     "people[3].slack_id", "expected a Slack user id (like U0123ABCD), got 'omar'", "omar"),
    ("role: risk_manager", "role: risk", "blueprint.steps[1].role",
     "expected one of business, ml_engineer, risk_manager, it_ops, admin, got 'risk' (did you mean 'risk_manager'?)",
     "role: risk"),
    ("quorum: 1}", "quorum: 0}", "blueprint.steps[1].quorum", "must be at least 1, got 0", "quorum: 0"),
    ("{name: risk review,", "{name: technical validation,", "blueprint.steps[1].name",
     "duplicate step name 'technical validation' (also at blueprint.steps[0].name)", ("technical validation", 2)),
    ("channels: {business: C0BIZ,", "channels: {bizness: C0BIZ,",
     "channels", "unknown key 'bizness' (did you mean 'business'?)", "bizness"),
    ("task: binary_classification", "task: ranking", "models[0].task",
     "expected one of binary_classification, regression, multiclass_classification, got 'ranking'", "task: ranking"),
    ("{path: data/reference.parquet}", "{path: data/reference.parquet, table: x}", "models[0].data.reference",
     "'table' only applies to a database 'url', not to a file 'path'", "reference:"),
    ('{url: "sqlite:///data/transactions.db", table: scored_transactions}', '{url: "sqlite:///data/transactions.db"}',
     "models[0].data.production", "a database 'url' needs either 'table' or 'query', not both or neither",
     "production:"),
]


@pytest.mark.parametrize(("old", "new", "location", "message", "at"), MODEL_RULES)
def test_model_rules(folder: Path, old: str, new: str, location: str, message: str, at: str | tuple[str, int]) -> None:
    text = edit(SPEC, old, new)
    fragment, occurrence = (at, 1) if isinstance(at, str) else at
    line = [n for n, content in enumerate(text.splitlines(), 1) if fragment in content][occurrence - 1]
    assert problems(write(folder, text)) == [f"fraud.yml:{line} {location}: {message}"]


def test_roc_auc_needs_a_score_and_metrics_need_a_label(folder: Path) -> None:
    text = edit(SPEC, "      score: fraud_score\n      label: is_fraud\n", "")
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'performance:')} models[0].performance: performance metrics need data.label "
        "(the column with the true outcome)",
        f"fraud.yml:{line_of(text, 'metrics:')} models[0].performance.metrics[2]: roc_auc needs data.score "
        "(the column with the model's score or probability)",
    ]


@pytest.mark.parametrize(("retrain", "message"), [
    ("{backend: python}", "backend 'python' needs 'entrypoint'"),
    ("{backend: python, entrypoint: train.py}", "expected an entrypoint like package.module:function, got 'train.py'"),
    ("{backend: python, entrypoint: 'a.b:c', url: 'https://x'}", "'url' does not apply to backend 'python'"),
    ("{backend: webhook}", "backend 'webhook' needs 'url'"),
    ("{backend: webhook, url: 'ftp://x'}", "expected an http(s) URL, got 'ftp://x'"),
    ("{backend: github_actions, repo: acme/fraud}", "backend 'github_actions' needs 'workflow'"),
    ("{backend: github_actions, repo: acme, workflow: retrain.yml}",
     "expected a GitHub repository like owner/name, got 'acme'"),
    ("{backend: airflow, url: 'https://airflow.example'}", "backend 'airflow' needs 'dag_id'"),
])
def test_retrain_backends_need_their_keys(folder: Path, retrain: str, message: str) -> None:
    text = edit(SPEC, '{backend: python, entrypoint: "package.module:function", auto: true, cooldown: 24h}', retrain)
    [found] = problems(write(folder, text))
    assert found.startswith(f"fraud.yml:{line_of(text, 'retrain:')} models[0].retrain")
    assert found.endswith(message)


def test_retrain_backend_defaults() -> None:
    github = RetrainSpec.model_validate({"backend": "github_actions", "repo": "acme/fraud", "workflow": "retrain.yml"})
    assert github.ref == "main" and github.auto is False and github.cooldown == timedelta(hours=24)
    airflow = RetrainSpec.model_validate({"backend": "airflow", "url": "https://af.example", "dag_id": "retrain"})
    assert airflow.dag_id == "retrain"


def test_deploy_webhook_needs_url(folder: Path) -> None:
    text = edit(SPEC, '    schedule: "0 * * * *"\n', '    schedule: "0 * * * *"\n    deploy: {backend: webhook}\n')
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'deploy:')} models[0].deploy: backend 'webhook' needs 'url'"]


def test_artifact_roots_are_folders_next_to_the_spec_or_absolute(folder: Path) -> None:
    (folder / "models").mkdir()
    (folder / "shared").mkdir()
    text = edit(SPEC, '    schedule: "0 * * * *"\n',
                f'    schedule: "0 * * * *"\n    artifact_roots: [models, "{folder / "shared"}"]\n')
    model = load_spec(write(folder, text)).spec.models[0]
    assert model.artifact_roots == ["models", str(folder / "shared")]
    assert load_spec(write(folder, SPEC)).spec.models[0].artifact_roots == []


@pytest.mark.parametrize(("roots", "message"), [
    ('["s3://models/fraud"]', "an artifact root is a folder path, not a URL: got 's3://models/fraud'"),
    ('["file:///srv/models"]', "an artifact root is a folder path, not a URL: got 'file:///srv/models'"),
    ('["/"]', "artifact root '/' is the whole file system; name the folder models are written to"),
    ('[""]', "must not be empty"),
])
def test_artifact_roots_that_would_trust_too_much_are_refused(folder: Path, roots: str, message: str) -> None:
    text = edit(SPEC, '    schedule: "0 * * * *"\n', f'    schedule: "0 * * * *"\n    artifact_roots: {roots}\n')
    [found] = problems(write(folder, text))
    assert found.startswith(f"fraud.yml:{line_of(text, 'artifact_roots:')} models[0].artifact_roots[0]")
    assert found.endswith(message)


def test_an_artifact_root_that_is_not_a_folder_is_named(folder: Path) -> None:
    text = edit(SPEC, '    schedule: "0 * * * *"\n', '    schedule: "0 * * * *"\n    artifact_roots: [modles]\n')
    assert problems(write(folder, text)) == [
        f"fraud.yml:{line_of(text, 'artifact_roots:')} models[0].artifact_roots[0]: artifact root 'modles' is not "
        f"a folder (looked for {(folder / 'modles').resolve()})"]


# ---------------------------------------------------------------- several files


def test_load_specs_reports_every_file(folder: Path) -> None:
    good = write(folder, SPEC, "a.yml")
    bad = write(folder, edit(SPEC, "risk_tier: high", "risk_tier: hihg"), "b.yml")
    same_key = write(folder, SPEC, "c.yml")
    assert [loaded.spec.project.key for loaded in load_specs([good])] == ["card-fraud"]
    with pytest.raises(SpecError) as caught:
        load_specs([good, bad, same_key, "gone.yml"])
    assert str(caught.value).splitlines() == [
        "b.yml:7 project.risk_tier: expected one of low, medium, high, got 'hihg' (did you mean 'high'?)",
        "c.yml:2 project.key: project key 'card-fraud' is also used by a.yml",
        "gone.yml:1: file not found",
    ]


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)), ("45s", timedelta(seconds=45)),
    ("1h30m", timedelta(minutes=90)), (" 7D ", timedelta(days=7)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("7", "expected a duration like 30m, 1h, 7d or 2w, got '7'"),
    ("1 day", "expected a duration like 30m, 1h, 7d or 2w, got '1 day'"),
    ("-1h", "expected a duration like 30m, 1h, 7d or 2w, got '-1h'"),
    ("0h", "a duration must be longer than zero, got '0h'"),
])
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_yaml_alias_bomb_is_reported_not_expanded(folder: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    found = problems(write(folder, "\n".join(lines) + "\n" + SPEC.replace("tags: [fraud, payments]", "tags: *a9")))
    assert found[:2] == ["fraud.yml:1: unknown key 'a0' (expected one of project, people, channels, blueprint, models, catalog)",
                         "fraud.yml:2: unknown key 'a1' (expected one of project, people, channels, blueprint, models, catalog)"]
    # an alias has no node of its own: the line is that of the anchored value
    assert "fraud.yml:9 project.tags[0]: expected text, got a list" in found


def test_a_bad_database_url_never_echoes_its_password(folder: Path) -> None:
    text = edit(SPEC, '"sqlite:///data/transactions.db"', '"postgresql://eli:hunter2@db:port/fraud"')
    found = problems(write(folder, text))
    assert found == [f"fraud.yml:{line_of(text, 'production:')} models[0].data.production: not a valid database URL "
                     "(expected dialect://user:password@host/database)"]
    assert "hunter2" not in "\n".join(found)
