"""Every documented hook of the language-model agents runs, and takes effect, on every compute
backend (the language-model counterpart of tests/test_hooks.py, which trains gymnasium envs):
a subclass overrides the hook, one iteration runs, and what the override did shows in the
metrics, the loss or the optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lm_helpers import toy_lm
from torch import Tensor

from rlkit.agents import GRPO, LMPPO, RLOO
from rlkit.envs.text import TextVecEnv
from rlkit.lm.toy import toy_prompts
from rlkit.losses import Inputs, LossTerm
from rlkit.reward_models import ReferenceKLPenalty

BACKENDS = {
    "reference": {"compute": "reference"},
    "fast": {"compute": "fast"},
    "compile": {"compute": "compile", "compiler": "eager"},
}
AGENTS = (GRPO, RLOO, LMPPO)
CASES = [
    pytest.param(cls, hook, backend, id=f"{cls.__name__}-{hook}-{backend}")
    for cls in AGENTS
    for hook in cls.hooks
    for backend in BACKENDS
]


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_lm(tmp_path_factory.mktemp("lm-hooks"))


class Marker(LossTerm):
    """A term whose value and gradient are 0: it only shows up in the loss's values."""

    inputs = ("log_prob",)
    differentiable = ("log_prob",)

    def __init__(self) -> None:
        super().__init__(1.0, name="marker")

    def forward(self, x: Inputs) -> Tensor:
        return x["log_prob"].sum() * 0.0


class CountingSGD(torch.optim.SGD):
    """SGD that counts its steps."""

    steps = 0

    def step(self, closure: Any = None) -> Any:
        CountingSGD.steps += 1
        return super().step(closure)


def _subclass(base: type, hook: str, calls: list[str]) -> type:
    """``base`` with ``hook`` overridden to record its calls and leave a visible trace."""
    body: dict[str, Any] = {}
    if hook == "loss_terms":

        def loss_terms(self: Any) -> Any:
            calls.append(hook)
            return [*base.loss_terms(self), Marker()]

        body[hook] = loss_terms
    elif hook == "compute_advantages":

        def compute_advantages(self: Any, rollout: Any) -> None:
            calls.append(hook)
            base.compute_advantages(self, rollout)
            rollout.advantage = torch.zeros_like(rollout.advantage)  # nothing to learn

        body[hook] = compute_advantages
    elif hook == "loss_inputs":

        def loss_inputs(self: Any, micro: Any, share: float) -> Any:
            calls.append(hook)
            x = base.loss_inputs(self, micro, share)
            return {**x, "advantage": torch.zeros_like(x["advantage"])}

        body[hook] = loss_inputs
    elif hook == "rewards":

        def rewards(self: Any, rollout: Any, text: Any, env_reward: Tensor) -> Any:
            calls.append(hook)
            return {**base.rewards(self, rollout, text, env_reward), "bonus": env_reward + 3.0}

        body[hook] = rewards
    elif hook == "clip_and_step":

        def clip_and_step(self: Any, loss: Any, optimizer: Any = None) -> Any:
            calls.append(hook)
            return base.clip_and_step(self, loss, optimizer)

        body[hook] = clip_and_step
    elif hook == "new_optimizer":

        def new_optimizer(self: Any, params: Any, lr: float, eps: float = 1e-8) -> Any:
            calls.append(hook)
            return CountingSGD(params, lr=lr)

        body[hook] = new_optimizer
    elif hook == "make_kl_penalty":

        def make_kl_penalty(self: Any) -> Any:
            calls.append(hook)
            return ReferenceKLPenalty(coef=0.3, name="kl")

        body[hook] = make_kl_penalty
    else:
        raise AssertionError(f"no case for the hook {hook}")
    return type(f"Hooked{base.__name__}", (base,), body)


@pytest.mark.parametrize(("base", "hook", "backend"), CASES)
def test_hook_is_called_and_takes_effect(path: Path, base: type, hook: str, backend: str) -> None:
    calls: list[str] = []
    cls = _subclass(base, hook, calls)
    env = TextVecEnv(toy_prompts(16), str(path), num_prompts=2, group_size=2,
                     max_prompt_tokens=6, max_new_tokens=4, seed=0)  # fmt: skip
    agent = cls(env, model=str(path), reward_model={"id": "contains", "words": ["cat"]},
                seed=0, lr=1e-3, epochs=2, minibatch_size=2, **BACKENDS[backend])  # fmt: skip
    CountingSGD.steps = 0
    metrics = agent.iteration()
    assert hook in calls
    if hook == "loss_terms":
        assert metrics["loss/marker"] == 0.0
    elif hook in ("compute_advantages", "loss_inputs"):
        assert metrics["loss/policy"] == 0.0  # no advantage, no policy-gradient loss
    elif hook == "rewards":
        assert metrics["reward/bonus"] == 3.0 and metrics["reward/total"] >= 3.0
    elif hook == "clip_and_step":
        assert calls.count(hook) == 4  # 2 epochs x 2 minibatches
    elif hook == "new_optimizer":
        assert isinstance(agent.optimizer.optimizer, CountingSGD)
        assert CountingSGD.steps == 4  # it is the optimizer that steps
    elif hook == "make_kl_penalty":
        assert agent.kl_penalty is not None and "reward/kl" in metrics
        assert agent.reference is not None  # the penalty reads the reference
