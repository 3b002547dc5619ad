"""Run directories -> score matrices and learning curves, the figures, ``rlkit plot`` and
``rlkit compare`` (``rlkit.evaluation.runs``, ``.plots``, ``.cli``)."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlkit.cli.main import main
from rlkit.evaluation import cli
from rlkit.evaluation.plots import (
    plot_interval_estimates,
    plot_learning_curves,
    plot_performance_profiles,
    plot_probability_of_improvement,
    plot_sample_efficiency,
    t_band,
)
from rlkit.evaluation.runs import (
    RunInfo,
    final_score,
    find_runs,
    group_runs,
    learning_curve_matrix,
    load_progress,
    score_matrix,
)
from rlkit.evaluation.stats import (
    IntervalEstimate,
    interval_estimates,
    performance_profiles,
    probability_of_improvement_interval,
    sample_efficiency_curves,
)

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib (rlkit[plot])"
)
SEEDS = {"ppo": (0, 1, 2), "a2c": (0, 1)}  # unequal counts across algorithms are allowed


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    """Real run directories: tiny PPO and A2C trainings on CartPole through ``rlkit train``."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for algo, seeds in SEEDS.items():
        for seed in seeds:
            run_dir = root / f"{algo}-s{seed}"
            argv = ["train", algo, "--env", "CartPole-v1", "--total-steps", "1024"]
            argv += ["--num-envs", "2", "--num-steps", "16", "--seed", str(seed)]
            argv += ["--out", str(run_dir), "--no-progress", "--eval-episodes", "1"]
            assert main(argv) == 0
            out[(algo, seed)] = run_dir
    return out


