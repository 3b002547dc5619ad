"""Speed and score benchmark: rlkit TQC vs sb3-contrib TQC on Pendulum-v1.

Same protocol as benchmarks/sac_pendulum_vs_sb3.py (whose pairing and reporting it uses): one
process, identical hyperparameters and network sizes, same thread count, alternating runs.
The setting is rl-baselines3-zoo's TQC Pendulum one (hyperparams/tqc.yml: sb3-contrib's
defaults with lr 1e-3 for 20k steps, = rlkit/presets/tqc.yaml): 2 critics of 25 quantiles,
the 2 largest quantiles per critic (4 of the 50 pooled atoms) dropped from the target, actor and
critics 256-256 ReLU, batch 256, tau 0.005, one gradient step per env step, learned entropy
coefficient (from 1, target -dim A), Adam with eps 1e-8, no gradient clipping.

Both sides compute the same update, in sb3-contrib's order (temperature, critics, actor): the
critic loss is the quantile Huber loss (kappa 1) averaged over every critic's quantiles, the
target atoms and the batch; the actor ascends the mean of all critics' quantiles. rlkit's
default is the paper's 5 critics, so ``n_critics=2`` is passed, as the preset does. The replay
holds 100k transitions on both sides (the zoo's 1e6, sb3-contrib's default, never fills in 20k
steps either, so learning is the same). No difference remains in the maths; rlkit keeps its
critics as one batched ensemble where sb3-contrib has a list of modules (same layer sizes, and
the same initial weight distribution as PyTorch's default), and, as in every *_vs_sb3 script,
the same seed does not give the same random numbers in the two libraries, and rlkit flushes
denormal floats while training (``--no-flush-denormals`` turns that off).

    python benchmarks/tqc_pendulum_vs_sb3.py                    # 1 seed, 20k steps, ~12 minutes
    python benchmarks/tqc_pendulum_vs_sb3.py --seeds 0 1 2 3 4 --json tqc.json   # ~1 hour
    python benchmarks/tqc_pendulum_vs_sb3.py --steps 2000 --no-eval   # smoke test, ~1 minute

sb3-contrib is in the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

from typing import Any

import torch
from ppo_cartpole_vs_sb3 import RunResult
from qrdqn_cartpole_vs_sb3 import _import_sb3_contrib
from sac_pendulum_vs_sb3 import (
    BenchmarkSpec,
    _rlkit_hyper,
    rlkit_backend_options,
    run_main,
    timed_rlkit_run,
    timed_sb3_run,
)

from rlkit.agents import TQC
from rlkit.envs import make_vec_env

ENV_ID = "Pendulum-v1"

#: identical TQC hyperparameters, named as in rlkit (the SB3 names are in :func:`train_sb3`).
HYPERPARAMETERS: dict[str, Any] = {
    "num_envs": 1,
    "lr": 1e-3,
    "buffer_size": 100_000,  # both sides; the zoo's 1e6 never fills in 20k steps either
    "learning_starts": 100,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 1,
    "ent_coef": "auto",
    "target_entropy": "auto",
    "n_critics": 2,
    "n_quantiles": 25,
    "top_quantiles_to_drop_per_net": 2,
    "max_grad_norm": None,
    "adam_eps": 1e-8,
    "hidden_sizes": [256, 256],
    "network": "actor and 2 quantile critics (25 quantiles each): MLPs 256-256 ReLU; Adam eps 1e-8",
    "device": "cpu",
}


def train_rlkit(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate rlkit TQC."""
    torch.set_num_threads(threads)
    env = make_vec_env(ENV_ID, num_envs=1, seed=seed)
    agent = TQC(
        env,
        seed=seed,
        num_threads=threads,
        **rlkit_backend_options(),
        **_rlkit_hyper(HYPERPARAMETERS),
    )
    return timed_rlkit_run(agent, seed, steps, repeat, order)


def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate sb3-contrib TQC."""
    _import_sb3_contrib()
    from sb3_contrib import TQC as SB3TQC
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    model = SB3TQC(
        "MlpPolicy",
        sb3_make_vec_env(ENV_ID, n_envs=1, seed=seed),
        learning_rate=hp["lr"],
        buffer_size=hp["buffer_size"],
        learning_starts=hp["learning_starts"],
        batch_size=hp["batch_size"],
        tau=hp["tau"],
        gamma=hp["gamma"],
        train_freq=hp["train_freq"],
        gradient_steps=hp["gradient_steps"],
        target_update_interval=hp["target_update_interval"],
        ent_coef=hp["ent_coef"],
        target_entropy=hp["target_entropy"],
        top_quantiles_to_drop_per_net=hp["top_quantiles_to_drop_per_net"],
        policy_kwargs={
            "net_arch": list(hp["hidden_sizes"]),
            "n_critics": hp["n_critics"],
            "n_quantiles": hp["n_quantiles"],
            "optimizer_kwargs": {"eps": hp["adam_eps"]},
        },
        device=hp["device"],
        seed=seed,
        verbose=0,
    )
    return timed_sb3_run(model, ENV_ID, seed, steps, repeat, order)


SPEC = BenchmarkSpec(
    name="TQC",
    env_id=ENV_ID,
    default_steps=20_000,
    threshold=-200.0,
    eval_every=1_000,
    hyperparameters=HYPERPARAMETERS,
    setup_lines=[
        "1 env, rl-baselines3-zoo's TQC Pendulum setting: lr 1e-3, buffer 100k, 100 warm-up",
        "       steps, batch 256, tau 0.005, gamma 0.99, 1 gradient step per env step, learned",
        "       entropy coefficient (target -dim A), 2 critics x 25 quantiles, top 2 per critic",
        "       dropped, actor and critics 256-256 ReLU, Adam eps 1e-8, CPU",
    ],
    train_rlkit=train_rlkit,
    train_sb3=train_sb3,
    peer_package="sb3_contrib",
    epilog="""\
full measurement (the issue #15 figures; 5 seeds x 20k steps per library, about an hour on
a quiet 2-core machine, eval every 1000 steps included):
  python benchmarks/tqc_pendulum_vs_sb3.py --seeds 0 1 2 3 4 --json tqc.json
all three comparisons (DQN, QR-DQN, TQC) over 10 seeds as one markdown table:
  python benchmarks/versus_sb3_summary.py   (about 3 hours; see its --help)
smoke test: python benchmarks/tqc_pendulum_vs_sb3.py --steps 2000 --no-eval""",
)


if __name__ == "__main__":
    _import_sb3_contrib()
    raise SystemExit(run_main(SPEC))
