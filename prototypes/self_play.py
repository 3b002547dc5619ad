"""Self-play in the training loop: an env built with a :class:`~rlkit.selfplay.SelfPlayLeague`
(:func:`rlkit.envs.make_vec_env` with ``self_play``) gets its opponents from the agent's own
snapshots. The agent checkpoints the league (:func:`register_league`) and, through
:class:`LeagueCallback`, attaches its policy when training starts, snapshots it every
``snapshot_every`` updates and logs the league's ratings and results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlkit.selfplay.league import LEAGUE_KEY, SelfPlayLeague

from .callbacks import Callback

if TYPE_CHECKING:
    from .base import Agent

#: the league's checkpointed entries (saved as ``league_<key>``).
STATE_KEYS = ("params", "meta", "next_id", "rng", "elo")


def league_of(env: Any) -> SelfPlayLeague | None:
    """The league a self-play vector env carries, if any."""
    league = getattr(env, "metadata", {}).get(LEAGUE_KEY)
    return league if isinstance(league, SelfPlayLeague) else None


def register_league(agent: Agent) -> None:
    """Checkpoint the training env's league with the agent (its snapshots, results, ratings
    and generator), so a resumed run plays the same opponents."""
    league = league_of(agent.env)
    if league is None:
        return
    for key in STATE_KEYS:
        agent.add_state(
            f"league_{key}",
            get=lambda k=key: league.state_tensors()[k],  # type: ignore[misc]
            set=lambda value, k=key: league.load_state_tensor(k, value),  # type: ignore[misc]
        )


class LeagueCallback(Callback):
    """Attach the learner's policy to the league at the start of training, snapshot it every
    ``snapshot_every`` updates, and log ``selfplay/*`` metrics."""

    def __init__(self, league: SelfPlayLeague) -> None:
        self.league = league

    def on_train_start(self, agent: Agent) -> None:
        if agent.obs_normalizer is not None:
            raise ValueError(
                f"{type(agent).__name__}: self-play opponents play the raw observations; turn "
                "normalize_obs off"
            )
        policy = getattr(agent, "policy", None)
        if policy is None or not hasattr(policy, "act"):
            raise TypeError(f"{type(agent).__name__}: self-play needs an agent with a policy")
        self.league.attach(policy, agent.obs_to_tensor, agent.global_step)

    def on_iteration(self, agent: Agent, metrics: dict[str, float]) -> bool:
        metrics.update(self.league.after_update(agent.num_updates, agent.global_step))
        return False


def league_callbacks(agent: Agent) -> list[Callback]:
    """The league's callback when the agent trains on a self-play env."""
    league = league_of(agent.env)
    return [] if league is None else [LeagueCallback(league)]


def evaluate_against(
    agent: Agent,
    opponent: str = "random",
    games: int = 100,
    seed: int | None = None,
    deterministic: bool = True,
    num_envs: int = 8,
) -> dict[str, float]:
    """Play ``games`` games of the agent's self-play env against the fixed player
    ``opponent`` (:data:`rlkit.selfplay.league.PLAYERS`), the learner's seat drawn per game;
    returns ``win_rate``, ``draw_rate``, ``loss_rate``, ``non_losing_rate`` and ``games``."""
    import numpy as np

    from rlkit.envs import env_spec_of, make_vec_env

    spec = env_spec_of(agent.env)
    if spec is None or spec.self_play in (None, False) or spec.env_id is None:
        raise ValueError(
            "evaluate_against: the agent's env was not built with make_vec_env(..., self_play=...)"
        )
    options = {**spec.self_play, "eval_opponent": opponent}
    env = make_vec_env(
        spec.env_id,
        num_envs=min(num_envs, games),
        env_kwargs=spec.env_kwargs,
        self_play=options,
        evaluation=True,
    )
    scores: list[float] = []
    try:
        obs, _ = env.reset(seed=seed)
        while len(scores) < games:
            actions = agent.act(obs, deterministic=deterministic)
            obs, _, _, _, info = env.step(actions)
            if "episode" in info:
                finished = np.asarray(info["_episode"], dtype=bool)
                scores.extend(float(np.sign(r)) for r in np.asarray(info["episode"]["r"])[finished])
    finally:
        env.close()
    result = np.asarray(scores[:games])
    return {
        "win_rate": float((result > 0).mean()),
        "draw_rate": float((result == 0).mean()),
        "loss_rate": float((result < 0).mean()),
        "non_losing_rate": float((result >= 0).mean()),
        "games": float(len(result)),
    }
