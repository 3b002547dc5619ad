"""Export of the deterministic acting path: ONNX (onnxruntime), torch.export, fp16, checkpoints,
metadata, the runners' ``act()``, errors and the ``rlkit export`` command.

Every registered agent is exported on tiny custom envs covering each observation kind (bounded
and unbounded vectors, uint8 images, dicts of both) and each action kind (Discrete and
MultiDiscrete with a start, MultiBinary, bounded and partly unbounded Box). No training is
needed for parity: the graph must reproduce the agent's ``act(deterministic=True)`` whatever
its weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from gymnasium import spaces
from torch import nn

import rlkit
import rlkit.agents  # fills the agent registry
from rlkit.cli.main import main
from rlkit.config import field_names
from rlkit.envs import make_vec_env
from rlkit.export import (
    ActingPath,
    OnnxPolicy,
    ParityError,
    TorchExportPolicy,
    check_parity,
    sample_observations,
    to_onnx,
    to_torch_export,
)
from rlkit.export.onnx import FP16_TOLERANCE
from rlkit.prototypes import AGENTS
from rlkit.prototypes.language import lm_agents
from rlkit.spaces import is_image_space, spaces_equal
from rlkit.utils.tensors import obs_to_tensor

#: agents that train on multi-agent rows of a PettingZoo env, not on these single-agent spaces
#: (their export is tested in tests/test_multi_agent_training.py)
MULTI_AGENT_IDS = {"mappo", "ippo"}
#: language-model agents complete prompts token by token: their policy is saved as a Hugging
#: Face model instead (CausalLMPolicy.save_pretrained, tested in tests/test_lm.py)
LANGUAGE_MODEL_IDS = set(lm_agents())
AGENT_IDS = sorted(set(AGENTS) - MULTI_AGENT_IDS - LANGUAGE_MODEL_IDS)
#: constructor arguments some agents need on any space (the acting path does not use them):
#: DrAC asks for an explicit augmentation on non-image observations; REDQ's 5000 warm-up steps
#: and 20 updates per step are shortened so that short runs train.
AGENT_ARGS: dict[str, dict[str, Any]] = {
    "drac": {"augmentation": "identity"},
    "redq": {"learning_starts": 32, "gradient_steps": 2},
    "crossq": {"learning_starts": 32, "critic_hidden_sizes": [64, 64]},
    "mpo": {"learning_starts": 32},
    # sequence agents: short windows, so a 64-step run trains
    "r2d2": {"learning_starts": 32, "burn_in": 2, "seq_len": 4, "batch_size": 4},
    "recurrent_sac": {"learning_starts": 32, "burn_in": 2, "seq_len": 4, "batch_size": 4},
}
#: off-policy actors that squash into the action bounds, so need finite ones.
BOUNDED_ACTION_AGENTS = {"ddpg", "td3", "sac", "drqv2", "tqc", "redq", "crossq", "mpo"}
INF = np.inf

OBS_SPACES: dict[str, spaces.Space[Any]] = {
    "vec": spaces.Box(
        np.array([-1.0, -2.0, 0.0, -5.0], np.float32),
        np.array([1.0, 2.0, 3.0, 5.0], np.float32),
        dtype=np.float32,
    ),
    "vec_unbounded": spaces.Box(-INF, INF, (3,), np.float32),
    "image": spaces.Box(0, 255, (3, 36, 36), np.uint8),
    # insertion order differs from the sorted order the graph inputs use
    "dict": spaces.Dict(
        {
            "state": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "pixels": spaces.Box(0, 255, (1, 36, 36), np.uint8),
        }
    ),
}

ACTION_SPACES: dict[str, spaces.Space[Any]] = {
    "discrete": spaces.Discrete(4, start=-2),
    "multidiscrete": spaces.MultiDiscrete([3, 2, 4], start=[1, -1, 5]),
    "multibinary": spaces.MultiBinary(3),
    # the second dimension is so narrow that an untrained policy's mean is clipped often
    "box": spaces.Box(
        np.array([-1.0, 0.0], np.float32), np.array([1.0, 0.004], np.float32), dtype=np.float32
    ),
    "box_unbounded": spaces.Box(
        np.array([-INF, 0.0], np.float32), np.array([INF, INF], np.float32), dtype=np.float32
    ),
}

#: every action kind on vector observations, every observation kind with one or two action kinds.
CASES = [("vec", action) for action in ACTION_SPACES] + [
    ("vec_unbounded", "box_unbounded"),
    ("vec_unbounded", "multibinary"),
    ("image", "discrete"),
    ("image", "box"),
    ("dict", "multidiscrete"),
    ("dict", "box"),
]
TORCH_EXPORT_CASES = [("vec", "discrete"), ("image", "box"), ("dict", "multidiscrete")]


class SpaceEnv(gym.Env[Any, Any]):
    """Random observations of ``observation_space`` (scaled and shifted when ``offset`` is set),
    zero reward, never-ending episodes; checks every action it gets."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        offset: float = 0.0,
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.offset = offset

    def _obs(self) -> Any:
        obs = _observations(self.observation_space, 1, self.np_random, self.offset)
        return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        assert self.action_space.contains(action), (action, self.action_space)
        return self._obs(), 0.0, False, False, {}


