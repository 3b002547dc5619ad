"""Fixed-length on-policy rollout storage with GAE and minibatch iteration."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.storages.base import STORAGES, Storage
from rlkit.types import Obs
from rlkit.utils.tensors import obs_map, torch_dtype_for

#: action dtypes a rollout storage accepts by name (configs name them as strings).
_DTYPE_NAMES = [
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
]
_DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in _DTYPE_NAMES}


def action_layout(action_space: spaces.Space[Any]) -> tuple[tuple[int, ...], torch.dtype]:
    """Shape and dtype of one raw (pre-postprocessing) action as stored."""
    if isinstance(action_space, spaces.Discrete):
        return (), torch.int64
    if isinstance(action_space, spaces.MultiDiscrete):
        return (int(action_space.nvec.size),), torch.int64
    if isinstance(action_space, spaces.MultiBinary | spaces.Box):
        return (int(torch.Size(action_space.shape).numel()),), torch.float32
    raise TypeError(
        f"RolloutStorage: unsupported action space {action_space!r}; supported: Discrete, "
        "MultiDiscrete, MultiBinary, Box"
    )


@dataclass
class RolloutBatch:
    """A minibatch of flattened rollout samples.

    For feed-forward policies the rows are any ``T * N`` samples. For recurrent policies
    (:meth:`RolloutStorage.sequence_minibatches`) they are ``M`` whole sequence chunks of
    ``seq_len`` steps, time-major (row ``t * M + m``), and ``states`` holds the policy's state
    at each chunk's first step (``[M, ...]`` per tensor): what a recurrent policy takes as
    ``(obs, state, episode_start)``.
    """

    obs: Obs
    actions: Tensor
    old_values: Tensor
    old_log_probs: Tensor
    advantages: Tensor
    returns: Tensor
    episode_starts: Tensor
    #: recurrent state at the start of each sequence (empty for feed-forward batches).
    states: tuple[Tensor, ...] = ()
    #: steps per sequence (1 for feed-forward batches).
    seq_len: int = 1

    def select(self, index: Tensor) -> RolloutBatch:
        """The rows ``index`` of every field (feed-forward batches only: selecting rows would
        cut a sequence batch's chunks)."""
        if self.states:
            raise ValueError("RolloutBatch.select: a sequence batch cannot be split by rows")
        return RolloutBatch(
            obs=obs_map(lambda x: x[index], self.obs),
            actions=self.actions[index],
            old_values=self.old_values[index],
            old_log_probs=self.old_log_probs[index],
            advantages=self.advantages[index],
            returns=self.returns[index],
            episode_starts=self.episode_starts[index],
        )


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    last_value: Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over ``[T, N]`` tensors.

    ``dones[t]`` is 1 when the episode ended at step ``t`` (terminated or truncated); truncated
    steps must already carry ``gamma * V(final_obs)`` in their reward. Returns
    ``(advantages, returns)``. The recursion runs over time and is vectorised over envs.
    """
    num_steps = rewards.shape[0]
    not_done = 1.0 - dones
    next_values = torch.cat([values[1:], last_value.unsqueeze(0)], dim=0)
    deltas = rewards + gamma * next_values * not_done - values
    discounts = gamma * gae_lambda * not_done
    advantages = torch.empty_like(rewards)
    gae = torch.zeros_like(last_value)
    for t in range(num_steps - 1, -1, -1):
        gae = deltas[t] + discounts[t] * gae
        advantages[t] = gae
    return advantages, advantages + values


def compute_gae_active(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    last_value: Tensor,
    gamma: float,
    gae_lambda: float,
    active: Tensor,
) -> tuple[Tensor, Tensor]:
    """GAE over ``[T, N]`` rows that act only where ``active`` is 1 (multi-agent rows: an
    agent that is gone, or waits for its turn in a turn-based game).

    Each row runs on its own clock: the step after an active step ``t`` is the row's next
    active step, and the rewards that arrive at the inactive steps in between (an opponent's
    move ending the game) are added to ``t``'s reward, up to and including the first step
    that ends the episode, where bootstrapping stops. Inactive steps get advantage 0 and return
    equal to their value (they are left out of the loss). With every step active this is
    :func:`compute_gae`.
    """
    num_steps = rewards.shape[0]
    act = active.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    gae = torch.zeros_like(last_value)
    next_value = last_value
    carry_reward = torch.zeros_like(last_value)  # rewards between t and the next active step
    carry_done = torch.zeros_like(last_value)  # whether an episode ends in between
    for t in range(num_steps - 1, -1, -1):
        done, reward, on = dones[t], rewards[t], act[t]
        # active step: its own reward, plus what arrived before its next step unless it ended
        total = reward + (1.0 - done) * carry_reward
        ended = torch.maximum(done, carry_done)
        delta = total + gamma * next_value * (1.0 - ended) - values[t]
        new_gae = delta + gamma * gae_lambda * (1.0 - ended) * gae
        advantages[t] = on * new_gae
        gae = torch.where(on > 0, new_gae, gae)
        next_value = torch.where(on > 0, values[t], next_value)
        # inactive step: its reward belongs to the previous active step; an end cuts what follows
        carry_reward = torch.where(
            on > 0, torch.zeros_like(reward), reward + (1.0 - done) * carry_reward
        )
        carry_done = torch.where(on > 0, torch.zeros_like(done), torch.maximum(done, carry_done))
    return advantages, advantages + values


def q_lambda_returns(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    last_value: Tensor,
    gamma: float,
    q_lambda: float,
) -> Tensor:
    """Q(lambda) returns over ``[T, N]`` tensors, PQN's regression targets (Gallici et al. 2024;
    Peng & Williams 1996), computed backwards over the rollout::

        G_t = r_t + gamma (1 - d_t) ((1 - lambda) v_{t+1} + lambda G_{t+1}),  G_T = v_T = last_value

    where ``v_t = max_a Q(s_t, a)`` as recorded when acting (``values``) and ``d_t`` (``dones``)
    is 1 when the episode ended at step ``t``. As for :func:`compute_gae`, a truncated step
    must already carry ``gamma * max_a Q(final_obs, a)`` in its reward: truncation bootstraps,
    termination does not, and neither lets the return run into the next episode.

    These are :func:`compute_gae`'s returns for the same values (the TD(lambda) identity
    ``A_t + v_t = G_t``; tested), which is how the rollout storage computes them for PQN.
    """
    returns = torch.empty_like(rewards)
    next_return, next_value = last_value, last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        blend = (1.0 - q_lambda) * next_value + q_lambda * next_return
        next_return = rewards[t] + gamma * (1.0 - dones[t]) * blend
        returns[t] = next_return
        next_value = values[t]
    return returns


def state_layout(
    shapes: Sequence[Sequence[int]] | None, dtypes: Sequence[str] | None, owner: str
) -> list[tuple[tuple[int, ...], torch.dtype]]:
    """``(per-row shape, dtype)`` of each recurrent state tensor a storage keeps, from the
    shapes and dtype names of a config (default float32); clear errors name ``owner``."""
    layout = [tuple(int(d) for d in shape) for shape in (shapes or ())]
    names = list(dtypes) if dtypes is not None else ["float32"] * len(layout)
    if len(names) != len(layout):
        raise ValueError(
            f"{owner}: state_dtypes has {len(names)} entries for {len(layout)} state_shapes"
        )
    out = []
    for shape, name in zip(layout, names, strict=True):
        dtype = _DTYPES.get(str(name))
        if dtype is None:
            raise ValueError(
                f"{owner}: unknown state dtype {name!r}; allowed: {', '.join(sorted(_DTYPES))}"
            )
        out.append((shape, dtype))
    return out


@STORAGES.register("rollout")
class RolloutStorage(Storage):
    """Preallocated ``[num_steps, num_envs]`` buffers for one on-policy rollout.

    Supports Box and Dict observations (uint8 images stored as uint8) and every action space
    the distributions cover. Raw actions are laid out as the action space suggests unless
    ``action_shape``/``action_dtype`` (a torch dtype name such as ``"int64"``) say otherwise.
    ``store_next_obs=True`` also keeps each step's next observation (the true final
    observation at episode ends), which intrinsic rewards need. ``state_shapes`` (one per-row
    shape per tensor of a recurrent policy's state, see
    :meth:`~rlkit.policies.Policy.state_spec`; ``state_dtypes`` names their dtypes, default
    float32) stores the state entering every step, so sequence chunks may start anywhere.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        num_steps: int,
        num_envs: int,
        device: str | torch.device = "cpu",
        store_next_obs: bool = False,
        action_shape: Sequence[int] | None = None,
        action_dtype: str | None = None,
        state_shapes: Sequence[Sequence[int]] | None = None,
        state_dtypes: Sequence[str] | None = None,
    ) -> None:
        if num_steps < 1 or num_envs < 1:
            raise ValueError(
                f"RolloutStorage: num_steps and num_envs must be >= 1, got {num_steps}, {num_envs}"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_steps = int(num_steps)
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.store_next_obs = store_next_obs
        t, n = self.num_steps, self.num_envs
        self.obs = self._alloc_obs()
        self.next_obs = self._alloc_obs() if store_next_obs else None
        default_shape, default_dtype = action_layout(action_space)
        shape = tuple(action_shape) if action_shape is not None else default_shape
        dtype = _DTYPES.get(str(action_dtype)) if action_dtype is not None else default_dtype
        if dtype is None:  # a fixed table: a name from a config file looks nothing up
            raise ValueError(
                f"RolloutStorage: unknown action_dtype {action_dtype!r}; allowed: "
                f"{', '.join(sorted(_DTYPES))}"
            )
        self.actions = torch.zeros(t, n, *shape, dtype=dtype, device=self.device)
        self.states = self._alloc_states(state_shapes, state_dtypes)
        zeros = lambda: torch.zeros(t, n, device=self.device)  # noqa: E731
        self.rewards, self.dones, self.values, self.log_probs = zeros(), zeros(), zeros(), zeros()
        self.episode_starts = zeros()
        self.advantages, self.returns = zeros(), zeros()
        self.step = 0

    def _alloc_states(
        self, shapes: Sequence[Sequence[int]] | None, dtypes: Sequence[str] | None
    ) -> tuple[Tensor, ...]:
        return tuple(
            torch.zeros(self.num_steps, self.num_envs, *shape, dtype=dtype, device=self.device)
            for shape, dtype in state_layout(shapes, dtypes, "RolloutStorage")
        )

    def _alloc_obs(self) -> Obs:
        def alloc(space: spaces.Space[Any]) -> Tensor:
            shape = tuple(space.shape or ())
            return torch.zeros(
                self.num_steps,
                self.num_envs,
                *shape,
                dtype=torch_dtype_for(space),
                device=self.device,
            )

        if isinstance(self.observation_space, spaces.Dict):
            return {k: alloc(s) for k, s in self.observation_space.spaces.items()}
        if not isinstance(self.observation_space, spaces.Box):
            raise TypeError(
                f"RolloutStorage: unsupported observation space {self.observation_space!r}; "
                "supported: Box, Dict of Box"
            )
        return alloc(self.observation_space)

    def add(
        self,
        obs: Obs,
        actions: Tensor,
        rewards: Tensor,
        dones: Tensor,
        values: Tensor,
        log_probs: Tensor,
        episode_starts: Tensor,
        next_obs: Obs | None = None,
        state: Sequence[Tensor] | None = None,
    ) -> None:
        """Store step ``t``: ``dones`` marks episodes that ended at this step; ``state`` is the
        recurrent state entering it (before the reset at an episode start)."""
        if self.step >= self.num_steps:
            raise RuntimeError(
                f"RolloutStorage is full ({self.num_steps} steps); call reset() after the update"
            )
        t = self.step
        _assign(self.obs, t, obs)
        if self.next_obs is not None:
            if next_obs is None:
                raise ValueError("RolloutStorage(store_next_obs=True).add needs next_obs")
            _assign(self.next_obs, t, next_obs)
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.dones[t] = dones
        self.values[t] = values
        self.log_probs[t] = log_probs
        self.episode_starts[t] = episode_starts
        if self.states:
            if state is None or len(state) != len(self.states):
                raise ValueError(
                    f"RolloutStorage.add: the storage keeps a recurrent state of "
                    f"{len(self.states)} tensors; pass state= with one tensor each"
                )
            for buffer, value in zip(self.states, state, strict=True):
                buffer[t] = value
        self.step += 1

    def compute_returns_and_advantages(
        self,
        last_value: Tensor,
        gamma: float,
        gae_lambda: float,
        active: Tensor | None = None,
    ) -> None:
        """Fill :attr:`advantages` and :attr:`returns` from the stored rollout; with
        ``active`` ``[T, N]`` (multi-agent rows) by :func:`compute_gae_active`."""
        if active is None:
            self.advantages, self.returns = compute_gae(
                self.rewards, self.values, self.dones, last_value, gamma, gae_lambda
            )
        else:
            self.advantages, self.returns = compute_gae_active(
                self.rewards, self.values, self.dones, last_value, gamma, gae_lambda, active
            )

    def _flat(self) -> RolloutBatch:
        """Every stored sample as one flat batch of views (cached while nothing changes)."""
        key = (self.step, id(self.advantages), id(self.returns), id(self.obs), id(self.actions))
        cached = self.__dict__.get("_flat_cache")
        if cached is not None and cached[0] == key:
            return cached[1]

        def flat(x: Tensor) -> Tensor:
            return x.reshape(-1, *x.shape[2:])

        batch = RolloutBatch(
            obs=obs_map(flat, self.obs),
            actions=flat(self.actions),
            old_values=flat(self.values),
            old_log_probs=flat(self.log_probs),
            advantages=flat(self.advantages),
            returns=flat(self.returns),
            episode_starts=flat(self.episode_starts),
        )
        self.__dict__["_flat_cache"] = (key, batch)
        return batch

    def minibatches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        rows: Tensor | None = None,
    ) -> Iterator[RolloutBatch]:
        """One shuffled pass over all ``T * N`` samples in minibatches of ``batch_size``, or
        over the flat sample indices ``rows`` only (multi-agent: the active steps)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        flat = self._flat()
        if rows is not None:
            rows = rows.to(self.device)
            if batch_size >= len(rows):
                yield flat.select(rows)
                return
            perm = rows[torch.randperm(len(rows), generator=generator).to(self.device)]
            for start in range(0, len(rows), batch_size):
                yield flat.select(perm[start : start + batch_size])
            return
        total = len(self)
        if batch_size >= total:
            yield (
                flat
                if total == self.num_steps * self.num_envs
                else flat.select(torch.arange(total, device=self.device))
            )
            return
        perm = torch.randperm(total, generator=generator).to(self.device)
        for start in range(0, total, batch_size):
            yield flat.select(perm[start : start + batch_size])

    def sequence_minibatches(
        self, batch_size: int, seq_len: int | None = None, generator: torch.Generator | None = None
    ) -> Iterator[RolloutBatch]:
        """One shuffled pass over the rollout cut into per-env chunks of ``seq_len`` steps
        (default: the whole rollout), ``max(1, batch_size // seq_len)`` chunks per minibatch,
        each with the stored state at its first step. Nothing is padded: a chunk crosses
        episode boundaries and ``episode_starts`` tells the policy where to reset."""
        steps = self.step
        length = steps if seq_len is None else int(seq_len)
        if length < 1 or steps % length:
            raise ValueError(
                f"RolloutStorage.sequence_minibatches: seq_len={seq_len} must divide the "
                f"{steps} stored steps"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        chunks = steps // length
        total = chunks * self.num_envs
        per_batch = max(1, batch_size // length)
        if per_batch >= total and chunks == 1:  # one minibatch of whole rollouts: no gather
            yield self._whole_rollouts(steps)
            return
        if per_batch >= total:
            order = torch.arange(total)
        else:
            order = torch.randperm(total, generator=generator)
        offsets = torch.arange(length).unsqueeze(1)
        for start in range(0, total, per_batch):
            seqs = order[start : start + per_batch].to(self.device)
            envs, first = seqs % self.num_envs, (seqs // self.num_envs) * length
            yield self._sequences(first, envs, offsets.to(self.device) + first, length)

    def _whole_rollouts(self, steps: int) -> RolloutBatch:
        """Every env's whole rollout as one chunk: what :meth:`_sequences` gives for all envs
        in order from step 0 (time-major rows), as views of the storage."""
        return self._chunks(
            lambda x: x[:steps].reshape(-1, *x.shape[2:]),
            tuple(s[0] for s in self.states),
            steps,
        )

    def _sequences(self, first: Tensor, envs: Tensor, times: Tensor, length: int) -> RolloutBatch:
        """The chunks starting at steps ``first`` of envs ``envs`` (``times [L, M]``)."""

        def take(x: Tensor) -> Tensor:
            picked = x[times, envs.unsqueeze(0)]
            return picked.reshape(-1, *picked.shape[2:])

        return self._chunks(take, tuple(s[first, envs] for s in self.states), length)

    def _chunks(
        self, take: Callable[[Tensor], Tensor], states: tuple[Tensor, ...], length: int
    ) -> RolloutBatch:
        """A batch of chunks of ``length`` steps: every stored field through ``take``
        (``[T, N, ...]`` -> time-major rows), with the ``states`` at the chunks' first steps."""
        return RolloutBatch(
            obs=obs_map(take, self.obs),
            actions=take(self.actions),
            old_values=take(self.values),
            old_log_probs=take(self.log_probs),
            advantages=take(self.advantages),
            returns=take(self.returns),
            episode_starts=take(self.episode_starts),
            states=states,
            seq_len=length,
        )

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> RolloutBatch:
        """A uniformly random minibatch (without replacement) of the current rollout."""
        idx = torch.randperm(len(self), generator=generator)[:batch_size].to(self.device)
        return self._flat().select(idx)

    def __len__(self) -> int:
        return self.step * self.num_envs

    def reset(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {"step": torch.tensor(self.step)}
        for name in (
            "actions",
            "rewards",
            "dones",
            "values",
            "log_probs",
            "episode_starts",
            "advantages",
            "returns",
        ):
            out[name] = getattr(self, name)
        out.update({f"state.{i}": s for i, s in enumerate(self.states)})
        for prefix, obs in (("obs", self.obs), ("next_obs", self.next_obs)):
            if isinstance(obs, dict):
                out.update({f"{prefix}.{k}": v for k, v in obs.items()})
            elif obs is not None:
                out[prefix] = obs
        return out

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"RolloutStorage.load_state_dict: missing entries {missing}")
        for name, value in own.items():
            if name == "step":
                continue
            if value.shape != state[name].shape:
                raise ValueError(
                    f"RolloutStorage.load_state_dict: {name} has shape {tuple(state[name].shape)}, "
                    f"expected {tuple(value.shape)}"
                )
            value.copy_(state[name])
        self.step = int(state["step"])


def _assign(buffer: Obs, t: int, value: Obs) -> None:
    if isinstance(buffer, dict):
        assert isinstance(value, dict)
        for k, v in buffer.items():
            v[t] = value[k]
    else:
        assert isinstance(value, Tensor)
        buffer[t] = value
