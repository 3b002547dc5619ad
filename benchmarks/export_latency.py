"""Inference latency benchmark: onnxruntime vs PyTorch eager for exported rlkit policies.

Two untrained PPO policies with rlkit's default networks (a CartPole-v1 MLP and a NatureCNN on
uint8 (4, 84, 84) frames) are exported with ``rlkit.export.to_onnx`` and timed on CPU at
batch 1 and 256, PyTorch and onnxruntime alternating, with the same thread count for both.

    python benchmarks/export_latency.py                    # under a minute on 2 cores
    python benchmarks/export_latency.py --threads 2 --rounds 9 --json latency.json

onnxruntime is the optional ``export`` extra: ``pip install -e ".[export]"``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

import rlkit
from rlkit.agents import PPO
from rlkit.envs import make_vec_env
from rlkit.export import OnnxPolicy, sample_observations, to_onnx

EXTRA_HINT = (
    "this benchmark needs onnxruntime, onnx and onnxscript (the optional 'export' extra): "
    'pip install -e ".[export]"'
)
#: shape of the image observations (stacked 84x84 grey frames, as on Atari).
FRAME_SHAPE = (4, 84, 84)
#: the two policies: name -> what it is.
MODELS = {
    "cartpole-mlp": "PPO on CartPole-v1: Box(4,) float32 -> 64-64 tanh actor/critic -> Discrete(2)",
    "nature-cnn": "PPO on uint8 (4, 84, 84) frames: NatureCNN (512 features) -> Discrete(6)",
}
#: the two paths timed for each runtime: name -> (PyTorch call, onnxruntime call).
PATHS = {
    "graph": ("acting_path()(*tensors)", "OnnxPolicy.run(arrays)"),
    "act": ("agent.act(obs, deterministic=True)", "OnnxPolicy.act(obs)"),
}
RUNTIMES = ("torch", "onnxruntime")


class FrameEnv(gym.Env[np.ndarray, np.int64]):
    """A stand-in Atari-like env: random uint8 (4, 84, 84) frames, 6 actions, no learning signal.

    Only its spaces matter here: the agent needs an env to be built, latency needs none.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, FRAME_SHAPE, np.uint8)
        self.action_space = spaces.Discrete(6)
        self._t = 0

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, FRAME_SHAPE, dtype=np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._frame(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        return self._frame(), 0.0, False, self._t >= 100, {}


@dataclasses.dataclass
class Measurement:
    """Timings of one (model, batch, path, runtime) call, one entry per round."""

    model: str
    batch: int
    path: str
    runtime: str
    #: calls per round (fixed after the warm-up so each round lasts about --round-time).
    calls: int = 0
    #: seconds per call, one per round.
    seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.seconds) * 1e6

    @property
    def obs_per_s(self) -> float:
        return self.batch / statistics.median(self.seconds)


@dataclasses.dataclass
class Case:
    """One policy at one batch size: the callables to time and their prepared inputs."""

    model: str
    batch: int
    calls: dict[tuple[str, str], Callable[[], Any]]


