"""Recording episodes to GIF or MP4: a single-env wrapper and an agent-level recorder.

- :func:`tile_frames` tiles the frames of parallel envs into one image (the grouped view).
- :class:`RecordEpisodes` wraps one ``render_mode="rgb_array"`` env and writes its episodes.
- :func:`record_episodes` runs an agent's deterministic policy on an rgb_array copy of its env
  and writes the frames (all sub-envs tiled into one frame when there are several).

Writing needs the ``video`` extra (``pip install 'rlkit[video]'``): GIF goes through imageio's
pillow plugin, MP4 (H.264) through imageio-ffmpeg. Files are written beside their target and
renamed onto it when complete, so a crash never leaves a half-written video.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv, VectorEnv

from rlkit.envs.agent_rows import is_multi_agent
from rlkit.envs.introspect import episode_step_cap
from rlkit.envs.make import check_same_step_autoreset, env_spec_of, make_vec_env
from rlkit.types import AgentLike

__all__ = [
    "MAX_TILES",
    "VIDEO_FORMATS",
    "RecordEpisodes",
    "RecordingInfo",
    "record_episodes",
    "tile_frames",
]

#: file extensions :class:`RecordEpisodes` and :func:`record_episodes` can write.
VIDEO_FORMATS = (".gif", ".mp4")
#: at most this many sub-envs are shown in the grouped view (a 4x4 grid).
MAX_TILES = 16
#: frames per second when neither the caller nor the env's ``render_fps`` says.
DEFAULT_FPS = 30.0
_POP_FRAMES = "rlkit_pop_frames"
_INSTALL_HINT = "pip install 'rlkit[video]'"


# --------------------------------------------------------------------------- frames
def _as_rgb(frame: Any) -> np.ndarray:
    """``frame`` as a uint8 HxWx3 array (grey is repeated, alpha dropped)."""
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB images, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise ValueError(f"frames must be HxWx3 RGB images, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return array[:, :, :3]


def _fit(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad (black, bottom/right) or crop ``frame`` to ``height`` x ``width``."""
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    out = np.zeros((height, width, 3), dtype=np.uint8)
    out[: min(h, height), : min(w, width)] = frame[:height, :width]
    return out


def tile_frames(
    frames: Sequence[np.ndarray], columns: int | None = None, pad: int = 2
) -> np.ndarray:
    """Tile RGB frames row-major into one uint8 HxWx3 image (the grouped view).

    ``columns`` defaults to ``ceil(sqrt(len(frames)))`` (a near-square grid). Every tile is as
    large as the largest frame; smaller frames are centred in theirs, missing tiles are black
    and ``pad`` black pixels separate neighbouring tiles (none around the border), so one frame
    comes back unchanged.
    """
    if len(frames) == 0:
        raise ValueError("tile_frames: no frames to tile")
    if pad < 0:
        raise ValueError(f"tile_frames: pad must be >= 0, got {pad}")
    rgb = [_as_rgb(f) for f in frames]
    n = len(rgb)
    cols = math.ceil(math.sqrt(n)) if columns is None else int(columns)
    if cols < 1:
        raise ValueError(f"tile_frames: columns must be >= 1, got {columns}")
    rows = math.ceil(n / cols)
    tile_h = max(f.shape[0] for f in rgb)
    tile_w = max(f.shape[1] for f in rgb)
    out = np.zeros(
        (rows * tile_h + (rows - 1) * pad, cols * tile_w + (cols - 1) * pad, 3), dtype=np.uint8
    )
    for index, frame in enumerate(rgb):
        row, col = divmod(index, cols)
        h, w = frame.shape[:2]
        top = row * (tile_h + pad) + (tile_h - h) // 2
        left = col * (tile_w + pad) + (tile_w - w) // 2
        out[top : top + h, left : left + w] = frame
    return out


# --------------------------------------------------------------------------- writing
def _video_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise ValueError(
            f"cannot record to {str(path)!r}: unknown video format {path.suffix!r}; use one of "
            f"{', '.join(VIDEO_FORMATS)}"
        )
    return suffix


def _import_video_backend(suffix: str) -> Any:
    """The module that writes ``suffix`` files, with an install hint when it is missing."""
    try:
        if suffix == ".gif":
            import imageio.v3 as iio

            return iio
        import imageio_ffmpeg

        return imageio_ffmpeg
    except ImportError as e:
        what = "imageio" if suffix == ".gif" else "imageio-ffmpeg"
        raise ImportError(f"writing {suffix} recordings needs {what}: {_INSTALL_HINT}") from e


