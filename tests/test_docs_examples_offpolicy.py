"""The Python examples of docs/off-policy.md and docs/agents.md run, and the hyperparameter
tables of those pages match the config dataclasses.

Examples are run in order, one namespace per page, in a temporary directory, with their step
counts shrunk (``train(N)`` and ``learning_starts=N`` divided by 200, batch sizes capped at 16,
``evaluate`` on 2 episodes), so they exercise every code path without training for real.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from pathlib import Path

import pytest

from rlkit import agents
from rlkit.prototypes import OffPolicyConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _shrink(code: str) -> str:
    def div(match: re.Match[str]) -> str:
        value = int(match.group(2).replace("_", ""))
        return f"{match.group(1)}{max(1, value // 200)}"

    code = re.sub(r"(\.train\((?:total_steps=)?)([\d_]+)", div, code)
    code = re.sub(r"(learning_starts=)([\d_]+)", div, code)
    code = re.sub(
        r"(batch_size=)([\d_]+)", lambda m: f"{m.group(1)}{min(16, int(m.group(2)))}", code
    )
    return re.sub(r"(episodes=)(\d+)", lambda m: f"{m.group(1)}{min(2, int(m.group(2)))}", code)


def _blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text())


def test_shrink_rewrites_step_counts() -> None:
    code = "a.train(15_000)\nb.train(total_steps=400)\nX(learning_starts=1000, batch_size=256)"
    assert (
        _shrink(code) == "a.train(75)\nb.train(total_steps=2)\nX(learning_starts=5, batch_size=16)"
    )


@pytest.mark.parametrize("page", ["off-policy.md", "agents.md"])
def test_python_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _blocks(page)
    assert len(blocks) >= 7, f"{page}: expected the examples, found {len(blocks)} python blocks"
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("__docs__")  # a real module: examples may define dataclasses
    monkeypatch.setitem(sys.modules, "__docs__", module)
    namespace: dict[str, object] = module.__dict__
    for i, block in enumerate(blocks):
        code = compile(_shrink(block), f"{page}[python block {i}]", "exec")
        exec(code, namespace)


# --------------------------------------------------------------------------- hyperparameter tables
ROW = re.compile(r"^\| `(\w+)` \| `([^`]*)` \|", re.MULTILINE)


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    nxt = re.search(r"^#{2,3} ", text[start + len(heading) + 1 :], re.MULTILINE)
    end = start + len(heading) + 1 + (nxt.start() if nxt else len(text))
    return text[start:end]


def _check_rows(section: str, config: type, where: str) -> int:
    fields = {f.name: f for f in dataclasses.fields(config)}
    rows = ROW.findall(section)
    for name, shown in rows:
        assert name in fields, f"{where}: {name} is not a field of {config.__name__}"
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        assert shown == repr(default), (
            f"{where}: {name} is documented as {shown}, but {config.__name__} says {default!r}"
        )
    return len(rows)


AGENT_CONFIGS = {
    "PPO": agents.PPOConfig,
    "A2C": agents.A2CConfig,
    "REINFORCE": agents.REINFORCEConfig,
    "TRPO": agents.TRPOConfig,
    "VMPO": agents.VMPOConfig,
    "DrAC": agents.DrACConfig,
    "DAAC": agents.DAACConfig,
    "PPG": agents.PPGConfig,
    "DQN": agents.DQNConfig,
    "PQN": agents.PQNConfig,
    "QRDQN": agents.QRDQNConfig,
    "C51": agents.C51Config,
    "IQN": agents.IQNConfig,
    "MDQN": agents.MDQNConfig,
    "Rainbow": agents.RainbowConfig,
    "RainbowIQN": agents.RainbowIQNConfig,
    "DDPG": agents.DDPGConfig,
    "TD3": agents.TD3Config,
    "SAC": agents.SACConfig,
    "RecurrentSAC": agents.RecurrentSACConfig,
    "R2D2": agents.R2D2Config,
    "TQC": agents.TQCConfig,
    "MPO": agents.MPOConfig,
    "REDQ": agents.REDQConfig,
    "CrossQ": agents.CrossQConfig,
    "SACDiscrete": agents.SACDiscreteConfig,
    "DrQv2": agents.DrQv2Config,
    "GRPO": agents.GRPOConfig,
    "RLOO": agents.RLOOConfig,
    "LMPPO": agents.LMPPOConfig,
}


@pytest.mark.parametrize("name", sorted(AGENT_CONFIGS))
def test_agent_page_defaults_match_the_dataclasses(name: str) -> None:
    text = (DOCS / "agents.md").read_text()
    section = _section(text, f"### {name}")
    assert _check_rows(section, AGENT_CONFIGS[name], f"agents.md#{name}") >= 1


def test_agent_page_lists_every_registered_off_policy_and_on_policy_agent() -> None:
    text = (DOCS / "agents.md").read_text()
    for name in AGENT_CONFIGS:
        assert f"### {name}\n" in text
        assert f"[{name}](#{name.lower()})" in text


def test_off_policy_knobs_table_matches_the_dataclass() -> None:
    section = _section((DOCS / "off-policy.md").read_text(), "## The knobs")
    count = _check_rows(section, OffPolicyConfig, "off-policy.md#the-knobs")
    own = {f.name for f in dataclasses.fields(OffPolicyConfig)} - {
        "seed",
        "device",
        "num_threads",
        "normalize_obs",
        "clip_obs",
        "compute",
        "compiler",
        "flush_denormals",
        "on_nonfinite",
    }
    assert count == len(own), "every OffPolicyConfig field is in the knobs table"
