"""Project specs: the YAML file that puts a project, its people and its models under Flywheel.

`load_spec()` refuses a bad file as a whole and reports every problem found, each with the line of
the YAML node it concerns: syntax, shape (pydantic), cross references (people, keys) and the columns
of each model's reference data.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from jobs.expressions import Expression, parse
from jobs.sources import ColumnKind, SourceError, SourceSpec, open_source
from store.schedule import cron_trigger

__all__ = [
    "BlueprintSpec", "BlueprintStepSpec", "CatalogEntrySpec", "ChannelsSpec", "DataQualitySpec", "DataSpec", "DeploySpec",
    "DriftSpec", "FeaturesSpec", "KpiAlertSpec", "KpiSpec", "LoadedSpec", "MetricAlertSpec", "ModelSpec",
    "PerformanceSpec", "PersonSpec", "ProjectInfoSpec", "ProjectSpec", "RetrainSpec", "SourceSpec",
    "SpecError", "SpecIssue", "format_duration", "load_spec", "load_specs", "parse_duration",
]

Role = Literal["business", "ml_engineer", "risk_manager", "it_ops", "admin"]
Persona = Literal["business", "ml_engineer", "risk_manager", "it_ops"]
RiskTier = Literal["low", "medium", "high"]
Task = Literal["binary_classification"]
NumericDriftMethod = Literal["wasserstein", "psi", "ks"]
CategoricalDriftMethod = Literal["jensen_shannon", "psi", "chi_square"]
Metric = Literal["precision", "recall", "f1", "roc_auc", "accuracy"]
Aggregate = Literal["count", "sum", "mean", "rate"]
RetrainBackend = Literal["python", "webhook", "github_actions", "airflow"]
DeployBackend = Literal["registry", "webhook"]
CatalogKind = Literal["project", "model", "model_version", "dataset", "notebook", "repository", "dashboard",
                      "plugin"]

METRICS: tuple[str, ...] = get_args(Metric)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+[wdhms])+")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_ENTRYPOINT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_GITHUB_REPO = re.compile(r"[\w.-]+/[\w.-]+")


# ---------------------------------------------------------------- value types


def parse_duration(text: str) -> timedelta:
    """'30m', '1h', '24h', '7d', '2w' (or combined, '1h30m') -> timedelta."""
    compact = text.strip().lower().replace(" ", "")
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"expected a duration like 30m, 1h, 7d or 2w, got {text!r}")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([wdhms])", compact))
    if seconds == 0:
        raise ValueError(f"a duration must be longer than zero, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration, in the largest whole unit among d, h, m, s."""
    seconds = int(value.total_seconds())
    unit = next(u for u in "dhms" if seconds % _UNITS[u] == 0)
    return f"{seconds // _UNITS[unit]}{unit}"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        if value <= timedelta(0) or value % timedelta(seconds=1):
            raise ValueError(f"a duration must be a positive whole number of seconds, got {value}")
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected a duration like 30m, 1h, 7d or 2w, got {value!r}")


def _cron(value: str) -> str:
    text = " ".join(value.split())
    try:
        cron_trigger(text, timezone=UTC)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cron schedule {value!r}: {exc}") from None
    return text


def _pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


def _expression(value: str) -> str:
    parse(value)
    return value


def _artifact_root(value: str) -> str:
    if "://" in value or value.startswith("file:"):
        raise ValueError(f"an artifact root is a folder path, not a URL: got {value!r}")
    if "\x00" in value:
        raise ValueError("an artifact root cannot contain a NUL character")
    path = Path(value)
    if path.is_absolute() and path == Path(path.anchor):
        raise ValueError(f"artifact root {value!r} is the whole file system; name the folder models are written to")
    return value


