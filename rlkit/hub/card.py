"""The model card of a shared agent and the ``rlkit train`` command that reproduces it.

Pure functions of the agent (no network, no huggingface_hub needed except for the card's
metadata block, which :func:`model_card` builds with ``huggingface_hub.ModelCardData``).
"""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from rlkit.config import config_to_dict
from rlkit.configurable import to_json
from rlkit.envs import env_spec_of
from rlkit.types import AgentLike
from rlkit.version import __version__

#: hyperparameters that describe the machine, not the run; left out of the reproduce command.
MACHINE_SETTINGS = ("device", "num_threads")
#: primitives ``rlkit train`` accepts as a flag (an id or a ``{id: ..., ...}`` spec). The policy
#: is rebuilt from the hyperparameters; ``config.json`` records its exact spec.
CLI_PRIMITIVES = ("augmentation", "intrinsic_reward")

FILE_DESCRIPTIONS = {
    "config.json": "what to rebuild: agent id, hyperparameters, primitive specs, spaces, env",
    "model.safetensors": "weights and buffers (policy, normalisation statistics, ...)",
    "training_state.safetensors": "optimizer state and the torch RNG state (to fine-tune on)",
    "README.md": "this card",
}


def require_hub() -> Any:
    """The ``huggingface_hub`` module, or an ImportError that says how to install it."""
    try:
        return importlib.import_module("huggingface_hub")
    except ImportError as e:
        raise ImportError(
            "sharing on the Hugging Face Hub needs huggingface_hub: install it with "
            "`pip install rlkit[hub]`"
        ) from e


def _yaml_value(value: Any) -> str:
    """``value`` as a one-line YAML value that the CLI's ``parse_value`` reads back."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, sort_keys=False)
    lines = text.strip().splitlines()
    if len(lines) > 1 and lines[-1] == "...":
        lines = lines[:-1]
    return " ".join(line.strip() for line in lines)


def _is_plain(spec: Any) -> bool:
    """True for JSON without rlkit's tagged values (spaces, nested primitives, dicts)."""
    if isinstance(spec, Mapping):
        return not any(str(k).startswith("__") for k in spec) and all(
            _is_plain(v) for v in spec.values()
        )
    if isinstance(spec, list):
        return all(_is_plain(v) for v in spec)
    return True


def train_command_and_notes(agent: AgentLike) -> tuple[str | None, list[str]]:
    """The ``rlkit train`` line that retrains ``agent`` (None if there is none) and what the
    line does not capture.

    The line names every hyperparameter explicitly (so per-env presets cannot change them),
    plus the env id, ``--num-envs``, ``--seed`` and ``--total-steps``. ``device`` and
    ``num_threads`` are left out (they describe the machine)."""
    agent_id = type(agent).registry_id
    spec = env_spec_of(agent.env)
    if agent_id is None:
        return None, [
            f"{type(agent).__name__} is not a registered agent, so `rlkit train` cannot build it"
        ]
    if spec is None or spec.env_id is None:
        return None, [
            "the agent was trained on an env given as a callable (or not built by "
            "rlkit.envs.make_vec_env), which `rlkit train` cannot rebuild"
        ]
    notes: list[str] = []
    args = ["rlkit", "train", agent_id, "--env", spec.env_id, "--num-envs", str(spec.num_envs)]
    seed = agent.config.seed
    if seed is not None:
        args += ["--seed", str(seed)]
    if spec.seed != seed:
        notes.append(
            f"the training env was seeded with {spec.seed} and the agent with {seed}; "
            "`--seed` sets both to the same value"
        )
    target = int(getattr(agent, "_target_steps", 0))
    total = target if 0 < target <= agent.global_step else agent.global_step
    args += ["--total-steps", str(total)]
    if spec.asynchronous:
        args.append("--async")
    if spec.env_kwargs:
        try:
            args += ["--env-kwargs", _yaml_value(dict(spec.env_kwargs))]
        except yaml.YAMLError:  # a value YAML cannot write (an object, a tuple)
            notes.append("the env was made with env_kwargs that have no command-line form")
    if spec.wrappers:
        names = ", ".join(getattr(w, "__name__", type(w).__name__) for w in spec.wrappers)
        notes.append(f"the env was wrapped ({names}); the command does not add wrappers")
    for key, value in config_to_dict(agent.config).items():
        if key != "seed" and key not in MACHINE_SETTINGS:
            args += [f"--{key.replace('_', '-')}", _yaml_value(value)]
    for name, primitive in agent.primitives().items():
        if name == "policy" or primitive is None:
            continue
        prim_spec = {k: v for k, v in to_json(primitive, name).items() if k != "__primitive__"}
        if name in CLI_PRIMITIVES and prim_spec.get("id") is not None and _is_plain(prim_spec):
            args += [f"--{name.replace('_', '-')}", _yaml_value(prim_spec)]
        else:
            notes.append(
                f"the {name} ({type(primitive).__name__}) is recorded in config.json but has "
                "no command-line form"
            )
    return shlex.join(args), notes


def train_command(agent: AgentLike) -> str | None:
    """The ``rlkit train`` line that retrains ``agent`` (see :func:`train_command_and_notes`)."""
    return train_command_and_notes(agent)[0]


def _class_import(agent: AgentLike) -> tuple[str, str]:
    cls = type(agent)
    module = cls.__module__
    if module.startswith("rlkit.agents."):
        module = "rlkit.agents"
    return module, cls.__name__