def _gif_duration_ms(fps: float) -> int:
    """Per-frame GIF delay: whole hundredths of a second, at least 20 ms (viewers slow down
    shorter delays)."""
    return max(20, 10 * round(100.0 / fps))


def _effective_fps(suffix: str, fps: float) -> float:
    return 1000.0 / _gif_duration_ms(fps) if suffix == ".gif" else fps


def _check_fps(fps: float, owner: str) -> float:
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: fps must be a positive number, got {fps!r}")
    return value


class _VideoWriter:
    """Streams frames into a temporary file beside ``path``; :meth:`commit` renames it onto
    ``path``. MP4 frames go straight to ffmpeg; GIF frames are kept until commit (pillow writes
    GIFs in one go). The first frame fixes the size; later ones are padded or cropped to it
    (and MP4 sizes are padded to even numbers, which H.264 in yuv420p needs)."""

    def __init__(self, path: Path, fps: float, max_frames: int) -> None:
        self.path = path
        self.suffix = _video_format(path)
        self.fps = fps
        self.max_frames = max_frames
        self._backend = _import_video_backend(self.suffix)
        self.frames = 0
        self.width = 0
        self.height = 0
        self._tmp: Path | None = None
        self._sink: Any = None

    @property
    def full(self) -> bool:
        """Whether ``max_frames`` frames have been written."""
        return self.frames >= self.max_frames

    def _open(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self.suffix == ".mp4":
            h, w = h + h % 2, w + w % 2
        self.height, self.width = h, w
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=self.suffix, dir=self.path.parent
        )
        os.close(fd)
        self._tmp = Path(tmp)
        if self.suffix == ".gif":
            self._sink = self._backend.imopen(self._tmp, "w", plugin="pillow")
        else:
            self._sink = self._backend.write_frames(
                str(self._tmp),
                (w, h),
                fps=self.fps,
                macro_block_size=2,  # sizes are even already: never rescale
                ffmpeg_log_level="error",
            )
            self._sink.send(None)

    def append(self, frame: np.ndarray) -> bool:
        """Write one frame; False (and nothing written) once ``max_frames`` is reached."""
        if self.full:
            return False
        rgb = _as_rgb(frame)
        try:
            if self._sink is None:
                self._open(rgb)
            rgb = np.ascontiguousarray(_fit(rgb, self.height, self.width))
            if self.suffix == ".gif":
                self._sink.write(rgb, is_batch=False, duration=_gif_duration_ms(self.fps), loop=0)
            else:
                self._sink.send(rgb)
        except BaseException:
            self.abort()
            raise
        self.frames += 1
        return True

    def commit(self) -> bool:
        """Finish the file and rename it onto ``path``; False when there was no frame."""
        if self._sink is None or self._tmp is None:
            return False
        sink, tmp = self._sink, self._tmp
        self._sink = self._tmp = None
        try:
            sink.close()
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return True

    def abort(self) -> None:
        """Drop the file being written."""
        sink, tmp = self._sink, self._tmp
        self._sink = self._tmp = None
        try:
            if sink is not None:
                sink.close()
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)


def _render_fps(metadata: Any) -> float | None:
    fps = metadata.get("render_fps") if isinstance(metadata, dict) else None
    return float(fps) if isinstance(fps, int | float) and fps > 0 else None


def _check_rgb_array(render_mode: str | None, owner: str) -> None:
    if render_mode != "rgb_array":
        raise ValueError(
            f"{owner} needs an env rendering to arrays (render_mode='rgb_array', e.g. "
            f"gym.make(env_id, render_mode='rgb_array')), got render_mode={render_mode!r}"
        )


def _grab(env: gym.Env[Any, Any], owner: str) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{owner}: render() returned {type(frame).__name__}, expected an array")
    return _as_rgb(frame)


