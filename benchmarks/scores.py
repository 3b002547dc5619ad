"""Score suite (issue #20 item 5): rlkit vs Stable-Baselines3 on the same tasks, budgets and
seeds, with rl-baselines3-zoo's settings.

For every task of :data:`TASKS` both libraries train from the SAME hyperparameters: rlkit's
preset for the env (``rlkit/presets/{algo}.yaml``, :func:`rlkit.config.presets.load_preset`,
env-family entries such as ``family:atari`` included; most are the zoo's tuned settings),
resolved through the agent's ``Config`` so that every value the preset leaves at rlkit's
default reaches SB3 explicitly, and translated to SB3's names (:func:`sb3_ppo`,
:func:`sb3_sac`, :func:`sb3_dqn`). Both see the same observations: SB3's envs are built from
the env family's pipeline (``build_family(env_id, True).make(env_id, {}, evaluation)``: Atari,
MiniGrid, DMC, MuJoCo, Box2D), its evaluation env with ``evaluation=True`` (Atari: whole
games, true scores) as rlkit's ``agent.evaluate`` does, observation normalisation synced
from the training ``VecNormalize``.

Per task it prints, for each library: the final return (mean of 20 deterministic episodes
on a fresh env seeded train seed + 10000 after training) aggregated over seeds as the IQM
(interquartile mean; with fewer than 4 seeds the mean, marked so) with a 95% percentile
bootstrap CI (2000 resamples, fixed-seed numpy Generator:
:func:`rlkit.evaluation.interval_estimates`), training steps/s (median over seeds,
evaluations excluded), and the wall-clock training seconds to the first intermediate
evaluation (20 episodes every ``eval_every`` env steps) at or above the task's threshold,
evaluation time excluded: the median over seeds, a run that never reached it counting as
infinitely late ("12.3 s (3/3)": median, runs that reached it / runs). The verdict compares
rlkit's point estimate with SB3's CI. The pairing is the *_vs_sb3 scripts' (one process, same
thread count and device, runs alternating rlkit, SB3 / SB3, rlkit from seed to seed).

    python benchmarks/scores.py --list                       # the task table
    python benchmarks/scores.py --tasks cartpole acrobot --seeds 0 1 2 --json s.json
    python benchmarks/scores.py --scale 0.01 --seeds 0       # smoke test of every task
    python benchmarks/scores.py --json scores.json --markdown scores.md   # the full suite

The full suite (default budgets, 5 seeds, ``--threads 1``) takes about 20 hours on a quiet
2-core machine, as one process (estimated from short runs: roughly 4 hours per seed, both
libraries and the evaluations together: Hopper and HalfCheetah SAC about an hour each, Pong
PPO ~40 min, DMC cartpole-swingup SAC ~35 min, MountainCarContinuous SAC ~15 min,
LunarLander PPO and Pendulum SAC ~10 min each, the rest a few minutes); ``--seeds 0 1 2``
about 12 hours (the mean instead of the IQM below 4 seeds); ``--scale 0.1`` roughly a tenth;
a smoke test (``--scale 0.01 --seeds 0``) about 6 minutes, most of it Pong's evaluations.
``--zoo-budgets`` trains for the zoo's n_timesteps instead (Hopper/HalfCheetah 1M, Acrobot
1M, Pong 10M: days). Departures from the zoo's budgets in the default table, stated:
Acrobot-v1 PPO 100k (zoo 1M), Hopper-v5 and HalfCheetah-v5 SAC 100k (zoo 1M), ALE/Pong-v5
PPO 200k (zoo 10M; its learning-rate and clip annealing then run over 200k; threshold -20,
i.e. any improvement over a random policy's -21), dm_control cartpole-swingup SAC 50k (no
zoo entry). Every other departure is listed per task (``--list``) and in :data:`TASKS`.

Stable-Baselines3 is the optional ``bench`` extra: ``pip install -e ".[bench]"``. A task
whose env package (ale-py, minigrid, shimmy/dm_control, mujoco, Box2D) is missing is skipped
with the reason printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from ppo_cartpole_vs_sb3 import (  # shared machinery of the *_vs_sb3 benchmarks (same dir)
    COMPUTE_CHOICES,
    EVAL_EPISODES,
    EVAL_SEED_OFFSET,
    EvalLog,
    RunResult,
    _import_sb3,
    machine_info,
    rlkit_run,
    sb3_run,
    threshold_summary,
)
from sac_pendulum_vs_sb3 import OPTIONS, rlkit_backend_options
from torch import nn

from rlkit.agents import DQN, PPO, SAC
from rlkit.config import field_names
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.envs.families import build_family
from rlkit.evaluation import interval_estimates
from rlkit.prototypes.off_policy import retain_freed_memory
from rlkit.prototypes.settings import PRIMITIVE_KEYS
from rlkit.spaces import is_image_space

AGENT_CLASSES: dict[str, Any] = {"ppo": PPO, "sac": SAC, "dqn": DQN}
#: rlkit's collection and update methods per algorithm family (timed by rlkit_run).
PHASES = {"ppo": ("collect_rollout", "update"), "sac": ("collect", "train_step")}
PHASES["dqn"] = PHASES["sac"]
#: run settings a preset may hold besides hyperparameters and primitives.
RUN_KEYS = ("num_envs", "total_steps")
CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
#: fewer seeds than this: the mean over seeds instead of the IQM (which drops n // 4 per side).
IQM_MIN_SEEDS = 4
DEVICE = "cpu"


# --------------------------------------------------------------------------- the task table
@dataclasses.dataclass(frozen=True)
class Task:
    """One row of the suite: both libraries train ``algo`` on ``env_id`` for ``budget`` env
    steps from rlkit's preset ``preset`` (default: the env id) plus ``overrides``."""

    name: str
    algo: str
    env_id: str
    #: env steps per run (the default; ``--scale`` multiplies it).
    budget: int
    #: rl-baselines3-zoo's n_timesteps (``--zoo-budgets``); None: no zoo entry.
    zoo_budget: int | None
    #: score for the time to threshold (mean return of the 20 evaluation episodes).
    threshold: float
    #: env steps between intermediate evaluations (``--scale`` multiplies it).
    eval_every: int
    #: rlkit preset key (``load_preset(algo, preset)``); None: ``env_id``.
    preset: str | None = None
    #: hyperparameters given explicitly to both libraries on top of the preset (rlkit names).
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: departures from the zoo's setting and what both libraries do instead.
    notes: tuple[str, ...] = ()

    @property
    def preset_key(self) -> str:
        return self.preset or self.env_id


