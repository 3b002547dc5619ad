"""Plugin modules, registered wrappers and family options from the command line, recorded in
the checkpoint so ``rlkit eval`` / ``rlkit export`` rebuild the same env (rlkit.plugins)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rlkit.checkpoint import read_config
from rlkit.cli.main import main
from rlkit.envs import make_vec_env, wrapper_ids
from rlkit.plugins import PluginImportError, import_plugins, is_plugin_module

PLUGIN = textwrap.dedent(
    '''
    """A user's module: an env registered with gymnasium and a custom encoder."""
    import gymnasium as gym
    import numpy as np
    from torch import nn

    from rlkit.encoders import ENCODERS
    from rlkit.encoders.mlp import MLP


    class Corridor(gym.Env):
        observation_space = gym.spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(3, dtype=np.float32), {}

        def step(self, action):
            self.t += 1
            obs = np.full(3, self.t / 10, dtype=np.float32)
            return obs, float(action), self.t >= 10, False, {}


    gym.register("ENV_ID", entry_point=Corridor)


    @ENCODERS.register("ENCODER_ID")
    class WideMLP(MLP):
        pass
    '''
)


def _write_plugin(folder: Path, name: str) -> tuple[str, str]:
    env_id, encoder_id = f"{name}/Corridor-v0", f"{name}_wide_mlp"
    text = PLUGIN.replace("ENV_ID", env_id).replace("ENCODER_ID", encoder_id)
    (folder / f"{name}.py").write_text(text)
    return env_id, encoder_id


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``rlkit ARGS`` in a fresh process (nothing imported before), in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "rlkit", *args], cwd=cwd, capture_output=True, text=True
    )


def test_a_plugin_module_in_the_working_directory_is_imported_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "lab_plugin_cli"
    env_id, encoder_id = _write_plugin(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    command = ["train", "ppo", "--import", name, "--env", env_id, "--encoder", encoder_id]
    settings = ["--total-steps", "128", "--num-envs", "2", "--num-steps", "64"]
    settings += ["--eval-episodes", "1", "--no-progress", "--out", str(run)]
    assert main([*command, *settings]) == 0
    assert read_config(run / "final")["plugins"] == [name]
    # a fresh process does not import what the checkpoint names on its own...
    refused = _cli(["eval", str(run), "--episodes", "1", "--json"], tmp_path)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert f"--import {name}" in line and "--trust-code" in line
    # ...but with --import (the user's choice) or --trust-code (trusting the file) it does
    for extra in (["--import", name], ["--trust-code"]):
        done = _cli(["eval", str(run), "--episodes", "2", "--json", *extra], tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["return_mean"] >= 0.0
    exported = _cli(["export", str(run), "--import", name, "-o", "p.onnx"], tmp_path)
    if "onnx" in exported.stderr and exported.returncode != 0:
        pytest.skip(f"ONNX export unavailable: {exported.stderr.strip()}")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "p.onnx").is_file()


def test_bad_plugin_names_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PluginImportError, match="not a path"):
        import_plugins(["plugins/my_envs.py"])
    code = main(["train", "ppo", "--import", "rlkit_no_such_plugin", "--env", "CartPole-v1"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "no module named 'rlkit_no_such_plugin'" in line
    assert not is_plugin_module("rlkit.encoders.mlp") and is_plugin_module("lab.models")


def test_registered_wrappers_are_recorded_and_rebuilt_for_evaluation(tmp_path: Path) -> None:
    assert {"frame_stack", "time_limit", "clip_reward", "flatten_dict"} <= set(wrapper_ids())
    run = tmp_path / "run"
    wrapper = "{id: time_limit, max_episode_steps: 20}"
    command = ["train", "ppo", "--env", "CartPole-v1", "--wrapper", wrapper]
    command += ["--wrapper", "{id: frame_stack, stack_size: 2}", "--total-steps", "128"]
    command += ["--num-envs", "2", "--num-steps", "64", "--no-progress", "--out", str(run)]
    assert main([*command, "--eval-episodes", "2"]) == 0
    saved = read_config(run / "final")["env"]
    assert saved["wrappers"] == [
        {"__dict__": {"id": "time_limit", "max_episode_steps": 20}},
        {"__dict__": {"id": "frame_stack", "stack_size": 2}},
    ]
    result = json.loads((run / "eval.json").read_text())
    assert result["length_mean"] <= 20  # the time limit holds in evaluation too
    resolved = (run / "config.yaml").read_text()
    assert "time_limit" in resolved and "frame_stack" in resolved
    # the eval command rebuilds the stacked env from the checkpoint: the spaces match
    assert main(["eval", str(run), "--episodes", "2"]) == 0


def test_bad_wrapper_and_preprocessing_values_give_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "ppo", "--env", "CartPole-v1", "--out", str(tmp_path / "r")]
    for flag, value, expected in (
        ("--wrapper", "frame_stak", "unknown env wrapper id 'frame_stak'"),
        ("--wrapper", "{stack_size: 2}", "needs an 'id'"),
        ("--wrapper", "{id: frame_stack, size: 2}", "has no option(s) size"),
        ("--preprocessing", "maybe", "--preprocessing 'maybe'"),
        ("--preprocessing", "{frame_stack: 2}", "no env family claims 'CartPole-v1'"),
    ):
        assert main([*base, flag, value]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert expected in line, line


def test_wrapper_specs_and_callables_mix_and_only_specs_are_recordable() -> None:
    from rlkit.envs import env_spec_of

    env = make_vec_env(
        "CartPole-v1", wrappers=[{"id": "time_limit", "max_episode_steps": 5}, lambda e: e]
    )
    spec = env_spec_of(env)
    assert spec is not None and spec.wrapper_specs is None  # a callable has no name
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.int64))
    assert (terminated | truncated).all()
    env.close()


def test_builtin_wrappers_take_yaml_values(tmp_path: Path) -> None:
    env = make_vec_env("CartPole-v1", wrappers=["frame_stack"])  # 4 frames by default
    assert env.single_observation_space.shape == (4, 4)
    env.close()
    pytest.importorskip("Box2D")
    pixels = make_vec_env(  # CarRacing's raw (96, 96, 3) frames
        "CarRacing-v3", preprocessing=False, wrappers=[{"id": "resize", "shape": [16, 16]}]
    )  # the shape as YAML gives it: a list
    assert pixels.single_observation_space.shape == (16, 16, 3)
    pixels.close()


def test_the_installed_command_finds_module_env_ids_in_the_working_directory(
    tmp_path: Path,
) -> None:
    import shutil

    script = shutil.which("rlkit")
    if script is None:
        pytest.skip("the rlkit console script is not on PATH")
    name = "lab_plugin_script"
    env_id, _ = _write_plugin(tmp_path, name)
    done = subprocess.run(
        [script, "train", "ppo", "--env", f"{name}:{env_id}", "--total-steps", "64",
         "--num-envs", "1", "--num-steps", "64", "--eval-episodes", "1", "--no-progress",
         "--out", str(tmp_path / "run")],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
