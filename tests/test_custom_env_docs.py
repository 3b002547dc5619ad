"""The module in docs/custom-environments.md works as the page says: its env trains with
``--import``, its wrappers apply by id, and the checkpoint names the module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rlkit.checkpoint import read_config
from rlkit.cli.main import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom-environments.md"


def _module_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (source,) = [b for b in blocks if b.startswith("# my_envs.py")]
    return source


def test_the_documented_module_trains_with_its_wrapper_and_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a module name of its own, so other tests' imports cannot stand in for it
    name = "my_envs_docs_example"
    source = _module_source().replace('"MyEnv-v0"', '"DocsCorridor-v0"')
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    command = ["train", "ppo", "--import", name, "--env", "DocsCorridor-v0"]
    command += ["--wrapper", "{id: scale_reward, scale: 0.5}", "--total-steps", "256"]
    command += ["--num-envs", "2", "--num-steps", "64", "--eval-episodes", "2"]
    assert main([*command, "--no-progress", "--out", str(run)]) == 0
    config = read_config(run / "final")
    assert config["plugins"] == [name]
    assert config["env"]["wrappers"] == [{"__dict__": {"id": "scale_reward", "scale": 0.5}}]
    # the corridor pays 1 at its end; scaled by 0.5 in evaluation too
    assert main(["eval", str(run), "--episodes", "2", "--stochastic"]) == 0