# --------------------------------------------------------------------------- single env
class RecordEpisodes(gym.Wrapper[Any, Any, Any, Any]):
    """Record the episodes of one ``render_mode="rgb_array"`` env to GIF or MP4.

    With ``per_episode=True`` each episode goes to its own file, ``out.gif`` ->
    ``out-0000.gif``, ``out-0001.gif``, ... (see :meth:`episode_path`), written as soon as the
    episode ends (terminated, truncated, a new ``reset()`` or ``close()``). With
    ``per_episode=False`` all episodes go to ``path``, written on ``close()``. Each file holds
    the first frame after ``reset()`` and one frame per step, at most ``max_frames`` (later
    frames are dropped and counted in :attr:`dropped_frames`). ``fps`` defaults to the env's
    ``metadata["render_fps"]`` (else 30). Written files are listed in :attr:`paths`.
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        path: str | Path,
        fps: float | None = None,
        max_frames: int = 10_000,
        per_episode: bool = True,
    ) -> None:
        super().__init__(env)
        _check_rgb_array(env.render_mode, "RecordEpisodes")
        self.path = Path(path)
        _video_format(self.path)
        if max_frames < 1:
            raise ValueError(f"RecordEpisodes: max_frames must be >= 1, got {max_frames}")
        self.fps = _check_fps(
            fps if fps is not None else _render_fps(env.metadata) or DEFAULT_FPS,
            "RecordEpisodes",
        )
        self.max_frames = int(max_frames)
        self.per_episode = per_episode
        #: files written so far, in order.
        self.paths: list[Path] = []
        #: frames not written because a file had reached ``max_frames``.
        self.dropped_frames = 0
        self._writer: _VideoWriter | None = None
        self._steps = 0  # steps of the episode in progress
        self._episodes = 0  # episodes ended (with at least one step)
        self._closed = False
        _import_video_backend(self.path.suffix.lower())  # fail now, not after an episode

    def episode_path(self, index: int) -> Path:
        """Where episode ``index`` (from 0) is written with ``per_episode=True``."""
        return self.path.with_name(f"{self.path.stem}-{index:04d}{self.path.suffix}")

    def _add(self, frame: np.ndarray) -> None:
        if self._writer is None:
            target = self.episode_path(len(self.paths)) if self.per_episode else self.path
            self._writer = _VideoWriter(target, self.fps, self.max_frames)
        if not self._writer.append(frame):
            self.dropped_frames += 1

    def _end_episode(self) -> None:
        if self._steps > 0:
            self._episodes += 1
        if self.per_episode and self._writer is not None:
            writer, self._writer = self._writer, None
            if self._steps > 0 and writer.commit():
                self.paths.append(writer.path)
            else:
                writer.abort()
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env (ending an episode in progress) and record the first frame."""
        self._end_episode()
        obs, info = self.env.reset(seed=seed, options=options)
        self._add(_grab(self.env, "RecordEpisodes"))
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env and record the frame; a finished episode is written."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        self._add(_grab(self.env, "RecordEpisodes"))
        if terminated or truncated:
            self._end_episode()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Write what is still pending, then close the env."""
        if not self._closed:
            self._closed = True
            try:
                self._end_episode()
                if self._writer is not None:
                    writer, self._writer = self._writer, None
                    if self._episodes > 0 and writer.commit():
                        self.paths.append(writer.path)
                    else:
                        writer.abort()
            finally:
                super().close()


class _FrameBuffer(gym.Wrapper[Any, Any, Any, Any]):
    """Keeps the frames rendered after each reset and step until popped: inside a SAME_STEP
    vector env this sees the last frame of an episode before the autoreset replaces it."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self._frames: list[np.ndarray] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(seed=seed, options=options)
        self._frames.append(_grab(self.env, "record_episodes"))
        return out

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        out = self.env.step(action)
        self._frames.append(_grab(self.env, "record_episodes"))
        return out

    def rlkit_pop_frames(self) -> list[np.ndarray]:
        frames, self._frames = self._frames, []
        return frames


# --------------------------------------------------------------------------- agents
@dataclass
class RecordingInfo:
    """What :func:`record_episodes` wrote."""

    #: the video file.
    path: Path
    #: frames written (a GIF viewer may show fewer: identical consecutive frames are merged).
    frames: int
    #: frame size in pixels (the tiled size in the grouped view; MP4 sizes are even).
    width: int
    height: int
    #: episodes that finished within the recording (fewer than asked when max_frames hit).
    episodes: int
    #: frames per second the file plays at (GIF delays are whole hundredths of a second).
    fps: float


