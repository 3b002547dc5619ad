"""Every bad input named: one clear line, the right exception or exit status 2, nothing lost.

Each case asserts the exception type (Python) or exit status 2 (CLI), exactly one line, the
words that matter (the parameter, its value, what is allowed) and no traceback; where files
are involved, that an existing run directory or checkpoint is byte-for-byte unchanged.

Cases by category (``test_case_counts`` keeps these numbers honest):

- hyperparameter rules, one out-of-range value per declared rule of every config class: 195
- NaN and inf, for every float hyperparameter of every registered agent (once per class that
  declares its rule): 230
- agents built with bad hyperparameters or primitive specs (Python, the issue's list): 30
- primitive constructors, one bad value per argument rule a registered primitive takes: 282
- spec dicts with an unknown key, one per registered encoder, distribution, policy,
  augmentation, intrinsic reward and reward model: 72
- ``act`` / ``evaluate`` / ``train`` arguments (shapes, dtypes, dict keys, env spaces, counts): 22
- hand-edited ``config.json`` files, loaded in Python (checkpoint unchanged): 20
- CLI in-process (``rlkit.cli.main.main``): train, eval, list and usage errors: 60
- CLI runs that fail without touching an existing run or checkpoint: 9
- CLI through ``python -m rlkit`` (no traceback reaches the terminal): 3

Total: 923.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlkit.agents as agents
from rlkit.checkpoint import CheckpointError
from rlkit.cli.main import main
from rlkit.config.rules import (
    ARGUMENT_RULES,
    ListOf,
    OneOf,
    Range,
    Rule,
    Satisfies,
    Sizes,
    rules_markdown,
    rules_of,
)
from rlkit.envs import make_vec_env
from rlkit.prototypes import (
    AGENTS,
    ActorsConfig,
    AgentConfig,
    GSDEConfig,
    OffPolicyConfig,
    OnPolicyConfig,
    load_agent,
)
from rlkit.prototypes.distributed import DistributedConfig
from rlkit.prototypes.language import LanguageModelConfig
from rlkit.registry import REGISTRIES, UnknownArgumentError, arguments_of

for _package in ("encoders", "distributions", "policies", "augmentations", "rewards"):
    importlib.import_module(f"rlkit.{_package}")

ROOT = Path(__file__).resolve().parents[1]

#: every config class, in the order docs/configuration.md lists their rules.
CONFIG_CLASSES: list[type] = [
    AgentConfig,
    OnPolicyConfig,
    agents.PPOConfig,
    agents.MAPPOConfig,
    agents.A2CConfig,
    agents.DrACConfig,
    agents.PPGConfig,
    agents.DAACConfig,
    agents.REINFORCEConfig,
    agents.TRPOConfig,
    agents.VMPOConfig,
    agents.PQNConfig,
    OffPolicyConfig,
    GSDEConfig,
    agents.DQNConfig,
    agents.QRDQNConfig,
    agents.R2D2Config,
    agents.C51Config,
    agents.IQNConfig,
    agents.MDQNConfig,
    agents.RainbowConfig,
    agents.RainbowIQNConfig,
    agents.SACConfig,
    agents.RecurrentSACConfig,
    agents.TQCConfig,
    agents.MPOConfig,
    agents.REDQConfig,
    agents.CrossQConfig,
    agents.SACDiscreteConfig,
    agents.TD3Config,
    agents.DDPGConfig,
    agents.DrQv2Config,
    ActorsConfig,
    DistributedConfig,
    agents.APPOConfig,
    agents.IMPALAConfig,
    agents.ApeXConfig,
    LanguageModelConfig,
    agents.GRPOConfig,
    agents.RLOOConfig,
    agents.LMPPOConfig,
]
PRIMITIVE_KINDS = (
    "encoder",
    "distribution",
    "policy",
    "augmentation",
    "intrinsic_reward",
    "reward_model",
)


def shipped(items: Iterable[tuple[str, type]]) -> list[tuple[str, type]]:
    """The registry entries rlkit ships (other test modules register classes of their own)."""
    return [(ident, cls) for ident, cls in items if cls.__module__.startswith("rlkit.")]


def primitive_classes() -> list[type]:
    """The primitive classes that declare argument rules, bases first (the docs' order)."""
    seen: list[type] = []
    for kind in PRIMITIVE_KINDS:
        for _, cls in shipped(REGISTRIES[kind].items()):
            for klass in reversed(cls.__mro__):
                if klass.__dict__.get(ARGUMENT_RULES) and klass not in seen:
                    seen.append(klass)
    return seen


def one_line(text: str) -> str:
    """``text`` stripped, asserting it is exactly one line and holds no traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {text!r}"
    assert "Traceback" not in text
    return lines[0]


def raises(
    kind: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[[], Any]
) -> str:
    """The one-line message of the exception ``fn`` raises (asserting its type)."""
    with pytest.raises(kind) as info:
        fn()
    return one_line(str(info.value))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path -> bytes)."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


# --------------------------------------------------------------------------- bad values
#: bad values for the rules that are tests rather than ranges (by what they allow).
SATISFIES_BAD = {
    "activation": "swish",
    "device": "gpu",
    "actor_device": "tpu:x",
    "learner_device": "gpu",
    "std_schedule": "cosine(1,0)",
    "ent_coef": "sometimes",
    "target_entropy": "high",
    "ray_address": "",
    "log_std_bounds": [2.0, -2.0],
    "env_kwargs": [1, 2],
    "core": "rnn",
    "lora": [1, 2],
    # reward models
    "model": "",
    "label": -1,
    "label_field": "",
    "parts": {},
    "weights": {"cat": "heavy"},
    "words": [],
    "pattern": "(cat",
    "clip_coef": [2.0, 1.0],
}


def bad_value(name: str, rule: Rule) -> Any:
    """A value ``rule`` refuses: just outside its range, not among its choices, ..."""
    if isinstance(rule, Range):
        if rule.low is not None:
            below = rule.low if rule.low_open else rule.low - 1
            return int(below) if rule.integer else below
        if rule.high is not None:
            return rule.high if rule.high_open else rule.high + 1
        return math.inf
    if isinstance(rule, OneOf):
        first = rule.choices[0]
        return "bogus" if isinstance(first, str) else first + 1
    if isinstance(rule, Sizes):
        return [rule.minimum - 1]
    if isinstance(rule, ListOf):
        return [bad_value(name, rule.item)]
    if isinstance(rule, Satisfies):
        return SATISFIES_BAD[name]
    raise AssertionError(f"no bad value for {name}: {rule!r}")


def rule_cases() -> Iterator[Any]:
    for cls in CONFIG_CLASSES:
        for name, rule in cls.__dict__.get("rules", {}).items():
            yield pytest.param(cls, name, rule, id=f"{cls.__name__}.{name}")


def float_cases() -> Iterator[Any]:
    """NaN and inf for every float hyperparameter, once per class that declares its rule."""
    seen: set[str] = set()
    for _, agent_cls in shipped(AGENTS.items()):
        config = agent_cls.Config
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            if float not in (hints[f.name], *typing.get_args(hints[f.name])):
                continue
            owner = next(k for k in config.__mro__ if f.name in k.__dict__.get("rules", {}))
            key = f"{owner.__name__}.{f.name}"
            if key not in seen:
                seen.add(key)
                for value in (math.nan, math.inf):
                    yield pytest.param(config, f.name, value, id=f"{key}={value}")


RULE_CASES = list(rule_cases())
FLOAT_CASES = list(float_cases())


# --------------------------------------------------------------------------- config rules
@pytest.mark.parametrize(("cls", "name", "rule"), RULE_CASES)
def test_every_rule_refuses_and_names_the_value(cls: type, name: str, rule: Rule) -> None:
    value = bad_value(name, rule)
    message = raises(ValueError, lambda: cls(**{name: value}))
    assert message.startswith("invalid hyperparameter(s): ")
    assert f"{name}=" in message
    assert f"{name} must be {rule.describe()}" in message or f"{name} must be finite" in message


@pytest.mark.parametrize(("cls", "name", "value"), FLOAT_CASES)
def test_nan_and_inf_are_refused(cls: type, name: str, value: float) -> None:
    message = raises(ValueError, lambda: cls(**{name: value}))
    assert f"{name}={value!r}" in message
    assert f"{name} must be" in message


def test_every_hyperparameter_has_a_rule_and_the_defaults_pass() -> None:
    for _, agent_cls in shipped(AGENTS.items()):
        config = agent_cls.Config
        hints = typing.get_type_hints(config)
        rules = rules_of(config)
        for f in dataclasses.fields(config):
            if hints[f.name] is not bool:
                assert f.name in rules, f"{config.__name__}.{f.name} has no declared rule"
        assert set(rules) <= {f.name for f in dataclasses.fields(config)}
        config()  # the defaults are allowed


def test_docs_list_the_rules() -> None:
    """docs/configuration.md's tables of allowed values are the declared rules."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    for marker, generated in (
        ("hyperparameter-rules", rules_markdown(CONFIG_CLASSES)),
        ("argument-rules", rules_markdown(primitive_classes(), ARGUMENT_RULES)),
    ):
        start = text.index(f"<!-- {marker}:start -->\n") + len(f"<!-- {marker}:start -->\n")
        end = text.index(f"<!-- {marker}:end -->")
        assert text[start:end].strip() == generated.strip(), (
            f"docs/configuration.md ({marker}) is out of date; replace it with:\n{generated}"
        )
    for _, agent_cls in shipped(AGENTS.items()):
        for klass in agent_cls.Config.__mro__:
            if klass.__dict__.get("rules"):
                assert klass in CONFIG_CLASSES, f"{klass.__name__} is missing from the docs"


