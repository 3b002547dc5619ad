"""A Hugging Face causal language model as a policy (extra ``lm``): one action is one
completion, one token of it one decision.

The observation is a left-padded prompt (``input_ids``, ``attention_mask``, as
:class:`rlkit.envs.text.TextVecEnv` gives it); :meth:`CausalLMPolicy.act` samples a completion
(generation with the key/value cache) and returns its token ids right-padded to
``max_new_tokens``. Training reads :meth:`CausalLMPolicy.evaluate_tokens`: per-token
log-probabilities, entropies and, with a value head, values of the state before each token.

Value heads: ``"none"`` (GRPO, RLOO), ``"shared"`` (a linear head on the policy's last hidden
state, as OpenRL's and TRL's PPO) or ``"separate"`` (a second copy of the model as the critic's
trunk). ``lora`` wraps the model with ``peft`` adapters (extra ``lm``): only they train, and
the reference model is the base with the adapters switched off. Weights load from a local
directory or the Hugging Face cache, with safetensors and without remote code; a directory
that holds a config and no weights (what a checkpoint stores) builds the architecture only.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import OneOf, Rule
from rlkit.lm.hf import load_causal_lm, load_tokenizer, require_module
from rlkit.policies.base import POLICIES, Policy
from rlkit.types import Obs, PolicyState

VALUE_HEADS = ("none", "shared", "separate")


@dataclass
class TokenEvaluation:
    """Per-token quantities of completions ``[B, T]`` under the current weights."""

    #: log-probability of each completion token (sampling temperature applied).
    log_prob: Tensor
    #: entropy of the next-token distribution at each completion position.
    entropy: Tensor
    #: value of the state before each token (None without a value head).
    value: Tensor | None = None


def completion_mask(ids: Tensor, eos_token_id: int | None) -> Tensor:
    """True on every generated token up to and including the first end-of-sequence token
    (the rest is padding, whatever its id: GPT-2 pads with its eos)."""
    if eos_token_id is None:
        return torch.ones_like(ids, dtype=torch.bool)
    is_eos = ids == eos_token_id
    after = torch.cumsum(is_eos.int(), dim=1) - is_eos.int()  # eos tokens strictly before
    return after == 0


@POLICIES.register("causal_lm")
class CausalLMPolicy(Policy):
    """A causal LM with an optional value head (see the module doc).

    ``model`` is a local directory or a Hugging Face model name (in the local cache);
    ``tokenizer`` defaults to the same place. ``temperature``, ``top_k`` and ``top_p`` shape
    sampling; log-probabilities are those of the tempered distribution that sampled the tokens.
    ``disable_dropout`` switches the model's dropout off, so probabilities at sampling and
    in training agree.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "value_head": OneOf(VALUE_HEADS),
        "dtype": OneOf(("float32", "bfloat16", "float16"), none=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any] | None = None,
        action_space: spaces.Space[Any] | None = None,
        model: str = "",
        tokenizer: str | None = None,
        value_head: str = "none",
        lora: Mapping[str, Any] | None = None,
        dtype: str | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float = 1.0,
        disable_dropout: bool = True,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(
                f"CausalLMPolicy: model must name a local directory or a Hugging Face model, "
                f"got {model!r}"
            )
        if not temperature > 0:
            raise ValueError(f"CausalLMPolicy: temperature must be > 0, got {temperature!r}")
        if top_k is not None and not (isinstance(top_k, int) and top_k > 0):
            raise ValueError(
                f"CausalLMPolicy: top_k must be a positive integer or None, got {top_k!r}"
            )
        if not 0 < top_p <= 1:
            raise ValueError(f"CausalLMPolicy: top_p must be in (0, 1], got {top_p!r}")
        super().__init__(observation_space or spaces.Dict(), action_space or spaces.Dict())
        torch_dtype = getattr(torch, dtype) if dtype is not None else None
        self.tokenizer = load_tokenizer(tokenizer or model)
        self.model = load_causal_lm(model, torch_dtype)
        self.temperature = float(temperature)
        self.top_k = top_k
        self.top_p = float(top_p)
        self.value_kind = value_head
        self.uses_lora = lora is not None
        if disable_dropout:  # so the ratio of a first update is 1 (as TRL's disable_dropout)
            for module in self.model.modules():
                if isinstance(module, nn.Dropout):
                    module.p = 0.0
        if lora is not None:
            self.model = _with_lora(self.model, lora)
        hidden = int(self.model.config.get_text_config().hidden_size)
        self.critic: nn.Module | None = None
        self.value_head: nn.Linear | None = None
        if value_head == "separate":
            base = _base_model(self.model)
            self.critic = copy.deepcopy(base)
            self.critic.requires_grad_(True)
        if value_head != "none":
            self.value_head = nn.Linear(hidden, 1)
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    # ------------------------------------------------------------------ helpers
    @property
    def eos_token_id(self) -> int | None:
        """The id that ends a completion."""
        value = self.tokenizer.eos_token_id
        return None if value is None else int(value)

    @property
    def pad_token_id(self) -> int:
        """The id completions are right-padded with."""
        return int(self.tokenizer.pad_token_id)

    def frozen_reference(self) -> nn.Module | None:
        """A frozen copy of the current model to measure the KL against; None with LoRA (the
        reference is then the base model with the adapters off, see :meth:`reference_mode`)."""
        if self.uses_lora:
            return None
        reference = copy.deepcopy(self.model)
        reference.requires_grad_(False)
        reference.eval()
        return reference

    @contextlib.contextmanager
    def reference_mode(self) -> Iterator[None]:
        """With LoRA: the adapters switched off (the model is then the reference)."""
        if not self.uses_lora:
            raise RuntimeError("CausalLMPolicy.reference_mode is only for LoRA models")
        with self.model.disable_adapter():
            yield

    def save_architecture(self, directory: Path) -> None:
        """Write the model's config (no weights) and the tokenizer to ``directory``: what
        :func:`~rlkit.lm.hf.load_causal_lm` rebuilds the architecture from."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        base = self.model.get_base_model() if self.uses_lora else self.model
        base.config.save_pretrained(directory)
        generation = getattr(base, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def check_length(self, attention_mask: Tensor, max_new_tokens: int) -> None:
        """Refuse prompts whose tokens plus ``max_new_tokens`` exceed the model's positions
        (one line, instead of an index error deep inside the model)."""
        limit = getattr(_base_config(self.model), "max_position_embeddings", None)
        if limit is None:
            return
        longest = int(attention_mask.sum(dim=1).max()) if attention_mask.numel() else 0
        if longest + int(max_new_tokens) > int(limit):
            raise ValueError(
                f"CausalLMPolicy: a prompt of {longest} tokens plus max_new_tokens="
                f"{int(max_new_tokens)} exceeds the model's {int(limit)} positions; shorten "
                "max_prompt_tokens or max_new_tokens"
            )

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the policy as a plain Hugging Face model directory (config, safetensors
        weights, tokenizer; LoRA adapters merged into the weights), which serving and ONNX
        tools load; a value head goes to ``value_head.safetensors`` beside it."""
        from safetensors.torch import save_file

        out = Path(directory)
        model = self.model
        if self.uses_lora:
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        if self.value_head is not None:
            state = {k: v.detach().contiguous() for k, v in self.value_head.state_dict().items()}
            save_file(state, str(out / "value_head.safetensors"))
        return out

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        max_new_tokens: int,
        deterministic: bool = False,
    ) -> Tensor:
        """Completion ids ``[B, max_new_tokens]`` for left-padded prompts, right-padded with the
        pad id after the first end-of-sequence token (key/value cache on)."""
        self.check_length(attention_mask, max_new_tokens)
        kwargs: dict[str, Any] = {"do_sample": not deterministic}
        if not deterministic:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or 0)
        was_training = self.model.training
        if was_training:  # (switching modes walks every module: only when needed)
            self.model.eval()
        try:
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=int(max_new_tokens),
                pad_token_id=self.pad_token_id,
                eos_token_id=self.eos_token_id,
                use_cache=True,
                **kwargs,
            )
        finally:
            if was_training:
                self.model.train()
        ids = out[:, input_ids.shape[1] :]
        mask = completion_mask(ids, self.eos_token_id)
        ids = ids.masked_fill(~mask, self.pad_token_id)
        width = int(max_new_tokens)
        if ids.shape[1] < width:
            pad = ids.new_full((ids.shape[0], width - ids.shape[1]), self.pad_token_id)
            ids = torch.cat([ids, pad], dim=1)
        return ids

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        """A completion per prompt (greedy when ``deterministic``), as token ids
        ``[B, max_new_tokens]`` (the action space's width)."""
        if not isinstance(obs, Mapping):
            raise TypeError("CausalLMPolicy.act: obs must be a dict with input_ids, attention_mask")
        width = _action_width(self.action_space)
        ids = obs["input_ids"].long()
        return self.generate(ids, obs["attention_mask"].long(), width, deterministic), None

    # ------------------------------------------------------------------ training
    def evaluate_tokens(
        self,
        prompt_ids: Tensor,
        prompt_mask: Tensor,
        completion_ids: Tensor,
        completion_mask: Tensor,
        model: nn.Module | None = None,
        values: bool = True,
        entropy: bool = True,
    ) -> TokenEvaluation:
        """Log-probabilities, entropies and values of the completions ``[B, T]`` (``model``:
        another network of the same architecture, e.g. the frozen reference)."""
        net = self.model if model is None else model
        ids = torch.cat([prompt_ids, completion_ids], dim=1)
        mask = torch.cat([prompt_mask, completion_mask.to(prompt_mask.dtype)], dim=1)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        want_hidden = values and self.value_head is not None and self.critic is None
        out = net(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=False,
            output_hidden_states=want_hidden,
        )
        start = prompt_ids.shape[1] - 1
        logits = out.logits[:, start:-1].float() / self.temperature
        log_norm = torch.logsumexp(logits, dim=-1)
        chosen = logits.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
        log_prob = chosen - log_norm
        ent = torch.zeros_like(log_prob)
        if entropy:
            probs = torch.softmax(logits, dim=-1)
            ent = log_norm - (probs * logits).sum(-1)
        value = None
        if values and self.value_head is not None:
            if self.critic is not None:
                hidden = self.critic(
                    input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
                ).last_hidden_state
            else:
                hidden = out.hidden_states[-1]
            value = self.value_head(hidden[:, start:-1].to(self.value_head.weight.dtype))
            value = value.squeeze(-1).float()
        return TokenEvaluation(log_prob, ent, value)


