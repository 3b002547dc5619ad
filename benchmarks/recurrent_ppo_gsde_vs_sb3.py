"""Score benchmark: rlkit recurrent PPO with gSDE vs sb3-contrib RecurrentPPO(use_sde=True) on
the velocity-masked continuous tasks: ``rlkit/PendulumNoVel-v1`` (``--task pendulum``) and
``rlkit/MountainCarContinuousNoVel-v0`` (``--task mountaincar``).

Same protocol as ``recurrent_ppo_vs_sb3.py`` (shared pairing and reporting; one process, the
same hyperparameters, network sizes and thread count, runs alternating). The settings are
rl-baselines3-zoo's ``ppo_lstm`` ones, which are rlkit's presets for these envs
(rlkit/presets/ppo.yaml): gSDE (``use_sde``, ``sde_sample_freq``, ``log_std_init``) on the
features after the LSTM, an LSTM for the actor and a separate one for the critic, 64-unit
layers after them, PyTorch's default init, observation and reward normalisation. rlkit's
``seq_len`` equals the batch size, so a minibatch is one ``batch_size``-step chunk and an epoch
has as many minibatches as sb3-contrib's. The zoo's envs zero the velocity entry; the ones both
libraries train on here drop it (the same information).

    python benchmarks/recurrent_ppo_gsde_vs_sb3.py --task pendulum --seeds 0 1 --json p.json
    python benchmarks/recurrent_ppo_gsde_vs_sb3.py --task mountaincar --seeds 0 --json m.json
    python benchmarks/recurrent_ppo_gsde_vs_sb3.py --task pendulum --steps 8192 --no-eval

sb3-contrib is in the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
from ppo_cartpole_vs_sb3 import RunResult
from qrdqn_cartpole_vs_sb3 import _import_sb3_contrib
from recurrent_ppo_vs_sb3 import sb3_run_normalized, train_rlkit_ppo
from sac_pendulum_vs_sb3 import BenchmarkSpec, run_main

import rlkit.envs  # noqa: F401  (registers the rlkit/*NoVel envs for both libraries)
from rlkit.config.presets import load_preset

#: per task: env id, default steps, threshold, evaluation interval.
TASKS: dict[str, tuple[str, int, float, int]] = {
    "pendulum": ("rlkit/PendulumNoVel-v1", 100_000, -400.0, 8_192),
    "mountaincar": ("rlkit/MountainCarContinuousNoVel-v0", 300_000, 90.0, 16_384),
}


def hyperparameters(env_id: str) -> dict[str, Any]:
    """The preset for ``env_id`` (named as in rlkit) with the PPO defaults it leaves out."""
    preset = {k: v for k, v in load_preset("ppo", env_id).items() if k != "total_steps"}
    policy = preset["policy"]
    return {
        "max_grad_norm": 0.5,
        "vf_coef": 0.5,
        **preset,
        "network": (
            f"LSTM {policy['hidden_size']} (actor) + LSTM {policy['hidden_size']} (critic), then "
            f"{policy['hidden_sizes']} {policy['activation']} each; gSDE; PyTorch init"
        ),
    }


def train_sb3_on(env_id: str, hp: dict[str, Any], seed: int, steps: int, threads: int,
                 repeat: int, order: int) -> RunResult:  # fmt: skip
    """Build, train (timed) and evaluate sb3-contrib RecurrentPPO with gSDE on ``hp``."""
    _import_sb3_contrib()
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(threads)
    policy, sde = hp["policy"], hp["policy"]["distribution"]
    env = VecNormalize(
        sb3_make_vec_env(env_id, n_envs=hp["num_envs"], seed=seed),
        norm_obs=True,
        norm_reward=True,
        gamma=float(hp["gamma"]),
    )
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        learning_rate=float(hp["lr"]),
        clip_range=float(hp["clip_range"]),
        n_steps=hp["num_steps"],
        batch_size=hp["batch_size"],
        n_epochs=hp["num_epochs"],
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        max_grad_norm=hp["max_grad_norm"],
        use_sde=True,
        sde_sample_freq=int(sde["sample_freq"]),
        policy_kwargs={
            "ortho_init": bool(policy["ortho_init"]),
            "activation_fn": {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[policy["activation"]],
            "lstm_hidden_size": int(policy["hidden_size"]),
            "enable_critic_lstm": policy["critic"] == "separate",
            "net_arch": {"pi": list(policy["hidden_sizes"]), "vf": list(policy["hidden_sizes"])},
            "log_std_init": float(sde["log_std_init"]),
        },
        device="cpu",
        seed=seed,
        verbose=0,
    )
    return sb3_run_normalized(model, env, env_id, hp["num_envs"], seed, steps, repeat, order)


def spec_for(task: str) -> BenchmarkSpec:
    """The benchmark of ``task`` (a key of :data:`TASKS`)."""
    env_id, steps, threshold, every = TASKS[task]
    hp = hyperparameters(env_id)
    num_envs = int(hp["num_envs"])
    sde = hp["policy"]["distribution"]

    def train_rlkit(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
        return train_rlkit_ppo(env_id, num_envs, hp, seed, steps, threads, repeat, order)

    def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
        return train_sb3_on(env_id, hp, seed, steps, threads, repeat, order)

    return BenchmarkSpec(
        name="RecurrentPPO gSDE",
        env_id=env_id,
        default_steps=steps,
        threshold=threshold,
        eval_every=every,
        hyperparameters=hp,
        setup_lines=[
            f"{num_envs} envs, rl-baselines3-zoo's ppo_lstm setting: {hp['num_steps']} steps per "
            f"env, batch {hp['batch_size']} (seq_len {hp['seq_len']}), {hp['num_epochs']} epochs,",
            f"       lr {hp['lr']}, clip {hp['clip_range']}, gamma {hp['gamma']}, GAE "
            f"{hp['gae_lambda']}, normalisation, gSDE every {sde['sample_freq']} steps,",
            f"       {hp['network']}, CPU",
        ],
        train_rlkit=train_rlkit,
        train_sb3=train_sb3,
        peer_package="sb3_contrib",
        epilog="""\
full measurements (~22 minutes for Pendulum at 2 seeds, ~20 per MountainCar seed):
  python benchmarks/recurrent_ppo_gsde_vs_sb3.py --task pendulum --seeds 0 1 --json p.json
  python benchmarks/recurrent_ppo_gsde_vs_sb3.py --task mountaincar --seeds 0 --json m.json""",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--task", choices=sorted(TASKS), default="pendulum")
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    _import_sb3_contrib()
    return run_main(spec_for(known.task), rest)


if __name__ == "__main__":
    raise SystemExit(main())
