"""Training callbacks: code that runs after every iteration of :meth:`Agent.train`, sees the
agent and the iteration's metrics, may add metrics of its own (they are logged with the row) and
may stop training early (for example once an evaluation score is reached)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gymnasium.vector import VectorEnv

from . import evaluation

if TYPE_CHECKING:
    from .base import Agent


class Callback:
    """Base class: override any of the three methods. ``on_iteration`` returns ``True`` to stop
    training after this iteration (its row is still logged)."""

    def on_train_start(self, agent: Agent) -> None:
        """Before the first iteration of a :meth:`Agent.train` call."""

    def on_iteration(self, agent: Agent, metrics: dict[str, float]) -> bool:
        """After each iteration; add entries to ``metrics`` to log them; ``True`` stops."""
        return False

    def on_train_end(self, agent: Agent) -> None:
        """When the train call ends, normally, by a stop or by an exception."""


IterationFn = Callable[["Agent", dict[str, float]], "bool | None"]
CallbackLike = Callback | IterationFn


class FunctionCallback(Callback):
    """A plain function ``fn(agent, metrics) -> bool | None`` as a callback."""

    def __init__(self, fn: IterationFn) -> None:
        self.fn = fn

    def on_iteration(self, agent: Agent, metrics: dict[str, float]) -> bool:
        return bool(self.fn(agent, metrics))


def as_callbacks(callbacks: CallbackLike | Sequence[CallbackLike] | None) -> list[Callback]:
    """Normalise ``train(callbacks=...)``: ``None``, one callback or function, or a sequence."""
    if callbacks is None:
        return []
    items = [callbacks] if isinstance(callbacks, Callback) or callable(callbacks) else callbacks
    out: list[Callback] = []
    for item in items:
        if isinstance(item, Callback):
            out.append(item)
        elif callable(item):
            out.append(FunctionCallback(item))
        else:
            raise TypeError(
                f"train: callbacks must be Callback objects or functions (agent, metrics), "
                f"got {type(item).__name__}"
            )
    return out


class Evaluate(Callback):
    """Evaluate every ``every`` env steps on a fixed copy of the training env and record the
    scores; with ``stop_at``, stop training once ``return_mean`` reaches it.

    The evaluation env is built once per train call (see :meth:`Agent.evaluate` for how) and
    reset with the same ``seed`` each time, so successive scores differ only by the policy.
    Scores land in :attr:`history` as ``(global_step, result)`` pairs and in the logged row as
    ``eval/return_mean`` and ``eval/length_mean``. Evaluations run at iteration boundaries: the
    first iteration ending at or past each multiple of ``every`` (counted from step 0, so
    resumed runs keep the grid). An on-policy iteration is one rollout; an off-policy one is
    ``log_interval`` env steps.
    """

    def __init__(
        self,
        every: int,
        episodes: int = 10,
        stop_at: float | None = None,
        deterministic: bool = True,
        env: VectorEnv | None = None,
        seed: int | None = None,
    ) -> None:
        if every <= 0:
            raise ValueError(f"Evaluate: every must be > 0 env steps, got {every}")
        if episodes < 1:
            raise ValueError(f"Evaluate: episodes must be >= 1, got {episodes}")
        self.every = int(every)
        self.episodes = int(episodes)
        self.stop_at = stop_at
        self.deterministic = deterministic
        self.seed = seed
        self._given_env = env
        self._env: VectorEnv | None = None
        self._own_env = False
        self._next = self.every
        self.history: list[tuple[int, dict[str, float]]] = []
        self.reached_at: int | None = None
        """The global step of the first evaluation that reached ``stop_at`` (else ``None``)."""

    @property
    def best(self) -> float | None:
        """The highest ``return_mean`` evaluated so far (``None`` before the first)."""
        return max((r["return_mean"] for _, r in self.history), default=None)

    @property
    def last(self) -> float | None:
        """The latest ``return_mean`` (``None`` before the first evaluation)."""
        return self.history[-1][1]["return_mean"] if self.history else None

    def on_train_start(self, agent: Agent) -> None:
        self._next = (agent.global_step // self.every + 1) * self.every
        if self._given_env is not None:
            self._env, self._own_env = self._given_env, False
        else:
            self._env, seed = evaluation.evaluation_env(agent, self.episodes, self.seed)
            self._own_env = True
            self.seed = seed

    def on_iteration(self, agent: Agent, metrics: dict[str, float]) -> bool:
        if agent.global_step < self._next:
            return False
        self._next = (agent.global_step // self.every + 1) * self.every
        assert self._env is not None, "Evaluate.on_train_start was not called"
        result = evaluation.run_episodes(
            agent, self._env, self.episodes, self.deterministic, self.seed
        )
        self.history.append((agent.global_step, result))
        metrics["eval/return_mean"] = result["return_mean"]
        metrics["eval/length_mean"] = result["length_mean"]
        if self.stop_at is not None and result["return_mean"] >= self.stop_at:
            if self.reached_at is None:
                self.reached_at = agent.global_step
            return True
        return False

    def on_train_end(self, agent: Agent) -> None:
        if self._own_env and self._env is not None:
            self._env.close()
        self._env = None


__all__ = ["Callback", "CallbackLike", "Evaluate", "FunctionCallback", "as_callbacks"]
