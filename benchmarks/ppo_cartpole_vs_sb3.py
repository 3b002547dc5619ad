"""Speed and score benchmark: rlkit PPO vs Stable-Baselines3 PPO on CartPole-v1.

Both libraries train in the same process with the same hyperparameters, thread count and
device; runs alternate (rlkit, sb3, sb3, rlkit, ...) so machine noise hits both alike.
Every timing is printed next to its peer figure (the SB3 run or raw env stepping). Both
libraries also evaluate every ``--eval-every`` env steps during training (evaluation time taken
out of every timing), which gives the training time to a score threshold beside steps/s.

    python benchmarks/ppo_cartpole_vs_sb3.py                    # about a minute on 2 cores
    python benchmarks/ppo_cartpole_vs_sb3.py --seeds 0 1 2 --repeats 2 --json bench.json
    python benchmarks/ppo_cartpole_vs_sb3.py --compute reference   # rlkit on plain autograd

Stable-Baselines3 is the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlkit
from rlkit.agents import PPO
from rlkit.envs import make_vec_env
from rlkit.prototypes import Evaluate

ENV_ID = "CartPole-v1"
NUM_ENVS = 8
EVAL_EPISODES = 20
#: train seed + this = evaluation seed (rlkit's ``evaluate`` default; used for SB3 too).
EVAL_SEED_OFFSET = 10_000
#: rlkit compute backends and torch.compile backends (``--compute``, ``--compiler``).
COMPUTE_CHOICES = ("fast", "reference", "compile")
COMPILER_CHOICES = ("inductor", "aot_eager", "eager")
#: default score threshold and evaluation interval of this benchmark (10 evaluations per run).
THRESHOLD = 475.0
EVAL_EVERY = 10_000

#: identical PPO hyperparameters, named as in rlkit (SB3 names in :func:`train_sb3`).
HYPERPARAMETERS: dict[str, Any] = {
    "num_envs": NUM_ENVS,
    "num_steps": 32,
    "batch_size": 256,
    "num_epochs": 20,
    "lr": 1e-3,
    "anneal_lr": False,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "clip_range": 0.2,
    "clip_range_vf": None,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "normalize_advantages": True,
    "network": "separate actor/critic MLPs 64-64 tanh, orthogonal init",
    "adam_eps": 1e-8,  # SB3's default (rlkit's is 1e-5); set equal for an identical setup
    "device": "cpu",
}


@dataclasses.dataclass
class RunResult:
    """One training run of one library."""

    library: str
    seed: int
    repeat: int
    order: int
    steps: int
    train_s: float
    sps: float
    return_mean: float
    return_std: float
    threads: int
    #: seconds of the training call spent collecting rollouts and in the gradient updates.
    rollout_s: float = 0.0
    update_s: float = 0.0
    #: rlkit only (None for SB3): the compute backend's name and its report's lines, one per
    #: component ("component: implementation (fallback: why)").
    backend: str | None = None
    backend_report: list[str] | None = None
    #: seconds spent in intermediate evaluations during the training call (not in train_s).
    eval_s: float = 0.0
    #: intermediate evaluations: step, train_s (training seconds before it, evaluations
    #: excluded), return_mean, return_std.
    evals: list[dict[str, float]] = dataclasses.field(default_factory=list)
    #: the first intermediate evaluation with return_mean >= threshold: its env step and
    #: training seconds (evaluations excluded); None if not reached (or not evaluated).
    threshold_step: int | None = None
    threshold_s: float | None = None


# ----------------------------------------------------------------- evaluation during training
@dataclasses.dataclass
class EvalLog:
    """Intermediate evaluations of one training call, timed so that their wall time can be
    taken out of the training time (``every=None``: no intermediate evaluation)."""

    every: int | None
    threshold: float
    #: perf_counter() when the timed training call started (:meth:`start`).
    t0: float = 0.0
    #: seconds spent evaluating so far (building and closing eval envs included).
    eval_s: float = 0.0
    points: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def start(self) -> None:
        """Call right before the timed training call."""
        self.t0 = time.perf_counter()
        self.eval_s = 0.0
        self.points = []

    def record(self, step: int, begin: float, end: float, result: dict[str, float]) -> None:
        """One evaluation that ran from ``begin`` to ``end`` (perf_counter) at env ``step``."""
        self.points.append(
            {
                "step": step,
                "train_s": begin - self.t0 - self.eval_s,
                "return_mean": float(result["return_mean"]),
                "return_std": float(result["return_std"]),
            }
        )
        self.eval_s += end - begin

    def reached(self) -> tuple[int | None, float | None]:
        """Env step and training seconds of the first evaluation at or above the threshold."""
        for point in self.points:
            if point["return_mean"] >= self.threshold:
                return int(point["step"]), point["train_s"]
        return None, None


class TimedEvaluate(Evaluate):
    """rlkit's :class:`~rlkit.prototypes.Evaluate` (20 deterministic episodes on a fixed env
    copy seeded train seed + 10000, at iteration boundaries; training never stops), with the
    time spent evaluating recorded in an :class:`EvalLog`."""

    def __init__(self, log: EvalLog) -> None:
        assert log.every is not None
        super().__init__(every=log.every, episodes=EVAL_EPISODES)
        self.log = log

    def on_train_start(self, agent: Any) -> None:
        begin = time.perf_counter()
        super().on_train_start(agent)  # builds the evaluation env
        self.log.eval_s += time.perf_counter() - begin

    def on_iteration(self, agent: Any, metrics: dict[str, float]) -> bool:
        begin = time.perf_counter()
        done = len(self.history)
        stop = super().on_iteration(agent, metrics)
        if len(self.history) > done:
            step, result = self.history[-1]
            self.log.record(step, begin, time.perf_counter(), result)
        return stop

    def on_train_end(self, agent: Any) -> None:
        begin = time.perf_counter()
        super().on_train_end(agent)  # closes the evaluation env
        self.log.eval_s += time.perf_counter() - begin


def sb3_evaluator(
    log: EvalLog, make_eval_env: Callable[[], Any], steps: int, iteration: int | None
) -> Any:
    """A Stable-Baselines3 callback doing what :class:`TimedEvaluate` does for rlkit: 20
    deterministic episodes (``evaluate_policy``) on a fresh env from ``make_eval_env`` (seeded
    train seed + 10000) once training passes each multiple of ``log.every`` env steps, at the
    point that matches an rlkit iteration boundary, timed into ``log``.

    ``iteration=None`` (on-policy): rlkit evaluates after a rollout's update, so SB3 does at
    the start of the next rollout (after ``train()``) or at the end of training.
    ``iteration=n`` (off-policy): rlkit's iterations end every ``n`` env steps (and at the
    last step) with the updates of every completed ``train_freq`` round done; SB3 evaluates
    at that env step in ``_on_step``, or, when a round ends at that step, after its
    ``train()`` (start of the next rollout or end of training).
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.utils import should_collect_more_steps

    assert log.every is not None
    every = log.every

    class TimedSB3Evaluate(BaseCallback):
        def __init__(self) -> None:
            super().__init__(verbose=0)
            self.next_step = every
            self.pending = False

        def _evaluate(self) -> None:
            begin = time.perf_counter()
            env = make_eval_env()
            returns, _ = evaluate_policy(
                self.model,
                env,
                n_eval_episodes=EVAL_EPISODES,
                deterministic=True,
                return_episode_rewards=True,
            )
            env.close()
            result = {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns))}
            step = int(self.model.num_timesteps)  # (self.num_timesteps updates in on_step only)
            log.record(step, begin, time.perf_counter(), result)
            self.next_step = (step // every + 1) * every
            self.pending = False

        def _due(self) -> bool:
            if iteration is None:
                return bool(self.model.num_timesteps >= self.next_step)
            return self.pending

        def _on_step(self) -> bool:
            if iteration is None or self.pending or self.num_timesteps < self.next_step:
                return True
            if self.num_timesteps % iteration and self.num_timesteps < steps:
                return True  # not where an rlkit iteration ends
            loc = self.locals
            if should_collect_more_steps(
                loc["train_freq"], loc["num_collected_steps"], loc["num_collected_episodes"]
            ):
                self._evaluate()  # mid-round: no update is due at this step
            else:
                self.pending = True  # the round ends here: evaluate after its update
            return True

        def _on_rollout_start(self) -> None:
            if self._due():
                self._evaluate()

        def _on_training_end(self) -> None:
            if self._due():
                self._evaluate()

    return TimedSB3Evaluate()


# --------------------------------------------------------------------------- helpers
def _import_sb3() -> Any:
    """Import stable_baselines3 lazily; exit with an install hint if it is missing."""
    try:
        import stable_baselines3
    except ImportError:
        sys.exit(
            "this benchmark needs Stable-Baselines3 (the optional 'bench' extra): "
            'pip install -e ".[bench]"'
        )
    return stable_baselines3


def _time_method(obj: Any, name: str, totals: dict[str, float]) -> None:
    """Accumulate the wall time of ``obj.name(...)`` calls in ``totals[name]``."""
    original = getattr(obj, name)
    totals[name] = 0.0

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start

    setattr(obj, name, timed)


def _rlkit_agent(seed: int, threads: int, compute: str = "fast", compiler: str = "inductor") -> PPO:
    """rlkit PPO on a fresh seeded CartPole vector env, with the shared hyperparameters, on
    the ``compute`` backend ("fast": hand-written CPU kernels and closed-form loss
    derivatives, "reference": plain nn.Module + autograd, "compile": torch.compile of the
    update with ``compiler``; same maths)."""
    env = make_vec_env(ENV_ID, num_envs=NUM_ENVS, seed=seed)
    hp = {k: v for k, v in HYPERPARAMETERS.items() if k not in ("num_envs", "network")}
    return PPO(env, seed=seed, num_threads=threads, compute=compute, compiler=compiler, **hp)


def rlkit_run(
    agent: Any,
    seed: int,
    steps: int,
    repeat: int,
    order: int,
    log: EvalLog,
    phase_names: tuple[str, str],
) -> RunResult:
    """Train an rlkit agent (timed, split into ``phase_names``: collection and updates; the
    intermediate evaluations of ``log`` taken out), then evaluate it (final return)."""
    phases: dict[str, float] = {}
    for name in phase_names:
        _time_method(agent, name, phases)
    callbacks = TimedEvaluate(log) if log.every is not None else None
    log.start()
    agent.train(steps, progress_bar=False, callbacks=callbacks)
    train_s = time.perf_counter() - log.t0 - log.eval_s
    threads = torch.get_num_threads()
    result = agent.evaluate(episodes=EVAL_EPISODES)  # fresh env, seed + EVAL_SEED_OFFSET
    agent.env.close()
    reached_step, reached_s = log.reached()
    return RunResult(
        "rlkit",
        seed,
        repeat,
        order,
        agent.global_step,
        train_s,
        agent.global_step / train_s,
        result["return_mean"],
        result["return_std"],
        threads,
        phases[phase_names[0]],
        phases[phase_names[1]],
        backend=agent.backend.name,
        backend_report=[str(c) for c in agent.backend_report.choices],
        eval_s=log.eval_s,
        evals=list(log.points),
        threshold_step=reached_step,
        threshold_s=reached_s,
    )


def sb3_run(
    model: Any,
    make_eval_env: Callable[[], Any],
    seed: int,
    steps: int,
    repeat: int,
    order: int,
    log: EvalLog,
    iteration: int | None,
) -> RunResult:
    """Train a Stable-Baselines3 model (timed, split into collection and updates; the
    intermediate evaluations of ``log`` taken out, see :func:`sb3_evaluator`), then evaluate
    it (final return) on a fresh env from ``make_eval_env``."""
    from stable_baselines3.common.evaluation import evaluate_policy

    phases: dict[str, float] = {}
    _time_method(model, "collect_rollouts", phases)
    _time_method(model, "train", phases)
    callback = sb3_evaluator(log, make_eval_env, steps, iteration) if log.every else None
    log.start()
    model.learn(total_timesteps=steps, progress_bar=False, callback=callback)
    train_s = time.perf_counter() - log.t0 - log.eval_s
    threads = torch.get_num_threads()
    eval_env = make_eval_env()
    returns, _ = evaluate_policy(
        model,
        eval_env,
        n_eval_episodes=EVAL_EPISODES,
        deterministic=True,
        return_episode_rewards=True,
    )
    eval_env.close()
    model.get_env().close()
    reached_step, reached_s = log.reached()
    return RunResult(
        "sb3",
        seed,
        repeat,
        order,
        int(model.num_timesteps),
        train_s,
        model.num_timesteps / train_s,
        float(np.mean(returns)),
        float(np.std(returns)),
        threads,
        phases["collect_rollouts"],
        phases["train"],
        eval_s=log.eval_s,
        evals=list(log.points),
        threshold_step=reached_step,
        threshold_s=reached_s,
    )


def train_rlkit(
    seed: int,
    steps: int,
    threads: int,
    repeat: int,
    order: int,
    compute: str = "fast",
    compiler: str = "inductor",
    eval_every: int | None = EVAL_EVERY,
    threshold: float = THRESHOLD,
) -> RunResult:
    """Build, train (timed) and evaluate rlkit PPO."""
    torch.set_num_threads(threads)
    agent = _rlkit_agent(seed, threads, compute, compiler)
    log = EvalLog(eval_every, threshold)
    return rlkit_run(agent, seed, steps, repeat, order, log, ("collect_rollout", "update"))


def train_sb3(
    seed: int,
    steps: int,
    threads: int,
    repeat: int,
    order: int,
    eval_every: int | None = EVAL_EVERY,
    threshold: float = THRESHOLD,
) -> RunResult:
    """Build, train (timed) and evaluate Stable-Baselines3 PPO."""
    _import_sb3()
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    env = sb3_make_vec_env(ENV_ID, n_envs=NUM_ENVS, seed=seed)
    model = SB3PPO(
        "MlpPolicy",
        env,
        learning_rate=hp["lr"],
        n_steps=hp["num_steps"],
        batch_size=hp["batch_size"],
        n_epochs=hp["num_epochs"],
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        clip_range=hp["clip_range"],
        clip_range_vf=hp["clip_range_vf"],
        normalize_advantage=hp["normalize_advantages"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        max_grad_norm=hp["max_grad_norm"],
        policy_kwargs={
            "net_arch": {"pi": [64, 64], "vf": [64, 64]},
            "activation_fn": torch.nn.Tanh,
        },
        device=hp["device"],
        seed=seed,
        verbose=0,
    )

    def make_eval_env() -> Any:  # 8 envs, like rlkit's evaluation env
        return sb3_make_vec_env(ENV_ID, n_envs=NUM_ENVS, seed=seed + EVAL_SEED_OFFSET)

    log = EvalLog(eval_every, threshold)
    return sb3_run(model, make_eval_env, seed, steps, repeat, order, log, None)


def rollout_throughput(
    threads: int, calls: int, rounds: int, compute: str = "fast", compiler: str = "inductor"
) -> dict[str, Any]:
    """rlkit ``collect_rollout`` steps/s vs raw random-action stepping of the same vector env.

    Each round times ``calls`` rollouts (after a warm-up) and the same number of raw env steps;
    the medians over rounds are reported.
    """
    torch.set_num_threads(threads)
    agent = _rlkit_agent(0, threads, compute, compiler)
    raw_env = make_vec_env(ENV_ID, num_envs=NUM_ENVS, seed=0)
    per_call = agent.config.num_steps * agent.num_envs
    vector_steps = calls * agent.config.num_steps

    def time_rollouts(n: int) -> float:
        total = 0.0
        for _ in range(n):
            start = time.perf_counter()
            agent.collect_rollout()
            total += time.perf_counter() - start
            agent.storage.reset()
        return total

    def time_raw(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            raw_env.step(raw_env.action_space.sample())
        return time.perf_counter() - start

    time_rollouts(5)  # warm-up
    time_raw(5 * agent.config.num_steps)
    rlkit_sps, raw_sps = [], []
    for _ in range(rounds):
        rlkit_sps.append(calls * per_call / time_rollouts(calls))
        raw_sps.append(vector_steps * NUM_ENVS / time_raw(vector_steps))
    agent.env.close()
    raw_env.close()
    rlkit_med, raw_med = statistics.median(rlkit_sps), statistics.median(raw_sps)
    return {
        "env_steps_per_round": calls * per_call,
        "rounds": rounds,
        "rlkit_rollout_sps": rlkit_med,
        "raw_env_sps": raw_med,
        "fraction": rlkit_med / raw_med,
        "rlkit_rollout_sps_all": rlkit_sps,
        "raw_env_sps_all": raw_sps,
    }


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict[str, Any]:
    """CPU count, library versions and the torch thread count used."""
    sb3 = _import_sb3()
    return {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "rlkit": rlkit.__version__,
        "stable_baselines3": sb3.__version__,
    }


# --------------------------------------------------------------------------- reporting
def _range(values: list[float]) -> str:
    return f"{min(values):,.0f} .. {max(values):,.0f}"


def _score(run: RunResult) -> str:
    return f"{run.return_mean:.1f} ± {run.return_std:.1f}"


def _censored_median(values: list[float | None]) -> float | None:
    """Median counting ``None`` (threshold not reached) as infinitely late; ``None`` when that
    median is itself not reached (fewer than half of the runs reached the threshold)."""
    median = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(median) else float(median)


def threshold_summary(runs: list[RunResult]) -> dict[str, Any]:
    """Time to the threshold of one library's runs: how many reached it, and the medians of
    the training seconds and env steps (runs that did not reach it count as infinitely late)."""
    return {
        "reached": sum(r.threshold_s is not None for r in runs),
        "runs": len(runs),
        "time_s_median": _censored_median([r.threshold_s for r in runs]),
        "steps_median": _censored_median(
            [None if r.threshold_step is None else float(r.threshold_step) for r in runs]
        ),
        "time_s_all": [r.threshold_s for r in runs],
        "steps_all": [r.threshold_step for r in runs],
    }


def summarize(
    runs: list[RunResult], threshold: float | None = None, eval_every: int | None = None
) -> dict[str, Any]:
    """Paired ratios (same seed and repeat) and per-library medians / score summaries; with
    ``eval_every`` (intermediate evaluations ran), also the time to ``threshold``."""
    by_key = {(r.library, r.seed, r.repeat): r for r in runs}
    pairs = []
    for r in runs:
        if r.library != "rlkit":
            continue
        peer = by_key[("sb3", r.seed, r.repeat)]
        pairs.append({"seed": r.seed, "repeat": r.repeat, "ratio": r.sps / peer.sps})
    out: dict[str, Any] = {
        "pairs": pairs,
        "ratio_median": statistics.median(p["ratio"] for p in pairs),
    }
    for lib in ("rlkit", "sb3"):
        mine = [r for r in runs if r.library == lib]
        means = [r.return_mean for r in mine]
        out[lib] = {
            "sps_median": statistics.median(r.sps for r in mine),
            "sps_all": [r.sps for r in mine],
            "return_mean_of_runs": float(np.mean(means)),
            "return_std_across_runs": float(np.std(means)),
            "return_std_within_run_mean": float(np.mean([r.return_std for r in mine])),
            "eval_s_median": statistics.median(r.eval_s for r in mine),
        }
        if eval_every is not None:
            out[lib]["threshold"] = threshold_summary(mine)
    if eval_every is not None:
        rl_t, sb_t = out["rlkit"]["threshold"], out["sb3"]["threshold"]
        both = rl_t["time_s_median"] is not None and sb_t["time_s_median"] is not None
        out["threshold"] = {
            "value": threshold,
            "eval_every": eval_every,
            "time_ratio": sb_t["time_s_median"] / rl_t["time_s_median"] if both else None,
            "time_ratio_definition": "sb3 / rlkit median training seconds to the threshold",
        }
    return out


BACKEND_TEXT = {
    "fast": "hand-written CPU kernels and closed-form loss derivatives",
    "reference": "plain nn.Module + autograd",
    "compile": "torch.compile of the update",
}


def backend_line(args: argparse.Namespace) -> str:
    """What the rlkit path was asked to be, for the setup lines."""
    text = f"{args.compute} backend ({BACKEND_TEXT.get(args.compute, '?')}"
    if args.compute == "compile":
        text += f", compiler {args.compiler}"
    return text + ")"


def print_backend(runs: list[RunResult]) -> None:
    """``rlkit backend: <name>`` and the component choices of the first rlkit run."""
    run = next((r for r in runs if r.library == "rlkit"), None)
    if run is None:
        return
    print(f"rlkit backend: {run.backend}")
    for line in run.backend_report or []:
        print(f"  {line}")
    if any(r.backend_report != run.backend_report for r in runs if r.library == "rlkit"):
        print("  (other rlkit runs reported different choices: see the JSON)")


def _reached(run: RunResult) -> str:
    if run.threshold_s is None or run.threshold_step is None:
        return "not reached"
    return f"{run.threshold_s:.2f} s @ {run.threshold_step:,}"


def _median_text(entry: dict[str, Any]) -> str:
    if entry["time_s_median"] is None:
        return f"not reached ({entry['reached']}/{entry['runs']})"
    return f"{entry['time_s_median']:.2f} s ({entry['reached']}/{entry['runs']})"


def print_threshold(
    args: argparse.Namespace, runs: list[RunResult], summary: dict[str, Any]
) -> None:
    """Per run and in median: training seconds and env steps to the first evaluation at or
    above the threshold."""
    if "threshold" not in summary:
        print("time to threshold: not measured (--no-eval)")
        print()
        return
    print(
        f"time to a return >= {args.threshold:g}: training seconds (evaluations excluded) "
        "and env steps"
    )
    print(
        f"at the first evaluation reaching it ({EVAL_EPISODES} deterministic episodes every "
        f"{args.eval_every:,} env steps)"
    )
    header = f"{'seed':>4} {'rep':>3} | {'rlkit':>24} {'sb3':>24}"
    print(header)
    print("-" * len(header))
    by_key = {(r.library, r.seed, r.repeat): r for r in runs}
    for pair in summary["pairs"]:
        mine = by_key[("rlkit", pair["seed"], pair["repeat"])]
        peer = by_key[("sb3", pair["seed"], pair["repeat"])]
        print(f"{pair['seed']:>4} {pair['repeat']:>3} | {_reached(mine):>24} {_reached(peer):>24}")
    print("-" * len(header))
    rl, sb = summary["rlkit"]["threshold"], summary["sb3"]["threshold"]
    ratio = summary["threshold"]["time_ratio"]
    ratio_text = "-" if ratio is None else f"{ratio:.2f}"
    print(
        f"{'median':<8} | {_median_text(rl):>24} {_median_text(sb):>24}"
        f"   ratio sb3/rlkit {ratio_text}"
    )
    print("  median: over runs, a run that never reached it counting as infinitely late")
    print("  training goes on past the threshold, so steps/s above are for the whole run")
    print(
        f"  seconds spent evaluating (excluded), median per run: rlkit "
        f"{summary['rlkit']['eval_s_median']:.1f}, sb3 {summary['sb3']['eval_s_median']:.1f}"
    )
    print()


def print_report(
    machine: dict[str, Any],
    args: argparse.Namespace,
    runs: list[RunResult],
    summary: dict[str, Any],
    rollout: dict[str, Any] | None,
) -> None:
    """The readable table."""
    print()
    print(
        f"PPO on {ENV_ID}: rlkit {machine['rlkit']} vs Stable-Baselines3 "
        f"{machine['stable_baselines3']}"
    )
    print(
        f"machine: {machine['cpu_count']} CPUs ({machine['affinity_cpus']} usable), "
        f"{machine['processor']}, torch {machine['torch']}, torch threads {args.threads}, "
        f"python {machine['python']}"
    )
    print(
        f"setup: {NUM_ENVS} envs x 32 steps, minibatch 256, 20 epochs, lr 1e-3 constant, "
        "gamma 0.98, lambda 0.8,"
    )
    print(
        "       clip 0.2, ent 0.0, vf 0.5, grad-norm 0.5, adv. norm, 64-64 tanh actor/critic, CPU"
    )
    print(
        f"       {args.steps:,} steps/run; eval {EVAL_EPISODES} deterministic episodes on a "
        f"fresh env seeded train seed + {EVAL_SEED_OFFSET}"
    )
    print("       Adam eps 1e-8 for both (SB3's default; rlkit's default is 1e-5)")
    print(f"       rlkit path: {backend_line(args)}")
    print_backend(runs)
    print()
    header = (
        f"{'seed':>4} {'rep':>3} | {'rlkit steps/s':>13} {'sb3 steps/s':>12} "
        f"{'ratio':>6} | {'rlkit return':>14} {'sb3 return':>14}"
    )
    print(header)
    print("-" * len(header))
    by_key = {(r.library, r.seed, r.repeat): r for r in runs}
    for pair in summary["pairs"]:
        mine = by_key[("rlkit", pair["seed"], pair["repeat"])]
        peer = by_key[("sb3", pair["seed"], pair["repeat"])]
        print(
            f"{pair['seed']:>4} {pair['repeat']:>3} | {mine.sps:>13,.0f} {peer.sps:>12,.0f} "
            f"{pair['ratio']:>6.2f} | {_score(mine):>14} {_score(peer):>14}"
        )
    print("-" * len(header))
    rl, sb = summary["rlkit"], summary["sb3"]
    n = len(summary["pairs"])
    if n == 1:
        what = f"mean ± std over the {EVAL_EPISODES} evaluation episodes"
        rl_std, sb_std = runs_std(runs, "rlkit"), runs_std(runs, "sb3")
    else:
        what = f"mean of the {n} runs' {EVAL_EPISODES}-episode means ± std across runs"
        rl_std, sb_std = rl["return_std_across_runs"], sb["return_std_across_runs"]
    rl_score = f"{rl['return_mean_of_runs']:.1f} ± {rl_std:.1f}"
    sb_score = f"{sb['return_mean_of_runs']:.1f} ± {sb_std:.1f}"
    print()
    print(
        f"{'summary over ' + str(n) + ' paired run(s)':<30} {'rlkit':>16} {'sb3':>16} {'ratio':>8}"
    )
    print(
        f"{'  training steps/s, median':<30} {rl['sps_median']:>16,.0f} "
        f"{sb['sps_median']:>16,.0f} {summary['ratio_median']:>8.2f}"
    )
    if n > 1:
        print(f"{'    min .. max':<30} {_range(rl['sps_all']):>16} {_range(sb['sps_all']):>16}")
    print(f"{'  final return':<30} {rl_score:>16} {sb_score:>16}")
    print("  ratio: rlkit/sb3 training steps/s, median of the per-pair ratios")
    print(f"  final return: {what}")
    print()
    print("where the training time goes (median seconds per run; ratio = sb3 / rlkit time)")
    print(f"{'':<30} {'rlkit':>16} {'sb3':>16} {'ratio':>8}")
    for label, field in (
        ("  collecting rollouts", "rollout_s"),
        ("  gradient updates", "update_s"),
    ):
        mine_s = statistics.median(getattr(r, field) for r in runs if r.library == "rlkit")
        peer_s = statistics.median(getattr(r, field) for r in runs if r.library == "sb3")
        print(f"{label:<30} {mine_s:>16.2f} {peer_s:>16.2f} {peer_s / mine_s:>8.2f}")
    print()
    print_threshold(args, runs, summary)
    if rollout is not None:
        print(
            f"rollout only (median of {rollout['rounds']} rounds x "
            f"{rollout['env_steps_per_round']:,} env steps, after a warm-up)"
        )
        print(
            f"{'':<14} {'rlkit collect_rollout':>22} {'raw random-action env':>22} {'fraction':>9}"
        )
        print(
            f"{'  steps/s':<14} {rollout['rlkit_rollout_sps']:>22,.0f} "
            f"{rollout['raw_env_sps']:>22,.0f} {rollout['fraction']:>9.2f}"
        )
        print()


def runs_std(runs: list[RunResult], library: str) -> float:
    """Episode-return std of the (single) run of ``library``."""
    return next(r.return_std for r in runs if r.library == library)


# --------------------------------------------------------------------------- main
def add_common_options(parser: argparse.ArgumentParser, threshold: float, eval_every: int) -> None:
    """The options every *_vs_sb3 benchmark shares: rlkit's backend and the evaluations."""
    parser.add_argument(
        "--compute",
        choices=COMPUTE_CHOICES,
        default=None,
        help="rlkit compute backend: fast (hand-written CPU kernels, closed-form loss "
        "derivatives), reference (plain nn.Module + autograd), compile (torch.compile of the "
        "update); default fast",
    )
    parser.add_argument(
        "--compiler",
        choices=COMPILER_CHOICES,
        default="inductor",
        help="torch.compile backend for --compute compile (default inductor)",
    )
    # deprecated spelling of --compute reference, kept so older command lines still work
    parser.add_argument("--rlkit-autograd", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--threshold",
        type=float,
        default=threshold,
        help=f"score for the time-to-threshold figure (default {threshold:g})",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=eval_every,
        help=f"evaluate {EVAL_EPISODES} deterministic episodes every N env steps during "
        f"training, time excluded (default {eval_every})",
    )
    parser.add_argument(
        "--no-eval",
        action="store_true",
        help="no evaluation during training (only the final one; no time to threshold)",
    )


def check_common_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Resolve --rlkit-autograd into --compute and check the evaluation options."""
    if args.rlkit_autograd:
        if args.compute not in (None, "reference"):
            parser.error("--rlkit-autograd means --compute reference; give only --compute")
        print("note: --rlkit-autograd is deprecated, use --compute reference", file=sys.stderr)
        args.compute = "reference"
    elif args.compute is None:
        args.compute = "fast"
    del args.rlkit_autograd
    if args.eval_every < 1:
        parser.error("--eval-every must be >= 1")


def eval_every_of(args: argparse.Namespace) -> int | None:
    """The intermediate evaluation interval, None with --no-eval."""
    return None if args.no_eval else int(args.eval_every)


def eval_info(args: argparse.Namespace) -> dict[str, Any]:
    """The evaluation settings, for the JSON."""
    return {
        "episodes": EVAL_EPISODES,
        "deterministic": True,
        "seed_offset": EVAL_SEED_OFFSET,
        "during_training": not args.no_eval,
        "every": eval_every_of(args),
        "threshold": args.threshold,
        "time_excluded_from_training": True,
    }


def backend_info(args: argparse.Namespace, runs: list[RunResult]) -> dict[str, Any]:
    """rlkit's requested compute setting and what its first run reported, for the JSON."""
    run = next((r for r in runs if r.library == "rlkit"), None)
    return {
        "compute": args.compute,
        "compiler": args.compiler,
        "name": None if run is None else run.backend,
        "report": None if run is None else run.backend_report,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--repeats", type=int, default=1, help="repeats per seed (noise)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both")
    parser.add_argument(
        "--rollout-calls", type=int, default=40, help="collect_rollout calls per timing round"
    )
    parser.add_argument("--rollout-rounds", type=int, default=3, help="rollout timing rounds")
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    add_common_options(parser, THRESHOLD, EVAL_EVERY)
    args = parser.parse_args(argv)
    check_common_options(parser, args)
    for name in ("steps", "repeats", "threads", "rollout_calls", "rollout_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds must not repeat a seed (use --repeats)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the paired training benchmark, the rollout benchmark, print and optionally save."""
    args = parse_args(argv)
    machine = machine_info(args.threads)
    every = eval_every_of(args)
    runs: list[RunResult] = []
    order = 0
    pair_index = 0
    total = len(args.seeds) * args.repeats
    for repeat in range(args.repeats):
        for seed in args.seeds:
            libs = ("rlkit", "sb3") if pair_index % 2 == 0 else ("sb3", "rlkit")
            for lib in libs:
                if lib == "rlkit":
                    run = train_rlkit(
                        seed,
                        args.steps,
                        args.threads,
                        repeat,
                        order,
                        args.compute,
                        args.compiler,
                        every,
                        args.threshold,
                    )
                else:
                    run = train_sb3(
                        seed, args.steps, args.threads, repeat, order, every, args.threshold
                    )
                order += 1
                runs.append(run)
            pair_index += 1
            print(
                f"[{pair_index}/{total}] seed {seed} repeat {repeat} trained",
                file=sys.stderr,
                flush=True,
            )
    rollout = rollout_throughput(
        args.threads, args.rollout_calls, args.rollout_rounds, args.compute, args.compiler
    )
    summary = summarize(runs, args.threshold, every)
    print_report(machine, args, runs, summary, rollout)
    if args.json is not None:
        payload = {
            "benchmark": "ppo_cartpole_vs_sb3",
            "env": ENV_ID,
            "machine": machine,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "hyperparameters": HYPERPARAMETERS,
            "eval": eval_info(args),
            "rlkit_backend": backend_info(args, runs),
            "runs": [dataclasses.asdict(r) for r in runs],
            "summary": summary,
            "rollout": rollout,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