# --------------------------------------------------------------------------- helpers
def _import_onnxruntime() -> Any:
    """Import onnxruntime (and check onnx, onnxscript) lazily; exit with a hint if missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError:
        sys.exit(EXTRA_HINT)
    return onnxruntime


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the ONNX exporter's warnings (missing torchvision ops, deprecations)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def build_agent(model: str, threads: int) -> PPO:
    """An untrained PPO agent with the default networks for ``model`` (seed 0, CPU)."""
    if model == "cartpole-mlp":
        env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    else:
        env = make_vec_env(FrameEnv, num_envs=1, seed=0)
    agent = PPO(env, seed=0, device="cpu", num_threads=threads, num_steps=8, batch_size=8)
    env.close()
    return agent


def onnx_runner(agent: PPO, path: Path, threads: int, ort: Any) -> tuple[OnnxPolicy, str]:
    """Export ``agent`` to ``path`` (parity-checked) and load it; returns the runner and the
    session's origin. ``OnnxPolicy`` pins one intra-op thread, so for ``threads > 1`` its session
    is replaced by one built here with ``intra_op_num_threads=threads`` (otherwise the same)."""
    with _quiet_exporter():
        result = to_onnx(agent, path)
    assert result.parity is not None and result.parity.ok, result.parity
    policy = OnnxPolicy(path)
    origin = "OnnxPolicy's own session (intra_op_num_threads=1)"
    if threads != 1:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        policy.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        origin = f"session built by this script (intra_op_num_threads={threads})"
    return policy, origin


def graph_info(path: Path) -> dict[str, Any]:
    """The exported graph's operators and whether it kept the critic (value head / trunk),
    which the eager forward computes and ``act`` discards."""
    import onnx

    graph = onnx.load(str(path)).graph
    names = [init.name for init in graph.initializer]
    return {
        "ops": [node.op_type for node in graph.node],
        "critic_in_graph": any("value_head" in n or "critic_trunk" in n for n in names),
    }


def make_cases(
    agent: PPO, policy: OnnxPolicy, model: str, batch_sizes: list[int], seed: int = 0
) -> tuple[list[Case], dict[str, Any]]:
    """Prepared inputs and the four callables per batch size; checks both agree on actions."""
    acting = agent.acting_path().eval()
    cases: list[Case] = []
    agreement: dict[str, bool] = {}
    for i, batch in enumerate(batch_sizes):
        obs = sample_observations(agent.observation_space, batch, np.random.default_rng(seed + i))
        arrays = [obs]
        tensors = (torch.as_tensor(obs),)
        with torch.inference_mode():
            torch_actions = acting(*tensors).numpy()
        same_graph = np.array_equal(torch_actions, policy.run(arrays))
        same_act = np.array_equal(agent.act(obs, deterministic=True), policy.act(obs))
        agreement[str(batch)] = bool(same_graph and same_act)
        if not agreement[str(batch)]:
            print(f"warning: {model} batch {batch}: actions differ", file=sys.stderr)
        calls: dict[tuple[str, str], Callable[[], Any]] = {
            ("graph", "torch"): functools.partial(acting, *tensors),
            ("graph", "onnxruntime"): functools.partial(policy.run, arrays),
            ("act", "torch"): functools.partial(agent.act, obs, deterministic=True),
            ("act", "onnxruntime"): functools.partial(policy.act, obs),
        }
        cases.append(Case(model, batch, calls))
    return cases, agreement


def time_calls(fn: Callable[[], Any], calls: int, inference: bool) -> float:
    """Seconds per call over ``calls`` back-to-back calls (GC off, as timeit does).

    With ``inference`` the loop runs inside one ``torch.inference_mode()`` block.
    """
    gc.collect()
    gc.disable()
    try:
        with torch.inference_mode() if inference else contextlib.nullcontext():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / calls


def warm_up(fn: Callable[[], Any], inference: bool, seconds: float, round_time: float) -> int:
    """Call ``fn`` for about ``seconds`` (at least 4 calls); return the calls per timing round
    that make a round last about ``round_time`` (at least 3), judged on the warm-up's second
    half."""
    with torch.inference_mode() if inference else contextlib.nullcontext():
        start = time.perf_counter()
        calls, now, mid = 0, start, None
        while calls < 4 or now - start < seconds:
            fn()
            calls += 1
            now = time.perf_counter()
            if mid is None and calls >= 2 and now - start >= seconds / 2:
                mid = (calls, now)
    if mid is None or mid[0] >= calls:
        per_call = (now - start) / calls
    else:
        per_call = (now - mid[1]) / (calls - mid[0])
    return max(3, round(round_time / max(per_call, 1e-9)))


def _inference(path: str, runtime: str) -> bool:
    """Whether the timing loop runs under ``torch.inference_mode()`` (PyTorch's graph path;
    ``agent.act`` enters it itself, onnxruntime does not need it)."""
    return path == "graph" and runtime == "torch"


def run_benchmark(
    cases: list[Case], rounds: int, round_time: float, warmup_time: float
) -> list[Measurement]:
    """Warm up every call, then time them all in ``rounds`` rounds.

    Each round visits every (model, batch, path) and times PyTorch and onnxruntime back to
    back, alternating which goes first, so slow periods hit both runtimes alike.
    """
    measurements: dict[tuple[str, int, str, str], Measurement] = {}
    for case in cases:
        for (path, runtime), fn in case.calls.items():
            m = Measurement(case.model, case.batch, path, runtime)
            m.calls = warm_up(fn, _inference(path, runtime), warmup_time, round_time)
            measurements[(case.model, case.batch, path, runtime)] = m
    pair = 0
    for r in range(rounds):
        for case in cases:
            for path in PATHS:
                order = RUNTIMES if pair % 2 == 0 else RUNTIMES[::-1]
                pair += 1
                for runtime in order:
                    m = measurements[(case.model, case.batch, path, runtime)]
                    fn = case.calls[(path, runtime)]
                    m.seconds.append(time_calls(fn, m.calls, _inference(path, runtime)))
        print(f"[{r + 1}/{rounds}] round timed", file=sys.stderr, flush=True)
    return list(measurements.values())


def summarize(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """One row per (model, batch, path): medians and the PyTorch / onnxruntime time ratio.

    ``ratio`` is the median over rounds of that round's PyTorch time / onnxruntime time (the
    two were timed back to back); above 1 means onnxruntime is faster.
    """
    by_key = {(m.model, m.batch, m.path, m.runtime): m for m in measurements}
    rows = []
    for m in measurements:
        if m.runtime != "torch":
            continue
        peer = by_key[(m.model, m.batch, m.path, "onnxruntime")]
        ratios = [t / o for t, o in zip(m.seconds, peer.seconds, strict=True)]
        rows.append(
            {
                "model": m.model,
                "batch": m.batch,
                "path": m.path,
                "torch_us": m.median_us,
                "onnxruntime_us": peer.median_us,
                "torch_obs_per_s": m.obs_per_s,
                "onnxruntime_obs_per_s": peer.obs_per_s,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ratios": ratios,
                "torch_calls_per_round": m.calls,
                "onnxruntime_calls_per_round": peer.calls,
                "torch_seconds_per_call": m.seconds,
                "onnxruntime_seconds_per_call": peer.seconds,
            }
        )
    return rows


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int, ort: Any) -> dict[str, Any]:
    """CPU count, library versions and the thread counts used."""
    import onnx

    return {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": ort.__version__,
        "onnxruntime_intra_op_threads": threads,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "rlkit": rlkit.__version__,
    }


# --------------------------------------------------------------------------- reporting
def print_report(
    machine: dict[str, Any],
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    session: str,
    graphs: dict[str, Any],
) -> None:
    """The readable table."""
    print()
    print(
        f"inference latency, CPU: PyTorch {machine['torch']} eager vs onnxruntime "
        f"{machine['onnxruntime']} (rlkit {machine['rlkit']})"
    )
    print(
        f"machine: {machine['cpu_count']} CPUs ({machine['affinity_cpus']} usable), "
        f"{machine['processor']}, python {machine['python']}"
    )
    print(
        f"threads: torch {machine['torch_threads']}, onnxruntime intra-op "
        f"{machine['onnxruntime_intra_op_threads']} ({session})"
    )
    if machine["affinity_cpus"] is not None and args.threads >= machine["affinity_cpus"]:
        print("  note: threads >= usable CPUs; any other load on the machine distorts the figures")
    for name, what in MODELS.items():
        print(f"  {name:<13} {what}")
        critic = "with" if graphs[name]["critic_in_graph"] else "without"
        print(f"  {'':<13} ONNX graph: {len(graphs[name]['ops'])} nodes, {critic} the critic")
    print("  weights: untrained (seed 0); latency does not depend on the weights' values")
    for name, (torch_call, ort_call) in PATHS.items():
        print(f"  path {name:<8} PyTorch {torch_call}  |  onnxruntime {ort_call}")
    print(
        f"  {args.rounds} rounds, each timing every call for about {args.round_time:g} s "
        f"(after a {args.warmup_time:g} s warm-up each); inputs prepared in advance"
    )
    print()
    header = (
        f"{'model':<13} {'batch':>5} {'path':<6} | {'torch us':>10} {'ort us':>10} | "
        f"{'torch obs/s':>12} {'ort obs/s':>12} | {'ratio':>6} {'min..max':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        spread = f"{row['ratio_min']:.2f}..{row['ratio_max']:.2f}"
        print(
            f"{row['model']:<13} {row['batch']:>5} {row['path']:<6} | "
            f"{row['torch_us']:>10,.1f} {row['onnxruntime_us']:>10,.1f} | "
            f"{row['torch_obs_per_s']:>12,.0f} {row['onnxruntime_obs_per_s']:>12,.0f} | "
            f"{row['ratio_median']:>6.2f} {spread:>11}"
        )
    print("-" * len(header))
    print("  us: median microseconds per call; obs/s = batch / median seconds per call")
    print("  ratio: PyTorch time / onnxruntime time, median over rounds (>1: onnxruntime faster)")
    print()


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads and onnxruntime intra-op threads"
    )
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1, 256], help="observations per call"
    )
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (median reported)")
    parser.add_argument(
        "--round-time", type=float, default=0.15, help="seconds per call and round (about)"
    )
    parser.add_argument(
        "--warmup-time", type=float, default=0.2, help="warm-up seconds per call (about)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    args = parser.parse_args(argv)
    for name in ("threads", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if min(args.batch_sizes) < 1 or len(set(args.batch_sizes)) != len(args.batch_sizes):
        parser.error("--batch-sizes must be distinct and >= 1")
    for name in ("round_time", "warmup_time"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Export both policies, time them, print and optionally save."""
    args = parse_args(argv)
    ort = _import_onnxruntime()
    cases: list[Case] = []
    agreement: dict[str, Any] = {}
    session = ""
    graphs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            agent = build_agent(model, args.threads)
            path = Path(tmp) / f"{model}.onnx"
            policy, session = onnx_runner(agent, path, args.threads, ort)
            graphs[model] = graph_info(path)
            model_cases, agreement[model] = make_cases(agent, policy, model, args.batch_sizes)
            cases += model_cases
            print(f"{model} exported, parity OK", file=sys.stderr, flush=True)
        # the agents set torch's threads in their constructor; pin them again for the timing
        torch.set_num_threads(args.threads)
        gc.collect()
        gc.freeze()  # the exporter leaves a large heap; keep it out of the per-round collections
        measurements = run_benchmark(cases, args.rounds, args.round_time, args.warmup_time)
    machine = machine_info(args.threads, ort)
    rows = summarize(measurements)
    print_report(machine, args, rows, session, graphs)
    if args.json is not None:
        payload = {
            "benchmark": "export_latency",
            "machine": machine,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "models": MODELS,
            "weights": "untrained, seed 0",
            "paths": {k: {"torch": t, "onnxruntime": o} for k, (t, o) in PATHS.items()},
            "onnxruntime_session": session,
            "onnx_graphs": graphs,
            "actions_agree": agreement,
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
