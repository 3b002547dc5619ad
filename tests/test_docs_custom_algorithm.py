"""The example of docs/custom-primitives.md, "A new algorithm from loss terms", runs as shown.

Its one python block (PPO with an adaptive KL penalty) is executed in a fresh namespace, then
trained briefly on CartPole: it must run on the fast backend (the policy through the fused
actor-critic kernel, the custom ``Surrogate`` term through autograd), adapt its KL coefficient
and keep the adapted coefficient in checkpoints.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlkit.envs import make_vec_env
from rlkit.prototypes import AGENTS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "custom-primitives.md"
HEADING = "## A new algorithm from loss terms"
#: the id the example registers in the process-wide agent registry.
AGENT_ID = "ppo_kl"


def _example() -> str:
    """The python code block of the section (the section must hold exactly one)."""
    text = PAGE.read_text()
    start = text.index(HEADING + "\n") + len(HEADING) + 1
    end = re.search(r"^## ", text[start:], re.MULTILINE)
    section = text[start : start + end.start()] if end else text[start:]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, f"{HEADING!r}: expected one python block, found {len(blocks)}"
    return blocks[0]


def _unregister() -> None:
    # The registry has no public way to drop an id, and executing the example again (a second
    # run in the same process) would give "ppo_kl" to a new class, which the registry refuses.
    AGENTS._classes.pop(AGENT_ID, None)


@pytest.fixture(scope="module")
def example() -> Iterator[dict[str, Any]]:
    """The namespace of the executed example (executed once per module)."""
    _unregister()
    namespace: dict[str, Any] = {"__name__": "docs_custom_algorithm"}
    # dont_inherit: run the block as the page shows it, without this module's
    # ``from __future__ import annotations`` (dataclasses would then see string annotations)
    code = compile(_example(), f"{PAGE.name} ({HEADING[3:]})", "exec", dont_inherit=True)
    exec(code, namespace)
    yield namespace
    _unregister()


def test_example_trains_adapts_and_round_trips(example: dict[str, Any], tmp_path: Path) -> None:
    ppo_kl = example["PPOKL"]
    assert AGENTS.get(AGENT_ID) is ppo_kl
    env = make_vec_env("CartPole-v1", num_envs=8, seed=0)
    agent = ppo_kl(
        env,
        num_steps=32,
        batch_size=256,
        num_epochs=10,
        lr=1e-3,
        gamma=0.98,
        gae_lambda=0.8,
        seed=0,
    )
    assert agent.backend.name == "fast"
    agent.train(10_000, run_dir=tmp_path / "run", progress_bar=False, tensorboard=False)
    assert agent.global_step >= 10_000

    # the fast path: kernel for the policy, closed forms for the built-in terms, autograd
    # (on the per-sample vectors) for the custom term
    report = agent.backend_report.as_dict()
    for component in ("policy evaluation", "policy acting"):
        assert report[component]["implementation"] == "fused actor-critic kernel", report
    assert report["loss policy (Surrogate)"] == {
        "implementation": "autograd",
        "fallback_reason": "no closed-form derivative",
    }
    for term in ("kl (KLPenalty)", "value (ValueLoss)", "entropy (EntropyBonus)"):
        assert report[f"loss {term}"]["implementation"] == "closed-form derivative", report

    # the coefficient adapted during training (logged once per update)
    with open(tmp_path / "run" / "progress.csv", newline="") as f:
        coefs = [float(row["train/kl_coef"]) for row in csv.DictReader(f)]
    assert len(coefs) == agent.num_updates
    assert any(coef != 1.0 for coef in coefs), f"the KL coefficient never adapted: {coefs}"
    assert coefs[-1] == agent.kl.coef

    # checkpoints keep the adapted coefficient (the term's state, not the starting value)
    agent.save(tmp_path / "checkpoint")
    loaded = ppo_kl.load(tmp_path / "checkpoint", env=env)
    assert loaded.kl.coef == agent.kl.coef
    assert loaded.kl in list(loaded.terms)
    restarted = ppo_kl.load(tmp_path / "checkpoint", env=env, kl_coef=4.0 * agent.kl.coef)
    assert restarted.config.kl_coef == 4.0 * agent.kl.coef
    assert restarted.kl.coef == agent.kl.coef
