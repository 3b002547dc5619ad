"""What flushing denormal floats is worth: DQN on CartPole-v1 (rl-baselines3-zoo's setting,
256-256 ReLU Q-network) trained with ``flush_denormals`` on and off, alternating.

    python benchmarks/denormals.py                 # ~1 minute on 2 cores
    python benchmarks/denormals.py --steps 20000 --rounds 3

Per run: training steps/s, the share of the Adam moments that are denormal at the end (values
below 1.2e-38 other than 0), and the time of one fused Adam step on that final state, with
and without flushing (on one thread: the mode is per thread). This is the measurement behind
the default of
``AgentConfig.flush_denormals`` (``docs/performance.md``, "Denormals").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import torch

from rlkit import runtime
from rlkit.agents import DQN
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env

#: rl-baselines3-zoo's CartPole-v1 DQN hyperparameters (the shipped preset).
ZOO = {
    k: v
    for k, v in load_preset("dqn", "CartPole-v1").items()
    if k not in ("num_envs", "total_steps")
}
TINY = torch.finfo(torch.float32).tiny


def _adam_state(agent: DQN) -> tuple[torch.Tensor, dict[str, Any]]:
    optimizer = agent.registry.optimizers["q"]
    param = optimizer.param_groups[0]["params"][0]
    return param, optimizer.state[param]


def _denormal_share(x: torch.Tensor) -> float:
    return float(((x != 0) & (x.abs() < TINY)).float().mean())


def _adam_step_us(
    param: torch.Tensor, state: dict[str, Any], flush: bool, reps: int = 200
) -> float:
    """One ``torch._fused_adam_`` step on copies of the final state (the kernel the agent's
    optimizer runs), in microseconds."""
    p, m, v = param.detach().clone(), state["exp_avg"].clone(), state["exp_avg_sq"].clone()
    grad, step = param.grad.detach().clone(), state["step"].clone()  # type: ignore[union-attr]
    # one thread: the flush mode is per thread, and torch's worker threads keep their own
    with runtime.num_threads(1), runtime.flush_denormals(flush):
        start = time.perf_counter()
        for _ in range(reps):
            torch._fused_adam_(
                [p], [grad], [m], [v], [], [step], amsgrad=False, lr=1e-3, beta1=0.9,
                beta2=0.999, weight_decay=0.0, eps=1e-8, maximize=False,
            )  # fmt: skip
        return (time.perf_counter() - start) / reps * 1e6


def run(flush: bool, steps: int, seed: int) -> dict[str, Any]:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=seed)
    agent = DQN(env, seed=seed, num_threads=1, flush_denormals=flush, device="cpu", **ZOO)
    start = time.perf_counter()
    agent.train(steps, progress_bar=False)
    elapsed = time.perf_counter() - start
    param, state = _adam_state(agent)
    env.close()
    return {
        "flush_denormals": flush,
        "steps_per_s": round(agent.global_step / elapsed, 1),
        "denormal_exp_avg": round(_denormal_share(state["exp_avg"]), 3),
        "denormal_exp_avg_sq": round(_denormal_share(state["exp_avg_sq"]), 3),
        "adam_step_us_unflushed": round(_adam_step_us(param, state, False), 1),
        "adam_step_us_flushed": round(_adam_step_us(param, state, True), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (on, off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    for i in range(args.rounds):
        for flush in (True, False) if i % 2 == 0 else (False, True):
            row = run(flush, args.steps, args.seed)
            results.append(row)
            print(json.dumps(row), flush=True)
    for flush in (True, False):
        sps = sorted(r["steps_per_s"] for r in results if r["flush_denormals"] is flush)
        print(f"flush_denormals={flush}: median {sps[len(sps) // 2]:,.1f} steps/s over {sps}")
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    info["torch"] = torch.__version__
    print(json.dumps(info))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "runs": results}, f, indent=2)


if __name__ == "__main__":
    main()