def _observations(
    space: spaces.Space[Any], n: int, rng: np.random.Generator, offset: float = 0.0
) -> Any:
    """A batch of valid observations; unbounded dimensions get a wide spread (and ``offset``)."""
    if isinstance(space, spaces.Dict):
        return {k: _observations(s, n, rng, offset) for k, s in space.spaces.items()}
    assert isinstance(space, spaces.Box)
    obs = sample_observations(space, n, rng)
    if space.dtype == np.uint8:
        return obs
    unbounded = ~(np.isfinite(space.low) & np.isfinite(space.high))
    return np.where(unbounded, offset + 20.0 * obs, obs).astype(np.float32)


def _obs_batch(space: spaces.Space[Any], n: int, seed: int, offset: float = 0.0) -> Any:
    return _observations(space, n, np.random.default_rng(seed), offset)


def _row(obs: Any, i: int) -> Any:
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def _feed(space: spaces.Space[Any], obs: Any) -> dict[str, np.ndarray]:
    return dict(obs) if isinstance(space, spaces.Dict) else {"obs": obs}


def _small_hyperparameters(agent_cls: type) -> dict[str, Any]:
    """Tiny rollouts for agents that have them (agents added later may not)."""
    wanted = {"num_steps": 16, "batch_size": 64, "num_epochs": 1}
    fields = set(field_names(agent_cls.Config))
    return {k: v for k, v in wanted.items() if k in fields}


def _make_agent(
    agent_id: str,
    obs_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    num_envs: int = 1,
    offset: float = 0.0,
    **hyperparameters: Any,
) -> Any:
    agent_cls = AGENTS.get(agent_id)
    for space, accepted in (
        (obs_space, agent_cls.observation_spaces),
        (action_space, agent_cls.action_spaces),
    ):
        if not isinstance(space, accepted):
            pytest.skip(f"{agent_id} does not accept {type(space).__name__} spaces")
    env = make_vec_env(lambda: SpaceEnv(obs_space, action_space, offset), num_envs, seed=0)
    try:
        return agent_cls(
            env,
            seed=0,
            device="cpu",
            **{
                **_small_hyperparameters(agent_cls),
                **AGENT_ARGS.get(agent_id, {}),
                **hyperparameters,
            },
        )
    except (TypeError, ValueError) as e:
        # finer space checks than the class attributes say (finite action bounds, pixels only):
        # the agent refused with a message naming the space, which is what we want from it
        message = str(e)
        if "space" in message or "observations" in message:
            pytest.skip(f"{agent_id} refuses these spaces: {message}")
        raise


def _spread_weights(agent: Any, seed: int = 0) -> Any:
    """Redraw every weight matrix with std 1/sqrt(fan_in), as after training: action means and
    logits of order 1 (a fresh head's 0.01 gain would make a 1e-5 tolerance meaningless)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in agent.policy.parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5)
    return agent


def _assert_actions_equal(got: np.ndarray, expected: np.ndarray, atol: float = 1e-5) -> None:
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_allclose(got, expected, rtol=0.0, atol=atol)
    else:
        np.testing.assert_array_equal(got, expected)


def _expected(agent: Any, obs: Any) -> np.ndarray:
    """The agent's deterministic actions, for fresh episodes when its policy is recurrent
    (R2D2, RecurrentSAC): what a runner's ``act_with_state(obs)`` computes."""
    actions, _ = agent.act_with_state(obs, deterministic=True)
    return np.asarray(actions)


