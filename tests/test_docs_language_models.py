"""The language-model guide's examples run as written (step counts shrunk), and the Chinese
guide shows the same code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rlkit.reward_models import REWARD_MODELS, CompositeReward, TextBatch

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = DOCS / "language-models.md"


def blocks(path: Path, language: str = "python") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_the_chinese_guide_shows_the_same_code() -> None:
    chinese = DOCS / "zh" / "language-models.md"
    for language in ("python", "bash", "yaml", "json"):
        assert blocks(GUIDE, language) == blocks(chinese, language), language


def test_the_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first, policy, dialogue, reward, subclass, chat = blocks(GUIDE)
    assert "agent.train(960)" in first and "path/or/hub-name" in policy
    namespace: dict[str, object] = {}
    assert "agent.train(1_200)" in dialogue
    talk: dict[str, object] = {}
    exec(dialogue.replace("agent.train(1_200)", "agent.train(12, progress_bar=False)"), talk)
    assert talk["agent"].global_step == 12  # type: ignore[attr-defined]
    exec(first.replace("agent.train(960)", "agent.train(64, progress_bar=False)"), namespace)
    agent = namespace["agent"]
    assert agent.global_step == 64  # type: ignore[attr-defined]
    try:
        exec(reward, namespace)
        model = REWARD_MODELS.build("shorter_than_prompt")
        batch = TextBatch(["a b c", "a"], ["x", "x y"])
        assert model.score(batch).tolist() == [1.0, 0.0]
    finally:
        REWARD_MODELS.unregister("shorter_than_prompt")
    exec(subclass, namespace)
    dr = namespace["DrGRPO"](namespace["env"], model=namespace["path"], seed=0)  # type: ignore[operator]
    assert "loss/policy" in dr.iteration()
    exec(chat, namespace)
    history = namespace["history"]
    assert len(history) == 4 and history[2] == {"role": "user", "content": "what is it"}  # type: ignore[index]


def test_the_dialogue_reward_builds() -> None:
    (spec,) = [yaml.safe_load(b) for b in blocks(GUIDE, "yaml") if "composite" in b]
    parts = dict(spec["reward_model"]["parts"])
    assert parts.pop("intent")["id"] == "classifier"  # needs a trained classifier on disk
    composite = REWARD_MODELS.build(
        {**spec["reward_model"], "parts": parts, "weights": {"chrf": 0.5}}
    )
    assert isinstance(composite, CompositeReward)
    assert set(composite.required_fields()) >= {"references", "log_probs", "ref_log_probs"}
