"""ONNX export of an agent's acting path, checked against onnxruntime."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.export.metadata import ExportMetadata
from rlkit.export.parity import (
    CHECK_BATCH_SIZES,
    ParityError,
    ParityReport,
    check_parity,
    check_sequence_parity,
)
from rlkit.export.runner import ExportedPolicy
from rlkit.export.source import cpu_acting_path, quiet_tracing, resolve_agent
from rlkit.utils.files import atomic_path

log = logging.getLogger("rlkit")

#: parity tolerance for fp16 graphs (fp32 graphs use 1e-5).
FP16_TOLERANCE = 5e-2


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"ONNX export needs {module}: install the extra with `pip install rlkit[export]`"
        ) from None


@dataclass
class ExportResult:
    """Where an export went and how it compared with PyTorch (None when not checked)."""

    path: Path
    parity: ParityReport | None


def to_onnx(
    agent_or_checkpoint: Any,
    path: str | Path,
    opset: int | None = None,
    fp16: bool = False,
    check: bool = True,
    batch_sizes: Sequence[int] = CHECK_BATCH_SIZES,
) -> ExportResult:
    """Export the deterministic acting path to an ONNX file with a dynamic batch axis.

    ``agent_or_checkpoint`` is an agent or a checkpoint/run directory. Inputs are named ``obs``
    (or one per Dict key) in their storage dtypes (uint8 images stay uint8); the output
    ``action`` is env-ready. The file carries rlkit metadata (spaces, agent id, version).
    With ``check`` the graph runs in onnxruntime against PyTorch on random observations of
    each batch size and a :class:`ParityError` is raised beyond 1e-5 (fp32; 5e-2 for fp16) or
    on any differing discrete action. ``fp16`` stores weights and activations in float16
    (inputs and outputs keep their types), mainly for GPU runtimes.

    A recurrent policy's graph also takes ``episode_start`` (float32 ``[B]``) and its state
    tensors (named by the policy's ``state_spec()``, e.g. ``actor_h``, ``actor_c``) after the
    observations, and returns the next state (``actor_h_out``, ...) after ``action``; every
    input and output has the dynamic batch axis and the metadata records the state layout.
    Its check runs :data:`~rlkit.export.parity.SEQUENCE_STEPS`-step sequences with random
    episode starts, each side fed back its own state, comparing actions and states.
    """
    onnx = _require("onnx")
    _require("onnxscript")
    agent = resolve_agent(agent_or_checkpoint)
    acting, metadata = cpu_acting_path(agent)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    examples = acting.example_inputs(2)
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "policy.onnx"
        # the exporter prints progress
        with contextlib.redirect_stdout(io.StringIO()), quiet_tracing():
            torch.onnx.export(
                acting,
                examples,
                str(raw),
                input_names=acting.input_names,
                output_names=acting.output_names,
                opset_version=opset,
                dynamic_shapes=(tuple({0: batch} for _ in examples),),  # forward(*inputs)
                dynamo=True,
                verbose=False,
            )
        model = onnx.load(str(raw))
    if fp16:
        model = _to_fp16(model)
    for key, value in metadata.to_strings().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))
    parity = None
    if check:
        runner = OnnxPolicy(target)
        tolerance = FP16_TOLERANCE if fp16 else 1e-5
        if acting.recurrent:
            parity = check_sequence_parity(
                acting, runner.run_outputs, "onnxruntime", batch_sizes, tolerance=tolerance
            )
        else:
            parity = check_parity(acting, runner.run, "onnxruntime", batch_sizes, tolerance)
        log.info("%s", parity)
        if not parity.ok:
            raise ParityError(str(parity))
    return ExportResult(target, parity)


def _to_fp16(model: Any) -> Any:
    """Weights and activations in float16; inputs, outputs and action clipping stay as they were.

    Clipping to the action bounds stays in fp32 (fp16 would round the bounds outwards and put
    actions outside the space). For that the bounds must stay fp32 initialisers, so their
    ``value_info`` entries (which would make the converter cast them) are dropped first; and the
    converter's fp16 cast in front of a float32 graph output is turned back into a float32 one.
    """
    try:
        converter = importlib.import_module("onnxconverter_common.float16")
    except ImportError:
        raise ImportError(
            "fp16 ONNX export needs onnxconverter-common: `pip install rlkit[export]`"
        ) from None
    onnx = importlib.import_module("onnx")
    initializers = {init.name for init in model.graph.initializer}
    kept = [vi for vi in model.graph.value_info if vi.name not in initializers]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    output_types = {out.name: out.type.tensor_type.elem_type for out in model.graph.output}
    keep_fp32 = [*converter.DEFAULT_OP_BLOCK_LIST, "Min", "Max", "Clip"]
    with warnings.catch_warnings():  # it warns for every weight it rounds to fp16's range
        warnings.simplefilter("ignore", UserWarning)
        model = converter.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=keep_fp32
        )
    for out in model.graph.output:
        original = output_types[out.name]
        if out.type.tensor_type.elem_type == original:
            continue
        out.type.tensor_type.elem_type = original
        for node in model.graph.node:
            if node.op_type == "Cast" and out.name in node.output:
                for attr in node.attribute:
                    if attr.name == "to":
                        attr.i = original
    onnx.checker.check_model(model)
    return model


class OnnxPolicy(ExportedPolicy):
    """Runs an rlkit ONNX export in onnxruntime with the agent's ``act()``.

    >>> policy = OnnxPolicy("policy.onnx")
    >>> actions = policy.act(obs)

    A recurrent export keeps its state between calls (see :class:`ExportedPolicy`):

    >>> actions = policy.act(obs, episode_start=terminated | truncated)
    >>> policy.reset()  # every row starts a new episode at the next call
    """

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None) -> None:
        ort = _require("onnxruntime")
        _require("onnx")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX file at {self.path}")
        super().__init__(ExportMetadata.from_onnx(self.path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.path), options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self._output = self.session.get_outputs()[0].name
        self._outputs = [self._output]
        if self.metadata.recurrent:
            inputs = [i.name for i in self.session.get_inputs()]
            outputs = [o.name for o in self.session.get_outputs()]
            if inputs != self.graph_input_names or outputs != self.output_names:
                raise ValueError(
                    f"{self.path}: graph inputs {inputs} / outputs {outputs} differ from the "
                    f"metadata's {self.graph_input_names} / {self.output_names}"
                )
            self._outputs = outputs

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        feed = dict(zip(self.graph_input_names, inputs, strict=True))
        out: np.ndarray = self.session.run([self._output], feed)[0]
        return out

    def run_outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feed = dict(zip(self.graph_input_names, inputs, strict=True))
        outputs: list[np.ndarray] = self.session.run(self._outputs, feed)
        return outputs
