"""The multi-agent guide's own-env example runs as written, and the Chinese guide shows the
same code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("pettingzoo")

DOCS = Path(__file__).resolve().parents[1] / "docs"


def blocks(path: Path, language: str = "python") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_the_chinese_guide_shows_the_same_code() -> None:
    english, chinese = DOCS / "multi-agent.md", DOCS / "zh" / "multi-agent.md"
    for language in ("python", "bash", "yaml"):
        assert blocks(english, language) == blocks(chinese, language), language


def test_the_own_env_example_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DOCS / "multi-agent.md").read_text(encoding="utf-8")
    section = text[text.index("## Your own PettingZoo env") :]
    module, usage = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    assert module.startswith("# rendezvous.py")
    (tmp_path / "rendezvous.py").write_text(module, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rendezvous", raising=False)
    assert "agent.train(4_000)" in usage
    namespace: dict[str, object] = {}
    exec(usage.replace("agent.train(4_000)", "agent.train(400, progress_bar=False)"), namespace)
    agent = namespace["agent"]
    assert agent.global_step >= 400  # type: ignore[attr-defined]
    # the class itself is a valid id too
    from rlkit.envs import make_vec_env

    assert make_vec_env("rendezvous:Rendezvous", num_envs=2, seed=0).num_envs == 4