def _base_config(model: nn.Module) -> Any:
    """The text config of a (possibly peft-wrapped) transformers model."""
    config = getattr(model, "config", None)
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def _action_width(space: spaces.Space[Any]) -> int:
    shape = getattr(space, "shape", None)
    if not shape:
        raise ValueError(
            f"CausalLMPolicy: the action space must be token ids [max_new_tokens], got {space!r}"
        )
    return int(shape[-1])


def _base_model(model: nn.Module) -> nn.Module:
    """The transformer trunk under a causal-LM head (``model.base_model`` in transformers)."""
    base = getattr(model, "base_model", model)
    inner = getattr(base, "model", None)  # peft: PeftModel.base_model.model is the LM
    if inner is not None and hasattr(inner, "base_model"):
        base = inner.base_model
    return base


def _with_lora(model: nn.Module, lora: Mapping[str, Any]) -> nn.Module:
    """``model`` wrapped with ``peft`` LoRA adapters (``lora``: ``peft.LoraConfig`` fields)."""
    peft = require_module("peft", "LoRA")
    options = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, **dict(lora)}
    options.setdefault("task_type", "CAUSAL_LM")
    return peft.get_peft_model(model, peft.LoraConfig(**options))


__all__ = ["CausalLMPolicy", "TokenEvaluation", "completion_mask"]
