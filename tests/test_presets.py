"""Every shipped preset entry (``rlkit/presets/<agent>.yaml``) is a valid configuration of its
agent: known keys only, hyperparameters within their rules, primitive specs naming registered
primitives with arguments they take. A preset is what ``rlkit train ALGO --env ENV`` runs, so
a typo in one would only show when a user picks that env."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

import rlkit.agents  # noqa: F401  (registers the agents)
from rlkit.config.hyperparameters import make_config
from rlkit.configurable import registry_of
from rlkit.prototypes import AGENTS
from rlkit.prototypes.settings import RUN_KEYS, primitive_keys
from rlkit.registry import arguments_of

PRESETS = resources.files("rlkit").joinpath("presets")


def entries() -> list[Any]:
    out = []
    for path in sorted(PRESETS.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yaml"):
            continue
        algo = path.name.removesuffix(".yaml")
        for key, entry in (yaml.safe_load(path.read_text()) or {}).items():
            out.append(pytest.param(algo, key, entry, id=f"{algo}:{key}"))
    return out


ENTRIES = entries()
#: nested spec keys -> their primitive kind
NESTED_KINDS = {"encoder": "encoder", "distribution": "distribution"}


def check_spec(kind: str, spec: Any, where: str) -> type:
    """The class a spec (an id or ``{"id": ..., **arguments}``) names; fails on an unknown id
    or argument (nested encoder/distribution specs checked too)."""
    registry = registry_of(kind)
    name = spec if isinstance(spec, str) else spec.get("id")
    cls = registry.lookup(name)
    assert cls is not None, f"{where}: unknown {kind} {name!r}"
    if isinstance(spec, dict):
        allowed = arguments_of(cls) or {}
        unknown = set(spec) - {"id"} - set(allowed)
        assert not unknown, f"{where}: {kind} {name!r} takes no {sorted(unknown)}"
        for key, nested in spec.items():
            if key in NESTED_KINDS and isinstance(nested, str | dict):
                check_spec(NESTED_KINDS[key], nested, f"{where}.{key}")
    return cls


def test_the_presets_are_found() -> None:
    assert len(ENTRIES) >= 100
    assert {p.values[0] for p in ENTRIES} >= {"ppo", "sac", "dqn", "td3", "trpo", "a2c"}


@pytest.mark.parametrize(("algo", "key", "entry"), ENTRIES)
def test_every_preset_entry_is_a_valid_configuration(algo: str, key: str, entry: Any) -> None:
    where = f"rlkit/presets/{algo}.yaml [{key}]"
    agent_cls = AGENTS.lookup(algo)
    assert agent_cls is not None, f"{where}: no agent {algo!r}"
    assert isinstance(entry, dict) and entry, f"{where}: an entry is a mapping of settings"
    prims = primitive_keys(agent_cls)
    hyper = {k: v for k, v in entry.items() if k not in RUN_KEYS and k not in prims}
    make_config(agent_cls.Config, None, hyper, where)  # unknown names and rules
    for name in prims:
        if name in entry and name != "policy":
            check_spec(name, entry[name], f"{where}.{name}")
    if "policy" in entry:
        cls = check_spec("policy", entry["policy"], f"{where}.policy")
        base = getattr(agent_cls, "policy_class", None)
        if base is not None:
            assert issubclass(cls, base), f"{where}: {cls.__name__} is not a {base.__name__}"
    assert isinstance(entry.get("num_envs", 1), int) and entry.get("num_envs", 1) >= 1
    assert isinstance(entry.get("total_steps", 1), int) and entry.get("total_steps", 1) >= 1


def test_off_policy_anneal_lr_decays_every_optimizer_linearly() -> None:
    """``anneal_lr``: before each round of updates (after its steps were collected) the rate
    is ``lr * (1 - step / total)`` for every optimizer (SAC: actor, critic and temperature),
    logged as ``train/lr``."""
    from rlkit.agents import SAC
    from rlkit.envs import make_vec_env

    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    agent = SAC(
        env, seed=0, lr=1e-3, anneal_lr=True, learning_starts=50, train_freq=50,
        hidden_sizes=[8], batch_size=16, log_interval=100,
    )  # fmt: skip
    rows: list[float] = []

    def record(agent: Any, metrics: dict[str, float]) -> None:
        rows.append(metrics["train/lr"])

    agent.train(400, progress_bar=False, callbacks=[record])
    # the last round of each 100-step iteration updates after steps 100, 200, 300, 400 of 400
    assert rows == pytest.approx([1e-3 * (1 - s / 400) for s in (100, 200, 300, 400)])
    for opt in agent.optimizers().values():
        assert opt.param_groups[0]["lr"] == 0.0
        assert opt.param_groups[0]["initial_lr"] == 1e-3
    env.close()


def test_an_entry_for_another_version_of_the_env_applies() -> None:
    """``tqc`` keys its MuJoCo entries by the zoo's ``-v4`` ids: ``Hopper-v5`` gets Hopper-v4's
    (not the family or ``default``); an exact id still wins, an unversioned one falls through."""
    from rlkit.config.presets import load_preset

    hopper = load_preset("tqc", "Hopper-v5")
    assert hopper["top_quantiles_to_drop_per_net"] == 5 and hopper["n_critics"] == 2
    assert load_preset("sac", "Hopper-v4") == load_preset("sac", "Hopper-v5")
    assert load_preset("ppo", "CartPole-v0")["num_steps"] == 32
    assert (
        load_preset("ppo", "NoSuchEnv-v3")
        == load_preset("ppo", None)
        == {
            "num_envs": 8,
            "total_steps": 1_000_000,
        }
    )


def test_actor_critic_ortho_init_false_keeps_pytorch_default_init() -> None:
    """``ortho_init=False`` (the zoo's MuJoCo PPO setting): every trunk and head layer has
    nn.Linear's default init (uniform within 1/sqrt(fan_in)), the action head is not scaled
    down to gain 0.01."""
    import torch
    from gymnasium import spaces

    from rlkit.policies import ActorCritic

    obs = spaces.Box(-1.0, 1.0, (300,))
    act = spaces.Box(-1.0, 1.0, (4,))
    torch.manual_seed(0)
    default = ActorCritic(obs, act, hidden_sizes=[256, 256])
    plain = ActorCritic(obs, act, hidden_sizes=[256, 256], ortho_init=False)
    for layer in (plain.actor_trunk[0], plain.critic_trunk[2], plain.action_head):
        bound = 1 / layer.in_features**0.5
        assert layer.weight.abs().max() <= bound
        assert layer.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.1)
    assert default.action_head.weight.abs().max() < 0.01 < plain.action_head.weight.abs().max()
    # orthogonal rows with gain sqrt 2 have norm sqrt 2; default-init rows about 0.58
    assert default.actor_trunk[0].weight.norm(dim=1).mean().item() == pytest.approx(
        2**0.5, rel=1e-3
    )
    assert plain.actor_trunk[0].weight.norm(dim=1).mean() < 1.0


def test_presets_page_matches_the_files() -> None:
    """docs/presets.md is generated from the preset files (with their source comments)."""
    from pathlib import Path

    from rlkit.config.presets import presets_markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "presets.md"
    assert page.read_text() == presets_markdown() + "\n", (
        "docs/presets.md is out of date: run `rlkit list --presets > docs/presets.md`"
    )


def test_preset_sources_read_the_comments() -> None:
    from rlkit.config.presets import preset_sources

    text = (
        "# header\ndefault:\n  num_envs: 1\nHopper-v5:  # the zoo's\n  # Hopper-v4 setting\n"
        "  lr: 0.1  # not a source\nfamily:atari:  # zoo atari\n  lr: 1\nPlain-v0:\n  lr: 2\n"
    )
    assert preset_sources(text) == {
        "default": "",
        "Hopper-v5": "the zoo's Hopper-v4 setting",
        "family:atari": "zoo atari",
        "Plain-v0": "",
    }
