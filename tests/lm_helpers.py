"""Shared pieces of the language-model tests: the toy model (built once per worker) and the
probability that a policy's completions contain a word, with their KL to a reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlkit.envs.text import TextVecEnv
from rlkit.lm.toy import make_toy_lm, toy_prompts
from rlkit.policies.causal_lm import completion_mask

_BUILT: dict[str, Path] = {}


def toy_lm(directory: Path) -> Path:
    """The toy model (300 pretraining steps, seed 0) under ``directory``; built once per process."""
    if "path" not in _BUILT:
        _BUILT["path"] = make_toy_lm(directory / "toy-lm", steps=300, seed=0)
    return _BUILT["path"]


def word_rate(
    agent: Any, path: Path, word: str = "cat", n: int = 256, seed: int = 123
) -> tuple[float, float]:
    """``(fraction of n sampled completions containing word, mean KL(policy || reference) per
    completion)`` on held-out prompts; the KL is the mean summed log-ratio of the sampled
    tokens (0 without a reference)."""
    env = TextVecEnv(
        toy_prompts(64, seed=1), path, num_prompts=n, max_prompt_tokens=8, max_new_tokens=8,
        seed=seed,
    )  # fmt: skip
    obs, _ = env.reset(seed=seed)
    ids, mask = torch.as_tensor(obs["input_ids"]), torch.as_tensor(obs["attention_mask"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        out = agent.policy.generate(ids, mask, 8)
    texts = env.decode(out.numpy())
    generated = completion_mask(out, agent.policy.eos_token_id)
    kl = 0.0
    with torch.no_grad():
        if agent.reference is not None:
            policy = agent.policy.evaluate_tokens(ids, mask, out, generated, values=False)
            ref = agent.policy.evaluate_tokens(
                ids, mask, out, generated, model=agent.reference, values=False
            )
            kl = float(((policy.log_prob - ref.log_prob) * generated).sum(1).mean())
    return sum(word in t.split() for t in texts) / len(texts), kl
