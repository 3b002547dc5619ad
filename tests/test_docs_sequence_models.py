"""The examples of docs/sequence-models.md run as shown: the custom memory core trains in PPO,
the gSDE example builds an LSTM policy exploring with gSDE, and the inference loop with
``act_with_state`` runs over episodes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.agents import PPO
from rlkit.envs import make_vec_env

PAGE = Path(__file__).resolve().parents[1] / "docs" / "sequence-models.md"


def _section_block(heading: str) -> str:
    text = PAGE.read_text()
    start = text.index(heading + "\n") + len(heading) + 1
    end = re.search(r"^## ", text[start:], re.MULTILINE)
    section = text[start : start + end.start()] if end else text[start:]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, f"{heading!r}: expected one python block, found {len(blocks)}"
    return blocks[0]


def test_custom_memory_core_trains() -> None:
    env = make_vec_env("rlkit/CueRecall-v0", num_envs=2, seed=0, env_kwargs={"memory_length": 2})
    namespace: dict[str, Any] = {"env": env, "PPO": PPO}
    exec(_section_block("## Writing your own memory"), namespace)
    agent = namespace["agent"]
    assert agent.policy.recurrent
    assert [s.name for s in agent.policy.state_spec()] == ["actor_trace", "critic_trace"]
    agent.train(256, progress_bar=False)
    assert agent.num_updates == 1
    state = agent.policy_state
    assert state is not None and state[0].shape == (2, 32)


def test_inference_loop_runs() -> None:
    env = make_vec_env("rlkit/CartPoleNoVel-v1", num_envs=2, seed=0)
    agent = PPO(env, policy={"id": "gru_actor_critic", "hidden_size": 8}, seed=0)
    code = _section_block("## Inference with state").replace("while True:", "for _ in range(30):")
    namespace: dict[str, Any] = {"env": env, "agent": agent, "np": np}
    exec(code, namespace)
    state = namespace["state"]
    assert isinstance(state, tuple) and state[0].shape == (2, 1, 8)
    assert torch.isfinite(state[0]).all()


def test_gsde_example_explores_with_the_noise_after_the_lstm() -> None:
    namespace: dict[str, Any] = {}
    exec(_section_block("## gSDE on sequence policies"), namespace)
    agent = namespace["agent"]
    assert agent.policy.recurrent and agent.sde is agent.policy.distribution.sde
    assert agent.sde.sample_freq == 4 and agent.sde.latent_dim == 64
