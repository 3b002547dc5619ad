"""Device resolution: ``auto`` picks cuda, then npu (torch_npu), then mps, then cpu."""

from __future__ import annotations

import importlib

import torch


def npu_available() -> bool:
    """True when torch_npu imports and reports an Ascend device."""
    try:
        importlib.import_module("torch_npu")
    except ImportError:
        return False
    npu = getattr(torch, "npu", None)
    return bool(npu is not None and npu.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda[:i]" | "npu[:i]" | "mps"`` into a usable torch.device."""
    if isinstance(device, torch.device):
        return device
    name = device.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if npu_available():
            return torch.device("npu")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but CUDA is not available")
    if name.startswith("npu"):
        try:
            importlib.import_module("torch_npu")
        except ImportError:
            raise RuntimeError(
                f"device={device!r} needs torch_npu (Huawei Ascend); install the CANN toolkit "
                "and `pip install torch-npu`"
            ) from None
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda', 'npu' or 'mps'"
        ) from None
