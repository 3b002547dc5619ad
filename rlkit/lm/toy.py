"""A toy language model made locally: a word-level tokenizer over a small vocabulary, a tiny
GPT-2 and a short pretraining run on a generated corpus (extra ``lm``).

Tests, examples and benchmarks use it because nothing may be downloaded at run time; it
behaves like any Hugging Face causal LM (``save_pretrained`` / ``from_pretrained``).

>>> path = make_toy_lm("toy-lm")          # a few seconds on a CPU
>>> policy = CausalLMPolicy.from_pretrained(path)
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from rlkit.lm.hf import require_module, require_transformers

DETERMINERS = ("the", "a")
ADJECTIVES = ("big", "small", "red", "old", "happy")
NOUNS = ("cat", "dog", "bird", "fox", "cow", "hen", "pig", "owl")
VERBS = ("sat", "ran", "slept", "jumped", "ate")
PREPOSITIONS = ("on", "by", "near", "under")
CHAT_WORDS = ("user", "assistant", ":", "hello", "hi", "yes", "no", "what", "is", "it", "i",
              "like", "you", "and", ".")  # fmt: skip
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


def toy_vocabulary() -> list[str]:
    """Every token of the toy tokenizer: the special tokens first (pad 0, unk 1, bos 2, eos 3)."""
    words = [*DETERMINERS, *ADJECTIVES, *NOUNS, *VERBS, *PREPOSITIONS, *CHAT_WORDS]
    return list(SPECIAL_TOKENS) + list(dict.fromkeys(words))


def toy_sentence(rng: random.Random) -> str:
    """One sentence of the toy grammar, e.g. ``"the big cat sat on a dog ."``."""
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    words += [rng.choice(NOUNS), rng.choice(VERBS), rng.choice(PREPOSITIONS)]
    words += [rng.choice(DETERMINERS), rng.choice(NOUNS), "."]
    return " ".join(words)


def toy_dialogue(rng: random.Random) -> str:
    """One exchange, e.g. ``"user : hello assistant : hi . the dog sat by a cow ."``."""
    greeting = rng.choice(("hello", "hi"))
    question = rng.choice(("hello", "hi", "what is it", "i like you"))
    answer = rng.choice(("hi .", "yes .", "no .", toy_sentence(rng)))
    return (
        f"user : {question} assistant : {greeting} {answer}"
        if rng.random() < 0.5
        else (f"user : {question} assistant : {answer}")
    )


def toy_corpus(size: int = 2000, seed: int = 0) -> list[str]:
    """``size`` texts of one or two sentences, and dialogues (one in four)."""
    rng = random.Random(seed)
    out = []
    for _ in range(size):
        if rng.random() < 0.25:
            out.append(toy_dialogue(rng))
        else:
            count = rng.choice((1, 2))
            out.append(" ".join(toy_sentence(rng) for _ in range(count)))
    return out


def toy_prompts(size: int = 64, seed: int = 0) -> list[str]:
    """Sentence starts (``"the big"``, ``"a dog sat on"``, ...) to complete."""
    rng = random.Random(seed)
    out = []
    for _ in range(size):
        words = toy_sentence(rng).split()
        out.append(" ".join(words[: rng.randint(1, 4)]))
    return out


def build_toy_tokenizer() -> Any:
    """A word-level ``PreTrainedTokenizerFast`` over :func:`toy_vocabulary` (whitespace and
    punctuation split; unknown words map to ``<unk>``)."""
    transformers = require_transformers("the toy language model")
    tokenizers = require_module("tokenizers", "the toy language model")
    vocab = {token: i for i, token in enumerate(toy_vocabulary())}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
    )


def build_toy_model(
    tokenizer: Any, n_embd: int = 32, n_layer: int = 2, n_head: int = 2, n_positions: int = 64,
    seed: int = 0,
) -> Any:  # fmt: skip
    """A randomly initialised GPT-2 (``GPT2LMHeadModel``) sized for ``tokenizer``."""
    transformers = require_transformers("the toy language model")
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return transformers.GPT2LMHeadModel(config)


def pretrain(
    model: Any, tokenizer: Any, corpus: list[str], steps: int = 300, batch_size: int = 32,
    lr: float = 3e-3, seed: int = 0,
) -> float:  # fmt: skip
    """Next-token training on ``corpus`` (each text ends in ``<eos>``); returns the last loss."""
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.zeros(())
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for _ in range(steps):
            texts = [rng.choice(corpus) + " <eos>" for _ in range(batch_size)]
            batch = tokenizer(texts, return_tensors="pt", padding=True)
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            loss = model(**batch, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return float(loss.detach())


def make_toy_lm(
    path: str | Path, steps: int = 300, seed: int = 0, overwrite: bool = False, **size: int
) -> Path:
    """Build, pretrain (:func:`pretrain` on :func:`toy_corpus`) and save a toy model and its
    tokenizer to ``path`` (``save_pretrained``, safetensors); returns the path. A model already
    saved at ``path`` is reused unless ``overwrite``. ``size``: ``n_embd``, ``n_layer``,
    ``n_head``, ``n_positions`` of :func:`build_toy_model`."""
    out = Path(path)
    if not overwrite and (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    tokenizer = build_toy_tokenizer()
    model = build_toy_model(tokenizer, seed=seed, **size)
    pretrain(model, tokenizer, toy_corpus(seed=seed), steps=steps, seed=seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


__all__ = [
    "build_toy_model",
    "build_toy_tokenizer",
    "make_toy_lm",
    "pretrain",
    "toy_corpus",
    "toy_prompts",
    "toy_vocabulary",
]
