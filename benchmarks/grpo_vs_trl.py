"""Speed and reward benchmark: rlkit GRPO vs TRL's ``GRPOTrainer`` on the toy language model.

For each seed both libraries start from the same weights (one :func:`rlkit.lm.toy.make_toy_lm`
per seed, loaded by both), complete the same prompts (:func:`rlkit.lm.toy.toy_prompts`) and are
rewarded 1 when the completion contains the word "cat", with the same GRPO settings (see
``benchmarks/README.md``). Both run in this process, on the CPU, with the same torch thread
count; the order alternates per seed (rlkit first on even seeds, TRL first on odd ones).

Reported per library and seed: the wall time of ``N`` training steps (one step = generate
``prompts x G`` completions, score them, one optimizer step), completion tokens generated per
second, the mean reward over the last 5 steps and the reward curve.

    python benchmarks/grpo_vs_trl.py                        # 3 seeds x 40 steps, ~25 s
    python benchmarks/grpo_vs_trl.py --steps 10 --seeds 0   # quick check
    python benchmarks/grpo_vs_trl.py --json grpo_vs_trl.json

TRL is in the optional ``bench`` extra (``pip install -e ".[bench,lm]"``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

import rlkit

WORD = "cat"
LAST = 5  # the final reward is the mean over the last LAST steps


@dataclasses.dataclass
class Settings:
    """What both libraries are given."""

    steps: int = 40
    prompts: int = 8  # prompts per step
    group_size: int = 4  # completions per prompt (TRL's num_generations)
    max_new_tokens: int = 8  # TRL's max_completion_length
    num_prompts: int = 64  # size of the prompt set (toy_prompts)
    lr: float = 1e-3
    beta: float = 0.04
    clip: float = 0.2
    temperature: float = 1.0
    max_grad_norm: float = 1.0
    threads: int = 1

    @property
    def completions(self) -> int:
        return self.prompts * self.group_size


@dataclasses.dataclass
class Run:
    """One library's run on one seed."""

    library: str
    seed: int
    setup_s: float  # building the agent / trainer (model loading, reference copy)
    train_s: float  # the N steps (agent.train / trainer.train)
    #: completion tokens generated at each step (end-of-sequence token included)
    step_tokens: list[int]
    #: when each step ended, seconds after the train call began
    step_end: list[float]
    rewards: list[float]  # mean reward of each step's completions
    kl: list[float]  # per-token k3 KL to the reference, mean over the step's tokens
    mean_length: float
    threads_after: int

    @property
    def tokens(self) -> int:
        return sum(self.step_tokens)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_s

    @property
    def steady_tokens_per_s(self) -> float:
        """Tokens per second after the first step (whose one-off costs are left out)."""
        if len(self.step_end) < 2:
            return float("nan")
        return sum(self.step_tokens[1:]) / (self.step_end[-1] - self.step_end[0])

    @property
    def steps_per_s(self) -> float:
        return len(self.rewards) / self.train_s

    @property
    def final_reward(self) -> float:
        return statistics.fmean(self.rewards[-LAST:])

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(
            tokens=self.tokens,
            tokens_per_s=self.tokens_per_s,
            steady_tokens_per_s=self.steady_tokens_per_s,
            steps_per_s=self.steps_per_s,
            final_reward=self.final_reward,
        )
        return out


def _import_trl() -> Any:
    try:
        import datasets  # noqa: F401
        import trl
    except ImportError:
        sys.exit(
            "this benchmark needs TRL (the optional 'bench' extra) and transformers (the 'lm' "
            'extra): pip install -e ".[bench,lm]"'
        )
    return trl


def has_word(text: str) -> bool:
    """The TRL-side reward rule: the completion contains WORD as a whitespace-separated word
    (the toy tokenizer decodes to space-separated words, so this equals rlkit's
    ``contains`` reward; the TRL run counts any disagreement)."""
    return WORD in text.split()


# --------------------------------------------------------------------------- rlkit
def run_rlkit(path: Path, prompts: list[str], prompt_tokens: int, s: Settings, seed: int) -> Run:
    from rlkit.agents import GRPO
    from rlkit.envs.text import TextVecEnv

    torch.set_num_threads(s.threads)
    start = time.perf_counter()
    env = TextVecEnv(
        prompts,
        str(path),
        num_prompts=s.prompts,
        group_size=s.group_size,
        max_prompt_tokens=prompt_tokens,
        max_new_tokens=s.max_new_tokens,
        seed=seed,
    )
    agent = GRPO(
        env,
        model=str(path),
        reward_model={"id": "contains", "words": [WORD]},
        lr=s.lr,
        beta=s.beta,
        clip_range=s.clip,
        scale_rewards=True,
        epochs=1,
        minibatch_size=None,  # the whole batch: one optimizer step per iteration
        grad_accum_steps=1,
        temperature=s.temperature,
        top_k=None,
        top_p=1.0,
        max_grad_norm=s.max_grad_norm,
        ent_coef=0.0,
        use_amp=False,
        device="cpu",
        num_threads=s.threads,
        seed=seed,
    )
    setup = time.perf_counter() - start
    rewards: list[float] = []
    kl: list[float] = []
    lengths: list[float] = []
    ends: list[float] = []

    def record(_agent: Any, metrics: dict[str, float]) -> None:
        ends.append(time.perf_counter() - start)
        rewards.append(metrics["reward/contains"])
        kl.append(metrics.get("loss/reference_kl", float("nan")))
        lengths.append(metrics["completion/length"])

    start = time.perf_counter()
    agent.train(s.steps * s.completions, progress_bar=False, tensorboard=False, callbacks=record)
    train = time.perf_counter() - start
    env.close()
    if len(rewards) != s.steps:
        raise RuntimeError(f"rlkit ran {len(rewards)} iterations, expected {s.steps}")
    return Run(
        "rlkit",
        seed,
        setup,
        train,
        # completion/length is the step's mean length (end-of-sequence included)
        [round(n * s.completions) for n in lengths],
        ends,
        rewards,
        kl,
        statistics.fmean(lengths),
        torch.get_num_threads(),
    )


