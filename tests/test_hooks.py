"""Every documented hook of every agent runs, and takes effect, on every compute backend.

For each agent class, each name in its ``hooks`` and each backend (``reference``, ``fast``,
``compile`` with torch.compile's tracing-only ``eager`` compiler, whose tracing is what decides
which Python runs), a subclass overrides the hook and a short training run checks that the
override was called and that what it did shows: the actions the envs received, a logged
metric, the terms in the loss that was stepped, the number of steps taken, parameters left
alone, or the optimizer that stepped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

import rlkit.envs  # noqa: F401  (registers rlkit's tasks)
from rlkit.agents import (
    A2C,
    APPO,
    DAAC,
    DDPG,
    DQN,
    IMPALA,
    MAPPO,
    MPO,
    PPG,
    PPO,
    PQN,
    R2D2,
    REDQ,
    REINFORCE,
    SAC,
    TD3,
    TQC,
    TRPO,
    VMPO,
    ApeX,
    CrossQ,
    DrAC,
    DrQv2,
    RecurrentSAC,
    SACDiscrete,
)
from rlkit.agents.apex import ApeXActor
from rlkit.envs import make_vec_env
from rlkit.envs.pixel_control import ENV_ID as PIXEL_ENV
from rlkit.losses import Inputs, LossTerm
from rlkit.prototypes import ActorLearner, OffPolicyAgent, OnPolicyAgent
from rlkit.storages import STORAGES, ReplayStorage, RolloutStorage, SequenceReplay

BACKENDS = {
    "reference": {"compute": "reference"},
    "fast": {"compute": "fast"},
    "compile": {"compute": "compile", "compiler": "eager"},
}

ON = {"num_steps": 16, "batch_size": 8, "num_epochs": 2}
OFF = {"learning_starts": 16, "batch_size": 8, "gradient_steps": 2, "buffer_size": 500}
DIST = {"num_actors": 1, "num_steps": 8, "num_minibatches": 2, "num_epochs": 1}

LSTM = {"policy": {"id": "lstm_actor_critic", "hidden_size": 8}}


class LSTMPPO(PPO):
    """PPO with an LSTM policy (the hook matrix with a recurrent state: sequence minibatches,
    the state carried by ``explore``)."""


class LSTMAPPO(APPO):
    """APPO with an LSTM policy (column minibatches, states in the unrolls)."""


#: agent -> (env id, num_envs, hyperparameters, env steps to train)
AGENTS: dict[type, tuple[str, int, dict[str, Any], int]] = {
    LSTMPPO: ("CartPole-v1", 2, {**ON, **LSTM, "seq_len": 8}, 64),
    LSTMAPPO: ("CartPole-v1", 2, {**DIST, **LSTM}, 48),
    PPO: ("CartPole-v1", 2, ON, 64),
    MAPPO: ("mpe2:simple_spread_v3", 2, ON, 192),  # 3 agents: 6 rows per env step
    A2C: ("CartPole-v1", 2, {"num_steps": 16, "batch_size": 8}, 64),
    DrAC: ("CartPole-v1", 2, {**ON, "augmentation": "gaussian_noise"}, 64),
    DAAC: ("CartPole-v1", 2, {**ON, "value_epochs": 1}, 64),
    PPG: ("CartPole-v1", 2, {**ON, "n_pi": 1, "aux_epochs": 1}, 64),
    REINFORCE: ("CartPole-v1", 2, {"num_steps": 16}, 64),
    TRPO: ("CartPole-v1", 2, {"num_steps": 16, "batch_size": 8, "n_critic_updates": 2}, 64),
    VMPO: ("CartPole-v1", 2, ON, 64),
    PQN: ("CartPole-v1", 2, {**ON, "hidden_sizes": [16]}, 64),
    DQN: (
        "CartPole-v1",
        1,
        {**OFF, "train_freq": 4, "hidden_sizes": [16], "tau": 0.5, "target_update_interval": 1},
        64,
    ),
    SAC: ("Pendulum-v1", 1, {**OFF, "hidden_sizes": [16]}, 48),
    CrossQ: ("Pendulum-v1", 1, {**OFF, "hidden_sizes": [16], "critic_hidden_sizes": [16]}, 48),
    TQC: ("Pendulum-v1", 1, {**OFF, "hidden_sizes": [16], "n_critics": 2, "n_quantiles": 5}, 48),
    MPO: (
        "Pendulum-v1",
        1,
        {**OFF, "hidden_sizes": [16], "num_samples": 4, "target_update_interval": 2},
        48,
    ),
    REDQ: ("Pendulum-v1", 1, {**OFF, "hidden_sizes": [16], "n_critics": 3, "policy_delay": 2}, 48),
    TD3: ("Pendulum-v1", 1, {**OFF, "hidden_sizes": [16]}, 48),
    DDPG: ("Pendulum-v1", 1, {**OFF, "hidden_sizes": [16]}, 48),
    SACDiscrete: ("CartPole-v1", 1, {**OFF, "hidden_sizes": [16]}, 48),
    R2D2: (
        "CartPole-v1",
        2,
        {
            **OFF,
            "burn_in": 2,
            "seq_len": 4,
            "hidden_size": 8,
            "hidden_sizes": [8],
            "train_freq": 4,
            "tau": 0.5,
            "target_update_interval": 1,
        },
        64,
    ),
    RecurrentSAC: (
        "rlkit/PendulumNoVel-v1",
        2,
        {**OFF, "burn_in": 2, "seq_len": 4, "hidden_size": 8, "hidden_sizes": [8]},
        48,
    ),
    DrQv2: (PIXEL_ENV, 1, {**OFF, "hidden_sizes": [16], "feature_dim": 8, "frame_stack": 1}, 40),
    IMPALA: ("CartPole-v1", 2, DIST, 48),
    APPO: ("CartPole-v1", 2, DIST, 48),
    ApeX: (
        "CartPole-v1",
        1,
        {
            **OFF,
            "num_actors": 1,
            "num_steps": 8,
            "hidden_sizes": [16],
            "train_freq": 4,
            "tau": 0.5,
            "target_update_interval": 1,
        },
        48,
    ),
}

CASES = [
    pytest.param(cls, hook, backend, id=f"{cls.__name__}-{hook}-{backend}")
    for cls in AGENTS
    for hook in cls.hooks
    for backend in BACKENDS
]


def test_every_agent_documents_its_hooks() -> None:
    for cls in AGENTS:
        assert cls.hooks, cls
        for hook in cls.hooks:
            assert callable(getattr(cls, hook)), f"{cls.__name__}.{hook}"


class Marker(LossTerm):
    """A term without a closed form whose value and gradient are 0: it only shows up."""

    calls = 0

    def __init__(self, key: str) -> None:
        super().__init__(1.0, name="marker")
        self.key = key

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.key,)

    @property
    def differentiable(self) -> tuple[str, ...]:
        return (self.key,)

    def forward(self, x: Inputs) -> Tensor:
        Marker.calls += 1
        return 0.0 * x[self.key].sum()


class LoudPriorities(ApeXActor):
    """Ape-X's actor behaviour giving every transition the priority 7 (TD errors of these
    tiny runs stay far below it, so the sampler's largest priority shows whether it was used)."""

    PRIORITY = 7.0

    def annotate(self, policy: Any, data: Any) -> dict[str, Tensor]:
        return {"priorities": torch.full_like(super().annotate(policy, data)["priorities"], 7.0)}