def _build_env(agent: AgentLike, num_envs: int) -> VectorEnv:
    spec = env_spec_of(agent.env)
    if spec is None:
        raise ValueError(
            "record_episodes: the agent's env was not built by rlkit.envs.make_vec_env, so pass "
            "env= (a VectorEnv made with render_mode='rgb_array')"
        )
    # self-play games buffer their own frames (rlkit.selfplay.env.SelfPlayVecEnv)
    self_play = spec.self_play is not None and spec.self_play is not False
    wrappers = () if self_play else (*spec.wrappers, _FrameBuffer)
    if isinstance(spec.env, str):
        kwargs = {**spec.env_kwargs, "render_mode": "rgb_array"}
        return make_vec_env(
            spec.env,
            num_envs=num_envs,
            env_kwargs=kwargs,
            wrappers=wrappers,
            preprocessing=spec.preprocessing,
            self_play=spec.self_play,
            evaluation=True,
        )
    env = make_vec_env(spec.env, num_envs=num_envs, wrappers=wrappers)
    if env.render_mode != "rgb_array":
        env.close()
        raise ValueError(
            "record_episodes: the agent's env is made by a callable whose envs do not render "
            f"to arrays (render_mode={env.render_mode!r}); have it pass render_mode='rgb_array' "
            "or pass env= (a VectorEnv made with render_mode='rgb_array')"
        )
    return env


def record_episodes(
    agent: AgentLike,
    path: str | Path,
    episodes: int = 1,
    env: VectorEnv | None = None,
    fps: float | None = None,
    deterministic: bool = True,
    grid: bool = True,
    max_frames: int = 10_000,
    seed: int | None = None,
    max_episode_steps: int | None = None,
) -> RecordingInfo:
    """Run ``agent``'s policy for ``episodes`` episodes and write them to ``path`` (.gif/.mp4).

    Without ``env`` an rgb_array copy of the agent's env is built (``render_mode="rgb_array"``
    added to its kwargs) with ``min(episodes, num_envs, MAX_TILES)`` sub-envs, reset with
    ``seed`` (default: training seed + 10_000, as :meth:`AgentLike.evaluate`); its frames include
    each episode's last one. A given ``env`` must render to arrays and autoreset in the same
    step; its frames come from ``env.render()``, which already shows the next episode when one
    ends, so the last frame of each episode is missing.

    Episodes are spread over the shown sub-envs (lower indices first). With ``grid=True`` and
    several sub-envs every frame tiles them (:func:`tile_frames`); a sub-env that has finished
    its share holds its last frame, and in the grid a sub-env that starts another episode
    skips that episode's first frame. With ``grid=False`` (or one sub-env) only sub-env 0 is
    recorded, its episodes one after another. Recording stops once ``episodes`` episodes have
    finished or ``max_frames`` frames are written. ``fps`` defaults to the env's
    ``render_fps`` (else 30). As in :meth:`AgentLike.evaluate`, an episode ends after
    ``max_episode_steps`` steps (default: the env's own time limit, else
    :data:`~rlkit.envs.introspect.DEFAULT_EVAL_STEP_CAP`) and counts as finished.
    """
    if episodes < 1:
        raise ValueError(f"record_episodes: episodes must be >= 1, got {episodes}")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(
            f"record_episodes: max_episode_steps must be >= 1 or None, got {max_episode_steps}"
        )
    if max_frames < 1:
        raise ValueError(f"record_episodes: max_frames must be >= 1, got {max_frames}")
    target = Path(path)
    suffix = _video_format(target)
    _import_video_backend(suffix)
    own_env = env is None
    if env is None:
        spec = env_spec_of(agent.env)
        shown = 1 if not grid else min(episodes, spec.num_envs if spec else 1, MAX_TILES)
        if seed is None and spec is not None:
            seed = (spec.seed if spec.seed is not None else 0) + 10_000
        env = _build_env(agent, shown)
    else:
        _check_rgb_array(env.render_mode, "record_episodes")
        check_same_step_autoreset(env, "record_episodes")
        units = getattr(env, "num_copies", env.num_envs) if is_multi_agent(env) else env.num_envs
        shown = 1 if not grid else min(episodes, units, MAX_TILES)
    try:
        rate = _check_fps(
            fps if fps is not None else _render_fps(env.metadata) or DEFAULT_FPS, "record_episodes"
        )
        writer = _VideoWriter(target, rate, int(max_frames))
        try:
            cap = episode_step_cap(env, max_episode_steps)
            done = _run(
                agent, env, writer, episodes, shown, grid, deterministic, seed, own_env, cap
            )
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    finally:
        if own_env:
            env.close()
    return RecordingInfo(
        path=target,
        frames=writer.frames,
        width=writer.width,
        height=writer.height,
        episodes=done,
        fps=_effective_fps(suffix, rate),
    )


