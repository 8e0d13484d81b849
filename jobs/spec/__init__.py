"""Project specs: the YAML file that puts a project, its people and its models under Flywheel.

model.py holds the pydantic shape, load.py reads a file and refuses it as a whole, issues.py places
each problem on its line, checks.py runs the cross checks (people, keys, columns, artifact roots), reach.py
what the spec promises to reach (channels for alerted personas, source URLs, and when applying, production data).
"""

from jobs.spec.issues import LoadedSpec, SpecError, SpecIssue
from jobs.spec.load import load_spec, load_specs
from jobs.spec.model import (
    METRICS,
    BlueprintSpec,
    BlueprintStepSpec,
    CatalogEntrySpec,
    ChannelsSpec,
    DataQualitySpec,
    DataSpec,
    DeploySpec,
    DriftSpec,
    FeaturesSpec,
    KpiAlertSpec,
    KpiSpec,
    MetricAlertSpec,
    ModelSpec,
    PerformanceSpec,
    PersonSpec,
    ProjectInfoSpec,
    ProjectSpec,
    RetrainSpec,
    SourceSpec,
)
from jobs.spec.values import format_duration, parse_duration

__all__ = [
    "METRICS", "BlueprintSpec", "BlueprintStepSpec", "CatalogEntrySpec", "ChannelsSpec", "DataQualitySpec",
    "DataSpec", "DeploySpec", "DriftSpec", "FeaturesSpec", "KpiAlertSpec", "KpiSpec", "LoadedSpec",
    "MetricAlertSpec", "ModelSpec", "PerformanceSpec", "PersonSpec", "ProjectInfoSpec", "ProjectSpec",
    "RetrainSpec", "SourceSpec", "SpecError", "SpecIssue", "format_duration", "load_spec", "load_specs",
    "parse_duration",
]