# --------------------------------------------------------------------------- agents (Python)
@pytest.fixture(scope="module")
def cartpole() -> Iterator[Any]:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    yield env
    env.close()


@pytest.fixture(scope="module")
def pendulum() -> Iterator[Any]:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    yield env
    env.close()


AGENT_CASES: list[tuple[str, str, dict[str, Any], type[BaseException], tuple[str, ...]]] = [
    # (agent id, env, arguments, exception, words the message must hold)
    ("ppo", "cartpole", {"max_grad_norm": 0}, ValueError, ("max_grad_norm=0.0", "> 0 or None")),
    ("ppo", "cartpole", {"max_grad_norm": -1}, ValueError, ("max_grad_norm=-1.0",)),
    ("ppo", "cartpole", {"target_kl": -0.01}, ValueError, ("target_kl=-0.01", "> 0 or None")),
    ("ppo", "cartpole", {"target_kl": 0}, ValueError, ("target_kl=0.0",)),
    ("ppo", "cartpole", {"clip_obs": 0}, ValueError, ("clip_obs=0.0", "clip_obs must be > 0")),
    ("ppo", "cartpole", {"clip_obs": -1}, ValueError, ("clip_obs=-1.0",)),
    ("ppo", "cartpole", {"clip_range": -0.2}, ValueError, ("clip_range=-0.2", "> 0")),
    ("ppo", "cartpole", {"vf_coef": -0.5}, ValueError, ("vf_coef=-0.5", ">= 0")),
    ("ppo", "cartpole", {"ent_coef": math.nan}, ValueError, ("ent_coef=nan", "finite")),
    ("ppo", "cartpole", {"lr": math.inf}, ValueError, ("lr=inf", "finite and > 0")),
    ("ppo", "cartpole", {"lr": "inf"}, ValueError, ("lr=inf",)),
    ("ppo", "cartpole", {"seed": -1}, ValueError, ("seed=-1",)),
    ("ppo", "cartpole", {"device": "gpu"}, ValueError, ("device='gpu'", "'auto'")),
    ("ppo", "cartpole", {"compute": "turbo"}, ValueError, ("compute='turbo'", "'fast'")),
    ("ppo", "cartpole", {"num_threads": 0}, ValueError, ("num_threads=0", ">= 1 or None")),
    ("a2c", "cartpole", {"rms_alpha": 1.0}, ValueError, ("rms_alpha=1.0", "in [0, 1)")),
    ("dqn", "cartpole", {"exploration_fraction": 2}, ValueError, ("exploration_fraction=2.0",)),
    ("sac", "pendulum", {"ent_coef": "sometimes"}, ValueError, ("ent_coef='sometimes'", "auto")),
    ("td3", "pendulum", {"target_update_interval": 2}, ValueError, ("target_update_interval=2",)),
    ("impala", "cartpole", {"backend": "mpi"}, ValueError, ("backend='mpi'", "'ray'")),
    (
        "ppo",
        "cartpole",
        {"encoder": {"id": "mlp", "feature_dimm": 8}},
        UnknownArgumentError,
        ("encoder 'mlp' (MLP)", "feature_dimm", "feature_dim, hidden_sizes, activation"),
    ),
    (
        "ppo",
        "cartpole",
        {"encoder": {"id": "mlp", "feature_dim": 0}},
        ValueError,
        ("MLP: feature_dim must be an integer >= 1, got 0",),
    ),
    (
        "ppo",
        "cartpole",
        {"encoder": {"id": "mlp", "hidden_sizes": [64, 0]}},
        ValueError,
        ("MLP: hidden_sizes must be a list of integers >= 1",),
    ),
    (
        "ppo",
        "cartpole",
        {"policy": {"id": "actor_critic", "hidden_sizes": [-8]}},
        ValueError,
        ("ActorCritic: hidden_sizes", "got [-8]"),
    ),
    (
        "ppo",
        "cartpole",
        {"distribution": {"id": "categorical", "temperature": 2}},
        UnknownArgumentError,
        ("distribution 'categorical' (Categorical)", "temperature", "action_space"),
    ),
    (
        "ppo",
        "cartpole",
        {"intrinsic_reward": {"id": "rnd", "coef": -1}},
        ValueError,
        ("RND: coef must be >= 0, got -1",),
    ),
    (
        "ppo",
        "cartpole",
        {"intrinsic_reward": {"id": "rnd", "lr": 0}},
        ValueError,
        ("RND: lr must be > 0, got 0",),
    ),
    (
        "ppo",
        "cartpole",
        {"augmentation": {"id": "gaussian_noise", "std": -0.1}},
        ValueError,
        ("GaussianNoise: std must be >= 0",),
    ),
    ("ppo", "cartpole", {"encoder": {"feature_dim": 8}}, ValueError, ("needs an 'id' key",)),
    ("ppo", "cartpole", {"encoder": 3}, TypeError, ("encoder must be a Encoder",)),
]


