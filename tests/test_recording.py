"""Episode recording: tiled frames, GIF/MP4 files read back, per-episode files, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlkit.agents import PPO
from rlkit.envs import make_vec_env
from rlkit.envs.recording import RecordEpisodes, record_episodes, tile_frames

iio = pytest.importorskip("imageio.v3")
pytest.importorskip("imageio_ffmpeg")

ENV_ID = "RlkitRecordingTest-v0"


class FrameEnv(gym.Env[np.ndarray, np.int64]):
    """Ends after exactly ``length`` steps; ``render()`` draws a flat frame whose red channel
    is ``20 + 10 * step``, green tells the sub-env apart (``40 + 50 * (seed % 4)``) and blue
    counts episodes, so every frame differs from the one before."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self, render_mode: str | None = None, length: int = 7, height: int = 6, width: int = 10
    ) -> None:
        self.render_mode = render_mode
        self.length, self.height, self.width = length, height, width
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0
        self.ident = 0
        self.episode = -1

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.ident = seed % 4
        self.t = 0
        self.episode += 1
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return np.zeros(3, dtype=np.float32), 1.0, self.t >= self.length, False, {}

    def render(self) -> np.ndarray:
        color = (20 + 10 * self.t, 40 + 50 * self.ident, 100 + 50 * (self.episode % 3))
        return np.broadcast_to(np.array(color, dtype=np.uint8), (self.height, self.width, 3)).copy()


def make_frame_env(**kwargs: Any) -> FrameEnv:
    return FrameEnv(**kwargs)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=make_frame_env)


def red(t: int) -> int:
    return 20 + 10 * t


def green(ident: int) -> int:
    return 40 + 50 * ident


def agent_on(num_envs: int, seed: int = 0, **env_kwargs: Any) -> PPO:
    return PPO(
        make_vec_env(ENV_ID, num_envs=num_envs, seed=seed, env_kwargs=env_kwargs),
        seed=seed,
        device="cpu",
    )


def only_file(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- tile_frames
def test_tile_frames_layout_padding_and_blank_tiles() -> None:
    a = np.full((4, 6, 3), 10, dtype=np.uint8)
    b = np.full((2, 4, 3), 20, dtype=np.uint8)  # smaller: centred in its tile
    c = np.full((4, 6, 3), 30, dtype=np.uint8)
    out = tile_frames([a, b, c])  # 3 frames -> 2x2 grid, the 4th tile blank
    assert out.dtype == np.uint8
    assert out.shape == (4 + 2 + 4, 6 + 2 + 6, 3)
    assert (out[0:4, 0:6] == 10).all()
    tile_b = out[0:4, 8:14]
    assert (tile_b[1:3, 1:5] == 20).all()
    tile_b[1:3, 1:5] = 0
    assert (tile_b == 0).all()  # the padding around the smaller frame is black
    assert (out[6:10, 0:6] == 30).all()
    assert (out[6:10, 8:14] == 0).all()  # missing tile
    assert (out[4:6, :] == 0).all() and (out[:, 6:8] == 0).all()  # gaps between tiles

    row = tile_frames([a, c, a], columns=3, pad=1)
    assert row.shape == (4, 6 * 3 + 2, 3)
    assert (row[:, 7:13] == 30).all() and (row[:, 6] == 0).all()
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6)
    single = tile_frames([grey])  # one frame comes back as it is (grey -> RGB)
    assert single.shape == (4, 6, 3) and (single[..., 1] == grey).all()


