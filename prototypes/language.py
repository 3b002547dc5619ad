"""The language-model prototype: sample completions of prompts, score them, update on loss
terms over the completion tokens (the loop of RLHF-style PPO, GRPO and RLOO).

One iteration:

1. the policy (:class:`~rlkit.policies.CausalLMPolicy`) completes the env's prompts
   (:class:`~rlkit.envs.text.TextVecEnv`; optionally under autocast, ``rollout_amp``);
2. log-probabilities at sampling, values (with a critic) and the frozen reference's
   log-probabilities (when a loss term or the reward model reads them) are computed once;
3. the env's reward (text-only parts) and the agent's reward model (which may read the
   log-probabilities: the KL penalty) score the completions; each part is logged as
   ``reward/<name>``;
4. :meth:`LanguageModelAgent.compute_advantages` (the algorithm) fills advantages and value
   targets; :meth:`~LanguageModelAgent.update` runs ``epochs`` passes of minibatches of whole
   completions, each split into ``grad_accum_steps`` micro-batches whose gradients add up to
   the minibatch's (loss terms see the tokens of a micro-batch flattened ``[N]``; each
   micro-batch's gradient is weighted by its share of the minibatch's tokens, so the result is
   the token mean over the minibatch whatever the split), with autocast when ``use_amp``.

``global_step`` counts completions. Subclasses (the agents) give :meth:`loss_terms` and
:meth:`compute_advantages`, and say whether they need a value head (:attr:`value_head`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor, nn

from rlkit.checkpoint import CheckpointError, find_checkpoint, read_tensors, split_prefix
from rlkit.config.rules import SEED, OneOf, Range, Rule, Satisfies, check_arguments, count, positive
from rlkit.configurable import build_primitive
from rlkit.envs.make import TEXT_PREFIX, env_spec_of
from rlkit.losses import LossPlan, LossTerm
from rlkit.policies.causal_lm import CausalLMPolicy, completion_mask
from rlkit.reward_models.base import RewardModel, TextBatch, completion_totals
from rlkit.storages.completions import CompletionBatch, last_token_reward, masked_mean

from . import evaluation
from .base import AGENTS, MODEL_FILE, Agent, AgentConfig
from .state import FlatOptimizer

#: the directory a checkpoint keeps the model's config and tokenizer in (no weights: those
#: are in ``model.safetensors``), so a checkpoint loads without the original model files.
LM_DIR = "lm"
AMP_DTYPES = ("bfloat16", "float16")


@dataclasses.dataclass
class LanguageModelConfig(AgentConfig):
    """Hyperparameters of every language-model agent."""

    #: Adam learning rate.
    lr: float = 1e-5
    #: Adam's epsilon.
    adam_eps: float = 1e-8
    #: clip the gradient norm of each step; None disables clipping.
    max_grad_norm: float | None = 1.0
    #: passes over each batch of completions.
    epochs: int = 1
    #: completions per gradient step; None: the whole batch in one step.
    minibatch_size: int | None = None
    #: micro-batches per minibatch whose gradients are accumulated (memory, not maths).
    grad_accum_steps: int = 1
    #: policy-ratio clip of the clipped surrogate.
    clip_range: float = 0.2
    #: sampling temperature (log-probabilities are those of the tempered distribution).
    temperature: float = 1.0
    #: sample from the ``top_k`` most likely tokens only; None: all.
    top_k: int | None = None
    #: nucleus sampling: the smallest set of tokens with this much probability.
    top_p: float = 1.0
    #: LoRA adapters (``peft.LoraConfig`` fields, e.g. ``{"r": 8}``); None trains every weight.
    lora: dict[str, Any] | None = None
    #: automatic mixed precision for the training forward passes (``amp_dtype``).
    use_amp: bool = False
    #: also generate the rollouts under autocast (half-precision generation).
    rollout_amp: bool = False
    #: autocast dtype: "bfloat16" (CPUs, Ampere+ GPUs) or "float16" (with a gradient scaler).
    amp_dtype: str = "bfloat16"

    rules: ClassVar[dict[str, Rule]] = {
        "lr": positive(),
        "adam_eps": positive(),
        "max_grad_norm": positive(none=True),
        "epochs": count(integer=True),
        "minibatch_size": count(integer=True, none=True),
        "grad_accum_steps": count(integer=True),
        "clip_range": positive(),
        "temperature": positive(),
        "top_k": count(integer=True, none=True),
        "top_p": Range(0, 1, low_open=True),
        "lora": Satisfies(
            lambda v: isinstance(v, Mapping), "a dict of peft.LoraConfig fields", none=True
        ),
        "amp_dtype": OneOf(AMP_DTYPES),
    }


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``scale`` (a micro-batch's share)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    """``x`` whose gradient is multiplied by ``scale`` (unchanged value)."""
    return x if scale == 1.0 else _ScaleGrad.apply(x, scale)


_ZERO = torch.zeros(())


class AccumulatedLoss:
    """The loss of one minibatch as micro-batches: :meth:`backward` runs each micro-batch's
    forward pass and backward pass in turn (so only one micro-batch's activations live at a
    time) and the gradients add up to the minibatch's. Logged values are token-weighted means."""

    def __init__(self, agent: LanguageModelAgent, minibatch: CompletionBatch) -> None:
        self.agent = agent
        self.minibatch = minibatch
        self.values: dict[str, Tensor] = {}
        self.metrics: dict[str, Tensor] = {}
        self._done = False

    def backward(self) -> None:
        if self._done:
            raise RuntimeError("AccumulatedLoss.backward: this loss was already backpropagated")
        self._done = True
        agent, mb = self.agent, self.minibatch
        total_tokens = float(mb.completion_mask.sum().clamp(min=1))
        parts = agent.config.grad_accum_steps
        size = max(1, -(-len(mb) // parts))
        rows = torch.arange(len(mb), device=mb.completion_ids.device)
        for start in range(0, len(mb), size):
            micro = mb.select(rows[start : start + size])
            share = float(micro.completion_mask.sum()) / total_tokens
            if share == 0.0:
                continue
            with agent.precision():
                inputs = agent.loss_inputs(micro, share)
            loss = agent.plan(inputs, diagnostics=True)
            agent.backward(loss)
            for key, value in loss.values.items():
                self.values[key] = self.values.get(key, _ZERO) + share * value.float()
            for key, value in loss.metrics.items():
                self.metrics[key] = self.metrics.get(key, _ZERO) + share * value.float()

    @property
    def total(self) -> Tensor:
        weights = {t.name: t.coef for t in self.agent.plan.terms}
        return sum((weights.get(k, 1.0) * v for k, v in self.values.items()), torch.zeros(()))

    def __float__(self) -> float:
        return float(self.total)


class LanguageModelAgent(Agent):
    """Base of the language-model agents (see the module doc).

    ``env``: a :class:`~rlkit.envs.text.TextVecEnv` (or any vector env with its ``last_batch``
    and token-id spaces). ``model``: a local directory or Hugging Face model name to build the
    default :class:`~rlkit.policies.CausalLMPolicy` from; or ``policy=`` a built one (object,
    id or spec). ``reward_model``: the agent's reward model (object, registered id or spec),
    added to the env's reward; parts that read log-probabilities (the KL penalty) belong here.
    """

    Config = LanguageModelConfig
    config: LanguageModelConfig
    observation_spaces = (spaces.Dict,)
    action_spaces = (spaces.MultiDiscrete,)
    policy_parts = ("model",)
    primitive_arguments = ("model", "reward_model")
    hooks = (
        "clip_and_step",
        "new_optimizer",
        "loss_terms",
        "compute_advantages",
        "loss_inputs",
        "rewards",
        "make_kl_penalty",
    )
    #: the value head the default policy gets: "none", "shared" or "separate".
    value_head: ClassVar[str] = "none"
    #: the smallest group size the algorithm works with (GRPO and RLOO compare completions of
    #: one prompt: 2).
    min_group_size: ClassVar[int] = 1

    policy: CausalLMPolicy

    def __init__(
        self,
        env: VectorEnv,
        config: Any = None,
        model: str | None = None,
        policy: Any = None,
        reward_model: Any = None,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(env, config, **hyperparameters)
        name = type(self).__name__
        cfg = self.config
        if cfg.normalize_obs:
            raise ValueError(f"{name}: normalize_obs must be False (observations are token ids)")
        if not hasattr(env, "last_batch"):
            raise TypeError(
                f"{name}: env must be a text env that keeps the texts of its last step "
                f"(rlkit.envs.text.TextVecEnv), got {type(env).__name__}"
            )
        self.group_size = int(getattr(env, "group_size", 1))
        #: tokens per completion (the action space's width).
        self.max_new_tokens = int((self.action_space.shape or (1,))[-1])
        if self.group_size < self.min_group_size:
            raise ValueError(
                f"{name}: the env's group_size must be >= {self.min_group_size} (completions of "
                f"one prompt are compared), got {self.group_size}"
            )
        if (policy is None) == (model is None):
            raise ValueError(
                f"{name}: pass exactly one of model= (a local directory or model name) and "
                f"policy= (a CausalLMPolicy, id or spec)"
            )
        if policy is None:
            policy = CausalLMPolicy(
                self.observation_space,
                self.action_space,
                model=str(model),
                value_head=self.value_head,
                lora=cfg.lora,
                temperature=cfg.temperature,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
            )
        built = self.build_primitive(
            "policy", policy, CausalLMPolicy,
            observation_space=self.observation_space, action_space=self.action_space,
        )  # fmt: skip
        assert built is not None
        if self.value_head != "none" and built.value_head is None:
            raise ValueError(
                f"{name}: the policy needs a value head (value_head='shared' or 'separate')"
            )
        self.policy = built
        self.add_module("policy", self.policy)
        self.reward_model: RewardModel | None = build_primitive(
            "reward_model", reward_model, RewardModel, name
        )
        if self.reward_model is not None:
            self.add_module("reward_model", self.reward_model)
        #: the KL penalty against the reference in the reward (token-level PPO, RLOO), or None.
        self.kl_penalty: RewardModel | None = self.make_kl_penalty()
        if self.kl_penalty is not None:
            self.add_module("kl_penalty", self.kl_penalty)
        terms = self.loss_terms()
        self.terms = nn.ModuleList(terms)
        self.plan = LossPlan(terms)
        self.record_loss_terms(terms)
        self.reference: nn.Module | None = None
        self._uses_reference = self.needs_reference()
        if self._uses_reference:
            self.reference = self.policy.frozen_reference()
            if self.reference is not None:
                self.add_module("reference", self.reference)
        self.optimizer: FlatOptimizer = self.add_optimizer("optimizer", [self.policy])
        self._scaler: torch.amp.GradScaler | None = None
        if cfg.use_amp and cfg.amp_dtype == "float16":
            self._scaler = torch.amp.GradScaler(self.device.type)

    # ------------------------------------------------------------------ algorithm contract
    @abstractmethod
    def loss_terms(self) -> list[LossTerm]:
        """The algorithm's loss terms over completion tokens (hook)."""

    @abstractmethod
    def compute_advantages(self, rollout: CompletionBatch) -> None:
        """Fill ``rollout.advantage`` (``[B, T]`` or ``[B]``) and, with a critic,
        ``rollout.returns`` (hook: the algorithm's estimator)."""

    def make_kl_penalty(self) -> RewardModel | None:
        """The KL penalty the algorithm adds to the reward (hook; default None), e.g.
        ``ReferenceKLPenalty`` (``"kl_penalty"``) with the config's coefficient."""
        return None

    def needs_reference(self) -> bool:
        """Whether the frozen reference's log-probabilities are computed: a weighted loss term,
        the KL penalty or the reward model reads them."""
        return self.plan.weights("ref_log_prob") or any(
            model is not None and "ref_log_probs" in model.required_fields()
            for model in (self.reward_model, self.kl_penalty)
        )

    # ------------------------------------------------------------------ precision
    def precision(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for the training forward passes (``use_amp``), else nothing."""
        if not self.config.use_amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, self.config.amp_dtype))

    def rollout_precision(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for generation (``rollout_amp``), else nothing."""
        if not self.config.rollout_amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, self.config.amp_dtype))

    def single_pass(self) -> bool:
        """Whether the update is one gradient step over the whole batch with no critic and no
        reward reading the sampling log-probabilities: the training forward pass then gives
        the sampling probabilities too (detached), and the separate no-grad pass over the
        completions is skipped (as TRL does), so iterations cost one forward pass less."""
        cfg = self.config
        one_step = cfg.epochs == 1 and (cfg.minibatch_size or self.num_envs) >= self.num_envs
        reads = any(
            model is not None and "log_probs" in model.required_fields()
            for model in (self.reward_model, self.kl_penalty)
        )
        return one_step and self.value_head == "none" and not reads

    # ------------------------------------------------------------------ collection
    def has_env_position(self) -> bool:
        """A resumed run starts at new prompts (the prompt order is not replayed)."""
        return False

    @torch.no_grad()
    def reference_log_probs(self, rollout: CompletionBatch) -> Tensor:
        """Log-probabilities of the completions under the frozen reference ``[B, T]``."""
        args = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                rollout.completion_mask)  # fmt: skip
        if self.reference is None:  # LoRA: the base model with the adapters off
            with self.policy.reference_mode():
                return self.policy.evaluate_tokens(*args, values=False, entropy=False).log_prob
        return self.policy.evaluate_tokens(
            *args, model=self.reference, values=False, entropy=False
        ).log_prob

    def rewards(
        self, rollout: CompletionBatch, text: TextBatch, env_reward: Tensor
    ) -> dict[str, Tensor]:
        """The reward parts, ``{name: [B] or [B, T]}`` (hook): the env's (``"env"``), the
        agent's reward model's and the KL penalty's."""
        parts: dict[str, Tensor] = {"env": env_reward}
        for model in (self.reward_model, self.kl_penalty):
            if model is not None:
                for name, part in model.score_parts(text).items():
                    if name in parts:
                        raise ValueError(
                            f"{type(self).__name__}: two reward parts are named {name!r}; "
                            "give the reward model's parts other names"
                        )
                    parts[name] = part
        return parts

    def iteration(self) -> dict[str, float]:
        if self._obs is None:
            self._obs = self._reset_env()
        obs = self._obs
        assert isinstance(obs, dict)
        prompt_ids, prompt_mask = obs["input_ids"].long(), obs["attention_mask"].long()
        width = self.max_new_tokens
        self.policy.eval()
        with self.rollout_precision():
            ids = self.policy.generate(prompt_ids, prompt_mask, width)
        mask = completion_mask(ids, self.policy.eos_token_id)
        rollout = CompletionBatch(
            prompt_ids, prompt_mask, ids, mask, None,
            reward=torch.zeros(len(ids), device=self.device),
        )  # fmt: skip
        entropy = None
        if not self.single_pass():
            with torch.no_grad(), self.precision():
                old = self.policy.evaluate_tokens(
                    prompt_ids, prompt_mask, ids, mask, values=self.value_head != "none",
                    entropy=True,
                )  # fmt: skip
            rollout.old_log_prob = old.log_prob.float()
            rollout.old_value = None if old.value is None else old.value.float()
            entropy = old.entropy
        if self._uses_reference:
            rollout.ref_log_prob = self.reference_log_probs(rollout).float()
        next_obs, env_reward, _, _, info = self.env.step(ids.cpu().numpy())
        last = getattr(self.env, "last_batch", None)
        if not isinstance(last, TextBatch):
            raise TypeError(f"{type(self).__name__}: the env kept no TextBatch of its last step")
        text = dataclasses.replace(
            last, completion_ids=ids, completion_mask=mask, log_probs=rollout.old_log_prob,
            ref_log_probs=rollout.ref_log_prob,
        )  # fmt: skip
        reward_env = torch.as_tensor(
            np.asarray(env_reward), dtype=torch.float32, device=self.device
        )
        with torch.no_grad():
            parts = self.rewards(rollout, text, reward_env)
        metrics = self._reward_metrics(parts, info, mask)
        rollout.reward = sum(
            (completion_totals(p.to(self.device), mask) for p in parts.values()),
            torch.zeros(len(ids), device=self.device),
        )
        rollout.token_reward = sum(
            (p.to(self.device) * mask if p.ndim == 2 else last_token_reward(p.to(self.device), mask)
             for p in parts.values()),
            torch.zeros(mask.shape, device=self.device),
        )  # fmt: skip
        self.compute_advantages(rollout)
        self.policy.train()
        metrics.update(self.update(rollout))
        for model in (self.reward_model, self.kl_penalty):
            if model is not None:
                for key, value in model.update(text).items():
                    metrics[f"reward_model/{key}"] = float(value)
        if rollout.ref_log_prob is not None and rollout.old_log_prob is not None:
            kl = ((rollout.old_log_prob - rollout.ref_log_prob) * mask).sum(dim=1)
            metrics["kl"] = float(kl.mean())
        metrics["reward/total"] = float(rollout.reward.mean())
        metrics["completion/length"] = float(mask.sum(dim=1).float().mean())
        if entropy is not None:
            metrics["completion/entropy"] = float(masked_mean(entropy.float(), mask))
        self._obs = self.obs_to_tensor(next_obs)
        self.global_step += len(ids)
        self.num_updates += 1
        return metrics

    def _reward_metrics(
        self, parts: Mapping[str, Tensor], info: Mapping[str, Any], mask: Tensor
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in info.items():
            if key.startswith("reward/"):
                out[key] = float(np.mean(value))
        env_scores = getattr(self.env, "reward_model", None) is not None
        for name, part in parts.items():
            if name != "env" or (env_scores and not out):
                out[f"reward/{name}"] = float(completion_totals(part, mask).float().mean())
        return out

    # ------------------------------------------------------------------ learning
    def loss_inputs(self, micro: CompletionBatch, share: float) -> dict[str, Tensor]:
        """The loss terms' inputs over the micro-batch's completion tokens, flattened ``[N]``
        (hook); ``share`` scales the gradients of the differentiable ones."""
        plan = self.plan
        wants_value = self.policy.value_head is not None and plan.weights("value")
        ev = self.policy.evaluate_tokens(
            micro.prompt_ids, micro.prompt_mask, micro.completion_ids, micro.completion_mask,
            values=wants_value, entropy=True,
        )  # fmt: skip
        m = micro.completion_mask
        x: dict[str, Tensor] = {
            "log_prob": scale_grad(ev.log_prob, share)[m],
            # one pass over the batch (single_pass): the sampling probabilities are these
            "old_log_prob": (
                ev.log_prob.detach() if micro.old_log_prob is None else micro.old_log_prob
            )[m],
            "entropy": scale_grad(ev.entropy, share)[m],
        }
        if micro.advantage is not None:
            adv = micro.advantage
            x["advantage"] = (adv.unsqueeze(1).expand_as(m) if adv.ndim == 1 else adv)[m]
        if micro.ref_log_prob is not None:
            x["ref_log_prob"] = micro.ref_log_prob[m]
        if wants_value and ev.value is not None:
            x["value"] = scale_grad(ev.value, share)[m]
            if micro.old_value is not None:
                x["old_value"] = micro.old_value[m]
            if micro.returns is not None:
                x["return"] = micro.returns[m]
        return x

    def backward(self, loss: Any) -> None:
        """Backpropagate one micro-batch's loss (scaled by the fp16 gradient scaler)."""
        if self._scaler is None:
            loss.backward()
        else:
            self._scaler.scale(loss.total).backward()

    def clip_and_step(self, loss: Any, optimizer: FlatOptimizer | None = None) -> Tensor | None:
        """Zero, backpropagate every micro-batch, clip and step (with fp16 AMP: unscale before
        the clip; a step whose gradients overflowed is skipped by the scaler)."""
        if optimizer is None:
            raise TypeError(f"{type(self).__name__}.clip_and_step needs the optimizer to step")
        scaler = self._scaler
        if scaler is None:
            return super().clip_and_step(loss, optimizer)
        optimizer.zero_grad()
        loss.backward()
        scaler.unscale_(optimizer.optimizer)
        norm = optimizer.clip()
        scaler.step(optimizer.optimizer)
        scaler.update()
        return norm

    def update(self, rollout: CompletionBatch) -> dict[str, float]:
        """``epochs`` passes of minibatches of whole completions; returns the last pass's
        token-weighted loss values (``loss/<term>``) and diagnostics."""
        cfg = self.config
        size = cfg.minibatch_size or len(rollout)
        sums: dict[str, float] = {}
        count_ = 0
        for epoch in range(cfg.epochs):
            last_epoch = epoch == cfg.epochs - 1
            for minibatch in rollout.minibatches(size, self._generator):
                loss = AccumulatedLoss(self, minibatch)
                norm = self.clip_and_step(loss, self.optimizer)
                if last_epoch:
                    count_ += 1
                    for key, value in loss.values.items():
                        sums[f"loss/{key}"] = sums.get(f"loss/{key}", 0.0) + float(value)
                    for key, value in loss.metrics.items():
                        sums[f"train/{key}"] = sums.get(f"train/{key}", 0.0) + float(value)
                    if norm is not None:
                        sums["train/grad_norm"] = sums.get("train/grad_norm", 0.0) + float(norm)
        return {k: v / max(count_, 1) for k, v in sums.items()}

    # ------------------------------------------------------------------ chat and checkpoints
    def chat(
        self,
        text: str,
        history: list[dict[str, str]] | None = None,
        max_new_tokens: int | None = None,
        deterministic: bool = False,
    ) -> tuple[str, list[dict[str, str]]]:
        """The policy's reply to ``text`` after ``history`` (``[{"role", "content"}, ...]``)
        and the history with both turns added."""
        from rlkit.lm.chat import reply

        width = max_new_tokens or self.max_new_tokens
        prompt = (
            self.observation_space["input_ids"]
            if isinstance(self.observation_space, spaces.Dict)
            else None
        )
        prompt_width = int(prompt.shape[-1]) if prompt is not None and prompt.shape else 512
        return reply(self.policy, text, history, width, deterministic, prompt_width)

    def evaluate(
        self,
        episodes: int = 20,
        env: VectorEnv | None = None,
        deterministic: bool = True,
        seed: int | None = None,
        max_episode_steps: int | None = None,
    ) -> dict[str, float]:
        """Complete ``episodes`` evaluation prompts (greedy when ``deterministic``) and score
        each completion with the env's reward and the agent's reward model (not the algorithm's
        KL penalty, which measures training drift): ``return_mean``/``return_std`` of the
        total, ``reward/<part>`` means, ``length_mean``/``length_std`` in tokens, ``episodes``
        and ``truncated`` (completions cut at ``max_new_tokens``). ``env`` defaults to a fresh
        copy of the training env (seed: training seed + 10_000); ``max_episode_steps`` is
        accepted for the common signature (an episode is one completion)."""
        check_arguments(
            f"{type(self).__name__}.evaluate",
            {"episodes": episodes, "seed": seed},
            {"episodes": count(integer=True), "seed": SEED},
        )
        own_env = env is None
        if env is None:
            fresh = getattr(self.env, "fresh", None)
            if env_spec_of(self.env) is None and callable(fresh):  # a text env built directly
                spec_seed = self.config.seed if self.config.seed is not None else 0
                seed = spec_seed + 10_000 if seed is None else seed
                env = fresh(min(episodes, self.num_envs), seed)
            else:
                env, seed = evaluation.evaluation_env(self, episodes, seed)
        try:
            return self._evaluate(env, episodes, deterministic, seed)
        finally:
            if own_env:
                env.close()

    @torch.no_grad()
    def _evaluate(
        self, env: VectorEnv, episodes: int, deterministic: bool, seed: int | None
    ) -> dict[str, float]:
        obs, _ = env.reset(seed=seed)
        totals: list[Tensor] = []
        lengths: list[Tensor] = []
        parts: dict[str, list[Tensor]] = {}
        cut = 0
        was_training = self.policy.training
        self.policy.eval()
        try:
            while sum(len(t) for t in totals) < episodes:
                o = self.obs_to_tensor(obs)
                assert isinstance(o, dict)
                prompt_ids, prompt_mask = o["input_ids"].long(), o["attention_mask"].long()
                ids = self.policy.generate(
                    prompt_ids, prompt_mask, self.max_new_tokens, deterministic
                )
                mask = completion_mask(ids, self.policy.eos_token_id)
                obs, env_reward, _, _, _ = env.step(ids.cpu().numpy())
                last = getattr(env, "last_batch", None)
                if not isinstance(last, TextBatch):
                    raise TypeError(f"{type(self).__name__}.evaluate: env= must be a text env")
                text = dataclasses.replace(last, completion_ids=ids, completion_mask=mask)
                scored = {"env": torch.as_tensor(np.asarray(env_reward), dtype=torch.float32)}
                if self.reward_model is not None:
                    fields = self.reward_model.required_fields()
                    if "log_probs" in fields or "ref_log_probs" in fields:
                        batch = CompletionBatch(prompt_ids, prompt_mask, ids, mask, None,
                                                reward=torch.zeros(len(ids)))  # fmt: skip
                        text.log_probs = self.policy.evaluate_tokens(
                            prompt_ids, prompt_mask, ids, mask, values=False, entropy=False
                        ).log_prob
                        text.ref_log_probs = self.reference_log_probs(batch)
                    scored.update(self.reward_model.score_parts(text))
                total = torch.zeros(len(ids))
                for name, part in scored.items():
                    value = completion_totals(part.float().cpu(), mask.cpu())
                    parts.setdefault(name, []).append(value)
                    total = total + value
                totals.append(total)
                lengths.append(mask.sum(dim=1).float().cpu())
                cut += int((mask[:, -1] & (ids[:, -1] != self.policy.eos_token_id)).sum())
        finally:
            self.policy.train(was_training)
        total_all = torch.cat(totals)[:episodes]
        length_all = torch.cat(lengths)[:episodes]
        out = {
            "return_mean": float(total_all.mean()),
            "return_std": float(total_all.std(unbiased=False)),
            "length_mean": float(length_all.mean()),
            "length_std": float(length_all.std(unbiased=False)),
            "episodes": float(len(total_all)),
            "truncated": float(min(cut, episodes)),
        }
        for name, values in parts.items():
            out[f"reward/{name}"] = float(torch.cat(values)[:episodes].mean())
        return out

    def primitives(self) -> dict[str, Any]:
        """The policy and the agent's reward model (recorded in ``config.json``)."""
        return {"policy": self.policy, "reward_model": self.reward_model}

    def acting_path(self) -> Any:
        """Refused: a language model completes prompts token by token, which no single traced
        graph holds; :meth:`CausalLMPolicy.save_pretrained` writes the model for ONNX and
        serving tools."""
        raise TypeError(
            f"{type(self).__name__}: a language-model policy is not exported as one acting graph; "
            "save it as a Hugging Face model with agent.policy.save_pretrained(DIR) (safetensors), "
            "which ONNX and serving tools load"
        )

    def checkpoint_files(self) -> dict[str, Any]:
        """The model's config and tokenizer (``lm/``), so the checkpoint loads on its own."""
        return {LM_DIR: self.policy.save_architecture}

    @classmethod
    def load(
        cls, path: str | Path, env: VectorEnv | None = None, trust_code: bool = False,
        **overrides: Any,
    ) -> Any:  # fmt: skip
        """As :meth:`Agent.load`; the default policy is rebuilt from the checkpoint's ``lm/``
        directory (the weights come from the checkpoint). ``env`` is required (text envs are
        not rebuilt from checkpoints)."""
        directory = _checkpoint_directory(path)
        if env is None and not _records_text_env(directory):
            raise CheckpointError(
                f"{cls.__name__}.load: pass env= (a TextVecEnv); this checkpoint's env was not "
                "made from a prompt file by make_vec_env('text:...') (`rlkit chat` needs none; "
                "to export the model use "
                "rlkit.prototypes.language.load_lm_policy(PATH).save_pretrained(DIR))"
            )
        if (directory / LM_DIR).is_dir() and "policy" not in overrides:
            overrides.setdefault("model", str(directory / LM_DIR))
        return super().load(directory, env=env, trust_code=trust_code, **overrides)


def _records_text_env(directory: Path) -> bool:
    import json

    config = json.loads((directory / "config.json").read_text())
    env = config.get("env") or {}
    return isinstance(env.get("id"), str) and env["id"].startswith(TEXT_PREFIX)


def _checkpoint_directory(path: str | Path) -> Path:
    return Path(find_checkpoint(path))


def load_lm_policy(path: str | Path, device: str = "cpu") -> CausalLMPolicy:
    """The policy of a language-model checkpoint (or run directory), without its env or
    optimizer state: what ``rlkit chat`` talks to. Nothing is imported or unpickled."""
    import json

    from rlkit.configurable import from_json

    directory = _checkpoint_directory(path)
    config = json.loads((directory / "config.json").read_text())
    spec = (config.get("primitives") or {}).get("policy")
    if not isinstance(spec, dict) or spec.get("id") != "causal_lm":
        raise CheckpointError(f"checkpoint {directory} holds no language-model policy")
    if not (directory / LM_DIR).is_dir():
        raise CheckpointError(f"checkpoint {directory} has no {LM_DIR}/ directory")
    spec = {**spec, "model": str(directory / LM_DIR), "tokenizer": None}
    policy = from_json(spec)
    assert isinstance(policy, CausalLMPolicy)
    weights = split_prefix(read_tensors(directory, MODEL_FILE), "policy")
    policy.load_state_dict(weights)
    policy.to(device).eval()
    return policy


def lm_agents() -> Iterator[str]:
    """Ids of the registered language-model agents."""
    for agent_id in AGENTS:
        cls = AGENTS.get(agent_id)
        if issubclass(cls, LanguageModelAgent):
            yield agent_id


__all__ = [
    "AccumulatedLoss",
    "LanguageModelAgent",
    "LanguageModelConfig",
    "load_lm_policy",
    "scale_grad",
]
