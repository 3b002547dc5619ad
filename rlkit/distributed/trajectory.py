"""Trajectories: what an actor sends to the learner (one unroll of its vector env).

Observations travel raw (uint8 images stay uint8) and time-major ``[T, N, ...]``; the learner
normalises them. Episode ends are kept exact: ``terminated`` and ``truncated`` per step, and the
true last observation of every finished episode (``final_obs``, sparse: only the ``K`` steps
that ended one) so the learner can bootstrap truncated episodes from the current critic and
intrinsic rewards see real next observations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rlkit.types import Obs
from rlkit.utils.tensors import obs_map


def cat_obs(items: Sequence[Obs], dim: int = 0) -> Obs:
    """Concatenate tensor or dict observations along ``dim``."""
    first = items[0]
    if isinstance(first, dict):
        return {k: torch.cat([o[k] for o in items], dim=dim) for k in first}  # type: ignore[index]
    return torch.cat(list(items), dim=dim)  # type: ignore[arg-type]


@dataclass
class TrajectoryBatch:
    """Time-major unrolls of ``B`` envs (one actor's, or several stacked along the env axis)."""

    #: observations ``[T, B, ...]`` (the one each action was taken in).
    obs: Obs
    #: raw actions as the distribution sampled them ``[T, B, *action_shape]``.
    actions: Tensor
    #: extrinsic rewards ``[T, B]`` (the learner adds intrinsic bonuses).
    rewards: Tensor
    #: the step ended the episode by termination (no bootstrap) ``[T, B]`` bool.
    terminated: Tensor
    #: the step ended the episode by truncation only (bootstrap from ``final_obs``) ``[T, B]``.
    truncated: Tensor
    #: behaviour log-probabilities log mu(a_t|x_t) ``[T, B]``.
    log_probs: Tensor
    #: the observation after the last step ``[B, ...]`` (bootstrap of the last row).
    bootstrap_obs: Obs
    #: ``(t, b)`` of each step that ended an episode ``[K, 2]`` int64.
    final_steps: Tensor
    #: the true last observation of those episodes ``[K, ...]``.
    final_obs: Obs
    #: policy version that produced each env column ``[B]`` int64.
    versions: Tensor
    #: per-step data the actor's :class:`~rlkit.distributed.Behaviour` added ``[T, B, ...]``
    #: (e.g. Ape-X's initial priorities), by name.
    extras: dict[str, Tensor] = field(default_factory=dict)
    #: recurrent policies: 1 where a step starts an episode (the policy's reset flag)
    #: ``[T, B]`` float; None for feed-forward policies.
    episode_starts: Tensor | None = None
    #: recurrent policies: the actor's state entering the unroll's first step (before its
    #: reset), batch-first per tensor ``[B, ...]``; empty for feed-forward policies.
    initial_state: tuple[Tensor, ...] = ()
    #: recurrent policies: the state after each episode-ending step ``[K, ...]`` (rows of
    #: ``final_steps``), for the value of a truncated episode's final observation.
    final_states: tuple[Tensor, ...] = ()
    #: recurrent policies: the state after the unroll's last step ``[B, ...]`` (with the
    #: bootstrap observation; its reset flag is the last step's done).
    bootstrap_state: tuple[Tensor, ...] = ()

    @property
    def num_steps(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def dones(self) -> Tensor:
        """``terminated | truncated`` ``[T, B]`` bool."""
        return self.terminated | self.truncated

    def map_obs(self, fn: Callable[[Obs], Obs]) -> TrajectoryBatch:
        """The batch with ``fn`` applied to every observation field (e.g. normalisation);
        ``fn`` gets ``[M, ...]`` batches."""
        steps, envs = self.num_steps, self.num_envs
        flat = fn(obs_map(lambda x: x.reshape(steps * envs, *x.shape[2:]), self.obs))
        obs = obs_map(lambda x: x.reshape(steps, envs, *x.shape[1:]), flat)
        return dataclasses.replace(
            self,
            obs=obs,
            bootstrap_obs=fn(self.bootstrap_obs),
            final_obs=fn(self.final_obs),
        )

    @property
    def recurrent(self) -> bool:
        """Whether the unrolls carry a recurrent policy's state."""
        return self.episode_starts is not None

    def to(self, device: torch.device | str) -> TrajectoryBatch:
        """The batch on ``device`` (tensors already there are not copied)."""

        def move(x: Tensor) -> Tensor:
            return x.to(device)

        def states(s: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            return tuple(move(x) for x in s)

        return TrajectoryBatch(
            obs=obs_map(move, self.obs),
            actions=move(self.actions),
            rewards=move(self.rewards),
            terminated=move(self.terminated),
            truncated=move(self.truncated),
            log_probs=move(self.log_probs),
            bootstrap_obs=obs_map(move, self.bootstrap_obs),
            final_steps=move(self.final_steps),
            final_obs=obs_map(move, self.final_obs),
            versions=move(self.versions),
            extras={k: move(v) for k, v in self.extras.items()},
            episode_starts=None if self.episode_starts is None else move(self.episode_starts),
            initial_state=states(self.initial_state),
            final_states=states(self.final_states),
            bootstrap_state=states(self.bootstrap_state),
        )

    def columns(self, index: Tensor) -> TrajectoryBatch:
        """The sub-batch of env columns ``index`` (whole time sequences, as V-trace needs)."""
        index = index.to(self.rewards.device)
        remap = torch.full((self.num_envs,), -1, dtype=torch.long, device=index.device)
        remap[index] = torch.arange(len(index), device=index.device)
        new_b = remap[self.final_steps[:, 1]]
        keep = new_b >= 0
        steps = torch.stack([self.final_steps[keep, 0], new_b[keep]], dim=1)
        return TrajectoryBatch(
            obs=obs_map(lambda x: x[:, index], self.obs),
            actions=self.actions[:, index],
            rewards=self.rewards[:, index],
            terminated=self.terminated[:, index],
            truncated=self.truncated[:, index],
            log_probs=self.log_probs[:, index],
            bootstrap_obs=obs_map(lambda x: x[index], self.bootstrap_obs),
            final_steps=steps,
            final_obs=obs_map(lambda x: x[keep], self.final_obs),
            versions=self.versions[index],
            extras={k: v[:, index] for k, v in self.extras.items()},
            episode_starts=(None if self.episode_starts is None else self.episode_starts[:, index]),
            initial_state=tuple(s[index] for s in self.initial_state),
            final_states=tuple(s[keep] for s in self.final_states),
            bootstrap_state=tuple(s[index] for s in self.bootstrap_state),
        )

    def next_obs(self) -> Obs:
        """True next observations ``[T, B, ...]``: the final one where an episode ended."""

        def build(obs: Tensor, boot: Tensor, final: Tensor) -> Tensor:
            out = torch.cat([obs[1:], boot.unsqueeze(0)], dim=0)
            if len(final):
                out[self.final_steps[:, 0], self.final_steps[:, 1]] = final.to(out.dtype)
            return out

        if isinstance(self.obs, dict):
            assert isinstance(self.bootstrap_obs, dict) and isinstance(self.final_obs, dict)
            return {
                k: build(v, self.bootstrap_obs[k], self.final_obs[k]) for k, v in self.obs.items()
            }
        assert isinstance(self.bootstrap_obs, Tensor) and isinstance(self.final_obs, Tensor)
        return build(self.obs, self.bootstrap_obs, self.final_obs)

    def truncation_obs(self) -> tuple[Tensor, Obs]:
        """``(steps [K', 2], final observations [K', ...])`` of the truncated steps only."""
        steps, obs, _ = self.truncations()
        return steps, obs

    def truncations(self) -> tuple[Tensor, Obs, tuple[Tensor, ...]]:
        """:meth:`truncation_obs` plus the recurrent state after each of those steps."""
        if len(self.final_steps) == 0:
            return self.final_steps, self.final_obs, self.final_states
        t, b = self.final_steps[:, 0], self.final_steps[:, 1]
        keep = self.truncated[t, b]
        states = tuple(s[keep] for s in self.final_states)
        return self.final_steps[keep], obs_map(lambda x: x[keep], self.final_obs), states

    def time_major_rows(self, columns: Tensor | None = None) -> Tensor:
        """Flat row indices (``t * B + b``) of env ``columns`` (all by default), time-major:
        whole per-env sequences as a recurrent policy reads them."""
        envs = self.num_envs
        cols = torch.arange(envs) if columns is None else columns
        cols = cols.to(self.rewards.device)
        times = torch.arange(self.num_steps, device=cols.device).unsqueeze(1)
        return (times * envs + cols.unsqueeze(0)).reshape(-1)


@dataclass
class Trajectory:
    """One actor's unroll plus what the learner logs about it."""

    data: TrajectoryBatch
    #: the actor slot that produced it.
    actor_id: int
    #: the policy version (learner update count) the actor acted with.
    version: int
    #: the actor's incarnation (restarts of its slot before it), see :class:`ActorSpec`.
    incarnation: int = 0
    #: returns and lengths of the episodes that finished during the unroll.
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    #: wall time the actor spent on the unroll (seconds).
    collect_s: float = 0.0

    @property
    def env_steps(self) -> int:
        return self.data.num_steps * self.data.num_envs


def stack_trajectories(trajectories: Sequence[Trajectory]) -> TrajectoryBatch:
    """Stack unrolls of equal length along the env axis into one :class:`TrajectoryBatch`."""
    if not trajectories:
        raise ValueError("stack_trajectories: no trajectories given")
    parts = [t.data for t in trajectories]
    lengths = {p.num_steps for p in parts}
    if len(lengths) != 1:
        raise ValueError(f"stack_trajectories: unrolls of different lengths {sorted(lengths)}")
    if len(parts) == 1:
        return parts[0]
    offsets, total = [], 0
    for p in parts:
        offsets.append(total)
        total += p.num_envs
    steps = torch.cat(
        [
            p.final_steps + torch.tensor([0, off], dtype=torch.long, device=p.final_steps.device)
            for p, off in zip(parts, offsets, strict=True)
        ],
        dim=0,
    )
    return TrajectoryBatch(
        obs=cat_obs([p.obs for p in parts], dim=1),
        actions=torch.cat([p.actions for p in parts], dim=1),
        rewards=torch.cat([p.rewards for p in parts], dim=1),
        terminated=torch.cat([p.terminated for p in parts], dim=1),
        truncated=torch.cat([p.truncated for p in parts], dim=1),
        log_probs=torch.cat([p.log_probs for p in parts], dim=1),
        bootstrap_obs=cat_obs([p.bootstrap_obs for p in parts], dim=0),
        final_steps=steps,
        final_obs=cat_obs([p.final_obs for p in parts], dim=0),
        versions=torch.cat([p.versions for p in parts], dim=0),
        extras=_cat_extras(parts),
        episode_starts=(
            torch.cat([_starts(p) for p in parts], dim=1) if parts[0].recurrent else None
        ),
        initial_state=_cat_states([p.initial_state for p in parts]),
        final_states=_cat_states([p.final_states for p in parts]),
        bootstrap_state=_cat_states([p.bootstrap_state for p in parts]),
    )


def _starts(part: TrajectoryBatch) -> Tensor:
    if part.episode_starts is None:
        raise ValueError("stack_trajectories: mixing recurrent and feed-forward unrolls")
    return part.episode_starts


def _cat_states(states: Sequence[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
    """Recurrent states of several unrolls stacked along the batch axis."""
    if len({len(s) for s in states}) != 1:
        raise ValueError("stack_trajectories: unrolls carry different recurrent states")
    return tuple(torch.cat(parts, dim=0) for parts in zip(*states, strict=True))


def _cat_extras(parts: Sequence[TrajectoryBatch]) -> dict[str, Tensor]:
    """The extras every part has, concatenated along the env axis (a name some part lacks
    is an error: mixing behaviours in one batch is almost certainly a bug)."""
    names = {frozenset(p.extras) for p in parts}
    if len(names) != 1:
        raise ValueError(
            f"stack_trajectories: unrolls carry different extras {sorted(map(sorted, names))}"
        )
    return {k: torch.cat([p.extras[k] for p in parts], dim=1) for k in parts[0].extras}


__all__ = ["Trajectory", "TrajectoryBatch", "cat_obs", "stack_trajectories"]