def _run(runner: Any, obs: Any) -> np.ndarray:
    """An exported policy's actions for fresh episodes (a recurrent runner's kept state is
    left alone, so calls do not depend on each other)."""
    actions, _ = runner.act_with_state(obs)
    return np.asarray(actions)


def _state(agent: Any) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.detach().clone()
        for name, module in agent.modules().items()
        for k, v in module.state_dict().items()
    }


# --------------------------------------------------------------------------- ONNX matrix
@pytest.mark.parametrize(("obs_kind", "action_kind"), CASES)
@pytest.mark.parametrize("agent_id", AGENT_IDS)
def test_onnx_export_matches_agent(
    agent_id: str, obs_kind: str, action_kind: str, tmp_path: Path
) -> None:
    obs_space, action_space = OBS_SPACES[obs_kind], ACTION_SPACES[action_kind]
    agent = _spread_weights(_make_agent(agent_id, obs_space, action_space))
    result = to_onnx(agent, tmp_path / "p.onnx")

    assert result.path == tmp_path / "p.onnx" and result.path.is_file()
    parity = result.parity
    assert parity is not None and parity.ok, parity
    assert parity.max_abs_diff <= 1e-5 and parity.mismatches == 0 and parity.total > 0
    assert parity.target == "onnxruntime" and "parity OK" in str(parity)

    policy = OnnxPolicy(result.path)
    meta = policy.metadata
    assert meta.agent == agent_id == type(agent).registry_id
    assert meta.rlkit_version == rlkit.__version__
    assert spaces_equal(meta.observation_space, agent.observation_space)
    assert spaces_equal(meta.action_space, agent.action_space)

    # the runner's act() is the agent's deterministic act(), batched and unbatched
    obs = _obs_batch(obs_space, 32, seed=1)
    expected = _expected(agent, obs)
    got = _run(policy, obs)
    assert got.dtype == action_space.dtype
    assert got.shape == (32, *action_space.shape)
    _assert_actions_equal(got, expected)
    assert all(action_space.contains(a) for a in got)
    for i in (0, 5):
        one, one_expected = _run(policy, _row(obs, i)), _expected(agent, _row(obs, i))
        assert one.shape == action_space.shape
        _assert_actions_equal(one, one_expected)
        assert action_space.contains(one)
    if isinstance(action_space, spaces.Box) and hasattr(agent.policy, "evaluate_actions"):
        # actor-critics: the distribution's mode clipped to the bounds (off-policy actors squash
        # into the bounds themselves, so there is nothing to clip)
        with torch.inference_mode():
            tensor = obs_to_tensor(obs, obs_space, torch.device("cpu"))
            mode = agent.policy(agent.preprocess(tensor)).dist.mode().numpy()
        clipped = np.clip(mode, action_space.low, action_space.high)
        np.testing.assert_allclose(got, clipped, rtol=0.0, atol=1e-5)
        assert np.any(clipped != mode)  # some means lie outside the bounds

    # graph interface: named inputs in storage dtypes, a dynamic batch axis, one action output
    model = onnx.load(str(result.path))
    input_spaces = (
        {k: obs_space.spaces[k] for k in sorted(obs_space.spaces)}
        if isinstance(obs_space, spaces.Dict)
        else {"obs": obs_space}
    )
    # a recurrent policy (R2D2, RecurrentSAC) also takes the episode starts and its state
    state_names = [spec.name for spec in agent.policy.state_spec()]
    extra = ["episode_start", *state_names] if state_names else []
    assert [i.name for i in model.graph.input] == [*input_spaces, *extra]
    assert [o.name for o in model.graph.output] == ["action", *(f"{n}_out" for n in state_names)]
    for graph_input, space in zip(model.graph.input, input_spaces.values(), strict=False):
        tensor_type = graph_input.type.tensor_type
        want = onnx.TensorProto.UINT8 if is_image_space(space) else onnx.TensorProto.FLOAT
        assert tensor_type.elem_type == want, graph_input
        batch_dim, *rest = tensor_type.shape.dim
        assert batch_dim.dim_param and not batch_dim.HasField("dim_value"), graph_input
        assert [d.dim_value for d in rest] == list(space.shape)

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    for n in (1, 3, 300):
        batch = _obs_batch(obs_space, n, seed=10 + n)
        feed = _feed(obs_space, batch)
        if state_names:  # fresh episodes: every row starts, from the zero state
            feed["episode_start"] = np.ones(n, np.float32)
            for spec in agent.policy.state_spec():
                feed[spec.name] = np.zeros((n, *spec.shape), np.float32)
        out = session.run(None, feed)[0]
        assert out.dtype == action_space.dtype  # env-ready straight out of the graph
        _assert_actions_equal(out, _expected(agent, batch))


