"""The spec model: the pydantic shape of a project spec file, with its field validators."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from jobs.expressions import Expression, parse
from jobs.sources import SourceSpec
from jobs.spec.columns import Loc, _column_refs, _ColumnRef  # noqa: F401 (re-exported)
from jobs.spec.registry import RegistrySpec
from jobs.spec.values import (
    ENTRYPOINT,
    GITHUB_REPO,
    ArtifactRoot,
    Column,
    Cron,
    Duration,
    ExpressionText,
    Name,
    Share,
    SlackTeamId,
    SlackUserId,
    Slug,
    Text,
    matching,
)
from jobs.tasks import LOWER_IS_BETTER

Role = Literal["business", "ml_engineer", "risk_manager", "it_ops", "admin"]
Persona = Literal["business", "ml_engineer", "risk_manager", "it_ops"]
RiskTier = Literal["low", "medium", "high"]
DeployPolicy = Literal["block", "warn", "allow"]
Task = Literal["binary_classification", "regression", "multiclass_classification"]  # jobs/tasks.py: TASKS
NumericDriftMethod = Literal["wasserstein", "psi", "ks"]
CategoricalDriftMethod = Literal["jensen_shannon", "psi", "chi_square"]
Metric = Literal["precision", "recall", "f1", "roc_auc", "accuracy",  # binary classification
                 "mae", "rmse", "r2", "mape",  # regression
                 "macro_f1", "weighted_f1", "log_loss"]  # multiclass classification (and accuracy)
Aggregate = Literal["count", "sum", "mean", "rate"]
RetrainBackend = Literal["python", "webhook", "github_actions", "airflow"]
DeployBackend = Literal["registry", "webhook"]
CatalogKind = Literal["project", "model", "model_version", "dataset", "notebook", "repository", "dashboard",
                      "plugin"]

METRICS: tuple[str, ...] = get_args(Metric)


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
    deploy_policy: DeployPolicy | None = None  # overrides the blueprint's
    # The Slack workspace (team id) the project lives in, when Flywheel is installed in several (OAuth): its
    # people act on it only from there, and its messages go out with that workspace's token.
    workspace: SlackTeamId | None = None


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


class MetricCheckSpec(_Spec):
    """The candidate's metric on its evaluation window: at most `max_drop` worse than the production version's
    on the same window (for an error metric like mae, at most that much higher), and/or at least `min` (at
    most `max` for an error metric)."""

    name: Metric
    max_drop: float | None = Field(None, ge=0)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some(self) -> MetricCheckSpec:
        if self.max_drop is None and self.min is None and self.max is None:
            raise ValueError("give 'max_drop' (against production), 'min' or 'max' (or several)")
        return self


class CheckSpec(_Spec):
    """An automated step's check: exactly one of its kinds."""

    metric: MetricCheckSpec | None = None
    min_labelled_rows: int | None = Field(None, ge=1)
    data_quality_clean: Literal[True] | None = None
    max_drift: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> CheckSpec:
        given = [k for k in CHECK_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one check kind ({', '.join(CHECK_KINDS)})"
                             + (f", not {' and '.join(given)}" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CHECK_KINDS if getattr(self, k) is not None)


CHECK_KINDS = ("metric", "min_labelled_rows", "data_quality_clean", "max_drift")


class BlueprintStepSpec(_Spec):
    """A human step (`role`, a quorum of distinct people, optionally M of the N `people` named) or an
    automated one (`check`). `parallel`: due together with the step before it."""

    name: Text
    role: Role | None = None
    quorum: int = Field(1, ge=1)
    people: list[SlackUserId] = []
    parallel: bool = False
    check: CheckSpec | None = None

    @model_validator(mode="after")
    def _kind(self) -> BlueprintStepSpec:
        if (self.role is None) == (self.check is None):
            raise ValueError("a step has a 'role' (people sign it) or a 'check' (Flywheel signs it), not both "
                             "and not neither")
        if self.check is not None and (self.people or self.quorum != 1):
            raise ValueError("an automated step ('check') takes no 'people' or 'quorum'")
        if len(set(self.people)) != len(self.people):
            raise ValueError("a person is named twice in 'people'")
        if self.people and self.quorum > len(self.people):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.people)} people named")
        return self


