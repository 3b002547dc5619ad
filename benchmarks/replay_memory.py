"""Memory benchmark: bytes per transition of rlkit's PixelStore vs Stable-Baselines3's
ReplayBuffer for 4-frame-stacked 84x84 uint8 observations (the Atari/DQN setting).

Both buffers are built with the same capacity, observation and action spaces, then filled
with the same stream of transitions from a frame-stacked env (random 84x84 frames,
``gymnasium.wrappers.FrameStackObservation``, 4 frames). Memory is read from the objects'
own arrays: ``ReplayStorage.nbytes`` for rlkit (frame pool, index tables, actions, rewards,
flags, episode bookkeeping) and the ``.nbytes`` of every array SB3's buffer holds
(observations, next_observations when kept, actions, rewards, dones, timeouts). SB3 runs
twice: with its defaults, and with ``optimize_memory_usage=True`` (which needs
``handle_timeout_termination=False``, so it loses truncation information).

    python benchmarks/replay_memory.py                       # ~10 s, about 700 MB of RAM
    python benchmarks/replay_memory.py --capacity 100000 --json memory.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import FrameStackObservation

import rlkit
from rlkit.storages import PixelStore, ReplayStorage


class RandomFrames(gym.Env[np.ndarray, np.int64]):
    """84x84 grayscale frames of random content, episodes of random length."""

    def __init__(self, mean_length: int) -> None:
        self.observation_space = spaces.Box(0, 255, (84, 84), np.uint8)
        self.action_space = spaces.Discrete(6)
        self.end_prob = 1.0 / mean_length

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        return self._frame(), {}

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, (84, 84), dtype=np.uint8)

    def step(self, action):
        ended = bool(self.np_random.random() < self.end_prob)
        terminated = ended and bool(self.np_random.random() < 0.5)
        return self._frame(), 1.0, terminated, ended and not terminated, {}


def sb3_nbytes(buffer: Any) -> int:
    names = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    return sum(getattr(buffer, n).nbytes for n in names if getattr(buffer, n, None) is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=10_000, help="transitions per buffer")
    parser.add_argument("--num-envs", type=int, default=1)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="vector steps to fill with (default: 1.2 x capacity / num_envs)",
    )
    parser.add_argument(
        "--episode-length", type=int, default=400, help="mean episode length of the frame env"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    try:
        from stable_baselines3.common.buffers import ReplayBuffer
    except ImportError:
        sys.exit('this benchmark compares with Stable-Baselines3: pip install -e ".[bench]"')

    n = args.num_envs
    env = gym.vector.SyncVectorEnv(
        [lambda: FrameStackObservation(RandomFrames(args.episode_length), 4)] * n,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs_space, act_space = env.single_observation_space, env.single_action_space
    rlkit_buffer = ReplayStorage(
        obs_space, act_space, capacity=args.capacity, num_envs=n, store="pixel"
    )
    assert isinstance(rlkit_buffer.store, PixelStore)
    first_pool = rlkit_buffer.store.pool_size
    sb3_default = ReplayBuffer(args.capacity, obs_space, act_space, device="cpu", n_envs=n)
    sb3_optimized = ReplayBuffer(
        args.capacity,
        obs_space,
        act_space,
        device="cpu",
        n_envs=n,
        optimize_memory_usage=True,
        handle_timeout_termination=False,
    )

    steps = args.steps or int(1.2 * args.capacity / n)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    episodes = 0
    for _ in range(steps):
        actions = env.action_space.sample()
        next_obs, rewards, term, trunc, info = env.step(actions)
        true_next = next_obs.copy()
        for e in np.flatnonzero(term | trunc):
            true_next[e] = info["final_obs"][e]
            episodes += 1
        rlkit_buffer.add(obs, actions, rewards, true_next, term, trunc)
        infos = [{"TimeLimit.truncated": bool(t)} for t in trunc]
        for buffer in (sb3_default, sb3_optimized):
            buffer.add(obs, true_next, actions, rewards, term | trunc, infos)
        obs = next_obs

    capacity = rlkit_buffer.capacity
    rows = [
        ("rlkit ReplayStorage(store='pixel')", rlkit_buffer.nbytes),
        ("SB3 ReplayBuffer (default)", sb3_nbytes(sb3_default)),
        ("SB3 ReplayBuffer (optimize_memory_usage)", sb3_nbytes(sb3_optimized)),
    ]
    reference = rows[1][1]
    frame = 84 * 84
    print(
        f"4 x 84 x 84 uint8 observations, capacity {capacity} transitions, {n} env(s), "
        f"filled with {steps * n} transitions ({episodes} episode ends)"
    )
    print(
        f"{'buffer':<44} {'bytes/transition':>17} {'frames/transition':>18} "
        f"{'MB':>9} {'vs SB3 default':>15}"
    )
    for name, nbytes in rows:
        per = nbytes / capacity
        print(
            f"{name:<44} {per:>17.1f} {per / frame:>18.3f} {nbytes / 2**20:>9.1f} "
            f"{nbytes / reference:>15.4f}"
        )
    ratio = rows[0][1] / reference
    print(
        f"rlkit / SB3 default = {ratio:.4f} (1/{1 / ratio:.1f}); rlkit / SB3 optimized = "
        f"{rows[0][1] / rows[2][1]:.4f}; target <= 0.25: {'met' if ratio <= 0.25 else 'MISSED'}"
    )
    pool = rlkit_buffer.store.pool_size
    print(
        f"rlkit frame pool: {pool} frames for {capacity} transitions "
        f"({'grew from ' + str(first_pool) if pool != first_pool else 'no growth'})"
    )
    if args.json:
        import stable_baselines3

        args.json.write_text(
            json.dumps(
                {
                    "settings": {**vars(args), "json": str(args.json), "steps": steps},
                    "capacity": capacity,
                    "bytes": {name: nbytes for name, nbytes in rows},
                    "bytes_per_transition": {name: nbytes / capacity for name, nbytes in rows},
                    "ratio_vs_sb3_default": ratio,
                    "ratio_vs_sb3_optimized": rows[0][1] / rows[2][1],
                    "pool_frames": pool,
                    "machine": {
                        "platform": platform.platform(),
                        "python": platform.python_version(),
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
