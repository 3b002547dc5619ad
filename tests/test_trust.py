"""Nothing executes from files: checkpoints, replay files, Hub downloads and exported archives
import nothing they name unless the user passes ``trust_code=True`` / ``--trust-code``.

Every test writes a real file, makes it name a module created in ``tmp_path`` whose import
writes a marker file, and checks that loading refuses with one line (marker absent) and that
trusting it imports the module (marker present).
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rlkit.agents  # noqa: F401  (registers the reference agents)
from rlkit.agents import DQN, PPO
from rlkit.checkpoint import load_registered_agent
from rlkit.cli.main import main
from rlkit.envs import goals, make_vec_env
from rlkit.export import OnnxPolicy, TorchExportPolicy, to_torch_export
from rlkit.hub import from_pretrained
from rlkit.prototypes import Agent, load_agent
from rlkit.storages import HindsightRelabeler, ReplayStorage
from rlkit.storages.her import GOAL_FUNCTIONS
from rlkit.trust import UntrustedCodeError

OPTION = "trust_code=True / --trust-code"
GOAL_REWARD = """
import numpy as np


def reward(achieved_goal, desired_goal, info=None):
    return -np.any(np.asarray(achieved_goal) != np.asarray(desired_goal), axis=-1).astype(
        np.float32
    )
"""


class Probe:
    """A module in ``tmp_path`` whose import writes ``marker``."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str = "") -> None:
        self.name = f"rlkit_trust_probe_{uuid.uuid4().hex[:10]}"
        folder = tmp_path / "modules"
        folder.mkdir(exist_ok=True)
        self.marker = tmp_path / f"{self.name}.imported"
        (folder / f"{self.name}.py").write_text(
            f"import pathlib\npathlib.Path({str(self.marker)!r}).write_text('imported')\n{body}"
        )
        monkeypatch.syspath_prepend(str(folder))

    @property
    def imported(self) -> bool:
        return self.marker.exists()

    def forget(self) -> None:
        """Unimport the module and remove the marker, so the next import shows again."""
        sys.modules.pop(self.name, None)
        self.marker.unlink(missing_ok=True)


def _one_line(error: BaseException, *parts: str) -> str:
    text = str(error)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, (part, text)
    return text


def _edit_json(file: Path, edit: Any) -> None:
    data = json.loads(file.read_text())
    edit(data)
    file.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def ppo_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = PPO(env, num_steps=16, num_epochs=1, seed=0).train(256, progress_bar=False)
    path = agent.save(tmp_path_factory.mktemp("ppo") / "run" / "final")
    env.close()
    return path.parent


def _with_env_id(run: Path, tmp_path: Path, env_id: str) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    _edit_json(target / "final" / "config.json", lambda c: c["env"].update(id=env_id))
    return target