def _frames_after(env: VectorEnv, buffered: bool) -> list[list[np.ndarray]]:
    """Per sub-env (per copy for multi-agent rows), the frames since the last call (buffered)
    or the current frame."""
    if buffered:
        base = env.unwrapped
        if is_multi_agent(base):  # the copies' vector env under the rows
            base = base.env  # type: ignore[attr-defined]
        assert isinstance(base, SyncVectorEnv | AsyncVectorEnv) or hasattr(base, "call")
        return [list(f) for f in base.call(_POP_FRAMES)]
    frames = env.render()
    if frames is None:
        raise TypeError("record_episodes: the env's render() returned None")
    return [[_as_rgb(f)] for f in frames]


@torch.inference_mode()
def _run(
    agent: AgentLike,
    env: VectorEnv,
    writer: _VideoWriter,
    episodes: int,
    shown: int,
    grid: bool,
    deterministic: bool,
    seed: int | None,
    buffered: bool,
    cap: int,
) -> int:
    """Step ``env`` with the agent's policy, writing frames; returns the finished episodes.
    An episode reaching ``cap`` steps ends there (its sub-env is reset on its own)."""
    n = env.num_envs
    # multi-agent rows: an episode is a copy's (all its agents' rows); frames are the copy's
    per = int(getattr(env, "num_agents", 1)) if is_multi_agent(env) else 1
    units = n // per
    targets = np.zeros(units, dtype=np.int64)
    targets[:shown] = [(episodes + shown - 1 - i) // shown for i in range(shown)]
    done_counts = np.zeros(units, dtype=np.int64)
    run_len = np.zeros(units, dtype=np.int64)
    obs_np, _ = env.reset(seed=seed)
    tiles = [frames[-1] for frames in _frames_after(env, buffered)[:shown]]
    tiled = grid and shown > 1

    def emit(frames: list[np.ndarray]) -> bool:
        return all(writer.append(f) for f in frames)  # stops at the first refused frame

    emit([tile_frames(tiles)] if tiled else tiles[:1])
    state = agent.policy.initial_state(n)
    episode_start = torch.ones(n, device=agent.device)
    while (done_counts < targets).any() and not writer.full:
        obs = agent.preprocess(agent.obs_to_tensor(obs_np))
        actions, state = agent.policy.act(obs, deterministic, state, episode_start)
        obs_np, _, terminated, truncated, info = env.step(agent.to_env_actions(actions))
        run_len += 1
        row_ends = np.logical_or(terminated, truncated)
        ended = row_ends
        if per > 1:
            ended = np.asarray(info.get("_team_episode", np.zeros(units, dtype=bool)), dtype=bool)
        # the cap ends an episode the env did not end (its frames stay those of that episode)
        capped = (run_len >= cap) & ~ended & (done_counts < targets)
        dones = ended | capped
        per_env = _frames_after(env, buffered)
        changed = False
        out: list[np.ndarray] = []
        for i in range(shown):
            if done_counts[i] >= targets[i]:
                continue  # finished its share: hold the last frame
            frames = per_env[i]
            if dones[i]:
                done_counts[i] += 1
                if not buffered and not capped[i]:  # render() shows the next episode already
                    frames = frames if done_counts[i] < targets[i] else []
                elif done_counts[i] >= targets[i]:
                    frames = frames[:1]  # the last frame, not the autoreset's first
            if not frames:
                continue
            changed = True
            if tiled:
                tiles[i] = frames[0]
            elif i == 0:
                out.extend(frames)
        if tiled and changed:
            out = [tile_frames(tiles)]
        if not emit(out):
            break
        again = capped & (done_counts < targets)
        if again.any():  # the env will not reset these itself: start their next episode
            obs_np, _ = env.reset(options={"reset_mask": np.repeat(again, per)})
        run_len[dones] = 0
        starts = row_ends | np.repeat(capped, per)
        episode_start = torch.as_tensor(starts, dtype=torch.float32, device=agent.device)
    return int(np.minimum(done_counts, targets).sum())
