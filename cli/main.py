"""The ``rlkit`` command: train, tune, eval, list, export, plot, compare.

The CLI is the top layer (``cli -> tune -> agents -> prototypes -> core``): it imports the reference
agents, which fills the agent registry the commands look ids up in.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import shutil
import sys
import typing
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import yaml

import rlkit.agents  # noqa: F401  (registers the reference agents)
from rlkit import runtime
from rlkit.checkpoint import find_checkpoint, read_config
from rlkit.config import coerce, parse_value
from rlkit.config.describe import format_config_help
from rlkit.config.hyperparameters import UnknownHyperparameterError
from rlkit.config.presets import load_preset
from rlkit.config.rules import SEED, Rule, Satisfies, count, violations
from rlkit.configurable import from_json
from rlkit.device import resolve_device
from rlkit.envs.make import TEXT_PREFIX, check_env_id
from rlkit.evaluation import cli as evaluation_cli
from rlkit.export.parity import ParityError
from rlkit.plugins import forget_imported_plugins, import_plugins
from rlkit.prototypes import AGENTS, load_agent
from rlkit.prototypes.settings import (  # also re-exported for callers of rlkit.cli
    PRIMITIVE_KEYS,  # noqa: F401
    RUN_KEYS,
    make_run_env,
    primitive_keys,
    resolve_train_settings,
)
from rlkit.trust import reading
from rlkit.utils.files import write_bytes_atomic

from . import chat as chat_cli


def _agents() -> Any:
    """The agent registry, with the reference agents registered."""
    return AGENTS


class UsageError(Exception):
    """A command line that cannot be run as given (reported as one line, exit status 2)."""


#: what the commands report as one line ``rlkit: error: ...`` with exit status 2 (``-v``
#: re-raises them with the traceback): bad names, values, files and environments.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    UnknownHyperparameterError,
    ValueError,
    TypeError,
    KeyError,
    OSError,
    RuntimeError,
    ImportError,
    MemoryError,  # a replay buffer that does not fit (checked before allocating)
    ParityError,
    yaml.YAMLError,
    gymnasium.error.Error,
)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (multi-line messages joined with spaces)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def parse_overrides(tokens: Sequence[str], needs_value: Collection[str] = ()) -> dict[str, Any]:
    """``--key value`` / ``--key=value`` / ``--flag`` / ``--no-flag`` -> ``{key: value}``.
    A name in ``needs_value`` (a setting that is not true/false) given as a bare ``--flag``
    or ``--no-flag`` is a :class:`UsageError`."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--") or len(tok) == 2:
            raise UsageError(f"unexpected argument {tok!r}; options look like --name VALUE")
        name, eq, value = tok[2:].partition("=")
        key = name.replace("-", "_")
        if eq:
            out[key] = parse_value(value)
        elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            out[key] = parse_value(tokens[i + 1])
            i += 1
        elif key in needs_value:
            raise UsageError(f"--{name} needs a value: --{name} VALUE (or --{name}=VALUE)")
        elif key.startswith("no_"):
            if key[3:] in needs_value:
                raise UsageError(
                    f"--{name}: {key[3:]} is not a true/false setting; give it a value with "
                    f"--{name[3:]} VALUE"
                )
            out[key[3:]] = False
        else:
            out[key] = True
        i += 1
    return out


def _valued_names(agent_cls: Any) -> set[str]:
    """The option names of ``agent_cls`` that need a value (all but the true/false ones)."""
    config = agent_cls.Config
    hints = typing.get_type_hints(config)
    names = {f.name for f in dataclasses.fields(config) if hints[f.name] is not bool}
    return names | set(primitive_keys(agent_cls)) | (set(RUN_KEYS) - {"asynchronous"})


