"""Run the learning tests' training settings over many seeds: how every learning threshold in
``tests/`` was validated (a threshold must hold for every seed tried, not for a seed picked
because it passes).

    python benchmarks/learning_seeds.py --list
    python benchmarks/learning_seeds.py dqn_cartpole --seeds 0-11
    python benchmarks/learning_seeds.py ppo_cartpole sac_pendulum --seeds 0-4 --json sweep.json

Each name is a function ``name(seed)`` defined next to its test (the test runs seed 0); this
script imports the test modules and prints one line per (name, seed) with the scores the test
asserts on, then a summary per name. Runs are sequential; torch uses one thread.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

TESTS = Path(__file__).resolve().parents[1] / "tests"

#: name -> (test module, what the test asserts)
RUNS: dict[str, tuple[str, str]] = {
    "ppo_cartpole": ("test_learning", "best >= 475 (reached_at > 0)"),
    "a2c_cartpole": ("test_learning", "best >= 475 (reached_at > 0)"),
    "reinforce_cartpole": ("test_reinforce", "best >= 475 (reached_at > 0)"),
    "trpo_cartpole": ("test_trpo", "best >= 475 (reached_at > 0)"),
    "vmpo_cartpole": ("test_vmpo", "best >= 475 (reached_at > 0)"),
    "ppo_pendulum": ("test_learning", "return_mean >= -400"),
    "ppo_lstm_cartpole_novel": ("test_recurrent_learning", "best >= 400 (reached_at > 0)"),
    "ppo_mlp_cartpole_novel": ("test_recurrent_learning", "best < 200"),
    "ppo_lstm_cue_recall": ("test_recurrent_learning", "best >= 0.99 (reached_at > 0)"),
    "r2d2_lstm_cartpole_novel": ("test_recurrent_learning", "best >= 300 (reached_at > 0)"),
    "rsac_pendulum_novel": ("test_recurrent_learning", "(not in the suite) return_mean"),
    "ppo_transformer_cue_recall": ("test_recurrent_learning", "best >= 0.99 (reached_at > 0)"),
    "dqn_cartpole": ("test_off_policy_learning", "max(30k, 40k, 50k) >= 200"),
    "qrdqn_cartpole": ("test_qrdqn", "reaches 200 (stops there)"),
    "c51_cartpole": ("test_value_family_learning", "reaches 200 (stops there)"),
    "iqn_cartpole": ("test_value_family_learning", "reaches 200 (stops there)"),
    "mdqn_cartpole": ("test_value_family_learning", "reaches 200 (stops there)"),
    "rainbow_cartpole": ("test_value_family_learning", "reaches 200 (stops there)"),
    "rainbow_iqn_cartpole": ("test_value_family_learning", "reaches 200 (stops there)"),
    "sac_pendulum": ("test_off_policy_learning", "return_mean >= -250"),
    "td3_pendulum": ("test_off_policy_learning", "return_mean >= -250"),
    "tqc_pendulum": ("test_tqc", "return_mean >= -250"),
    "mpo_pendulum": ("test_mpo", "return_mean >= -250"),
    "redq_pendulum": ("test_redq", "return_mean >= -250"),
    "crossq_pendulum": ("test_crossq", "return_mean >= -250"),
    "pqn_cartpole": ("test_pqn", "reaches 400 (stops there)"),
    "drac_pixel_reach": ("test_learning_catalogue", "return_mean >= 0.95, length_mean <= 5"),
    "daac_cartpole": ("test_learning_catalogue", "return_mean >= 475"),
    "ppg_cartpole": ("test_learning_catalogue", "return_mean >= 475"),
    "drqv2_point_mass": ("test_drqv2_learning", "return_mean >= -25"),
    "impala_cartpole": ("test_distributed", "return_mean >= 400"),
    "appo_cartpole": ("test_distributed", "best >= 475 (reached_at > 0)"),
    "apex_cartpole": ("test_apex", "reaches 200 (stops there)"),
    "mappo_spread": ("test_multi_agent_learning", "return_mean >= -23.0"),
    "selfplay_tictactoe": ("test_multi_agent_learning", "vs_random >= 0.75 (vs_minimax reported)"),
    "negamax_tictactoe": ("test_multi_agent_learning", "vs_random >= 0.95, vs_minimax >= 0.80"),
    "tune_search": ("test_tune_learning", "best >= start + 200, best lr >= 1e-4"),
    "tune_pruning": ("test_tune_learning", "complete, complete, pruned, pruned"),
}


def _seeds(text: list[str]) -> list[int]:
    out: list[int] = []
    for part in text:
        if "-" in part:
            lo, hi = part.split("-")
            out += list(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def _load(module: str) -> Any:
    sys.path.insert(0, str(TESTS))
    spec = importlib.util.spec_from_file_location(module, TESTS / f"{module}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="runs (default: all)")
    parser.add_argument("--seeds", nargs="+", default=["0-4"], help="e.g. 0-4 7")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument("--json", help="also write every result to this file")
    args = parser.parse_args()
    if args.list:
        for name, (module, check) in RUNS.items():
            print(f"{name:<18} tests/{module}.py   {check}")
        return
    torch.set_num_threads(1)
    names = args.names or list(RUNS)
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        raise SystemExit(f"unknown run(s) {', '.join(unknown)}; see --list")
    results: list[dict[str, Any]] = []
    for name in names:
        module, check = RUNS[name]
        run = getattr(_load(module), name)
        for seed in _seeds(args.seeds):
            start = time.perf_counter()
            scores = run(seed)
            row = {"name": name, "seed": seed, "seconds": round(time.perf_counter() - start, 1)}
            row.update({str(k): v for k, v in scores.items()})
            results.append(row)
            print(json.dumps(row), flush=True)
        print(f"# {name}: the test asserts {check}", flush=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    machine["torch"] = torch.__version__
    print(json.dumps(machine))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
