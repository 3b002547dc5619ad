"""PixelPointMass: a small pixel continuous-control task that image-based off-policy agents
(DrQ-v2) learn in minutes on a CPU.

Registered with gymnasium as ``rlkit/PixelPointMass-v0`` when this module is imported.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ENV_ID = "rlkit/PixelPointMass-v0"

_CONTROLS = ("velocity", "force")


class PixelPointMass(gym.Env[np.ndarray, np.ndarray]):
    """Drive a point (red) to a target (green) in ``[-1, 1]^2`` seen only through pixels.

    Actions: ``Box(-1, 1, (2,))``. With ``control="velocity"`` (default) the point moves by
    ``max_speed * action`` per step; with ``control="force"`` the action accelerates a point mass
    (``v <- damping * v + max_speed * action / 2``, speed capped at ``max_speed``), so the
    velocity has to be read from the frame stack. Walls clip the position (and stop the mass).

    Observations: the last ``frame_stack`` frames stacked on the channel axis, uint8
    ``(3 * frame_stack, size, size)`` (default ``(9, 24, 24)``: small, so a convolutional
    encoder trains quickly on a CPU), oldest first (DrQ-v2's frame stack; the first frame of an
    episode is repeated). Each frame draws the point and the target as anti-aliased Gaussian
    blobs, so positions are visible to sub-pixel precision.

    Reward: ``-distance`` between point and target each step (dense). Episodes last exactly
    ``max_steps`` (default 50) steps and end by truncation only (no terminal state: agents must
    bootstrap). Start and target are uniform in ``[-0.9, 0.9]^2``. A uniformly random policy
    returns about -49 at the defaults; moving straight to the target about -4.4.
    ``info["distance"]`` is the final distance of the step.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        size: int = 24,
        frame_stack: int = 3,
        max_steps: int = 50,
        max_speed: float = 0.1,
        control: str = "velocity",
        damping: float = 0.8,
        render_mode: str | None = "rgb_array",
    ) -> None:
        for name, value, least in (
            ("size", size, 8),
            ("frame_stack", frame_stack, 1),
            ("max_steps", max_steps, 1),
        ):
            if not isinstance(value, int | np.integer) or value < least:
                raise ValueError(f"PixelPointMass: {name} must be an int >= {least}, got {value!r}")
        if not 0 < max_speed <= 1:
            raise ValueError(f"PixelPointMass: max_speed must be in (0, 1], got {max_speed!r}")
        if control not in _CONTROLS:
            raise ValueError(f"PixelPointMass: control must be one of {_CONTROLS}, got {control!r}")
        if not 0 <= damping <= 1:
            raise ValueError(f"PixelPointMass: damping must be in [0, 1], got {damping!r}")
        self.size, self.frame_stack, self.max_steps = int(size), int(frame_stack), int(max_steps)
        self.max_speed, self.control, self.damping = float(max_speed), control, float(damping)
        self.observation_space = spaces.Box(
            0, 255, shape=(3 * self.frame_stack, self.size, self.size), dtype=np.uint8
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"PixelPointMass: render_mode must be 'rgb_array', got {render_mode!r}"
            )
        self.render_mode = "rgb_array"
        half = 1.0 / self.size
        self._centres = np.linspace(-1 + half, 1 - half, self.size)  # pixel centres in [-1, 1]
        self._inv_two_var = 1.0 / (2 * (1.5 * 2 * half) ** 2)  # blob std: 1.5 pixels
        self._pos = np.zeros(2)
        self._vel = np.zeros(2)
        self._target = np.zeros(2)
        self._frames = np.zeros(self.observation_space.shape, dtype=np.uint8)
        self._t = 0

    def _blob(self, point: np.ndarray) -> np.ndarray:
        """A ``(size, size)`` Gaussian blob in [0, 255] at ``point`` = (x, y); rows are y."""
        gy = np.exp(-((self._centres - point[1]) ** 2) * self._inv_two_var)
        gx = np.exp(-((self._centres - point[0]) ** 2) * self._inv_two_var)
        out: np.ndarray = np.outer(gy, gx) * 255.0
        return out

    def _frame(self) -> np.ndarray:
        frame = np.zeros((3, self.size, self.size), dtype=np.uint8)
        frame[0] = np.rint(self._blob(self._pos)).astype(np.uint8)
        frame[1] = np.rint(self._blob(self._target)).astype(np.uint8)
        return frame

    def _push_frame(self) -> np.ndarray:
        self._frames[:-3] = self._frames[3:]
        self._frames[-3:] = self._frame()
        return self._frames.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-0.9, 0.9, 2)
        self._target = self.np_random.uniform(-0.9, 0.9, 2)
        self._vel = np.zeros(2)
        self._t = 0
        self._frames[:] = np.tile(self._frame(), (self.frame_stack, 1, 1))
        return self._frames.copy(), {"distance": float(np.linalg.norm(self._pos - self._target))}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"PixelPointMass: action must be 2 finite numbers, got {action!r}")
        a = np.clip(a, -1.0, 1.0)
        if self.control == "velocity":
            self._vel = self.max_speed * a
        else:
            vel = self.damping * self._vel + 0.5 * self.max_speed * a
            speed = float(np.linalg.norm(vel))
            self._vel = vel * (self.max_speed / speed) if speed > self.max_speed else vel
        new_pos = self._pos + self._vel
        clipped = np.clip(new_pos, -1.0, 1.0)
        self._vel = np.where(clipped != new_pos, 0.0, self._vel)  # walls stop the mass
        self._pos = clipped
        self._t += 1
        distance = float(np.linalg.norm(self._pos - self._target))
        truncated = self._t >= self.max_steps
        return self._push_frame(), -distance, False, truncated, {"distance": distance}

    def render(self) -> np.ndarray:
        """The current frame as ``(H, W, 3)`` RGB."""
        return np.ascontiguousarray(self._frame().transpose(1, 2, 0))


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="rlkit.envs.pixel_control:PixelPointMass")

__all__ = ["ENV_ID", "PixelPointMass"]
