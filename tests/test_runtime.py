"""Process-wide CPU settings are explicit and scoped: constructing an agent changes none of
them, training applies the agent's settings and restores the caller's afterwards."""

from __future__ import annotations

import pytest
import torch

from rlkit import runtime
from rlkit.agents import PPO
from rlkit.envs import make_vec_env
from rlkit.prototypes import Agent

TINY = {"num_steps": 16, "batch_size": 16, "num_epochs": 1, "device": "cpu"}


def _ppo(**kwargs: object) -> PPO:
    return PPO(make_vec_env("CartPole-v1", num_envs=2, seed=0), seed=0, **TINY, **kwargs)


def test_constructing_an_agent_changes_no_process_setting() -> None:
    threads, flushed = torch.get_num_threads(), runtime.denormals_flushed()
    _ppo(num_threads=threads + 1)
    assert torch.get_num_threads() == threads
    assert runtime.denormals_flushed() == flushed


@pytest.mark.parametrize("flush", [True, False])
def test_training_applies_the_agents_settings_and_restores_the_callers(flush: bool) -> None:
    seen: list[tuple[int, bool]] = []

    def look(agent: Agent, metrics: dict[str, float]) -> None:
        seen.append((torch.get_num_threads(), runtime.denormals_flushed()))

    threads, flushed = torch.get_num_threads(), runtime.denormals_flushed()
    wanted = 1 if threads > 1 else 2
    _ppo(num_threads=wanted, flush_denormals=flush).train(64, progress_bar=False, callbacks=look)
    assert seen and all(s == (wanted, flush) for s in seen)
    assert torch.get_num_threads() == threads
    assert runtime.denormals_flushed() == flushed


def test_flush_denormals_nests_and_restores() -> None:
    assert not runtime.denormals_flushed()
    tiny = torch.tensor([1e-39])  # a float32 denormal
    with runtime.flush_denormals() as on:
        assert on and runtime.denormals_flushed()
        assert float(tiny * 1.0) == 0.0  # flushed on input (DAZ) or output (FTZ)
        with runtime.flush_denormals(False) as inner:
            assert not inner and not runtime.denormals_flushed()
            assert float(tiny * 1.0) > 0.0
        assert runtime.denormals_flushed()
    assert not runtime.denormals_flushed()
    assert float(tiny * 1.0) > 0.0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_counts(bad: object) -> None:
    with pytest.raises(ValueError, match=f"num_threads must be an integer >= 1, got {bad!r}"):
        runtime.set_num_threads(bad)  # type: ignore[arg-type]