class CountingSGD(torch.optim.SGD):
    steps = 0

    def step(self, closure: Any = None) -> Any:
        CountingSGD.steps += 1
        return super().step(closure)


def _env(env_id: str, num_envs: int) -> Any:
    kwargs = {"env_kwargs": {"size": 16}} if env_id == PIXEL_ENV else {}
    return make_vec_env(env_id, num_envs=num_envs, seed=0, **kwargs)


def _constant_actions(agent: Any) -> np.ndarray:
    space = agent.env.action_space
    return np.zeros(space.shape, dtype=space.dtype)


def _override(base: type, hook: str, record: dict[str, Any]) -> type:
    """A subclass of ``base`` whose ``hook`` records its calls and does something visible."""

    def count() -> None:
        record["calls"] = record.get("calls", 0) + 1

    body: dict[str, Callable[..., Any]] = {}
    if hook == "explore" and issubclass(base, OnPolicyAgent):

        def explore(self: Any, obs: Any) -> tuple[Tensor, Tensor, Tensor]:
            count()
            actions, log_probs, values = super(cls, self).explore(obs)
            return torch.zeros_like(actions), log_probs, values

        body[hook] = explore
    elif hook == "explore":

        def explore_off(self: Any, obs: Any) -> np.ndarray:
            count()
            super(cls, self).explore(obs)
            return _constant_actions(self)

        body[hook] = explore_off
    elif hook == "update":

        def update(self: Any, *args: Any) -> Any:
            count()
            return {**super(cls, self).update(*args), "hook/update": 1.0}

        body[hook] = update
    elif hook == "loss_terms":

        def loss_terms(self: Any) -> Any:
            count()
            terms = super(cls, self).loss_terms()
            if isinstance(terms, dict):  # off-policy: add to the first loss
                first = next(iter(terms))
                return {**terms, first: [*terms[first], Marker("q")]}
            return [*terms, Marker("log_prob")]

        body[hook] = loss_terms
    elif hook == "extra_losses":

        def extra_losses(self: Any, mb: Any, values: Tensor) -> dict[str, Tensor]:
            count()
            zero = sum(p.sum() for p in self.policy.parameters()) * 0.0
            return {**super(cls, self).extra_losses(mb, values), "marker": zero}

        body[hook] = extra_losses
    elif hook in ("minibatches", "env_minibatches", "sample_minibatches"):

        def minibatches(self: Any, *args: Any) -> Iterator[Any]:
            count()
            record["yielded"] = record.get("yielded", 0) + 1
            yield next(iter(getattr(super(cls, self), hook)(*args)))

        body[hook] = minibatches
    elif hook == "clip_and_step":

        def clip_and_step(self: Any, loss: Any, optimizer: Any = None) -> None:
            count()  # never steps: the parameters must not move

        body[hook] = clip_and_step
    elif hook == "make_optimizer":

        def make_optimizer(self: Any) -> torch.optim.Optimizer:
            count()
            super(cls, self).make_optimizer()  # (its side effects: DAAC's value network)
            return CountingSGD([self.flat_params], lr=1e-3)

        body[hook] = make_optimizer
    elif hook == "new_optimizer":

        def new_optimizer(self: Any, params: Any, lr: float, eps: float = 1e-8) -> Any:
            count()
            return CountingSGD(params, lr=1e-3)

        body[hook] = new_optimizer
    elif hook == "update_targets":

        def update_targets(self: Any) -> None:
            count()  # never moves the targets

        body[hook] = update_targets
    elif hook == "actor_behaviour":

        def actor_behaviour(self: Any, actor_id: int) -> Any:
            count()
            base = super(cls, self).actor_behaviour(actor_id)
            return LoudPriorities(base.epsilon, base.n_step, base.gamma)

        body[hook] = actor_behaviour
    elif hook == "store_unroll":

        def store_unroll(self: Any, data: Any) -> None:
            count()
            data.rewards = torch.zeros_like(data.rewards)
            super(cls, self).store_unroll(data)

        body[hook] = store_unroll
    else:
        raise AssertionError(f"no check written for hook {hook!r}")
    cls = type(f"Hooked{base.__name__}", (base,), body)
    if hook == "minibatches" and issubclass(base, OnPolicyAgent):
        cls.handles_active_steps = True  # type: ignore[attr-defined]  # (delegates to super)
    return cls


