"""Speed and score benchmark: rlkit PPO vs Stable-Baselines3 PPO on Acrobot-v1 with
rl-baselines3-zoo's tuned setting (= rlkit/presets/ppo.yaml's Acrobot-v1 entry).

Same protocol as the other *_vs_sb3 scripts (shared pairing and reporting): one process, the
same hyperparameters, network and thread count, runs alternating. The zoo setting: 16 envs x
256 steps, minibatches of 64 (Stable-Baselines3's default), 4 epochs, gamma 0.99, GAE lambda
0.94, no entropy bonus, lr 3e-4 and clip 0.2 constant, ``normalize: true`` (VecNormalize:
observations and rewards, both clipped to +-10), 64-64 tanh actor and critic.

    python benchmarks/ppo_acrobot_vs_sb3.py                         # 1 seed, 100k steps
    python benchmarks/ppo_acrobot_vs_sb3.py --seeds 0 1 2 --json acrobot.json
    python benchmarks/ppo_acrobot_vs_sb3.py --steps 8192 --no-eval   # smoke test

Stable-Baselines3 is the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

from typing import Any

import torch
from ppo_cartpole_vs_sb3 import RunResult
from recurrent_ppo_vs_sb3 import sb3_run_normalized, train_rlkit_ppo
from sac_pendulum_vs_sb3 import BenchmarkSpec, run_main

from rlkit.config.presets import load_preset

ENV_ID = "Acrobot-v1"
NUM_ENVS = 16

#: the shared setting, named as in rlkit (the Stable-Baselines3 names are in train_sb3).
HYPERPARAMETERS: dict[str, Any] = {
    **{k: v for k, v in load_preset("ppo", ENV_ID).items() if k != "total_steps"},
    "network": "64-64 tanh actor and critic (both libraries' default MLP policy)",
}


def train_rlkit(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """rlkit PPO with the preset."""
    return train_rlkit_ppo(ENV_ID, NUM_ENVS, HYPERPARAMETERS, seed, steps, threads, repeat, order)


def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate Stable-Baselines3 PPO with the zoo setting."""
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    env = VecNormalize(sb3_make_vec_env(ENV_ID, n_envs=NUM_ENVS, seed=seed), gamma=hp["gamma"])
    model = SB3PPO(
        "MlpPolicy",
        env,
        n_steps=hp["num_steps"],
        batch_size=hp["batch_size"],
        n_epochs=hp["num_epochs"],
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        ent_coef=hp["ent_coef"],
        device="cpu",
        seed=seed,
        verbose=0,
    )

    return sb3_run_normalized(model, env, ENV_ID, NUM_ENVS, seed, steps, repeat, order)


SPEC = BenchmarkSpec(
    name="PPO",
    env_id=ENV_ID,
    default_steps=100_000,
    threshold=-100.0,
    eval_every=16_384,
    hyperparameters=HYPERPARAMETERS,
    setup_lines=[
        "16 envs, rl-baselines3-zoo's Acrobot-v1 setting: 256 steps per env, minibatch 64,",
        "       4 epochs, gamma 0.99, GAE 0.94, lr 3e-4, observation and reward",
        "       normalisation, 64-64 tanh, CPU",
    ],
    train_rlkit=train_rlkit,
    train_sb3=train_sb3,
    epilog="""\
the issue #20 figures (3 seeds x 100k steps per library):
  python benchmarks/ppo_acrobot_vs_sb3.py --seeds 0 1 2 --json acrobot.json
smoke test: python benchmarks/ppo_acrobot_vs_sb3.py --steps 8192 --no-eval""",
)


if __name__ == "__main__":
    raise SystemExit(run_main(SPEC))
