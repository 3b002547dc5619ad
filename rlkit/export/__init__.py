"""Export an agent's deterministic acting path and run it elsewhere.

``to_onnx`` (onnxruntime-verified), ``to_torch_export`` (``torch.export``), TensorRT engines and
Ascend OM models; each runner offers the agent's ``act()``. Recurrent policies export to ONNX and
``torch.export`` with their state as graph inputs and outputs; their runners keep the state
between ``act()`` calls. Heavy dependencies import lazily.
"""

from rlkit.export.acting import ActingPath, sample_observations, sample_state
from rlkit.export.ascend import OmConversion, OmPolicy, atc_command, convert_to_om
from rlkit.export.metadata import ExportMetadata
from rlkit.export.onnx import ExportResult, OnnxPolicy, to_onnx
from rlkit.export.parity import ParityError, ParityReport, check_parity, check_sequence_parity
from rlkit.export.runner import ExportedPolicy
from rlkit.export.tensorrt import TensorRTPolicy, build_tensorrt_engine
from rlkit.export.torch_export import TorchExportPolicy, to_torch_export

__all__ = [
    "ActingPath",
    "ExportMetadata",
    "ExportResult",
    "ExportedPolicy",
    "OmConversion",
    "OmPolicy",
    "OnnxPolicy",
    "ParityError",
    "ParityReport",
    "TensorRTPolicy",
    "TorchExportPolicy",
    "atc_command",
    "build_tensorrt_engine",
    "check_parity",
    "check_sequence_parity",
    "convert_to_om",
    "sample_observations",
    "sample_state",
    "to_onnx",
    "to_torch_export",
]