def _policy_vector(agent: Any) -> Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in agent.policy.parameters()])


@pytest.mark.parametrize(("base", "hook", "backend"), CASES)
def test_hook_is_called_and_takes_effect(base: type, hook: str, backend: str) -> None:
    env_id, num_envs, hyper, steps = AGENTS[base]
    record: dict[str, Any] = {}
    Marker.calls, CountingSGD.steps = 0, 0
    cls = _override(base, hook, record)
    agent = cls(_env(env_id, num_envs), seed=0, **hyper, **BACKENDS[backend])
    stepped: list[tuple[Any, Any]] = []
    original = agent.clip_and_step
    if hook != "clip_and_step":

        def spy(loss: Any, optimizer: Any = None) -> Any:
            stepped.append((loss, optimizer))
            return original(loss, optimizer)

        agent.clip_and_step = spy
    before = _policy_vector(agent)
    targets = [p.detach().clone() for t in agent.registry.targets.values() for p in t.parameters()]
    metrics: dict[str, float] = {}
    iterations = 0
    try:
        while agent.global_step < steps:
            agent._target_steps = steps
            metrics.update(agent.iteration())
            iterations += 1
    finally:
        if isinstance(agent, ActorLearner):
            agent.close()
    assert record.get("calls", 0) > 0, f"{cls.__name__}.{hook} was never called"

    if hook == "explore" and isinstance(agent, OnPolicyAgent):
        assert torch.count_nonzero(agent.storage.actions) == 0
    elif hook == "explore":
        storage = agent.storage
        row = (storage.steps - 1) % storage.num_rows * storage.num_envs
        np.testing.assert_array_equal(
            storage.actions[row : row + storage.num_envs].reshape(-1),
            _constant_actions(agent).reshape(-1),
        )
    elif hook == "update":
        assert metrics.get("hook/update") == 1.0
    elif hook in ("loss_terms", "extra_losses"):
        assert any("marker" in loss.values for loss, _ in stepped)
        if hook == "loss_terms":
            assert Marker.calls > 0
    elif hook == "minibatches" and isinstance(agent, OffPolicyAgent):
        assert agent.num_updates == record["yielded"]  # one batch per round, as yielded
    elif hook in ("minibatches", "env_minibatches", "sample_minibatches"):
        # steps on minibatches: the policy's, and DAAC's value network's (not PPG's auxiliary
        # phase, which iterates its own stored data)
        fed = (None, getattr(agent, "value_group", None))
        policy_steps = sum(1 for _, opt in stepped if any(opt is f for f in fed))
        assert policy_steps == record["yielded"], (policy_steps, record)
    elif hook == "clip_and_step":
        assert torch.equal(_policy_vector(agent), before)
    elif hook == "make_optimizer":
        assert isinstance(agent.optimizer, CountingSGD) and CountingSGD.steps > 0
        assert not torch.equal(_policy_vector(agent), before)
    elif hook == "new_optimizer":
        assert all(isinstance(o, CountingSGD) for o in agent.registry.optimizers.values())
        assert CountingSGD.steps > 0
    elif hook == "actor_behaviour":
        assert agent.storage.sampler.max_priority == pytest.approx(LoudPriorities.PRIORITY + 1e-6)
    elif hook == "store_unroll":
        assert not np.any(agent.storage.rewards[: len(agent.storage)])
    elif hook == "update_targets":
        now = [p.detach() for t in agent.registry.targets.values() for p in t.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(targets, now, strict=True))
        assert agent.num_updates > 0
    assert iterations > 0


