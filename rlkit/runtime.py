"""Process-wide CPU tuning, applied only where asked: constructing an agent changes nothing in
the process. Call these from a script, or use the CLI flags (``rlkit train --num-threads N
--retain-freed-memory``).

- :func:`set_num_threads` / :func:`num_threads` (scoped): torch's intra-op threads.
  :func:`default_num_threads` is the measured policy (``docs/performance.md``, "Threads": one
  thread on a CPU, for vector and for image observations).
- :func:`retain_freed_memory`: let glibc keep freed memory for reuse, so the same activation
  tensors allocated every gradient step do not fault their pages in again.
- :func:`flush_denormals` (scoped, on by default inside ``Agent.train``): treat denormal
  floats as zero on the training thread.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch

log = logging.getLogger("rlkit")

_MALLOC_TUNED = False


def default_num_threads(device: str | torch.device = "cpu") -> int | None:
    """The thread count rlkit's CLI uses: 1 on the CPU (None elsewhere: leave torch's).

    Measured on a 2-core machine (``benchmarks/threads.py``; ``docs/performance.md``,
    "Threads"): one thread was as fast as two for vector observations and up to 1.75x slower
    for 84x84 images on an idle machine, while two threads were 3-7x slower than one for both
    as soon as another process used the second core. One thread has the mild worst case."""
    return 1 if torch.device(device).type == "cpu" else None


def set_num_threads(threads: int) -> None:
    """``torch.set_num_threads`` with a clear error for a bad count."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"num_threads must be an integer >= 1, got {threads!r}")
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)


@contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` torch threads inside the block and restore the previous count after it
    (``None``: leave the setting alone)."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def denormals_flushed() -> bool:
    """Whether the calling thread flushes denormal floats to zero now (read from the result of
    a float conversion that underflows: a denormal, or zero when flushing)."""
    return torch.tensor(1e-40, dtype=torch.float32).item() == 0.0


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[bool]:
    """Flush denormal floats to zero on the calling thread inside the block (x86 FTZ/DAZ,
    AArch64 FZ, via ``torch.set_flush_denormal``), then restore the previous mode. Yields
    whether flushing is on in the block (False where the CPU has no such mode).

    Why: Adam's first moment of a parameter whose gradient stays zero (a dead ReLU unit)
    decays by 0.9 per step into the denormal range within a few hundred steps, and arithmetic
    on denormals is many times slower on most CPUs: a fused Adam step over DQN's 67k
    parameters measured 520 us with half its moments denormal and 40 us flushed
    (``docs/performance.md``, "Denormals"). Values below 1.2e-38 change nothing a network
    learns; TensorFlow runs its CPU kernels the same way. The mode is per thread: torch's
    other intra-op threads (``num_threads`` > 1) keep theirs.
    """
    previous = denormals_flushed()
    if enabled == previous:
        yield previous
        return
    supported = torch.set_flush_denormal(enabled)
    try:
        yield enabled and supported
    finally:
        if supported:
            torch.set_flush_denormal(previous)


def retain_freed_memory(
    mmap_threshold: int = 16 << 20, trim_threshold: int = 256 << 20, top_pad: int = 16 << 20
) -> bool:
    """Ask glibc's allocator to keep freed memory for reuse (``mallopt``; process-wide, and it
    stays for the life of the process).

    A gradient step allocates and frees the same few hundred-KiB activation tensors every
    time. With glibc's defaults blocks of that size are ``mmap``-ed, or the heap top is handed
    back to the OS, so each step faults the pages in again. Raising the mmap and trim
    thresholds keeps up to ``trim_threshold`` bytes of freed memory in the process instead.
    Returns whether the settings are in effect (False off glibc). Idempotent.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        # M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3 (malloc.h)
        settings = ((-3, mmap_threshold), (-1, trim_threshold), (-2, top_pad))
        _MALLOC_TUNED = all(libc.mallopt(param, value) == 1 for param, value in settings)
    except (OSError, AttributeError):
        return False
    if _MALLOC_TUNED:
        log.debug("glibc malloc keeps freed memory (mallopt): fewer page faults per update")
    return _MALLOC_TUNED


__all__ = [
    "default_num_threads",
    "denormals_flushed",
    "flush_denormals",
    "num_threads",
    "retain_freed_memory",
    "set_num_threads",
]
