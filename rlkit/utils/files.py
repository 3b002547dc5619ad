"""Writing files without ever leaving a half-written one behind."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block succeeds it is renamed onto
    ``target`` (atomic on one filesystem), otherwise deleted. ``suffix`` is for writers that
    insist on a file extension."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the file follows the umask as open() would
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """``Path.write_bytes`` that never leaves a partial file."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


#: ``renameat2`` flag: swap two paths atomically (Linux >= 3.15; ext4, xfs, btrfs, tmpfs, ...).
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def exchange_paths(a: str | Path, b: str | Path) -> bool:
    """Atomically swap two existing paths (directories included) with Linux's
    ``renameat2(RENAME_EXCHANGE)``: at every instant each name refers to a complete tree.
    Returns ``False`` where the platform or filesystem cannot do it (the caller falls back to
    two renames); raises ``OSError`` for other failures."""
    if _RENAMEAT2 is None:
        return False
    result = _RENAMEAT2(  # type: ignore[operator]
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def fsync_tree(directory: str | Path) -> None:
    """Flush every file under ``directory`` and the directory itself to disk, so a rename
    that publishes it never exposes files whose data is still only in the page cache."""
    root = Path(directory)
    for file in root.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(root)


def fsync_dir(directory: str | Path) -> None:
    """Flush a directory's entries (renames into it) to disk; a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