# --------------------------------------------------------------------------- env ids
def test_a_checkpoint_env_id_that_imports_a_module_is_refused(
    ppo_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Probe(tmp_path, monkeypatch)
    env_id = f"{probe.name}:CartPole-v1"
    run = _with_env_id(ppo_checkpoint, tmp_path, env_id)
    loaders = [
        lambda: PPO.load(run),
        lambda: Agent.load(run),
        lambda: load_agent(run),
        lambda: load_registered_agent(run),
        lambda: from_pretrained(run),
        lambda: PPO.from_pretrained(run),
    ]
    for load in loaders:
        with pytest.raises(UntrustedCodeError) as info:
            load()
        _one_line(info.value, f"checkpoint {run / 'final'}", repr(env_id), "env=", OPTION)
        assert f"would import the module {probe.name!r}" in str(info.value)
    assert not probe.imported

    # an env of your own needs no trust: the recorded id is not used
    env = make_vec_env("CartPole-v1", num_envs=2, seed=1)
    assert PPO.load(run, env=env).env is env
    assert not probe.imported

    agent = load_agent(run, trust_code=True)
    assert probe.imported
    assert isinstance(agent, PPO) and agent.evaluate(episodes=1)["episodes"] == 1


def test_env_ids_you_type_yourself_may_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Probe(tmp_path, monkeypatch)
    env = make_vec_env(f"{probe.name}:CartPole-v1", num_envs=1, seed=0)
    assert probe.imported and env.single_action_space.n == 2
    env.close()


def test_cli_eval_refuses_without_trust_code(
    ppo_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    probe = Probe(tmp_path, monkeypatch)
    run = _with_env_id(ppo_checkpoint, tmp_path, f"{probe.name}:CartPole-v1")
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("rlkit: error: checkpoint ") and "--trust-code" in err[0]
    assert not probe.imported

    assert main(["eval", str(run), "--episodes", "1", "--json", "--trust-code"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
    assert probe.imported


def test_cli_export_and_resume_take_trust_code(
    ppo_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    probe = Probe(tmp_path, monkeypatch)
    run = _with_env_id(ppo_checkpoint, tmp_path, f"{probe.name}:CartPole-v1")
    out = tmp_path / "policy.onnx"
    resume = ["train", "ppo", "--resume", str(run), "--out", str(tmp_path / "resumed")]
    resume += ["--total-steps", "288", "--no-progress", "--eval-episodes", "1"]
    capsys.readouterr()
    for argv in (["export", str(run), "-o", str(out), "--no-check"], resume):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--trust-code" in err[0], err
    assert not probe.imported and not out.exists()

    assert main(["export", str(run), "-o", str(out), "--no-check", "--trust-code"]) == 0
    assert probe.imported
    obs = np.zeros((3, 4), dtype=np.float32)
    assert OnnxPolicy(out).act(obs).shape == (3,)
    assert main([*resume, "--trust-code"]) == 0
    assert (tmp_path / "resumed" / "final" / "config.json").is_file()


def test_a_hub_card_says_when_the_env_id_imports_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlkit.hub import build_hub_files

    probe = Probe(tmp_path, monkeypatch)
    env = make_vec_env(f"{probe.name}:CartPole-v1", num_envs=1, seed=0)
    files = build_hub_files(PPO(env, num_steps=8, seed=0), tmp_path / "repo", eval_episodes=0)
    card = files["README.md"]
    assert isinstance(card, bytes)
    assert "imports no code unless you pass `trust_code=True`" in card.decode()
    assert f"imports the module `{probe.name}`" in card.decode()
    probe.forget()
    with pytest.raises(UntrustedCodeError):
        from_pretrained(tmp_path / "repo")
    assert not probe.imported
    assert from_pretrained(tmp_path / "repo", trust_code=True).env.num_envs == 1
    assert probe.imported


# --------------------------------------------------------------------------- HER functions
def _her_agent(path: Path, save_replay: bool) -> Path:
    env = make_vec_env(goals.BIT_FLIPPING_ID, num_envs=1, seed=0, env_kwargs={"n_bits": 4})
    her = HindsightRelabeler(goals.bit_flipping_reward, terminated_fn="bit_flipping_success")
    storage = ReplayStorage(
        env.single_observation_space, env.single_action_space, capacity=128, her=her
    )
    agent = DQN(
        env,
        storage=storage,
        buffer_size=128,
        learning_starts=10_000,
        seed=0,
        save_replay=save_replay,
    )
    agent.train(64, progress_bar=False)
    out = agent.save(path)
    env.close()
    return out


def test_goal_functions_are_named_by_registered_id() -> None:
    assert {"bit_flipping_reward", "bit_flipping_success", "point_goal_reward"} <= set(
        GOAL_FUNCTIONS
    )
    her = HindsightRelabeler(goals.point_goal_reward, terminated_fn="point_goal_success")
    assert her.spec()["reward_fn"] == "point_goal_reward"  # a registered callable, by id
    assert her.terminated_fn is goals.point_goal_success
    # the import path of a registered function resolves without an import (older configs)
    assert HindsightRelabeler("rlkit.envs.goals:point_goal_reward").reward_fn is (
        goals.point_goal_reward
    )


def test_a_checkpoint_her_function_import_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _her_agent(tmp_path / "dqn", save_replay=False)
    config = path / "config.json"
    her = json.loads(config.read_text())["primitives"]["storage"]["her"]
    assert her["reward_fn"] == "bit_flipping_reward" and her["terminated_fn"] == (
        "bit_flipping_success"
    )
    assert DQN.load(path).storage.her.reward_fn is goals.bit_flipping_reward  # no trust needed

    probe = Probe(tmp_path, monkeypatch, GOAL_REWARD)
    value = f"{probe.name}:reward"
    _edit_json(config, lambda c: c["primitives"]["storage"]["her"].update(reward_fn=value))
    for load in (lambda: DQN.load(path), lambda: load_agent(path)):
        with pytest.raises(UntrustedCodeError) as info:
            load()
        _one_line(info.value, f"checkpoint {path}", "HER reward_fn", repr(value), OPTION)
        assert "bit_flipping_reward" in str(info.value)  # the registered alternatives
    assert not probe.imported

    agent = DQN.load(path, trust_code=True)
    assert probe.imported
    assert agent.storage.her.reward_fn.__module__ == probe.name


def test_a_replay_file_her_function_import_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import h5py

    path = _her_agent(tmp_path / "dqn", save_replay=True)
    replay = path / "replay.h5"
    assert len(DQN.load(path).storage) == 64
    probe = Probe(tmp_path, monkeypatch, GOAL_REWARD)
    value = f"{probe.name}:reward"
    with h5py.File(replay, "r+") as f:
        saved = json.loads(f.attrs["config"])
        saved["her"]["reward_fn"] = value
        f.attrs["config"] = json.dumps(saved)

    with pytest.raises(UntrustedCodeError) as info:
        ReplayStorage.load(replay)
    _one_line(info.value, f"replay file {replay}", repr(value), OPTION)
    with pytest.raises(UntrustedCodeError) as info:
        DQN.load(path)  # config.json is clean; the replay file inside is not
    _one_line(info.value, f"replay file {replay}", repr(value), OPTION)
    assert not probe.imported

    assert ReplayStorage.load(replay, trust_code=True).her.reward_fn.__module__ == probe.name
    assert probe.imported
    probe.forget()
    agent = DQN.load(path, trust_code=True)  # the checkpoint's trust reaches its replay file
    assert probe.imported
    assert len(agent.storage) == 64 and agent.storage.her.reward_fn.__module__ == probe.name


def test_her_import_paths_you_write_yourself_are_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Probe(tmp_path, monkeypatch, GOAL_REWARD)
    her = HindsightRelabeler(f"{probe.name}:reward")
    assert probe.imported and her.reward_fn.__module__ == probe.name


# --------------------------------------------------------------------------- torch.export
def test_torch_export_archives_need_trust_code(ppo_checkpoint: Path, tmp_path: Path) -> None:
    agent = PPO.load(ppo_checkpoint, device="cpu")
    result = to_torch_export(agent, tmp_path / "policy.pt2")
    with pytest.raises(UntrustedCodeError) as info:
        TorchExportPolicy(result.path)
    _one_line(info.value, str(result.path), "unpickles", "trust_code=True", "OnnxPolicy")
    policy = TorchExportPolicy(result.path, trust_code=True)
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(policy.act(obs), agent.act(obs, deterministic=True))
