"""A learned reward: a frozen Hugging Face sequence classifier scores each completion."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from rlkit.config.rules import OneOf, Rule, Satisfies, count
from rlkit.lm.hf import require_transformers
from rlkit.reward_models.base import REWARD_MODELS, RewardModel, TextBatch

Output = Literal["probability", "logit", "log_probability"]
Input = Literal["completion", "prompt+completion"]

LABEL = Satisfies(
    lambda v: (
        (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
        or (isinstance(v, str) and bool(v))
    ),
    "a label index >= 0 or a label name",
    none=True,
)
NAME = Satisfies(lambda v: isinstance(v, str) and bool(v), "a non-empty string")


@REWARD_MODELS.register("classifier")
class ClassifierReward(RewardModel):
    """The score a frozen sequence classifier gives each completion for a label, e.g. the
    probability of a positive sentiment, of a wanted intent (as OpenRL's dialogue example
    rewards), or a reward model's scalar output.

    ``model`` is a local directory or a Hugging Face model name (found in the local cache or
    downloaded as ``from_pretrained`` does) holding an ``AutoModelForSequenceClassification``
    and its tokenizer; loading needs the ``lm`` extra. ``label`` is the wanted label's index
    or name (``config.label2id``); ``None`` reads a single-output model (``num_labels=1``).
    ``label_field``, when set, names the ``batch.metadata`` key holding each sample's wanted
    label instead (one label per prompt). ``output``: the label's ``"probability"`` (softmax,
    or sigmoid for a single output), ``"log_probability"`` or raw ``"logit"``. ``input``: the
    completion alone or the (prompt, completion) pair. Scored without gradients in batches of
    ``batch_size`` texts truncated to ``max_length`` tokens; ``[B]``.

    The classifier is a submodule (it follows ``.to(device)`` and is saved with the agent) but
    stays frozen and in eval mode, whatever ``.train()`` is called with.
    """

    default_name = "classifier"
    argument_rules: ClassVar[dict[str, Rule]] = {
        "model": NAME,
        "label": LABEL,
        "label_field": Satisfies(
            lambda v: isinstance(v, str) and bool(v), "a non-empty string", none=True
        ),
        "output": OneOf(("probability", "logit", "log_probability")),
        "input": OneOf(("completion", "prompt+completion")),
        "max_length": count(1, integer=True),
        "batch_size": count(1, integer=True),
    }

    def __init__(
        self,
        model: str,
        label: int | str | None = 1,
        label_field: str | None = None,
        output: Output = "probability",
        input: Input = "completion",
        max_length: int = 512,
        batch_size: int = 64,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        transformers = require_transformers("ClassifierReward")
        self.source = model
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        classifier = transformers.AutoModelForSequenceClassification.from_pretrained(model)
        config = classifier.config
        if self.tokenizer.pad_token is None:  # GPT-style tokenizers: pad with end-of-sequence
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = self.tokenizer.pad_token_id
        classifier.eval()
        classifier.requires_grad_(False)
        self.model: nn.Module = classifier
        self.num_labels = int(config.num_labels)
        self.label2id: dict[str, int] = {str(k): int(v) for k, v in (config.label2id or {}).items()}
        self.label_field = label_field
        self.output: Output = output
        self.input: Input = input
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.label = None if label_field is not None else self.label_index(label)

    def label_index(self, label: Any, where: str = "label") -> int | None:
        """The output index of ``label`` (an index or a name in ``config.label2id``); None
        for a single-output model read as it is."""
        names = ", ".join(f"{k!r}" for k in self.label2id) or "(none)"
        if label is None:
            if self.num_labels != 1:
                raise ValueError(
                    f"ClassifierReward ({self.name!r}): {where}=None reads a single-output "
                    f"model, but {self.source!r} has {self.num_labels} labels: {names}"
                )
            return None
        if isinstance(label, str):
            if label not in self.label2id:
                raise ValueError(
                    f"ClassifierReward ({self.name!r}): {where} {label!r} is not a label of "
                    f"{self.source!r}; its labels: {names}"
                )
            return self.label2id[label]
        if (
            isinstance(label, bool)
            or not isinstance(label, int)
            or not 0 <= label < self.num_labels
        ):
            raise ValueError(
                f"ClassifierReward ({self.name!r}): {where} must be a label index in "
                f"[0, {self.num_labels - 1}] or a label name ({names}), got {label!r}"
            )
        return label

    def required_fields(self) -> tuple[str, ...]:
        return ("metadata",) if self.label_field is not None else ()

    def train(self, mode: bool = True) -> ClassifierReward:
        super().train(mode)
        self.model.eval()  # frozen: no dropout whatever the agent's mode
        return self

    def _labels(self, batch: TextBatch) -> list[int | None]:
        if self.label_field is None:
            return [self.label] * len(batch)
        metadata = batch.metadata
        assert metadata is not None  # checked by score()
        if len(metadata) != len(batch):
            raise ValueError(
                f"ClassifierReward ({self.name!r}): batch.metadata has {len(metadata)} entries "
                f"for {len(batch)} completions"
            )
        out = []
        for i, fields in enumerate(metadata):
            if self.label_field not in fields:
                raise ValueError(
                    f"ClassifierReward ({self.name!r}): batch.metadata[{i}] has no "
                    f"{self.label_field!r} (label_field); its keys: {sorted(fields)}"
                )
            out.append(
                self.label_index(fields[self.label_field], f"metadata[{i}][{self.label_field!r}]")
            )
        return out

    def logits(self, batch: TextBatch) -> Tensor:
        """The classifier's logits ``[B, num_labels]`` (float32, no gradients)."""
        device = next(self.model.parameters()).device
        chunks = []
        with torch.no_grad():
            for start in range(0, len(batch), self.batch_size):
                end = start + self.batch_size
                texts: tuple[Any, ...] = (batch.completions[start:end],)
                if self.input == "prompt+completion":
                    texts = (batch.prompts[start:end], batch.completions[start:end])
                encoded = self.tokenizer(
                    *texts,
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                )
                encoded = {k: v.to(device) for k, v in encoded.items()}
                chunks.append(self.model(**encoded).logits.float())
        if not chunks:
            return torch.zeros(0, self.num_labels, device=device)
        return torch.cat(chunks)

    def forward(self, batch: TextBatch) -> Tensor:
        logits = self.logits(batch)
        labels = self._labels(batch)
        index = torch.tensor([0 if i is None else i for i in labels], device=logits.device)
        if self.num_labels == 1:
            scores = {
                "logit": logits,
                "probability": torch.sigmoid(logits),
                "log_probability": nn.functional.logsigmoid(logits),
            }[self.output]
        elif self.output == "logit":
            scores = logits
        elif self.output == "probability":
            scores = logits.softmax(dim=-1)
        else:
            scores = logits.log_softmax(dim=-1)
        return scores.gather(1, index[:, None]).squeeze(1)

    def extra_repr(self) -> str:
        label = f"label_field={self.label_field!r}" if self.label_field else f"label={self.label}"
        return f"name={self.name!r}, model={self.source!r}, {label}, output={self.output!r}"


__all__ = ["ClassifierReward"]
