"""How fast recurrent PPO on CartPoleNoVel can be with PyTorch's kernels, against
sb3-contrib's RecurrentPPO measured in the same process: the largest steps/s ratio the
setting allows on this CPU.

The setting is rl-baselines3-zoo's ``ppo_lstm`` CartPoleNoVel-v1 one (see
``recurrent_ppo_vs_sb3.py``): a rollout is 8 envs x 32 steps (256 samples), then 20 epochs
of one minibatch holding the whole rollout, with an LSTM of 64 units for the actor and a
separate one for the critic. Two bounds on the time of one rollout plus update:

**kernels** (a lower bound for any implementation on PyTorch's LSTM kernels and gymnasium):

- step 8 gymnasium envs 32 times (gymnasium's ``SyncVectorEnv``, random actions, no wrappers
  beyond ``gym.make``'s: less than any training loop does);
- advance both LSTMs one step per vector step while acting (``nn.LSTMCell``, no grad);
- run both LSTMs forward and backward over the rollout once per epoch (``nn.LSTM``, oneDNN on
  CPU, PyTorch's fastest path here), in the cheapest layout: one ``[32, 8]`` sequence per LSTM,
  as if no episode started inside the rollout (resets make it dearer). Two ways are timed, two
  calls of 64 units or one call of 128 (the two LSTMs as one, recurrent weights
  block-diagonal), and the cheaper one counts.

**lean eager** (kernels, plus the rest of the maths written as the fewest eager PyTorch
calls): while acting, the trunks and heads and one sampled action; per epoch, from the LSTMs'
outputs, the trunks and heads forward and backward, the clipped-surrogate and value losses,
grad-norm clipping and one fused Adam step. Still nothing for normalisation, storage,
returns or minibatch assembly.

``256 / bound`` bounds the steps/s, and dividing that by sb3-contrib's measured steps/s
bounds the ratio.

    python benchmarks/recurrent_ppo_floor.py                  # sb3-contrib for 100k steps
    python benchmarks/recurrent_ppo_floor.py --sb3-steps 0    # the bounds only

sb3-contrib is in the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from ppo_cartpole_vs_sb3 import _cpu_model
from torch import nn

import rlkit.envs  # noqa: F401  (registers rlkit/CartPoleNoVel-v1)

ENV_ID = "rlkit/CartPoleNoVel-v1"
NUM_ENVS, NUM_STEPS, NUM_EPOCHS, HIDDEN = 8, 32, 20, 64
LSTMS = 2  # actor and critic


def median_ms(work: Callable[[], None], repeats: int) -> float:
    """Median wall time of ``work`` in milliseconds over ``repeats`` calls (after 3 warm-ups)."""
    for _ in range(3):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def env_ms(repeats: int) -> float:
    """32 vector steps of 8 envs with random actions."""
    env = gym.make_vec(ENV_ID, num_envs=NUM_ENVS, vectorization_mode="sync")
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def rollout() -> None:
        for _ in range(NUM_STEPS):
            env.step(rng.integers(0, 2, NUM_ENVS))

    result = median_ms(rollout, repeats)
    env.close()
    return result


def heads() -> nn.ModuleList:
    """Actor and critic trunks (one 64-unit ReLU layer) and heads (2 logits, 1 value)."""
    return nn.ModuleList(
        [
            nn.Sequential(nn.Linear(HIDDEN, 64), nn.ReLU(), nn.Linear(64, 2)),
            nn.Sequential(nn.Linear(HIDDEN, 64), nn.ReLU(), nn.Linear(64, 1)),
        ]
    )


def acting_ms(obs_dim: int, repeats: int, with_heads: bool) -> float:
    """32 steps, no grad, on 8 rows: two LSTM cells and, ``with_heads``, the trunks and heads
    and one sampled action."""
    cells = [nn.LSTMCell(obs_dim, HIDDEN) for _ in range(LSTMS)]
    actor, critic = heads()
    x = torch.randn(NUM_ENVS, obs_dim)
    states = [(torch.zeros(NUM_ENVS, HIDDEN), torch.zeros(NUM_ENVS, HIDDEN)) for _ in cells]

    @torch.no_grad()
    def rollout() -> None:
        for _ in range(NUM_STEPS):
            for i, cell in enumerate(cells):
                states[i] = cell(x, states[i])
            if with_heads:
                torch.multinomial(torch.softmax(actor(states[0][0]), -1), 1)
                critic(states[1][0])

    return median_ms(rollout, repeats)


def rest_ms(obs_dim: int, repeats: int) -> float:
    """20 epochs of what follows the LSTMs in an update, from their outputs: trunks and heads
    forward and backward, the clipped-surrogate and value losses, grad-norm clipping and one
    fused Adam step over all parameters (the LSTMs' included, their gradients given)."""
    lstms, model = nn.LSTM(obs_dim, HIDDEN * LSTMS), heads()
    params = [*lstms.parameters(), *model.parameters()]
    for param in lstms.parameters():
        param.grad = torch.zeros_like(param)
    optimizer = torch.optim.Adam(params, lr=1e-3, eps=1e-5, fused=True)
    rows = NUM_STEPS * NUM_ENVS
    memory = [torch.randn(rows, HIDDEN, requires_grad=True) for _ in range(LSTMS)]
    actions, old_log_prob = torch.randint(0, 2, (rows, 1)), torch.randn(rows).clamp(max=0)
    advantages, returns = torch.randn(rows), torch.randn(rows)

    def update() -> None:
        for _ in range(NUM_EPOCHS):
            log_prob = torch.log_softmax(model[0](memory[0]), -1).gather(1, actions).squeeze(1)
            value = model[1](memory[1]).squeeze(1)
            ratio = torch.exp(log_prob - old_log_prob)
            clipped = torch.clamp(ratio, 0.8, 1.2) * advantages
            policy_loss = -torch.min(ratio * advantages, clipped).mean()
            loss = policy_loss + 0.5 * (value - returns).pow(2).mean()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 0.5)
            optimizer.step()

    return median_ms(update, repeats)