@pytest.mark.parametrize(
    ("agent", "env", "kwargs", "error", "words"),
    AGENT_CASES,
    ids=[f"{a}-{next(iter(k))}-{i}" for i, (a, _, k, _, _) in enumerate(AGENT_CASES)],
)
def test_agent_arguments(
    request: pytest.FixtureRequest,
    agent: str,
    env: str,
    kwargs: dict[str, Any],
    error: type[BaseException],
    words: tuple[str, ...],
) -> None:
    vec_env = request.getfixturevalue(env)
    message = raises(error, lambda: AGENTS.get(agent)(vec_env, **kwargs))
    for word in words:
        assert word in message


# --------------------------------------------------------------------------- primitives
BOX = spaces.Box(-1.0, 1.0, (3,), np.float32)


def primitive_rule_cases() -> Iterator[Any]:
    for kind in PRIMITIVE_KINDS:
        for ident, cls in shipped(REGISTRIES[kind].items()):
            accepted = arguments_of(cls) or {}
            for name, rule in rules_of(cls, ARGUMENT_RULES).items():
                if name in accepted:
                    yield pytest.param(cls, name, rule, id=f"{ident}.{name}")


#: valid placeholders for required arguments that are not spaces (the reward models').
PLACEHOLDERS: dict[str, Any] = {
    "words": ["cat"],
    "target": 3,
    "pattern": "cat",
    "model": "a-model",
    "parts": {"cat": "contains"},
}