# --------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("agent_id", AGENT_IDS)
def test_observation_normalisation_is_in_the_graph(agent_id: str, tmp_path: Path) -> None:
    obs_space = spaces.Box(-INF, INF, (3,), np.float32)
    action_space = spaces.Box(-INF, INF, (2,), np.float32)
    if agent_id in BOUNDED_ACTION_AGENTS:  # actors that squash into finite bounds
        action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    agent = _make_agent(
        agent_id, obs_space, action_space, num_envs=4, offset=50.0, normalize_obs=True
    )
    agent.train(256, progress_bar=False)
    _spread_weights(agent)  # order-1 outputs, so dropping the normaliser shows
    stats = agent.obs_normalizer.stats["obs"]
    assert float(stats.count) >= 256 and float(stats.mean.mean()) > 10.0  # stats were updated

    result = to_onnx(agent, tmp_path / "p.onnx")
    assert result.parity is not None and result.parity.ok, result.parity
    assert result.parity.max_abs_diff <= 1e-5

    obs = _obs_batch(obs_space, 64, seed=2, offset=50.0)  # observations like the env's
    got = _run(OnnxPolicy(result.path), obs)
    _assert_actions_equal(got, _expected(agent, obs))
    bare = ActingPath(agent.policy, obs_space, action_space, obs_normalizer=None)
    with torch.inference_mode():
        unnormalised = bare(torch.as_tensor(obs)).numpy()
    assert np.abs(got - unnormalised).max() > 1e-3


# --------------------------------------------------------------------------- torch.export
@pytest.mark.parametrize(("obs_kind", "action_kind"), TORCH_EXPORT_CASES)
@pytest.mark.parametrize("agent_id", AGENT_IDS)
def test_torch_export_matches_agent(
    agent_id: str, obs_kind: str, action_kind: str, tmp_path: Path
) -> None:
    obs_space, action_space = OBS_SPACES[obs_kind], ACTION_SPACES[action_kind]
    agent = _spread_weights(_make_agent(agent_id, obs_space, action_space))
    result = to_torch_export(agent, tmp_path / "p.pt2")
    assert result.path.is_file()
    parity = result.parity
    assert parity is not None and parity.ok, parity
    assert parity.max_abs_diff <= 1e-5 and parity.mismatches == 0
    assert parity.target == "torch.export"

    policy = TorchExportPolicy(result.path, trust_code=True)
    assert policy.metadata.agent == agent_id
    assert spaces_equal(policy.observation_space, obs_space)
    assert spaces_equal(policy.action_space, action_space)
    for n in (1, 9):
        obs = _obs_batch(obs_space, n, seed=n)
        got = _run(policy, obs)
        assert got.dtype == action_space.dtype and got.shape == (n, *action_space.shape)
        _assert_actions_equal(got, _expected(agent, obs))
    single = _row(_obs_batch(obs_space, 1, seed=4), 0)
    _assert_actions_equal(_run(policy, single), _expected(agent, single))


