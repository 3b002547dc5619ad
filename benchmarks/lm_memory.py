"""Memory and time of GRPO iterations on a ~100M-parameter GPT-2 (random weights, the toy
tokenizer), on the CPU: the peak resident memory of the process, per setting.

What one GPU would hold is the same list of tensors (fp32 weights, gradients, Adam's two
moments, the frozen reference, the activations of one micro-batch), so the peak here bounds
what a 24 GB card needs for the same batch. Each setting runs in a fresh process (the peak
resident size only grows).

    python benchmarks/lm_memory.py                      # the settings below, ~5 minutes
    python benchmarks/lm_memory.py --setting accum4     # one of them
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS: dict[str, dict[str, object]] = {
    "fp32": {},
    "accum4": {"grad_accum_steps": 4},
    "bf16": {"use_amp": True, "rollout_amp": True},
    "lora": {"lora": {"r": 16, "target_modules": ["c_attn"]}},
}


def build(path: Path, n_embd: int, n_layer: int) -> int:
    """A GPT-2 with the toy tokenizer's vocabulary, saved to ``path``; returns its size."""
    from rlkit.lm.toy import build_toy_model, build_toy_tokenizer

    tokenizer = build_toy_tokenizer()
    model = build_toy_model(tokenizer, n_embd=n_embd, n_layer=n_layer, n_head=12, n_positions=256)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def measure(
    path: str, setting: str, prompts: int, group: int, tokens: int, iterations: int
) -> dict[str, float]:
    """Run ``iterations`` GRPO iterations with ``setting``; the peak RSS and seconds each."""
    import torch

    from rlkit.agents import GRPO
    from rlkit.envs.text import TextVecEnv
    from rlkit.lm.toy import toy_prompts

    torch.manual_seed(0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    env = TextVecEnv(toy_prompts(64), path, num_prompts=prompts, group_size=group,
                     max_prompt_tokens=tokens, max_new_tokens=tokens, seed=0)  # fmt: skip
    agent = GRPO(env, model=path, lr=1e-5, seed=0, **SETTINGS[setting])  # type: ignore[arg-type]
    built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    for _ in range(iterations):
        agent.iteration()
    seconds = (time.perf_counter() - start) / iterations
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"before_mb": base, "built_mb": built, "peak_mb": peak, "seconds_per_iteration": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), action="append")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64, help="prompt and completion width")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=768, dest="n_embd")
    parser.add_argument("--n-layer", type=int, default=14, dest="n_layer")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.child:
        setting, path = args.child.split("=", 1)
        out = measure(path, setting, args.prompts, args.group, args.tokens, args.iterations)
        print(json.dumps(out))
        return
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    with tempfile.TemporaryDirectory() as tmp:
        params = build(Path(tmp), args.n_embd, args.n_layer)
        print(f"{params / 1e6:.1f}M parameters; {args.prompts} prompts x {args.group} completions, "
              f"{args.tokens} + {args.tokens} tokens; {cpu}")  # fmt: skip
        rows = {}
        for setting in args.setting or list(SETTINGS):
            sizes = ["--prompts", str(args.prompts), "--group", str(args.group)]
            sizes += ["--tokens", str(args.tokens), "--iterations", str(args.iterations)]
            command = [sys.executable, __file__, "--child", f"{setting}={tmp}", *sizes]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            rows[setting] = json.loads(result.stdout.strip().splitlines()[-1])
            r = rows[setting]
            peak, built = r["peak_mb"] / 1024, r["built_mb"] / 1024
            each = r["seconds_per_iteration"]
            print(f"{setting:8s} peak {peak:6.2f} GiB (built {built:5.2f} GiB), {each:6.1f} s/it")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"parameters": params, "cpu": cpu, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