TASKS: list[Task] = [
    Task("cartpole", "ppo", "CartPole-v1", 100_000, 100_000, 475.0, 10_240),
    Task(
        "acrobot",
        "ppo",
        "Acrobot-v1",
        100_000,
        1_000_000,
        -100.0,
        16_384,
        notes=("budget 100k (zoo 1M)",),
    ),
    Task("lunarlander", "ppo", "LunarLander-v3", 1_000_000, 1_000_000, 200.0, 65_536),
    Task(
        "mountaincar",
        "sac",
        "MountainCarContinuous-v0",
        50_000,
        50_000,
        90.0,
        5_000,
    ),
    Task("pendulum", "sac", "Pendulum-v1", 20_000, 20_000, -200.0, 1_000),
    Task("mountaincar-ppo", "ppo", "MountainCarContinuous-v0", 20_000, 20_000, 90.0, 2_000),
    Task("pendulum-ppo", "ppo", "Pendulum-v1", 100_000, 100_000, -200.0, 8_192),
    Task(
        "hopper",
        "sac",
        "Hopper-v5",
        100_000,
        1_000_000,
        1000.0,
        10_000,
        notes=("budget 100k (zoo 1M); v5 for the zoo's v4",),
    ),
    Task(
        "halfcheetah",
        "sac",
        "HalfCheetah-v5",
        100_000,
        1_000_000,
        3000.0,
        10_000,
        notes=("budget 100k (zoo 1M); v5 for the zoo's v4",),
    ),
    Task(
        "doorkey",
        "ppo",
        "MiniGrid-DoorKey-5x5-v0",
        100_000,
        100_000,
        0.9,
        8_192,
        notes=(
            "the minigrid family's observation (image scaled, direction one-hot, mission "
            "hashed, flattened) in both instead of the zoo's FlatObsWrapper",
        ),
    ),
    Task(
        "pong",
        "ppo",
        "ALE/Pong-v5",
        200_000,
        10_000_000,
        -20.0,
        20_480,
        notes=(
            "budget 200k (zoo 10M): annealing over 200k; threshold -20 = any improvement on "
            "a random policy's -21; ALE/Pong-v5 (sticky actions) with the atari family's "
            "pipeline in both for the zoo's PongNoFrameskip-v4 + AtariWrapper",
        ),
    ),
    Task(
        "swingup",
        "sac",
        "dm_control/cartpole-swingup-v0",
        50_000,
        None,
        200.0,
        5_000,
        notes=(
            "no zoo entry: rlkit's SAC defaults (= SB3's, buffer 100k) on the dmc family's "
            "flattened state; budget 50k",
        ),
    ),
    Task(
        "cartpole-dqn",
        "dqn",
        "CartPole-v1",
        50_000,
        50_000,
        475.0,
        5_000,
        notes=(
            "target sync: rlkit 128 gradient steps = SB3 256 env steps (one sync per "
            "256-step round before its updates, as the zoo's 10 env steps give)",
        ),
    ),
]
TASKS_BY_NAME = {task.name: task for task in TASKS}


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass
class Settings:
    """A task's resolved setting: the rlkit constructor's hyperparameters and primitives,
    the resolved ``Config`` (defaults filled in) and the env count."""

    num_envs: int
    hyper: dict[str, Any]
    prims: dict[str, Any]
    config: Any


