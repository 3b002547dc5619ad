"""Text environments for language-model RL (extra ``lm`` for the tokenizer).

- :class:`PromptDataset`: prompts (or dialogue histories) with optional reference texts and
  other fields, from a list, a local JSONL/JSON/CSV/TXT file or a Hugging Face ``datasets``
  dataset already on disk (``load_from_disk``); nothing is downloaded.
- :class:`TextVecEnv`: the sequence-level view, one completion per episode. Each step takes
  ``num_envs = num_prompts * group_size`` completions (token ids) for the prompts of the last
  observation; every prompt is shown to ``group_size`` consecutive rows (GRPO and RLOO compare
  completions of the same prompt). Every step ends every episode, and the observation it
  returns is already the next prompts (gymnasium's same-step autoreset; the finished prompts
  are in ``info["prompt"]``).
- :class:`DialogueVecEnv`: multi-turn dialogues: the policy's reply joins the history, then the
  user's next scripted turn, until the script ends.
- :class:`TokenEnv`: the token-level view, one token per step, for any discrete-action agent.

Rewards: an env may hold a :class:`~rlkit.reward_models.RewardModel` that reads text only
(rules, metrics, a classifier); parts that need the policy (the KL penalty against the
reference) belong to the agent, which adds its own reward model. Without one the env's reward
is 0. A dialogue record holds ``messages`` (``[{"role", "content"}, ...]``, ending with the
user's turn): the prompt is the history formatted by the tokenizer's chat template or, when it
has none, :data:`PLAIN_CHAT_FORMAT`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from rlkit.configurable import build_primitive
from rlkit.lm.hf import load_tokenizer, require_module
from rlkit.reward_models.base import RewardModel, TextBatch

#: how a dialogue turn is written when the tokenizer has no chat template.
PLAIN_CHAT_FORMAT = "{role} : {content}"
#: the role that answers (the policy) in dialogues.
ASSISTANT = "assistant"


def format_dialogue(messages: Sequence[Mapping[str, str]], tokenizer: Any) -> str:
    """The prompt for the assistant's next turn after ``messages``: the tokenizer's chat
    template with the generation prompt, or plain ``role : content`` turns and ``assistant :``."""
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise ValueError(
                f"dialogue message {i} must be a dict with 'role' and 'content', got {message!r}"
            )
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        return str(text)
    turns = [PLAIN_CHAT_FORMAT.format(role=m["role"], content=m["content"]) for m in messages]
    return " ".join([*turns, PLAIN_CHAT_FORMAT.format(role=ASSISTANT, content="").rstrip()])


class PromptDataset(Sequence[dict[str, Any]]):
    """Records with a ``prompt`` (text) or ``messages`` (a dialogue), an optional ``reference``
    (a text or a list of texts, for metrics) and any other fields (given to reward models as
    ``metadata``)."""

    def __init__(
        self,
        records: Iterable[Mapping[str, Any] | str],
        prompt_key: str = "prompt",
        reference_key: str = "reference",
    ) -> None:
        self.records: list[dict[str, Any]] = []
        for i, record in enumerate(records):
            if isinstance(record, str):
                record = {prompt_key: record}
            if not isinstance(record, Mapping):
                kind = type(record).__name__
                raise ValueError(f"PromptDataset: record {i} must be a text or a dict, got {kind}")
            if prompt_key not in record and "messages" not in record:
                raise ValueError(
                    f"PromptDataset: record {i} has neither {prompt_key!r} nor 'messages' "
                    f"(its keys: {sorted(record)})"
                )
            self.records.append(dict(record))
        if not self.records:
            raise ValueError("PromptDataset: no prompts")
        self.prompt_key = prompt_key
        self.reference_key = reference_key

    @classmethod
    def load(cls, source: str | Path | Iterable[Any] | PromptDataset, **keys: str) -> PromptDataset:
        """A dataset from a list, a ``.jsonl``/``.json``/``.csv``/``.txt`` file (one prompt per
        line), or a directory written by ``datasets.Dataset.save_to_disk``."""
        if isinstance(source, PromptDataset):
            return source
        if not isinstance(source, str | Path):
            return cls(source, **keys)
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"PromptDataset: no file or directory {str(path)!r}")
        if path.is_dir():
            datasets = require_module("datasets", "prompt datasets saved with datasets")
            data = datasets.load_from_disk(str(path))
            return cls((dict(row) for row in data), **keys)
        suffix = path.suffix.lower()
        with path.open(encoding="utf-8") as f:
            if suffix == ".jsonl":
                rows: list[Any] = [json.loads(line) for line in f if line.strip()]
            elif suffix == ".json":
                rows = json.load(f)
            elif suffix == ".csv":
                rows = list(csv.DictReader(f))
            elif suffix == ".txt":
                rows = [line.rstrip("\n") for line in f if line.strip()]
            else:
                raise ValueError(
                    f"PromptDataset: file {str(path)!r} must end in .jsonl, .json, .csv or .txt"
                )
        return cls(rows, **keys)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        return self.records[index]

    def text(self, index: int, tokenizer: Any) -> str:
        """The prompt text of record ``index`` (a dialogue formatted for ``tokenizer``)."""
        record = self.records[index]
        if self.prompt_key in record:
            return str(record[self.prompt_key])
        return format_dialogue(record["messages"], tokenizer)

    def references(self, index: int) -> list[str]:
        """The reference texts of record ``index`` (empty when it has none)."""
        value = self.records[index].get(self.reference_key)
        if value is None:
            return []
        return [str(value)] if isinstance(value, str) else [str(v) for v in value]

    def metadata(self, index: int) -> dict[str, Any]:
        """The record's other fields."""
        skip = {self.prompt_key, self.reference_key, "messages"}
        return {k: v for k, v in self.records[index].items() if k not in skip}


