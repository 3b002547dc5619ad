"""Reference-based text metrics, computed locally in pure Python: chrF and sentence BLEU.

Both follow sacreBLEU 2.x (Post 2018, "A Call for Clarity in Reporting BLEU Scores") step by
step, so a reward equals ``sacrebleu.sentence_chrf(...).score / 100`` and
``sacrebleu.sentence_bleu(...).score / 100`` for the same settings (the tests check this
against sacreBLEU when it is installed); sacreBLEU itself is not needed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar, Literal

from torch import Tensor

from rlkit.config.rules import OneOf, Range, Rule, count, positive
from rlkit.reward_models._common import per_completion, references_of
from rlkit.reward_models.base import REWARD_MODELS, RewardModel, TextBatch

# --------------------------------------------------------------------------- chrF
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _char_ngrams(text: str, order: int, whitespace: bool) -> list[Counter[str]]:
    """Character n-gram counts for n = 1..order (whitespace removed unless kept)."""
    if not whitespace:
        text = "".join(text.split())
    return [Counter(text[i : i + n] for i in range(len(text) - n + 1)) for n in range(1, order + 1)]


def _chrf_words(text: str) -> list[str]:
    """Words for chrF++'s word n-grams: a punctuation mark at the start or end of a word is
    split off (as chrF++.py and sacreBLEU do)."""
    words: list[str] = []
    for w in text.split():
        if len(w) == 1:
            words.append(w)
        elif w[-1] in _PUNCTUATION:
            words += [w[:-1], w[-1]]
        elif w[0] in _PUNCTUATION:
            words += [w[0], w[1:]]
        else:
            words.append(w)
    return words


def _word_ngrams(words: list[str], n: int) -> Counter[str]:
    return Counter(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def _chrf_ngrams(
    text: str, char_order: int, word_order: int, whitespace: bool
) -> list[Counter[str]]:
    grams = _char_ngrams(text, char_order, whitespace)
    if word_order > 0:
        words = _chrf_words(text)
        grams += [_word_ngrams(words, n) for n in range(1, word_order + 1)]
    return grams


def _chrf_from_counts(hyp: list[Counter[str]], ref: list[Counter[str]], beta: float) -> float:
    """chrF in [0, 1]: precision and recall averaged over the n-gram orders that occur in both
    texts, then their F-beta (sacreBLEU's default, without epsilon smoothing)."""
    factor = beta**2
    avg_prec = avg_rec = 0.0
    effective = 0
    for h, r in zip(hyp, ref, strict=True):
        n_hyp = sum(h.values()) if r else 0
        n_ref = sum(r.values())
        if n_hyp > 0 and n_ref > 0:
            n_match = sum(min(c, r[g]) for g, c in h.items() if g in r)
            avg_prec += n_match / n_hyp
            avg_rec += n_match / n_ref
            effective += 1
    if effective == 0:
        return 0.0
    avg_prec /= effective
    avg_rec /= effective
    if avg_prec + avg_rec == 0:
        return 0.0
    return (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)


def sentence_chrf(
    hypothesis: str,
    references: Sequence[str],
    char_order: int = 6,
    word_order: int = 0,
    beta: float = 2.0,
    lowercase: bool = False,
    whitespace: bool = False,
) -> float:
    """chrF (Popović 2015, "chrF: character n-gram F-score for automatic MT evaluation";
    chrF++ with ``word_order=2``, Popović 2017) of one hypothesis in [0, 1]: the best score
    over ``references``."""
    if lowercase:
        hypothesis = hypothesis.lower()
        references = [r.lower() for r in references]
    hyp = _chrf_ngrams(hypothesis, char_order, word_order, whitespace)
    best = 0.0
    for reference in references:
        ref = _chrf_ngrams(reference, char_order, word_order, whitespace)
        best = max(best, _chrf_from_counts(hyp, ref, beta))
    return best


# --------------------------------------------------------------------------- BLEU
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def tokenize_13a(line: str) -> str:
    """The ``13a`` tokenizer of mteval-v13a.pl (WMT's standard, sacreBLEU's default):
    punctuation and symbols split off, except periods and commas inside numbers."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&")
        line = line.replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def _bleu_ngrams(tokens: list[str], max_order: int) -> Counter[tuple[str, ...]]:
    return Counter(
        tuple(tokens[i : i + n])
        for n in range(1, max_order + 1)
        for i in range(len(tokens) - n + 1)
    )


#: the default ``smooth_value`` of each smoothing method (Chen and Cherry 2014).
SMOOTH_DEFAULTS: dict[str, float | None] = {"none": None, "floor": 0.1, "add-k": 1.0, "exp": None}


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -9999999999.0  # sacreBLEU's floor for log(0)


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    max_order: int = 4,
    smooth: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = True,
    lowercase: bool = False,
    tokenize: str = "13a",
) -> float:
    """Sentence BLEU (Papineni et al. 2002, "BLEU: a method for automatic evaluation of
    machine translation") in [0, 1] with sacreBLEU's ``sentence_bleu`` defaults.

    Clipped n-gram counts against all references at once (the maximum count of each n-gram
    over the references), brevity penalty against the closest reference length (the shorter
    on a tie) and smoothing (Chen and Cherry 2014): ``"exp"`` (NIST: the k-th order without
    matches counts ``1 / 2^k`` matches), ``"floor"`` (``smooth_value`` matches), ``"add-k"``
    (``smooth_value`` added to the counts of orders above 1) or ``"none"``. With
    ``effective_order`` orders the hypothesis is too short to have are left out.
    """
    if smooth not in SMOOTH_DEFAULTS:
        raise ValueError(
            f"sentence_bleu: smooth must be one of {list(SMOOTH_DEFAULTS)}, got {smooth!r}"
        )
    if tokenize not in ("13a", "none"):
        raise ValueError(f"sentence_bleu: tokenize must be '13a' or 'none', got {tokenize!r}")
    if smooth_value is None:
        smooth_value = SMOOTH_DEFAULTS[smooth]

    def tokens(text: str) -> list[str]:
        text = text.lower() if lowercase else text
        text = tokenize_13a(text.rstrip()) if tokenize == "13a" else text.rstrip()
        return text.split()

    hyp = tokens(hypothesis)
    ref_counts: Counter[tuple[str, ...]] = Counter()
    closest = -1
    for reference in references:
        ref = tokens(reference)
        for gram, c in _bleu_ngrams(ref, max_order).items():
            ref_counts[gram] = max(ref_counts[gram], c)
        diff, best = abs(len(hyp) - len(ref)), abs(len(hyp) - closest)
        if closest < 0 or diff < best or (diff == best and len(ref) < closest):
            closest = len(ref)
    correct = [0.0] * max_order
    total = [0.0] * max_order
    for gram, c in _bleu_ngrams(hyp, max_order).items():
        total[len(gram) - 1] += c
        correct[len(gram) - 1] += min(c, ref_counts.get(gram, 0))
    if not any(correct):
        return 0.0
    sys_len, ref_len = len(hyp), closest
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0)
    precisions = [0.0] * max_order
    mteval = 1.0
    used = max_order
    for n in range(1, max_order + 1):
        if smooth == "add-k" and n > 1:
            assert smooth_value is not None
            correct[n - 1] += smooth_value
            total[n - 1] += smooth_value
        if total[n - 1] == 0:
            break
        if effective_order:
            used = n
        if correct[n - 1] == 0:
            if smooth == "exp":
                mteval *= 2
                precisions[n - 1] = 100.0 / (mteval * total[n - 1])
            elif smooth == "floor":
                assert smooth_value is not None
                precisions[n - 1] = 100.0 * smooth_value / total[n - 1]
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    # in percent as sacreBLEU computes it (same rounding), then scaled to [0, 1] (a perfect
    # match comes out at 100 * (1 + 4e-16): clipped to 1)
    return min(bp * math.exp(sum(_log(p) for p in precisions[:used]) / used) / 100.0, 1.0)


# --------------------------------------------------------------------------- reward models
@REWARD_MODELS.register("chrf")
class ChrF(RewardModel):
    """chrF against the references, in [0, 1] (Popović 2015, "chrF: character n-gram F-score
    for automatic MT evaluation"; chrF++ with ``word_order=2``, Popović 2017).

    Character n-grams of orders 1..``char_order`` (whitespace removed unless ``whitespace``)
    and word n-grams of orders 1..``word_order``; precision and recall are averaged over the
    orders present in both texts and combined into an F-beta score (``beta=2`` weighs recall
    twice as much). With several references the best score counts. Equals sacreBLEU's
    ``sentence_chrf`` / 100. Reads ``batch.references``. ``[B]``.
    """

    default_name = "chrf"
    needs = ("references",)
    argument_rules: ClassVar[dict[str, Rule]] = {
        "char_order": count(1, integer=True),
        "word_order": Range(0, integer=True),
        "beta": positive(),
        "lowercase": OneOf((True, False)),
        "whitespace": OneOf((True, False)),
    }

    def __init__(
        self,
        char_order: int = 6,
        word_order: int = 0,
        beta: float = 2.0,
        lowercase: bool = False,
        whitespace: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.char_order = int(char_order)
        self.word_order = int(word_order)
        self.beta = float(beta)
        self.lowercase = bool(lowercase)
        self.whitespace = bool(whitespace)

    def forward(self, batch: TextBatch) -> Tensor:
        references = references_of(batch, f"ChrF ({self.name!r})")
        scores = [
            sentence_chrf(
                hyp,
                refs,
                char_order=self.char_order,
                word_order=self.word_order,
                beta=self.beta,
                lowercase=self.lowercase,
                whitespace=self.whitespace,
            )
            for hyp, refs in zip(batch.completions, references, strict=True)
        ]
        return per_completion(scores, batch)

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, char_order={self.char_order}, word_order={self.word_order}, "
            f"beta={self.beta}"
        )


Smooth = Literal["exp", "floor", "add-k", "none"]


@REWARD_MODELS.register("bleu")
class BLEU(RewardModel):
    """Sentence BLEU against the references, in [0, 1] (Papineni et al. 2002, "BLEU: a
    method for automatic evaluation of machine translation"), as sacreBLEU's
    ``sentence_bleu`` computes it.

    Defaults are sacreBLEU's: 4-grams, ``"exp"`` smoothing (Chen and Cherry 2014, method 3),
    effective order, the ``13a`` tokenizer (reimplemented exactly; ``tokenize="none"`` splits
    on whitespace only). Reads ``batch.references``. ``[B]``.
    """

    default_name = "bleu"
    needs = ("references",)
    argument_rules: ClassVar[dict[str, Rule]] = {
        "max_order": count(1, integer=True),
        "smooth": OneOf(("exp", "floor", "add-k", "none")),
        "smooth_value": positive(none=True),
        "effective_order": OneOf((True, False)),
        "lowercase": OneOf((True, False)),
        "tokenize": OneOf(("13a", "none")),
    }

    def __init__(
        self,
        max_order: int = 4,
        smooth: Smooth = "exp",
        smooth_value: float | None = None,
        effective_order: bool = True,
        lowercase: bool = False,
        tokenize: Literal["13a", "none"] = "13a",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.max_order = int(max_order)
        self.smooth: Smooth = smooth
        self.smooth_value = None if smooth_value is None else float(smooth_value)
        self.effective_order = bool(effective_order)
        self.lowercase = bool(lowercase)
        self.tokenize: Literal["13a", "none"] = tokenize

    def forward(self, batch: TextBatch) -> Tensor:
        references = references_of(batch, f"BLEU ({self.name!r})")
        scores = [
            sentence_bleu(
                hyp,
                refs,
                max_order=self.max_order,
                smooth=self.smooth,
                smooth_value=self.smooth_value,
                effective_order=self.effective_order,
                lowercase=self.lowercase,
                tokenize=self.tokenize,
            )
            for hyp, refs in zip(batch.completions, references, strict=True)
        ]
        return per_completion(scores, batch)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, max_order={self.max_order}, smooth={self.smooth!r}"


__all__ = ["BLEU", "SMOOTH_DEFAULTS", "ChrF", "sentence_bleu", "sentence_chrf", "tokenize_13a"]
