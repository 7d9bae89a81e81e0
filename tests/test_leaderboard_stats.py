"""Invariants of the leaderboard statistics (rliable-style), checked on random score matrices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nlp_envs.leaderboard import stats

score_matrices = st.integers(1, 6).flatmap(
    lambda runs: st.integers(1, 4).flatmap(
        lambda tasks: arrays(np.float64, (runs, tasks), elements=st.floats(-2.0, 3.0, allow_nan=False))
    )
)


def test_interquartile_mean_cuts_a_quarter_at_each_end() -> None:
    scores = np.arange(1.0, 9.0).reshape(4, 2)  # 1..8: the middle half is 3..6
    assert stats.interquartile_mean(scores) == pytest.approx(4.5)


@settings(max_examples=60, deadline=None)
@given(scores=score_matrices)
def test_aggregates_lie_within_the_scores(scores: np.ndarray) -> None:
    for name, aggregate in stats.AGGREGATES.items():
        value = aggregate(scores)
        if name == "optimality_gap":
            assert 0.0 <= value <= max(0.0, 1.0 - scores.min()) + 1e-12
        else:
            assert scores.min() - 1e-12 <= value <= scores.max() + 1e-12


@settings(max_examples=30, deadline=None)
@given(scores=score_matrices, seed=st.integers(0, 2**32 - 1))
def test_bootstrap_interval_is_ordered_reproducible_and_within_range(scores: np.ndarray, seed: int) -> None:
    interval = stats.stratified_bootstrap_ci(
        scores, stats.interquartile_mean, np.random.default_rng(seed), repetitions=200
    )
    again = stats.stratified_bootstrap_ci(
        scores, stats.interquartile_mean, np.random.default_rng(seed), repetitions=200
    )
    assert interval.shape == (2,)
    np.testing.assert_array_equal(interval, again)
    assert interval[0] <= interval[1]
    assert scores.min() - 1e-12 <= interval[0] and interval[1] <= scores.max() + 1e-12


def test_bootstrap_interval_shrinks_to_the_point_for_constant_runs() -> None:
    scores = np.tile(np.array([[0.2, 0.8, 0.5]]), (5, 1))
    interval = stats.stratified_bootstrap_ci(scores, stats.mean, np.random.default_rng(0), repetitions=100)
    np.testing.assert_allclose(interval, [0.5, 0.5])


@settings(max_examples=60, deadline=None)
@given(x=score_matrices, seed=st.integers(0, 1000))
def test_probability_of_improvement_is_complementary(x: np.ndarray, seed: int) -> None:
    y = np.random.default_rng(seed).normal(size=(3, x.shape[1]))
    forward = stats.probability_of_improvement(x, y)
    assert 0.0 <= forward <= 1.0
    assert forward + stats.probability_of_improvement(y, x) == pytest.approx(1.0)
    assert stats.probability_of_improvement(x, x) == pytest.approx(0.5)


def test_probability_of_improvement_of_a_dominating_agent_is_one() -> None:
    assert stats.probability_of_improvement(np.ones((3, 2)), np.zeros((4, 2))) == 1.0


@settings(max_examples=60, deadline=None)
@given(scores=score_matrices)
def test_performance_profile_is_non_increasing_fractions(scores: np.ndarray) -> None:
    thresholds = np.linspace(-3.0, 4.0, 50)
    profile = stats.performance_profile(scores, thresholds)
    assert profile.shape == (50,)
    assert ((profile >= 0.0) & (profile <= 1.0)).all()
    assert (np.diff(profile) <= 1e-12).all()
    assert profile[0] == 1.0 and profile[-1] == 0.0


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((0, 2)), np.array([[np.nan]])], ids=["1d", "empty", "nan"])
def test_bad_shapes_and_values_are_rejected(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="num_runs, num_tasks|finite"):
        stats.interquartile_mean(bad)


def test_probability_of_improvement_needs_the_same_tasks() -> None:
    with pytest.raises(ValueError, match="same tasks"):
        stats.probability_of_improvement(np.zeros((2, 2)), np.zeros((2, 3)))


NAN_CALLS = {
    "mean": lambda bad: stats.mean(bad),
    "median": lambda bad: stats.median(bad),
    "iqm": lambda bad: stats.interquartile_mean(bad),
    "optimality_gap": lambda bad: stats.optimality_gap(bad),
    "optimality_gap_target": lambda bad: stats.optimality_gap(np.ones((2, 2)), target=float("nan")),
    "bootstrap": lambda bad: stats.stratified_bootstrap_ci(bad, stats.mean, np.random.default_rng(0)),
    "improvement_x": lambda bad: stats.probability_of_improvement(bad, np.ones((2, 2))),
    "improvement_y": lambda bad: stats.probability_of_improvement(np.ones((2, 2)), bad),
    "profile": lambda bad: stats.performance_profile(bad, np.linspace(0, 1, 3)),
    "profile_thresholds": lambda bad: stats.performance_profile(np.ones((2, 2)), np.array([0.0, np.nan])),
}


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("call", list(NAN_CALLS.values()), ids=list(NAN_CALLS))
def test_every_function_refuses_non_finite_input_with_a_named_error(call, value: float) -> None:
    bad = np.ones((2, 2))
    bad[1, 0] = value
    with pytest.raises(stats.NonFiniteScoresError, match="must be finite"):
        call(bad)
