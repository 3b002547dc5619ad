"""Export of recurrent policies with their state: ONNX (onnxruntime) and torch.export graphs that
take ``episode_start`` and the state and return the next state, the runners that keep the state
between ``act()`` calls, the metadata's state layout, the sequence parity check, the ``rlkit
export`` command, and the targets that refuse recurrent policies (TensorRT, Ascend OM).

The agents are briefly trained LSTM / GRU PPO agents on the partially observed CartPole; the
exported policies run over whole episodes of a real vector env in lockstep with the agent.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install rlkit[export])")
pytest.importorskip("onnxruntime", reason="ONNX export needs onnxruntime (rlkit[export])")
pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (rlkit[export])")

import rlkit.agents  # noqa: E402,F401  (fills the agent registry)
from rlkit.agents import PPO  # noqa: E402
from rlkit.cli.main import main  # noqa: E402
from rlkit.envs import make_vec_env  # noqa: E402
from rlkit.export import (  # noqa: E402
    ExportMetadata,
    OnnxPolicy,
    ParityError,
    TorchExportPolicy,
    atc_command,
    build_tensorrt_engine,
    check_parity,
    check_sequence_parity,
    convert_to_om,
    to_onnx,
    to_torch_export,
)
from rlkit.export.ascend import OmPolicy, om_sidecar_path  # noqa: E402
from rlkit.export.source import cpu_acting_path  # noqa: E402
from rlkit.export.tensorrt import TensorRTPolicy, sidecar_path  # noqa: E402

ENV_ID = "rlkit/CartPoleNoVel-v1"
POLICIES = ("lstm_actor_critic", "gru_actor_critic", "transformer_actor_critic")
STATE_NAMES = {
    "lstm_actor_critic": ["actor_h", "actor_c", "critic_h", "critic_c"],
    "gru_actor_critic": ["actor_h", "critic_h"],
    "transformer_actor_critic": ["actor_layer0_keys", "actor_layer0_values", "actor_valid"],
}
#: small sizes per policy (the Transformer: a 4-step window, so episodes outrun it).
SIZES: dict[str, dict[str, Any]] = {
    "lstm_actor_critic": {"hidden_size": 8},
    "gru_actor_critic": {"hidden_size": 8},
    "transformer_actor_critic": {"d_model": 8, "num_heads": 2, "context": 4},
}


def _agent(policy_id: str) -> PPO:
    """PPO with a small recurrent policy and observation normalisation (in the graph), trained
    a few hundred steps; then its weight matrices are redrawn (std 2/sqrt(fan_in)) so that the
    actions depend on the observations and the memory (a briefly trained head, of gain 0.01,
    picks the same action whatever the state)."""
    env = make_vec_env(ENV_ID, num_envs=2, seed=0)
    agent = PPO(
        env,
        policy={"id": policy_id, **SIZES[policy_id]},
        num_steps=32,
        batch_size=32,
        num_epochs=2,
        normalize_obs=True,
        seed=0,
        num_threads=1,
        device="cpu",
    )
    agent.train(256, progress_bar=False)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in agent.policy.parameters():
            if p.dim() >= 2:
                p.copy_(2.0 * torch.randn(p.shape, generator=generator) / p[0].numel() ** 0.5)
    return agent


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``get(policy id) -> (policy id, agent, ONNX export)``: each exported (and parity-checked)
    once per module."""
    cache: dict[str, Any] = {}

    def get(policy_id: str) -> Any:
        if policy_id not in cache:
            agent = _agent(policy_id)
            path = tmp_path_factory.mktemp(policy_id) / "policy.onnx"
            cache[policy_id] = (policy_id, agent, to_onnx(agent, path))
        return cache[policy_id]

    return get


@pytest.fixture(params=POLICIES)
def exported(request: pytest.FixtureRequest, export_cache: Any) -> Any:
    return export_cache(request.param)


@pytest.fixture
def lstm_exported(export_cache: Any) -> Any:
    """The LSTM export only (for the checks that need one policy)."""
    return export_cache(POLICIES[0])


def _state_close(got: tuple[np.ndarray, ...] | None, expected: Any, atol: float = 1e-5) -> None:
    assert got is not None and expected is not None and len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e.cpu().numpy(), atol=atol, rtol=0)