# --------------------------------------------------------------------------- fp16
#: a dimension clipped to bounds float16 cannot represent (float16(0.001) > 0.001) and an
#: unbounded one where float16 rounding shows.
FP16_ACTION_SPACE = spaces.Box(
    np.array([-0.001, -INF], np.float32), np.array([0.001, INF], np.float32), dtype=np.float32
)


@pytest.fixture(scope="module")
def fp16_exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    agent = _spread_weights(_make_agent(AGENT_IDS[0], OBS_SPACES["vec"], FP16_ACTION_SPACE))
    directory = tmp_path_factory.mktemp("fp16")
    full = to_onnx(agent, directory / "fp32.onnx")
    half = to_onnx(agent, directory / "fp16.onnx", fp16=True)
    return agent, full, half


def test_fp16_export_within_tolerance_and_smaller(fp16_exports: tuple[Any, Any, Any]) -> None:
    agent, full, half = fp16_exports
    assert full.parity is not None and full.parity.tolerance == 1e-5
    assert half.parity is not None and half.parity.ok, half.parity
    assert half.parity.tolerance == FP16_TOLERANCE
    assert half.parity.max_abs_diff <= FP16_TOLERANCE and half.parity.mismatches == 0
    assert 0 < half.path.stat().st_size < full.path.stat().st_size
    model = onnx.load(str(half.path))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    obs = _obs_batch(OBS_SPACES["vec"], 64, seed=3)
    got = OnnxPolicy(half.path).act(obs)
    assert got.dtype == np.float32 and got.shape == (64, 2)
    _assert_actions_equal(got, _expected(agent, obs), atol=FP16_TOLERANCE)


def test_fp16_export_keeps_the_output_type_and_the_bounds(
    fp16_exports: tuple[Any, Any, Any],
) -> None:
    agent, _, half = fp16_exports
    obs = _obs_batch(OBS_SPACES["vec"], 64, seed=3)
    expected = _expected(agent, obs)
    assert np.any(np.abs(expected[:, 0]) == np.float32(0.001))  # the bounds are hit
    # env-ready: clipped actions stay inside the bounds
    got = OnnxPolicy(half.path).act(obs)
    outside = [a for a in got if not FP16_ACTION_SPACE.contains(a)]
    assert not outside, f"{len(outside)} of {len(got)} actions out of bounds, e.g. {outside[0]}"
    # "inputs and outputs keep their types": the graph output is float32, like fp32 exports
    model = onnx.load(str(half.path))
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    session = ort.InferenceSession(str(half.path), providers=["CPUExecutionProvider"])
    (raw,) = session.run(None, {"obs": obs})
    assert raw.dtype == np.float32


# --------------------------------------------------------------------------- checkpoints
def _cartpole_agent(agent_id: str) -> Any:
    """A briefly trained agent on CartPole, or on Pendulum / PixelPointMass for agents that need
    continuous actions / pixels."""
    agent_cls = AGENTS.get(agent_id)
    env_id = "CartPole-v1"
    if agent_id == "drqv2":
        env_id = "rlkit/PixelPointMass-v0"
    elif spaces.Discrete not in agent_cls.action_spaces:
        env_id = "Pendulum-v1"
    env = make_vec_env(env_id, num_envs=2, seed=0)
    extra = AGENT_ARGS.get(agent_id, {})
    agent = agent_cls(env, seed=0, device="cpu", **{**_small_hyperparameters(agent_cls), **extra})
    agent.train(64, progress_bar=False)
    return agent


@pytest.mark.parametrize("layout", ["checkpoint", "run"])
@pytest.mark.parametrize("agent_id", AGENT_IDS)
def test_export_from_checkpoint_and_run_directory(
    agent_id: str, layout: str, tmp_path: Path
) -> None:
    agent = _cartpole_agent(agent_id)
    if layout == "checkpoint":
        source = agent.save(tmp_path / "ckpt")
    else:
        agent.save(tmp_path / "run" / "final")
        source = tmp_path / "run"
    result = to_onnx(source, tmp_path / "out" / "p.onnx")
    assert result.parity is not None and result.parity.ok, result.parity
    policy = OnnxPolicy(result.path)
    assert policy.metadata.agent == agent_id
    assert spaces_equal(policy.observation_space, agent.observation_space)
    assert spaces_equal(policy.action_space, agent.action_space)
    obs = _obs_batch(agent.observation_space, 50, seed=5)
    _assert_actions_equal(_run(policy, obs), _expected(agent, obs))


