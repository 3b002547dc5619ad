"""A vectorised sum-tree (with a min-tree beside it) for proportional prioritized replay.

Leaves hold priorities; every inner node holds the sum (and the min) of its two children.
Updates and prefix-sum lookups touch one node per level for a whole batch of indices at once,
so their cost is ``O(log capacity)`` NumPy operations, never a Python loop over the batch.
Parents are recomputed from their children rather than adjusted by deltas, so rounding errors
never accumulate however many updates are made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: updates of at most this many indices take the scalar path
_SCALAR_UPDATES = 16
_INF = float("inf")


class SumTree:
    """Priorities of ``capacity`` items with O(log n) batched update, total, min and lookup."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree: capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        size = 1
        while size < self.capacity:
            size *= 2
        #: number of leaves (a power of two); leaf ``i`` lives at node ``size + i``.
        self.size = size
        self.depth = size.bit_length() - 1
        self.sums = np.zeros(2 * size, dtype=np.float64)
        self.mins = np.full(2 * size, np.inf, dtype=np.float64)

    @property
    def nbytes(self) -> int:
        return int(self.sums.nbytes + self.mins.nbytes)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.sums[1])

    @property
    def min(self) -> float:
        """Smallest priority of the items set so far (``inf`` when none is)."""
        return float(self.mins[1])

    def clear(self) -> None:
        self.sums.fill(0.0)
        self.mins.fill(np.inf)

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Priorities of ``indices``."""
        return self.sums[self.size + np.asarray(indices, dtype=np.int64)]

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of ``indices`` and refresh their ancestors. A priority of 0
        means "never sampled" (and does not count as the min)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        values = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if indices.size <= _SCALAR_UPDATES:
            self._set_scalar(indices, values)
            return
        nodes = indices + self.size
        self.sums[nodes] = values
        self.mins[nodes] = np.where(values > 0.0, values, np.inf)
        sums, mins = self.sums, self.mins
        for _ in range(self.depth):
            # one step up for the whole batch; duplicate nodes recompute the same value
            nodes >>= 1
            left = nodes << 1
            right = left + 1
            sums[nodes] = sums.take(left) + sums.take(right)
            mins[nodes] = np.minimum(mins.take(left), mins.take(right))

    def _set_scalar(self, indices: np.ndarray, values: np.ndarray) -> None:
        """:meth:`set` for a few indices (one env step): a plain loop over the ``log n``
        ancestors is ~20x cheaper than NumPy calls on tiny arrays."""
        # memoryviews: fast scalar access (typeshed types their items as int)
        sums: Any = self.sums.data
        mins: Any = self.mins.data
        for index, value in zip(indices.tolist(), values.tolist(), strict=True):
            node = index + self.size
            sums[node] = value
            mins[node] = value if value > 0.0 else _INF
            node >>= 1
            while node:
                left = node << 1
                sums[node] = sums[left] + sums[left + 1]
                a, b = mins[left], mins[left + 1]
                mins[node] = a if a < b else b
                node >>= 1

    def find(self, values: np.ndarray) -> np.ndarray:
        """For each ``v`` in ``[0, total)``, the leaf ``i`` with
        ``sum(p[:i]) <= v < sum(p[:i + 1])`` (the inverse of the cumulative sum). Rounding can
        send a ``v`` within a few ulps of ``total`` to an empty leaf past the last set one;
        callers clamp to the stored range."""
        v = np.array(values, dtype=np.float64)
        nodes = np.ones(v.shape, dtype=np.int64)
        sums = self.sums
        for _ in range(self.depth):
            nodes <<= 1
            left_sum = sums.take(nodes)
            go_right = v >= left_sum
            np.subtract(v, left_sum, out=v, where=go_right)
            nodes += go_right
        return nodes - self.size

    def state(self) -> np.ndarray:
        """The leaf priorities (the whole tree follows from them)."""
        return self.sums[self.size : self.size + self.capacity].copy()

    def load(self, leaves: np.ndarray) -> None:
        """Rebuild the tree from leaf priorities written by :meth:`state`."""
        leaves = np.asarray(leaves, dtype=np.float64)
        if leaves.shape != (self.capacity,):
            raise ValueError(
                f"SumTree.load: expected {self.capacity} leaf priorities, got shape {leaves.shape}"
            )
        self.clear()
        self.sums[self.size : self.size + self.capacity] = leaves
        set_leaves = leaves > 0.0
        self.mins[self.size : self.size + self.capacity] = np.where(set_leaves, leaves, np.inf)
        for level in range(self.depth - 1, -1, -1):
            lo, hi = 1 << level, 2 << level
            left = np.arange(2 * lo, 2 * hi, 2)
            self.sums[lo:hi] = self.sums[left] + self.sums[left + 1]
            self.mins[lo:hi] = np.minimum(self.mins[left], self.mins[left + 1])
