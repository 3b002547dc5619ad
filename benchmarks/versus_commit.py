"""Run one *_vs_sb3 benchmark under a base commit and under the working tree, alternating, in
one invocation: "parent vs this change, same run, same machine state".

    python benchmarks/versus_commit.py --base 74fb4e2 --rounds 3 ppo_cartpole_vs_sb3.py -- \\
        --steps 50000 --seeds 0 1
    python benchmarks/versus_commit.py --base HEAD~1 --head-args="--compute reference" \\
        sac_pendulum_vs_sb3.py -- --steps 5000

Everything after ``--`` goes to both versions of the script; ``--head-args`` / ``--base-args``
go to one only (the base's scripts may predate options such as ``--compute``).

How the base runs without touching the editable install: the base commit is checked out in a
temporary ``git worktree``, built into a wheel (``pip wheel --no-deps --no-build-isolation``)
and unpacked into a temporary ``site`` directory; the base's own copy of the script (in the
worktree, next to the sibling scripts it imports) then runs with ``PYTHONPATH=<site>`` from a
neutral temporary directory. The editable install's import finder only fills in ``rlkit.*``
modules that nothing earlier on the path provides, so every run is checked from inside its
process: each ``rlkit`` module loaded (``rlkit.agents`` first) must come from ``<site>`` for the
base and from this repository for the head, else the runner aborts. The head runs the working
tree's script in the normal environment, from the repository root.

Rounds alternate the order (base, head), (head, base), ... Each script writes ``--json``; the
runner reads its summary (rlkit and SB3 median steps/s, their ratio, the time to threshold
where the script reports one) and prints a table per round and a summary: medians per version
and the head/base ratio of rlkit steps/s paired by round. SB3's code is the same in both
versions, so its head/base ratio shows how much the machine drifted between the two runs of a
round. The worktree and temporary directories are removed at the end, also after an error.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"

#: runs a benchmark script after checking where rlkit comes from (argv: label, root, script,
#: script args); every ``rlkit`` module must be inside ``root``, before and after the run.
WRAPPER = """\
import os
import runpy
import sys


def outside(root):
    root = os.path.realpath(root) + os.sep
    bad = []
    for name, module in list(sys.modules.items()):
        if name != "rlkit" and not name.startswith("rlkit."):
            continue
        file = getattr(module, "__file__", None)
        paths = [file] if file else list(getattr(module, "__path__", None) or [])
        bad += [f"{name}: {p}" for p in paths if not os.path.realpath(p).startswith(root)]
    return bad


def check(label, root, when):
    bad = outside(root)
    if bad:
        print(f"[versus_commit] {label}: rlkit from outside {root} {when}:", file=sys.stderr)
        print("\\n".join("    " + line for line in bad), file=sys.stderr)
        sys.exit(97)


label, root, script, *args = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(script))  # as if the script ran directly
import rlkit.agents

where = os.path.realpath(rlkit.agents.__file__)
ok = where.startswith(os.path.realpath(root) + os.sep)
print(
    f"[versus_commit] {label}: rlkit.agents from {where}: " + ("ok" if ok else "WRONG PLACE"),
    file=sys.stderr,
    flush=True,
)
if not ok:
    sys.exit(97)
check(label, root, "before the run")
sys.argv = [script, *args]
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code
check(label, root, "after the run")
sys.exit(code)
"""

#: exit status of the wrapper when rlkit comes from the wrong place.
WRONG_PLACE = 97


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _log(message: str) -> None:
    print(f"[versus_commit] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The runner's options (before ``--``) and the scripts' common arguments (after it)."""
    if "--" in argv:
        cut = argv.index("--")
        own, script_args = argv[:cut], argv[cut + 1 :]
    else:
        own, script_args = argv, []
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="arguments after -- go to both versions of the script; give --head-args and "
        '--base-args with "=" when their value starts with "-" (--head-args="--compute '
        'reference")',
    )
    parser.add_argument("--base", required=True, help="base commit (any git revision)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (each runs both versions)")
    parser.add_argument("--head-args", default="", help="extra arguments for the working tree's")
    parser.add_argument("--base-args", default="", help="extra arguments for the base's script")
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    parser.add_argument(
        "--show-output", action="store_true", help="print each run's report (stdout) too"
    )
    parser.add_argument(
        "script", help="benchmark script in benchmarks/, e.g. ppo_cartpole_vs_sb3.py"
    )
    args = parser.parse_args(own)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    args.script = Path(args.script).name
    if not (BENCHMARKS / args.script).is_file():
        parser.error(f"no benchmarks/{args.script} in the working tree")
    if "--json" in script_args:
        parser.error("give --json to the runner; it passes its own --json to each script")
    return args, script_args