def test_tile_frames_errors() -> None:
    frame = np.zeros((2, 2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="no frames"):
        tile_frames([])
    with pytest.raises(ValueError, match="columns"):
        tile_frames([frame], columns=0)
    with pytest.raises(ValueError, match="uint8"):
        tile_frames([frame.astype(np.float32)])


# --------------------------------------------------------------------------- record_episodes
def test_record_one_env_gif_has_every_frame(tmp_path: Path) -> None:
    agent = agent_on(num_envs=3)
    out = tmp_path / "run.gif"
    info = record_episodes(agent, out, episodes=2, grid=False)
    # 7-step episodes: first frame + 7 steps each, the last frame of each episode included
    assert (info.frames, info.episodes, info.height, info.width) == (16, 2, 6, 10)
    assert info.path == out and info.fps == 25.0  # the env's render_fps
    video = iio.imread(out, mode="RGB")
    assert video.shape == (16, 6, 10, 3)
    assert list(video[:, 0, 0, 0]) == [red(t) for t in range(8)] * 2
    assert iio.immeta(out)["duration"] == 40
    assert only_file(tmp_path) == ["run.gif"]  # no temporary file left behind


def test_record_grid_tiles_four_envs(tmp_path: Path) -> None:
    agent = agent_on(num_envs=4, seed=0)
    out = tmp_path / "grid.gif"
    info = record_episodes(agent, out, episodes=4)
    height, width = 2 * 6 + 2, 2 * 10 + 2
    assert (info.frames, info.episodes, info.height, info.width) == (8, 4, height, width)
    video = iio.imread(out, mode="RGB")
    assert video.shape == (8, height, width, 3)
    # the default seed is the training seed + 10_000, so sub-env i is seeded 10_000 + i
    for i, (top, left) in enumerate([(0, 0), (0, 12), (8, 0), (8, 12)]):
        tile = video[:, top : top + 6, left : left + 10]
        assert (tile[..., 1] == green(i)).all(), f"tile {i}"
        assert list(tile[:, 0, 0, 0]) == [red(t) for t in range(8)]
    assert (video[:, 6:8] == 0).all() and (video[:, :, 10:12] == 0).all()


def test_record_grid_more_episodes_than_envs(tmp_path: Path) -> None:
    agent = agent_on(num_envs=2)
    info = record_episodes(agent, tmp_path / "g.gif", episodes=4, fps=50)
    # two episodes per sub-env; in the grid the second episode skips its first frame
    assert (info.frames, info.episodes, info.fps) == (1 + 7 + 7, 4, 50.0)
    video = iio.imread(tmp_path / "g.gif", mode="RGB")
    assert list(video[:, 0, 0, 0]) == [red(t) for t in range(8)] + [red(t) for t in range(1, 8)]


def test_record_mp4_pads_odd_sizes_and_reads_back(tmp_path: Path) -> None:
    agent = agent_on(num_envs=1, height=25, width=33)
    out = tmp_path / "run.mp4"
    info = record_episodes(agent, out, episodes=1)
    assert (info.frames, info.height, info.width) == (8, 26, 34)
    video = iio.imread(out)
    assert video.shape == (8, 26, 34, 3)
    # lossy, but the red channel still steps up by 10 each frame
    assert np.allclose(video[:, 12, 16, 0], [red(t) for t in range(8)], atol=6)
    assert only_file(tmp_path) == ["run.mp4"]


def test_record_stops_at_max_frames(tmp_path: Path) -> None:
    agent = agent_on(num_envs=1)
    info = record_episodes(agent, tmp_path / "cap.gif", episodes=3, max_frames=10)
    assert (info.frames, info.episodes) == (10, 1)
    assert iio.imread(tmp_path / "cap.gif", mode="RGB").shape[0] == 10


def test_record_on_given_env_holds_finished_tiles(tmp_path: Path) -> None:
    agent = agent_on(num_envs=2)
    env = SyncVectorEnv(
        [
            lambda: gym.make(ENV_ID, render_mode="rgb_array", length=3),
            lambda: gym.make(ENV_ID, render_mode="rgb_array", length=5),
        ],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    info = record_episodes(agent, tmp_path / "given.gif", episodes=2, env=env, seed=0)
    env.close()
    # frames come from env.render(), which shows the next episode once one ends: the last
    # frame of each episode is missing; sub-env 0 holds its last frame while 1 finishes
    assert (info.frames, info.episodes) == (5, 2)
    video = iio.imread(tmp_path / "given.gif", mode="RGB")
    assert list(video[:, 0, 0, 0]) == [red(t) for t in (0, 1, 2, 2, 2)]
    assert list(video[:, 0, 12, 0]) == [red(t) for t in (0, 1, 2, 3, 4)]


def test_record_errors(tmp_path: Path) -> None:
    agent = agent_on(num_envs=1)
    with pytest.raises(ValueError, match="unknown video format"):
        record_episodes(agent, tmp_path / "out.avi")
    with pytest.raises(ValueError, match="episodes"):
        record_episodes(agent, tmp_path / "out.gif", episodes=0)
    plain = make_vec_env(ENV_ID, num_envs=1)
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        record_episodes(agent, tmp_path / "out.gif", env=plain)
    plain.close()
    from_callable = PPO(make_vec_env(FrameEnv, num_envs=1), device="cpu")
    with pytest.raises(ValueError, match="callable"):
        record_episodes(from_callable, tmp_path / "out.gif")
    assert only_file(tmp_path) == []


def test_failed_recording_leaves_no_file(tmp_path: Path) -> None:
    class Broken(FrameEnv):
        def render(self) -> np.ndarray:
            frame = super().render()
            return frame.astype(np.float32) if self.t == 3 else frame

    agent = PPO(make_vec_env(lambda: Broken(render_mode="rgb_array"), num_envs=1), device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        record_episodes(agent, tmp_path / "out.gif")
    assert only_file(tmp_path) == []


# --------------------------------------------------------------------------- RecordEpisodes
def play(env: gym.Env[Any, Any], episodes: int, steps: int | None = None) -> None:
    for _ in range(episodes):
        env.reset(seed=0)
        done, taken = False, 0
        while not done and (steps is None or taken < steps):
            _, _, terminated, truncated, _ = env.step(0)
            done, taken = terminated or truncated, taken + 1


def test_record_episodes_wrapper_writes_one_file_per_episode(tmp_path: Path) -> None:
    env = RecordEpisodes(gym.make(ENV_ID, render_mode="rgb_array"), tmp_path / "ep.gif")
    play(env, episodes=2)
    assert env.paths == [tmp_path / "ep-0000.gif", tmp_path / "ep-0001.gif"]
    play(env, episodes=1, steps=3)  # unfinished: written on close
    env.close()
    assert env.paths[-1] == tmp_path / "ep-0002.gif"
    assert only_file(tmp_path) == ["ep-0000.gif", "ep-0001.gif", "ep-0002.gif"]
    for path, frames in zip(env.paths, (8, 8, 4), strict=True):
        video = iio.imread(path, mode="RGB")
        assert video.shape == (frames, 6, 10, 3)
        assert list(video[:, 0, 0, 0]) == [red(t) for t in range(frames)]


def test_record_episodes_wrapper_all_in_one_file_and_max_frames(tmp_path: Path) -> None:
    env = RecordEpisodes(
        gym.make(ENV_ID, render_mode="rgb_array"), tmp_path / "all.mp4", per_episode=False
    )
    play(env, episodes=2)
    assert not (tmp_path / "all.mp4").exists()  # written on close
    env.close()
    assert env.paths == [tmp_path / "all.mp4"]
    assert iio.imread(tmp_path / "all.mp4").shape == (16, 6, 10, 3)

    capped = RecordEpisodes(
        gym.make(ENV_ID, render_mode="rgb_array"), tmp_path / "cap.gif", max_frames=5, fps=10
    )
    play(capped, episodes=1)
    capped.close()
    assert capped.dropped_frames == 3
    assert iio.imread(capped.paths[0], mode="RGB").shape[0] == 5
    assert iio.immeta(capped.paths[0])["duration"] == 100


def test_record_episodes_wrapper_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        RecordEpisodes(gym.make(ENV_ID), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="unknown video format"):
        RecordEpisodes(gym.make(ENV_ID, render_mode="rgb_array"), tmp_path / "x.webp")
    with pytest.raises(ValueError, match="max_frames"):
        RecordEpisodes(gym.make(ENV_ID, render_mode="rgb_array"), tmp_path / "x.gif", max_frames=0)


def test_record_cartpole_when_it_renders(tmp_path: Path) -> None:
    pytest.importorskip("pygame")  # CartPole draws its rgb_array frames with pygame
    agent = PPO(make_vec_env("CartPole-v1", num_envs=1, seed=0), device="cpu")
    info = record_episodes(agent, tmp_path / "cartpole.gif", max_frames=30)
    assert (info.height, info.width) == (400, 600)
    assert iio.imread(tmp_path / "cartpole.gif", mode="RGB").shape[1:] == (400, 600, 3)


def test_cli_eval_records_a_gif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``rlkit eval DIR --record out.gif``: the evaluation JSON stays parseable on stdout and the
    recording has one frame per step plus the final one for each recorded episode."""
    from rlkit.cli.main import main

    run = tmp_path / "run"
    args = ["train", "ppo", "--env", ENV_ID, "--num-envs", "2", "--total-steps", "64"]
    args += ["--num-steps", "16", "--seed", "0", "--out", str(run), "--no-progress"]
    assert main([*args, "--eval-episodes", "1"]) == 0
    capsys.readouterr()
    out = tmp_path / "episodes.gif"
    cmd = ["eval", str(run), "--episodes", "2", "--json", "--record", str(out)]
    assert main([*cmd, "--record-episodes", "1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["episodes"] == 2
    assert f"to {out}" in captured.err
    frames = iio.imread(out, mode="RGB")
    assert frames.shape == (7 + 1, 6, 10, 3)  # FrameEnv: 7 steps + the final frame, 6x10 px