def required_arguments(cls: type) -> dict[str, Any]:
    """Placeholders for the required arguments: argument rules run before ``__init__``."""
    return {
        name: PLACEHOLDERS.get(name, BOX)
        for name, required in (arguments_of(cls) or {}).items()
        if required
    }


PRIMITIVE_CASES = list(primitive_rule_cases())


@pytest.mark.parametrize(("cls", "name", "rule"), PRIMITIVE_CASES)
def test_primitive_arguments_are_checked(cls: type, name: str, rule: Rule) -> None:
    value = bad_value(name, rule)
    message = raises(ValueError, lambda: cls(**{**required_arguments(cls), name: value}))
    assert message.startswith(f"{cls.__name__}: {name} must be ")
    assert rule.describe() in message or "finite" in message
    assert f"got {value!r}" in message


def unknown_key_cases() -> Iterator[Any]:
    for kind in PRIMITIVE_KINDS:
        for ident, cls in shipped(REGISTRIES[kind].items()):
            if arguments_of(cls) is not None:  # classes taking **kwargs accept any key
                yield pytest.param(kind, ident, cls, id=f"{kind}.{ident}")


UNKNOWN_KEY_CASES = list(unknown_key_cases())


@pytest.mark.parametrize(("kind", "ident", "cls"), UNKNOWN_KEY_CASES)
def test_unknown_spec_key_names_the_class_and_its_arguments(
    kind: str, ident: str, cls: type
) -> None:
    registry = REGISTRIES[kind]
    spec = {"id": ident, "no_such_argument": 1}
    message = raises(UnknownArgumentError, lambda: registry.build(spec))
    assert f"{kind} {ident!r} ({cls.__qualname__}) has no argument(s) no_such_argument" in message
    assert "its arguments: " + ", ".join(arguments_of(cls) or {}) in message


def test_case_counts() -> None:
    """The module doc's counts are the parametrized cases' (generated ones included)."""
    doc = __doc__ or ""
    counts = {
        "one out-of-range value per declared rule": len(RULE_CASES),
        "NaN and inf": len(FLOAT_CASES),
        "agents built with bad": len(AGENT_CASES),
        "primitive constructors": len(PRIMITIVE_CASES),
        "spec dicts with an unknown key": len(UNKNOWN_KEY_CASES),
        "``act`` / ``evaluate`` / ``train``": len(CALL_CASES),
        "hand-edited ``config.json``": len(CONFIG_EDITS),
        "CLI in-process": len(CLI_CASES),
        "CLI runs that fail without touching": len(KEEP_CASES),
        "CLI through ``python -m rlkit``": len(SUBPROCESS_CASES),
    }
    for words, count in counts.items():
        line = next(line for line in doc.replace("\n  ", " ").splitlines() if words in line)
        assert line.rstrip().endswith(f": {count}"), f"{line!r} should end with ': {count}'"
    assert f"Total: {sum(counts.values())}." in doc
    assert sum(counts.values()) >= 200


# --------------------------------------------------------------------------- act / evaluate / train
class DictObsEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """Dict observations (a vector and a 3-d grid), two actions."""

    observation_space = spaces.Dict(
        {
            "vec": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "img": spaces.Box(0.0, 1.0, (3, 2, 2), np.float32),
        }
    )
    action_space = spaces.Discrete(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), 0.0, False, True, {}


@pytest.fixture(scope="module")
def ppo(cartpole: Any) -> Any:
    return agents.PPO(cartpole, seed=0, num_steps=8, batch_size=16, num_epochs=1)


@pytest.fixture(scope="module")
def dict_ppo() -> Iterator[Any]:
    env = make_vec_env(DictObsEnv, num_envs=1, seed=0)
    yield agents.PPO(env, seed=0, num_steps=8, batch_size=8, num_epochs=1)
    env.close()


VEC = np.zeros(2, np.float32)
IMG = np.zeros((3, 2, 2), np.float32)

