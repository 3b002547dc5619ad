"""``rlkit export``: the command-line front of :mod:`rlkit.export`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rlkit.checkpoint import load_registered_agent
from rlkit.export.metadata import recurrent_refusal
from rlkit.export.onnx import ExportResult, to_onnx
from rlkit.export.source import policy_name
from rlkit.export.torch_export import to_torch_export

_EXTENSIONS = {"onnx": "onnx", "torch": "pt2", "om": "onnx"}


def run_export(args: argparse.Namespace) -> int:
    """Export ``args.path`` in ``args.format``; print where it went and the parity report.
    ``args.trust_code`` (``--trust-code``) lets the checkpoint name code to import. Recurrent
    policies export to onnx and torch (their state as inputs and outputs), not to om."""
    source = Path(args.path)
    output = Path(args.output) if args.output else source / f"policy.{_EXTENSIONS[args.format]}"
    om_path = None
    if args.format == "om" and output.suffix == ".om":  # -o names the OM model
        om_path, output = output, output.with_suffix(".onnx")
    # loaded here so --trust-code reaches the checkpoint (see rlkit.trust)
    agent = load_registered_agent(
        source, device="cpu", trust_code=bool(getattr(args, "trust_code", False))
    )
    policy = getattr(agent, "policy", None)
    if args.format == "om" and getattr(policy, "recurrent", False):  # before writing anything
        raise ValueError(
            recurrent_refusal(
                "rlkit export", policy_name(policy), "--format om", "--format onnx or torch"
            )
        )
    result: ExportResult
    if args.format == "torch":
        result = to_torch_export(agent, output, check=args.check)
    else:
        result = to_onnx(agent, output, opset=args.opset, fp16=args.fp16, check=args.check)
    print(f"exported {result.path}")
    if result.parity is not None:
        print(result.parity)
    if args.format == "om":
        from rlkit.export.ascend import convert_to_om

        conversion = convert_to_om(
            result.path, soc_version=args.soc_version, max_batch=args.max_batch, om_path=om_path
        )
        print(json.dumps(conversion.summary()))
    return 0