# --------------------------------------------------------------------------- TRL
def run_trl(path: Path, prompts: list[str], s: Settings, seed: int, workdir: Path) -> Run:
    trl = _import_trl()
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback, TrainerCallback

    from rlkit.reward_models import ContainsReward, TextBatch

    torch.set_num_threads(s.threads)
    rewards: list[float] = []
    tokens: list[int] = []
    texts: list[str] = []

    def reward(completions: list[str], completion_ids: list[list[int]], **_: Any) -> list[float]:
        out = [1.0 if has_word(c) else 0.0 for c in completions]
        texts.extend(completions)
        rewards.append(statistics.fmean(out))
        tokens.append(sum(len(ids) for ids in completion_ids))
        return out

    reward.__name__ = "contains"
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="left")
    config = trl.GRPOConfig(
        output_dir=str(workdir / f"trl-{seed}"),
        # one optimizer step consumes exactly the prompts x G completions generated for it:
        # generation_batch_size = per_device_train_batch_size x steps_per_generation (= grad
        # accumulation steps = 1), so TRL generates once per step and old log-probs == new
        per_device_train_batch_size=s.completions,
        gradient_accumulation_steps=1,
        num_generations=s.group_size,
        max_completion_length=s.max_new_tokens,
        temperature=s.temperature,
        top_p=1.0,
        top_k=0,
        learning_rate=s.lr,
        beta=s.beta,
        # the k3 KL estimate as a loss term, as rlkit (TRL's default True also multiplies it
        # by the differentiable ratio, DeepSeek-V3.2's unbiased gradient: another gradient)
        use_bias_correction_kl=False,
        epsilon=s.clip,
        num_iterations=1,
        scale_rewards=True,  # "group": (r - group mean) / (group std + 1e-4)
        # "dapo": sum of per-token losses / completion tokens of the generation batch, i.e. the
        # token mean over the step's completions (rlkit's)
        loss_type="dapo",
        disable_dropout=True,
        optim="adamw_torch",
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=s.max_grad_norm,
        max_steps=s.steps,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        seed=seed,
        report_to="none",
        logging_strategy="no",
        save_strategy="no",
        disable_tqdm=True,
        log_completions=False,
        dataloader_num_workers=0,
    )
    trainer = trl.GRPOTrainer(
        model=str(path),
        reward_funcs=reward,
        args=config,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer,
    )
    kl: list[float] = []
    ends: list[float] = []

    class Record(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            ends.append(time.perf_counter() - start)
            values = trainer._metrics["train"].get("kl") or [float("nan")]
            kl.append(float(values[-1]))

    trainer.add_callback(Record())
    trainer.remove_callback(PrinterCallback)  # logging off: no metrics printed at the end
    if trainer.args.bf16 or trainer.args.fp16 or trainer.model.is_gradient_checkpointing:
        raise RuntimeError("TRL: expected float32 and no gradient checkpointing")
    setup = time.perf_counter() - start
    start = time.perf_counter()
    trainer.train()
    train = time.perf_counter() - start
    # the TRL-side rule against rlkit's reward model, on every completion TRL generated
    with torch.no_grad():
        theirs = ContainsReward([WORD]).score(
            TextBatch(prompts=[""] * len(texts), completions=texts)
        )
    disagreements = int((torch.tensor([float(has_word(t)) for t in texts]) != theirs).sum())
    if disagreements:
        warnings.warn(
            f"TRL seed {seed}: the reward rule and rlkit's 'contains' disagreed on "
            f"{disagreements} of {len(texts)} completions",
            stacklevel=1,
        )
    if len(rewards) != s.steps or trainer.state.global_step != s.steps:
        raise RuntimeError(
            f"TRL ran {len(rewards)} generation rounds and {trainer.state.global_step} optimizer "
            f"steps, expected {s.steps} of each"
        )
    return Run(
        "trl",
        seed,
        setup,
        train,
        tokens,
        ends,
        rewards,
        kl,
        sum(tokens) / (s.steps * s.completions),
        torch.get_num_threads(),
    )


# --------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict[str, Any]:
    import transformers

    trl = _import_trl()
    return {
        "cpu_count": os.cpu_count(),
        "processor": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "rlkit": rlkit.__version__,
        "torch_threads": threads,
    }


# --------------------------------------------------------------------------- reporting
def _mean_sd(values: list[float], fmt: str) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:{fmt}} ± {sd:{fmt}}"