#: the run settings' types and rules (hyperparameters are checked by the agent's config).
RUN_TYPES: dict[str, Any] = {
    "env": str,
    "num_envs": int,
    "total_steps": int,
    "seed": int | None,
    "out": str,
    "asynchronous": bool,
    "checkpoint_every": int | None,
    "eval_episodes": int,
}
RUN_RULES: dict[str, Rule] = {
    "env": Satisfies(
        bool, "a gymnasium env id ('CartPole-v1') or a PettingZoo env ('mpe2:simple_spread_v3')"
    ),
    "num_envs": count(),
    "total_steps": count(),
    "seed": SEED,
    "env_kwargs": Satisfies(
        lambda v: isinstance(v, Mapping), "a mapping ('{max_episode_steps: 200}')", none=True
    ),
    "wrappers": Satisfies(
        lambda v: isinstance(v, list) and all(isinstance(w, str | Mapping) for w in v),
        "a list of registered wrapper ids or {id: ...} mappings",
        none=True,
    ),
    "preprocessing": Satisfies(
        lambda v: isinstance(v, bool | Mapping),
        "true, false or a mapping of the env family's options ('{frame_stack: 2}')",
    ),
    "self_play": Satisfies(
        lambda v: isinstance(v, bool | Mapping),
        "true or a mapping of the options ('{snapshot_every: 10, strategy: uniform}', "
        "'{mode: alternate}')",
        none=True,
    ),
    "checkpoint_every": count(none=True),
    "eval_episodes": count(),
}


def parse_wrapper(text: str) -> str | dict[str, Any]:
    """``--wrapper`` value: an id (``frame_stack``) or a YAML/JSON mapping with an ``id``."""
    if not text.lstrip().startswith("{"):
        return text
    value = yaml.safe_load(text)
    if not isinstance(value, dict) or "id" not in value:
        raise UsageError(f"--wrapper {text!r}: a mapping needs an 'id' ('{{id: frame_stack}}')")
    return value


def _switch_or_mapping(flag: str, text: str, allowed: str) -> bool | dict[str, Any]:
    """A flag's value that is off (none/off/false/no), on (default/on/true/yes) or a YAML
    mapping of options; ``allowed`` says what to give instead."""
    lowered = text.strip().lower()
    if lowered in ("none", "off", "false", "no"):
        return False
    if lowered in ("default", "on", "true", "yes"):
        return True
    value = yaml.safe_load(text) if lowered.startswith("{") else None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} {text!r}: give {allowed}")
    return value


def parse_preprocessing(text: str) -> bool | dict[str, Any]:
    """``--preprocessing`` value: none/off/false, default/true, or a mapping of options."""
    allowed = "none, default or a mapping of the env family's options ('{frame_stack: 2}')"
    return _switch_or_mapping("--preprocessing", text, allowed)


def parse_self_play(text: str) -> bool | dict[str, Any]:
    """``--self-play`` value: on/true (league), ``alternate`` (the learner plays both seats),
    off/false, or a mapping of the options."""
    if text.strip().lower() == "alternate":
        return {"mode": "alternate"}
    allowed = (
        "on, alternate, off or a mapping of the league's options "
        "('{snapshot_every: 10, strategy: uniform, fixed: {random: 0.1}}')"
    )
    return _switch_or_mapping("--self-play", text, allowed)


def check_options(values: Mapping[str, Any], rules: Mapping[str, Rule], what: str) -> None:
    """One ``UsageError`` naming each of ``values`` its rule refuses (``what``: "run setting",
    "option"), its value and what is allowed."""
    bad = violations(values, rules)
    if bad:
        shown = ", ".join(f"{name}={values[name]!r}" for name, _ in bad)
        allowed = "; ".join(f"{name} must be {text}" for name, text in bad)
        raise UsageError(f"invalid {what}(s): {shown} ({allowed})")


def check_run_settings(run: dict[str, Any]) -> None:
    """Convert the run settings to their types and check them (in place), naming the bad ones;
    before anything is built or any file is touched."""
    for key, annotation in RUN_TYPES.items():
        if key in run:
            run[key] = coerce(run[key], annotation, f"run setting {key}")
    check_options(run, RUN_RULES, "run setting")


