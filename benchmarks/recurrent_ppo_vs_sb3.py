"""Speed and score benchmark: rlkit recurrent PPO vs sb3-contrib RecurrentPPO on CartPole with
the velocities masked (``rlkit/CartPoleNoVel-v1``, sb3-contrib's ``CartPoleNoVelEnv``).

Same protocol as the other *_vs_sb3 scripts (shared pairing and reporting): one process, the
same hyperparameters, network sizes and thread count, runs alternating. The setting is
rl-baselines3-zoo's ``ppo_lstm`` CartPoleNoVel-v1 one (= rlkit/presets/ppo.yaml): 8 envs x 32
steps, batch 256 (the whole rollout), 20 epochs, lr 1e-3 and clip 0.2 both annealed linearly
to 0, gamma 0.98, GAE lambda 0.8, no entropy bonus, observation and reward normalisation
(the zoo's ``normalize: True``), an LSTM of 64 units for the actor and a separate one for the
critic, then 64-unit ReLU layers, PyTorch's default init (``ortho_init=False``), Adam eps
1e-5, grad-norm clip 0.5, value coefficient 0.5.

What differs is how sequences are batched: sb3-contrib splits each env's rollout at episode
starts and pads the pieces to a common length (its policy runs the LSTM step by step over the
padded batch); rlkit trains on each env's whole rollout as one chunk from the stored state at
its first step, running the LSTM between resets without padding. The maths per sample is the
same (the state is reset at the same flags). The seed does not give the same random numbers
in the two libraries.

    python benchmarks/recurrent_ppo_vs_sb3.py                       # 1 seed, 100k steps
    python benchmarks/recurrent_ppo_vs_sb3.py --seeds 0 1 2 3 4 --json recurrent.json
    python benchmarks/recurrent_ppo_vs_sb3.py --steps 4096 --no-eval   # smoke test

sb3-contrib is in the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

from typing import Any

import torch
from ppo_cartpole_vs_sb3 import EVAL_SEED_OFFSET, EvalLog, RunResult, rlkit_run, sb3_run
from qrdqn_cartpole_vs_sb3 import _import_sb3_contrib
from sac_pendulum_vs_sb3 import OPTIONS, BenchmarkSpec, rlkit_backend_options, run_main

import rlkit.envs  # noqa: F401  (registers rlkit/CartPoleNoVel-v1 for both libraries)
from rlkit.agents import PPO
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env

ENV_ID = "rlkit/CartPoleNoVel-v1"
NUM_ENVS = 8

#: the shared setting, named as in rlkit (the sb3-contrib names are in :func:`train_sb3`).
HYPERPARAMETERS: dict[str, Any] = {
    **{k: v for k, v in load_preset("ppo", ENV_ID).items() if k != "total_steps"},
    "max_grad_norm": 0.5,
    "vf_coef": 0.5,
    "adam_eps": 1e-5,
    "network": "LSTM 64 (actor) + LSTM 64 (critic), then 64 ReLU each; PyTorch default init",
}


def train_rlkit_ppo(
    env_id: str,
    num_envs: int,
    hyperparameters: dict[str, Any],
    seed: int,
    steps: int,
    threads: int,
    repeat: int,
    order: int,
) -> RunResult:
    """Build, train (timed) and evaluate rlkit PPO with ``hyperparameters`` (a preset plus
    the benchmark's notes: ``num_envs`` and ``network`` are left out)."""
    torch.set_num_threads(threads)
    hp = {k: v for k, v in hyperparameters.items() if k not in ("num_envs", "network")}
    env = make_vec_env(env_id, num_envs=num_envs, seed=seed)
    agent = PPO(env, seed=seed, num_threads=threads, **rlkit_backend_options(), **hp)
    log = EvalLog(OPTIONS.eval_every, OPTIONS.threshold)
    return rlkit_run(agent, seed, steps, repeat, order, log, ("collect_rollout", "update"))


def train_rlkit(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """rlkit PPO with the LSTM policy."""
    return train_rlkit_ppo(ENV_ID, NUM_ENVS, HYPERPARAMETERS, seed, steps, threads, repeat, order)


def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate sb3-contrib RecurrentPPO."""
    _import_sb3_contrib()
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    env = VecNormalize(
        sb3_make_vec_env(ENV_ID, n_envs=NUM_ENVS, seed=seed),
        norm_obs=True,
        norm_reward=True,
        gamma=float(hp["gamma"]),
    )
    lr, clip = float(hp["lr"]), float(hp["clip_range"])
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        learning_rate=lambda progress: lr * progress,
        clip_range=lambda progress: clip * progress,
        n_steps=hp["num_steps"],
        batch_size=hp["batch_size"],
        n_epochs=hp["num_epochs"],
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        max_grad_norm=hp["max_grad_norm"],
        policy_kwargs={
            "ortho_init": False,
            "activation_fn": torch.nn.ReLU,
            "lstm_hidden_size": 64,
            "enable_critic_lstm": True,
            "net_arch": {"pi": [64], "vf": [64]},
        },
        device="cpu",
        seed=seed,
        verbose=0,
    )

    return sb3_run_normalized(model, env, ENV_ID, NUM_ENVS, seed, steps, repeat, order)


def sb3_run_normalized(
    model: Any,
    env: Any,
    env_id: str,
    num_envs: int,
    seed: int,
    steps: int,
    repeat: int,
    order: int,
) -> RunResult:
    """:func:`sb3_run` for a model trained on a ``VecNormalize`` env: evaluation envs (as
    many as rlkit's) see observations normalised with the training statistics, raw rewards."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    def make_eval_env() -> Any:
        eval_env = VecNormalize(
            sb3_make_vec_env(env_id, n_envs=num_envs, seed=seed + EVAL_SEED_OFFSET),
            training=False,
            norm_obs=True,
            norm_reward=False,
        )
        eval_env.obs_rms = env.obs_rms.copy()
        return eval_env

    log = EvalLog(OPTIONS.eval_every, OPTIONS.threshold)
    return sb3_run(model, make_eval_env, seed, steps, repeat, order, log, None)


SPEC = BenchmarkSpec(
    name="RecurrentPPO",
    env_id=ENV_ID,
    default_steps=100_000,
    threshold=400.0,
    eval_every=10_240,
    hyperparameters=HYPERPARAMETERS,
    setup_lines=[
        "8 envs, rl-baselines3-zoo's ppo_lstm CartPoleNoVel-v1 setting: 32 steps per env,",
        "       batch 256, 20 epochs, lr 1e-3 and clip 0.2 annealed to 0, gamma 0.98, GAE 0.8,",
        "       observation and reward normalisation, LSTM 64 actor + LSTM 64 critic, 64 ReLU, CPU",
    ],
    train_rlkit=train_rlkit,
    train_sb3=train_sb3,
    peer_package="sb3_contrib",
    epilog="""\
full measurement (the issue #19 figures; 5 seeds x 100k steps per library):
  python benchmarks/recurrent_ppo_vs_sb3.py --seeds 0 1 2 3 4 --json recurrent.json
smoke test: python benchmarks/recurrent_ppo_vs_sb3.py --steps 4096 --no-eval""",
)


if __name__ == "__main__":
    _import_sb3_contrib()
    raise SystemExit(run_main(SPEC))
