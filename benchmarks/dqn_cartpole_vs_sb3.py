"""Speed and score benchmark: rlkit DQN vs Stable-Baselines3 DQN on CartPole-v1.

Same protocol as benchmarks/sac_pendulum_vs_sb3.py (whose pairing and reporting it uses): one
process, identical hyperparameters and network sizes, same thread count, alternating runs.
The setting is rl-baselines3-zoo's tuned CartPole one. SB3 counts its target-update interval in
env steps and rlkit in gradient steps: SB3's 10 env steps sync the target once per 256-step
round, before that round's 128 gradient steps, which is rlkit's interval of 128 updates.

    python benchmarks/dqn_cartpole_vs_sb3.py                    # ~3 minutes on 2 cores
    python benchmarks/dqn_cartpole_vs_sb3.py --seeds 0 1 2 --json dqn.json
    python benchmarks/dqn_cartpole_vs_sb3.py --compute reference   # rlkit on plain autograd
"""

from __future__ import annotations

from typing import Any

import torch
from ppo_cartpole_vs_sb3 import RunResult, _import_sb3
from sac_pendulum_vs_sb3 import (
    BenchmarkSpec,
    _rlkit_hyper,
    rlkit_backend_options,
    run_main,
    timed_rlkit_run,
    timed_sb3_run,
)

from rlkit.agents import DQN
from rlkit.envs import make_vec_env

ENV_ID = "CartPole-v1"

#: identical DQN hyperparameters, named as in rlkit (SB3 names in :func:`train_sb3`).
HYPERPARAMETERS: dict[str, Any] = {
    "num_envs": 1,
    "lr": 2.3e-3,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "batch_size": 64,
    "gamma": 0.99,
    "tau": 1.0,
    "target_update_interval": 128,  # gradient steps; SB3: 10 env steps (see the module doc)
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.04,
    "max_grad_norm": 10.0,
    "hidden_sizes": [256, 256],
    "network": "Q-network MLP 256-256 ReLU; Huber loss; Adam eps 1e-8",
    "device": "cpu",
}


def train_rlkit(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate rlkit DQN."""
    torch.set_num_threads(threads)
    env = make_vec_env(ENV_ID, num_envs=1, seed=seed)
    agent = DQN(
        env,
        seed=seed,
        num_threads=threads,
        **rlkit_backend_options(),
        **_rlkit_hyper(HYPERPARAMETERS),
    )
    return timed_rlkit_run(agent, seed, steps, repeat, order)


def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate Stable-Baselines3 DQN."""
    _import_sb3()
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    model = SB3DQN(
        "MlpPolicy",
        sb3_make_vec_env(ENV_ID, n_envs=1, seed=seed),
        learning_rate=hp["lr"],
        buffer_size=hp["buffer_size"],
        learning_starts=hp["learning_starts"],
        batch_size=hp["batch_size"],
        gamma=hp["gamma"],
        tau=hp["tau"],
        target_update_interval=10,  # env steps: once per round (see the module doc)
        train_freq=hp["train_freq"],
        gradient_steps=hp["gradient_steps"],
        exploration_fraction=hp["exploration_fraction"],
        exploration_initial_eps=hp["exploration_initial_eps"],
        exploration_final_eps=hp["exploration_final_eps"],
        max_grad_norm=hp["max_grad_norm"],
        policy_kwargs={"net_arch": list(hp["hidden_sizes"])},
        device=hp["device"],
        seed=seed,
        verbose=0,
    )
    return timed_sb3_run(model, ENV_ID, seed, steps, repeat, order)


SPEC = BenchmarkSpec(
    name="DQN",
    env_id=ENV_ID,
    default_steps=50_000,
    threshold=475.0,
    eval_every=5_000,
    hyperparameters=HYPERPARAMETERS,
    setup_lines=[
        "1 env, rl-baselines3-zoo's CartPole setting: lr 2.3e-3, batch 64, 1000 warm-up",
        "       steps, 128 gradient steps every 256 env steps, target synced every round,",
        "       eps 1 -> 0.04 over 16% of the run, grad-norm 10, Q-network 256-256 ReLU, CPU",
    ],
    train_rlkit=train_rlkit,
    train_sb3=train_sb3,
)


if __name__ == "__main__":
    raise SystemExit(run_main(SPEC))
