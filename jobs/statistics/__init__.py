"""Drift statistics: is a feature in the current window distributed like in the reference window?

Per feature, one method gives the figure shown to people (an effect size, or a p-value for the
p-value methods). Numeric: normalised Wasserstein, PSI on reference quantile bins, Kolmogorov-Smirnov.
Categorical: Jensen-Shannon distance, PSI, chi-square. Missing values (NaN, None, +-inf) are counted
and left out; categories absent from the reference are counted, not fatal.

Verdicts. A feature is drifted when its effect size is at or over its threshold AND a two-sample
test rejects "same distribution" at alpha / number_of_features (Bonferroni). The effect-size gate is
what keeps tiny, harmless shifts quiet in million-row windows, where every test is significant; the
significance gate is what keeps small windows quiet, where effect sizes are noisy. Bonferroni
rather than Holm: the same family-wise guarantee, and one per-feature level a person can read.
For the p-value methods (ks, chi_square) the p-value is the figure and its threshold is the
family-wise level, so the feature is drifted when p < threshold / number_of_features.

Layout: methods.py (names, labels, default thresholds, the count-based PSI and chi-square),
numeric.py and categorical.py (the measures of each kind of feature), reference.py (a window's features as
comparisons read them; a reference prepared once), report.py (drift_report and its verdicts). The names
below are the package's interface.
"""

from jobs.statistics.categorical import chi_square, jensen_shannon, psi_categorical
from jobs.statistics.methods import (
    CATEGORICAL_METHODS,
    DEFAULT_THRESHOLDS,
    METHOD_LABELS,
    NUMERIC_METHODS,
    P_VALUE_METHODS,
    PSI_BINS,
    DriftInputError,
)
from jobs.statistics.numeric import ks_2samp, psi_numeric, wasserstein_normalized
from jobs.statistics.reference import PreparedReference, prepare_reference
from jobs.statistics.report import MISSING_SHARE_CHANGE, DriftReport, FeatureDrift, drift_report

__all__ = ["CATEGORICAL_METHODS", "DEFAULT_THRESHOLDS", "METHOD_LABELS", "NUMERIC_METHODS", "P_VALUE_METHODS",
           "PSI_BINS", "DriftInputError", "DriftReport", "FeatureDrift", "MISSING_SHARE_CHANGE", "PreparedReference", "chi_square",
           "drift_report", "jensen_shannon", "ks_2samp", "prepare_reference", "psi_categorical", "psi_numeric",
           "wasserstein_normalized"]
