"""Huawei Ascend: OM models from rlkit ONNX exports (CANN's ``atc``) and an OM runner.

:func:`convert_to_om` always writes the ``atc`` command as a script (so an export made on a
machine without the CANN toolkit can be converted on an Ascend machine) and runs it when
``atc`` is on ``PATH``. :class:`OmPolicy` runs the result with the ``ais_bench`` inference
API. Nothing Ascend-specific is imported until it is needed.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlkit.export.metadata import ExportMetadata
from rlkit.export.runner import ExportedPolicy

#: ``atc --framework`` value of ONNX models.
ONNX_FRAMEWORK = 5
#: largest batch size ``atc --dynamic_batch_size`` accepts per profile.
ATC_MAX_BATCH = 2048
#: default ``atc --precision_mode``: fp32 wherever the chip has fp32 kernels.
DEFAULT_PRECISION_MODE = "force_fp32"

_ATC_MISSING = (
    "atc (the model converter of Huawei's CANN toolkit) was not found on PATH, so the OM model "
    "was not built; on a machine with CANN set up (`source "
    "/usr/local/Ascend/ascend-toolkit/set_env.sh`) run `sh {script}`"
)


@dataclass
class OmConversion:
    """What :func:`convert_to_om` wrote and whether ``atc`` ran."""

    onnx_path: Path
    om_path: Path
    #: the ``atc`` argv, with paths relative to the script's folder (its working directory).
    command: list[str]
    script_path: Path
    ran: bool
    returncode: int | None
    skipped_reason: str | None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly form: paths as strings, the command as one shell-quoted string."""
        return {
            "onnx_path": str(self.onnx_path),
            "om_path": str(self.om_path),
            "command": shlex.join(self.command),
            "workdir": str(self.script_path.parent),
            "script_path": str(self.script_path),
            "ran": self.ran,
            "returncode": self.returncode,
            "skipped_reason": self.skipped_reason,
        }


def dynamic_batch_sizes(max_batch: int) -> list[int]:
    """Batch profiles of an OM model: powers of two below ``max_batch``, then ``max_batch``."""
    if not 1 <= max_batch <= ATC_MAX_BATCH:
        raise ValueError(
            f"max_batch must be in [1, {ATC_MAX_BATCH}] (atc's batch profile range), "
            f"got {max_batch}"
        )
    sizes = []
    size = 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    return [*sizes, max_batch]


def _default_om_path(onnx_path: Path, om_path: str | Path | None) -> Path:
    target = Path(om_path) if om_path is not None else onnx_path.with_suffix(".om")
    if target.suffix != ".om":
        raise ValueError(f"an OM model's path must end in .om (atc appends it), got {target}")
    if target.resolve() == onnx_path.resolve():
        raise ValueError(
            f"the OM model would replace its own ONNX input {onnx_path}; name the ONNX file "
            "*.onnx or pass another om_path"
        )
    return target


def atc_command(
    onnx_path: str | Path,
    soc_version: str = "Ascend310P3",
    max_batch: int = 256,
    om_path: str | Path | None = None,
    precision_mode: str | None = DEFAULT_PRECISION_MODE,
) -> list[str]:
    """The ``atc`` argv that converts an rlkit ONNX export into an OM model.

    Inputs and their shapes come from the file's rlkit metadata (one input per Dict key).
    The batch axis is dynamic (``-1``) with profiles ``1, 2, 4, ..., max_batch``
    (``max_batch=1`` gives a static model). ``--input_format`` is NCHW when every input is an
    image (4-d with the batch), else ND. ``precision_mode`` is passed as ``--precision_mode``
    (default ``force_fp32``, since atc's own default on inference chips is ``force_fp16``;
    ``must_keep_origin_dtype`` for strict fp32, None for atc's default). Paths are used as
    given; ``--output`` is ``om_path`` (default: the ONNX path with ``.om``) without ``.om``.
    """
    source = Path(onnx_path)
    target = _default_om_path(source, om_path)
    metadata = ExportMetadata.from_onnx(source)
    metadata.require_feedforward("atc_command", "Ascend OM")
    return _command(
        metadata.input_shapes(),
        str(source),
        target,
        soc_version,
        max_batch,
        precision_mode,
    )


def _command(
    shapes: dict[str, tuple[int, ...]],
    model: str,
    target: Path,
    soc_version: str,
    max_batch: int,
    precision_mode: str | None,
) -> list[str]:
    if not soc_version:
        raise ValueError("soc_version is required (e.g. Ascend310P3; `npu-smi info` shows it)")
    sizes = dynamic_batch_sizes(max_batch)
    dynamic = len(sizes) > 1
    batch = "-1" if dynamic else "1"
    input_shape = ";".join(
        f"{name}:{','.join([batch, *(str(d) for d in shape)])}" for name, shape in shapes.items()
    )
    images = all(len(shape) == 3 for shape in shapes.values())
    command = [
        "atc",
        f"--model={model}",
        f"--framework={ONNX_FRAMEWORK}",
        f"--output={target.with_suffix('')}",
        f"--soc_version={soc_version}",
        f"--input_format={'NCHW' if images else 'ND'}",
        f"--input_shape={input_shape}",
    ]
    if dynamic:
        command.append(f"--dynamic_batch_size={','.join(str(s) for s in sizes)}")
    if precision_mode is not None:
        command.append(f"--precision_mode={precision_mode}")
    return command


