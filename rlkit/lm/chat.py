"""One chat turn with a causal-LM policy: format the history, generate, decode."""

from __future__ import annotations

from typing import Any

import torch

from rlkit.envs.text import format_dialogue

#: a dialogue history: ``[{"role": "user" | "assistant" | ..., "content": text}, ...]``.
History = list[dict[str, str]]


def reply(
    policy: Any,
    text: str,
    history: History | None = None,
    max_new_tokens: int = 64,
    deterministic: bool = False,
    max_prompt_tokens: int = 512,
) -> tuple[str, History]:
    """The policy's answer to ``text`` after ``history`` and the history with both turns
    added. ``policy`` is a :class:`~rlkit.policies.CausalLMPolicy`; the prompt keeps its last
    ``max_prompt_tokens`` tokens."""
    if not isinstance(text, str):
        raise TypeError(f"chat: text must be a string, got {type(text).__name__}")
    turns: History = [dict(m) for m in (history or [])]
    turns.append({"role": "user", "content": text})
    prompt = format_dialogue(turns, policy.tokenizer)
    ids = policy.tokenizer(prompt, add_special_tokens=False)["input_ids"][-max_prompt_tokens:]
    if not ids:
        ids = [int(policy.tokenizer.bos_token_id or policy.tokenizer.eos_token_id)]
    device = next(policy.parameters()).device
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    mask = torch.ones_like(input_ids)
    completion = policy.generate(input_ids, mask, max_new_tokens, deterministic)
    answer = policy.tokenizer.decode(completion[0], skip_special_tokens=True).strip()
    turns.append({"role": "assistant", "content": answer})
    return answer, turns


__all__ = ["History", "reply"]
