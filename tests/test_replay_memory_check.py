"""Replay storages refuse a capacity that cannot fit in memory before allocating it: one line
naming the capacity, the memory needed and available, and the largest capacity that fits."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gymnasium import spaces

from rlkit.storages import ReplayStorage
from rlkit.storages.replay import SKIP_MEMORY_CHECK, available_memory_bytes, check_fits

ATARI = spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = spaces.Discrete(4)


def _fitting(message: str) -> int:
    found = re.search(r"the largest capacity that fits is (\d+)", message)
    assert found, message
    return int(found.group(1))


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> int:
    """The check is on (whatever the environment running the tests says), and the memory
    available is known on this machine."""
    monkeypatch.delenv(SKIP_MEMORY_CHECK, raising=False)
    available = available_memory_bytes()
    if available is None:
        pytest.skip("this platform does not say how much memory is available")
    return available


def test_available_memory_is_a_positive_byte_count() -> None:
    available = available_memory_bytes()
    assert available is None or (isinstance(available, int) and available > 0)


def test_atari_buffer_beyond_memory_is_refused_before_allocating(checked: int) -> None:
    capacity = 10**9  # 53 TB as arrays: NumPy itself would fail differently (or much later)
    with pytest.raises(MemoryError) as error:
        ReplayStorage(ATARI, ACTIONS, capacity=capacity, num_envs=8)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("ReplayStorage: capacity=1000000000 needs ")
    assert "GiB of memory" in message and "GiB is available" in message
    assert "store='pixel' would need about" in message  # uint8 frame stacks in arrays
    assert f"set {SKIP_MEMORY_CHECK}=1" in message
    fits = _fitting(message)
    assert 0 < fits < capacity and fits % 8 == 0
    # each transition holds two 4x84x84 stacks: the suggestion is about what memory holds
    # (other processes change what is available between readings, hence the slack)
    assert fits * 2 * 4 * 84 * 84 <= 1.1 * max(checked, available_memory_bytes() or 0)


def test_vector_observations_get_no_pixel_hint(checked: int) -> None:
    obs = spaces.Box(-1.0, 1.0, (17,), np.float32)
    with pytest.raises(MemoryError) as error:
        ReplayStorage(obs, spaces.Box(-1.0, 1.0, (6,), np.float32), capacity=10**13)
    assert "pixel" not in str(error.value)
    _fitting(str(error.value))


def test_pixel_store_is_checked_too(checked: int) -> None:
    with pytest.raises(MemoryError) as error:
        ReplayStorage(ATARI, ACTIONS, capacity=10**10, store="pixel", sampler="prioritized")
    assert "pixel' would need" not in str(error.value)  # it is the pixel store already
    _fitting(str(error.value))


def test_a_small_buffer_builds(checked: int) -> None:
    storage = ReplayStorage(ATARI, ACTIONS, capacity=1_000, num_envs=8)
    assert len(storage) == 0 and storage.capacity == 1_000


def test_the_override_lets_numpy_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SKIP_MEMORY_CHECK, "1")
    # 10**10 transitions of Atari stacks: more than any address space, so NumPy refuses it
    with pytest.raises(MemoryError) as error:
        ReplayStorage(ATARI, ACTIONS, capacity=10**10, num_envs=8)
    assert SKIP_MEMORY_CHECK not in str(error.value)  # NumPy's own error: no check ran


@pytest.mark.parametrize(
    ("store", "sampler"),
    [
        ("array", "uniform"),
        ("array", "prioritized"),
        ("pixel", "uniform"),
        ("pixel", "prioritized"),
    ],
)
def test_plan_is_what_is_allocated(store: str, sampler: str) -> None:
    storage = ReplayStorage(ATARI, ACTIONS, capacity=200, num_envs=4, store=store, sampler=sampler)
    assert storage.planned_nbytes() == storage.nbytes
    assert storage.store.planned_nbytes(ATARI, 50, 4) == storage.store.nbytes


def test_dict_observations_plan() -> None:
    obs = spaces.Dict(
        {"image": ATARI, "goal": spaces.Box(-1.0, 1.0, (3,)), "k": spaces.Discrete(5)}
    )
    storage = ReplayStorage(obs, spaces.Box(-1.0, 1.0, (2,), np.float32), capacity=99, num_envs=3)
    assert storage.planned_nbytes() == storage.nbytes


# --------------------------------------------------------------------------- the rule itself
def test_check_fits_with_numbers() -> None:
    def planned(rows: int) -> int:  # 100 bytes fixed, 10 per row
        return 100 + 10 * rows

    check_fits("S", capacity=200, num_envs=2, planned=planned, available=1_100)  # fits exactly
    with pytest.raises(MemoryError, match=r"^S: capacity=400 needs .* fits is 200 \(set "):
        check_fits("S", capacity=400, num_envs=2, planned=planned, available=1_100)
    with pytest.raises(MemoryError, match="fits is 200; note here"):
        check_fits(
            "S", capacity=401, num_envs=2, planned=planned, available=1_109, note="note here"
        )
    with pytest.raises(MemoryError, match=r"no capacity fits \(one row of 2 transitions"):
        check_fits("S", capacity=400, num_envs=2, planned=planned, available=105)


@pytest.mark.parametrize(("store", "sampler"), [("array", "prioritized"), ("pixel", "uniform")])
def test_suggested_capacity_builds_within_the_budget(store: str, sampler: str) -> None:
    """With an explicit budget: the capacity the message suggests builds, and it uses no more
    than the budget, while one more row would not fit."""
    num_envs = 8
    layout = ReplayStorage(
        ATARI, ACTIONS, capacity=64, num_envs=num_envs, store=store, sampler=sampler
    )
    budget = layout.planned_nbytes(num_rows=37) + 1_000
    with pytest.raises(MemoryError) as error:
        check_fits("ReplayStorage", 8_000, num_envs, layout.planned_nbytes, budget)
    fits = _fitting(str(error.value))
    assert fits == 37 * num_envs
    built = ReplayStorage(
        ATARI, ACTIONS, capacity=fits, num_envs=num_envs, store=store, sampler=sampler
    )
    assert built.nbytes <= budget < built.planned_nbytes(num_rows=fits // num_envs + 1)