def _default_out(algo: str, env_id: str) -> Path:
    base = Path("runs") / f"{algo}-{env_id.replace('/', '_')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def resolved_config(
    algo: str, run: Mapping[str, Any], config: Any, prims: Mapping[str, Any], total: int
) -> str:
    """The run's full configuration as YAML, usable as ``rlkit train ALGO --config FILE``:
    the run settings, every hyperparameter (defaults, preset, file and flags resolved) and the
    primitives given by id or spec."""
    settings: dict[str, Any] = {"env": run["env"], "num_envs": run.get("num_envs", 8)}
    settings["total_steps"] = total
    for key in ("env_kwargs", "wrappers"):
        if run.get(key):
            settings[key] = run[key]
    for key in ("preprocessing", "self_play"):
        if key in run:
            settings[key] = run[key]
    values = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    specs = json.loads(json.dumps(dict(prims), default=str))
    body = {**settings, **values, **specs}
    header = f"# rlkit train {algo}: the resolved configuration of this run\n"
    return header + yaml.safe_dump(body, sort_keys=False)


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    cli = parse_overrides(extra, _valued_names(AGENTS.get(args.algo)))
    for key in ("env", "num_envs", "total_steps", "seed", "out"):
        value = getattr(args, key)
        if value is not None:
            cli[key] = value
    if args.asynchronous:
        cli["asynchronous"] = True
    if args.wrappers:
        cli["wrappers"] = [parse_wrapper(w) for w in args.wrappers]
    if args.preprocessing is not None:
        cli["preprocessing"] = parse_preprocessing(args.preprocessing)
    if args.self_play is not None:
        cli["self_play"] = parse_self_play(args.self_play)
    if args.resume:
        # The checkpoint's env and settings stand unless a file or flag says otherwise.
        saved_env = read_config(find_checkpoint(args.resume)).get("env") or {}
        # what the checkpoint names may import code only with --trust-code (rlkit.trust)
        with reading(f"checkpoint {find_checkpoint(args.resume)}", args.trust_code):
            if "env" not in cli and isinstance(saved_env.get("id"), str):
                check_env_id(saved_env["id"])
            for key, saved_key in (
                ("env", "id"),
                ("num_envs", "num_envs"),
                ("seed", "seed"),
                ("env_kwargs", "kwargs"),
                ("wrappers", "wrappers"),
                ("preprocessing", "preprocessing"),
                ("self_play", "self_play"),
            ):
                if key not in cli and saved_env.get(saved_key) not in (None, {}):
                    cli[key] = from_json(saved_env[saved_key])
    agent_cls, run, hyper, prims = resolve_train_settings(
        args.algo, cli, args.config, use_preset=not args.resume
    )
    if "env" not in run:
        raise UsageError("--env ENV_ID is required (or `env:` in the config file)")
    check_run_settings(run)
    if str(run["env"]).startswith(TEXT_PREFIX) and isinstance(prims.get("model"), str):
        # a prompt file's tokens are the model's: --model names the tokenizer too
        run["env_kwargs"] = {"tokenizer": prims["model"], **(run.get("env_kwargs") or {})}
    out = Path(run["out"]) if "out" in run else _default_out(args.algo, str(run["env"]))
    resume_dir = find_checkpoint(args.resume).resolve() if args.resume else None
    in_place = resume_dir is not None and out.resolve() in (resume_dir, *resume_dir.parents)
    replace = out.exists() and any(out.iterdir()) and not in_place
    if replace and not args.overwrite:
        raise UsageError(
            f"run directory {out} already exists; choose another --out or pass --overwrite to "
            "replace it"
        )
    env = make_run_env(run)
    try:
        if "num_threads" not in hyper:  # the CLI's measured thread policy (rlkit.runtime)
            hyper["num_threads"] = runtime.default_num_threads(
                resolve_device(hyper.get("device", "auto"))
            )
        if args.retain_freed_memory:
            runtime.retain_freed_memory()
        if args.resume:
            agent = agent_cls.load(
                args.resume, env=env, trust_code=args.trust_code, **hyper, **prims
            )
        else:
            agent = agent_cls(env, **hyper, **prims)
    except BaseException:
        env.close()
        raise
    if replace:  # only now: a run that cannot start leaves the old one as it was
        shutil.rmtree(out)
    total = int(run.get("total_steps", 1_000_000))
    resolved = resolved_config(args.algo, run, agent.config, prims, total)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "config.yaml", resolved.encode())
    print(f"rlkit train {args.algo}: resolved config (saved to {out / 'config.yaml'}):")
    print(resolved, end="", flush=True)
    agent.train(
        total,
        run_dir=out,
        progress_bar=not args.no_progress,
        checkpoint_every=run.get("checkpoint_every"),
    )
    # Resuming a run in place continues its files and replaces final/ (atomically).
    final = agent.save(out / "final", overwrite=in_place)
    result = agent.evaluate(
        episodes=int(run.get("eval_episodes", 10)),
        deterministic=not args.eval_stochastic,
        max_episode_steps=args.eval_max_steps,
    )
    write_bytes_atomic(out / "eval.json", json.dumps(result, indent=2).encode())
    print(f"saved {final}")
    print(json.dumps({"eval": result}))
    env.close()
    return 0


