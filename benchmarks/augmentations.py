"""Speed benchmark: rlkit's batched image augmentations vs per-sample Python loops.

Each augmentation runs on a batch of uint8 frame stacks (default 256 x 9 x 84 x 84: three RGB
frames per sample) and is timed against a straightforward loop that transforms one sample at a
time with the same operation (the style of RAD's and DrAC's reference code). Timings alternate
(batched, loop, loop, batched, ...) and the median over rounds is reported, with the ratio
loop time / batched time (above 1: the batched version is faster).

    python benchmarks/augmentations.py                      # well under a minute on 2 cores
    python benchmarks/augmentations.py --rounds 11 --threads 2 --json augmentations.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import rlkit
from rlkit.augmentations.base import Augmentation
from rlkit.augmentations.basic import RandomShift
from rlkit.augmentations.color import (
    ColorJitter,
    GrayScale,
    RandomConvolution,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    luminance,
)
from rlkit.augmentations.geometric import (
    RandomCrop,
    RandomCutout,
    RandomCutoutColor,
    RandomFlip,
    RandomRotate,
    RandomTranslate,
)

CROP = 76  # crop size for random_crop on 84x84 frames
PAD = 4  # pad for random_shift / random_translate
CUT = (10, 30)  # RAD's cutout sizes

Loop = Callable[[torch.Tensor, random.Random], torch.Tensor]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0


def _uint8(y: torch.Tensor) -> torch.Tensor:
    return y.mul(255.0).round().clamp(0, 255).to(torch.uint8)


# --- per-sample loop versions (one sample [C, H, W] at a time, Python RNG) ------------------


def loop_grayscale(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    out = x.clone()
    for i in range(x.shape[0]):
        if rng.random() < 0.5:
            frames = _unit(x[i]).reshape(-1, 3, *x.shape[-2:])
            out[i] = _uint8(luminance(frames).expand_as(frames).reshape(x.shape[1:]))
    return out


def loop_color_jitter(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        y = _unit(x[i]).reshape(1, -1, 3, *x.shape[-2:])
        y = adjust_brightness(y, torch.tensor([rng.uniform(0.6, 1.4)]))
        y = adjust_contrast(y, torch.tensor([rng.uniform(0.6, 1.4)]))
        y = adjust_saturation(y, torch.tensor([rng.uniform(0.6, 1.4)]))
        y = adjust_hue(y, torch.tensor([rng.uniform(-0.5, 0.5)]))
        out[i] = _uint8(y.reshape(x.shape[1:]))
    return out


def loop_random_convolution(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    out = torch.empty_like(x)
    std = math.sqrt(1.0 / 27.0)
    for i in range(x.shape[0]):
        weight = torch.randn(3, 3, 3, 3) * std  # Xavier normal, as RAD's nn.init.xavier_normal_
        y = F.conv2d(_unit(x[i]).reshape(-1, 3, *x.shape[-2:]), weight, padding=1)
        out[i] = _uint8(y.clamp(0, 1).reshape(x.shape[1:]))
    return out


def loop_random_crop(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    h, w = x.shape[-2:]
    out = torch.empty(*x.shape[:2], CROP, CROP, dtype=x.dtype)
    for i in range(x.shape[0]):
        t, left = rng.randint(0, h - CROP), rng.randint(0, w - CROP)
        out[i] = x[i, :, t : t + CROP, left : left + CROP]
    return out


def _box(rng: random.Random, h: int, w: int) -> tuple[int, int, int, int]:
    bh, bw = min(rng.randint(*CUT), h), min(rng.randint(*CUT), w)
    return rng.randint(0, h - bh), rng.randint(0, w - bw), bh, bw


def loop_random_cutout(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    out = x.clone()
    for i in range(x.shape[0]):
        t, left, bh, bw = _box(rng, *x.shape[-2:])
        out[i, :, t : t + bh, left : left + bw] = 0
    return out


def loop_random_cutout_color(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    out = x.clone()
    for i in range(x.shape[0]):
        t, left, bh, bw = _box(rng, *x.shape[-2:])
        color = torch.tensor([rng.randint(0, 255) for _ in range(3)], dtype=x.dtype)
        fill = color.repeat(x.shape[1] // 3)[:, None, None]
        out[i, :, t : t + bh, left : left + bw] = fill
    return out


def loop_random_flip(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    out = x.clone()
    for i in range(x.shape[0]):
        if rng.random() < 0.5:
            out[i] = x[i].flip(-1)
    return out


def loop_random_rotate(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    out = x.clone()
    for i in range(x.shape[0]):
        if rng.random() < 0.5:
            out[i] = torch.rot90(x[i], rng.randint(1, 3), (1, 2))
    return out


def loop_random_translate(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    c, h, w = x.shape[1:]
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        canvas = torch.zeros(c, h + 2 * PAD, w + 2 * PAD, dtype=x.dtype)
        canvas[:, PAD : PAD + h, PAD : PAD + w] = x[i]
        dy, dx = rng.randint(0, 2 * PAD), rng.randint(0, 2 * PAD)
        out[i] = canvas[:, dy : dy + h, dx : dx + w]
    return out


def loop_random_shift(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        padded = F.pad(x[i : i + 1].float(), (PAD,) * 4, mode="replicate")[0]
        dy, dx = rng.randint(0, 2 * PAD), rng.randint(0, 2 * PAD)
        out[i] = padded[:, dy : dy + h, dx : dx + w].to(x.dtype)
    return out


#: name -> (batched augmentation, loop version of the same op)
CASES: dict[str, tuple[Augmentation, Loop]] = {
    "grayscale": (GrayScale(p=0.5), loop_grayscale),
    "color_jitter": (ColorJitter(), loop_color_jitter),
    "random_convolution": (RandomConvolution(), loop_random_convolution),
    "random_crop": (RandomCrop(size=CROP), loop_random_crop),
    "random_cutout": (RandomCutout(*CUT), loop_random_cutout),
    "random_cutout_color": (RandomCutoutColor(*CUT), loop_random_cutout_color),
    "random_flip": (RandomFlip(), loop_random_flip),
    "random_rotate": (RandomRotate(), loop_random_rotate),
    "random_translate": (RandomTranslate(pad=PAD), loop_random_translate),
    "random_shift": (RandomShift(pad=PAD), loop_random_shift),
}


def _time(fn: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name: str, x: torch.Tensor, rounds: int) -> dict[str, Any]:
    aug, loop = CASES[name]
    gen = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    batched_out = aug(x, gen)
    loop_out = loop(x, rng)  # warm-up, and a shape check
    for _ in range(2):  # more warm-up: first calls pay page faults on fresh allocations
        aug(x, gen)
        loop(x, rng)
    if batched_out.shape != loop_out.shape or batched_out.dtype != loop_out.dtype:
        raise AssertionError(f"{name}: batched {batched_out.shape} vs loop {loop_out.shape}")
    batched: list[float] = []
    looped: list[float] = []
    for r in range(rounds):
        order = ("b", "l") if r % 2 == 0 else ("l", "b")
        for which in order:
            if which == "b":
                batched.append(_time(lambda: aug(x, gen)))
            else:
                looped.append(_time(lambda: loop(x, rng)))
    b_med, l_med = statistics.median(batched), statistics.median(looped)
    return {
        "augmentation": name,
        "batched_ms": 1e3 * b_med,
        "loop_ms": 1e3 * l_med,
        "ratio": l_med / b_med,
        "batched_rounds_ms": [1e3 * t for t in batched],
        "loop_rounds_ms": [1e3 * t for t in looped],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="samples per batch")
    parser.add_argument("--frames", type=int, default=3, help="RGB frames per sample")
    parser.add_argument("--size", type=int, default=84, help="frame height and width")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (median reported)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)"
    )
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(CASES))
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    args = parser.parse_args(argv)
    if args.threads > 0:  # one thread by default: stable timings on small shared machines
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(
        0, 256, (args.batch, 3 * args.frames, args.size, args.size), dtype=torch.uint8
    )
    names = args.only or list(CASES)
    print(
        f"batch {tuple(x.shape)} uint8, {args.rounds} rounds, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"{'augmentation':<22}{'batched ms':>12}{'loop ms':>12}{'loop/batched':>14}")
    results = []
    for name in names:
        res = bench(name, x, args.rounds)
        results.append(res)
        print(f"{name:<22}{res['batched_ms']:>12.2f}{res['loop_ms']:>12.2f}{res['ratio']:>13.1f}x")
        sys.stdout.flush()
    if args.json is not None:
        payload = {
            "results": results,
            "settings": {
                "batch": args.batch,
                "channels": 3 * args.frames,
                "size": args.size,
                "dtype": "uint8",
                "rounds": args.rounds,
                "threads": torch.get_num_threads(),
            },
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "rlkit": rlkit.__version__,
            },
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
