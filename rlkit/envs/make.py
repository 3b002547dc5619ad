"""Vector-env factory with rlkit's conventions: same-step autoreset, seeding, episode stats."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from rlkit.envs.agent_rows import make_multi_agent_vec_env
from rlkit.envs.families import EnvFamily, build_family
from rlkit.envs.multi_agent import multi_agent_constructor
from rlkit.envs.resume import RECORDER_KEY, ActionRecorder
from rlkit.envs.stats import GameEpisodeStatistics
from rlkit.envs.wrapper_registry import WrapperLike, apply_wrapper, check_wrapper_spec
from rlkit.trust import check_import

EnvFactory = Callable[[], gym.Env[Any, Any]]

#: key under ``VectorEnv.metadata`` where :func:`make_vec_env` records how to rebuild the env.
SPEC_KEY = "rlkit.env_spec"


@dataclass
class VecEnvSpec:
    """How a vector env was made, so evaluation can build a fresh copy."""

    env: str | EnvFactory
    num_envs: int
    seed: int | None
    asynchronous: bool
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: tuple[WrapperLike, ...] = ()
    #: the env family's preprocessing: True (defaults), False (none) or its options.
    preprocessing: bool | dict[str, Any] = True
    #: built for evaluation (the family leaves out training-only parts).
    evaluation: bool = False
    #: self-play on a turn-based PettingZoo game: the league's options (see
    #: :mod:`rlkit.selfplay`), or None.
    self_play: dict[str, Any] | None = None

    @property
    def env_id(self) -> str | None:
        """The registered id, or None for a callable."""
        return self.env if isinstance(self.env, str) else None

    @property
    def wrapper_specs(self) -> list[dict[str, Any]] | None:
        """The wrappers as registered-wrapper specs (what a checkpoint records), or None when
        one of them is a callable (which has no name to record)."""
        if any(callable(w) for w in self.wrappers):
            return None
        return [check_wrapper_spec(w) for w in self.wrappers]  # type: ignore[arg-type]


#: ``self_play["mode"]``: ``"league"`` (one seat against snapshots of the learner and fixed
#: players, :mod:`rlkit.selfplay.env`) or ``"alternate"`` (the learner plays both seats of a
#: two-player zero-sum game, move by move, :mod:`rlkit.selfplay.turns`).
SELF_PLAY_MODES = ("league", "alternate")

#: the id prefix of prompt files as text envs: ``"text:prompts.jsonl"`` (rlkit.envs.text).
TEXT_PREFIX = "text:"
#: what ``env_kwargs`` a text env takes besides ``tokenizer`` (``num_envs`` is its number of
#: prompts per step).
TEXT_ENV_OPTIONS = ("group_size", "max_prompt_tokens", "max_new_tokens", "reward_model",
                    "shuffle", "dialogue")  # fmt: skip


def _text_env(
    env_id: str, num_envs: int, seed: int | None, env_kwargs: Mapping[str, Any] | None
) -> VectorEnv:
    """A :class:`~rlkit.envs.text.TextVecEnv` (or, with ``dialogue=True``, a
    :class:`~rlkit.envs.text.DialogueVecEnv`) over the prompt file after ``"text:"``, with
    ``num_envs`` prompts per step. Reading a file imports nothing, so the id needs no trust."""
    from rlkit.envs.text import DialogueVecEnv, TextVecEnv

    kwargs = dict(env_kwargs or {})
    unknown = sorted(set(kwargs) - {"tokenizer", *TEXT_ENV_OPTIONS})
    if unknown:
        raise ValueError(
            f"make_vec_env: the text env {env_id!r} takes env_kwargs tokenizer, "
            f"{', '.join(TEXT_ENV_OPTIONS)}; got {', '.join(unknown)}"
        )
    if "tokenizer" not in kwargs:
        raise ValueError(
            f"make_vec_env: the text env {env_id!r} needs env_kwargs tokenizer=<a model directory "
            "or name> (rlkit train uses --model's)"
        )
    dialogue = bool(kwargs.pop("dialogue", False))
    cls = DialogueVecEnv if dialogue else TextVecEnv
    vec = cls(env_id[len(TEXT_PREFIX) :], num_prompts=num_envs, seed=seed, **kwargs)
    vec.metadata[SPEC_KEY] = VecEnvSpec(env_id, num_envs, seed, False, dict(env_kwargs or {}))
    return vec


def check_env_id(env_id: str) -> None:
    """Refuse an env id read from an untrusted file (see :mod:`rlkit.trust`) when making it
    would import a module: gymnasium's ``"module:Env"`` form imports ``module`` first. Ids
    given directly (``make_vec_env("my_pkg:MyEnv-v0")``, ``rlkit train --env``) are allowed."""
    if ":" in env_id:
        check_import(env_id, "the env id", "pass your own env instead (env=..., rlkit train --env)")


def _single_factory(
    env: str | EnvFactory,
    env_kwargs: Mapping[str, Any],
    wrappers: Sequence[WrapperLike],
    family: EnvFamily | None,
    evaluation: bool,
) -> EnvFactory:
    def make() -> gym.Env[Any, Any]:
        if isinstance(env, str):
            if family is not None:
                e = family.make(env, env_kwargs, evaluation)
            else:
                e = gym.make(env, **env_kwargs)
        else:
            if env_kwargs:
                raise ValueError("env_kwargs are only used with an env id, not a callable")
            e = env()
            if not isinstance(e, gym.Env):
                raise TypeError(
                    f"make_vec_env: the env callable returned {type(e).__name__}, expected a "
                    "gymnasium.Env"
                )
        for wrapper in wrappers:
            e = wrapper(e) if callable(wrapper) else apply_wrapper(e, wrapper)
        return ActionRecorder(e)  # outermost: sees the vector env's resets and actions

    return make


def make_vec_env(
    env: str | EnvFactory,
    num_envs: int = 1,
    seed: int | None = None,
    asynchronous: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[WrapperLike] = (),
    stats_window: int = 100,
    preprocessing: bool | Mapping[str, Any] = True,
    evaluation: bool = False,
    self_play: bool | Mapping[str, Any] | None = None,
) -> VectorEnv:
    """Build a gymnasium vector env the way rlkit's prototypes expect.

    - ``env``: a registered id (``"CartPole-v1"``) or a zero-argument callable returning an env.
      gymnasium's ``"module:Env-v0"`` form imports ``module`` first; it is refused for ids
      read from an untrusted checkpoint (:func:`check_env_id`).
    - Sub-env ``i`` is seeded with ``seed + i`` (and the action space with ``seed``), so serial
      (``asynchronous=False``) and subprocess (``True``) modes produce identical trajectories.
    - Autoreset happens in the same step (``AutoresetMode.SAME_STEP``): the returned observation
      of a finished env is the first of its next episode and the true last observation is in
      ``info["final_obs"]``, which on-policy bootstrapping on truncation needs.
    - Episode returns/lengths are recorded (``info["episode"]``, and the wrapper's
      ``return_queue``/``length_queue`` of the last ``stats_window`` episodes).
    - An id of a known env family (``ALE/Breakout-v5``, ``MiniGrid-*``, ``dm_control/*``,
      MuJoCo, Box2D: :mod:`rlkit.envs.families`) gets the family's standard preprocessing;
      ``preprocessing`` is ``True`` (the defaults), ``False`` (plain ``gym.make``) or the
      family's options (``{"frame_stack": 2}``); a missing package is an ImportError naming
      the extra to install. ``evaluation=True`` leaves out training-only parts (Atari's
      reward clipping and life-loss episode ends); training statistics count whole games.
    - ``wrappers`` are applied after the family's, in order: callables ``env -> env``, or
      registered wrappers by id or ``{"id": ..., **options}``
      (:mod:`rlkit.envs.wrapper_registry`), which checkpoints record by name.
    - Each sub-env is wrapped (outermost) in an :class:`~rlkit.envs.resume.ActionRecorder`,
      which keeps its last reset and the actions since, so a checkpoint can put a new env back
      in the same episodes (exact resume, see :mod:`rlkit.envs.resume`).
    - A PettingZoo env named ``"module:attr"`` (``"mpe2:simple_spread_v3"``: a module with
      ``parallel_env``/``env``, or a constructor) becomes one row per agent and copy
      (:mod:`rlkit.envs.agent_rows`), trained by MAPPO, IPPO or any on-policy agent. With
      ``self_play`` (True or the league's options, see :mod:`rlkit.selfplay`) a turn-based
      game is seen from one seat against snapshots of the learner instead; with
      ``{"mode": "alternate"}`` a two-player zero-sum game is played by the learner in both
      seats, every step the mover's (:mod:`rlkit.selfplay.turns`); with ``evaluation=True``
      (either mode) from one seat against the fixed player ``self_play["eval_opponent"]``
      (default ``"random"``).
    """
    if num_envs < 1:
        raise ValueError(f"make_vec_env: num_envs must be >= 1, got {num_envs}")
    if not (isinstance(env, str) or callable(env)):
        raise TypeError(
            f"make_vec_env: env must be an env id string or a callable, got {type(env).__name__}"
        )
    family: EnvFamily | None = None
    if isinstance(env, str) and env.startswith(TEXT_PREFIX):
        if wrappers or isinstance(preprocessing, Mapping) or self_play not in (None, False):
            raise ValueError(
                f"make_vec_env: wrappers, preprocessing options and self_play do not apply to the "
                f"text env {env!r}"
            )
        return _text_env(env, num_envs, seed, env_kwargs)
    if isinstance(env, str):
        check_env_id(env)
        if self_play is not None and self_play is not False:  # True or options ({} is on)
            if wrappers:
                raise ValueError(
                    "make_vec_env: wrappers do not apply to self-play games (wrap the PettingZoo "
                    "env's constructor instead)"
                )
            play = dict(self_play) if isinstance(self_play, Mapping) else {}
            return _self_play(env, num_envs, seed, env_kwargs, play, evaluation, stats_window)
        constructor = multi_agent_constructor(env)
        if constructor is not None:
            if isinstance(preprocessing, Mapping):
                raise ValueError(
                    f"make_vec_env: preprocessing options apply to env families; {env!r} is a "
                    "PettingZoo env (leave preprocessing at its default)"
                )
            return _multi_agent(
                env, constructor, num_envs, seed, asynchronous, env_kwargs, wrappers, stats_window
            )
        family = build_family(env, preprocessing)
    wrappers = tuple(w if callable(w) else check_wrapper_spec(w) for w in wrappers)
    kwargs = dict(env_kwargs or {})
    fns = [_single_factory(env, kwargs, wrappers, family, evaluation) for _ in range(num_envs)]
    games = family is not None and family.reports_games and not evaluation
    options = dict(preprocessing) if isinstance(preprocessing, Mapping) else bool(preprocessing)
    spec = VecEnvSpec(env, num_envs, seed, asynchronous, kwargs, wrappers, options, evaluation)
    return _vectorise(fns, spec, stats_window, games)


def _vectorise(
    fns: Sequence[EnvFactory], spec: VecEnvSpec, stats_window: int, games: bool = False
) -> VectorEnv:
    """``fns``' envs (each made by :func:`_single_factory`) as a same-step-autoreset vector env
    with episode statistics, recorded as ``spec`` and seeded with its seed."""
    vec: VectorEnv
    if spec.asynchronous:
        vec = AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        vec = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    vec = GameEpisodeStatistics(vec, buffer_length=stats_window, games=games)
    vec.metadata = dict(vec.metadata)
    vec.metadata[SPEC_KEY] = spec
    vec.metadata[RECORDER_KEY] = True
    if spec.seed is not None:
        vec.reset(seed=spec.seed)
        vec.action_space.seed(spec.seed)
        vec.single_action_space.seed(spec.seed)
    return vec


def _multi_agent(
    env_id: str,
    constructor: Any,
    num_envs: int,
    seed: int | None,
    asynchronous: bool,
    env_kwargs: Mapping[str, Any] | None,
    wrappers: Sequence[WrapperLike],
    stats_window: int,
) -> VectorEnv:
    """A PettingZoo env id (``"mpe2:simple_spread_v3"``) as rows of agents; callable
    ``wrappers`` wrap each copy's :class:`~rlkit.envs.multi_agent.AgentsEnv`."""
    if any(not callable(w) for w in wrappers):
        raise ValueError(
            f"make_vec_env: registered wrappers apply to gymnasium envs; {env_id!r} is a "
            "PettingZoo env (wrap its constructor instead)"
        )
    kwargs = dict(env_kwargs or {})
    vec = make_multi_agent_vec_env(
        constructor,
        num_envs,
        seed,
        asynchronous,
        kwargs,
        stats_window,
        wrappers,  # type: ignore[arg-type]
    )
    vec.metadata[SPEC_KEY] = VecEnvSpec(env_id, num_envs, seed, asynchronous, kwargs)
    return vec


def _self_play(
    env_id: str,
    num_envs: int,
    seed: int | None,
    env_kwargs: Mapping[str, Any] | None,
    options: dict[str, Any],
    evaluation: bool,
    stats_window: int,
) -> VectorEnv:
    """A turn-based PettingZoo game from one seat (:mod:`rlkit.selfplay`)."""
    from rlkit.selfplay.env import make_self_play_vec_env
    from rlkit.selfplay.league import SelfPlayLeague

    constructor = multi_agent_constructor(env_id, aec=True)
    if constructor is None:
        raise ValueError(
            f"make_vec_env: self_play needs a PettingZoo game named 'module:attr' "
            f"('pettingzoo.classic:tictactoe_v3'), got {env_id!r}"
        )
    mode = options.get("mode", "league")
    if mode not in SELF_PLAY_MODES:
        raise ValueError(
            f"self_play: mode {mode!r} is not one of {', '.join(map(repr, SELF_PLAY_MODES))}"
        )
    league_options = {k: v for k, v in options.items() if k not in ("eval_opponent", "mode")}
    valid = [*inspect.signature(SelfPlayLeague).parameters, "eval_opponent", "mode"]
    if mode == "alternate":
        valid = ["eval_opponent", "mode"]
    unknown = sorted(set(league_options) - set(valid))
    if unknown:
        raise ValueError(
            f"self_play: unknown option(s) {', '.join(unknown)} for mode {mode!r}; valid: "
            f"{', '.join(valid)}"
        )
    opponent = str(options.get("eval_opponent", "random"))
    if mode == "alternate" and not evaluation:
        return _alternating(env_id, constructor, num_envs, seed, env_kwargs, options, stats_window)
    league = None
    if not evaluation:
        league = SelfPlayLeague(**{"seed": seed, **league_options})
    kwargs = dict(env_kwargs or {})
    vec = make_self_play_vec_env(
        constructor, num_envs, seed, league, kwargs, opponent, stats_window=stats_window
    )
    vec.metadata[SPEC_KEY] = VecEnvSpec(
        env_id, num_envs, seed, False, kwargs, evaluation=evaluation, self_play=options
    )
    return vec


def _alternating(
    env_id: str,
    constructor: Any,
    num_envs: int,
    seed: int | None,
    env_kwargs: Mapping[str, Any] | None,
    options: dict[str, Any],
    stats_window: int,
) -> VectorEnv:
    """A two-player zero-sum game played move by move by the learner in both seats
    (:class:`~rlkit.selfplay.turns.AlternatingGameEnv`), marked with
    :data:`~rlkit.selfplay.turns.TURNS_KEY` so the agent discounts with ``-gamma``."""
    from rlkit.selfplay.turns import TURNS_KEY, AlternatingGameEnv

    kwargs = dict(env_kwargs or {})

    def game() -> gym.Env[Any, Any]:
        return AlternatingGameEnv(constructor(**kwargs))

    fns = [_single_factory(game, {}, (), None, False) for _ in range(num_envs)]
    spec = VecEnvSpec(env_id, num_envs, seed, False, kwargs, self_play=options)
    vec = _vectorise(fns, spec, stats_window)
    vec.metadata[TURNS_KEY] = True
    return vec


def env_spec_of(env: VectorEnv) -> VecEnvSpec | None:
    """The :class:`VecEnvSpec` recorded by :func:`make_vec_env`, if any."""
    spec = env.metadata.get(SPEC_KEY)
    return spec if isinstance(spec, VecEnvSpec) else None


def check_same_step_autoreset(env: VectorEnv, owner: str) -> None:
    """Raise unless ``env`` resets finished sub-envs within the same step."""
    mode = env.metadata.get("autoreset_mode")
    if mode is not None and mode != AutoresetMode.SAME_STEP:
        raise ValueError(
            f"{owner} needs a vector env with autoreset_mode=SAME_STEP (final observations are "
            f"needed to bootstrap truncated episodes), got {mode}; build it with "
            "rlkit.envs.make_vec_env or pass autoreset_mode=AutoresetMode.SAME_STEP"
        )