class BlueprintSpec(_Spec):
    """The approval steps a new model version goes through before it may be deployed, and what a deploy
    does while some are missing (`policy`)."""

    name: Text
    policy: DeployPolicy = "block"
    steps: list[BlueprintStepSpec] = Field(min_length=1)


class LibraryBlueprintSpec(BlueprintSpec):
    """A blueprint of the library file: used by the projects that name it, or whose risk tier it lists."""

    tiers: list[RiskTier] = []


class LibrarySpec(_Spec):
    """A blueprint library file: `blueprints:`, a list."""

    blueprints: list[LibraryBlueprintSpec] = Field(min_length=1)


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
    # A feature whose missing share moves this many points (significantly) is drifted, whatever its values do.
    missing_share_change: float = Field(0.05, gt=0, le=1)

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
    """Alert when the metric goes above or below a line. A bare number in the file is the line it must not
    be worse than: above it for an error (lower is better), below it for a score. Lines of shares (recall,
    accuracy, F1) are between 0 and 1; jobs/spec/tasks.py checks them against the model's task."""

    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _some(self) -> MetricAlertSpec:
        if self.above is None and self.below is None:
            raise ValueError("give 'above' or 'below' (or both)")
        return self


class PerformanceSpec(_Spec):
    metrics: list[Metric] = Field(min_length=1)
    alert: dict[str, MetricAlertSpec] = {}
    window: Duration | None = None  # None in the file means drift.window; resolved by ModelSpec

    @model_validator(mode="before")
    @classmethod
    def _worse_than(cls, data: object) -> object:
        alert = data.get("alert") if isinstance(data, dict) else None
        if not isinstance(alert, dict):
            return data
        lines = {metric: ({"above" if metric in LOWER_IS_BETTER else "below": rule}
                          if isinstance(rule, (int, float)) and not isinstance(rule, bool) else rule)
                 for metric, rule in alert.items()}
        return {**data, "alert": lines}


class NullShareRise(_Spec):
    """How far a feature's missing share may rise above the reference's before it is an incident: by
    `points` (absolute) or by `relative` of the reference's own share, whichever allows more."""

    points: Share = 0.05
    relative: float = Field(0.5, ge=0)

    def allowed(self, reference_share: float) -> float:
        return reference_share + max(self.points, reference_share * self.relative)


class DataQualitySpec(_Spec):
    null_share_rise: NullShareRise = Field(default_factory=NullShareRise)
    max_null_share: Share | None = None  # a ceiling whatever the reference (none unless the spec sets one)
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
    entrypoint: Annotated[str, matching(ENTRYPOINT, "an entrypoint like package.module:function")] | None = None
    url: str | None = None
    repo: Annotated[str, matching(GITHUB_REPO, "a GitHub repository like owner/name")] | None = None
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


class CardSpec(_Spec):
    """What the model card says the model is for and not for, in the team's words."""

    intended_use: str = ""
    out_of_scope: list[Text] = []
    limitations: list[Text] = []


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
    # MLflow's registry, when the model's versions live there too (jobs/mlflow_sync.py keeps both in step).
    registry: RegistrySpec | None = None
    # Folders, besides FLYWHEEL_ARTIFACTS, from which this model's artifacts may be registered and loaded.
    artifact_roots: list[ArtifactRoot] = []
    card: CardSpec = Field(default_factory=CardSpec)
    # Columns whose values split the performance figures on the model card (region, channel...).
    segments: list[Column] = []

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
    # Inline, the name of a library blueprint (`blueprint: standard`, read into blueprint_name), or left out:
    # the library's blueprint whose tiers list the project's risk tier.
    blueprint: BlueprintSpec | None = None
    blueprint_name: str | None = Field(None, exclude=True)
    models: list[ModelSpec] = Field(min_length=1)
    catalog: list[CatalogEntrySpec] = []

    @model_validator(mode="before")
    @classmethod
    def _named_blueprint(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("blueprint"), str):
            data = {k: v for k, v in data.items() if k != "blueprint"} | {"blueprint_name": data["blueprint"]}
        return data

    def person(self, slack_id: str) -> PersonSpec | None:
        return next((p for p in self.people if p.slack_id == slack_id), None)

    def get_model(self, key: str) -> ModelSpec | None:
        return next((m for m in self.models if m.key == key), None)