def report(runs: list[Run], s: Settings, machine: dict[str, Any]) -> str:
    lines = [
        f"GRPO, toy LM, {s.steps} steps of {s.prompts} prompts x {s.group_size} completions "
        f"(max {s.max_new_tokens} new tokens), reward: completion contains {WORD!r}",
        f"CPU: {machine['processor']} ({machine['cpu_count']} cores), torch threads "
        f"{s.threads}; torch {machine['torch']}, transformers {machine['transformers']}, "
        f"trl {machine['trl']}, rlkit {machine['rlkit']}",
        "",
        "| library | seed | setup s | train s | steps/s | tokens/s | tokens/s after step 1 "
        f"| mean length | reward first {LAST} | reward last {LAST} | KL last step |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r.seed, r.library)):
        lines.append(
            f"| {r.library} | {r.seed} | {r.setup_s:.1f} | {r.train_s:.1f} | "
            f"{r.steps_per_s:.2f} | {r.tokens_per_s:,.0f} | {r.steady_tokens_per_s:,.0f} | "
            f"{r.mean_length:.2f} | "
            f"{statistics.fmean(r.rewards[:LAST]):.2f} | {r.final_reward:.2f} | {r.kl[-1]:.4f} |"
        )
    lines += [
        "",
        f"| library | tokens/s | tokens/s after step 1 | train s | reward last {LAST} |",
        "|---|---|---|---|---|",
    ]
    by_lib: dict[str, list[Run]] = {}
    for r in runs:
        by_lib.setdefault(r.library, []).append(r)
    for lib, rs in by_lib.items():
        lines.append(
            f"| {lib} | {_mean_sd([r.tokens_per_s for r in rs], ',.0f')} | "
            f"{_mean_sd([r.steady_tokens_per_s for r in rs], ',.0f')} | "
            f"{_mean_sd([r.train_s for r in rs], '.1f')} | "
            f"{_mean_sd([r.final_reward for r in rs], '.2f')} |"
        )
    if {"rlkit", "trl"} <= by_lib.keys():
        speed = statistics.fmean(r.tokens_per_s for r in by_lib["rlkit"]) / statistics.fmean(
            r.tokens_per_s for r in by_lib["trl"]
        )
        steady = statistics.fmean(
            r.steady_tokens_per_s for r in by_lib["rlkit"]
        ) / statistics.fmean(r.steady_tokens_per_s for r in by_lib["trl"])
        lines += [
            "",
            f"rlkit / TRL tokens per second: {speed:.2f}x ({steady:.2f}x after step 1)",
        ]
    lines += ["", "reward curves (mean reward of each step's completions):"]
    for r in sorted(runs, key=lambda r: (r.seed, r.library)):
        lines.append(f"  {r.library:5s} seed {r.seed}: " + " ".join(f"{x:.2f}" for x in r.rewards))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = Settings()
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=d.steps, help="training steps per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads for both")
    p.add_argument("--prompts", type=int, default=d.prompts, help="prompts per step")
    p.add_argument("--group-size", type=int, default=d.group_size, help="completions per prompt")
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help="tokens")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (both)")
    p.add_argument("--beta", type=float, default=d.beta, help="KL coefficient (both)")
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _import_trl()
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from rlkit.lm.toy import make_toy_lm, toy_prompts

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # TRL's config sets the deprecated `gradient_checkpointing` alias (a FutureWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="trl")
    s = Settings(
        steps=args.steps,
        prompts=args.prompts,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
        lr=args.lr,
        beta=args.beta,
        threads=args.threads,
    )
    torch.set_num_threads(s.threads)
    machine = machine_info(s.threads)
    prompts = toy_prompts(s.num_prompts)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="grpo_vs_trl-") as tmp:
        work = Path(tmp)
        for i, seed in enumerate(args.seeds):
            path = make_toy_lm(work / f"toy-{seed}", seed=seed)
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            width = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
            order = ("rlkit", "trl") if i % 2 == 0 else ("trl", "rlkit")
            for lib in order:
                print(f"[seed {seed}] {lib} ...", file=sys.stderr, flush=True)
                if lib == "rlkit":
                    run = run_rlkit(path, prompts, width, s, seed)
                else:
                    run = run_trl(path, prompts, s, seed, work)
                print(
                    f"[seed {seed}] {lib}: {run.train_s:.1f} s, {run.tokens_per_s:,.0f} tokens/s,"
                    f" reward last {LAST} {run.final_reward:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(run)
    print(report(runs, s, machine))
    if args.json is not None:
        data = {
            "settings": dataclasses.asdict(s),
            "seeds": args.seeds,
            "machine": machine,
            "runs": [r.as_dict() for r in runs],
        }
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