# --------------------------------------------------------------------------- the base's build
def build_base(commit: str, tmp: Path) -> tuple[Path, Path]:
    """Check ``commit`` out as a worktree and unpack its wheel; returns (worktree, site)."""
    worktree, wheels, site = tmp / "worktree", tmp / "wheel", tmp / "site"
    _log(f"git worktree add --detach {worktree} {commit[:12]}")
    _git("worktree", "add", "--detach", str(worktree), commit)
    _log("building the base's wheel (pip wheel --no-deps --no-build-isolation)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(wheels),
            str(worktree),
        ],
        check=True,
        cwd=tmp,
    )
    built = sorted(wheels.glob("*.whl"))
    if len(built) != 1:
        raise RuntimeError(f"expected one wheel in {wheels}, found {[p.name for p in built]}")
    with zipfile.ZipFile(built[0]) as wheel:
        wheel.extractall(site)
    if not (site / "rlkit" / "agents" / "__init__.py").is_file():
        raise RuntimeError(f"the base's wheel {built[0].name} has no rlkit/agents package")
    return worktree, site


# --------------------------------------------------------------------------- one run
def run_script(
    version: str,
    script: Path,
    args: list[str],
    json_path: Path,
    cwd: Path,
    env: dict[str, str],
    root: Path,
    wrapper: Path,
    show_output: bool,
) -> dict[str, Any]:
    """Run ``script`` (through the checking wrapper) with ``--json``; returns the payload."""
    command = [sys.executable, str(wrapper), version, str(root), str(script), *args]
    command += ["--json", str(json_path)]
    _log(f"{version}: {shlex.join(command[4:])}  (cwd {cwd})")
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if show_output or proc.returncode != 0:
        print(proc.stdout, flush=True)
    if proc.returncode == WRONG_PLACE:
        raise SystemExit(f"{version}: rlkit was not imported from {root}; aborting")
    if proc.returncode != 0:
        raise SystemExit(f"{version}: the benchmark exited with status {proc.returncode}")
    payload: dict[str, Any] = json.loads(json_path.read_text())
    payload["_wall_s"] = wall
    return payload


def _path_of(payload: dict[str, Any]) -> str:
    """rlkit's compute path as the script recorded it (newer: the backend; older: fused)."""
    backend = payload.get("rlkit_backend")
    if isinstance(backend, dict) and backend.get("name"):
        name = str(backend["name"])
        return f"{name} ({backend['compiler']})" if name == "compile" else name
    fused = [r.get("fused") for r in payload.get("runs", []) if r.get("library") == "rlkit"]
    if fused and fused[0] is not None:
        return "fused kernels" if fused[0] else "autograd"
    args = payload.get("args", {})
    return "autograd" if args.get("rlkit_autograd") else "default"


def _threshold(entry: Any) -> dict[str, Any] | None:
    return entry.get("threshold") if isinstance(entry, dict) else None


def extract(payload: dict[str, Any]) -> dict[str, Any]:
    """The figures compared across versions (None where the script does not report them)."""
    summary = payload.get("summary", {})
    rl, sb = summary.get("rlkit", {}), summary.get("sb3", {})
    threshold = summary.get("threshold") or {}
    return {
        "rlkit_sps": rl.get("sps_median"),
        "sb3_sps": sb.get("sps_median"),
        "ratio": summary.get("ratio_median"),
        "rlkit_return": rl.get("return_mean_of_runs"),
        "sb3_return": sb.get("return_mean_of_runs"),
        "threshold": threshold.get("value"),
        "rlkit_to_threshold": _threshold(rl),
        "sb3_to_threshold": _threshold(sb),
        "threshold_time_ratio": threshold.get("time_ratio"),
        "rlkit_path": _path_of(payload),
        "wall_s": payload.get("_wall_s"),
    }


