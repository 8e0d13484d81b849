"""Cross checks of a model's task type: its metrics, the direction and range of its alert lines, and the
built-in trainer it names. (An unknown task type is refused by the spec model itself, naming the ones
supported.)"""

from __future__ import annotations

from jobs.spec.model import Loc, ModelSpec
from jobs.tasks import (
    BUILT_IN_TRAINER,
    LOWER_IS_BETTER,
    MULTICLASS,
    SHARES,
    TASK_METRICS,
    TASK_TRAINERS,
)


def task_problems(model: ModelSpec) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    own = TASK_METRICS[model.task]
    performance = model.performance
    if performance is not None:
        for index, metric in enumerate(performance.metrics):
            if metric not in own:
                owner = next(task for task, names in TASK_METRICS.items() if metric in names)
                problems.append((("performance", "metrics", index),
                                 (f"'{metric}' is a {owner} metric; a {model.task} model can use "
                                 f"{', '.join(own)}")))
            elif metric == "log_loss" and model.task == MULTICLASS:
                problems.append((("performance", "metrics", index),
                                 ("log_loss needs each class's probability, which the production rows don't carry "
                                 "(data.prediction is the class); Flywheel reports it when it compares versions")))
        for metric, rule in performance.alert.items():
            problems += [(("performance", "alert", metric, *at), message) for at, message in _line_problems(metric, rule)]
    retrain = model.retrain
    if retrain is not None and retrain.backend == "python" and retrain.entrypoint in TASK_TRAINERS.values() \
            and retrain.entrypoint != TASK_TRAINERS.get(model.task):
        problems.append((("retrain", "entrypoint"),
                         (f"{retrain.entrypoint} trains another task type; the built-in trainer "
                          f"{BUILT_IN_TRAINER} trains a {model.task} model")))
    return problems


def _line_problems(metric: str, rule) -> list[tuple[Loc, str]]:
    problems = []
    if metric in LOWER_IS_BETTER and rule.above is None:
        problems.append(((), (f"{metric} is an error (lower is better): alert when it rises above a line, like "
                        f"{metric}: {{above: {rule.below:g}}}")))
    elif metric not in LOWER_IS_BETTER and rule.below is None:
        problems.append(((), (f"{metric} is higher-is-better: alert when it falls below a line, like "
                        f"{metric}: {{below: {rule.above:g}}}")))
    for side in ("above", "below"):
        line = getattr(rule, side)
        if line is None:
            continue
        if metric in SHARES and not 0 <= line <= 1:
            problems.append(((side,), (f"{metric} is a share between 0 and 1, so a line {side} {line:g} can't be "
                                      "reached")))
        elif metric == "r2" and line > 1:
            problems.append(((side,), f"r2 is at most 1, so a line {side} {line:g} can't be reached"))
        elif metric in LOWER_IS_BETTER and line < 0:
            problems.append(((side,), f"{metric} is never negative, so a line {side} {line:g} can't be reached"))
    return problems
