"""HDF5 files of named arrays (replay storages, datasets), via h5py imported lazily."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rlkit.utils.files import atomic_path

FORMAT = "rlkit.replay"
FORMAT_VERSION = 1


def import_h5py() -> Any:
    """h5py, or an ImportError naming the extra that installs it."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dev dependency
        raise ImportError(
            'saving and loading replay storages needs h5py: pip install "rlkit[hdf5]"'
        ) from e
    return h5py


def write_arrays(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
    compression: str | None = None,
) -> Path:
    """Write ``arrays`` as datasets and ``attrs`` (JSON-encoded) to ``path`` atomically: a
    temporary file beside it is renamed onto it only once complete."""
    h5py = import_h5py()
    target = Path(path)
    with atomic_path(target, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value)
        for name, array in arrays.items():
            chunked = compression is not None and array.ndim > 0 and array.size > 0
            f.create_dataset(name, data=array, compression=compression if chunked else None)
    return target


def as_array(value: Any) -> np.ndarray:
    """A tensor, array or h5py dataset (read now) as a NumPy array."""
    if hasattr(value, "read_direct"):
        return np.asarray(value[()])
    return np.asarray(value)


def copy_into(target: np.ndarray, value: Any) -> None:
    """``target[...] = value``; an h5py dataset of the same shape and dtype is read straight
    into ``target``, without a temporary copy (replay files can be many GB)."""
    if (
        hasattr(value, "read_direct")
        and tuple(value.shape) == target.shape
        and value.dtype == target.dtype
        and target.flags.c_contiguous
        and target.size
    ):
        value.read_direct(target)
    else:
        target[...] = as_array(value)


@contextmanager
def open_arrays(path: str | Path) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The datasets (h5py objects, read lazily with :func:`as_array`/:func:`copy_into`) and
    JSON attributes of a file written by :func:`write_arrays`, while the file is open."""
    h5py = import_h5py()
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no replay storage file at {file}")
    with h5py.File(file, "r") as f:
        found = f.attrs.get("format")
        if found != FORMAT:
            raise ValueError(f"{file} is not an rlkit replay storage file (format {found!r})")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{file} has replay storage format version {version}, expected {FORMAT_VERSION}"
            )
        attrs = {
            k: json.loads(v) for k, v in f.attrs.items() if k not in ("format", "format_version")
        }
        yield {name: f[name] for name in f}, attrs
