"""The code examples of docs/replay-storage.md run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "replay-storage.md"

RUNNER = """
import sys
blocks = sys.stdin.read().split("\\n#---block---\\n")
for i, code in enumerate(blocks):
    try:
        exec(compile(code, f"replay-storage.md block {i}", "exec"), {"__name__": f"block{i}"})
    except Exception as e:
        raise SystemExit(f"block {i} failed: {type(e).__name__}: {e}")
"""


def test_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) >= 6
    # one fresh interpreter (registrations in the examples stay out of the test session),
    # one fresh namespace per block: each example stands on its own
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input="\n#---block---\n".join(blocks),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
