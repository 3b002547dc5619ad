"""Reward models: rule rewards, chrF and BLEU (by hand and against sacreBLEU), the reference
KL penalty and its adaptive coefficient, the composite, spec round trips through the registry,
and a classifier trained here on the toy corpus (no downloads)."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from rlkit.configurable import build_from_spec, from_json
from rlkit.reward_models import (
    BLEU,
    REWARD_MODELS,
    ChrF,
    ClassifierReward,
    CompositeReward,
    ContainsReward,
    LengthReward,
    ReferenceKLPenalty,
    RegexReward,
    RewardModel,
    TextBatch,
    completion_totals,
    sentence_bleu,
    sentence_chrf,
    tokenize_13a,
)


def batch(*completions: str, **fields: Any) -> TextBatch:
    return TextBatch(prompts=[""] * len(completions), completions=list(completions), **fields)


def untyped(value: Any) -> Any:
    """``value``, typed Any (bad arguments the type checker would refuse)."""
    return value


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(error.value)
    assert len(text.strip().splitlines()) == 1, text
    return text


# --------------------------------------------------------------------------- rules
def test_contains_matches_whole_words_only() -> None:
    model = ContainsReward(["cat", "big dog"], reward=2.0)
    out = model.score(
        batch("The Cat sat.", "a category", "the big  dog", "big dogs", "cat_like", "", "(cat)")
    )
    assert out.dtype == torch.float32 and out.shape == (7,)
    # "big  dog" has two spaces: the phrase is matched literally, so it is not found
    assert out.tolist() == [2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    assert ContainsReward("the big dog").score(batch("the big dog ran")).tolist() == [1.0]
    assert ContainsReward("Cat", case_sensitive=True).score(batch("cat", "Cat")).tolist() == [0, 1]
    assert ContainsReward("c++").score(batch("I like c++.", "abc++")).tolist() == [1.0, 0.0]


def test_length_in_words_characters_and_tokens() -> None:
    words = LengthReward(target=4, tolerance=1)
    # lengths 4, 5, 7, 0 -> misses 0, 0, 2, 3 -> -miss / 4
    assert words.score(batch("a b c d", "a b c d e", "a b c d e f g", "")).tolist() == [
        0.0, 0.0, -0.5, -0.75,
    ]  # fmt: skip
    chars = LengthReward(target=5, unit="characters")
    assert chars.score(batch("hello", "hi", "hello world")).tolist() == pytest.approx(
        [0.0, -0.6, -1.2]
    )
    tokens = LengthReward(target=2, unit="tokens")
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    assert tokens.required_fields() == ("completion_mask",) and words.required_fields() == ()
    assert tokens.score(batch("x", "y", "z", completion_mask=mask)).tolist() == [0.0, -1.0, -0.5]
    with pytest.raises(ValueError) as error:
        tokens.score(batch("x"))
    assert "needs the batch field(s) completion_mask" in one_line(error)


def test_regex_searches_or_matches_fully() -> None:
    pattern = r"<answer>\d+</answer>"
    search = RegexReward(pattern, reward=0.5)
    full = RegexReward(pattern, full_match=True)
    texts = batch("so <answer>42</answer>", "<answer>7</answer>", "<answer>x</answer>")
    assert search.score(texts).tolist() == [0.5, 0.5, 0.0]
    assert full.score(texts).tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: ContainsReward([]), ("ContainsReward: words must be", "got []")),
        (lambda: ContainsReward(["cat", ""]), ("words must be", "got ['cat', '']")),
        (lambda: ContainsReward("cat", reward=math.inf), ("reward must be", "got inf")),
        (lambda: LengthReward(target=0), ("LengthReward: target must be", ">= 1", "got 0")),
        (lambda: LengthReward(target=3, tolerance=-1), ("tolerance must be", "got -1")),
        (
            lambda: LengthReward(3, unit=untyped("bytes")),
            ("unit must be one of", "'tokens'", "'bytes'"),
        ),
        (lambda: RegexReward("(cat"), ("RegexReward: pattern must be a valid", "got '(cat'")),
        (lambda: ChrF(beta=0), ("ChrF: beta must be > 0", "got 0")),
        (lambda: ChrF(char_order=untyped(2.5)), ("char_order must be an integer", "got 2.5")),
        (lambda: BLEU(smooth=untyped("lin")), ("BLEU: smooth must be one of", "got 'lin'")),
        (lambda: BLEU(tokenize=untyped("intl")), ("tokenize must be one of", "got 'intl'")),
        (lambda: ReferenceKLPenalty(estimator=untyped("k4")), ("estimator must be one of", "'k4'")),
        (lambda: ReferenceKLPenalty(coef=-1.0), ("coef must be >= 0", "got -1.0")),
        (lambda: ReferenceKLPenalty(target=0.0), ("target must be > 0 or None", "got 0.0")),
        (lambda: ReferenceKLPenalty(clip_coef=[1, 0.5]), ("clip_coef must be", "got [1, 0.5]")),
        (lambda: CompositeReward({}), ("CompositeReward: parts must be", "got {}")),
        (
            lambda: CompositeReward({"a": "chrf"}, weights={"b": 1.0}),
            ("weights name part(s) 'b'", "its parts: 'a'"),
        ),
        (lambda: CompositeReward({"a": "chrf"}, weights={"a": math.nan}), ("weights", "nan")),
        (lambda: CompositeReward({"a.b": "chrf"}), ("part name 'a.b'", "without '.'")),
        (lambda: CompositeReward({"keys": "chrf"}), ("part name 'keys' is reserved",)),
        (lambda: CompositeReward({"a": "nope"}), ("unknown reward_model id 'nope'", "chrf")),
    ],
)
def test_bad_arguments_give_one_clear_line(build: Any, words: tuple[str, ...]) -> None:
    with pytest.raises((ValueError, KeyError)) as error:
        build()
    message = one_line(error)
    for word in words:
        assert word in message, message


# --------------------------------------------------------------------------- metrics
def test_chrf_by_hand() -> None:
    assert sentence_chrf("a cat", ["a cat"]) == 1.0
    # order 1: hyp {a, b}, ref {a, b, c}: precision 1, recall 2/3; F2 = 5 * 2/3 / (4 + 2/3)
    assert sentence_chrf("ab", ["abc"], char_order=1) == pytest.approx(10 / 14, abs=1e-12)
    # whitespace is removed: "a b" is "ab"; order 2 adds "ab" (precision 1, recall 1/2)
    p, r = (1 + 1) / 2, (2 / 3 + 1 / 2) / 2
    assert sentence_chrf("a b", ["abc"], char_order=2) == pytest.approx(5 * p * r / (4 * p + r))
    assert sentence_chrf("ab", ["xyz", "abc"], char_order=1) == pytest.approx(10 / 14)  # best
    assert sentence_chrf("", ["abc"]) == 0.0 and sentence_chrf("xyz", ["abc"]) == 0.0
    out = ChrF(char_order=1).score(batch("ab", "abc", references=[["abc"], "abc"]))
    assert out.tolist() == pytest.approx([10 / 14, 1.0])


def test_bleu_by_hand() -> None:
    # precisions 5/6, 3/5, 2/4, 1/3 and equal lengths: BLEU = (1/12) ** (1/4)
    hyp, ref = "the cat sat on the mat", "the cat sat on a mat"
    assert sentence_bleu(hyp, [ref]) == pytest.approx((1 / 12) ** 0.25, abs=1e-12)
    # 3 tokens (effective order 3); no 3-gram matches: exp smoothing counts 1/2 of one match
    assert sentence_bleu("a b c", ["a b d"]) == pytest.approx((2 / 3 * 1 / 2 * 1 / 2) ** (1 / 3))
    # every precision is 1; brevity penalty exp(1 - 6/3) against the closest reference (6)
    assert sentence_bleu("the cat sat", ["the cat sat on a mat", "a b c d e f g h i j"]) == (
        pytest.approx(math.exp(1 - 6 / 3))
    )
    # a tie (both references 2 tokens away) takes the shorter: 1 = 3 - 2 < 5, no penalty
    assert sentence_bleu("the cat sat", ["the cat sat on a", "the"]) == pytest.approx(1.0)
    assert sentence_bleu("the cat sat on the mat", [hyp]) == 1.0
    assert sentence_bleu("", ["a b"]) == 0.0 and sentence_bleu("x y", ["a b"]) == 0.0
    assert tokenize_13a("Hi, it's $3.14 (1,000-2,000).") == "Hi , it's $ 3.14 ( 1,000 - 2,000 ) ."
    out = BLEU().score(batch(hyp, "nothing", references=[[ref], ["a b c d"]]))
    assert out.tolist() == pytest.approx([(1 / 12) ** 0.25, 0.0])


def test_metrics_need_references() -> None:
    with pytest.raises(ValueError) as error:
        ChrF().score(batch("a"))
    assert "ChrF ('chrf') needs the batch field(s) references" in one_line(error)
    with pytest.raises(ValueError) as error:
        BLEU().score(batch("a", "b", references=[["a"]]))
    assert "batch.references has 1 entries for 2 completions" in one_line(error)
    with pytest.raises(ValueError) as error:
        BLEU().score(batch("a", references=[[]]))
    assert "batch.references[0] must be a non-empty list of strings" in one_line(error)


PAIRS = [
    ("The cat sat on the mat.", ["The cat is sitting on the mat."]),
    ("the quick brown fox", ["A fast brown fox jumps over the dog."]),
    ("Hello, world!", ["Hello world!", "Hi, world."]),
    ("It costs $3.14, or 1,000 yen (approx.).", ["It costs 3.14 dollars, about 1,000 yen."]),
    ("", ["nothing here"]),
    ("x", ["x"]),
    ('state-of-the-art models &amp; "quotes"', ["state of the art models & quotes"]),
    ("Das ist ein Test.", ["Dies ist ein Test.", "Das ist kein Test."]),
    ("Über größere Straßen fährt man schnell.", ["Auf großen Straßen fährt man schnell."]),
    ("1990-2000 was a decade", ["The decade 1990 - 2000"]),
    ("No overlap at all", ["zzzz qqqq"]),
    ("repeat repeat repeat repeat", ["repeat once", "repeat repeat"]),
    ("He said: 'yes', then left...", ["He said yes and left."]),
]


@pytest.mark.parametrize(("hyp", "refs"), PAIRS)
def test_metrics_equal_sacrebleu(hyp: str, refs: list[str]) -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    settings: list[dict[str, Any]] = [{}, {"word_order": 2}, {"char_order": 4, "beta": 1}]
    for kwargs in settings:
        expected = sacrebleu.sentence_chrf(hyp, refs, **kwargs).score / 100
        assert sentence_chrf(hyp, refs, **kwargs) == pytest.approx(expected, abs=1e-12)
    for smooth in ("exp", "floor", "add-k", "none"):
        expected = sacrebleu.sentence_bleu(hyp, refs, smooth_method=smooth).score / 100
        assert sentence_bleu(hyp, refs, smooth=smooth) == pytest.approx(expected, abs=1e-12)
    expected = sacrebleu.sentence_bleu(hyp, refs, tokenize="none").score / 100
    assert sentence_bleu(hyp, refs, tokenize="none") == pytest.approx(expected, abs=1e-12)
    reward = ChrF().score(batch(hyp, references=[refs]))  # float32
    assert float(reward[0]) == pytest.approx(
        sacrebleu.sentence_chrf(hyp, refs).score / 100, abs=1e-6
    )


# --------------------------------------------------------------------------- KL penalty
def kl_batch(
    log_probs: list[list[float]], ref: list[list[float]], mask: list[list[int]]
) -> TextBatch:
    return batch(
        *["c"] * len(log_probs),
        log_probs=torch.tensor(log_probs),
        ref_log_probs=torch.tensor(ref),
        completion_mask=torch.tensor(mask, dtype=torch.bool),
    )


def test_kl_penalty_per_token_estimators() -> None:
    # log r = logp - ref = 0.5, -1 on the completion; the padded position holds -inf
    texts = kl_batch([[-1.0, -2.0, -math.inf]], [[-1.5, -1.0, -0.5]], [[1, 1, 0]])
    expected = {
        "k1": [0.5, -1.0],
        "k2": [0.125, 0.5],
        "k3": [math.exp(-0.5) + 0.5 - 1, math.exp(1.0) - 1 - 1],
    }
    for estimator, kl in expected.items():
        out = ReferenceKLPenalty(coef=0.1, estimator=untyped(estimator)).score(texts)
        assert out.shape == (1, 3)
        assert out[0].tolist() == pytest.approx([-0.1 * kl[0], -0.1 * kl[1], 0.0])
    assert ReferenceKLPenalty().name == "kl"
    with pytest.raises(ValueError) as error:
        ReferenceKLPenalty().score(batch("c", completion_mask=torch.ones(1, 2, dtype=torch.bool)))
    assert "needs the batch field(s) log_probs, ref_log_probs" in one_line(error)


def test_adaptive_coefficient_moves_toward_the_target() -> None:
    # two completions whose summed k1 KL is 3 each: e = clip(3/1 - 1) = 0.2
    high = kl_batch([[0.0, 0.0], [0.0, 0.0]], [[-1.0, -2.0], [-3.0, 0.0]], [[1, 1], [1, 1]])
    penalty = ReferenceKLPenalty(coef=0.5, target=1.0, horizon=100)
    logs = penalty.update(high)
    assert logs["kl"] == pytest.approx(3.0)
    assert penalty.coef == pytest.approx(0.5 * (1 + 0.2 * 2 / 100))
    assert logs["kl_coef"] == penalty.coef
    # KL 0.9 (the masked token does not count): e = -0.1, coefficient down
    low = kl_batch([[0.0, 0.0], [0.0, 0.0]], [[-0.9, -5.0], [-0.9, 0.0]], [[1, 0], [1, 1]])
    before = penalty.coef
    assert penalty.update(low)["kl"] == pytest.approx(0.9)
    assert penalty.coef == pytest.approx(before * (1 - 0.1 * 2 / 100))
    fixed = ReferenceKLPenalty(coef=0.5)
    assert fixed.update(high) == {"kl": pytest.approx(3.0), "kl_coef": 0.5}
    bounded = ReferenceKLPenalty(coef=0.5, target=1.0, horizon=1, clip_coef=[0.1, 0.55])
    bounded.update(high)
    assert bounded.coef == 0.55


def test_kl_coefficient_survives_the_state_dict() -> None:
    penalty = ReferenceKLPenalty(coef=0.5, target=0.1, horizon=10)
    for _ in range(3):
        penalty.update(kl_batch([[0.0]], [[-1.0]], [[1]]))
    assert penalty.coef != 0.5
    fresh = REWARD_MODELS.build(penalty.spec())
    assert isinstance(fresh, ReferenceKLPenalty) and fresh.coef == 0.5
    fresh.load_state_dict(penalty.state_dict())
    assert fresh.coef == penalty.coef
    composite = CompositeReward({"kl": penalty})
    rebuilt = from_json({"__primitive__": "reward_model", **composite.spec()})
    rebuilt.load_state_dict(composite.state_dict())
    assert rebuilt.parts["kl"].coef == penalty.coef


# --------------------------------------------------------------------------- composite
def mixed_batch() -> TextBatch:
    return batch(
        "the cat sat",
        "a dog",
        log_probs=torch.tensor([[-1.0, -1.0, -1.0, 0.0], [-1.0, -1.0, 0.0, 0.0]]),
        ref_log_probs=torch.tensor([[-2.0, -1.0, -1.5, 0.0], [-1.0, -3.0, 0.0, 0.0]]),
        completion_mask=torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool),
        references=[["the cat sat"], ["a cat"]],
    )


def test_composite_sums_weighted_parts_of_one_shape() -> None:
    texts = mixed_batch()
    composite = CompositeReward(
        {
            "cat": {"id": "contains", "words": ["cat"]},
            "length": LengthReward(target=3),
            "chrf": "chrf",
        },
        weights={"cat": 2.0},
    )
    parts = composite.score_parts(texts)
    assert list(parts) == ["cat", "length", "chrf"]
    assert parts["cat"].tolist() == [2.0, 0.0]
    assert parts["length"].tolist() == pytest.approx([0.0, -1 / 3])
    total = composite.score(texts)
    assert total.shape == (2,)
    assert torch.allclose(total, parts["cat"] + parts["length"] + parts["chrf"])
    assert composite.parts["chrf"].name == "chrf"
    assert composite.required_fields() == ("references",)


def test_composite_puts_per_completion_parts_on_the_last_token() -> None:
    texts = mixed_batch()
    composite = CompositeReward(
        {"kl": ReferenceKLPenalty(coef=1.0), "cat": ContainsReward("cat", reward=5.0)},
        weights={"kl": 0.5},
    )
    kl = -0.5 * torch.tensor([[1.0, 0.0, 0.5, 0.0], [0.0, 2.0, 0.0, 0.0]])
    out = composite.score(texts)
    assert out.shape == (2, 4)
    assert torch.allclose(out, kl + torch.tensor([[0, 0, 5.0, 0], [0, 0, 0, 0]]))
    totals = completion_totals(out, texts.completion_mask)
    parts = composite.score_parts(texts)
    expected = completion_totals(parts["kl"], texts.completion_mask) + parts["cat"]
    assert torch.allclose(totals, expected)
    assert set(composite.required_fields()) == {"log_probs", "ref_log_probs", "completion_mask"}
    # a per-token part without completion_mask: the error names the part and the field
    no_mask = batch("cat", log_probs=torch.zeros(1, 2), ref_log_probs=torch.zeros(1, 2))
    with pytest.raises(ValueError) as error:
        composite.score(no_mask)
    message = one_line(error)
    assert "part 'kl' (ReferenceKLPenalty) needs the batch field(s) completion_mask" in message


def test_composite_needs_the_mask_to_place_a_sequence_reward() -> None:
    class PerToken(RewardModel):
        def forward(self, batch: TextBatch) -> torch.Tensor:
            return torch.ones(len(batch), 3)

    composite = CompositeReward({"tok": PerToken(), "cat": {"id": "contains", "words": "cat"}})
    with pytest.raises(ValueError) as error:
        composite.score(batch("cat"))
    message = one_line(error)
    assert (
        "per-completion part(s) cat" in message
        and "needs the batch field completion_mask" in message
    )
    with pytest.raises(ValueError) as error:
        composite.score(batch("cat", completion_mask=torch.zeros(1, 3, dtype=torch.bool)))
    assert "completion(s) [0] have no completion tokens" in one_line(error)


def test_nested_composites_and_update_prefixes() -> None:
    inner = CompositeReward(
        {
            "kl": {"id": "kl_penalty", "coef": 1.0, "target": 1.0},
            "cat": {"id": "contains", "words": "cat"},
        },
        weights={"cat": 3.0},
    )
    outer = CompositeReward(
        {"main": inner, "len": {"id": "length", "target": 2}}, weights={"main": 2.0}
    )
    texts = mixed_batch()
    parts = outer.score_parts(texts)
    assert list(parts) == ["main/kl", "main/cat", "len"]
    assert parts["main/cat"].tolist() == [6.0, 0.0]
    assert torch.allclose(
        parts["main/kl"], -2.0 * torch.tensor([[1.0, 0.0, 0.5, 0.0], [0.0, 2.0, 0, 0]])
    )
    assert outer.score(texts).shape == (2, 4)
    logs = outer.update(texts)
    assert set(logs) == {"main/kl/kl", "main/kl/kl_coef"}
    assert logs["main/kl/kl"] == pytest.approx((1.5 + 2.0) / 2)


# --------------------------------------------------------------------------- registry
@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer GPT-2 sequence classifier trained here to tell whether a toy sentence
    contains "cat" (label 1, "cat"), saved with its tokenizer."""
    transformers = pytest.importorskip("transformers")
    from rlkit.lm.toy import build_toy_tokenizer, toy_sentence

    tokenizer = build_toy_tokenizer()
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64, num_labels=2,
        pad_token_id=tokenizer.pad_token_id, id2label={0: "other", 1: "cat"},
        label2id={"other": 0, "cat": 1},
    )  # fmt: skip
    rng = random.Random(0)
    cats: list[str] = []
    others: list[str] = []
    while len(cats) < 200 or len(others) < 200:
        sentence = toy_sentence(rng)
        (cats if "cat" in sentence.split() else others).append(sentence)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.GPT2ForSequenceClassification(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(60):
            texts = rng.sample(cats, 16) + rng.sample(others, 16)
            labels = torch.tensor([1] * 16 + [0] * 16)
            encoded = tokenizer(texts, return_tensors="pt", padding=True)
            loss = model(**encoded, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    path = tmp_path_factory.mktemp("cat-classifier")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def specs(classifier_path: str) -> dict[str, dict[str, Any]]:
    """A spec of every registered id (the test fails when an id has none)."""
    return {
        "contains": {"id": "contains", "words": ["cat", "dog"], "reward": 2.0},
        "length": {"id": "length", "target": 3, "tolerance": 1, "unit": "tokens"},
        "format": {"id": "format", "pattern": r"\bsat\b", "full_match": False},
        "chrf": {"id": "chrf", "word_order": 2},
        "bleu": {"id": "bleu", "smooth": "floor", "max_order": 3},
        "kl_penalty": {"id": "kl_penalty", "coef": 0.2, "estimator": "k3", "target": 0.5},
        "classifier": {"id": "classifier", "model": classifier_path, "label": "cat"},
        "composite": {
            "id": "composite",
            "parts": {"kl": "kl_penalty", "inner": {"id": "composite", "parts": {"c": "chrf"}}},
            "weights": {"inner": 0.5},
        },
    }


def test_every_id_round_trips_through_its_spec(classifier_dir: Path) -> None:
    table = specs(str(classifier_dir))
    shipped = {key for key, cls in REWARD_MODELS.items() if cls.__module__.startswith("rlkit.")}
    assert set(table) == shipped
    texts = mixed_batch()
    for ident, spec in table.items():
        model = REWARD_MODELS.build(spec)
        assert isinstance(model, RewardModel) and model.registry_id == ident
        rebuilt = from_json({"__primitive__": "reward_model", **model.spec()})
        assert type(rebuilt) is type(model)
        assert rebuilt.spec() == model.spec()
        assert torch.equal(rebuilt.score(texts), model.score(texts)), ident
        again = build_from_spec("reward_model", model.spec())
        assert torch.equal(again.score(texts), model.score(texts)), ident


def test_package_import_leaves_transformers_alone() -> None:
    code = "import sys, rlkit.reward_models; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- classifier
def test_classifier_scores_the_wanted_label(classifier_dir: Path) -> None:
    from rlkit.lm.toy import toy_sentence

    rng = random.Random(1)
    sentences = [toy_sentence(rng) for _ in range(200)]
    is_cat = torch.tensor(["cat" in s.split() for s in sentences])
    reward = ClassifierReward(model=str(classifier_dir), label="cat", batch_size=64)
    assert reward.label == 1 and not any(p.requires_grad for p in reward.parameters())
    reward.train()
    assert not reward.model.training
    scores = reward.score(batch(*sentences))
    assert scores.shape == (200,) and float(scores.min()) >= 0 and float(scores.max()) <= 1
    assert float(scores[is_cat].mean()) > float(scores[~is_cat].mean()) + 0.4
    # the other label is the complement; log-probabilities and logits agree with it
    other = ClassifierReward(model=str(classifier_dir), label=0).score(batch(*sentences))
    assert torch.allclose(scores + other, torch.ones(200), atol=1e-5)
    log_p = ClassifierReward(str(classifier_dir), label="cat", output="log_probability")
    assert torch.allclose(log_p.score(batch(*sentences)).exp(), scores, atol=1e-5)
    # per-sample labels from the metadata (an intent per prompt)
    intent = ClassifierReward(str(classifier_dir), label_field="intent")
    assert intent.required_fields() == ("metadata",)
    metadata = [{"intent": "cat" if i % 2 else 0} for i in range(200)]
    per_sample = intent.score(batch(*sentences, metadata=metadata))
    expected = torch.where(torch.arange(200) % 2 == 1, scores, other)
    assert torch.allclose(per_sample, expected, atol=1e-5)
    paired = ClassifierReward(str(classifier_dir), label="cat", input="prompt+completion")
    texts = TextBatch(prompts=["the dog ran ."] * 4, completions=sentences[:4])
    assert paired.score(texts).shape == (4,)


def test_classifier_errors_name_the_label(classifier_dir: Path) -> None:
    path = str(classifier_dir)
    with pytest.raises(ValueError) as error:
        ClassifierReward(path, label="dog")
    assert "label 'dog' is not a label of" in one_line(error) and "'other'" in str(error.value)
    with pytest.raises(ValueError) as error:
        ClassifierReward(path, label=None)
    assert "label=None reads a single-output model" in one_line(error)
    with pytest.raises(ValueError) as error:
        ClassifierReward(path, label=2)
    assert "label must be a label index in [0, 1]" in one_line(error)
    intent = ClassifierReward(path, label_field="intent")
    with pytest.raises(ValueError) as error:
        intent.score(batch("a cat", metadata=[{"topic": 1}]))
    assert "batch.metadata[0] has no 'intent' (label_field)" in one_line(error)
    with pytest.raises(ValueError) as error:
        intent.score(batch("a cat"))
    assert "needs the batch field(s) metadata" in one_line(error)
