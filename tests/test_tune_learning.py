"""``rlkit tune`` does its job on a real task: a small CartPole search beats a deliberately bad
start, and the median pruner stops trials that are behind. Both settings were validated over
study seeds 0-9 (``python benchmarks/learning_seeds.py tune_search tune_pruning --seeds 0-9``);
the test runs seed 0."""

from __future__ import annotations

import tempfile
from typing import Any

import pytest

pytest.importorskip("optuna")

from rlkit.tune import tune


def tune_search(seed: int) -> dict[str, Any]:
    """PPO (CartPole zoo preset, but a constant clip range: the zoo's annealed one shrinks
    every trial's updates to nothing within the short budget, which is not what this search
    is about) searching the learning rate, log-uniform in [1e-6, 3e-3], starting from 1e-6
    (where PPO barely moves from its initial policy): 5 trials of 16k steps, the score is a
    10-episode deterministic evaluation at the end."""
    with tempfile.TemporaryDirectory() as out:
        result = tune(
            "ppo",
            "CartPole-v1",
            space={"lr": {"type": "loguniform", "low": 1e-6, "high": 3e-3}},
            overrides={"anneal_clip_range": False},
            start={"lr": 1e-6},
            trials=5,
            budget=16_384,
            evals=1,
            pruner="none",
            top=0,
            plots=False,
            quiet=True,
            seed=seed,
            out=f"{out}/study",
        )
    assert result.best is not None
    start = result.trials[0]
    return {
        "start": float(start.value or 0.0),
        "best": float(result.best.value or 0.0),
        "best_lr": float(result.best.params["lr"]),
    }


def tune_pruning(seed: int) -> dict[str, Any]:
    """Four trials queued in order: two good ones (the preset with whitened observations), then
    two whose observations are clipped to +-1e-6 after whitening, so the policy sees a
    constant input and pushes one way (about 9 steps an episode). Median pruning over the
    complete trials, 4 evaluations of an 8k-step budget, no pruning in the first third."""
    good, bad = {"clip_obs": 10.0}, {"clip_obs": 1e-6}
    with tempfile.TemporaryDirectory() as out:
        result = tune(
            "ppo",
            "CartPole-v1",
            space={"clip_obs": [10.0, 1e-6]},
            overrides={"normalize_obs": True},
            start=[good, good, bad, bad],
            trials=4,
            budget=8192,
            evals=4,
            pruner="median",
            top=0,
            plots=False,
            quiet=True,
            seed=seed,
            out=f"{out}/study",
        )
    return {
        "states": [r.state for r in result.trials],
        "steps": [r.steps for r in result.trials],
        "values": [r.value for r in result.trials],
    }


def test_a_small_search_beats_a_deliberately_bad_start() -> None:
    """Validated over study seeds 0-9 (Intel Xeon, AVX-512): the start scored 55-156, the best
    trial 472-500, always with a learning rate >= 1e-3; re-run on seeds 0-4 (AMD EPYC): start
    55-156, best 500, lr >= 1.9e-3. The test asks for 200 more than the start and a learning
    rate >= 1e-4."""
    result = tune_search(0)
    assert result["best"] >= result["start"] + 200, result
    assert result["best_lr"] >= 1e-4, result


def test_the_median_pruner_stops_trials_that_are_behind() -> None:
    """Validated over study seeds 0-9: the two good trials complete, the two blind ones are
    pruned at the second evaluation (4096 steps) every time; re-run on seeds 0-4 with the
    preset's annealed clip range (AMD EPYC): the same, every time."""
    result = tune_pruning(0)
    assert result["states"] == ["complete", "complete", "pruned", "pruned"], result
    assert result["steps"][2] < 8192 and result["steps"][3] < 8192, result
