"""TensorRT engines from rlkit ONNX exports, and a runner with the agent's ``act()``.

Needs TensorRT >= 10 (``pip install rlkit[tensorrt]``) and an NVIDIA GPU with CUDA; both are
imported lazily, so this module imports everywhere.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.export.metadata import ExportMetadata
from rlkit.export.runner import ExportedPolicy
from rlkit.utils.files import write_bytes_atomic

_INSTALL_HINT = (
    "install it with `pip install rlkit[tensorrt]` (TensorRT >= 10; it needs an NVIDIA GPU "
    "with CUDA)"
)


def _require_tensorrt(what: str) -> Any:
    try:
        return importlib.import_module("tensorrt")
    except ImportError:
        raise ImportError(f"{what} needs TensorRT: {_INSTALL_HINT}") from None


def sidecar_path(engine_path: str | Path) -> Path:
    """Where the metadata of an engine lives: ``<engine>.json`` beside it."""
    path = Path(engine_path)
    return path.with_name(path.name + ".json")


def build_tensorrt_engine(
    onnx_path: str | Path,
    fp16: bool = False,
    max_batch: int = 256,
    engine_path: str | Path | None = None,
    workspace_mb: int = 1024,
) -> Path:
    """Build a serialized TensorRT engine from an rlkit ONNX export; return its path.

    Every input gets one optimization profile over the batch axis (min 1, opt
    ``max(1, max_batch // 2)``, max ``max_batch``). fp32 engines are built without TF32 so
    they match PyTorch closely; ``fp16`` allows half-precision kernels (TensorRT 10 only:
    TensorRT 11 builds strongly typed networks, so export the ONNX with ``fp16=True``
    instead). The engine (default: the ONNX path with ``.engine``) is written atomically
    with its rlkit metadata in ``<engine>.json``.
    """
    trt = _require_tensorrt("build_tensorrt_engine")
    source = Path(onnx_path)
    if max_batch < 1:
        raise ValueError(f"build_tensorrt_engine: max_batch must be >= 1, got {max_batch}")
    if workspace_mb < 1:
        raise ValueError(f"build_tensorrt_engine: workspace_mb must be >= 1, got {workspace_mb}")
    metadata = ExportMetadata.from_onnx(source)
    metadata.require_feedforward("build_tensorrt_engine", "TensorRT")
    shapes = metadata.input_shapes()
    target = Path(engine_path) if engine_path is not None else source.with_suffix(".engine")
    target.parent.mkdir(parents=True, exist_ok=True)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT >= 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {source}:\n{errors or '(no details)'}")
    graph_inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    if sorted(graph_inputs) != sorted(shapes):
        raise ValueError(
            f"{source}: graph inputs {graph_inputs} differ from the metadata's {list(shapes)}"
        )

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if fp16:
        flag = getattr(trt.BuilderFlag, "FP16", None)
        if flag is None:
            raise ValueError(
                "this TensorRT has no BuilderFlag.FP16 (strongly typed networks only): export "
                "the ONNX with fp16=True and build with fp16=False"
            )
        config.set_flag(flag)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 is on by default; keep fp32 exact
    profile = builder.create_optimization_profile()
    opt = max(1, max_batch // 2)
    for name, shape in shapes.items():
        profile.set_shape(name, (1, *shape), (opt, *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(
            f"TensorRT failed to build an engine from {source} (see the TensorRT log above)"
        )
    write_bytes_atomic(target, bytes(memoryview(serialized)))
    strings = {**metadata.to_strings(), "rlkit.tensorrt.max_batch": str(max_batch)}
    write_bytes_atomic(sidecar_path(target), json.dumps(strings, indent=2).encode())
    return target


def _torch_dtypes(trt: Any) -> dict[Any, torch.dtype]:
    table = {
        "FLOAT": torch.float32,
        "HALF": torch.float16,
        "BF16": torch.bfloat16,
        "INT8": torch.int8,
        "UINT8": torch.uint8,
        "INT32": torch.int32,
        "INT64": torch.int64,
        "BOOL": torch.bool,
    }
    return {getattr(trt.DataType, k): v for k, v in table.items() if hasattr(trt.DataType, k)}


class TensorRTPolicy(ExportedPolicy):
    """Runs an engine written by :func:`build_tensorrt_engine` on a CUDA GPU with ``act()``.

    >>> policy = TensorRTPolicy("policy.engine")
    >>> actions = policy.act(obs)
    """

    def __init__(self, engine_path: str | Path, device: str | torch.device = "cuda") -> None:
        trt = _require_tensorrt("TensorRTPolicy")
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no TensorRT engine at {self.path}")
        meta_path = sidecar_path(self.path)
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"no metadata {meta_path} beside the engine; build it with build_tensorrt_engine"
            )
        super().__init__(
            ExportMetadata.from_strings(json.loads(meta_path.read_text()), str(meta_path))
        )
        self.metadata.require_feedforward("TensorRTPolicy", "TensorRT")
        if not torch.cuda.is_available():
            raise RuntimeError("TensorRTPolicy needs a CUDA GPU, and torch sees none")
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"TensorRTPolicy runs on a CUDA device, got {device!r}")
        self._logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise RuntimeError(
                    f"TensorRT could not load {self.path} (built by another TensorRT version "
                    "or for another GPU? rebuild it here)"
                )
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if sorted(inputs) != sorted(self.input_names) or len(outputs) != 1:
            raise ValueError(
                f"{self.path}: engine inputs {inputs} / outputs {outputs} do not match the "
                f"metadata's inputs {self.input_names} and one action output"
            )
        self._output = outputs[0]
        dtypes = _torch_dtypes(trt)
        self._dtypes: dict[str, torch.dtype] = {}
        for name in names:
            trt_dtype = self.engine.get_tensor_dtype(name)
            if trt_dtype not in dtypes:
                raise TypeError(f"{self.path}: tensor {name!r} has unsupported type {trt_dtype}")
            self._dtypes[name] = dtypes[trt_dtype]
        #: the largest batch the engine's optimization profile accepts.
        self.max_batch = int(self.engine.get_tensor_profile_shape(inputs[0], 0)[2][0])

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        batch = int(inputs[0].shape[0])
        if not 1 <= batch <= self.max_batch:
            raise ValueError(
                f"batch of {batch} observations is outside this engine's range [1, "
                f"{self.max_batch}]; rebuild it with a larger max_batch or split the batch"
            )
        with torch.cuda.device(self.device):
            stream = torch.cuda.current_stream(self.device)
            buffers = []  # keep the device tensors alive until the stream is done
            for name, array in zip(self.input_names, inputs, strict=True):
                tensor = torch.from_numpy(np.ascontiguousarray(array)).to(
                    self.device, dtype=self._dtypes[name]
                )
                if not self.context.set_input_shape(name, tuple(tensor.shape)):
                    raise ValueError(
                        f"input {name!r} of shape {tuple(tensor.shape)} does not fit the engine"
                    )
                self.context.set_tensor_address(name, tensor.data_ptr())
                buffers.append(tensor)
            shape = tuple(self.context.get_tensor_shape(self._output))
            out = torch.empty(shape, dtype=self._dtypes[self._output], device=self.device)
            self.context.set_tensor_address(self._output, out.data_ptr())
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f"TensorRT failed to run {self.path}")
            stream.synchronize()
        result: np.ndarray = out.cpu().numpy()
        return result
