"""Helpers for gymnasium spaces: JSON round trip, shape queries and clear checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces


def is_image_space(space: spaces.Space[Any]) -> bool:
    """A uint8 Box with 3 dims (C, H, W) or (H, W, C): treated as image frames."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def flat_dim(space: spaces.Space[Any]) -> int:
    """Number of scalars in one flattened sample of a Box/Discrete/Multi* space."""
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Discrete):
        return 1
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape))
    raise TypeError(f"flat_dim: unsupported space {space!r}")


def _array_to_json(a: np.ndarray) -> Any:
    """Store uniform arrays as one scalar so image bounds stay small."""
    if a.size and np.all(a == a.flat[0]):
        v = a.flat[0].item()
        return {"fill": _float_to_json(v)}
    return {"values": [_float_to_json(x) for x in a.reshape(-1).tolist()]}


def _float_to_json(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return "inf" if v > 0 else "-inf"
    return v


def _array_from_json(d: dict[str, Any], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if "fill" in d:
        return np.full(shape, float(d["fill"]), dtype=dtype)
    return np.asarray([float(x) for x in d["values"]], dtype=dtype).reshape(shape)


def space_to_dict(space: spaces.Space[Any]) -> dict[str, Any]:
    """JSON-friendly description of a space (inverse: :func:`space_from_dict`)."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _array_to_json(space.low),
            "high": _array_to_json(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": n if isinstance(n, int) else [int(x) for x in n]}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(v) for k, v in space.spaces.items()}}
    raise TypeError(
        f"cannot serialise space {space!r}: expected Box, Discrete, MultiDiscrete, "
        "MultiBinary or Dict"
    )


def space_from_dict(d: dict[str, Any]) -> spaces.Space[Any]:
    """Rebuild a space written by :func:`space_to_dict`."""
    kind = d.get("type")
    if kind == "Box":
        shape = tuple(int(x) for x in d["shape"])
        dtype = np.dtype(d["dtype"])
        low = _array_from_json(d["low"], shape, np.float64)
        high = _array_from_json(d["high"], shape, np.float64)
        return spaces.Box(low=low.astype(dtype), high=high.astype(dtype), shape=shape, dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(
            np.asarray(d["nvec"]),
            start=np.asarray(d["start"]),
            dtype=np.dtype(d.get("dtype", "int64")),
        )
    if kind == "MultiBinary":
        n = d["n"]
        return spaces.MultiBinary(n if isinstance(n, int) else [int(x) for x in n])
    if kind == "Dict":
        return spaces.Dict({k: space_from_dict(v) for k, v in d["spaces"].items()})
    raise ValueError(f"unknown space description {d!r}")


def spaces_equal(a: spaces.Space[Any], b: spaces.Space[Any]) -> bool:
    """Structural equality that tolerates float rounding in Box bounds."""
    if not (isinstance(a, type(b)) and isinstance(b, type(a))):  # the same kind of space
        return False
    if isinstance(a, spaces.Box) and isinstance(b, spaces.Box):
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and np.allclose(a.low, b.low, equal_nan=True)
            and np.allclose(a.high, b.high, equal_nan=True)
        )
    if isinstance(a, spaces.Dict) and isinstance(b, spaces.Dict):
        return a.spaces.keys() == b.spaces.keys() and all(
            spaces_equal(a[k], b[k]) for k in a.spaces
        )
    return bool(a == b)


def describe_space(space: spaces.Space[Any]) -> str:
    """``repr(space)`` on one line with single spaces (NumPy pads Box bounds with runs of them)."""
    return " ".join(repr(space).split())


#: what a NumPy dtype kind holds, for messages.
_KINDS = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers", "M": "dates"}


def _dims(shape: tuple[int, ...]) -> str:
    return f"({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''})"


def _shape_and_kind(obs: Any, owner: str, space: spaces.Space[Any]) -> tuple[tuple[int, ...], str]:
    """The shape of an array-like observation and its dtype's kind ("f", "i", "b", ...)."""
    shape, dtype = getattr(obs, "shape", None), getattr(obs, "dtype", None)
    if shape is not None and dtype is not None:
        if isinstance(dtype, np.dtype):
            return tuple(shape), dtype.kind
        if getattr(dtype, "is_complex", False):  # a torch dtype
            return tuple(shape), "c"
        return tuple(shape), "b" if str(dtype) == "torch.bool" else "f"
    try:
        array = np.asarray(obs)
    except (ValueError, TypeError):
        raise ValueError(
            f"{owner}: expected an observation of {describe_space(space)}, got a "
            f"{type(obs).__name__} that "
            "does not form an array (items of different shapes?)"
        ) from None
    return array.shape, array.dtype.kind


def check_observation(obs: Any, space: spaces.Space[Any], owner: str) -> int | None:
    """Check ``obs`` against ``space``: None for one observation, the batch size for a batch
    (a leading axis). Anything else is an error naming ``owner``, the space and what was given
    (shape, dtype, dict keys), instead of a failure deep inside the network."""
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            raise TypeError(
                f"{owner}: expected a dict observation of {describe_space(space)}, got "
                f"{type(obs).__name__}"
            )
        missing = [k for k in space.spaces if k not in obs]
        unexpected = [str(k) for k in obs if k not in space.spaces]
        if missing or unexpected:
            raise ValueError(
                f"{owner}: expected an observation with the keys {list(space.spaces)} of "
                f"{describe_space(space)}; missing {missing}, unexpected {unexpected}"
            )
        sizes = {k: check_observation(obs[k], s, f"{owner}: key {k!r}") for k, s in space.items()}
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{k}: {'one' if n is None else n}" for k, n in sizes.items())
            raise ValueError(
                f"{owner}: the keys of a dict observation must all be one observation or all a "
                f"batch of the same size, got {shown}"
            )
        return next(iter(sizes.values()), None)
    expected = tuple(space.shape or ())
    shape, kind = _shape_and_kind(obs, owner, space)
    if kind not in "biuf":
        what = _KINDS.get(kind, f"values of dtype kind {kind!r}")
        raise TypeError(
            f"{owner}: expected numbers for an observation of {describe_space(space)}, got "
            f"{what} ({type(obs).__name__})"
        )
    if shape == expected:
        return None
    if len(shape) == len(expected) + 1 and shape[1:] == expected:
        return int(shape[0])
    raise ValueError(
        f"{owner}: expected an observation of {describe_space(space)}: shape "
        f"{_dims(expected)} (one) or (N, {', '.join(map(str, expected))}) (a batch of N), got "
        f"shape {_dims(shape)}"
    )


def check_space(space: spaces.Space[Any], allowed: tuple[type, ...], what: str, owner: str) -> None:
    """Raise a TypeError naming ``owner``, the argument ``what`` and the allowed space types."""
    if not isinstance(space, allowed):
        names = ", ".join(t.__name__ for t in allowed)
        raise TypeError(f"{owner} does not support {what} {space!r}; supported: {names}")