Duration = Annotated[
    timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str, when_used="json")
]
Text = Annotated[str, StringConstraints(min_length=1)]
Column = Annotated[str, StringConstraints(min_length=1)]
Slug = Annotated[str, _pattern(_SLUG, "a slug of lowercase letters, digits and '-' (like card-fraud)")]
Name = Annotated[str, _pattern(_NAME, "a name of lowercase letters, digits and '_' (like missed_fraud_rate)")]
SlackUserId = Annotated[str, _pattern(_SLACK_USER, "a Slack user id (like U0123ABCD)")]
Cron = Annotated[str, AfterValidator(_cron)]
ExpressionText = Annotated[str, AfterValidator(_expression)]
# A folder whose files may be loaded as this model's artifacts; relative to the spec's folder.
ArtifactRoot = Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_artifact_root)]
Share = Annotated[float, Field(ge=0, le=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------- project, people, approvals


class ProjectInfoSpec(_Spec):
    key: Slug
    name: Text
    description: str = ""
    initiative: str = ""
    owner: Text
    sponsors: list[Text] = []
    risk_tier: RiskTier
    tags: list[Text] = []


class PersonSpec(_Spec):
    slack_id: SlackUserId
    name: Text
    roles: list[Role] = Field(min_length=1)


class ChannelsSpec(_Spec):
    """Slack channel id per persona; alerts for a persona go to its channel."""

    business: str | None = None
    ml_engineer: str | None = None
    risk_manager: str | None = None
    it_ops: str | None = None

    def for_role(self, role: str) -> str | None:
        return getattr(self, role, None) if role in get_args(Persona) else None


class BlueprintStepSpec(_Spec):
    name: Text
    role: Role
    quorum: int = Field(1, ge=1)


class BlueprintSpec(_Spec):
    """The approval steps a new model version goes through before it may be deployed."""

    name: Text
    steps: list[BlueprintStepSpec] = Field(min_length=1)


# ---------------------------------------------------------------- a model


class DataSpec(_Spec):
    reference: SourceSpec
    production: SourceSpec
    timestamp: Column
    prediction: Column
    score: Column | None = None
    label: Column | None = None
    label_time: Column | None = None


class FeaturesSpec(_Spec):
    numeric: list[Column] = []
    categorical: list[Column] = []

    @model_validator(mode="after")
    def _some(self) -> FeaturesSpec:
        if not self.numeric and not self.categorical:
            raise ValueError("list at least one numeric or categorical feature")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class DriftSpec(_Spec):
    window: Duration = timedelta(days=7)
    numeric_method: NumericDriftMethod = "wasserstein"
    categorical_method: CategoricalDriftMethod = "jensen_shannon"
    thresholds: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: {"default": 0.1})
    alpha: float = Field(0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _default_threshold(self) -> DriftSpec:
        self.thresholds.setdefault("default", 0.1)
        return self

    def threshold_for(self, feature: str) -> float:
        return self.thresholds.get(feature, self.thresholds["default"])


class KpiAlertSpec(_Spec):
    above: float | None = None
    below: float | None = None
    above_baseline_pct: float | None = Field(None, gt=0)
    below_baseline_pct: float | None = Field(None, gt=0)
    baseline_windows: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _some(self) -> KpiAlertSpec:
        if all(v is None for v in (self.above, self.below, self.above_baseline_pct, self.below_baseline_pct)):
            raise ValueError("give at least one of above, below, above_baseline_pct, below_baseline_pct")
        return self


class KpiSpec(_Spec):
    """A business KPI computed per window.

    count: rows matching `where` (all rows without it); sum/mean: of `column` over rows matching
    `where`; rate: rows matching both `where` and `of`, divided by rows matching `of`.
    """

    name: Name
    label: str | None = None
    aggregate: Aggregate
    column: Column | None = None
    where: ExpressionText | None = None
    of: ExpressionText | None = None
    unit: str | None = None
    window: Duration | None = None  # None in the file means drift.window; resolved by ModelSpec
    alert: KpiAlertSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KpiSpec:
        if self.aggregate in ("sum", "mean") and self.column is None:
            raise ValueError(f"aggregate '{self.aggregate}' needs 'column' (the numeric column to add up)")
        if self.aggregate in ("count", "rate") and self.column is not None:
            raise ValueError(f"'column' only applies to aggregates sum and mean, not '{self.aggregate}'")
        if self.aggregate == "rate" and (self.of is None or self.where is None):
            raise ValueError("aggregate 'rate' needs 'where' (the rows counted) and 'of' (the rows it is a share of)")
        if self.aggregate != "rate" and self.of is not None:
            raise ValueError(f"'of' only applies to aggregate rate, not '{self.aggregate}'")
        if self.label is None:
            self.label = self.name
        return self

    def where_expression(self) -> Expression | None:
        return parse(self.where) if self.where is not None else None

    def of_expression(self) -> Expression | None:
        return parse(self.of) if self.of is not None else None


class MetricAlertSpec(_Spec):
    above: Share | None = None
    below: Share | None = None

    @model_validator(mode="after")
    def _some(self) -> MetricAlertSpec:
        if self.above is None and self.below is None:
            raise ValueError("give 'above' or 'below' (or both)")
        return self


class PerformanceSpec(_Spec):
    metrics: list[Metric] = Field(min_length=1)
    alert: dict[str, MetricAlertSpec] = {}
    window: Duration | None = None  # None in the file means drift.window; resolved by ModelSpec


class DataQualitySpec(_Spec):
    max_null_share: Share = 0.05
    min_rows_vs_baseline_pct: float = Field(50, ge=0, le=100)
    baseline_windows: int = Field(4, ge=1)


_RETRAIN_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # backend -> (required, optional)
    "python": (("entrypoint",), ()),
    "webhook": (("url",), ()),
    "github_actions": (("repo", "workflow"), ("ref",)),
    "airflow": (("url", "dag_id"), ("api",)),
}


class RetrainSpec(_Spec):
    backend: RetrainBackend
    entrypoint: Annotated[str, _pattern(_ENTRYPOINT, "an entrypoint like package.module:function")] | None = None
    url: str | None = None
    repo: Annotated[str, _pattern(_GITHUB_REPO, "a GitHub repository like owner/name")] | None = None
    workflow: str | None = None
    ref: str | None = None
    dag_id: str | None = None
    api: Literal["v1", "v2"] | None = None  # Airflow's REST API: v1 is Airflow 2's, v2 Airflow 3's
    auto: bool = False
    cooldown: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _backend_keys(self) -> RetrainSpec:
        required, optional = _RETRAIN_KEYS[self.backend]
        for key in ("entrypoint", "url", "repo", "workflow", "ref", "dag_id", "api"):
            given = getattr(self, key) is not None
            if key in required and not given:
                raise ValueError(f"backend '{self.backend}' needs '{key}'")
            if given and key not in required + optional:
                raise ValueError(f"'{key}' does not apply to backend '{self.backend}'")
        if self.url is not None:
            _check_http_url(self.url)
        if self.backend == "github_actions" and self.ref is None:
            self.ref = "main"
        if self.backend == "airflow" and self.api is None:
            self.api = "v1"
        return self


class DeploySpec(_Spec):
    backend: DeployBackend = "registry"
    url: str | None = None

    @model_validator(mode="after")
    def _backend_keys(self) -> DeploySpec:
        if self.backend == "webhook" and self.url is None:
            raise ValueError("backend 'webhook' needs 'url'")
        if self.backend == "registry" and self.url is not None:
            raise ValueError("'url' does not apply to backend 'registry'")
        if self.url is not None:
            _check_http_url(self.url)
        return self


def _check_http_url(url: str) -> None:
    if not re.match(r"https?://[^/\s]+", url):
        raise ValueError(f"expected an http(s) URL, got {url!r}")


class ModelSpec(_Spec):
    key: Slug
    description: str = ""
    owner: Text
    task: Task = "binary_classification"
    tags: list[Text] = []
    data: DataSpec
    features: FeaturesSpec
    drift: DriftSpec = Field(default_factory=DriftSpec)
    kpis: list[KpiSpec] = []
    performance: PerformanceSpec | None = None
    data_quality: DataQualitySpec = Field(default_factory=DataQualitySpec)
    schedule: Cron = "0 * * * *"
    retrain: RetrainSpec | None = None
    deploy: DeploySpec = Field(default_factory=DeploySpec)
    # Folders, besides FLYWHEEL_ARTIFACTS, from which this model's artifacts may be registered and loaded.
    artifact_roots: list[ArtifactRoot] = []

    @model_validator(mode="after")
    def _default_windows(self) -> ModelSpec:
        if self.performance is not None and self.performance.window is None:
            self.performance.window = self.drift.window
        for kpi in self.kpis:
            if kpi.window is None:
                kpi.window = self.drift.window
        return self

    def columns(self) -> list[str]:
        """Every column this model reads, in a stable order, each once."""
        return list(dict.fromkeys(ref.column for ref in _column_refs(self)))


# ---------------------------------------------------------------- the catalog


def _http_url(value: str) -> str:
    _check_http_url(value)
    return value


class CatalogEntrySpec(_Spec):
    """An asset the registry doesn't know (a notebook, a repository, a dashboard...), listed in the catalog.

    Its key is `key`, or the title made a slug; the project is the spec's own.
    """

    kind: CatalogKind
    title: Text
    key: Slug | None = None
    description: str = ""
    owner: Text
    tags: list[Text] = []
    links: list[Annotated[str, AfterValidator(_http_url)]] = []
    status: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None

    @model_validator(mode="after")
    def _has_key(self) -> CatalogEntrySpec:
        if self.key is None and not self.slug:
            raise ValueError(f"give a 'key' (like team-dashboard): the title {self.title!r} has no letters or "
                             "digits to make one from")
        return self

    @property
    def slug(self) -> str:
        return self.key or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")[:100]


class ProjectSpec(_Spec):
    project: ProjectInfoSpec
    people: list[PersonSpec] = Field(min_length=1)
    channels: ChannelsSpec = Field(default_factory=ChannelsSpec)
    blueprint: BlueprintSpec
    models: list[ModelSpec] = Field(min_length=1)
    catalog: list[CatalogEntrySpec] = []

    def person(self, slack_id: str) -> PersonSpec | None:
        return next((p for p in self.people if p.slack_id == slack_id), None)

    def get_model(self, key: str) -> ModelSpec | None:
        return next((m for m in self.models if m.key == key), None)


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class SpecIssue:
    file: str
    line: int
    location: str
    message: str

    def __str__(self) -> str:
        where = f" {self.location}" if self.location else ""
        return f"{self.file}:{self.line}{where}: {self.message}"


class SpecError(Exception):
    """A spec file (or several) was refused; `issues` lists every problem, one per line in str()."""

    def __init__(self, issues: Iterable[SpecIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass(frozen=True)
class LoadedSpec:
    spec: ProjectSpec
    path: Path
    base_dir: Path  # relative data paths and SQLite files resolve against this folder


def load_spec(path: str | Path) -> LoadedSpec:
    """Load and validate one spec file, or raise SpecError listing every problem."""
    document = _load(Path(path), str(path))
    if document.issues or document.loaded is None:
        raise SpecError(document.issues)
    return document.loaded


def load_specs(paths: Iterable[str | Path]) -> list[LoadedSpec]:
    """Load several spec files; any problem in any file refuses them all, reporting all problems."""
    documents = [_load(Path(path), str(path)) for path in paths]
    owners: dict[str, str] = {}
    for document in documents:
        if document.loaded is None:
            continue
        key = document.loaded.spec.project.key
        if key in owners:
            document.add(("project", "key"), f"project key '{key}' is also used by {owners[key]}")
        owners.setdefault(key, document.label)
    issues = [issue for document in documents for issue in document.issues]
    if issues:
        raise SpecError(issues)
    return [document.loaded for document in documents if document.loaded is not None]


Loc = tuple[str | int, ...]


@dataclass
class _Document:
    label: str
    root: yaml.Node | None = None
    issues: list[SpecIssue] = field(default_factory=list)
    loaded: LoadedSpec | None = None

    def add(self, loc: Loc, message: str, *, at: Loc | None = None, line: int | None = None) -> None:
        number = line if line is not None else _line_of(self.root, loc if at is None else at)
        self.issues.append(SpecIssue(self.label, number, _format_loc(loc), message))


def _load(path: Path, label: str) -> _Document:
    document = _Document(label)
    text = _read_text(path, document)
    if text is not None:
        data = _parse_yaml(text, document)
        if data is not None:
            _validate(data, path, document)
    document.issues.sort(key=lambda issue: issue.line)
    return document


def _read_text(path: Path, document: _Document) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        document.add((), "file not found", line=1)
        return None
    except IsADirectoryError:
        document.add((), "is a folder, not a spec file", line=1)
        return None
    except OSError as exc:
        document.add((), f"cannot read the file: {exc.strerror or exc}", line=1)
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        document.add((), "the file is not UTF-8 text", line=raw[: exc.start].count(b"\n") + 1)
        return None


def _parse_yaml(text: str, document: _Document) -> dict[str, Any] | None:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document.root = node
        if node is None:
            document.add((), "the file is empty; expected project, people, channels, blueprint and models",
                         line=1)
            return None
        _check_duplicate_keys(node, document)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot parse"
        if "block" in problem:
            problem += " (check the indentation)"
        document.add((), f"invalid YAML: {problem}", line=mark.line + 1 if mark else 1)
        return None
    except yaml.YAMLError as exc:
        document.add((), f"invalid YAML: {exc}", line=1)
        return None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        document.add((), f"expected a mapping (project:, people:, ...) at the top level, got {_show(data)}")
        return None
    return data


def _check_duplicate_keys(root: yaml.Node, document: _Document) -> None:
    seen_nodes: set[int] = set()  # aliases share nodes; visiting each once defuses alias bombs
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    line = key.start_mark.line + 1
                    if key.value in first:
                        document.add(loc + (key.value,), f"duplicate key '{key.value}' (first at line "
                                     f"{first[key.value]})", line=line)
                    first.setdefault(key.value, line)
                    stack.append((value, loc + (key.value,)))
                else:
                    stack.append((value, loc))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, loc + (index,)) for index, item in enumerate(node.value))


def _validate(data: dict[str, Any], path: Path, document: _Document) -> None:
    base_dir = path.resolve().parent
    spec: ProjectSpec | None = None
    try:
        spec = ProjectSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            _add_validation_error(document, error)
    parts = _Parts.of(spec) if spec is not None else _Parts.salvage(data)
    _check_references(document, parts)
    _check_columns(document, parts, base_dir)
    _check_artifact_roots(document, parts, base_dir)
    if spec is not None and not document.issues:
        document.loaded = LoadedSpec(spec=spec, path=path.resolve(), base_dir=base_dir)


# ---------------------------------------------------------------- pydantic errors -> issues


def _add_validation_error(document: _Document, error: Any) -> None:
    loc: Loc = tuple(error["loc"])
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        document.add(loc[:-1], f"missing required key '{loc[-1]}'")
    elif kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        document.add(loc[:-1], f"unknown key '{loc[-1]}'{_suggest(str(loc[-1]), allowed, list_all=True)}", at=loc)
    else:
        document.add(loc, _message(kind, value, ctx, error["msg"]))


_EXPECTED = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}
_BOUNDS = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
           "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}