def model_card(
    agent: AgentLike,
    eval_results: Mapping[str, float] | None,
    *,
    repo_id: str | None = None,
    reproduce_command: str | None = None,
    files: tuple[str, ...] = tuple(FILE_DESCRIPTIONS),
) -> str:
    """The README.md of a shared agent: YAML metadata (library, tags, model-index with the
    mean reward as ``"mean +/- std"``) and a body (what it is, evaluation, usage, the command
    that reproduces it, hyperparameters, files).

    ``eval_results`` is what :meth:`AgentLike.evaluate` returns (``return_mean``, ``return_std``,
    optionally ``episodes`` and ``length_mean``); None leaves the model-index out.
    ``reproduce_command`` defaults to :func:`train_command`."""
    hub = require_hub()
    cls_name = type(agent).__name__
    agent_id = type(agent).registry_id
    spec = env_spec_of(agent.env)
    env_id = spec.env_id if spec is not None else None
    where = repo_id or "USER/REPO"
    mean_reward: str | None = None
    if eval_results is not None:
        missing = {"return_mean", "return_std"} - set(eval_results)
        if missing:
            raise ValueError(f"eval_results lacks {sorted(missing)} (pass agent.evaluate()'s dict)")
        mean_reward = f"{eval_results['return_mean']:.2f} +/- {eval_results['return_std']:.2f}"

    tags = ["reinforcement-learning", "rlkit"]
    tags += [t for t in (agent_id, env_id) if t and t not in tags]
    card_kwargs: dict[str, Any] = {"library_name": "rlkit", "tags": tags}
    if mean_reward is not None and env_id is not None:
        card_kwargs["model_name"] = cls_name
        card_kwargs["eval_results"] = [
            hub.EvalResult(
                task_type="reinforcement-learning",
                task_name="reinforcement-learning",
                dataset_type=env_id,
                dataset_name=env_id,
                metric_type="mean_reward",
                metric_name="mean_reward",
                metric_value=mean_reward,
                verified=False,
            )
        ]
    metadata = hub.ModelCardData(**card_kwargs).to_yaml()

    env_text = f"`{env_id}`" if env_id else "a custom environment"
    lines = [
        "---",
        metadata,
        "---",
        "",
        f"# {cls_name} agent on {env_id or 'a custom environment'}",
        "",
        f"A {cls_name} agent (`{agent_id}`) trained on {env_text} for {agent.global_step:,} "
        f"environment steps ({agent.num_updates:,} updates) with rlkit {__version__}. The "
        "weights are safetensors and the settings JSON: loading it unpickles nothing and "
        "imports no code unless you pass `trust_code=True`.",
        "",
        "## Evaluation",
        "",
    ]
    if eval_results is None:
        lines.append("Not evaluated when it was shared.")
    else:
        episodes = eval_results.get("episodes")
        count = f" over {int(episodes)} episodes" if episodes is not None else ""
        length = eval_results.get("length_mean")
        lines.append(
            f"Episode return{count}: **{mean_reward}** (mean +/- standard deviation)"
            + (f"; mean episode length {length:.1f}." if length is not None else ".")
        )
    module, name = _class_import(agent)
    env_module = env_id.partition(":")[0] if env_id is not None and ":" in env_id else None
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        f"from {module} import {name}",
        "",
        f'agent = {name}.from_pretrained("{where}")'
        + ("  # rebuilds the recorded env" if env_id else "  # pass env=... (custom env)"),
        "obs, _ = agent.env.reset(seed=0)" if env_id else "obs, _ = env.reset(seed=0)",
        "actions = agent.act(obs, deterministic=True)",
        "print(agent.evaluate(episodes=10))",
        "```",
        "",
        f'`rlkit.hub.from_pretrained("{where}")` loads it without naming the class once the '
        f"module that registers it is imported (`import {module}`). Files are cached by "
        "huggingface_hub; with `HF_HUB_OFFLINE=1` the agent loads from that cache "
        "without network access. Keyword arguments override hyperparameters "
        '(`device="cpu"`).',
    ]
    if env_module is not None:
        lines += [
            "",
            f"The env id `{env_id}` imports the module `{env_module}` to make "
            "the env, so loading needs `trust_code=True`: pass it only if you trust this "
            "repo, or pass `env=` an env you made yourself.",
        ]
    lines += [
        "",
        "## Reproduce",
        "",
    ]
    notes: list[str] = []
    if reproduce_command is None:
        reproduce_command, notes = train_command_and_notes(agent)
    if reproduce_command is None:
        lines.append("No `rlkit train` command reproduces this agent:")
    else:
        lines += [
            "```bash",
            reproduce_command,
            "```",
            "",
            "`config.json` records the exact policy the agent was built with; the command "
            "builds the default one for these hyperparameters.",
        ]
        if notes:
            lines += ["", "The command does not capture everything:"]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", "## Hyperparameters", "", "| name | value |", "| --- | --- |"]
    for key, value in config_to_dict(agent.config).items():
        lines.append(f"| `{key}` | `{_yaml_value(value)}` |")
    lines += ["", "## Files", "", "| file | content |", "| --- | --- |"]
    for file in files:
        lines.append(f"| `{file}` | {FILE_DESCRIPTIONS.get(file, '')} |")
    lines.append("")
    return "\n".join(lines)
