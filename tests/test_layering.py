"""Dependencies point one way: cli -> tune -> agents -> prototypes -> core. Core (``rlkit/``)
never imports the layers above it, statically, under TYPE_CHECKING, or through importlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UPPER = ("rlkit.prototypes", "rlkit.agents", "rlkit.tune", "rlkit.cli")
#: the package's ``python -m rlkit`` entry point belongs to the CLI layer.
ENTRY_POINTS = {ROOT / "rlkit" / "__main__.py"}


_DYNAMIC = ("import_module", "__import__", "find_spec", "load")


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Static imports (including under TYPE_CHECKING) and module names given to importlib."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _DYNAMIC and node.args:
                for sub in ast.walk(node.args[0]):  # plain or f-string module names
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        found.append((node.lineno, sub.value))
    return found


def _violations(directory: Path, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for file in sorted(directory.rglob("*.py")):
        if file in ENTRY_POINTS:
            continue
        for line, name in _imports(ast.parse(file.read_text())):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{file.relative_to(ROOT)}:{line}: {name}")
    return out


def test_core_never_imports_upward() -> None:
    assert _violations(ROOT / "rlkit", UPPER) == []


def test_prototypes_never_import_agents_tune_or_cli() -> None:
    assert _violations(ROOT / "prototypes", ("rlkit.agents", "rlkit.tune", "rlkit.cli")) == []


def test_agents_never_import_tune_or_the_cli() -> None:
    assert _violations(ROOT / "agents", ("rlkit.tune", "rlkit.cli")) == []


def test_tune_never_imports_the_cli_and_loads_optuna_only_when_searching() -> None:
    assert _violations(ROOT / "tune", ("rlkit.cli",)) == []
    code = (
        "import sys, rlkit.tune\n"
        "print([m for m in ('optuna', 'ray', 'matplotlib') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_core_loads_no_upper_layer_and_stays_fast() -> None:
    code = (
        "import sys, rlkit, rlkit.losses, rlkit.backends, rlkit.policies, rlkit.storages\n"
        "upper = [m for m in sys.modules if m.startswith(('rlkit.prototypes', 'rlkit.agents',"
        " 'rlkit.tune', 'rlkit.cli'))]\n"
        "heavy = [m for m in ('ray', 'onnxruntime', 'wandb', 'tensorrt') if m in sys.modules]\n"
        "print(upper, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