def _message(kind: str, value: object, ctx: dict[str, Any], fallback: str) -> str:
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = _suggest(value, options) if isinstance(value, str) else ""
        return f"expected one of {', '.join(options)}, got {_show(value)}{hint}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_show(value)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {words} {bound}, got {_show(value)}"
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return f"expected at least {count} item{'s' if count != 1 else ''}"
    if kind == "string_too_short":
        return "must not be empty"
    return fallback


def _show(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(name: str, options: Sequence[str], *, list_all: bool = False) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    if not close and name:
        close = [option for option in options if option.startswith(name)][:2]
        close = close if len(close) == 1 else []
    if close:
        return f" (did you mean '{close[0]}'?)"
    if list_all and options:
        return f" (expected one of {', '.join(options)})"
    return ""


def _fields_at(loc: Loc) -> list[str]:
    """The keys allowed at `loc`, found by following the annotations from ProjectSpec."""
    current: Any = ProjectSpec
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            if part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not NoneType]
            annotation = members[0]
        else:
            return annotation


def _line_of(root: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the node at `loc`, or of the nearest parent that exists."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = _entry(node, str(part))
            if entry is None:
                break
            key, node = entry
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _entry(node: yaml.MappingNode, name: str, depth: int = 0) -> tuple[yaml.Node, yaml.Node] | None:
    for key, value in reversed(node.value):  # the last of duplicate keys is the one that counts
        if isinstance(key, yaml.ScalarNode) and key.value == name and key.value != "<<":
            return key, value
    if depth > 10:
        return None
    for key, value in node.value:  # merge keys: `<<: *defaults`
        if isinstance(key, yaml.ScalarNode) and key.value == "<<":
            merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in merged:
                if isinstance(source, yaml.MappingNode) and (found := _entry(source, name, depth + 1)):
                    return found
    return None


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# ---------------------------------------------------------------- cross checks


@dataclass
class _Parts:
    """The pieces of a spec that validated, so cross checks run even when something else failed.

    A model in `models` may be salvaged: rebuilt without its invalid optional keys. Only checks that
    cannot be misled by a missing optional key (people, columns) run on those; `exact` holds the
    indexes of models that validated as written.
    """

    project: ProjectInfoSpec | None
    people: list[PersonSpec] | None
    blueprint: BlueprintSpec | None
    models: list[tuple[int, ModelSpec]]
    exact: set[int]
    person_refs: list[tuple[Loc, str]]
    catalog: list[tuple[int, CatalogEntrySpec]] = field(default_factory=list)

    @classmethod
    def of(cls, spec: ProjectSpec) -> _Parts:
        refs = [(("project", "owner"), spec.project.owner)]
        refs += [(("project", "sponsors", i), s) for i, s in enumerate(spec.project.sponsors)]
        refs += [(("models", i, "owner"), m.owner) for i, m in enumerate(spec.models)]
        refs += [(("catalog", i, "owner"), c.owner) for i, c in enumerate(spec.catalog)]
        return cls(spec.project, spec.people, spec.blueprint, list(enumerate(spec.models)),
                   set(range(len(spec.models))), refs, list(enumerate(spec.catalog)))

    @classmethod
    def salvage(cls, data: dict[str, Any]) -> _Parts:
        raw_models = data.get("models") if isinstance(data.get("models"), list) else []
        models, exact = [], set()
        for index, raw in enumerate(raw_models):
            if (model := _try(ModelSpec, raw)) is not None:
                exact.add(index)
            elif (model := _salvage(ModelSpec, raw)) is None:
                continue
            models.append((index, model))
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        refs: list[tuple[Loc, str]] = []
        if isinstance(project.get("owner"), str):
            refs.append((("project", "owner"), project["owner"]))
        if isinstance(project.get("sponsors"), list):
            refs += [(("project", "sponsors", i), s) for i, s in enumerate(project["sponsors"]) if isinstance(s, str)]
        refs += [(("models", index, "owner"), raw["owner"]) for index, raw in enumerate(raw_models)
                 if isinstance(raw, dict) and isinstance(raw.get("owner"), str)]
        raw_catalog = data.get("catalog") if isinstance(data.get("catalog"), list) else []
        refs += [(("catalog", index, "owner"), raw["owner"]) for index, raw in enumerate(raw_catalog)
                 if isinstance(raw, dict) and isinstance(raw.get("owner"), str)]
        catalog = [(index, entry) for index, raw in enumerate(raw_catalog)
                   if (entry := _try(CatalogEntrySpec, raw)) is not None]
        return cls(_try(ProjectInfoSpec, project), _try(list[PersonSpec], data.get("people")) or None,
                   _try(BlueprintSpec, data.get("blueprint")), models, exact, refs, catalog)


def _try(kind: Any, value: object) -> Any:
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return None


def _salvage(kind: type[_Spec], raw: object) -> Any:
    """`kind` built from `raw` minus its invalid optional keys (required ones salvaged in turn), or None."""
    if not isinstance(raw, dict):
        return None
    value = dict(raw)
    for _ in range(len(value) + 1):
        try:
            return kind.model_validate(value)
        except ValidationError as exc:
            errors = exc.errors()
            if any(not error["loc"] for error in errors):  # the object as a whole is wrong
                return None
            failing = {error["loc"][0] for error in errors}
            for key in failing:
                info = kind.model_fields.get(str(key))
                if info is None or not info.is_required():
                    value.pop(key, None)
                    continue
                inner = _unwrap(info.annotation)
                if not (isinstance(inner, type) and issubclass(inner, _Spec)):
                    return None
                if (repaired := _salvage(inner, value.get(key))) is None:
                    return None
                value[key] = repaired
    return None


def _check_references(document: _Document, parts: _Parts) -> None:
    if parts.people is not None:
        first_index: dict[str, int] = {}
        for index, person in enumerate(parts.people):
            if person.slack_id in first_index:
                document.add(("people", index, "slack_id"),
                             f"duplicate slack_id '{person.slack_id}' (also people[{first_index[person.slack_id]}])")
            first_index.setdefault(person.slack_id, index)
        for loc, slack_id in parts.person_refs:
            if slack_id.strip() and slack_id.strip() not in first_index:
                document.add(loc, _unknown_person(slack_id.strip(), parts.people))
    if parts.blueprint is not None:
        _check_unique(document, [(("blueprint", "steps", i, "name"), s.name)
                                 for i, s in enumerate(parts.blueprint.steps)], "step name")
    _check_unique(document, [(("models", index, "key"), model.key) for index, model in parts.models], "model key")
    _check_catalog(document, parts)
    for index, model in parts.models:
        if index not in parts.exact:
            continue
        for loc, message in _model_problems(model):
            document.add(("models", index, *loc), message)


def _check_catalog(document: _Document, parts: _Parts) -> None:
    _check_unique(document, [(("catalog", index, "key"), entry.slug) for index, entry in parts.catalog],
                  "catalog key")
    model_keys = {model.key for _, model in parts.models}
    for index, entry in parts.catalog:
        if entry.kind == "model" and entry.slug in model_keys:
            document.add(("catalog", index, "key"), f"'{entry.slug}' is a model of this spec, which the catalog "
                                                     "lists already; list assets the registry doesn't know here")


def _unknown_person(slack_id: str, people: list[PersonSpec]) -> str:
    named = next((p for p in people if p.name.casefold() == slack_id.casefold()), None)
    if named is not None:
        return f"unknown person '{slack_id}' (use the Slack id: {named.name} is '{named.slack_id}')"
    close = difflib.get_close_matches(slack_id, [p.slack_id for p in people], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown person '{slack_id}' (not in people{hint})"


def _check_unique(document: _Document, items: list[tuple[Loc, str]], what: str) -> None:
    first: dict[str, Loc] = {}
    for loc, value in items:
        if value in first:
            document.add(loc, f"duplicate {what} '{value}' (also at {_format_loc(first[value])})")
        first.setdefault(value, loc)


def _model_problems(model: ModelSpec) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    listed: set[str] = set()
    for group in ("numeric", "categorical"):
        for index, name in enumerate(getattr(model.features, group)):
            if name in listed:
                problems.append((("features", group, index), f"feature '{name}' is listed twice"))
            listed.add(name)
    for key in model.drift.thresholds:
        if key != "default" and key not in listed:
            problems.append((("drift", "thresholds", key),
                             f"threshold for '{key}', which is not a listed feature{_suggest(key, sorted(listed))}"))
    kpi_names: dict[str, int] = {}
    for index, kpi in enumerate(model.kpis):
        if kpi.name in kpi_names:
            problems.append((("kpis", index, "name"),
                             f"duplicate KPI name '{kpi.name}' (also kpis[{kpi_names[kpi.name]}])"))
        kpi_names.setdefault(kpi.name, index)
    performance = model.performance
    if performance is not None:
        if model.data.label is None:
            problems.append((("performance",),
                             "performance metrics need data.label (the column with the true outcome)"))
        for index, metric in enumerate(performance.metrics):
            if metric == "roc_auc" and model.data.score is None:
                problems.append((("performance", "metrics", index),
                                 "roc_auc needs data.score (the column with the model's score or probability)"))
        for key in performance.alert:
            if key not in METRICS:
                problems.append((("performance", "alert", key),
                                 f"unknown metric '{key}'{_suggest(key, METRICS, list_all=True)}"))
            elif key not in performance.metrics:
                problems.append((("performance", "alert", key),
                                 f"alert on '{key}', which is not in performance.metrics"))
    return problems


@dataclass(frozen=True)
class _ColumnRef:
    loc: Loc
    column: str
    kinds: frozenset[str] | None  # the column kinds this use accepts; None for any
    purpose: str = ""


_NUMBERS = frozenset({"numeric", "bool"})


def _column_refs(model: ModelSpec) -> list[_ColumnRef]:
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
    for index, kpi in enumerate(model.kpis):
        if kpi.column is not None:
            refs.append(_ColumnRef(("kpis", index, "column"), kpi.column, _NUMBERS, f"aggregate '{kpi.aggregate}'"))
        for clause in ("where", "of"):
            text = getattr(kpi, clause)
            if text is not None:
                refs += [_ColumnRef(("kpis", index, clause), name, None) for name in sorted(parse(text).columns)]
    return refs


def _check_columns(document: _Document, parts: _Parts, base_dir: Path) -> None:
    schemas: dict[str, dict[str, ColumnKind] | SourceError] = {}
    for index, model in parts.models:
        reference = model.data.reference
        cache_key = reference.model_dump_json()
        if cache_key not in schemas:
            try:
                schemas[cache_key] = open_source(reference, base_dir).schema()
            except SourceError as exc:
                schemas[cache_key] = exc
        schema = schemas[cache_key]
        if isinstance(schema, SourceError):
            document.add(("models", index, "data", "reference"), f"cannot read the reference data: {schema}")
            continue
        for ref in _column_refs(model):
            loc = ("models", index, *ref.loc)
            kind = schema.get(ref.column)
            if kind is None:
                hint = _suggest(ref.column, list(schema)) or " (not in the reference data)"
                document.add(loc, f"unknown column '{ref.column}'{hint}")
            elif ref.kinds is not None and kind not in ref.kinds:
                wanted = "date-times" if "datetime" in ref.kinds else "numbers"
                advice = " (list it under categorical?)" if ref.purpose == "a numeric feature" else ""
                document.add(loc, f"column '{ref.column}' holds {kind} values in the reference data; "
                                  f"{ref.purpose} needs {wanted}{advice}")


def _check_artifact_roots(document: _Document, parts: _Parts, base_dir: Path) -> None:
    for index, model in parts.models:
        for position, root in enumerate(model.artifact_roots):
            folder = base_dir / root
            if not folder.is_dir():
                document.add(("models", index, "artifact_roots", position),
                             f"artifact root '{root}' is not a folder (looked for {folder.resolve()})")
