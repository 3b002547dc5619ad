"""Learning tests for DrAC, DAAC and PPG: fixed seeds, the tuned presets, real thresholds.

Timings on a 2-core CPU (torch 2.13): DrAC on PixelReach ~30 s, DAAC ~9 s and PPG ~10 s on
CartPole (training plus evaluation).
"""

from __future__ import annotations

import pytest

import rlkit.envs.pixel  # noqa: F401  (registers rlkit/PixelReach-v0)
from rlkit.agents.daac import DAAC
from rlkit.agents.drac import DrAC
from rlkit.agents.ppg import PPG
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env

pytestmark = pytest.mark.learning


def _preset(algo: str, env_id: str) -> tuple[int, int, dict]:
    settings = load_preset(algo, env_id)
    return settings.pop("num_envs"), settings.pop("total_steps"), settings


def drac_pixel_reach(seed: int) -> dict[str, float]:
    num_envs, total, hyper = _preset("drac", "rlkit/PixelReach-v0")
    assert total <= 41_000
    env = make_vec_env("rlkit/PixelReach-v0", num_envs=num_envs, seed=seed)
    return DrAC(env, seed=seed, **hyper).train(total, progress_bar=False).evaluate(episodes=50)


def daac_cartpole(seed: int) -> dict[str, float]:
    num_envs, total, hyper = _preset("daac", "CartPole-v1")
    assert total <= 100_000
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    return DAAC(env, seed=seed, **hyper).train(total, progress_bar=False).evaluate(episodes=20)


def ppg_cartpole(seed: int) -> dict[str, float]:
    num_envs, total, hyper = _preset("ppg", "CartPole-v1")
    assert total <= 100_000
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    return PPG(env, seed=seed, **hyper).train(total, progress_bar=False).evaluate(episodes=20)


def test_drac_learns_pixel_reach() -> None:
    """A uniformly random policy reaches the target in ~35% of the episodes (mean return 0.35,
    mean length 16 of at most 20); the optimum is return 1 in ~3.3 steps. With RandomShift
    (the default augmentation) DrAC gets there within 40k steps (~30 s, one CPU thread); we
    require a 50-episode mean return >= 0.95 and mean length <= 5."""
    result = drac_pixel_reach(0)
    assert result["return_mean"] >= 0.95, result
    assert result["length_mean"] <= 5.0, result


def test_daac_solves_cartpole_within_100k_steps() -> None:
    """Random policy ~22; we require a 20-episode mean >= 475 (12/12 seeds reach 500)."""
    result = daac_cartpole(0)
    assert result["return_mean"] >= 475, result


def test_ppg_solves_cartpole_within_100k_steps() -> None:
    """Random policy ~22; we require a 20-episode mean >= 475 (6/6 seeds reach >= 498). The
    preset runs an auxiliary phase every 8 iterations, so ~48 of them happen."""
    result = ppg_cartpole(0)
    assert result["return_mean"] >= 475, result