# --------------------------------------------------------------------------- export + parity
def test_export_records_the_state_and_passes_the_sequence_parity(exported: Any) -> None:
    policy_id, agent, result = exported
    names = STATE_NAMES[policy_id]
    shapes = {spec.name: list(spec.shape) for spec in agent.policy.state_spec()}
    report = result.parity
    assert report is not None and report.ok, report
    assert report.steps == 20 and report.batch_sizes == (1, 7, 256)
    assert report.state_max_abs_diff is not None and report.state_max_abs_diff <= 1e-5
    assert report.total == 20 * (1 + 7 + 256)  # every step's actions compared
    assert "state max |diff|" in str(report) and "20-step sequences" in str(report)

    model = onnx.load(str(result.path))
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    assert inputs == ["obs", "episode_start", *names]
    assert outputs == ["action", *(f"{n}_out" for n in names)]
    for value in [*model.graph.input, *model.graph.output]:  # dynamic batch everywhere
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param and not dims[0].dim_value, value.name
        if value.name in names or value.name.removesuffix("_out") in names:
            assert [d.dim_value for d in dims[1:]] == shapes[value.name.removesuffix("_out")]
            assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    start = next(i for i in model.graph.input if i.name == "episode_start")
    assert start.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert len(start.type.tensor_type.shape.dim) == 1


def test_metadata_round_trip(exported: Any) -> None:
    policy_id, agent, result = exported
    meta = ExportMetadata.from_onnx(result.path)
    assert meta.recurrent and meta.policy == policy_id and meta.agent == "ppo"
    assert meta.state == agent.policy.state_spec()
    assert meta.input_names == ["obs"]
    assert meta.graph_input_names == ["obs", "episode_start", *STATE_NAMES[policy_id]]
    again = ExportMetadata.from_strings(meta.to_strings(), "strings")
    assert again.state == meta.state and again.policy == meta.policy
    assert again.graph_input_names == meta.graph_input_names
    initial = meta.initial_state(3)
    assert initial is not None and all(
        s.shape == (3, *spec.shape) and s.dtype == np.float32 and not s.any()
        for s, spec in zip(initial, meta.state, strict=True)
    )
    # a file from before recurrent export (no state entry) loads as feed-forward
    old = {k: v for k, v in meta.to_strings().items() if k not in ("rlkit.state", "rlkit.policy")}
    legacy = ExportMetadata.from_strings(old, "old")
    assert not legacy.recurrent and legacy.state == () and legacy.initial_state(2) is None
    assert legacy.graph_input_names == ["obs"] and legacy.output_names == ["action"]
    bad = {**meta.to_strings(), "rlkit.state": json.dumps([{"name": "h", "shape": [2]}])}
    with pytest.raises(ValueError, match="no readable rlkit metadata"):
        ExportMetadata.from_strings(bad, "bad")


# --------------------------------------------------------------------------- the runner
def test_onnx_policy_follows_the_agent_over_whole_episodes(exported: Any) -> None:
    """Lockstep with ``agent.act_with_state(deterministic=True)`` on a real vector env with
    same-step autoreset (terminations and truncations): same actions at every step, states
    within 1e-5."""
    _, agent, result = exported
    policy = OnnxPolicy(result.path)
    env = make_vec_env(ENV_ID, num_envs=3, seed=11, env_kwargs={"max_episode_steps": 15})
    obs, _ = env.reset(seed=11)
    state = None
    starts = np.ones(3, dtype=bool)
    finished = np.zeros(3, dtype=int)
    ended_by = set()
    actions: list[int] = []
    steps = 0
    while finished.min() < 3:
        expected, state = agent.act_with_state(obs, state, starts, deterministic=True)
        got = policy.act(obs, episode_start=starts)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype
        _state_close(policy.state, state)
        actions.extend(got.tolist())
        obs, _, terminated, truncated, _ = env.step(got)
        starts = terminated | truncated
        finished += starts
        ended_by |= {"terminated"} if terminated.any() else set()
        ended_by |= {"truncated"} if truncated.any() else set()
        steps += 1
        assert steps < 400, "episodes did not end"
    env.close()
    assert ended_by == {"terminated", "truncated"}
    assert 0.1 < np.mean(actions) < 0.9  # both actions occur: the comparison is not trivial