# --------------------------------------------------------------------------- storages
STORAGE_CALLS: Counter[str] = Counter()


class CountingRollout(RolloutStorage):
    """A rollout storage that counts its calls and stores every reward as 0."""

    def add(self, obs: Any, actions: Tensor, rewards: Tensor, *args: Any, **kwargs: Any) -> None:
        STORAGE_CALLS["add"] += 1
        super().add(obs, actions, torch.zeros_like(rewards), *args, **kwargs)

    def compute_returns_and_advantages(self, *args: Any, **kwargs: Any) -> None:
        STORAGE_CALLS["returns"] += 1
        super().compute_returns_and_advantages(*args, **kwargs)

    def minibatches(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        STORAGE_CALLS["minibatches"] += 1
        yield from super().minibatches(*args, **kwargs)

    def sequence_minibatches(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        STORAGE_CALLS["minibatches"] += 1  # (what a recurrent policy's updates read)
        yield from super().sequence_minibatches(*args, **kwargs)


class CountingReplay(ReplayStorage):
    """A replay storage that counts its calls and stores every reward as 0."""

    def add(self, obs: Any, actions: Any, rewards: Any, *args: Any) -> None:
        STORAGE_CALLS["add"] += 1
        super().add(obs, actions, np.zeros_like(rewards), *args)

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        STORAGE_CALLS["sample"] += 1
        return super().sample(*args, **kwargs)


class CountingSequenceReplay(SequenceReplay):
    """A sequence replay (R2D2) that counts its calls and stores every reward as 0."""

    def add(self, obs: Any, actions: Any, rewards: Any, *args: Any, **kwargs: Any) -> None:
        STORAGE_CALLS["add"] += 1
        super().add(obs, actions, np.zeros_like(rewards), *args, **kwargs)

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        STORAGE_CALLS["sample"] += 1
        return super().sample(*args, **kwargs)


@pytest.fixture(scope="module")
def counting_storages() -> Iterator[None]:
    STORAGES.register("test_counting_rollout")(CountingRollout)
    STORAGES.register("test_counting_replay")(CountingReplay)
    STORAGES.register("test_counting_sequence_replay")(CountingSequenceReplay)
    yield
    STORAGES.unregister("test_counting_rollout")
    STORAGES.unregister("test_counting_replay")
    STORAGES.unregister("test_counting_sequence_replay")


STORAGE_CASES = [
    pytest.param(cls, backend, id=f"{cls.__name__}-{backend}")
    for cls in AGENTS
    if not issubclass(cls, ActorLearner)  # (actors own their buffers; Ape-X: tests/test_apex.py)
    for backend in BACKENDS
]


@pytest.mark.usefixtures("counting_storages")
@pytest.mark.parametrize(("cls", "backend"), STORAGE_CASES)
def test_a_custom_storage_is_called_and_takes_effect(cls: type, backend: str) -> None:
    """The storage is a documented extension point: a subclass given as ``storage=`` is what
    collection writes to and what updates read from, on every backend."""
    env_id, num_envs, hyper, steps = AGENTS[cls]
    on_policy = issubclass(cls, OnPolicyAgent)
    spec: Any = "test_counting_rollout" if on_policy else "test_counting_replay"
    expected: type = CountingRollout if on_policy else CountingReplay
    if not on_policy and issubclass(cls.storage_class, SequenceReplay):
        spec, expected = "test_counting_sequence_replay", CountingSequenceReplay
    if cls is DrQv2:  # (its default storage keeps stacked frames in a pixel store)
        spec = {"id": spec, "store": {"id": "pixel", "stack_size": hyper["frame_stack"]}}
    STORAGE_CALLS.clear()
    agent = cls(_env(env_id, num_envs), seed=0, storage=spec, **hyper, **BACKENDS[backend])
    assert type(agent.storage) is expected
    agent.train(steps, progress_bar=False)
    assert STORAGE_CALLS["add"] * agent.num_envs == agent.global_step  # rows for MAPPO
    if on_policy:
        assert STORAGE_CALLS["returns"] == agent.num_updates > 0
        assert STORAGE_CALLS["minibatches"] >= agent.num_updates
        assert torch.count_nonzero(agent.storage.rewards) == 0
    else:
        assert STORAGE_CALLS["sample"] > 0 and agent.num_updates > 0
        assert not np.any(agent.storage.rewards[: len(agent.storage)])
