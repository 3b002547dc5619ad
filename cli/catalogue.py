"""The primitive catalogue (``docs/catalogue.md``), generated from the registries."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

from rlkit.registry import REGISTRIES

#: (registry kind, section title, package that fills the registry)
SECTIONS = (
    ("encoder", "Encoders", "rlkit.encoders"),
    ("policy", "Policies", "rlkit.policies"),
    ("distribution", "Distributions", "rlkit.distributions"),
    ("augmentation", "Augmentations", "rlkit.augmentations"),
    ("storage", "Storages", "rlkit.storages"),
    ("replay_store", "Replay stores", "rlkit.storages"),
    ("replay_sampler", "Replay samplers", "rlkit.storages"),
    ("replay_relabeler", "Replay relabelers", "rlkit.storages"),
    ("intrinsic_reward", "Intrinsic rewards", "rlkit.rewards"),
    ("reward_model", "Reward models", "rlkit.reward_models"),
    ("loss_term", "Loss terms", "rlkit.losses"),
    ("env_family", "Env families", "rlkit.envs.builtin_families"),
    ("agent", "Agents", "rlkit.agents"),
)

#: how each kind is passed to an agent, for the one-line use column.
_USE = {
    "encoder": "PPO(env, encoder={spec})",
    "policy": "PPO(env, policy={spec})",
    "distribution": "PPO(env, distribution={spec})",
    "augmentation": "PPO(env, augmentation={spec})",
    "storage": "PPO(env, storage={spec})",
    "replay_store": "ReplayStorage(..., store={spec})",
    "replay_sampler": "ReplayStorage(..., sampler={spec})",
    "replay_relabeler": "ReplayStorage(..., her={spec})",
    "intrinsic_reward": "PPO(env, intrinsic_reward={spec})",
    "reward_model": "REWARD_MODELS.build({spec}).score(TextBatch(prompts, completions, ...))",
    "loss_term": "def loss_terms(self): return [..., LOSS_TERMS.build({spec})]",
    "env_family": "rlkit train ppo --env ID --preprocessing '{{...}}' (install rlkit[{extra}])",
    "agent": "rlkit train {id} --env ENV",
}

#: the agents a policy's use line prefers among those that train it equally closely.
_REFERENCE = ("DQN", "SAC", "TD3", "PPO")

#: constructor arguments the agent fills in itself (not listed as user arguments).
_INJECTED = {
    "self",
    "observation_space",
    "action_space",
    "num_envs",
    "num_steps",
    "device",
    "store_next_obs",
    "action_shape",
    "action_dtype",
    "env",
    "config",
}


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    first = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    return first.replace("|", "\\|")


def _arguments(cls: type, kind: str) -> str:
    if kind == "agent":
        config = getattr(cls, "Config", None)
        own = [f.name for f in dataclasses.fields(config)] if config is not None else []
        names = [n for n in own if n not in ("seed", "device", "num_threads")]
        return f"{len(names)} hyperparameters (`{cls.__name__}Config`)" if names else ""
    params = inspect.signature(cls).parameters.values()  # the (captured) constructor
    shown = []
    for p in params:
        if p.name in _INJECTED or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = "" if p.default is inspect.Parameter.empty else f"={p.default!r}"
        shown.append(f"`{p.name}{default}`")
    return ", ".join(shown)


def _policy_agent(cls: type) -> str:
    """The class name of an agent that trains policies of ``cls``: the off-policy agent whose
    ``policy_class`` is the closest base of ``cls``, else PPO (actor-critics, on-policy)."""
    agents = REGISTRIES["agent"]
    best: tuple[int, int, str] | None = None
    for _, agent in agents.items():
        base = getattr(agent, "policy_class", None)
        if not agent.__module__.startswith("rlkit.") or base is None or base not in cls.__mro__:
            continue
        # closest base first; among equals, the reference agents
        key = (cls.__mro__.index(base), int(agent.__name__ not in _REFERENCE), agent.__name__)
        if best is None or key < best:
            best = key
    return best[2] if best is not None else "PPO"


def render_catalogue() -> str:
    """Markdown listing every primitive and agent rlkit ships (registered from ``rlkit.*``
    modules) with its summary, arguments and a one-line use (what ``docs/catalogue.md`` holds;
    a test keeps the two equal)."""
    lines = [
        "# Catalogue",
        "",
        "Every registered primitive and agent. Generated from the registries by "
        "`rlkit list --markdown > docs/catalogue.md`; a test fails when this page and the "
        "code disagree. The summary is the first paragraph of the class docstring (with the "
        "paper); arguments are the constructor's, without those the agent fills in (spaces, "
        "rollout shape, device).",
        "",
    ]
    for kind, title, module in SECTIONS:
        importlib.import_module(module)
        registry = REGISTRIES[kind]
        lines += [
            f"## {title}",
            "",
            "| id | class | summary | arguments | use |",
            "| --- | --- | --- | --- | --- |",
        ]
        if kind == "policy":
            importlib.import_module("rlkit.agents")  # who trains which policy
        for key, cls in registry.items():
            if not cls.__module__.startswith("rlkit."):  # the user's own registrations
                continue
            use = _USE[kind].format(spec=f'"{key}"', id=key, extra=getattr(cls, "extra", ""))
            if kind == "policy":
                use = use.replace("PPO(", f"{_policy_agent(cls)}(", 1)
            lines.append(
                f"| `{key}` | `{cls.__name__}` | {_summary(cls)} | {_arguments(cls, kind)} | "
                f"`{use}` |"
            )
        lines.append("")
    lines += _wrappers()
    return "\n".join(lines)


def _wrappers() -> list[str]:
    """The registered env wrappers (``--wrapper ID``), which are not primitives."""
    from rlkit.envs.wrapper_registry import wrapper_factory, wrapper_ids

    lines = [
        "## Env wrappers",
        "",
        "| id | wraps with | use |",
        "| --- | --- | --- |",
    ]
    for key in wrapper_ids():
        factory = wrapper_factory(key)
        name = f"{factory.__module__}.{getattr(factory, '__qualname__', key)}"
        lines.append(f"| `{key}` | `{name}` | `rlkit train ALGO --env ENV --wrapper {key}` |")
    lines.append("")
    return lines
