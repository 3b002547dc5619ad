"""rlkit.evaluation.stats: closed forms, bootstrap behaviour, agreement with rliable, bad inputs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from typing import Any

import numpy as np
import pytest

from rlkit.evaluation import (
    AGGREGATES,
    IntervalEstimate,
    aggregate_table,
    interval_estimates,
    iqm,
    mean,
    median,
    normalize_scores,
    optimality_gap,
    performance_profile,
    performance_profiles,
    probability_of_improvement,
    probability_of_improvement_interval,
    sample_efficiency_curves,
    stratified_bootstrap_indices,
)

METRICS = ("median", "iqm", "mean", "optimality_gap")


def _scores(seed: int, runs: int = 10, tasks: int = 20, loc: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, 0.3, size=(runs, tasks))


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("value", [0.3, 2.0, -1.5])
def test_constant_scores_give_the_constant_and_a_collapsed_interval(value: float) -> None:
    scores = np.full((6, 4), value)
    for fn in (mean, median, iqm):
        assert fn(scores) == pytest.approx(value)
    assert optimality_gap(scores) == pytest.approx(max(1.0 - value, 0.0))
    estimates = interval_estimates({"const": scores}, reps=200)["const"]
    for metric in METRICS:
        expected = max(1.0 - value, 0.0) if metric == "optimality_gap" else value
        est = estimates[metric]
        assert est.point == pytest.approx(expected)
        assert est.low == pytest.approx(expected)
        assert est.high == pytest.approx(expected)


def test_one_task() -> None:
    scores = np.array([[1.0], [2.0], [3.0], [10.0]])
    assert mean(scores) == pytest.approx(4.0)
    assert median(scores) == pytest.approx(4.0)  # the median of one per-task mean
    assert iqm(scores) == pytest.approx(2.5)  # drops 1.0 and 10.0
    est = interval_estimates({"a": scores}, metrics=["mean"], reps=500)["a"]["mean"]
    assert 1.0 <= est.low <= est.point <= est.high <= 10.0
    assert est.low < est.high


def test_iqm_of_a_known_array() -> None:
    # 10 scores: n // 4 = 2 are cut from each end (1, 2 and 9, 1000); the rest average to 5.5.
    scores = np.array([[1.0, 1000.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 2.0]])
    assert iqm(scores) == pytest.approx(5.5)
    assert mean(scores) == pytest.approx(104.5)
    # median: the per-task means are 5.0 and 204.0, and their median is their average.
    assert median(scores) == pytest.approx(104.5)


def test_median_is_of_per_task_means() -> None:
    scores = np.array([[0.0, 1.0, 10.0], [2.0, 3.0, 20.0]])  # task means 1, 2, 15
    assert median(scores) == pytest.approx(2.0)


def test_optimality_gap() -> None:
    assert optimality_gap(np.array([[1.0, 1.5], [2.0, 1.0]])) == 0.0
    assert optimality_gap(np.array([[0.5, 1.5]])) == pytest.approx(0.25)
    assert optimality_gap(np.array([[0.5, 1.5]]), threshold=2.0) == pytest.approx(1.0)
    assert AGGREGATES["optimality_gap"](np.array([[0.0, 0.0]])) == pytest.approx(1.0)


def test_aggregates_registry() -> None:
    assert set(AGGREGATES) == set(METRICS)
    scores = _scores(0)
    assert AGGREGATES["iqm"](scores) == iqm(scores)
    assert AGGREGATES["median"](scores) == median(scores)


def test_probability_of_improvement_closed_forms() -> None:
    low, high = _scores(1, loc=0.0), _scores(2, loc=5.0)
    assert probability_of_improvement(high, low) == 1.0
    assert probability_of_improvement(low, high) == 0.0
    assert probability_of_improvement(low, low) == 0.5
    # All ties, different numbers of runs.
    assert probability_of_improvement(np.ones((3, 4)), np.ones((7, 4))) == 0.5
    # One task by hand: x beats y in 5 of 12 pairs and ties in 3 -> (5 + 1.5) / 12.
    x, y = np.array([[1.0], [2.0], [2.0], [3.0]]), np.array([[2.0], [2.0], [1.0]])
    assert probability_of_improvement(x, y) == pytest.approx(7.5 / 12)
    # Averaged over tasks: one task won outright, one lost outright.
    assert probability_of_improvement(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == 0.5


def test_probability_of_improvement_is_complementary() -> None:
    x, y = _scores(3, runs=8), _scores(4, runs=5, loc=0.6)
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1)


def test_performance_profile_steps() -> None:
    scores = np.array([[0.1, 0.5], [0.9, 0.5]])
    taus = np.array([-1.0, 0.1, 0.3, 0.5, 0.8999, 0.9, 2.0])
    # strictly above tau: a score equal to tau does not count.
    expected = [1.0, 0.75, 0.75, 0.25, 0.25, 0.0, 0.0]
    np.testing.assert_array_equal(performance_profile(scores, taus), expected)


def test_normalize_scores() -> None:
    raw = np.array([[10.0, 0.0], [20.0, 5.0]])
    np.testing.assert_allclose(
        normalize_scores(raw, np.array([10.0, 0.0]), np.array([20.0, 10.0])),
        [[0.0, 0.0], [1.0, 0.5]],
    )
    np.testing.assert_allclose(normalize_scores(raw, 0.0, 20.0), [[0.5, 0.0], [1.0, 0.25]])
    curves = np.stack([raw, 2 * raw], axis=-1)  # [runs, tasks, points]
    out = normalize_scores(curves, np.array([0.0, 0.0]), np.array([10.0, 20.0]))
    assert out.shape == (2, 2, 2)
    np.testing.assert_allclose(out[..., 1], [[2.0, 0.0], [4.0, 0.5]])


# --------------------------------------------------------------------------- bootstrap


def test_stratified_bootstrap_indices() -> None:
    idx = stratified_bootstrap_indices(7, 5, 300, np.random.default_rng(0))
    assert idx.shape == (300, 7, 5)
    assert np.issubdtype(idx.dtype, np.integer)
    assert idx.min() == 0 and idx.max() == 6
    # Resampled independently per task: the columns of one replicate differ.
    assert not all(np.array_equal(idx[0][:, 0], idx[0][:, t]) for t in range(1, 5))
    again = stratified_bootstrap_indices(7, 5, 300, np.random.default_rng(0))
    np.testing.assert_array_equal(idx, again)
    # Each resampled task only holds that task's runs.
    scores = np.arange(35.0).reshape(7, 5)
    resampled = scores[idx, np.arange(5)]
    assert np.all(resampled % 5 == np.arange(5))


def test_interval_contains_point_and_narrows_with_more_runs() -> None:
    few = _scores(5, runs=3)
    many = _scores(6, runs=60)
    est_few = interval_estimates({"a": few}, reps=1000)["a"]
    est_many = interval_estimates({"a": many}, reps=1000)["a"]
    for metric in METRICS:
        for est in (est_few[metric], est_many[metric]):
            assert est.low <= est.point <= est.high
        assert est_many[metric].high - est_many[metric].low < (
            est_few[metric].high - est_few[metric].low
        )


def test_confidence_sets_the_width() -> None:
    scores = _scores(7)
    wide = interval_estimates({"a": scores}, ["iqm"], confidence=0.99)["a"]["iqm"]
    narrow = interval_estimates({"a": scores}, ["iqm"], confidence=0.5)["a"]["iqm"]
    assert wide.point == narrow.point
    assert wide.low < narrow.low <= narrow.high < wide.high


@pytest.mark.parametrize(("confidence", "z"), [(0.95, 1.959964), (0.5, 0.674490)])
def test_percentile_interval_matches_the_normal_limit(confidence: float, z: float) -> None:
    # One task, many runs: the bootstrap distribution of the mean is close to normal with sd
    # std(x) / sqrt(n), so the percentile interval spans about 2 * z * sd.
    x = np.random.default_rng(16).normal(0.0, 1.0, size=(400, 1))
    sd = float(x.std() / np.sqrt(len(x)))
    est = interval_estimates({"a": x}, ["mean"], reps=20000, confidence=confidence)["a"]["mean"]
    assert (est.high - est.low) / (2 * z * sd) == pytest.approx(1.0, abs=0.04)
    assert (est.low + est.high) / 2 == pytest.approx(est.point, abs=0.1 * sd)


def test_deterministic_and_independent_of_other_algorithms() -> None:
    a, b = _scores(8), _scores(9, runs=4)
    both = interval_estimates({"a": a, "b": b}, reps=300, seed=3)
    assert both == interval_estimates({"a": a, "b": b}, reps=300, seed=3)
    assert both["a"] == interval_estimates({"a": a}, reps=300, seed=3)["a"]
    assert both["b"] == interval_estimates({"b": b, "a": a}, reps=300, seed=3)["b"]
    assert both["a"]["iqm"] != interval_estimates({"a": a}, reps=300, seed=4)["a"]["iqm"]
    assert isinstance(both["a"]["iqm"], IntervalEstimate)


def test_probability_of_improvement_interval() -> None:
    x, y = _scores(10, loc=0.6), _scores(11, runs=6, loc=0.5)
    est = probability_of_improvement_interval(x, y, reps=1000)
    assert est.point == probability_of_improvement(x, y)
    assert 0.0 <= est.low < est.point < est.high <= 1.0
    assert est == probability_of_improvement_interval(x, y, reps=1000)
    high = probability_of_improvement_interval(x + 10.0, y, reps=200)
    assert (high.point, high.low, high.high) == (1.0, 1.0, 1.0)
    ties = probability_of_improvement_interval(np.ones((4, 3)), np.ones((5, 3)), reps=200)
    assert (ties.point, ties.low, ties.high) == (0.5, 0.5, 0.5)


def test_performance_profiles() -> None:
    taus = np.linspace(-0.5, 1.5, 21)
    scores = _scores(12)
    profiles = performance_profiles({"a": scores, "c": np.full((3, 20), 0.5)}, taus, reps=500)
    point, low, high = profiles["a"]
    np.testing.assert_array_equal(point, performance_profile(scores, taus))
    assert point.shape == low.shape == high.shape == (21,)
    assert np.all(low <= point) and np.all(point <= high)
    assert np.all(np.diff(point) <= 0)  # a tail distribution: non-increasing in tau
    assert np.any(high - low > 0)
    c_point, c_low, c_high = profiles["c"]
    np.testing.assert_array_equal(c_point, (taus < 0.5).astype(float))
    np.testing.assert_array_equal(c_low, c_point)
    np.testing.assert_array_equal(c_high, c_point)


def test_sample_efficiency_curves() -> None:
    rng = np.random.default_rng(13)
    steps = np.linspace(0.0, 1.0, 6)
    curves = steps + rng.normal(0.0, 0.2, size=(8, 12, 6))  # [runs, tasks, points]
    result = sample_efficiency_curves({"a": curves}, metric="iqm", reps=400, seed=2)
    point, low, high = result["a"]
    assert point.shape == low.shape == high.shape == (6,)
    assert np.all(np.diff(point) > 0)
    assert np.all(low <= point) and np.all(point <= high)
    # Each point is the interval estimate of its own [runs, tasks] slice (same resamples).
    for p in (0, 5):
        est = interval_estimates({"a": curves[:, :, p]}, ["iqm"], reps=400, seed=2)["a"]["iqm"]
        assert (point[p], low[p], high[p]) == (est.point, est.low, est.high)
    flat = sample_efficiency_curves({"a": np.full((3, 2, 4), 0.25)}, metric="median", reps=50)
    for array in flat["a"]:
        np.testing.assert_allclose(array, 0.25)


def test_aggregate_table() -> None:
    scores = {"ppo": _scores(14, loc=0.7), "a2c": _scores(15, runs=5)}
    table = aggregate_table(scores, reps=300, seed=1)
    lines = table.splitlines()
    assert lines[0].split() == ["algorithm", *METRICS]
    assert lines[2].startswith("ppo") and lines[3].startswith("a2c")
    iqm_est = interval_estimates(scores, reps=300, seed=1)["ppo"]["iqm"]
    assert f"{iqm_est.point:.3f} [{iqm_est.low:.3f}, {iqm_est.high:.3f}]" in lines[2]
    assert "95%" in lines[-1] and "300" in lines[-1]


def test_scale_five_algorithms_ten_runs_twenty_tasks() -> None:
    """5 algorithms x 10 runs x 20 tasks with 2000 resamples runs to completion (no timing)."""
    score_dict = {f"alg{i}": _scores(20 + i, loc=0.4 + 0.1 * i) for i in range(5)}
    estimates = interval_estimates(score_dict, reps=2000)
    assert set(estimates) == set(score_dict)
    assert all(set(per) == set(METRICS) for per in estimates.values())
    profiles = performance_profiles(score_dict, np.linspace(0.0, 1.5, 50), reps=2000)
    assert all(p[0].shape == (50,) for p in profiles.values())
    poi = probability_of_improvement_interval(score_dict["alg4"], score_dict["alg0"], reps=2000)
    assert poi.low > 0.5


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, rlkit.evaluation; assert 'matplotlib' not in sys.modules, 'loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- rliable


def _rliable_library() -> Any:
    """Import ``rliable.library``, working around arch 7.2's import-time clash with pandas 3.

    arch's package ``__init__`` imports ``arch.univariate``, which fails under pandas 3; rliable
    only needs ``arch.bootstrap``, so on that failure the package is stood in for by a bare module
    with the same path, and only ``arch.bootstrap`` is loaded. The stand-in is removed afterwards.
    """
    try:
        from rliable import library

        return library
    except Exception:
        pass
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("rliable's dependency arch is not installed")
    before = set(sys.modules)
    stand_in = types.ModuleType("arch")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["arch"] = stand_in
    try:
        from rliable import library
    except Exception as err:
        pytest.skip(f"rliable.library cannot be imported: {err}")
    finally:
        for name in set(sys.modules) - before:
            if name == "arch" or name.startswith("arch."):
                del sys.modules[name]
    return library


@pytest.fixture(scope="module")
def rly() -> Any:
    return _rliable_library()


def test_point_estimates_match_rliable_exactly() -> None:
    metrics = pytest.importorskip("rliable.metrics")
    reference = {
        "mean": metrics.aggregate_mean,
        "median": metrics.aggregate_median,
        "iqm": metrics.aggregate_iqm,
        "optimality_gap": metrics.aggregate_optimality_gap,
    }
    rng = np.random.default_rng(30)
    for runs, tasks in [(1, 1), (3, 1), (5, 7), (10, 20), (4, 57)]:
        scores = rng.gamma(2.0, 0.5, size=(runs, tasks))
        for name, fn in reference.items():
            assert AGGREGATES[name](scores) == fn(scores), (name, runs, tasks)
        other = rng.gamma(2.0, 0.5, size=(runs + 2, tasks)).round(1)  # rounding makes ties
        ours = probability_of_improvement(scores.round(1), other)
        assert ours == metrics.probability_of_improvement(scores.round(1), other)


def test_performance_profile_points_match_rliable(rly: Any) -> None:
    scores = {"a": _scores(31).round(2), "b": _scores(32, runs=4).round(2)}
    taus = np.linspace(-0.5, 1.5, 41)
    theirs, _ = rly.create_performance_profile(scores, taus, reps=2)
    ours = performance_profiles(scores, taus, reps=2)
    for key in scores:
        np.testing.assert_array_equal(ours[key][0], theirs[key])


# The bootstrap streams differ (rliable draws from numpy's global RandomState through arch; we
# use a Generator), so interval ends can only agree up to Monte Carlo error. With 20000 resamples
# the measured gaps were at most 0.001 of the score range for the aggregates (over 5 data sets),
# 0.006 for P(X > Y) (rliable's side with 4000 resamples) and one profile step (1/200) for the
# profile; the tolerances leave a 3-5x margin. Both sides are seeded, so the test is
# deterministic. The confidence level itself is checked against the normal limit above.
AGGREGATE_CI_TOL = 0.005  # fraction of the score range
POI_CI_TOL = 0.02  # probability units
PROFILE_CI_TOL = 0.02  # fraction of runs


def test_aggregate_intervals_agree_with_rliable(rly: Any) -> None:
    metrics = pytest.importorskip("rliable.metrics")
    scores = np.random.default_rng(40).gamma(2.0, 0.4, size=(10, 20))
    fns = [
        metrics.aggregate_median,
        metrics.aggregate_iqm,
        metrics.aggregate_mean,
        metrics.aggregate_optimality_gap,
    ]
    np.random.seed(0)
    points, cis = rly.get_interval_estimates(
        {"a": scores}, lambda s: np.array([f(s) for f in fns]), reps=20000
    )
    ours = interval_estimates({"a": scores}, METRICS, reps=20000)["a"]
    tol = AGGREGATE_CI_TOL * float(scores.max() - scores.min())
    for i, metric in enumerate(METRICS):
        assert ours[metric].point == points["a"][i]
        assert abs(ours[metric].low - cis["a"][0, i]) < tol, metric
        assert abs(ours[metric].high - cis["a"][1, i]) < tol, metric


def test_probability_of_improvement_interval_agrees_with_rliable(rly: Any) -> None:
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(41)
    x, y = rng.normal(0.6, 0.4, size=(10, 5)), rng.normal(0.5, 0.4, size=(7, 5))
    np.random.seed(0)
    # rliable's PoI bootstrap calls scipy per task and replicate, so fewer resamples here.
    points, cis = rly.get_interval_estimates(
        {"xy": [x, y]},
        lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
        reps=4000,
    )
    ours = probability_of_improvement_interval(x, y, reps=20000)
    assert ours.point == points["xy"][0]
    assert abs(ours.low - cis["xy"][0, 0]) < POI_CI_TOL
    assert abs(ours.high - cis["xy"][1, 0]) < POI_CI_TOL


def test_profile_intervals_agree_with_rliable(rly: Any) -> None:
    scores = {"a": _scores(42)}
    taus = np.linspace(-0.2, 1.2, 15)
    np.random.seed(0)
    _, cis = rly.create_performance_profile(scores, taus, reps=20000)
    _, low, high = performance_profiles(scores, taus, reps=20000)["a"]
    np.testing.assert_allclose(low, cis["a"][0], atol=PROFILE_CI_TOL, rtol=0)
    np.testing.assert_allclose(high, cis["a"][1], atol=PROFILE_CI_TOL, rtol=0)


# --------------------------------------------------------------------------- bad inputs

GOOD = np.ones((3, 4))


def _any(value: object) -> Any:
    """Pass a deliberately wrong argument past the type checker."""
    return value


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: iqm(np.ones(5)), ValueError, r"scores must be a 2-d array"),
        (lambda: mean(np.ones((2, 2, 2))), ValueError, r"scores must be a 2-d array"),
        (lambda: median(np.ones((0, 3))), ValueError, r"scores needs at least one"),
        (lambda: mean(np.array([[1.0, np.nan]])), ValueError, r"scores must hold finite"),
        (lambda: iqm(np.array([[1.0, np.inf]])), ValueError, r"scores must hold finite"),
        (lambda: mean(_any([["a", "b"]])), TypeError, r"scores must be an array of numbers"),
        (lambda: optimality_gap(GOOD, threshold=np.nan), ValueError, r"threshold must be finite"),
        (
            lambda: probability_of_improvement(GOOD, np.ones((3, 5))),
            ValueError,
            r"x and y need the same number of tasks",
        ),
        (lambda: probability_of_improvement(GOOD, np.ones(4)), ValueError, r"y must be a 2-d"),
        (
            lambda: probability_of_improvement_interval(GOOD, GOOD, reps=0),
            ValueError,
            r"reps must be >= 1",
        ),
        (
            lambda: probability_of_improvement_interval(GOOD, GOOD, confidence=1.0),
            ValueError,
            r"confidence must lie strictly between 0 and 1",
        ),
        (
            lambda: interval_estimates({"a": GOOD}, metrics=["iqm", "mode"]),
            ValueError,
            r"unknown metric\(s\) \['mode'\].*valid: \['iqm', 'mean', 'median', 'optimality_gap'\]",
        ),
        (lambda: interval_estimates({"a": GOOD}, metrics=[]), ValueError, r"metrics is empty"),
        (lambda: interval_estimates({"a": GOOD}, reps=0), ValueError, r"reps must be >= 1"),
        (
            lambda: interval_estimates({"a": GOOD}, reps=_any(2.5)),
            TypeError,
            r"reps must be an integer",
        ),
        (lambda: interval_estimates({"a": GOOD}, confidence=0), ValueError, r"confidence must"),
        (lambda: interval_estimates({"a": GOOD}, seed=-1), ValueError, r"seed must be >= 0"),
        (lambda: interval_estimates({}), ValueError, r"score_dict is empty"),
        (lambda: interval_estimates(_any([GOOD])), TypeError, r"score_dict must be a mapping"),
        (
            lambda: interval_estimates({"a": GOOD, "b": np.ones((3, 5))}),
            ValueError,
            r"score_dict: every algorithm needs the same number of tasks",
        ),
        (
            lambda: interval_estimates({"a": GOOD, "b": np.ones(4)}),
            ValueError,
            r"score_dict\['b'\] must be a 2-d array",
        ),
        (
            lambda: performance_profile(GOOD, np.ones((2, 2))),
            ValueError,
            r"taus must be a non-empty 1-d array",
        ),
        (
            lambda: performance_profiles({"a": GOOD}, np.array([0.0, np.nan])),
            ValueError,
            r"taus must hold finite",
        ),
        (
            lambda: sample_efficiency_curves({"a": GOOD}),
            ValueError,
            r"score_dict\['a'\] must be a 3-d array \[runs, tasks, points\]",
        ),
        (
            lambda: sample_efficiency_curves({"a": np.ones((2, 3, 4))}, metric="max"),
            ValueError,
            r"unknown metric\(s\) \['max'\] in metric;",
        ),
        (
            lambda: stratified_bootstrap_indices(0, 3, 10, np.random.default_rng()),
            ValueError,
            r"num_runs must be >= 1",
        ),
        (
            lambda: stratified_bootstrap_indices(2, 3, 10, _any(np.random.RandomState(0))),
            TypeError,
            r"rng must be a numpy.random.Generator",
        ),
        (lambda: normalize_scores(GOOD, 1.0, 1.0), ValueError, r"high must differ from low"),
        (
            lambda: normalize_scores(GOOD, np.zeros(3), 1.0),
            ValueError,
            r"low must be a number or an array \[tasks=4\]",
        ),
        (lambda: normalize_scores(GOOD, 0.0, np.inf), ValueError, r"high must hold finite"),
        (lambda: normalize_scores(np.ones(4), 0.0, 1.0), ValueError, r"scores must be"),
        (lambda: aggregate_table({"a": GOOD}, reps=-3), ValueError, r"reps must be >= 1"),
    ],
)
def test_bad_inputs(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
