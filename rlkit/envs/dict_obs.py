"""Dict observations as one flat float vector: what MLP policies (and exporters) want from
MiniGrid-style observations mixing an image, a ``Discrete`` direction and a text mission."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if w]


class FlattenDict(gym.ObservationWrapper[np.ndarray, Any, Any]):
    """Encodes every key of a ``Dict`` observation and concatenates them (keys sorted):

    - ``Box``: flattened, divided by ``scales[key]`` (a number, or one per last-axis channel;
      default: the space's ``high`` when finite and not 1, else unscaled);
    - ``Discrete(n)``: one-hot of length ``n``; ``MultiDiscrete``: one one-hot per entry;
      ``MultiBinary``: as is;
    - ``Text``, and the keys in ``text_keys`` whatever their space (MiniGrid's ``mission`` is
      a ``MissionSpace``): a bag of words hashed (CRC32, stable across processes) into
      ``text_buckets`` counts divided by the number of words.

    Keys in ``drop`` are left out.
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        scales: Mapping[str, float | Sequence[float]] | None = None,
        text_buckets: int = 32,
        drop: Sequence[str] = (),
        text_keys: Sequence[str] = ("mission",),
    ) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise TypeError(f"FlattenDict needs a Dict observation space, got {space!r}")
        if text_buckets < 1:
            raise ValueError(f"FlattenDict: text_buckets must be >= 1, got {text_buckets}")
        self.text_buckets = int(text_buckets)
        self.keys = [k for k in sorted(space.spaces) if k not in set(drop)]
        self._text = {k for k in self.keys if k in set(text_keys)}
        self._text |= {k for k in self.keys if isinstance(space.spaces[k], spaces.Text)}
        self._scales: dict[str, np.ndarray] = {}
        size = 0
        for key in self.keys:
            sub = space.spaces[key]
            if key in self._text:
                size += self.text_buckets
            elif isinstance(sub, spaces.Box):
                given = (scales or {}).get(key)
                high = np.asarray(sub.high, dtype=np.float64)
                finite = bool(np.isfinite(high).all() and (high > 0).all())
                default = high.reshape(-1) if finite else np.ones(1)
                self._scales[key] = np.asarray(default if given is None else given, np.float32)
                size += int(np.prod(sub.shape))
            elif isinstance(sub, spaces.Discrete):
                size += int(sub.n)
            elif isinstance(sub, spaces.MultiDiscrete):
                size += int(np.sum(sub.nvec))
            elif isinstance(sub, spaces.MultiBinary):
                size += int(np.prod(sub.shape))
            else:
                raise TypeError(
                    f"FlattenDict: key {key!r} has space {sub!r}; supported: Box, Discrete, "
                    "MultiDiscrete, MultiBinary, Text (or name it in text_keys or drop)"
                )
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        parts: list[np.ndarray] = []
        space = self.env.observation_space
        assert isinstance(space, spaces.Dict)
        for key in self.keys:
            sub, value = space.spaces[key], observation[key]
            if key in self._text:
                parts.append(self._bag_of_words(str(value)))
            elif isinstance(sub, spaces.Box):
                box = np.asarray(value, dtype=np.float32)
                scale = self._scales[key]
                # one scale per entry, per channel (last axis) or one for all
                box = box.reshape(-1) / scale if scale.size == box.size else box / scale
                parts.append(box.reshape(-1))
            elif isinstance(sub, spaces.Discrete):
                hot = np.zeros(int(sub.n), dtype=np.float32)
                hot[int(value) - int(sub.start)] = 1.0
                parts.append(hot)
            elif isinstance(sub, spaces.MultiDiscrete):
                for v, n in zip(np.asarray(value).reshape(-1), sub.nvec.reshape(-1), strict=True):
                    hot = np.zeros(int(n), dtype=np.float32)
                    hot[int(v)] = 1.0
                    parts.append(hot)
            else:  # MultiBinary
                parts.append(np.asarray(value, dtype=np.float32).reshape(-1))
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _bag_of_words(self, text: str) -> np.ndarray:
        counts = np.zeros(self.text_buckets, dtype=np.float32)
        words = _words(text)
        for word in words:
            counts[zlib.crc32(word.encode()) % self.text_buckets] += 1.0
        return counts / max(len(words), 1)


__all__ = ["FlattenDict"]
