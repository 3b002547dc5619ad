"""Speed and score benchmark: rlkit QR-DQN vs sb3-contrib QR-DQN on CartPole-v1.

Same protocol as benchmarks/dqn_cartpole_vs_sb3.py (the pairing and reporting of
benchmarks/sac_pendulum_vs_sb3.py): one process, identical hyperparameters and network sizes,
same thread count, alternating runs. The setting is rl-baselines3-zoo's tuned QR-DQN CartPole
one (hyperparams/qrdqn.yml, = rlkit/presets/qrdqn.yaml): 10 quantiles, Q-network 256-256 ReLU,
lr 2.3e-3, batch 64, 128 gradient steps every 256 env steps. SB3 counts its target-update
interval in env steps and rlkit in gradient steps: SB3's 10 env steps sync the target once per
256-step round, before that round's 128 gradient steps, which is rlkit's interval of 128
updates.

Both sides compute the same update: the target network's quantiles at its greedy action (no
double Q), the quantile Huber loss with kappa 1 summed over the predicted quantiles and averaged
over the target ones and the batch, Adam with eps 1e-8, PyTorch's default initialisation.
Gradients are not clipped on either side: the zoo sets no max_grad_norm and sb3-contrib's
QR-DQN default is None, whereas rlkit's QR-DQN inherits DQN's 10, so this benchmark passes
``max_grad_norm=None`` to rlkit. The only difference left in the networks is the layout of
the output layer (rlkit orders the outputs action-major, sb3-contrib quantile-major), a
permutation of the same weights; as in every *_vs_sb3 script, the same seed does not give the
same random numbers in the two libraries, and rlkit flushes denormal floats while training
(``--no-flush-denormals`` turns that off).

    python benchmarks/qrdqn_cartpole_vs_sb3.py                  # 1 seed, 50k steps, ~4 minutes
    python benchmarks/qrdqn_cartpole_vs_sb3.py --seeds 0 1 2 3 4 --json qrdqn.json   # ~20 min
    python benchmarks/qrdqn_cartpole_vs_sb3.py --steps 2000 --no-eval   # smoke test, seconds

sb3-contrib is in the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import sys
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

from rlkit.agents import QRDQN
from rlkit.envs import make_vec_env

ENV_ID = "CartPole-v1"

#: identical QR-DQN hyperparameters, named as in rlkit (SB3 names in :func:`train_sb3`).
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
    "max_grad_norm": None,  # sb3-contrib's QR-DQN default (rlkit's DQN default is 10)
    "hidden_sizes": [256, 256],
    "n_quantiles": 10,
    "kappa": 1.0,  # sb3-contrib's quantile Huber loss has kappa 1 built in
    "double_q": False,
    "adam_eps": 1e-8,
    "network": "quantile Q-network MLP 256-256 ReLU, 2 actions x 10 quantiles; Adam eps 1e-8",
    "device": "cpu",
}


def _import_sb3_contrib() -> Any:
    """Import sb3_contrib lazily; exit with an install hint if it is missing."""
    _import_sb3()
    try:
        import sb3_contrib
    except ImportError:
        sys.exit(
            "this benchmark needs sb3-contrib (the optional 'bench' extra): "
            'pip install -e ".[bench]"'
        )
    return sb3_contrib


def train_rlkit(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate rlkit QR-DQN."""
    torch.set_num_threads(threads)
    env = make_vec_env(ENV_ID, num_envs=1, seed=seed)
    agent = QRDQN(
        env,
        seed=seed,
        num_threads=threads,
        **rlkit_backend_options(),
        **_rlkit_hyper(HYPERPARAMETERS),
    )
    return timed_rlkit_run(agent, seed, steps, repeat, order)


def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate sb3-contrib QR-DQN."""
    _import_sb3_contrib()
    from sb3_contrib import QRDQN as SB3QRDQN
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    model = SB3QRDQN(
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
        policy_kwargs={
            "net_arch": list(hp["hidden_sizes"]),
            "n_quantiles": hp["n_quantiles"],
            "optimizer_kwargs": {"eps": hp["adam_eps"]},
        },
        device=hp["device"],
        seed=seed,
        verbose=0,
    )
    return timed_sb3_run(model, ENV_ID, seed, steps, repeat, order)


SPEC = BenchmarkSpec(
    name="QR-DQN",
    env_id=ENV_ID,
    default_steps=50_000,
    threshold=475.0,
    eval_every=5_000,
    hyperparameters=HYPERPARAMETERS,
    setup_lines=[
        "1 env, rl-baselines3-zoo's QR-DQN CartPole setting: 10 quantiles, lr 2.3e-3, batch 64,",
        "       1000 warm-up steps, 128 gradient steps every 256 env steps, target synced every",
        "       round, eps 1 -> 0.04 over 16% of the run, no grad clipping, quantile Huber loss",
        "       (kappa 1), quantile Q-network 256-256 ReLU, Adam eps 1e-8, CPU",
    ],
    train_rlkit=train_rlkit,
    train_sb3=train_sb3,
    peer_package="sb3_contrib",
    epilog="""\
full measurement (the issue #15 figures; 5 seeds x 50k steps per library, about 20 minutes
on a quiet 2-core machine, eval every 5000 steps included):
  python benchmarks/qrdqn_cartpole_vs_sb3.py --seeds 0 1 2 3 4 --json qrdqn.json
all three comparisons (DQN, QR-DQN, TQC) over 10 seeds as one markdown table:
  python benchmarks/versus_sb3_summary.py   (about 3 hours; see its --help)
smoke test: python benchmarks/qrdqn_cartpole_vs_sb3.py --steps 2000 --no-eval""",
)


if __name__ == "__main__":
    _import_sb3_contrib()
    raise SystemExit(run_main(SPEC))
