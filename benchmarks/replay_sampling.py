"""Speed benchmark: the cost of sampling one replay batch, rlkit vs Stable-Baselines3.

For CartPole-v1 and Pendulum-v1 sized data (observations of 4 and 3 floats, Discrete(2) and
Box(1) actions), both buffers are filled with the same random transitions and timed on
``sample(batch_size)``; the batch becomes torch tensors on the CPU in both. A third row, the
floor, does only what any buffer must: one NumPy fancy index per field (obs, next_obs,
actions, rewards, terminated, truncated) and one ``torch.from_numpy`` each. rlkit minus the
floor is rlkit's Python overhead beyond the copies. Rounds alternate the order of the
samplers; the median and the fastest round of each are reported (on a shared machine the
fastest round is the one least disturbed by other load, so ratios use it).

    python benchmarks/replay_sampling.py                   # ~20 s
    python benchmarks/replay_sampling.py --batch-size 256 --rounds 15 --json sampling.json
"""

from __future__ import annotations

import argparse
import gc
import json
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
from rlkit.storages import ReplayStorage

ENVS = ("CartPole-v1", "Pendulum-v1")


def fill(env_id: str, capacity: int, steps: int, seed: int = 0) -> dict[str, Any]:
    """rlkit storages (several configurations) and an SB3 buffer holding the same data."""
    from stable_baselines3.common.buffers import ReplayBuffer

    env = gym.make(env_id)
    obs_space, act_space = env.observation_space, env.action_space
    act_space.seed(seed)
    rng = np.random.default_rng(seed)
    storages = {
        "rlkit uniform": ReplayStorage(obs_space, act_space, capacity),
        "rlkit prioritized": ReplayStorage(obs_space, act_space, capacity, sampler="prioritized"),
        "rlkit uniform n_step=3": ReplayStorage(obs_space, act_space, capacity, n_step=3),
    }
    sb3 = ReplayBuffer(capacity, obs_space, act_space, device="cpu")
    shape = obs_space.shape
    for _ in range(steps):
        obs = rng.normal(size=(1, *shape)).astype(np.float32)
        nxt = rng.normal(size=(1, *shape)).astype(np.float32)
        action = np.array([act_space.sample()])
        reward = rng.normal(size=1).astype(np.float32)
        ended = rng.random(1) < 0.01
        term, trunc = ended & (rng.random(1) < 0.5), ended
        trunc = trunc & ~term
        for storage in storages.values():
            storage.add(obs, action, reward, nxt, term, trunc)
        sb3.add(obs, nxt, action, reward, term | trunc, [{"TimeLimit.truncated": bool(trunc[0])}])
    return {"storages": storages, "sb3": sb3, "size": steps}


def floor_sampler(storage: ReplayStorage) -> Callable[[int, torch.Generator], Any]:
    """Only the unavoidable work: one fancy index and one from_numpy per field."""
    obs = storage.store._obs[""]  # type: ignore[attr-defined]
    nxt = storage.store._next[""]  # type: ignore[attr-defined]
    fields = (obs, nxt, storage.actions, storage.rewards, storage.terminated, storage.truncated)

    def sample(batch_size: int, generator: torch.Generator) -> Any:
        idx = torch.randint(0, len(storage), (batch_size,), generator=generator).numpy()
        return [torch.from_numpy(f[idx]) for f in fields]

    return sample


#: the clock ``time_calls`` reads: wall time, or this process's CPU time (``--clock cpu``),
#: which time slices given to other processes on a busy machine do not inflate.
CLOCK: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def time_calls(fn: Callable[[], Any], calls: int, clock: str = "wall") -> float:
    now = CLOCK[clock]
    gc.collect()
    gc.disable()
    try:
        start = now()
        for _ in range(calls):
            fn()
        return (now() - start) / calls * 1e6
    finally:
        gc.enable()


def time_env(env_id: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median and best (min over rounds) microseconds per ``sample`` call of every sampler on
    ``env_id``-sized data."""
    b = args.batch_size
    data = fill(env_id, args.capacity, args.steps)
    gen = torch.Generator().manual_seed(0)
    np.random.seed(0)
    samplers: dict[str, Callable[[], Any]] = {
        name: (lambda s=storage: s.sample(b, gen)) for name, storage in data["storages"].items()
    }
    samplers["SB3 ReplayBuffer"] = lambda: data["sb3"].sample(b)
    floor = floor_sampler(data["storages"]["rlkit uniform"])
    samplers["floor (copies only)"] = lambda: floor(b, gen)
    for fn in samplers.values():  # warm-up
        time_calls(fn, 50)
    timings: dict[str, list[float]] = {name: [] for name in samplers}
    names = list(samplers)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            timings[name].append(time_calls(samplers[name], args.calls, args.clock))
    return {
        stat: {name: fn(t) for name, t in timings.items()}
        for stat, fn in (("median", statistics.median), ("best", min))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50_000, help="transitions stored")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=300, help="sample() calls per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCK),
        default="wall",
        help="wall time, or process CPU time (steadier on a shared machine)",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:
        import stable_baselines3
    except ImportError:
        sys.exit('this benchmark compares with Stable-Baselines3: pip install -e ".[bench]"')
    torch.set_num_threads(args.threads)
    b = args.batch_size
    results: dict[str, dict[str, dict[str, float]]] = {}
    for env_id in ENVS:
        print(f"[{env_id}] filling {args.steps} transitions", file=sys.stderr)
        results[env_id] = time_env(env_id, args)

    print(
        f"\nsample({b}) from {args.steps} stored transitions, {args.rounds} rounds x "
        f"{args.calls} calls, {args.threads} torch thread(s), {args.clock} clock; 'best' is "
        "the fastest round (least disturbed by other load), ratios and the floor gap use it"
    )
    for env_id, res in results.items():
        med, best = res["median"], res["best"]
        print(f"\n{env_id}")
        print(
            f"  {'sampler':<26} {'median us':>10} {'best us':>9} {'vs SB3':>8} {'above floor':>12}"
        )
        for name in best:
            print(
                f"  {name:<26} {med[name]:>10.1f} {best[name]:>9.1f} "
                f"{best['SB3 ReplayBuffer'] / best[name]:>7.2f}x "
                f"{best[name] - best['floor (copies only)']:>10.1f}us"
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": {**vars(args), "json": str(args.json)},
                    "us_per_batch": results,
                    "machine": {
                        "platform": platform.platform(),
                        "python": platform.python_version(),
                        "torch": torch.__version__,
                        "numpy": np.__version__,
                        "rlkit": rlkit.__version__,
                        "stable_baselines3": stable_baselines3.__version__,
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
