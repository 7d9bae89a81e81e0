"""Aggregate statistics of normalised scores, after Agarwal et al. (2021) and the rliable library.

Every function takes scores of one agent as an array of shape ``(num_runs, num_tasks)`` (runs are
seeds, tasks are envs), validates it, and is pure: randomness comes from an explicit
``numpy.random.Generator``. Interval estimates are ``(2,)`` arrays, lower bound first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Aggregate = Callable[[np.ndarray], float]


class NonFiniteScoresError(ValueError):
    """Scores (or thresholds, or a target) with NaN or infinite entries: an undefined score must be left out first."""


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteScoresError(
            f"{name} must be finite; got {int(bad.sum())} NaN or infinite entries (the first at index {where}, "
            f"{array[where]}); leave undefined scores out before aggregating."
        )
    return array


def _validate(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name} must have shape (num_runs, num_tasks) with both >= 1, got shape {array.shape}.")
    return _finite(array, name)


def mean(scores: np.ndarray) -> float:
    """Mean of all scores, shape ``(num_runs, num_tasks)``."""
    return float(_validate(scores).mean())


def median(scores: np.ndarray) -> float:
    """Median over tasks of the per-task mean score, shape ``(num_runs, num_tasks)``."""
    return float(np.median(_validate(scores).mean(axis=0)))


def interquartile_mean(scores: np.ndarray) -> float:
    """Mean of the middle 50% of all runs x tasks scores, shape ``(num_runs, num_tasks)``.

    Like ``scipy.stats.trim_mean(scores.ravel(), 0.25)``: a quarter of the sorted values is cut from
    each end (rounded down), so a few outlying runs cannot move it and it needs few runs.
    """
    values = np.sort(_validate(scores).ravel())
    cut = int(0.25 * values.size)
    return float(values[cut : values.size - cut].mean())


def optimality_gap(scores: np.ndarray, target: float = 1.0) -> float:
    """How far scores fall short of ``target`` on average (scores above it count as ``target``)."""
    _finite(np.asarray([target], dtype=np.float64), "target")
    return float(np.maximum(target - _validate(scores), 0.0).mean())


AGGREGATES: dict[str, Aggregate] = {
    "iqm": interquartile_mean,
    "mean": mean,
    "median": median,
    "optimality_gap": optimality_gap,
}


def stratified_bootstrap_ci(
    scores: np.ndarray,
    aggregate: Aggregate,
    rng: np.random.Generator,
    *,
    repetitions: int = 2000,
    confidence: float = 0.95,
) -> np.ndarray:
    """Percentile confidence interval of ``aggregate(scores)`` by stratified bootstrap.

    Each repetition resamples the runs of every task independently, with replacement (the
    "stratified" bootstrap of rliable), and recomputes the aggregate.

    Args:
        scores: shape ``(num_runs, num_tasks)``.
        aggregate: a function of a ``(num_runs, num_tasks)`` array, e.g. :func:`interquartile_mean`.
        rng: the only source of randomness.
        repetitions: bootstrap repetitions.
        confidence: the interval's coverage, in ``(0, 1)``.

    Returns:
        ``(2,)`` array: lower and upper bound.
    """
    array = _validate(scores)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}.")
    runs, tasks = array.shape
    picks = rng.integers(runs, size=(repetitions, runs, tasks))
    task_index = np.arange(tasks)[None, :]
    estimates = np.array([aggregate(array[pick, task_index]) for pick in picks])
    tail = (1.0 - confidence) / 2.0 * 100.0
    return np.percentile(estimates, [tail, 100.0 - tail])


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y): the chance that a run of X beats a run of Y on a task, averaged over tasks.

    Per task this is the Mann-Whitney U statistic divided by ``runs_x * runs_y`` (ties count one
    half). Both arrays have shape ``(runs, num_tasks)`` with the same tasks in the same order.
    """
    x, y = _validate(scores_x, "scores_x"), _validate(scores_y, "scores_y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"scores_x and scores_y must cover the same tasks; got {x.shape[1]} and {y.shape[1]} tasks.")
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float((greater + 0.5 * ties).mean())


def performance_profile(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of runs x tasks scoring above each threshold: a non-increasing curve.

    Args:
        scores: shape ``(num_runs, num_tasks)``.
        thresholds: shape ``(k,)``.

    Returns:
        ``(k,)`` fractions in ``[0, 1]``: per task the fraction of runs above the threshold,
        averaged over tasks.
    """
    array = _validate(scores)
    taus = _finite(np.asarray(thresholds, dtype=np.float64), "thresholds")
    return (array[None, :, :] > taus[:, None, None]).mean(axis=1).mean(axis=1)
