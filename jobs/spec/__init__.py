"""Project specs: the YAML file that puts a project, its people and its models under Flywheel.

model.py holds the pydantic shape, library.py blueprint libraries and the choice of a project's
blueprint, load.py reads a file and refuses it as a whole, issues.py places
each problem on its line, checks.py runs the cross checks (people, keys, columns, artifact roots), reach.py
what the spec promises to reach (channels for alerted personas, source URLs, and when applying, production data).
"""

from jobs.spec.issues import LoadedLibrary, LoadedSpec, SpecError, SpecIssue
from jobs.spec.load import Loaded, load_documents, load_spec, load_specs
from jobs.spec.model import (
    CHECK_KINDS,
    METRICS,
    BlueprintSpec,
    BlueprintStepSpec,
    CatalogEntrySpec,
    ChannelsSpec,
    CheckSpec,
    DataQualitySpec,
    DataSpec,
    DeploySpec,
    DriftSpec,
    FeaturesSpec,
    KpiAlertSpec,
    KpiSpec,
    LibraryBlueprintSpec,
    LibrarySpec,
    MetricAlertSpec,
    MetricCheckSpec,
    ModelSpec,
    PerformanceSpec,
    PersonSpec,
    ProjectInfoSpec,
    ProjectSpec,
    RegistrySpec,
    RetrainSpec,
    SourceSpec,
)
from jobs.spec.values import format_duration, parse_duration

__all__ = [
    "CHECK_KINDS",
    "METRICS",
    "BlueprintSpec",
    "BlueprintStepSpec",
    "CatalogEntrySpec",
    "ChannelsSpec",
    "CheckSpec",
    "DataQualitySpec",
    "DataSpec",
    "DeploySpec",
    "DriftSpec",
    "FeaturesSpec",
    "KpiAlertSpec",
    "KpiSpec",
    "LibraryBlueprintSpec",
    "LibrarySpec",
    "Loaded",
    "LoadedLibrary",
    "LoadedSpec",
    "MetricAlertSpec",
    "MetricCheckSpec",
    "ModelSpec",
    "PerformanceSpec",
    "PersonSpec",
    "ProjectInfoSpec",
    "ProjectSpec",
    "RegistrySpec", "RetrainSpec",
    "SourceSpec",
    "SpecError",
    "SpecIssue",
    "format_duration",
    "load_documents",
    "load_spec",
    "load_specs",
    "parse_duration",
]