def resolve(task: Task) -> Settings:
    """The preset (plus the task's overrides) split into run settings, hyperparameters and
    primitives, as ``rlkit train`` does; unknown keys are an error."""
    cls = AGENT_CLASSES[task.algo]
    merged = {**load_preset(task.algo, task.preset_key), **task.overrides}
    valid = set(field_names(cls.Config))
    unknown = sorted(set(merged) - valid - set(RUN_KEYS) - set(PRIMITIVE_KEYS))
    if unknown:
        raise ValueError(f"{task.name}: preset keys rlkit does not know: {unknown}")
    hyper = {k: v for k, v in merged.items() if k in valid}
    prims = {k: v for k, v in merged.items() if k in PRIMITIVE_KEYS}
    return Settings(int(merged.get("num_envs", 1)), hyper, prims, cls.Config(**hyper))


@dataclasses.dataclass(frozen=True)
class LinearSchedule:
    """SB3 schedule ``initial * progress_remaining`` (the zoo's ``lin_<initial>``), which is
    rlkit's ``anneal_lr`` / ``anneal_clip_range`` (linear to 0 over the run)."""

    initial: float

    def __call__(self, progress_remaining: float) -> float:
        return self.initial * progress_remaining

    def __str__(self) -> str:
        return f"lin_{self.initial:g}"


#: rlkit activation names -> torch modules (rlkit's tanh is the same function).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def _refuse(task: Task, cfg: Any, unmatched: Mapping[str, Any]) -> None:
    """Stop where the resolved config uses an rlkit option SB3 has no counterpart of."""
    for name, default in unmatched.items():
        if getattr(cfg, name) != default:
            raise NotImplementedError(
                f"{task.name}: {name}={getattr(cfg, name)!r} has no Stable-Baselines3 "
                f"counterpart here (supported: {default!r})"
            )


def _no_grad_clip(value: float | None) -> float:
    """rlkit's ``max_grad_norm=None`` (no clipping) for SB3, which wants a number."""
    return math.inf if value is None else float(value)


def _policy_name(obs_space: spaces.Space[Any]) -> str:
    if isinstance(obs_space, spaces.Dict):
        return "MultiInputPolicy"
    return "CnnPolicy" if is_image_space(obs_space) else "MlpPolicy"