CALL_CASES: list[tuple[str, str, Callable[[Any], Any], type[BaseException], tuple[str, ...]]] = [
    # (agent fixture, case, call, exception, words)
    ("ppo", "act-short", lambda a: a.act(np.zeros(3)), ValueError, ("PPO.act", "Box(", "(3,)")),
    ("ppo", "act-wide", lambda a: a.act(np.zeros((5, 3))), ValueError, ("(N, 4)", "(5, 3)")),
    ("ppo", "act-3d", lambda a: a.act(np.zeros((2, 2, 4))), ValueError, ("(2, 2, 4)",)),
    ("ppo", "act-scalar", lambda a: a.act(1.0), ValueError, ("shape ()",)),
    ("ppo", "act-text", lambda a: a.act("obs"), TypeError, ("expected numbers", "text")),
    ("ppo", "act-none", lambda a: a.act(None), TypeError, ("Python objects",)),
    ("ppo", "act-ragged", lambda a: a.act([[1, 2, 3, 4], [1]]), ValueError, ("array",)),
    ("ppo", "act-complex", lambda a: a.act(np.zeros(4, complex)), TypeError, ("complex",)),
    ("ppo", "act-dict", lambda a: a.act({"a": np.zeros(4)}), TypeError, ("Python objects",)),
    ("dict_ppo", "dict-box", lambda a: a.act(VEC), TypeError, ("a dict observation",)),
    ("dict_ppo", "dict-missing", lambda a: a.act({"vec": VEC}), ValueError, ("missing ['img']",)),
    (
        "dict_ppo",
        "dict-extra",
        lambda a: a.act({"vec": VEC, "img": IMG, "x": VEC}),
        ValueError,
        ("unexpected ['x']",),
    ),
    (
        "dict_ppo",
        "dict-hwc",
        lambda a: a.act({"vec": VEC, "img": np.zeros((2, 2, 3), np.float32)}),
        ValueError,
        ("key 'img'", "(3, 2, 2)", "(2, 2, 3)"),
    ),
    (
        "dict_ppo",
        "dict-batch-mismatch",
        lambda a: a.act({"vec": np.zeros((2, 2), np.float32), "img": IMG}),
        ValueError,
        ("img: one, vec: 2",),
    ),
    ("ppo", "evaluate-0", lambda a: a.evaluate(episodes=0), ValueError, ("episodes", "got 0")),
    ("ppo", "evaluate-1.5", lambda a: a.evaluate(episodes=1.5), ValueError, ("integer >= 1",)),
    ("ppo", "evaluate-seed", lambda a: a.evaluate(1, seed=-1), ValueError, ("seed", "got -1")),
    (
        "ppo",
        "evaluate-env",
        lambda a: a.evaluate(1, env=make_vec_env("Acrobot-v1", num_envs=1)),
        ValueError,
        ("PPO.evaluate: the env's observation space Box(", "(6,)", "(4,)"),
    ),
    (
        "ppo",
        "evaluate-gym-env",
        lambda a: a.evaluate(1, env=gym.make("CartPole-v1")),
        TypeError,
        ("VectorEnv",),
    ),
    ("ppo", "train-0", lambda a: a.train(0), ValueError, ("total_steps", "got 0")),
    ("ppo", "train-float", lambda a: a.train(2.5), ValueError, ("integer >= 1", "2.5")),
    (
        "ppo",
        "train-checkpoint-every",
        lambda a: a.train(64, checkpoint_every=0),
        ValueError,
        ("checkpoint_every must be an integer >= 1 or None, got 0",),
    ),
]


@pytest.mark.parametrize(
    ("fixture", "case", "call", "error", "words"), CALL_CASES, ids=[c[1] for c in CALL_CASES]
)
def test_act_evaluate_train(
    request: pytest.FixtureRequest,
    fixture: str,
    case: str,
    call: Callable[[Any], Any],
    error: type[BaseException],
    words: tuple[str, ...],
) -> None:
    agent = request.getfixturevalue(fixture)
    step = agent.global_step
    message = raises(error, lambda: call(agent))
    for word in words:
        assert word in message
    assert agent.global_step == step  # nothing ran


# --------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, cartpole: Any) -> Path:
    """One tiny trained PPO checkpoint (CartPole, 16 steps), reused by every case."""
    agent = agents.PPO(cartpole, seed=0, num_steps=8, batch_size=16, num_epochs=1)
    agent.train(16, progress_bar=False)
    return agent.save(tmp_path_factory.mktemp("bad-inputs") / "ckpt")


def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _drop(*path: str) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