def cmd_tune(args: argparse.Namespace, extra: list[str]) -> int:
    from rlkit.tune import tune

    overrides = parse_overrides(extra, _valued_names(AGENTS.get(args.algo)))
    try:
        _run_tune(tune, args, overrides)
    except KeyboardInterrupt:
        out = args.out or f"runs/tune-{args.algo}-{str(args.env).replace('/', '_')}"
        print(
            f"rlkit tune: interrupted; the study is kept in {out}: run the same command again "
            "to resume it",
            file=sys.stderr,
        )
        return 130
    return 0


def _run_tune(tune: Any, args: argparse.Namespace, overrides: dict[str, Any]) -> None:
    tune(
        args.algo,
        args.env,
        space=args.space,
        trials=args.trials,
        budget=args.budget,
        seeds=args.seeds,
        out=args.out,
        config=args.config,
        overrides=overrides,
        backend=args.backend,
        address=args.address,
        jobs=args.jobs,
        pruner=args.pruner,
        evals=args.evals,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
        top=args.top,
        eval_seeds=args.eval_seeds,
        start=args.start,
        plots=not args.no_plots,
    )


def cmd_eval(args: argparse.Namespace) -> int:
    options = {
        "--episodes": args.episodes,
        "--seed": args.seed,
        "--record-episodes": args.record_episodes,
    }
    if args.max_episode_steps is not None:
        options["--max-episode-steps"] = args.max_episode_steps
    check_options(  # before the agent is loaded
        options,
        {
            "--episodes": count(),
            "--seed": SEED,
            "--record-episodes": count(),
            "--max-episode-steps": count(),
        },
        "option",
    )
    if args.opponents:
        from rlkit.selfplay.league import PLAYERS

        for name in args.opponents:
            if name not in PLAYERS:
                raise UsageError(
                    f"--opponent {name!r}: unknown player; known: {', '.join(sorted(PLAYERS))}"
                )
    overrides = {"device": args.device} if args.device else {}
    agent = load_agent(args.path, trust_code=args.trust_code, **overrides)
    result = agent.evaluate(
        episodes=args.episodes,
        deterministic=not args.stochastic,
        seed=args.seed,
        max_episode_steps=args.max_episode_steps,
    )
    summary: dict[str, Any] = {
        "return_mean": result["return_mean"],
        "return_std": result["return_std"],
        "episodes": int(result["episodes"]),
        "length_mean": result["length_mean"],
        "truncated": int(result["truncated"]),
    }
    # multi-agent: the team's return and each agent's (rlkit.envs.agent_rows)
    summary.update({k: v for k, v in result.items() if k.startswith(("team_", "return_mean/"))})
    for opponent in args.opponents or ():
        from rlkit.prototypes.self_play import evaluate_against

        summary[f"vs_{opponent}"] = evaluate_against(
            agent, opponent, args.episodes, args.seed, not args.stochastic
        )
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{summary['episodes']} episodes: return {summary['return_mean']:.2f} "
            f"+/- {summary['return_std']:.2f}, length {summary['length_mean']:.1f}"
            + (f", {summary['truncated']} truncated" if summary["truncated"] else "")
            + (
                f", team return {summary['team_return_mean']:.2f}"
                if "team_return_mean" in summary
                else ""
            )
        )
        for opponent in args.opponents or ():
            rates = summary[f"vs_{opponent}"]
            print(
                f"vs {opponent}: {rates['win_rate']:.1%} won, {rates['draw_rate']:.1%} drawn, "
                f"{rates['loss_rate']:.1%} lost ({int(rates['games'])} games)"
            )
    if args.record:
        from rlkit.envs.recording import record_episodes

        info = record_episodes(
            agent,
            args.record,
            episodes=args.record_episodes,
            deterministic=not args.stochastic,
            seed=args.seed,
            max_episode_steps=args.max_episode_steps,
        )
        message = f"recorded {info.episodes} episode(s), {info.frames} frames to {info.path}"
        print(message, file=sys.stderr if args.json else sys.stdout)  # keep --json parseable
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rlkit.export.cli import run_export

    return run_export(args)


