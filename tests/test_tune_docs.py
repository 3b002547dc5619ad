"""docs/tuning.md stays true: its space example fits PPO, its options table is the command's
option list, and its Python example runs (with the step counts shrunk)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")

from rlkit.cli.main import build_parser
from rlkit.prototypes import AGENTS
from rlkit.tune import SearchSpace

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "tuning.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE, flags=re.S)


def test_the_space_example_parses_and_fits_ppo() -> None:
    (example,) = [b for b in _blocks("yaml") if "intrinsic_reward.coef" in b]
    space = SearchSpace.from_dict(yaml.safe_load(example))
    space.check_agent(AGENTS.get("ppo"))
    assert space.params[-1].when == (("intrinsic_reward.id", ("rnd",)),)


def test_the_options_table_lists_every_option_of_the_command() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    tune = sub.choices["tune"]  # type: ignore[attr-defined]
    options = {s for a in tune._actions for s in a.option_strings if s.startswith("--")}
    options -= {"--help"}
    section = PAGE.split("## Options", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z-]+)`", section, flags=re.M))
    assert documented == options


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = [b for b in _blocks("python") if "from rlkit.tune import tune" in b]
    for old, new in (
        ("trials=20", "trials=2"),
        ("budget=50_000", "budget=1024"),
        ("seeds=2", "seeds=1, top=1, eval_seeds=2, evals=1, eval_episodes=2, quiet=True"),
    ):
        assert old in code
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/tuning.md", "exec"), namespace)
    result = namespace["result"]
    assert (tmp_path / "runs" / "tune-ppo" / "best.yaml").exists()
    assert len(result.trials) == 2  # type: ignore[attr-defined]