CONFIG_EDITS: list[tuple[str, Any, type[BaseException], tuple[str, ...]]] = [
    # (case, edit (a function of the config, or the file's new text), exception, words)
    ("no-hyperparameters", _drop("hyperparameters"), CheckpointError, ("no 'hyperparameters'",)),
    ("hyperparameters-list", _set("hyperparameters", value=[1]), CheckpointError, ("mapping",)),
    ("gamma-5", _set("hyperparameters", "gamma", value=5), CheckpointError, ("gamma=5.0",)),
    ("gamma-text", _set("hyperparameters", "gamma", value="high"), CheckpointError, ("gamma",)),
    ("lr-nan", _set("hyperparameters", "lr", value=math.nan), CheckpointError, ("lr=nan",)),
    ("gama", _set("hyperparameters", "gama", value=0.9), TypeError, ("gama", "valid: seed")),
    ("no-spaces", _drop("spaces"), CheckpointError, ("no 'spaces'",)),
    ("no-action-space", _drop("spaces", "action"), CheckpointError, ("spaces.action",)),
    ("space-shape", _drop("spaces", "observation", "shape"), CheckpointError, ("'shape'",)),
    ("space-type", _set("spaces", "action", "type", value="Ring"), CheckpointError, ("Ring",)),
    ("env-id", _set("env", "id", value=3), CheckpointError, ("env.id",)),
    ("num-envs", _set("env", "num_envs", value="two"), CheckpointError, ("env.num_envs",)),
    ("step", _set("counters", "global_step", value=-1), CheckpointError, ("counters",)),
    ("optimizers", _set("optimizers", "policy", value={}), CheckpointError, ("param_groups",)),
    (
        "spec-key",
        _set("primitives", "policy", "bogus", value=1),
        CheckpointError,
        ("primitives.policy", "(ActorCritic) has no argument(s) bogus"),
    ),
    (
        "spec-value",
        _set("primitives", "policy", "hidden_sizes", value=[0]),
        CheckpointError,
        ("ActorCritic: hidden_sizes must be",),
    ),
    ("agent", _set("agent", value="nope"), CheckpointError, ("'nope'", "not registered")),
    ("format", _set("format", value=2), CheckpointError, ("format 2",)),
    ("not-json", '{"format": 1, "agent": ', CheckpointError, ("corrupt",)),
    ("not-a-mapping", "[1, 2]", CheckpointError, ("format None",)),
]