def test_reset_and_episode_start_reset_the_state(exported: Any) -> None:
    """Hand check: after ``reset()`` (all rows) or an ``episode_start`` flag (one row) the
    outputs equal a fresh policy's on the same observations."""
    _, _, result = exported
    rng = np.random.default_rng(0)
    o1, o2, o3 = (rng.uniform(-0.2, 0.2, (2, 2)).astype(np.float32) for _ in range(3))
    fresh = OnnxPolicy(result.path)
    assert fresh.recurrent and fresh.state is None
    fresh_actions = fresh.act(o3)
    fresh_state = fresh.state
    assert fresh_state is not None and len(fresh_state) == len(fresh.metadata.state)

    policy = OnnxPolicy(result.path)
    policy.act(o1)
    policy.act(o2)
    carried = policy.state
    assert carried is not None and any(np.abs(s).max() > 1e-3 for s in carried)
    continued_actions, continued = policy.act_with_state(o3, carried)  # state left alone
    assert policy.state is carried
    assert continued is not None
    assert max(np.abs(c - f).max() for c, f in zip(continued, fresh_state, strict=True)) > 1e-3

    policy.act(o3, episode_start=[1, 0])  # row 0 starts over, row 1 continues
    after = policy.state
    assert after is not None
    for a, f, c in zip(after, fresh_state, continued, strict=True):
        np.testing.assert_array_equal(a[0], f[0])
        np.testing.assert_array_equal(a[1], c[1])

    policy.reset()
    assert policy.state is None
    np.testing.assert_array_equal(policy.act(o3), fresh_actions)
    assert policy.state is not None
    for a, f in zip(policy.state, fresh_state, strict=True):
        np.testing.assert_array_equal(a, f)
    # episode_start of 1 everywhere is a reset too, and state=None in act_with_state
    policy.act(o1)
    actions, state = policy.act_with_state(o3, policy.state, np.ones(2, dtype=bool))
    np.testing.assert_array_equal(actions, fresh_actions)
    assert state is not None
    for a, f in zip(state, fresh_state, strict=True):
        np.testing.assert_array_equal(a, f)
    assert continued_actions.shape == fresh_actions.shape


def test_runner_batch_size_and_argument_errors(exported: Any) -> None:
    policy_id, _, result = exported
    policy = OnnxPolicy(result.path)
    specs = policy.metadata.state
    obs = np.zeros((2, 2), np.float32)
    policy.act(obs)
    with pytest.raises(ValueError, match=r"3 observation\(s\).*2 row\(s\).*reset\(\)"):
        policy.act(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"episode_start has 3 flag\(s\) for 2"):
        policy.act(obs, episode_start=[0, 1, 0])
    with pytest.raises(ValueError, match="determin"):
        policy.act(obs, deterministic=False)
    policy.reset()  # a new batch size after a reset is fine
    assert policy.act(np.zeros((3, 2), np.float32)).shape == (3,)
    policy.reset()
    single = policy.act(np.zeros(2, np.float32), episode_start=True)  # one observation
    assert single.shape == () and policy.state is not None
    assert all(s.shape == (1, *spec.shape) for s, spec in zip(policy.state, specs, strict=True))
    first = STATE_NAMES[policy_id][0]
    with pytest.raises(ValueError, match=f"state array '{first}' has shape"):
        policy.state = tuple(np.zeros((2, 1, 7), np.float32) for _ in policy.metadata.state)
    with pytest.raises(ValueError, match="state has 1 arrays"):
        policy.act_with_state(obs, [np.zeros((2, 1, 8), np.float32)])
    policy.state = policy.metadata.initial_state(2)  # a state of 2 rows: batch size 2 again
    assert policy.act(obs).shape == (2,)


def test_torch_export_keeps_the_state(exported: Any, tmp_path: Path) -> None:
    _, agent, result = exported
    pt2 = to_torch_export(agent, tmp_path / "policy.pt2", batch_sizes=(1, 5))
    assert pt2.parity is not None and pt2.parity.ok and pt2.parity.steps == 20, pt2.parity
    program = TorchExportPolicy(pt2.path, trust_code=True)  # a file just written
    graph = OnnxPolicy(result.path)
    assert program.metadata.state == graph.metadata.state
    rng = np.random.default_rng(1)
    state = None
    for _ in range(12):
        obs = rng.uniform(-0.2, 0.2, (4, 2)).astype(np.float32)
        starts = rng.random(4) < 0.2
        expected, state = agent.act_with_state(obs, state, starts, deterministic=True)
        np.testing.assert_array_equal(program.act(obs, episode_start=starts), expected)
        np.testing.assert_array_equal(graph.act(obs, episode_start=starts), expected)
        _state_close(program.state, state)
        _state_close(graph.state, state)


