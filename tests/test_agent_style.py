"""The reference agents read like CleanRL: only their algorithm (no NumPy, no backend
dispatch), at most 70 code lines for the core set, and no exact-type dispatch anywhere."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_AGENTS = ("ppo", "a2c", "sac", "td3", "dqn")
MAX_CODE_LINES = 70


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not comments, not docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))  # type: ignore[operator]
    # attribute docstrings ("#: ..." comments are comments; bare strings after fields count too)
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                        tokenize.DEDENT, tokenize.ENDMARKER):  # fmt: skip
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docstrings)


@pytest.mark.parametrize("name", CORE_AGENTS)
def test_core_agents_are_short(name: str) -> None:
    count = code_lines((ROOT / "agents" / f"{name}.py").read_text())
    assert count <= MAX_CODE_LINES, f"agents/{name}.py has {count} code lines"


def test_agents_hold_no_numpy_and_no_backend_dispatch() -> None:
    for file in sorted((ROOT / "agents").glob("*.py")):
        text = file.read_text()
        assert not re.search(r"^\s*(import numpy|from numpy)", text, re.M), file.name
        for banned in ("rlkit.backends", "kernels_active", "use_fused_kernels", "compute ==",
                       ".numpy()"):  # fmt: skip
            assert banned not in text, f"{file.name} mentions {banned!r}"


def test_no_exact_type_dispatch() -> None:
    pattern = re.compile(r"type\([^)]*\)\s+is\s+(?!not\b)|type\([^)]*\)\s+is not\s")
    for directory in ("rlkit", "prototypes", "agents", "cli"):
        for file in sorted((ROOT / directory).rglob("*.py")):
            for number, line in enumerate(file.read_text().splitlines(), 1):
                if line.lstrip().startswith("#"):
                    continue
                assert not pattern.search(line), f"{file.relative_to(ROOT)}:{number}: {line}"
