"""Pure-PyTorch export of the acting path with ``torch.export`` (a ``.pt2`` archive)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.export.metadata import ExportMetadata
from rlkit.export.onnx import ExportResult
from rlkit.export.parity import (
    CHECK_BATCH_SIZES,
    ParityError,
    check_parity,
    check_sequence_parity,
)
from rlkit.export.runner import ExportedPolicy
from rlkit.export.source import cpu_acting_path, quiet_tracing, resolve_agent
from rlkit.trust import UntrustedCodeError
from rlkit.utils.files import atomic_path

_META_FILE = "rlkit_metadata.json"


def to_torch_export(
    agent_or_checkpoint: Any,
    path: str | Path,
    check: bool = True,
    batch_sizes: Sequence[int] = CHECK_BATCH_SIZES,
) -> ExportResult:
    """Export the acting path with ``torch.export`` (dynamic batch axis) to a ``.pt2`` file.

    The archive holds the rlkit metadata as an extra file; with ``check`` the reloaded program
    is compared with the eager acting path (max |diff| <= 1e-5, discrete actions equal).
    A recurrent policy's program takes and returns its state as :func:`~rlkit.export.to_onnx`'s
    graph does (``(obs..., episode_start, *state) -> (action, *next_state)``), and is checked
    on multi-step sequences with the state fed back.
    """
    agent = resolve_agent(agent_or_checkpoint)
    acting, metadata = cpu_acting_path(agent)
    examples = acting.example_inputs(2)
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    with quiet_tracing():
        program = torch.export.export(
            acting, examples, dynamic_shapes=(tuple({0: batch} for _ in examples),)
        )
    target = Path(path)
    with atomic_path(target, suffix=".pt2") as tmp:  # torch.export.save wants .pt2
        torch.export.save(
            program, str(tmp), extra_files={_META_FILE: json.dumps(metadata.to_strings())}
        )
    parity = None
    if check:
        reloaded = TorchExportPolicy(target, trust_code=True)  # the file just written
        if acting.recurrent:
            parity = check_sequence_parity(
                acting, reloaded.run_outputs, "torch.export", batch_sizes
            )
        else:
            parity = check_parity(acting, reloaded.run, "torch.export", batch_sizes)
        if not parity.ok:
            raise ParityError(str(parity))
    return ExportResult(target, parity)


class TorchExportPolicy(ExportedPolicy):
    """Runs a ``.pt2`` acting path written by :func:`to_torch_export` with ``act()``.

    ``torch.export.load`` unpickles parts of the archive, which can run arbitrary code, so the
    file is only opened with ``trust_code=True``: pass it for files you made or trust. ONNX
    (:func:`~rlkit.export.to_onnx`, :class:`~rlkit.export.OnnxPolicy`) is the format that runs
    no code from the file."""

    def __init__(self, path: str | Path, trust_code: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no torch.export archive at {self.path}")
        if not trust_code:
            raise UntrustedCodeError(
                f"TorchExportPolicy: {self.path} is a torch.export archive, and "
                "torch.export.load unpickles it, which can run arbitrary code; pass "
                "trust_code=True only for files you made or trust, or export to ONNX (to_onnx / "
                "rlkit export --format onnx) and run it with OnnxPolicy, which runs no code "
                "from the file"
            )
        extra = {_META_FILE: ""}
        program = torch.export.load(str(self.path), extra_files=extra)
        super().__init__(
            ExportMetadata.from_strings(json.loads(extra[_META_FILE] or "{}"), str(self.path))
        )
        self.module = program.module()

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self.run_outputs(inputs)[0]

    def run_outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            out = self.module(*(torch.as_tensor(x) for x in inputs))
        outputs = [out] if isinstance(out, torch.Tensor) else list(out)
        return [x.numpy() for x in outputs]