def update_ms(obs_dim: int, repeats: int, calls: int) -> float:
    """20 epochs of two LSTMs forward and backward over one [32, 8] sequence: ``calls`` = 2,
    one LSTM call each; 1, one call of an LSTM twice as wide."""
    width = HIDDEN * LSTMS // calls
    lstms = [nn.LSTM(obs_dim, width) for _ in range(calls)]
    x = torch.randn(NUM_STEPS, NUM_ENVS, obs_dim)
    zeros = torch.zeros(1, NUM_ENVS, width)

    def update() -> None:
        for _ in range(NUM_EPOCHS):
            for lstm in lstms:
                out, _ = lstm(x, (zeros, zeros))
                out.sum().backward()

    return median_ms(update, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=30, help="timed rollouts per part")
    parser.add_argument(
        "--sb3-steps", type=int, default=100_000, help="sb3-contrib training steps (0: skip)"
    )
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    obs_dim = int(np.prod(gym.make(ENV_ID).observation_space.shape))
    two_calls, one_call = update_ms(obs_dim, args.repeats, 2), update_ms(obs_dim, args.repeats, 1)
    kernels = {
        "env_ms": env_ms(args.repeats),
        "acting_cells_ms": acting_ms(obs_dim, args.repeats, with_heads=False),
        "update_lstm_ms": min(two_calls, one_call),
    }
    acting_heads = acting_ms(obs_dim, args.repeats, with_heads=True) - kernels["acting_cells_ms"]
    rest = {"acting_heads_ms": acting_heads, "update_rest_ms": rest_ms(obs_dim, args.repeats)}
    bounds = {"kernels": sum(kernels.values())}
    bounds["lean_eager"] = bounds["kernels"] + sum(rest.values())
    samples = NUM_ENVS * NUM_STEPS
    best = {name: samples / ms * 1e3 for name, ms in bounds.items()}
    result: dict[str, object] = {
        "cpu": _cpu_model(),
        "torch": torch.__version__,
        "threads": args.threads,
        **kernels,
        **rest,
        "update_lstm_two_calls_ms": two_calls,
        "update_lstm_one_call_ms": one_call,
        "bound_ms_per_rollout": bounds,
        "max_steps_per_s": best,
    }
    print(f"{ENV_ID}, {NUM_ENVS} envs x {NUM_STEPS} steps, {NUM_EPOCHS} epochs, 2 LSTMs of 64")
    print(f"torch {torch.__version__}, {args.threads} thread(s), {result['cpu']}")
    print(f"  (update: two LSTM calls {two_calls:.1f} ms, one call of 128 units {one_call:.1f} ms)")
    for name, value in {**kernels, **rest}.items():
        print(f"  {name:<16} {value:8.1f} ms per rollout")
    for name, ms in bounds.items():
        print(f"  bound {name:<10} {ms:8.1f} ms per rollout -> at most {best[name]:,.0f} steps/s")
    if args.sb3_steps > 0:
        from recurrent_ppo_vs_sb3 import train_sb3

        run = train_sb3(seed=0, steps=args.sb3_steps, threads=args.threads, repeat=0, order=0)
        ratios = {name: sps / run.sps for name, sps in best.items()}
        result.update({"sb3_steps": run.steps, "sb3_steps_per_s": run.sps, "max_ratio": ratios})
        print(f"  sb3-contrib RecurrentPPO, {run.steps:,} steps: {run.sps:,.0f} steps/s")
        for name, ratio in ratios.items():
            print(f"  largest ratio to sb3-contrib, {name} bound: {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