def om_sidecar_path(om_path: str | Path) -> Path:
    """Where the metadata of an OM model lives: ``<om>.json`` beside it."""
    path = Path(om_path)
    return path.with_name(path.name + ".json")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def convert_to_om(
    onnx_path: str | Path,
    soc_version: str = "Ascend310P3",
    max_batch: int = 256,
    om_path: str | Path | None = None,
    precision_mode: str | None = DEFAULT_PRECISION_MODE,
) -> OmConversion:
    """Convert an rlkit ONNX export to an Ascend OM model with ``atc`` (see :func:`atc_command`).

    Always writes ``<om>.atc.sh`` (the command, run from its own folder, so the folder can be
    copied to an Ascend machine) and ``<om>.json`` (the rlkit metadata and batch profiles that
    :class:`OmPolicy` reads). Runs ``atc`` when it is on ``PATH`` and raises a RuntimeError with
    the end of its output if it fails; otherwise returns ``ran=False`` with the reason.
    """
    source = Path(onnx_path)
    target = _default_om_path(source, om_path)
    metadata = ExportMetadata.from_onnx(source)
    metadata.require_feedforward("convert_to_om", "Ascend OM")
    workdir = target.parent
    workdir.mkdir(parents=True, exist_ok=True)
    command = _command(
        metadata.input_shapes(),
        os.path.relpath(source.resolve(), workdir.resolve()),
        Path(target.name),
        soc_version,
        max_batch,
        precision_mode,
    )
    script = target.with_name(target.name + ".atc.sh")
    script.write_text(
        "#!/bin/sh\n"
        f"# Converts {source.name} to {target.name} for {soc_version} with CANN's atc.\n"
        "# Needs the CANN toolkit: source /usr/local/Ascend/ascend-toolkit/set_env.sh\n"
        "set -e\n"
        'cd "$(dirname "$0")"\n'
        f"{shlex.join(command)}\n"
    )
    script.chmod(0o755)
    strings = {
        **metadata.to_strings(),
        "rlkit.om.batch_sizes": json.dumps(dynamic_batch_sizes(max_batch)),
        "rlkit.om.soc_version": soc_version,
    }
    om_sidecar_path(target).write_text(json.dumps(strings, indent=2))
    if shutil.which("atc") is None:
        reason = _ATC_MISSING.format(script=shlex.quote(str(script)))
        return OmConversion(source, target, command, script, False, None, reason)
    target.unlink(missing_ok=True)  # so a stale model cannot pass for this conversion
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.is_file():
        output = _tail(f"{done.stdout}\n{done.stderr}")
        raise RuntimeError(
            f"atc failed (exit code {done.returncode}) converting {source} to {target}:\n{output}"
        )
    return OmConversion(source, target, command, script, True, done.returncode, None)


def _require_ais_bench() -> Any:
    try:
        return importlib.import_module("ais_bench.infer.interface")
    except ImportError:
        raise ImportError(
            "OmPolicy needs Huawei's Ascend inference runtime: the ais_bench and aclruntime "
            "packages (wheels built from Ascend's tools repository, "
            "ais-bench_workload/tool/ais_bench, installed with pip) on a machine with the CANN "
            "toolkit and an Ascend NPU"
        ) from None


class OmPolicy(ExportedPolicy):
    """Runs an OM model written by :func:`convert_to_om` on an Ascend NPU with ``act()``.

    Batches are padded up to the next batch profile of the model (and the padding dropped
    from the actions), so any batch up to the model's ``max_batch`` works.

    >>> policy = OmPolicy("policy.om")
    >>> actions = policy.act(obs)
    """

    def __init__(self, om_path: str | Path, device_id: int = 0) -> None:
        interface = _require_ais_bench()
        self.path = Path(om_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no OM model at {self.path}")
        meta_path = om_sidecar_path(self.path)
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"no metadata {meta_path} beside the OM model; convert it with convert_to_om"
            )
        strings = json.loads(meta_path.read_text())
        super().__init__(ExportMetadata.from_strings(strings, str(meta_path)))
        self.metadata.require_feedforward("OmPolicy", "Ascend OM")
        #: the batch profiles of the model, ascending.
        self.batch_sizes: list[int] = sorted(json.loads(strings.get("rlkit.om.batch_sizes", "[]")))
        if not self.batch_sizes:
            raise ValueError(f"{meta_path} lists no batch sizes; convert it with convert_to_om")
        self.session = interface.InferSession(device_id, str(self.path))

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        batch = int(inputs[0].shape[0])
        profile = next((s for s in self.batch_sizes if s >= batch), None)
        if batch < 1 or profile is None:
            raise ValueError(
                f"batch of {batch} observations is outside this model's range [1, "
                f"{self.batch_sizes[-1]}]; convert it with a larger max_batch or split the batch"
            )
        feeds = []
        for array in inputs:
            if profile > batch:  # repeat the last observation up to the profile's size
                array = np.concatenate([array, np.repeat(array[-1:], profile - batch, axis=0)])
            feeds.append(np.ascontiguousarray(array))
        mode = "dymbatch" if len(self.batch_sizes) > 1 else "static"
        out = np.asarray(self.session.infer(feeds, mode=mode)[0])
        action_shape = tuple(self.action_space.shape or ())
        result: np.ndarray = out.reshape(-1, *action_shape)[:batch]
        return result