# --------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def vec_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    agent = _make_agent(AGENT_IDS[0], OBS_SPACES["vec"], ACTION_SPACES["discrete"])
    path = tmp_path_factory.mktemp("export") / "p.onnx"
    to_onnx(agent, path)
    return agent, path


def test_onnx_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        OnnxPolicy(tmp_path / "nope.onnx")
    with pytest.raises(FileNotFoundError):
        TorchExportPolicy(tmp_path / "nope.pt2")


def test_onnx_policy_rejects_a_file_without_rlkit_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.onnx"
    torch.onnx.export(nn.Linear(3, 2), (torch.zeros(1, 3),), str(path), dynamo=True)
    assert path.is_file()
    with pytest.raises(ValueError, match="rlkit metadata"):
        OnnxPolicy(path)


def test_exported_policies_only_act_deterministically(vec_export: tuple[Any, Path]) -> None:
    _, path = vec_export
    policy = OnnxPolicy(path)
    obs = _obs_batch(OBS_SPACES["vec"], 4, seed=0)
    assert policy.act(obs, deterministic=True).shape == (4,)
    with pytest.raises(ValueError, match="determin"):
        policy.act(obs, deterministic=False)


def test_exports_reject_what_is_not_an_agent(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="agent"):
        to_onnx(object(), tmp_path / "p.onnx")
    with pytest.raises(TypeError, match="agent"):
        to_torch_export(object(), tmp_path / "p.pt2")
    assert not (tmp_path / "p.onnx").exists() and not (tmp_path / "p.pt2").exists()