def cmd_list(args: argparse.Namespace) -> int:
    if args.markdown:
        from rlkit.cli.catalogue import render_catalogue

        print(render_catalogue())
        return 0
    if args.presets:
        from rlkit.config.presets import presets_markdown

        print(presets_markdown())
        return 0
    from rlkit.registry import REGISTRIES

    _agents()
    for module in (
        "encoders",
        "policies",
        "storages",
        "distributions",
        "augmentations",
        "rewards",
        "reward_models",
        "losses",
    ):
        importlib.import_module(f"rlkit.{module}")
    labels = {
        "agent": "agents",
        "encoder": "encoders",
        "policy": "policies",
        "storage": "storages",
        "replay_store": "replay stores",
        "replay_sampler": "replay samplers",
        "replay_relabeler": "replay relabelers",
        "distribution": "distributions",
        "augmentation": "augmentations",
        "intrinsic_reward": "intrinsic rewards",
        "reward_model": "reward models",
        "loss_term": "loss terms",
        "env_family": "env families",
    }
    importlib.import_module("rlkit.envs.builtin_families")
    for kind, label in labels.items():
        print(f"{label:<18} {', '.join(REGISTRIES[kind])}")
    from rlkit.envs.wrapper_registry import wrapper_ids

    print(f"{'env wrappers':<18} {', '.join(wrapper_ids())}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line ``rlkit: error: ...`` (exit status 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"rlkit: error: {message} (see `{self.prog} --help`)\n")


def train_help_epilog(argv: Sequence[str]) -> str | None:
    """For ``rlkit train ALGO [--env ENV] --help``: every hyperparameter of ALGO (type,
    default, meaning) and the preset that applies to ENV; None when ALGO is not a known id
    (the plain help then shows)."""
    args = list(argv)
    if "train" not in args or not {"-h", "--help"} & set(args):
        return None
    rest = args[args.index("train") + 1 :]
    algo = next((a for a in rest if not a.startswith("-")), None)
    env_id = None
    for i, arg in enumerate(rest):
        if arg == "--env" and i + 1 < len(rest):
            env_id = rest[i + 1]
        elif arg.startswith("--env="):
            env_id = arg.split("=", 1)[1]
    if algo is None or algo not in AGENTS:
        return None
    config = AGENTS.get(algo).Config
    lines = [
        f"hyperparameters of {algo} ({config.__name__}; any of them as a flag, e.g. "
        "--num-steps 64):",
        format_config_help(config),
        "",
    ]
    preset = load_preset(algo, env_id)
    where = f"rlkit/presets/{algo}.yaml"
    if env_id is None:
        lines.append(f"presets: {where} (pass --env ENV with --help to see the one that applies)")
    elif preset:
        settings = ", ".join(f"{k}={v!r}" for k, v in preset.items())
        lines.append(f"preset for --env {env_id} ({where}): {settings}")
    else:
        lines.append(f"no preset for --env {env_id} in {where}: the defaults above apply")
    return "\n".join(lines)


def build_parser(train_epilog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="rlkit", description="Train, evaluate and list agents.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub: Any = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train an agent and save it",
        description="Train ALGO on ENV. Any hyperparameter is a flag (--lr 5e-4, --num-steps 64); "
        "flags beat --config, which beats the built-in per-env preset. "
        "`rlkit train ALGO --help` lists ALGO's hyperparameters.",
        epilog=train_epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("algo", help="agent id (see `rlkit list`)")
    train.add_argument(
        "--env",
        help="gymnasium env id; Atari (ALE/Breakout-v5), MiniGrid, dm_control/..., MuJoCo and "
        "Box2D ids get their family's standard preprocessing (see --preprocessing)",
    )
    train.add_argument(
        "--wrapper",
        dest="wrappers",
        action="append",
        metavar="SPEC",
        help="registered env wrapper to apply, by id or as a mapping "
        "('{id: frame_stack, stack_size: 4}'); repeatable, applied in order (`rlkit list` "
        "shows the ids)",
    )
    train.add_argument(
        "--preprocessing",
        metavar="SPEC",
        help="the env family's preprocessing: 'none' to turn it off, or its options as a "
        "mapping ('{frame_stack: 2, clip_rewards: false}')",
    )
    train.add_argument(
        "--self-play",
        metavar="SPEC",
        dest="self_play",
        help="a turn-based PettingZoo game (--env pettingzoo.classic:tictactoe_v3) played from "
        "one seat against snapshots of the learner: 'on', or the league's options "
        "('{snapshot_every: 10, strategy: prioritized, fixed: {random: 0.1}}'); 'alternate': "
        "the learner plays both seats of a two-player zero-sum game, move by move (DQN, "
        "QR-DQN, IQN)",
    )
    train.add_argument("--num-envs", type=int, dest="num_envs")
    train.add_argument("--total-steps", type=int, dest="total_steps")
    train.add_argument("--seed", type=int)
    train.add_argument("--out", help="run directory (default runs/ALGO-ENV[-n])")
    train.add_argument("--config", help="YAML file of settings and hyperparameters")
    train.add_argument(
        "--resume",
        help="checkpoint or run directory to continue from (with --out inside that run, the "
        "run continues in place)",
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    train.add_argument(
        "--async", dest="asynchronous", action="store_true", help="step envs in subprocesses"
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    final_eval = train.add_mutually_exclusive_group()
    final_eval.add_argument(
        "--eval-deterministic",
        dest="eval_stochastic",
        action="store_false",
        default=False,
        help="the final evaluation acts with the policy's mode (default)",
    )
    final_eval.add_argument(
        "--eval-stochastic",
        dest="eval_stochastic",
        action="store_true",
        help="the final evaluation samples actions",
    )
    train.add_argument(
        "--eval-max-steps",
        type=_positive_int,
        dest="eval_max_steps",
        metavar="N",
        help="step cap of each final evaluation episode (default: the env's time limit, else "
        "108000)",
    )
    train.add_argument(
        "--retain-freed-memory",
        action="store_true",
        help="let glibc keep freed memory for reuse (fewer page faults per update; "
        "process-wide, see rlkit.runtime)",
    )
    _add_trust_flag(train)
    _add_import_flag(train)
    _add_tune_parser(sub)
    chat_cli.add_parser(sub)
    ev = sub.add_parser("eval", help="evaluate a saved agent")
    ev.add_argument("path", help="checkpoint or run directory")
    _add_import_flag(ev)
    ev.add_argument("--episodes", type=int, default=20)
    ev.add_argument("--seed", type=int)
    ev.add_argument("--device")
    acting = ev.add_mutually_exclusive_group()
    acting.add_argument(
        "--deterministic",
        dest="stochastic",
        action="store_false",
        default=False,
        help="act with the policy's mode (default)",
    )
    acting.add_argument(
        "--stochastic", dest="stochastic", action="store_true", help="sample instead of the mode"
    )
    ev.add_argument(
        "--max-episode-steps",
        type=int,
        dest="max_episode_steps",
        metavar="N",
        help="step cap of each episode (default: the env's time limit, else 108000); an "
        "episode that reaches it counts as truncated",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument(
        "--opponent",
        dest="opponents",
        action="append",
        metavar="NAME",
        help="self-play checkpoints: also play --episodes games against a fixed player "
        "(random, tictactoe_minimax) and report win/draw/loss rates (repeatable)",
    )
    ev.add_argument("--record", metavar="FILE", help="also record episodes to a .gif or .mp4")
    ev.add_argument(
        "--record-episodes",
        type=int,
        default=1,
        metavar="N",
        help="episodes to record (parallel envs are tiled into one view)",
    )
    _add_trust_flag(ev)
    export = sub.add_parser(
        "export",
        help="export a saved agent's acting path (onnx, torch, om)",
        description="Export the deterministic acting path of a checkpoint or run directory. "
        "Every export is checked against PyTorch on random observations unless --no-check.",
    )
    export.add_argument("path", help="checkpoint or run directory")
    _add_trust_flag(export)
    _add_import_flag(export)
    export.add_argument("--format", choices=("onnx", "torch", "om"), default="onnx")
    export.add_argument("-o", "--output", help="output file (default PATH/policy.<ext>)")
    export.add_argument(
        "--check",
        dest="check",
        action="store_true",
        default=True,
        help="verify parity against PyTorch and print the report (default)",
    )
    export.add_argument(
        "--no-check", dest="check", action="store_false", help="skip the parity check"
    )
    export.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    export.add_argument("--fp16", action="store_true", help="float16 weights (ONNX)")
    export.add_argument(
        "--soc-version",
        default="Ascend310P3",
        help="Ascend SoC for --format om (atc --soc_version)",
    )
    export.add_argument(
        "--max-batch",
        type=int,
        default=256,
        help="largest batch for --format om (dynamic batch sizes)",
    )
    evaluation_cli.add_parsers(sub)  # plot, compare
    lister = sub.add_parser("list", help="registered agents and primitives")
    lister.add_argument(
        "--markdown", action="store_true", help="the full catalogue (docs/catalogue.md)"
    )
    lister.add_argument(
        "--presets",
        action="store_true",
        help="every per-env preset with its source (docs/presets.md)",
    )
    return parser


def _add_import_flag(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE``: plugin modules with your envs and primitives (rlkit.plugins)."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import a module first (your envs, wrappers, primitives; the current directory "
        "is searched as with python -m); repeatable; recorded in checkpoints",
    )


def _plugin_prepass(argv: Sequence[str]) -> list[str]:
    """The ``--import`` modules of a command line, imported before the parser is built so
    agents and presets they register are known to it (and to ``--help``)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--import", dest="imports", action="append", default=[])
    known, _ = pre.parse_known_args(list(argv))
    return list(known.imports)


def _positive_int(text: str) -> int:
    """An argparse ``type`` for integer options that must be >= 1: a bad value is the usual
    one-line usage error naming the option and the value, before anything runs."""
    problem = count(integer=True).problem(parse_value(text))
    if problem is not None:
        raise argparse.ArgumentTypeError(f"must be {problem}, got {text!r}")
    return int(text)


def _add_trust_flag(parser: argparse.ArgumentParser) -> None:
    """``--trust-code``: let the checkpoint name code to import (see rlkit.trust)."""
    parser.add_argument(
        "--trust-code",
        dest="trust_code",
        action="store_true",
        help="allow the checkpoint to import code it names (an env id 'module:Env', a HER "
        "function 'module:function'); only for checkpoints you trust",
    )


def _add_tune_parser(sub: Any) -> None:
    tune = sub.add_parser(
        "tune",
        help="search hyperparameters (Optuna, or Ray Tune with --backend ray)",
        description="Search ALGO's hyperparameters on ENV. Each trial trains --budget env steps "
        "on each of --seeds seeds and scores the mean final evaluation return. The study lives "
        "in --out (study.db): run the same command again to resume it. Other --name VALUE "
        "flags set base hyperparameters, as with `rlkit train`. See docs/tuning.md.",
    )
    tune.add_argument("algo", help="agent id (see `rlkit list`)")
    tune.add_argument("--env", help="gymnasium env id")
    _add_import_flag(tune)
    tune.add_argument("--space", help="search space YAML (default: the agent's built-in space)")
    tune.add_argument("--trials", type=int, default=20, help="trials in the study (default 20)")
    tune.add_argument(
        "--budget", type=int, help="env steps per trial and seed (default: the preset's)"
    )
    tune.add_argument("--seeds", type=int, default=1, help="training seeds per trial (default 1)")
    tune.add_argument("--out", help="study directory (default runs/tune-ALGO-ENV)")
    tune.add_argument("--config", help="YAML file of base settings and hyperparameters")
    tune.add_argument("--backend", choices=("optuna", "ray"), default="optuna")
    tune.add_argument("--address", help="Ray cluster address to join (with --backend ray)")
    tune.add_argument("--jobs", type=int, default=1, help="trials run side by side (default 1)")
    tune.add_argument("--pruner", choices=("median", "halving", "none"), default="median")
    tune.add_argument(
        "--evals", type=int, default=5, help="evaluations per seed reported to the pruner"
    )
    tune.add_argument("--eval-episodes", type=int, default=10, dest="eval_episodes")
    tune.add_argument(
        "--seed", type=int, default=0, help="first training seed and the sampler's seed"
    )
    tune.add_argument(
        "--top", type=int, default=3, help="best trials re-evaluated on fresh seeds (0: none)"
    )
    tune.add_argument(
        "--eval-seeds", type=int, default=5, dest="eval_seeds", help="fresh seeds per re-evaluation"
    )
    tune.add_argument(
        "--start",
        help="YAML: parameter values (or a list of them) to try first, e.g. today's setting",
    )
    tune.add_argument("--no-plots", action="store_true", help="skip history.png/importance.png")


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    forget_imported_plugins()  # a checkpoint records this command's --import modules only
    try:
        import_plugins(_plugin_prepass(given))  # also makes the current directory importable
    except ImportError as e:
        if "-v" in given or "--verbose" in given:
            raise
        print(f"rlkit: error: {one_line(e)}", file=sys.stderr)
        return 2
    parser = build_parser(train_help_epilog(given))
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command not in ("train", "tune") and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "train":
            return cmd_train(args, extra)
        if args.command == "tune":
            return cmd_tune(args, extra)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "chat":
            return chat_cli.run(args, sys.stdin, sys.stdout)
        if args.command in ("plot", "compare"):
            return evaluation_cli.run(args)
        return cmd_list(args)
    except BrokenPipeError:  # e.g. `rlkit list | head -1`
        sys.stderr.close()
        return 0
    except USER_ERRORS as e:
        if args.verbose:
            raise
        print(f"rlkit: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM; training saved a checkpoint first
        if args.verbose:
            raise
        print(f"rlkit: {e or 'interrupted'}", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not a usage error: still one line; -v shows where
        if args.verbose:
            raise
        print(
            f"rlkit: error: unexpected {type(e).__name__}: {one_line(e)} (run with -v for the "
            "traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