# --------------------------------------------------------------------------- reporting
def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _to_threshold(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    count = f"({entry.get('reached')}/{entry.get('runs')})"
    if entry.get("time_s_median") is None:
        return f"not reached {count}"
    return f"{entry['time_s_median']:.2f} s {count}"


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


HEADER = (
    f"{'version':<8} {'rlkit path':<14} {'rlkit steps/s':>13} {'sb3 steps/s':>12} "
    f"{'rlkit/sb3':>9} {'rlkit to thr.':>18} {'sb3 to thr.':>18} {'wall s':>7}"
)


def _row(version: str, fig: dict[str, Any]) -> str:
    return (
        f"{version:<8} {fig['rlkit_path']:<14} {_num(fig['rlkit_sps']):>13} "
        f"{_num(fig['sb3_sps']):>12} {_num(fig['ratio'], '.2f'):>9} "
        f"{_to_threshold(fig['rlkit_to_threshold']):>18} "
        f"{_to_threshold(fig['sb3_to_threshold']):>18} {_num(fig['wall_s'], '.0f'):>7}"
    )


def print_round(index: int, order: list[str], figures: dict[str, dict[str, Any]]) -> None:
    print()
    print(f"round {index + 1} (order: {', '.join(order)})")
    print(HEADER)
    print("-" * len(HEADER))
    for version in ("base", "head"):
        print(_row(version, figures[version]))
    head, base = figures["head"], figures["base"]
    rl = _ratio(head["rlkit_sps"], base["rlkit_sps"])
    sb = _ratio(head["sb3_sps"], base["sb3_sps"])
    print(
        f"head/base rlkit steps/s {_num(rl, '.3f')}   (sb3, same code in both: {_num(sb, '.3f')})"
    )


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds per version, and head/base ratios paired by round."""
    out: dict[str, Any] = {}
    for version in ("base", "head"):
        figs = [r[version] for r in rounds]
        out[version] = {
            "rlkit_sps_median": _median([f["rlkit_sps"] for f in figs]),
            "sb3_sps_median": _median([f["sb3_sps"] for f in figs]),
            "ratio_median": _median([f["ratio"] for f in figs]),
            "rlkit_time_to_threshold_median": _median(
                [(f["rlkit_to_threshold"] or {}).get("time_s_median") for f in figs]
            ),
            "sb3_time_to_threshold_median": _median(
                [(f["sb3_to_threshold"] or {}).get("time_s_median") for f in figs]
            ),
            "has_threshold": any(f["rlkit_to_threshold"] is not None for f in figs),
        }
    paired = {
        "rlkit_sps": [_ratio(r["head"]["rlkit_sps"], r["base"]["rlkit_sps"]) for r in rounds],
        "sb3_sps": [_ratio(r["head"]["sb3_sps"], r["base"]["sb3_sps"]) for r in rounds],
        "ratio": [_ratio(r["head"]["ratio"], r["base"]["ratio"]) for r in rounds],
    }
    out["head_over_base"] = {
        "rlkit_sps_per_round": paired["rlkit_sps"],
        "rlkit_sps_median": _median(paired["rlkit_sps"]),
        "sb3_sps_per_round": paired["sb3_sps"],
        "sb3_sps_median": _median(paired["sb3_sps"]),
        "ratio_per_round": paired["ratio"],
        "ratio_median": _median(paired["ratio"]),
    }
    return out


def print_summary(summary: dict[str, Any], rounds: int) -> None:
    base, head, rel = summary["base"], summary["head"], summary["head_over_base"]
    print()
    print(f"{'summary over ' + str(rounds) + ' round(s), medians':<36} {'base':>12} {'head':>12}")

    def line(label: str, key: str, fmt: str, extra: str = "") -> None:
        print(f"{label:<36} {_num(base[key], fmt):>12} {_num(head[key], fmt):>12}{extra}")

    line("  rlkit steps/s", "rlkit_sps_median", ",.0f")
    line("  sb3 steps/s", "sb3_sps_median", ",.0f")
    line("  rlkit/sb3 steps/s", "ratio_median", ".2f")
    if base["has_threshold"] or head["has_threshold"]:
        line("  rlkit time to threshold (s)", "rlkit_time_to_threshold_median", ".2f")
        line("  sb3 time to threshold (s)", "sb3_time_to_threshold_median", ".2f")
    print()
    print(
        f"head/base rlkit steps/s, median of the per-round ratios: "
        f"{_num(rel['rlkit_sps_median'], '.3f')}  "
        f"(per round: {', '.join(_num(v, '.3f') for v in rel['rlkit_sps_per_round'])})"
    )
    print(
        f"head/base of rlkit/sb3, median per round: {_num(rel['ratio_median'], '.3f')}   "
        f"sb3 head/base (same code: machine drift): {_num(rel['sb3_sps_median'], '.3f')}"
    )
    print()


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args, common = parse_args(sys.argv[1:] if argv is None else argv)
    base_sha = _git("rev-parse", "--verify", f"{args.base}^{{commit}}")
    head_sha = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    try:
        _git("cat-file", "-e", f"{base_sha}:benchmarks/{args.script}")
    except subprocess.CalledProcessError:
        sys.exit(f"benchmarks/{args.script} does not exist at {args.base} ({base_sha[:12]})")
    head_extra, base_extra = shlex.split(args.head_args), shlex.split(args.base_args)
    tmp = Path(tempfile.mkdtemp(prefix="versus_commit-"))
    worktree: Path | None = None
    try:
        neutral = tmp / "neutral"  # the base's cwd: nothing importable in it
        outputs = tmp / "json"
        neutral.mkdir()
        outputs.mkdir()
        wrapper = tmp / "run_checked.py"
        wrapper.write_text(WRAPPER)
        worktree = tmp / "worktree"
        worktree, site = build_base(base_sha, tmp)
        base_env = {**os.environ, "PYTHONPATH": str(site)}
        head_env = dict(os.environ)
        setups = {
            "base": (
                worktree / "benchmarks" / args.script,
                common + base_extra,
                neutral,
                base_env,
                site,
            ),
            "head": (BENCHMARKS / args.script, common + head_extra, REPO, head_env, REPO),
        }
        rounds: list[dict[str, Any]] = []
        raw: list[dict[str, Any]] = []
        for index in range(args.rounds):
            order = ["base", "head"] if index % 2 == 0 else ["head", "base"]
            figures: dict[str, dict[str, Any]] = {}
            payloads: dict[str, dict[str, Any]] = {}
            for version in order:
                script, script_args, cwd, env, root = setups[version]
                payload = run_script(
                    version,
                    script,
                    script_args,
                    outputs / f"round{index}-{version}.json",
                    cwd,
                    env,
                    root,
                    wrapper,
                    args.show_output,
                )
                payloads[version] = payload
                figures[version] = extract(payload)
            rounds.append({"round": index, "order": order, **figures})
            raw.append({"round": index, **payloads})
            print_round(index, order, figures)
        summary = summarize(rounds)
        print(
            f"\n{args.script}: base {args.base} ({base_sha[:12]}) vs head {head_sha[:12]}"
            + (" + uncommitted changes" if dirty else "")
        )
        print(f"  both: {shlex.join(common) or '(defaults)'}")
        if base_extra or head_extra:
            print(
                f"  base only: {shlex.join(base_extra) or '-'}; "
                f"head only: {shlex.join(head_extra) or '-'}"
            )
        print_summary(summary, args.rounds)
        if args.json is not None:
            result = {
                "script": args.script,
                "base": {"revision": args.base, "commit": base_sha, "extra_args": base_extra},
                "head": {"commit": head_sha, "dirty": dirty, "extra_args": head_extra},
                "common_args": common,
                "rounds": rounds,
                "summary": summary,
                "raw": raw,
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {args.json}")
    finally:
        if worktree is not None and worktree.exists():
            try:
                _git("worktree", "remove", "--force", str(worktree))
            except subprocess.CalledProcessError as exc:
                _log(f"git worktree remove failed: {exc.stderr.strip()}")
                _log("if it is still listed by 'git worktree list', run 'git worktree prune'")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
