"""A model's `registry` section (MLflow): what it takes, and the one line a mistake in it gets. Runs without
the mlflow extra: the spec is only read here."""

from datetime import timedelta

import pytest

from jobs.spec import SpecError, load_spec
from tests.support.churn import ELI, NOOR, NOW, OMAR, SPEC, subscribers


def test_a_registry_takes_the_server_the_model_and_the_alias_with_defaults(tmp_path):
    (tmp_path / "data").mkdir()
    subscribers(NOW - timedelta(weeks=10), 28, seed=1).to_parquet(tmp_path / "data" / "reference.parquet")
    spec = tmp_path / "retention.yml"
    spec.write_text(SPEC.format(eli=ELI, noor=NOOR, omar=OMAR, registry="    registry: {kind: mlflow, tracking_uri: "
                                "'https://mlflow.internal', name: churn-classifier}\n"))
    registry = load_spec(spec).spec.models[0].registry
    assert (registry.kind, registry.tracking_uri, registry.name, registry.alias, registry.schedule) == \
        ("mlflow", "https://mlflow.internal", "churn-classifier", "champion", "*/5 * * * *")


@pytest.mark.parametrize(("registry", "message"), [
    ("{kind: mlflow, tracking_uri: 'mlflow.internal:5000', name: churn}",
     "'tracking_uri' must be the tracking server's http(s) URL, like http://mlflow.internal:5000, not "
     "'mlflow.internal:5000'"),
    ("{kind: mlflow, tracking_uri: 'http://mlflow.internal:5000'}",
     "an MLflow registry needs 'name': the registered model's name in MLflow"),
    ("{kind: mlflow, tracking_uri: 'http://mlflow.internal:5000', name: churn/classifier}",
     "'name' 'churn/classifier' can't name a registered model in MLflow: it holds a slash or a quote; use the name "
     "MLflow shows for the model"),
    ("{kind: mlflow, name: churn}",
     "an MLflow registry needs 'tracking_uri': the tracking server's URL, like http://mlflow.internal:5000"),
])
def test_a_registry_without_a_name_or_with_a_bad_url_is_one_line_naming_the_fix(tmp_path, registry, message):
    (tmp_path / "data").mkdir()
    subscribers(NOW - timedelta(weeks=10), 28, seed=1).to_parquet(tmp_path / "data" / "reference.parquet")
    spec = tmp_path / "retention.yml"
    spec.write_text(SPEC.format(eli=ELI, noor=NOOR, omar=OMAR, registry=f"    registry: {registry}\n"))
    with pytest.raises(SpecError) as refused:
        load_spec(spec)
    [line] = str(refused.value).splitlines()
    assert "retention.yml:" in line and " models[0].registry: " in line and line.endswith(message)