def _tokenizer(tokenizer: Any) -> Any:
    return load_tokenizer(str(tokenizer)) if isinstance(tokenizer, str | Path) else tokenizer


def _check_count(name: str, value: Any, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _reward_model(value: Any, owner: str) -> RewardModel | None:
    """``value`` (a reward model, registered id, spec or None) built, and checked to read
    text only."""
    reward_model = build_primitive("reward_model", value, RewardModel, owner)
    if reward_model is None:
        return None
    policy_fields = {"log_probs", "ref_log_probs"} & set(reward_model.required_fields())
    if policy_fields:
        raise ValueError(
            f"{owner}: the env's reward model reads {sorted(policy_fields)}, which only the agent "
            "has; give it to the agent (reward_model=...) instead"
        )
    return reward_model


class TextVecEnv(VectorEnv):
    """The sequence-level text env (see the module doc).

    ``tokenizer``: a tokenizer object, or a local directory / Hugging Face name to load one
    from. Prompts longer than ``max_prompt_tokens`` tokens keep their last tokens. Prompts are
    drawn in a shuffled order (``seed``), every prompt once per pass.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        prompts: str | Path | Iterable[Any] | PromptDataset,
        tokenizer: Any,
        num_prompts: int = 8,
        group_size: int = 1,
        max_prompt_tokens: int = 64,
        max_new_tokens: int = 32,
        reward_model: RewardModel | str | Mapping[str, Any] | None = None,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> None:
        owner = "TextVecEnv"
        self.num_prompts = _check_count("num_prompts", num_prompts, owner)
        self.group_size = _check_count("group_size", group_size, owner)
        self.max_prompt_tokens = _check_count("max_prompt_tokens", max_prompt_tokens, owner)
        self.max_new_tokens = _check_count("max_new_tokens", max_new_tokens, owner)
        reward_model = _reward_model(reward_model, owner)
        self.dataset = PromptDataset.load(prompts)
        self.tokenizer = _tokenizer(tokenizer)
        self.reward_model = reward_model
        self.shuffle = bool(shuffle)
        self.metadata = dict(type(self).metadata)  # per env: make_vec_env records its spec here
        self.num_envs = self.num_prompts * self.group_size
        vocab = len(self.tokenizer)
        width = self.max_prompt_tokens
        self.single_observation_space = spaces.Dict(
            {
                "input_ids": spaces.Box(0, vocab - 1, (width,), np.int64),
                "attention_mask": spaces.Box(0, 1, (width,), np.int64),
            }
        )
        self.single_action_space = spaces.MultiDiscrete(np.full(self.max_new_tokens, vocab))
        self.observation_space = spaces.Dict(
            {
                "input_ids": spaces.Box(0, vocab - 1, (self.num_envs, width), np.int64),
                "attention_mask": spaces.Box(0, 1, (self.num_envs, width), np.int64),
            }
        )
        self.action_space = spaces.MultiDiscrete(
            np.full((self.num_envs, self.max_new_tokens), vocab)
        )
        self._rng = np.random.default_rng(seed)
        self._order: list[int] = []
        self._current: list[int] = []
        self.last_batch: TextBatch | None = None

    def fresh(self, num_prompts: int, seed: int | None = None) -> TextVecEnv:
        """A new env of the same class over the same prompts, tokenizer and reward model, with
        one row per prompt (what evaluation completes), so this one's prompt order is left
        alone."""
        return type(self)(
            self.dataset,
            self.tokenizer,
            num_prompts=num_prompts,
            max_prompt_tokens=self.max_prompt_tokens,
            max_new_tokens=self.max_new_tokens,
            reward_model=self.reward_model,
            seed=seed,
        )

    # ------------------------------------------------------------------ prompts
    def _draw_one(self) -> int:
        """The next record of the shuffled pass (a new pass when one ends)."""
        if not self._order:
            order = np.arange(len(self.dataset))
            if self.shuffle:
                self._rng.shuffle(order)
            self._order = order.tolist()[::-1]
        return int(self._order.pop())

    def _next_indices(self) -> list[int]:
        out = [self._draw_one() for _ in range(self.num_prompts)]
        return [i for i in out for _ in range(self.group_size)]

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Left-padded ``input_ids`` and ``attention_mask`` ``[len(texts), max_prompt_tokens]``."""
        width = self.max_prompt_tokens
        ids = np.full((len(texts), width), int(self.tokenizer.pad_token_id), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"][-width:]
            if not tokens:
                tokens = [int(self.tokenizer.bos_token_id or self.tokenizer.eos_token_id)]
            ids[row, width - len(tokens) :] = tokens
            mask[row, width - len(tokens) :] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def prompt_texts(self) -> list[str]:
        """The prompt each row answers now (hook: a dialogue env formats its history)."""
        return [self.dataset.text(i, self.tokenizer) for i in self._current]

    def row_references(self) -> list[list[str]]:
        """The reference texts of each row's current prompt (hook)."""
        return [self.dataset.references(i) for i in self._current]

    def row_metadata(self) -> list[dict[str, Any]]:
        """The dataset fields of each row's current prompt (hook)."""
        return [self.dataset.metadata(i) for i in self._current]

    def start(self) -> None:
        """Draw the next prompts for every row (hook)."""
        self._current = self._next_indices()

    def advance(self, completions: list[str]) -> np.ndarray:
        """After a step answered by ``completions``: what each row sees next, and whether its
        episode ended (hook; here every episode is one completion: the next prompts)."""
        self.start()
        return np.ones(self.num_envs, dtype=bool)

    def _observe(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        texts = self.prompt_texts()
        return self.encode(texts), {"prompt": texts, "prompt_index": np.array(self._current)}

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if isinstance(seed, list):
            seed = seed[0]
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._order = []
        self.start()
        return self._observe()

    def decode(self, completion_ids: np.ndarray) -> list[str]:
        """Texts of right-padded completion ids (special tokens dropped)."""
        return [
            str(t) for t in self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        ]

    def batch(self, completion_ids: np.ndarray, completions: list[str] | None = None) -> TextBatch:
        """The :class:`TextBatch` of completions for the prompts being answered."""
        if not self._current:
            raise RuntimeError("TextVecEnv: call reset() before step()")
        return TextBatch(
            prompts=self.prompt_texts(),
            completions=completions if completions is not None else self.decode(completion_ids),
            references=self.row_references(),
            metadata=self.row_metadata(),
        )

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        ids = np.asarray(actions)
        if ids.shape != (self.num_envs, self.max_new_tokens):
            raise ValueError(
                f"TextVecEnv.step: actions must be token ids of shape "
                f"({self.num_envs}, {self.max_new_tokens}), got {ids.shape}"
            )
        batch = self.batch(ids)
        self.last_batch = batch
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        info: dict[str, Any] = {"prompt": batch.prompts, "completion": batch.completions}
        if self.reward_model is not None:
            import torch

            with torch.no_grad():
                parts = self.reward_model.score_parts(batch)
            for name, part in parts.items():
                values = part.reshape(len(batch), -1).sum(dim=1).cpu().numpy()
                info[f"reward/{name}"] = values
                rewards += values
        terminated = self.advance(batch.completions)
        obs, next_info = self._observe()
        info["next_prompt"] = next_info["prompt"]
        truncated = np.zeros(self.num_envs, dtype=bool)
        return obs, rewards, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        self.last_batch = None


class TokenEnv(gym.Env):
    """The token-level view: one token per step (see the module doc).

    The observation is the prompt and the tokens so far, left-padded to
    ``max_prompt_tokens + max_new_tokens``; the episode ends (terminated) at the end-of-sequence
    token and is truncated after ``max_new_tokens`` tokens. The env's reward model scores the
    completion at the last step (0 before).
    """

    def __init__(
        self,
        prompts: str | Path | Iterable[Any] | PromptDataset,
        tokenizer: Any,
        max_prompt_tokens: int = 32,
        max_new_tokens: int = 16,
        reward_model: RewardModel | str | Mapping[str, Any] | None = None,
    ) -> None:
        owner = "TokenEnv"
        self.max_prompt_tokens = _check_count("max_prompt_tokens", max_prompt_tokens, owner)
        self.max_new_tokens = _check_count("max_new_tokens", max_new_tokens, owner)
        reward_model = _reward_model(reward_model, owner)
        self.dataset = PromptDataset.load(prompts)
        self.tokenizer = _tokenizer(tokenizer)
        self.reward_model = reward_model
        vocab = self.vocab = len(self.tokenizer)
        self.width = self.max_prompt_tokens + self.max_new_tokens
        self.observation_space = spaces.Dict(
            {
                "input_ids": spaces.Box(0, vocab - 1, (self.width,), np.int64),
                "attention_mask": spaces.Box(0, 1, (self.width,), np.int64),
            }
        )
        self.action_space = spaces.Discrete(vocab)
        self._index = 0
        self._prompt: list[int] = []
        self._tokens: list[int] = []

    def _obs(self) -> dict[str, np.ndarray]:
        tokens = (self._prompt + self._tokens)[-self.width :]
        ids = np.full(self.width, int(self.tokenizer.pad_token_id), dtype=np.int64)
        mask = np.zeros(self.width, dtype=np.int64)
        ids[self.width - len(tokens) :] = tokens
        mask[self.width - len(tokens) :] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._index = int(self.np_random.integers(len(self.dataset)))
        text = self.dataset.text(self._index, self.tokenizer)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][-self.max_prompt_tokens :]
        self._prompt = list(ids) or [
            int(self.tokenizer.bos_token_id or self.tokenizer.eos_token_id)
        ]
        self._tokens = []
        return self._obs(), {"prompt": text}

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        token = int(action)
        if not 0 <= token < self.vocab:
            raise ValueError(
                f"TokenEnv.step: action must be a token id in [0, {self.vocab}), got {action!r}"
            )
        self._tokens.append(token)
        terminated = token == self.tokenizer.eos_token_id
        truncated = not terminated and len(self._tokens) >= self.max_new_tokens
        reward = 0.0
        info: dict[str, Any] = {}
        if terminated or truncated:
            completion = str(self.tokenizer.decode(self._tokens, skip_special_tokens=True))
            info["completion"] = completion
            if self.reward_model is not None:
                import torch

                batch = TextBatch(
                    prompts=[self.dataset.text(self._index, self.tokenizer)],
                    completions=[completion],
                    references=[self.dataset.references(self._index)],
                    metadata=[self.dataset.metadata(self._index)],
                )
                with torch.no_grad():
                    reward = float(self.reward_model.score(batch).sum())
        return self._obs(), reward, terminated, truncated, info


class DialogueVecEnv(TextVecEnv):
    """Multi-turn dialogues: each record opens with ``messages`` (or a ``prompt``, the user's
    first turn) and may script the user's later turns in ``turns``; every step the policy
    answers each row's history, its reply joins the history, and the next scripted user turn
    follows, until the script ends (``terminated``) and the group starts a new dialogue.
    ``references`` (one text or list of texts per assistant turn) and the turn number (in the
    metadata, ``turn``) reach reward models.

    Rows of a group share the dialogue (GRPO and RLOO compare their first replies on the same
    history; later histories differ by the group's own replies).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for index in range(len(self.dataset)):  # a bad script fails here, not turns later
            self._script(index)

    def start(self) -> None:
        super().start()
        self._turn = [0] * self.num_envs
        self._history = [self._opening(i) for i in self._current]

    def _opening(self, index: int) -> list[dict[str, str]]:
        record = self.dataset[index]
        if "messages" in record:
            return [dict(m) for m in record["messages"]]
        return [{"role": "user", "content": str(record[self.dataset.prompt_key])}]

    def _script(self, index: int) -> list[str]:
        turns = self.dataset[index].get("turns") or []
        if isinstance(turns, str) or not all(isinstance(t, str) for t in turns):
            raise ValueError(
                f"DialogueVecEnv: record {index}'s 'turns' must be a list of the user's texts, "
                f"got {turns!r}"
            )
        return list(turns)

    def prompt_texts(self) -> list[str]:
        return [format_dialogue(history, self.tokenizer) for history in self._history]

    def row_references(self) -> list[list[str]]:
        out = []
        for row, index in enumerate(self._current):
            per_turn = self.dataset[index].get("references")
            if per_turn is None:
                out.append(self.dataset.references(index) if self._turn[row] == 0 else [])
                continue
            value = per_turn[self._turn[row]] if self._turn[row] < len(per_turn) else []
            out.append([value] if isinstance(value, str) else [str(v) for v in value])
        return out

    def row_metadata(self) -> list[dict[str, Any]]:
        skip = {"turns", "references"}
        return [
            {**{k: v for k, v in self.dataset.metadata(i).items() if k not in skip}, "turn": t}
            for i, t in zip(self._current, self._turn, strict=True)
        ]

    def advance(self, completions: list[str]) -> np.ndarray:
        ended = np.zeros(self.num_envs, dtype=bool)
        for row, reply in enumerate(completions):
            script = self._script(self._current[row])
            self._history[row].append({"role": ASSISTANT, "content": reply})
            self._turn[row] += 1
            if self._turn[row] <= len(script):
                self._history[row].append({"role": "user", "content": script[self._turn[row] - 1]})
            else:
                ended[row] = True
        size = self.group_size
        for group in range(self.num_prompts):  # a group's rows share the script: they end together
            rows = range(group * size, (group + 1) * size)
            if ended[rows[0]]:
                index = self._draw_one()
                for row in rows:
                    self._current[row] = index
                    self._turn[row] = 0
                    self._history[row] = self._opening(index)
        return ended


__all__ = [
    "ASSISTANT",
    "PLAIN_CHAT_FORMAT",
    "DialogueVecEnv",
    "PromptDataset",
    "TextVecEnv",
    "TokenEnv",
    "format_dialogue",
]
