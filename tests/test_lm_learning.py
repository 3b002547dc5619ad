"""GRPO, RLOO and token-level PPO raise a rule-based reward on a toy language model built
here (the completion contains the word "cat"; the pretrained model writes it in about 17% of
completions) within a CPU budget, while the KL to the reference stays bounded.

Budget: 30 iterations of 8 prompts x 4 completions of 8 tokens (960 completions, about a
second per run on one core). Threshold: the rate on held-out prompts rises by >= 0.4 and the
mean KL(policy || reference) per completion is <= 6 nats, in >= 2 of seeds 0-2. Validated on
seeds 0-4 (2-core AMD EPYC, torch 2.13 CPU, one thread): rise +0.61 to +0.82 for every algorithm
and seed; KL 1.9-3.6 nats except GRPO seed 4 (16: the policy found "cat" by drifting far, which
GRPO's small beta of 0.04 allows), hence k of n.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lm_helpers import toy_lm, word_rate

import rlkit.agents  # noqa: F401  (registers the agents)
from rlkit.envs.text import TextVecEnv
from rlkit.lm.toy import toy_prompts
from rlkit.prototypes import AGENTS

pytestmark = pytest.mark.learning


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_lm(tmp_path_factory.mktemp("lm-learning"))


@pytest.mark.parametrize("algo", ["grpo", "rloo", "lm_ppo"])
def test_reward_rises_within_a_kl_bound(algo: str, path: Path) -> None:
    results = []
    for seed in (0, 1, 2):
        env = TextVecEnv(toy_prompts(64), str(path), num_prompts=8, group_size=4,
                         max_prompt_tokens=8, max_new_tokens=8, seed=seed)  # fmt: skip
        agent = AGENTS.get(algo)(
            env, model=str(path), reward_model={"id": "contains", "words": ["cat"]}, lr=1e-3,
            seed=seed,
        )  # fmt: skip
        before, _ = word_rate(agent, path)
        for _ in range(30):
            agent.iteration()
        after, kl = word_rate(agent, path)
        results.append((round(before, 3), round(after, 3), round(kl, 2)))
    passed = sum(after - before >= 0.4 and kl <= 6.0 for before, after, kl in results)
    assert passed >= 2, f"{algo}: (before, after, kl) per seed: {results}"