def _fake_run(
    path: Path,
    algo: str,
    env_id: str,
    seed: int,
    rows: list[dict[str, Any]],
    score: float | None = None,
) -> Path:
    """A run directory written by hand (for edge cases a real run does not produce)."""
    (path / "final").mkdir(parents=True)
    config = {"format": 1, "agent": algo, "hyperparameters": {"seed": seed}, "env": {"id": env_id}}
    (path / "final" / "config.json").write_text(json.dumps(config))
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with (path / "progress.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, restval="")
        writer.writeheader()
        writer.writerows(rows)
    if score is not None:
        (path / "eval.json").write_text(json.dumps({"return_mean": score}))
    return path


def _linear_rows(slope: float, last: int = 1000, every: int = 100) -> list[dict[str, Any]]:
    return [
        {"global_step": s, "rollout/return_mean": slope * s} for s in range(every, last + 1, every)
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlkit")
    cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def _cli(*argv: str) -> int:
    return cli.run(_parser().parse_args(list(argv)))


def _check_png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    assert path.is_file() and path.stat().st_size > 5_000
    image = imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def _check_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 50


# ------------------------------------------------------------------------------- runs


def test_run_info_and_grouping(runs: dict[tuple[str, int], Path]) -> None:
    info = RunInfo.from_dir(runs[("ppo", 1)])
    assert (info.algorithm, info.env_id, info.seed) == ("ppo", "CartPole-v1", 1)
    assert info.path == runs[("ppo", 1)]
    reversed_dirs = list(reversed(runs.values()))
    groups = group_runs([*reversed_dirs, runs[("a2c", 0)]])  # a repeated directory counts once
    assert list(groups) == [("a2c", "CartPole-v1"), ("ppo", "CartPole-v1")]
    assert [r.seed for r in groups[("ppo", "CartPole-v1")]] == [0, 1, 2]
    assert [r.seed for r in groups[("a2c", "CartPole-v1")]] == [0, 1]


def test_find_runs_expands_a_directory_of_runs(runs: dict[tuple[str, int], Path]) -> None:
    parent = runs[("ppo", 0)].parent
    found = find_runs([parent, runs[("ppo", 0)]])
    assert sorted(found) == sorted(runs.values())
    with pytest.raises(FileNotFoundError, match="holds none"):
        find_runs([parent / "ppo-s0" / "final"])


def test_load_progress_matches_csv(runs: dict[tuple[str, int], Path]) -> None:
    run_dir = runs[("a2c", 0)]
    progress = load_progress(run_dir)
    with (run_dir / "progress.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"global_step", "rollout/return_mean", "time/sps"} <= set(progress)
    assert all(len(col) == len(rows) for col in progress.values())
    steps = progress["global_step"]
    assert steps[-1] == 1024 and np.all(np.diff(steps) > 0)
    expected = [
        float(r["rollout/return_mean"]) if r["rollout/return_mean"] else np.nan for r in rows
    ]
    np.testing.assert_array_equal(progress["rollout/return_mean"], expected)


def test_load_progress_empty_cells_are_nan(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"global_step": 10},
        {"global_step": 20, "rollout/return_mean": 3.5},
    ]
    progress = load_progress(_fake_run(tmp_path / "r", "ppo", "E-v0", 0, rows))
    assert np.isnan(progress["rollout/return_mean"][0])
    assert progress["rollout/return_mean"][1] == 3.5
    (tmp_path / "r" / "progress.csv").write_text("global_step,x\n1,abc\n")
    with pytest.raises(ValueError, match="'x' holds 'abc'"):
        load_progress(tmp_path / "r")


def test_final_score_prefers_eval_json(runs: dict[tuple[str, int], Path], tmp_path: Path) -> None:
    run_dir = runs[("ppo", 2)]
    assert final_score(run_dir) == json.loads((run_dir / "eval.json").read_text())["return_mean"]
    copy = Path(shutil.copytree(run_dir, tmp_path / "no-eval"))
    (copy / "eval.json").unlink()
    returns = load_progress(copy)["rollout/return_mean"]
    assert final_score(copy) == returns[np.isfinite(returns)][-1]
    rows = [{"global_step": 10, "rollout/return_mean": ""}]
    with pytest.raises(ValueError, match="no finished episode"):
        final_score(_fake_run(tmp_path / "empty", "ppo", "E-v0", 0, rows))


def test_score_matrix_from_real_runs(runs: dict[tuple[str, int], Path]) -> None:
    scores, tasks = score_matrix(runs.values())
    assert tasks == ["CartPole-v1"]
    assert set(scores) == {"ppo", "a2c"}
    assert scores["ppo"].shape == (3, 1) and scores["a2c"].shape == (2, 1)
    expected = [final_score(runs[("ppo", s)]) for s in (0, 1, 2)]
    np.testing.assert_array_equal(scores["ppo"][:, 0], expected)


def test_score_matrix_rejects_unequal_or_missing_tasks(tmp_path: Path) -> None:
    rows = _linear_rows(1.0)
    dirs = [
        _fake_run(tmp_path / "a0", "algo", "A-v0", 0, rows, 1.0),
        _fake_run(tmp_path / "a1", "algo", "A-v0", 1, rows, 2.0),
        _fake_run(tmp_path / "b0", "algo", "B-v0", 0, rows, 3.0),
    ]
    with pytest.raises(ValueError, match=r"algo has unequal run counts .*2 on A-v0, 1 on B-v0"):
        score_matrix(dirs)
    dirs.append(_fake_run(tmp_path / "b1", "algo", "B-v0", 1, rows, 4.0))
    scores, tasks = score_matrix(dirs)
    assert tasks == ["A-v0", "B-v0"]
    np.testing.assert_array_equal(scores["algo"], [[1.0, 3.0], [2.0, 4.0]])
    dirs.append(_fake_run(tmp_path / "o0", "other", "A-v0", 0, rows, 5.0))
    with pytest.raises(ValueError, match="other has no runs on B-v0"):
        score_matrix(dirs)


def test_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run directory"):
        RunInfo.from_dir(tmp_path / "nowhere")
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match=r"final/config\.json"):
        RunInfo.from_dir(tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match=r"has no progress\.csv"):
        load_progress(tmp_path / "bare")
    run_dir = _fake_run(tmp_path / "r", "ppo", "E-v0", 0, _linear_rows(1.0))
    with pytest.raises(ValueError, match="no column 'nope'"):
        learning_curve_matrix([run_dir], metric="nope")


def test_learning_curve_matrix_interpolates_on_common_grid(tmp_path: Path) -> None:
    rows = _linear_rows(2.0, last=1000)
    rows[3]["rollout/return_mean"] = ""  # a gap is interpolated over
    dirs = [
        _fake_run(tmp_path / "a0", "algo", "E-v0", 0, rows),
        _fake_run(tmp_path / "a1", "algo", "E-v0", 1, _linear_rows(3.0, last=800)),
        _fake_run(tmp_path / "b0", "base", "E-v0", 0, _linear_rows(1.0, last=600)),
    ]
    shared = learning_curve_matrix(dirs, points=11)
    steps, values = shared[("algo", "E-v0")]
    np.testing.assert_allclose(steps, np.linspace(100, 600, 11))  # the range every run reached
    np.testing.assert_allclose(values, [2.0 * steps, 3.0 * steps])
    np.testing.assert_array_equal(shared[("base", "E-v0")][0], steps)
    own = learning_curve_matrix(dirs, points=11, shared_grid=False)
    np.testing.assert_allclose(own[("algo", "E-v0")][0], np.linspace(100, 800, 11))


# ------------------------------------------------------------------------------ plots


def test_t_band_uses_student_t() -> None:
    values = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    low, high = t_band(values, 0.95)
    half = 4.302652729911275 * 2.0 / np.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    np.testing.assert_allclose(low, [2.0 - half, 1.0])
    np.testing.assert_allclose(high, [2.0 + half, 1.0])
    one_low, one_high = t_band(values[:1])
    np.testing.assert_array_equal(one_low, values[0])
    np.testing.assert_array_equal(one_high, values[0])


@needs_matplotlib
def test_learning_curves_one_panel_per_env(
    runs: dict[tuple[str, int], Path], tmp_path: Path
) -> None:
    one_env = _check_png(plot_learning_curves(runs.values(), tmp_path / "curves.png"))
    _check_svg(plot_learning_curves(runs.values(), tmp_path / "curves.svg"))
    other = [
        _fake_run(tmp_path / f"x{s}", "ppo", "Other-v0", s, _linear_rows(1.0 + s)) for s in (0, 1)
    ]
    two_envs = _check_png(plot_learning_curves([*runs.values(), *other], tmp_path / "two.png"))
    assert two_envs.shape[1] >= 1.8 * one_env.shape[1]  # a second panel beside the first
    assert abs(two_envs.shape[0] - one_env.shape[0]) <= 2


@needs_matplotlib
def test_aggregate_figures(runs: dict[tuple[str, int], Path], tmp_path: Path) -> None:
    scores, _ = score_matrix(runs.values())
    estimates = interval_estimates(scores, reps=200)
    _check_png(plot_interval_estimates(estimates, tmp_path / "intervals.png"))
    _check_svg(plot_interval_estimates(estimates, tmp_path / "intervals.svg"))
    taus = np.linspace(0, 500, 51)
    profiles = performance_profiles(scores, taus, reps=200)
    _check_png(plot_performance_profiles(profiles, taus, tmp_path / "profiles.png"))
    pair = probability_of_improvement_interval(scores["ppo"], scores["a2c"], reps=200)
    _check_png(plot_probability_of_improvement({("ppo", "a2c"): pair}, tmp_path / "poi.png"))
    curves = learning_curve_matrix(runs.values(), points=20)
    steps = curves[("ppo", "CartPole-v1")][0]
    by_algo = {algo: values[:, None, :] for (algo, _), (_, values) in curves.items()}
    efficiency = sample_efficiency_curves(by_algo, reps=200)
    _check_svg(plot_sample_efficiency(efficiency, steps, tmp_path / "efficiency.svg", "IQM"))
    with pytest.raises(ValueError, match="image format"):
        plot_interval_estimates(estimates, tmp_path / "intervals.jpg2")


def test_missing_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install rlkit\[plot\]"):
        plot_probability_of_improvement(
            {("a", "b"): IntervalEstimate(0.5, 0.4, 0.6)}, tmp_path / "x.png"
        )


# -------------------------------------------------------------------------------- CLI


@needs_matplotlib
def test_plot_command_every_kind(runs: dict[tuple[str, int], Path], tmp_path: Path) -> None:
    dirs = [str(p) for p in runs.values()]
    assert _cli("plot", *dirs, "-o", str(tmp_path / "learning.png")) == 0
    _check_png(tmp_path / "learning.png")
    parent = str(runs[("ppo", 0)].parent)  # a directory of runs stands for its runs
    assert _cli("plot", parent, "-o", str(tmp_path / "len.png"), "--metric", "time/sps") == 0
    _check_png(tmp_path / "len.png")
    for kind in ("intervals", "profiles", "improvement"):
        out = tmp_path / f"{kind}.svg"
        extra = ["--normalize", "CartPole-v1=0:500"] if kind == "intervals" else []
        assert _cli("plot", *dirs, "-o", str(out), "--kind", kind, "--reps", "200", *extra) == 0
        _check_svg(out)


def test_plot_command_errors(runs: dict[tuple[str, int], Path], tmp_path: Path) -> None:
    dirs = [str(p) for p in runs.values()]
    out = str(tmp_path / "x.png")
    with pytest.raises(ValueError, match="--metric applies to --kind learning"):
        _cli("plot", *dirs, "-o", out, "--kind", "intervals", "--metric", "time/sps")
    with pytest.raises(ValueError, match="no bounds for CartPole-v1"):
        _cli("plot", *dirs, "-o", out, "--kind", "intervals", "--normalize", "Other-v0=0:1")
    with pytest.raises(ValueError, match="ENV=LOW:HIGH"):
        _cli("plot", *dirs, "-o", out, "--kind", "intervals", "--normalize", "CartPole-v1")
    with pytest.raises(ValueError, match="at least two algorithms"):
        _cli("plot", str(runs[("ppo", 0)]), "-o", out, "--kind", "improvement")
    with pytest.raises(FileNotFoundError, match="no run directory"):
        _cli("plot", str(tmp_path / "missing"), "-o", out)
    with pytest.raises(SystemExit):  # argparse: -o is required
        _parser().parse_args(["plot", *dirs])


def test_compare_command(
    runs: dict[tuple[str, int], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = [str(p) for p in runs.values()]
    assert _cli("compare", *dirs, "--reps", "300") == 0
    text = capsys.readouterr().out
    for name in ("ppo", "a2c", "median", "iqm", "mean", "optimality_gap", "CartPole-v1"):
        assert name in text
    assert (
        _cli("compare", *dirs, "--reps", "300", "--json", "--normalize", "CartPole-v1=0:500") == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["tasks"] == ["CartPole-v1"] and result["normalized"] is True
    assert result["runs"] == {"a2c": 2, "ppo": 3}
    assert set(result["estimates"]) == {"ppo", "a2c"}
    for est in result["estimates"].values():
        assert set(est) == {"median", "iqm", "mean", "optimality_gap"}
        for e in est.values():
            assert e["low"] <= e["point"] <= e["high"]
    ppo_scores = [final_score(runs[("ppo", s)]) / 500.0 for s in (0, 1, 2)]
    np.testing.assert_allclose(np.ravel(result["scores"]["ppo"]), ppo_scores)
    # an unequal design is refused, naming the group
    extra = _fake_run(tmp_path / "other", "ppo", "Other-v0", 0, _linear_rows(1.0), 1.0)
    with pytest.raises(ValueError, match="a2c has no runs on Other-v0"):
        _cli("compare", *dirs, str(extra))
    ppo_dirs = [str(runs[("ppo", s)]) for s in (0, 1, 2)]
    with pytest.raises(ValueError, match="ppo has unequal run counts"):
        _cli("compare", *ppo_dirs, str(extra))