# --------------------------------------------------------------------------- parity catches
def test_sequence_parity_catches_a_graph_that_drops_the_state(exported: Any) -> None:
    _, agent, result = exported
    acting, _ = cpu_acting_path(agent)
    runner = OnnxPolicy(result.path)
    n_state = len(runner.metadata.state)

    def zero_state(inputs: list[np.ndarray]) -> list[np.ndarray]:
        head = inputs[: len(inputs) - n_state]
        return runner.run_outputs([*head, *(np.zeros_like(x) for x in inputs[-n_state:])])

    def frozen_state(inputs: list[np.ndarray]) -> list[np.ndarray]:
        action, *_ = runner.run_outputs(inputs)
        return [action, *inputs[-n_state:]]  # the state never advances

    def ignore_starts(inputs: list[np.ndarray]) -> list[np.ndarray]:
        obs, starts, state = inputs[: -n_state - 1], inputs[-n_state - 1], inputs[-n_state:]
        return runner.run_outputs([*obs, np.zeros_like(starts), *state])

    good = check_sequence_parity(acting, runner.run_outputs, "onnxruntime", batch_sizes=(1, 5))
    assert good.ok, good
    for broken in (zero_state, frozen_state, ignore_starts):
        report = check_sequence_parity(acting, broken, "broken", batch_sizes=(1, 5))
        assert not report.ok and "FAILED" in str(report), broken.__name__
        assert report.state_max_abs_diff is not None and report.state_max_abs_diff > 1e-3

    with pytest.raises(ParityError, match="outputs, expected"):
        check_sequence_parity(acting, lambda x: runner.run_outputs(x)[:1], "short", (2,))
    with pytest.raises(TypeError, match="check_sequence_parity"):
        check_parity(acting, runner.run, "onnxruntime")


def test_to_onnx_fails_when_the_runner_drops_the_state(
    lstm_exported: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's own check: a runner whose graph ignores its state inputs fails it."""
    _, agent, result = lstm_exported
    n_state = len(OnnxPolicy(result.path).metadata.state)
    monkeypatch.setattr(
        OnnxPolicy, "run_outputs", lambda self, inputs: _drop_state(self, inputs, n_state)
    )
    with pytest.raises(ParityError, match="onnxruntime parity FAILED"):
        to_onnx(agent, tmp_path / "broken.onnx", batch_sizes=(1, 3))


def _drop_state(runner: OnnxPolicy, inputs: list[np.ndarray], n_state: int) -> list[np.ndarray]:
    """What a graph that ignores its state inputs would return."""
    feed = dict(zip(runner.graph_input_names, inputs, strict=True))
    for name in runner.metadata.state_names:
        feed[name] = np.zeros_like(feed[name])
    outputs: list[np.ndarray] = runner.session.run(runner.output_names, feed)
    assert len(outputs) == n_state + 1
    return outputs


# --------------------------------------------------------------------------- CLI + targets
def test_cli_exports_a_recurrent_checkpoint(
    lstm_exported: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_id, agent, _ = lstm_exported
    run = tmp_path / "run"
    agent.save(run / "final")
    out = tmp_path / "cli" / "policy.onnx"
    assert main(["export", str(run), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"exported {out}" in printed
    assert "onnxruntime parity OK" in printed and "state max |diff|" in printed
    policy = OnnxPolicy(out)
    assert policy.metadata.policy == policy_id and policy.recurrent
    rng = np.random.default_rng(2)
    state = None
    for _ in range(5):
        obs = rng.uniform(-0.2, 0.2, (3, 2)).astype(np.float32)
        expected, state = agent.act_with_state(obs, state, deterministic=True)
        np.testing.assert_array_equal(policy.act(obs), expected)

    om = tmp_path / "om" / "policy.onnx"
    assert main(["export", str(run), "--format", "om", "-o", str(om)]) == 2
    err = capsys.readouterr().err
    assert policy_id in err and "--format onnx or torch" in err and len(err.splitlines()) == 1
    assert not om.exists()


def test_tensorrt_and_ascend_refuse_recurrent_policies(
    lstm_exported: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_id, _, result = lstm_exported
    line = rf"{policy_id} is recurrent.*onnx or torch_export"
    with pytest.raises(ValueError, match=rf"atc_command: .*{line}"):
        atc_command(result.path)
    with pytest.raises(ValueError, match=rf"convert_to_om: .*{line}"):
        convert_to_om(result.path, om_path=tmp_path / "policy.om")
    assert not (tmp_path / "policy.om.atc.sh").exists()

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(ValueError, match=rf"build_tensorrt_engine: .*{line}"):
        build_tensorrt_engine(result.path, engine_path=tmp_path / "policy.engine")
    engine = tmp_path / "policy.engine"
    engine.write_bytes(b"not an engine")
    strings = ExportMetadata.from_onnx(result.path).to_strings()
    sidecar_path(engine).write_text(json.dumps(strings))
    with pytest.raises(ValueError, match=rf"TensorRTPolicy: .*{line}"):
        TensorRTPolicy(engine)

    for name in ("ais_bench", "ais_bench.infer", "ais_bench.infer.interface"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    om = tmp_path / "policy.om"
    om.write_bytes(b"not a model")
    om_sidecar_path(om).write_text(json.dumps({**strings, "rlkit.om.batch_sizes": "[1, 2]"}))
    with pytest.raises(ValueError, match=rf"OmPolicy: .*{line}"):
        OmPolicy(om)