def ppo_policy_kwargs(
    task: Task, spec: Any, obs_space: spaces.Space[Any], act_space: spaces.Space[Any], eps: float
) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for rlkit's default ``ActorCritic`` with the preset's ``policy:``
    spec (hidden_sizes, activation, distribution's log_std_init): separate actor and critic
    trunks after a shared encoder (SB3's ``net_arch=dict(pi=..., vf=...)``, shared features
    extractor), orthogonal init with gains sqrt 2 / 0.01 / 1 unless the spec says
    ``ortho_init: false`` (both libraries then keep PyTorch's default init), Adam eps."""
    options = dict(spec) if isinstance(spec, Mapping) else {"id": spec} if spec else {}
    policy_id = options.pop("id", "actor_critic")
    gsde = policy_id == GSDE_POLICY
    if policy_id not in ("actor_critic", GSDE_POLICY) or options.pop("share_trunk", False):
        raise NotImplementedError(f"{task.name}: policy {spec!r} has no SB3 counterpart here")
    if gsde:  # use_sde / sde_sample_freq are the algorithm's arguments (gsde_options)
        options.pop("sample_freq", None)
        options["distribution"] = {"log_std_init": options.pop("log_std_init", 0.0)}
    sizes = options.pop("hidden_sizes", None)
    if sizes is None:  # ActorCritic's default: 64-64, none after a CNN (SB3's defaults too)
        sizes = [] if is_image_space(obs_space) else [64, 64]
    activation = str(options.pop("activation", "tanh")).lower()
    ortho_init = bool(options.pop("ortho_init", True))
    dist = options.pop("distribution", None)
    dist_options = dict(dist) if isinstance(dist, Mapping) else {"id": dist} if dist else {}
    dist_id = dist_options.pop("id", None)
    log_std_init = float(dist_options.pop("log_std_init", 0.0))
    if options or dist_options or dist_id not in (None, "diag_gaussian", "categorical"):
        raise NotImplementedError(f"{task.name}: policy {spec!r} has no SB3 counterpart here")
    kwargs: dict[str, Any] = {
        "net_arch": {"pi": [int(s) for s in sizes], "vf": [int(s) for s in sizes]},
        "activation_fn": ACTIVATIONS[activation],
        "ortho_init": ortho_init,
        "optimizer_kwargs": {"eps": eps},
    }
    if isinstance(act_space, spaces.Box):
        kwargs["log_std_init"] = log_std_init
    return kwargs


#: rlkit's on-policy gSDE policy (SB3's ``use_sde=True``).
GSDE_POLICY = "gsde_on_policy_actor_critic"


def gsde_options(spec: Any) -> dict[str, Any]:
    """SB3's ``use_sde`` / ``sde_sample_freq`` for the preset's ``policy:`` spec."""
    if isinstance(spec, Mapping) and spec.get("id") == GSDE_POLICY:
        return {"use_sde": True, "sde_sample_freq": int(spec.get("sample_freq", -1))}
    return {}


def sb3_ppo(task: Task, settings: Settings, env: Any, seed: int) -> Any:
    """SB3 PPO from the resolved rlkit PPO config."""
    from stable_baselines3 import PPO as SB3PPO

    cfg = settings.config
    extra = set(settings.prims) - {"policy"}
    if extra:
        raise NotImplementedError(f"{task.name}: primitives {sorted(extra)} not translated")
    _refuse(task, cfg, {"seq_len": None})
    lr = LinearSchedule(cfg.lr) if cfg.anneal_lr else cfg.lr
    clip = LinearSchedule(cfg.clip_range) if cfg.anneal_clip_range else cfg.clip_range
    policy_kwargs = ppo_policy_kwargs(
        task, settings.prims.get("policy"), env.observation_space, env.action_space, cfg.adam_eps
    )
    return SB3PPO(
        _policy_name(env.observation_space),
        env,
        learning_rate=lr,
        n_steps=cfg.num_steps,
        batch_size=cfg.batch_size,
        n_epochs=cfg.num_epochs,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=clip,
        clip_range_vf=cfg.clip_range_vf,
        normalize_advantage=cfg.normalize_advantages,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=_no_grad_clip(cfg.max_grad_norm),
        target_kl=cfg.target_kl,
        policy_kwargs=policy_kwargs,
        **gsde_options(settings.prims.get("policy")),
        device=DEVICE,
        seed=seed,
        verbose=0,
    )


#: rlkit off-policy options without an SB3 counterpart, at the value that matches SB3.
OFF_POLICY_UNMATCHED = {"n_step": 1, "prioritized_replay": False}


def _net_arch(task: Task, cfg: Any, env: Any, vector_default: list[int]) -> list[int]:
    if cfg.hidden_sizes is not None:
        return [int(s) for s in cfg.hidden_sizes]
    return [] if is_image_space(env.observation_space) else list(vector_default)


def sb3_sac(task: Task, settings: Settings, env: Any, seed: int) -> Any:
    """SB3 SAC from the resolved rlkit SAC config (rlkit's networks: actor and twin critics
    with ``hidden_sizes``, default 256-256 ReLU = SB3's)."""
    from stable_baselines3 import SAC as SB3SAC

    cfg = settings.config
    if settings.prims:
        raise NotImplementedError(f"{task.name}: primitives {sorted(settings.prims)}")
    if is_image_space(env.observation_space):  # rlkit shares one encoder; SB3 does not
        raise NotImplementedError(f"{task.name}: image SAC is not paired")
    _refuse(task, cfg, {**OFF_POLICY_UNMATCHED, "max_grad_norm": None})
    return SB3SAC(
        "MlpPolicy",
        env,
        learning_rate=cfg.lr,
        buffer_size=cfg.buffer_size,
        learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size,
        tau=cfg.tau,
        gamma=cfg.gamma,
        train_freq=cfg.train_freq,
        gradient_steps=cfg.gradient_steps,
        ent_coef=cfg.ent_coef,
        target_entropy=cfg.target_entropy,
        target_update_interval=cfg.target_update_interval,
        use_sde=cfg.use_sde,
        sde_sample_freq=cfg.sde_sample_freq,
        policy_kwargs={
            "net_arch": _net_arch(task, cfg, env, [256, 256]),
            "optimizer_kwargs": {"eps": cfg.adam_eps},
            **({"log_std_init": cfg.log_std_init} if cfg.use_sde else {}),
        },
        device=DEVICE,
        seed=seed,
        verbose=0,
    )


def sb3_target_update_interval(cfg: Any, num_envs: int) -> int:
    """rlkit counts the target-update interval in gradient steps, SB3 in env steps: one
    round is ``train_freq`` vector steps (``train_freq * num_envs`` env steps) followed by
    ``gradient_steps`` updates (-1: as many as env steps), so SB3's interval is
    ``rlkit_interval * env steps per round / gradient steps per round`` (rlkit/presets/dqn.yaml)."""
    env_steps = cfg.train_freq * num_envs
    updates = env_steps if cfg.gradient_steps == -1 else cfg.gradient_steps
    return max(1, round(cfg.target_update_interval * env_steps / updates))


def sb3_dqn(task: Task, settings: Settings, env: Any, seed: int) -> Any:
    """SB3 DQN from the resolved rlkit DQN config."""
    from stable_baselines3 import DQN as SB3DQN

    cfg = settings.config
    if settings.prims:
        raise NotImplementedError(f"{task.name}: primitives {sorted(settings.prims)}")
    unmatched = {**OFF_POLICY_UNMATCHED, "double_q": False, "dueling": False, "noisy": 0.0}
    _refuse(task, cfg, unmatched)
    return SB3DQN(
        _policy_name(env.observation_space),
        env,
        learning_rate=cfg.lr,
        buffer_size=cfg.buffer_size,
        learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size,
        tau=cfg.tau,
        gamma=cfg.gamma,
        train_freq=cfg.train_freq,
        gradient_steps=cfg.gradient_steps,
        target_update_interval=sb3_target_update_interval(cfg, settings.num_envs),
        exploration_fraction=cfg.exploration_fraction,
        exploration_initial_eps=cfg.exploration_initial_eps,
        exploration_final_eps=cfg.exploration_final_eps,
        max_grad_norm=_no_grad_clip(cfg.max_grad_norm),
        policy_kwargs={
            "net_arch": _net_arch(task, cfg, env, [64, 64]),
            "optimizer_kwargs": {"eps": cfg.adam_eps},
        },
        device=DEVICE,
        seed=seed,
        verbose=0,
    )


SB3_BUILDERS: dict[str, Callable[[Task, Settings, Any, int], Any]] = {
    "ppo": sb3_ppo,
    "sac": sb3_sac,
    "dqn": sb3_dqn,
}

#: settings that still differ between the two libraries after the translation (printed with
#: the report, kept in the JSON). Values the presets leave at rlkit's default are passed to SB3
#: explicitly (buffer_size 100k where SB3's default is 1M; PPO's Adam eps 1e-5 = SB3's PPO;
#: off-policy Adam eps 1e-8 = SB3's; DQN's 64-64 Q-network = SB3's).
KNOWN_DIFFERENCES = [
    "random numbers: the same seed does not give the same draws in the two libraries",
    "PPO initialisation: the preset's ortho_init (default true) in both; the weights' draws "
    "differ (see random numbers)",
    "observation normalisation: rlkit whitens inside the agent (ObsNormalizer, non-image "
    "observations only), SB3 with VecNormalize (same clip 10, eps 1e-8); the statistics "
    "may be updated one step apart",
    "SB3 wraps each env in Monitor (no effect on observations or rewards)",
    "run length: SB3's off-policy loop finishes its last train_freq round (up to train_freq - 1 "
    "env steps past the budget), PPO in both runs whole rollouts; steps/s use each run's own "
    "count",
    "evaluation step cap: rlkit ends an evaluation episode of an env without a time limit at "
    "108k steps, SB3 does not (no effect here: ALE ends a game at 108k frames)",
]


# --------------------------------------------------------------------------- envs
def env_maker(env_id: str, evaluation: bool) -> Callable[[], gym.Env[Any, Any]]:
    """One env as rlkit builds it: the env family's pipeline (training or evaluation
    variant), else plain ``gym.make``."""
    family = build_family(env_id, True)

    def make() -> gym.Env[Any, Any]:
        if family is None:
            return gym.make(env_id)
        return family.make(env_id, {}, evaluation)

    return make


def unavailable(task: Task) -> str | None:
    """Why ``task`` cannot run here (a missing optional package or env), else None."""
    try:
        family = build_family(task.env_id, True)
        if family is not None:
            family.register()
        env = env_maker(task.env_id, False)()
        env.close()
    except ImportError as e:  # MissingExtraError names the extra
        return str(e)
    except gym.error.Error as e:
        return f"{type(e).__name__}: {e}"
    return None


# --------------------------------------------------------------------------- runs
def train_rlkit(
    task: Task,
    settings: Settings,
    seed: int,
    steps: int,
    every: int | None,
    threads: int,
    order: int,
) -> RunResult:
    """Build, train (timed, evaluations excluded) and evaluate rlkit's agent."""
    torch.set_num_threads(threads)
    env = make_vec_env(task.env_id, num_envs=settings.num_envs, seed=seed)
    cls = AGENT_CLASSES[task.algo]
    agent = cls(
        env,
        seed=seed,
        num_threads=threads,
        device=DEVICE,
        **rlkit_backend_options(),
        **settings.hyper,
        **settings.prims,
    )
    log = EvalLog(every, task.threshold)
    return rlkit_run(agent, seed, steps, 0, order, log, PHASES[task.algo])


def train_sb3(
    task: Task,
    settings: Settings,
    seed: int,
    steps: int,
    every: int | None,
    threads: int,
    order: int,
) -> RunResult:
    """Build, train (timed, evaluations excluded) and evaluate the Stable-Baselines3 model."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(threads)
    cfg = settings.config
    env: Any = sb3_make_vec_env(env_maker(task.env_id, False), n_envs=settings.num_envs, seed=seed)
    norm_obs = bool(cfg.normalize_obs)
    norm_reward = bool(getattr(cfg, "normalize_reward", False))
    if norm_obs or norm_reward:
        env = VecNormalize(
            env,
            norm_obs=norm_obs,
            norm_reward=norm_reward,
            clip_obs=cfg.clip_obs,
            clip_reward=getattr(cfg, "clip_reward", 10.0),
            gamma=cfg.gamma,
        )
    train_env = env
    model = SB3_BUILDERS[task.algo](task, settings, env, seed)

    def make_eval_env() -> Any:
        """As many envs as rlkit's evaluation, seeded train seed + 10000, the family's
        evaluation pipeline, observations normalised with the training statistics."""
        eval_env: Any = sb3_make_vec_env(
            env_maker(task.env_id, True),
            n_envs=min(EVAL_EPISODES, settings.num_envs),
            seed=seed + EVAL_SEED_OFFSET,
        )
        if norm_obs:
            eval_env = VecNormalize(
                eval_env, training=False, norm_obs=True, norm_reward=False, clip_obs=cfg.clip_obs
            )
            eval_env.obs_rms = train_env.obs_rms.copy()
        return eval_env

    # SB3 evaluates where rlkit's iterations end: after a rollout's update (on-policy) or every
    # log_interval env steps (off-policy), see sb3_evaluator
    iteration = None if task.algo == "ppo" else int(cfg.log_interval)
    log = EvalLog(every, task.threshold)
    return sb3_run(model, make_eval_env, seed, steps, 0, order, log, iteration)


# --------------------------------------------------------------------------- summaries
def aggregate(returns: list[float]) -> dict[str, Any]:
    """IQM (the mean below :data:`IQM_MIN_SEEDS` seeds) of the per-seed final returns with
    a percentile bootstrap CI (:func:`rlkit.evaluation.interval_estimates`: fixed-seed numpy
    Generator, :data:`BOOTSTRAP_REPS` resamples)."""
    metric = "iqm" if len(returns) >= IQM_MIN_SEEDS else "mean"
    scores = np.asarray(returns, dtype=np.float64).reshape(-1, 1)
    estimate = interval_estimates(
        {"x": scores},
        metrics=(metric,),
        reps=BOOTSTRAP_REPS,
        confidence=CONFIDENCE,
        seed=BOOTSTRAP_SEED,
    )["x"][metric]
    return {"metric": metric, "point": estimate.point, "ci": [estimate.low, estimate.high]}


def verdict(mine: dict[str, Any], peer: dict[str, Any]) -> str:
    """rlkit's point estimate against SB3's CI (and the CIs against each other)."""
    if mine["ci"][0] > peer["ci"][1]:
        return "better"
    if mine["point"] >= peer["ci"][0]:
        return "not worse"
    if mine["ci"][1] < peer["ci"][0]:
        return "worse"
    return "tie (CIs overlap)"


def summarize_task(runs: list[RunResult], every: int | None) -> dict[str, Any]:
    """Per library: final returns per seed, their IQM/mean with CI, steps/s, time to
    threshold; and the verdict."""
    out: dict[str, Any] = {}
    for lib in ("rlkit", "sb3"):
        mine = sorted((r for r in runs if r.library == lib), key=lambda r: r.seed)
        returns = [r.return_mean for r in mine]
        out[lib] = {
            "returns_per_seed": {r.seed: r.return_mean for r in mine},
            "return": aggregate(returns),
            "sps_median": statistics.median(r.sps for r in mine),
            "sps_all": [r.sps for r in mine],
            "train_s_all": [r.train_s for r in mine],
            "threshold": threshold_summary(mine) if every is not None else None,
        }
    out["verdict"] = verdict(out["rlkit"]["return"], out["sb3"]["return"])
    return out


# --------------------------------------------------------------------------- reporting
def _fmt(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def _score_cell(entry: dict[str, Any]) -> str:
    low, high = entry["ci"]
    mark = "" if entry["metric"] == "iqm" else " (mean)"
    return f"{_fmt(entry['point'])} [{_fmt(low)}, {_fmt(high)}]{mark}"


def _budget_cell(item: dict[str, Any]) -> str:
    """The budget, and the steps actually run where whole rollouts or rounds went past it."""
    ran = max(r.steps for r in item["runs"])
    return f"{item['steps']:,}" + (f" (ran {ran:,})" if ran != item["steps"] else "")


def _time_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    counts = f"({entry['reached']}/{entry['runs']})"
    if entry["time_s_median"] is None:
        return f"not reached {counts}"
    return f"{entry['time_s_median']:.1f} s {counts}"


def markdown(
    results: list[dict[str, Any]],
    skipped: list[tuple[str, str]],
    machine: dict[str, Any],
    args: argparse.Namespace,
    wall_s: float,
) -> str:
    """The summary table with its header lines."""
    seeds = args.seeds
    lines = [
        "## rlkit vs Stable-Baselines3: scores (issue #20)",
        "",
        f"- CPU: {machine['processor']}; {machine['cpu_count']} logical CPUs "
        f"({machine['affinity_cpus']} usable); torch threads {args.threads} for both",
        f"- versions: rlkit {machine['rlkit']}, Stable-Baselines3 "
        f"{machine['stable_baselines3']}, torch {machine['torch']}, gymnasium "
        f"{machine['gymnasium']}, python {machine['python']}; rlkit compute `{args.compute}`",
        f"- seeds {' '.join(map(str, seeds))}; budgets x{args.scale:g}"
        + (" of the zoo's n_timesteps" if args.zoo_budgets else " of the suite's defaults"),
        f"- final return: mean of {EVAL_EPISODES} deterministic episodes (fresh env, seed + "
        f"{EVAL_SEED_OFFSET}) per seed; "
        + (
            "IQM over seeds"
            if len(seeds) >= IQM_MIN_SEEDS
            else f"mean over seeds (fewer than {IQM_MIN_SEEDS} seeds: no IQM)"
        )
        + f", {100 * CONFIDENCE:g}% percentile bootstrap CI ({BOOTSTRAP_REPS} resamples"
        + ("; one seed: the CI is the point itself)" if len(seeds) == 1 else ")"),
        "- steps/s: training env steps per second, median over seeds, evaluations excluded",
        "- time to threshold: training seconds (evaluations excluded) to the first "
        f"intermediate evaluation ({EVAL_EPISODES} episodes every eval_every steps) at or above "
        "the threshold; median over seeds, a run not reaching it counted as infinitely late "
        "(reached/runs)",
        "- verdict: better = rlkit's CI above SB3's; not worse = rlkit's estimate >= the low "
        "end of SB3's CI; tie = below that but the CIs overlap; worse = rlkit's CI below SB3's",
        f"- wall time: {wall_s / 60:.1f} minutes",
        "",
        "| task | algo | budget | seeds | rlkit return [CI] | SB3 return [CI] | rlkit steps/s "
        "| SB3 steps/s | rlkit time to threshold | SB3 time to threshold | verdict |",
        "|---|---|---:|---:|---|---|---:|---:|---|---|---|",
    ]
    for item in results:
        task: Task = item["task"]
        summary = item["summary"]
        rl, sb = summary["rlkit"], summary["sb3"]
        lines.append(
            f"| {task.env_id} (threshold {task.threshold:g}) | {task.algo.upper()} "
            f"| {_budget_cell(item)} | {len(seeds)} | {_score_cell(rl['return'])} "
            f"| {_score_cell(sb['return'])} | {rl['sps_median']:,.0f} | {sb['sps_median']:,.0f} "
            f"| {_time_cell(rl['threshold'])} | {_time_cell(sb['threshold'])} "
            f"| {summary['verdict']} |"
        )
    if skipped:
        lines.append("")
        lines += [f"- skipped {name}: {reason}" for name, reason in skipped]
    notes = [(item["task"].name, n) for item in results for n in item["task"].notes]
    if notes:
        lines += ["", "Departures from rl-baselines3-zoo (both libraries alike):", ""]
        lines += [f"- {name}: {note}" for name, note in notes]
    lines += ["", "Differences left between the libraries:", ""]
    lines += [f"- {d}" for d in KNOWN_DIFFERENCES]
    return "\n".join(lines)


def print_table() -> None:
    """``--list``: the task table with the resolved rlkit settings."""
    for task in TASKS:
        zoo = f"{task.zoo_budget:,}" if task.zoo_budget else "no zoo entry"
        print(
            f"{task.name:<13} {task.algo.upper():<4} {task.env_id:<31} budget {task.budget:>9,} "
            f"(zoo {zoo}), threshold {task.threshold:g}, eval every {task.eval_every:,}"
        )
        settings = resolve(task)
        shown = {"num_envs": settings.num_envs, **settings.hyper, **settings.prims}
        print(f"{'':<14}preset {task.preset_key!r}: {shown}")
        for note in task.notes:
            print(f"{'':<14}note: {note}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Task):
        return dataclasses.asdict(value)
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, Path):
        return str(value)
    return str(value)


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="tasks: " + ", ".join(TASKS_BY_NAME),
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=list(TASKS_BY_NAME),
        default=list(TASKS_BY_NAME),
        metavar="TASK",
        help="tasks to run (default all; --list shows them)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds (0..4)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every budget and evaluation interval (e.g. 0.01 for a smoke test)",
    )
    parser.add_argument(
        "--zoo-budgets",
        action="store_true",
        help="train for the zoo's n_timesteps (tasks without a zoo entry keep theirs)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (1)")
    parser.add_argument(
        "--compute", choices=COMPUTE_CHOICES, default="fast", help="rlkit compute backend"
    )
    parser.add_argument(
        "--no-eval",
        action="store_true",
        help="no intermediate evaluations (only the final one; no time to threshold)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here")
    parser.add_argument("--list", action="store_true", help="print the task table and exit")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    if not args.scale > 0:
        parser.error("--scale must be > 0")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds must not repeat a seed")
    return args


def scaled(value: int, scale: float) -> int:
    return max(1, round(value * scale))


def run_task(task: Task, args: argparse.Namespace) -> dict[str, Any]:
    """Both libraries on ``task`` for every seed, alternating which goes first."""
    settings = resolve(task)
    budget = task.zoo_budget if args.zoo_budgets and task.zoo_budget else task.budget
    steps = scaled(budget, args.scale)
    every = None if args.no_eval else scaled(task.eval_every, args.scale)
    runs: list[RunResult] = []
    order = 0
    for index, seed in enumerate(args.seeds):
        libs = ("rlkit", "sb3") if index % 2 == 0 else ("sb3", "rlkit")
        for lib in libs:
            train = train_rlkit if lib == "rlkit" else train_sb3
            run = train(task, settings, seed, steps, every, args.threads, order)
            order += 1
            runs.append(run)
            print(
                f"  {task.name} {lib} seed {seed}: {run.steps:,} steps, {run.sps:,.0f} steps/s, "
                f"return {run.return_mean:.1f}, threshold "
                + ("-" if run.threshold_s is None else f"{run.threshold_s:.1f} s"),
                file=sys.stderr,
                flush=True,
            )
    return {
        "task": task,
        "steps": steps,
        "eval_every": every,
        "settings": {
            "num_envs": settings.num_envs,
            "preset": {**settings.hyper, **settings.prims},
            "config": dataclasses.asdict(settings.config),
        },
        "runs": runs,
        "summary": summarize_task(runs, every),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the chosen tasks, print the table and optionally save JSON and markdown."""
    args = parse_args(argv)
    if args.list:
        print_table()
        return 0
    _import_sb3()
    OPTIONS.compute = args.compute
    machine = machine_info(args.threads)
    # rlkit's off-policy agents ask glibc to keep freed memory; process-wide, so turned on
    # before the first run: both libraries train under the same allocator settings
    machine["malloc_retains_freed_memory"] = retain_freed_memory()
    print(
        f"machine: {machine['processor']}, {machine['cpu_count']} CPUs "
        f"({machine['affinity_cpus']} usable), torch threads {args.threads}",
        file=sys.stderr,
        flush=True,
    )
    results: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    start = time.perf_counter()
    for name in args.tasks:
        task = TASKS_BY_NAME[name]
        reason = unavailable(task)
        if reason is not None:
            print(f"== {name}: skipped ({reason})", file=sys.stderr, flush=True)
            skipped.append((name, reason))
            continue
        print(f"== {name}: {task.algo.upper()} on {task.env_id}", file=sys.stderr, flush=True)
        results.append(run_task(task, args))
    wall_s = time.perf_counter() - start
    text = markdown(results, skipped, machine, args, wall_s)
    print(text)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
        print(f"wrote {args.markdown}", file=sys.stderr)
    if args.json is not None:
        payload = {
            "benchmark": "scores",
            "machine": machine,
            "args": vars(args),
            "eval": {
                "episodes": EVAL_EPISODES,
                "deterministic": True,
                "seed_offset": EVAL_SEED_OFFSET,
                "time_excluded_from_training": True,
            },
            "aggregate": {
                "iqm_min_seeds": IQM_MIN_SEEDS,
                "confidence": CONFIDENCE,
                "bootstrap_reps": BOOTSTRAP_REPS,
                "bootstrap_seed": BOOTSTRAP_SEED,
            },
            "known_differences": KNOWN_DIFFERENCES,
            "skipped": dict(skipped),
            "wall_s": wall_s,
            "tasks": [
                {**item, "runs": [dataclasses.asdict(r) for r in item["runs"]]} for item in results
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