def edited_copy(checkpoint: Path, directory: Path, edit: Any) -> Path:
    """A copy of ``checkpoint`` in ``directory`` with its config.json edited by hand."""
    copy = Path(shutil.copytree(checkpoint, directory / "edited"))
    if isinstance(edit, str):
        (copy / "config.json").write_text(edit)
    else:
        config = json.loads((copy / "config.json").read_text())
        edit(config)
        (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize(
    ("case", "edit", "error", "words"), CONFIG_EDITS, ids=[c[0] for c in CONFIG_EDITS]
)
def test_hand_edited_config_json(
    checkpoint: Path,
    tmp_path: Path,
    case: str,
    edit: Any,
    error: type[BaseException],
    words: tuple[str, ...],
) -> None:
    copy = edited_copy(checkpoint, tmp_path, edit)
    before = snapshot(copy)
    message = raises(error, lambda: load_agent(copy))
    for word in words:
        assert word in message
    if error is CheckpointError and case not in ("agent", "spec-value"):
        assert str(copy / "config.json") in message  # names the file
    assert snapshot(copy) == before


# --------------------------------------------------------------------------- CLI (in-process)
def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``rlkit ARGV`` in-process: the exit status, stdout and stderr."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> dict[str, Path]:
    """Input files of the CLI cases: YAML configs and hand-edited checkpoints."""
    root = tmp_path_factory.mktemp("cli-inputs")
    texts = {
        "broken.yaml": "env: CartPole-v1\nlr: [0.1\n",
        "indented.yaml": "lr: 0.1\n  gamma: 0.9\n",
        "list.yaml": "- lr: 0.1\n",
        "steps.yaml": "total_steps: many\n",
        "gamma.yaml": "gamma: 2\n",
        "typo.yaml": "gama: 0.9\n",
        "binary.yaml": None,
    }
    out: dict[str, Path] = {}
    for name, text in texts.items():
        path = root / name
        if text is None:
            path.write_bytes(b"\xff\xfe\x00bad")
        else:
            path.write_text(text)
        out[name] = path
    no_hyper = root / "no-hyper"
    out["no-hyper"] = edited_copy(checkpoint, no_hyper.parent / "h", _drop("hyperparameters"))
    out["corrupt"] = edited_copy(checkpoint, root / "c", '{"format": 1, ')
    out["bad-gamma"] = edited_copy(
        checkpoint, root / "g", _set("hyperparameters", "gamma", value=9)
    )
    out["checkpoint"] = checkpoint
    return out


NO_BOX2D = importlib.util.find_spec("Box2D") is None
OUT = "{out}"
TRAIN = ["train", "ppo", "--no-progress", "--out", OUT]
CART = [*TRAIN, "--env", "CartPole-v1", "--num-envs", "1"]

CLI_CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    # (case, argv ({out} and {file} placeholders), words of the one stderr line)
    ("unknown-env", [*TRAIN, "--env", "CartPol-v1"], ("CartPol", "doesn't exist", "CartPole")),
    ("unknown-namespace", [*TRAIN, "--env", "NoSuchNs/Foo-v0"], ("NoSuchNs",)),
    ("unknown-version", [*TRAIN, "--env", "CartPole-v9"], ("CartPole", "v9")),
    ("bad-env-id", [*TRAIN, "--env", "Cart Pole!"], ("Cart Pole!",)),
    ("dependency", [*TRAIN, "--env", "LunarLander-v3"], ("Box2D",)),
    ("env-kwargs", [*CART, "--env-kwargs", "{bogus: 1}"], ("bogus",)),
    ("env-kwargs-list", [*CART, "--env-kwargs", "[1, 2]"], ("env_kwargs", "mapping")),
    ("bare-lr", [*CART, "--lr"], ("--lr needs a value",)),
    ("bare-lr-last", ["train", "ppo", "--env", "CartPole-v1", "--lr"], ("--lr needs a value",)),
    ("no-lr", [*CART, "--no-lr"], ("--no-lr", "not a true/false setting")),
    ("bare-encoder", [*CART, "--encoder"], ("--encoder needs a value",)),
    ("lr-inf", [*CART, "--lr", "inf"], ("lr=inf", "finite and > 0")),
    ("lr-nan", [*CART, "--lr", ".nan"], ("lr=nan",)),
    ("ent-coef-nan", [*CART, "--ent-coef", "nan"], ("ent_coef=nan", "finite")),
    ("lr-text", [*CART, "--lr", "fast"], ("lr: expected a number, got 'fast'",)),
    ("gamma", [*CART, "--gamma", "2"], ("gamma=2.0", "in [0, 1]")),
    ("max-grad-norm", [*CART, "--max-grad-norm", "0"], ("max_grad_norm=0.0",)),
    ("target-kl", [*CART, "--target-kl", "-1"], ("target_kl=-1.0",)),
    ("clip-obs", [*CART, "--clip-obs", "0"], ("clip_obs=0.0",)),
    ("clip-range", [*CART, "--clip-range", "-0.1"], ("clip_range=-0.1",)),
    ("vf-coef", [*CART, "--vf-coef", "-1"], ("vf_coef=-1.0",)),
    ("num-steps", [*CART, "--num-steps", "0"], ("num_steps=0",)),
    ("num-steps-float", [*CART, "--num-steps", "2.5"], ("num_steps", "integer")),
    ("device", [*CART, "--device", "gpu"], ("device 'gpu'",)),
    ("compute", [*CART, "--compute", "turbo"], ("compute='turbo'",)),
    ("encoder-key", [*CART, "--encoder", "{id: mlp, feature_dimm: 8}"], ("feature_dimm", "MLP")),
    ("encoder-dim", [*CART, "--encoder", "{id: mlp, feature_dim: 0}"], ("feature_dim", "got 0")),
    ("encoder-id", [*CART, "--encoder", "resnet9000"], ("resnet9000", "known encoders")),
    ("encoder-no-id", [*CART, "--encoder", "{feature_dim: 8}"], ("needs an 'id' key",)),
    ("reward-coef", [*CART, "--intrinsic-reward", "{id: rnd, coef: -1}"], ("RND: coef",)),
    ("total-steps", [*CART, "--total-steps", "0"], ("total_steps=0", ">= 1")),
    ("total-steps-negative", [*CART, "--total-steps", "-5"], ("total_steps=-5",)),
    ("checkpoint-every", [*CART, "--checkpoint-every", "0"], ("checkpoint_every=0",)),
    ("num-envs", [*TRAIN, "--env", "CartPole-v1", "--num-envs", "0"], ("num_envs=0",)),
    ("num-envs-text", [*CART, "--num-envs", "x"], ("--num-envs", "invalid int value")),
    ("seed", [*CART, "--seed", "-1"], ("seed=-1",)),
    ("eval-episodes", [*CART, "--eval-episodes", "0"], ("eval_episodes=0",)),
    ("config-missing", [*CART, "--config", "{dir}/none.yaml"], ("does not exist",)),
    ("config-broken", [*CART, "--config", "{broken.yaml}"], ("not valid YAML", "line 3")),
    ("config-indented", [*CART, "--config", "{indented.yaml}"], ("not valid YAML", "line 2")),
    ("config-list", [*CART, "--config", "{list.yaml}"], ("must hold a mapping",)),
    ("config-dir", [*CART, "--config", "{dir}"], ("cannot be read",)),
    ("config-binary", [*CART, "--config", "{binary.yaml}"], ("cannot be read",)),
    ("config-steps", [*CART, "--config", "{steps.yaml}"], ("total_steps", "'many'")),
    ("config-gamma", [*CART, "--config", "{gamma.yaml}"], ("gamma=2.0",)),
    ("config-typo", [*CART, "--config", "{typo.yaml}"], ("unknown option(s) gama",)),
    ("unknown-agent", [*CART[:1], "nope", *CART[2:]], ("unknown agent id 'nope'",)),
    ("unknown-flag", [*CART, "--gama", "0.9"], ("unknown option(s) gama",)),
    ("stray-argument", [*CART, "0.9"], ("unexpected argument '0.9'",)),
    ("missing-env", TRAIN, ("--env ENV_ID is required",)),
    ("resume-nowhere", [*CART, "--resume", "{dir}/nowhere"], ("no checkpoint directory",)),
    ("resume-corrupt", [*CART, "--resume", "{corrupt}"], ("corrupt",)),
    ("eval-nowhere", ["eval", "{dir}/nowhere"], ("no checkpoint directory",)),
    ("eval-no-hyper", ["eval", "{no-hyper}"], ("no 'hyperparameters' entry", "config.json")),
    ("eval-gamma", ["eval", "{bad-gamma}"], ("gamma=9.0", "config.json")),
    ("eval-episodes", ["eval", "{checkpoint}", "--episodes", "0"], ("--episodes=0",)),
    ("eval-device", ["eval", "{checkpoint}", "--device", "gpu"], ("gpu",)),
    ("eval-no-path", ["eval"], ("required: path",)),
    ("list-flag", ["list", "--bogus"], ("unrecognized arguments: --bogus",)),
    ("no-command", [], ("required: command",)),
]