@pytest.mark.parametrize("action_kind", ["discrete", "box"])
def test_check_parity_detects_a_broken_graph(action_kind: str) -> None:
    agent = _make_agent(AGENT_IDS[0], OBS_SPACES["vec"], ACTION_SPACES[action_kind])
    acting = agent.acting_path()

    def exact(inputs: list[np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            return acting(*(torch.as_tensor(x) for x in inputs)).numpy()

    def broken(inputs: list[np.ndarray]) -> np.ndarray:
        out = exact(inputs)
        return out + (1e-3 if np.issubdtype(out.dtype, np.floating) else 1)

    good = check_parity(acting, exact, "exact", batch_sizes=(1, 5))
    assert good.ok and good.max_abs_diff == 0.0 and good.mismatches == 0
    assert good.total == 6 * int(np.prod(ACTION_SPACES[action_kind].shape or (1,)))

    bad = check_parity(acting, broken, "broken", batch_sizes=(1, 5))
    assert not bad.ok
    assert "FAILED" in str(bad)
    if action_kind == "box":
        assert bad.max_abs_diff == pytest.approx(1e-3, rel=1e-3)
    else:
        assert bad.mismatches == bad.total == 6

    assert issubclass(ParityError, AssertionError)
    with pytest.raises(AssertionError, match="FAILED"):
        raise ParityError(str(bad))


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    agent = _cartpole_agent(AGENT_IDS[0])
    run = tmp_path_factory.mktemp("cli") / "run"
    agent.save(run / "final")
    return agent, run


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def test_cli_export_onnx(
    saved_run: tuple[Any, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent, run = saved_run
    out = tmp_path / "x" / "policy.onnx"
    assert main(["export", str(run), "--format", "onnx", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file()
    assert f"exported {out}" in printed
    assert "onnxruntime parity OK" in printed and "integer actions differ" in printed
    obs = _obs_batch(agent.observation_space, 20, seed=6)
    _assert_actions_equal(_run(OnnxPolicy(out), obs), _expected(agent, obs))


def test_cli_export_torch(
    saved_run: tuple[Any, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent, run = saved_run
    out = tmp_path / "policy.pt2"
    assert main(["export", str(run), "--format", "torch", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "torch.export parity OK" in printed
    obs = _obs_batch(agent.observation_space, 20, seed=7)
    policy = TorchExportPolicy(out, trust_code=True)  # .pt2 unpickles: a file we just wrote
    _assert_actions_equal(_run(policy, obs), _expected(agent, obs))


def test_cli_export_no_check(
    saved_run: tuple[Any, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = saved_run
    out = tmp_path / "policy.onnx"
    assert main(["export", str(run), "-o", str(out), "--no-check"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and f"exported {out}" in printed
    assert "parity" not in printed
    assert OnnxPolicy(out).metadata.agent == AGENT_IDS[0]


def test_cli_export_default_output_path(
    saved_run: tuple[Any, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = saved_run
    run = _copy(run, tmp_path)
    assert not (run / "policy.onnx").exists()
    assert main(["export", str(run)]) == 0
    assert (run / "policy.onnx").is_file()
    assert "onnxruntime parity OK" in capsys.readouterr().out


def test_cli_export_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "missing"), "-o", str(tmp_path / "p.onnx")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "p.onnx").exists()


# --------------------------------------------------------------------------- acting path
@pytest.mark.parametrize(
    ("obs_kind", "action_kind"),
    [("vec", "multidiscrete"), ("image", "box"), ("dict", "multibinary")],
)
@pytest.mark.parametrize("agent_id", AGENT_IDS)
def test_acting_path_is_deterministic_and_matches_act(
    agent_id: str, obs_kind: str, action_kind: str
) -> None:
    obs_space, action_space = OBS_SPACES[obs_kind], ACTION_SPACES[action_kind]
    agent = _spread_weights(_make_agent(agent_id, obs_space, action_space))
    acting = agent.acting_path()
    assert acting.policy is agent.policy  # shares the agent's weights
    inputs = acting.example_inputs(24, seed=3)
    # a recurrent path's inputs end with the episode starts and the state (random ones)
    n_obs = len(inputs) - (1 + len(acting.state_names) if acting.recurrent else 0)
    for x, name in zip(inputs[:n_obs], acting.input_names[:n_obs], strict=True):
        space = obs_space.spaces[name] if isinstance(obs_space, spaces.Dict) else obs_space
        assert x.dtype == (torch.uint8 if is_image_space(space) else torch.float32)
    with torch.inference_mode():
        first, second = acting(*inputs), acting(*inputs)
    if acting.recurrent:
        assert isinstance(first, tuple) and isinstance(second, tuple)
        assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
        first = first[0]
    assert isinstance(first, torch.Tensor)
    assert torch.equal(first, second[0] if isinstance(second, tuple) else second)
    obs = dict(zip(acting.input_names, (x.numpy() for x in inputs[:n_obs]), strict=False))
    if not isinstance(obs_space, spaces.Dict):
        obs = obs["obs"]
    state = tuple(inputs[n_obs + 1 :]) if acting.recurrent else None
    starts = inputs[n_obs].numpy() if acting.recurrent else None
    expected, _ = agent.act_with_state(obs, state, starts, deterministic=True)
    _assert_actions_equal(first.numpy(), np.asarray(expected), atol=0.0)
    _assert_actions_equal(_expected(agent, obs), _expected(agent, obs), atol=0.0)


@pytest.mark.parametrize("agent_id", AGENT_IDS)
def test_exporting_leaves_the_agent_untouched(agent_id: str, tmp_path: Path) -> None:
    obs_space, action_space = OBS_SPACES["vec"], ACTION_SPACES["box"]
    agent = _make_agent(agent_id, obs_space, action_space, num_envs=2, normalize_obs=True)
    agent.train(64, progress_bar=False)
    before, training = _state(agent), agent.policy.training
    obs = _obs_batch(obs_space, 16, seed=8)
    actions = _expected(agent, obs)

    to_onnx(agent, tmp_path / "p.onnx")
    to_torch_export(agent, tmp_path / "p.pt2")

    after = _state(agent)
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert agent.policy.training == training
    assert all(p.requires_grad for p in agent.policy.parameters())
    _assert_actions_equal(_expected(agent, obs), actions, atol=0.0)

    step = agent.global_step
    agent.train(step + 64, progress_bar=False)
    assert agent.global_step > step
    trained = _state(agent)
    assert any(not torch.equal(before[k], trained[k]) for k in before if k.startswith("policy."))
