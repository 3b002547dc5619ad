"""Learning curves from ``benchmarks/scores.py --json`` files: rlkit vs Stable-Baselines3 per task.

One row per task, two panels: the greedy evaluation return against env steps (the median over
seeds, with the band from the lowest to the highest seed: with two to five seeds a min-max band
says what was seen, where a Student-t band would be wider than the return's range) and against
training seconds (evaluations excluded; one thin line per run, since runs reach an evaluation
at different times), with the task's threshold dashed. Several JSON files may hold the same
task (other seeds): their runs are pooled.

    python benchmarks/scores.py --tasks cartpole-dqn --seeds 0 1 2 3 4 --json dqn.json
    python benchmarks/plot_scores.py dqn.json -o docs/images/scores_cartpole_dqn.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

COLOURS = {"rlkit": "tab:blue", "sb3": "tab:orange"}
LABELS = {"rlkit": "rlkit", "sb3": "Stable-Baselines3"}


def load_tasks(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Every task in ``paths`` by name: its description and the runs of all files pooled."""
    tasks: dict[str, dict[str, Any]] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for entry in data.get("tasks", []):
            name = entry["task"]["name"]
            pooled = tasks.setdefault(name, {"task": entry["task"], "runs": []})
            pooled["runs"].extend(r for r in entry["runs"] if r.get("evals"))
    return {name: t for name, t in tasks.items() if t["runs"]}


def curve_by_step(
    runs: list[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps, median, min and max of the evaluation return over runs, at the steps every run
    was evaluated at."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        for point in run["evals"]:
            by_step[int(point["step"])].append(float(point["return_mean"]))
    steps = sorted(s for s, values in by_step.items() if len(values) == len(runs))
    values = np.array([by_step[s] for s in steps], dtype=float).reshape(len(steps), len(runs))
    return np.array(steps), np.median(values, 1), values.min(1), values.max(1)


def plot(tasks: dict[str, dict[str, Any]], out: Path) -> None:
    """Write the figure (one row per task) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.6 * len(tasks)), squeeze=False)
    for row, (_name, entry) in enumerate(sorted(tasks.items())):
        task = entry["task"]
        by_step, by_time = axes[row]
        for library in ("rlkit", "sb3"):
            runs = [r for r in entry["runs"] if r["library"] == library]
            if not runs:
                continue
            colour = COLOURS[library]
            steps, median, low, high = curve_by_step(runs)
            seeds = sorted({int(r["seed"]) for r in runs})
            label = f"{LABELS[library]} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
            by_step.plot(steps, median, color=colour, label=label)
            by_step.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
            for i, run in enumerate(runs):
                times = [float(p["train_s"]) for p in run["evals"]]
                returns = [float(p["return_mean"]) for p in run["evals"]]
                by_time.plot(times, returns, color=colour, alpha=0.6, linewidth=1,
                             label=LABELS[library] if i == 0 else None)  # fmt: skip
        title = f"{task['env_id']}, {task['algo'].upper()}"
        for ax, xlabel in ((by_step, "env steps"), (by_time, "training seconds")):
            ax.axhline(float(task["threshold"]), color="grey", linestyle="--", linewidth=1)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("greedy return")
            ax.set_title(title + ("" if ax is by_step else " (one line per run)"))
            ax.grid(alpha=0.3)
        by_step.legend(loc="lower right", fontsize=8)
        by_time.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", type=Path, help="scores.py --json files")
    parser.add_argument("-o", "--out", type=Path, required=True, help="image to write (.png)")
    parser.add_argument("--tasks", nargs="+", default=None, help="only these tasks")
    args = parser.parse_args(argv)
    for path in args.json:
        if not path.is_file():
            parser.error(f"json: {path} is not a file")
    tasks = load_tasks(args.json)
    if args.tasks is not None:
        unknown = sorted(set(args.tasks) - set(tasks))
        if unknown:
            parser.error(f"--tasks: {', '.join(unknown)} not in the files (they hold: "
                         f"{', '.join(sorted(tasks)) or 'none'})")  # fmt: skip
        tasks = {k: v for k, v in tasks.items() if k in args.tasks}
    if not tasks:
        parser.error("the files hold no task with intermediate evaluations (run without --no-eval)")
    plot(tasks, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