PLACEHOLDER = re.compile(r"\{([\w.-]+)\}")


def fill(argv: list[str], out: Path, files: dict[str, Path]) -> list[str]:
    """``argv`` with ``{out}``, ``{dir}`` and ``{<input file>}`` replaced by paths."""
    values = {"out": str(out), "dir": str(files["gamma.yaml"].parent)}
    values.update({name: str(path) for name, path in files.items()})
    return [PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), arg) for arg in argv]


@pytest.mark.parametrize(("case", "argv", "words"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_errors(
    case: str,
    argv: list[str],
    words: tuple[str, ...],
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if case == "dependency" and not NO_BOX2D:
        pytest.skip("Box2D is installed")
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(fill(argv, out, files), capsys)
    assert code == 2, stderr
    line = one_line(stderr)
    assert line.startswith("rlkit: error: ")
    for word in words:
        assert word in line
    assert stdout == ""
    assert not out.exists()  # nothing was written


def test_cli_verbose_shows_the_traceback(tmp_path: Path) -> None:
    """``-v`` re-raises the error instead of printing one line."""
    with pytest.raises(gym.error.Error):
        main(["-v", "train", "ppo", "--env", "CartPol-v1", "--out", str(tmp_path / "run")])


# --------------------------------------------------------------------------- CLI: nothing lost
@pytest.fixture
def run_dir(tmp_path: Path, checkpoint: Path) -> Path:
    """An existing run directory: a final checkpoint and a file of notes."""
    run = tmp_path / "existing"
    shutil.copytree(checkpoint, run / "final")
    (run / "notes.txt").write_text("keep me")
    return run


KEEP_CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    # (case, argv with {run}, words) -- each fails on an existing run with --overwrite / resume
    ("overwrite-bad-env", ["--env", "CartPol-v1", "--overwrite"], ("CartPol",)),
    ("overwrite-bad-lr", ["--env", "CartPole-v1", "--lr", "-1", "--overwrite"], ("lr=-1.0",)),
    (
        "overwrite-bad-encoder",
        ["--env", "CartPole-v1", "--encoder", "{id: mlp, feature_dimm: 8}", "--overwrite"],
        ("feature_dimm",),
    ),
    (
        "overwrite-bad-steps",
        ["--env", "CartPole-v1", "--total-steps", "0", "--overwrite"],
        ("total_steps",),
    ),
    ("no-overwrite", ["--env", "CartPole-v1"], ("already exists", "--overwrite")),
    ("resume-bad-lr", ["--resume", "{run}", "--lr", "0"], ("lr=0.0",)),
    ("resume-bad-steps", ["--resume", "{run}", "--total-steps", "-1"], ("total_steps=-1",)),
    ("resume-unknown", ["--resume", "{run}", "--gama", "0.9"], ("gama",)),
    ("eval-bad-episodes", ["EVAL", "--episodes", "0"], ("--episodes=0",)),
]


@pytest.mark.parametrize(("case", "extra", "words"), KEEP_CASES, ids=[c[0] for c in KEEP_CASES])
def test_failing_commands_leave_runs_untouched(
    case: str,
    extra: list[str],
    words: tuple[str, ...],
    run_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = snapshot(run_dir)
    if extra[0] == "EVAL":
        argv = ["eval", str(run_dir), *extra[1:]]
    else:
        argv = ["train", "ppo", "--no-progress", "--out", str(run_dir), "--num-envs", "1"]
        argv += [str(run_dir) if a == "{run}" else a for a in extra]
    code, _, stderr = run_cli(argv, capsys)
    assert code == 2, stderr
    line = one_line(stderr)
    for word in words:
        assert word in line
    assert snapshot(run_dir) == before


# --------------------------------------------------------------------------- CLI (terminal)
SUBPROCESS_CASES: list[tuple[list[str], str]] = [
    (["train", "ppo", "--env", "CartPol-v1"], "doesn't exist"),
    (["train", "ppo", "--env", "CartPole-v1", "--lr"], "--lr needs a value"),
    (["eval", "nowhere"], "no checkpoint directory"),
]


@pytest.mark.parametrize(("argv", "words"), SUBPROCESS_CASES, ids=["env", "flag", "eval"])
def test_no_traceback_reaches_the_terminal(argv: list[str], words: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "rlkit", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith("rlkit: error: ") and words in line
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no run directory was made
