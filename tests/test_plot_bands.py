"""Bands around learning curves (``rlkit.evaluation.plots``, ``rlkit plot --band``): they stay
within the runs' range for few runs, the bootstrap is deterministic, and the CLI option."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlkit.cli.main import main
from rlkit.evaluation.plots import (
    MIN_BOOTSTRAP_RUNS,
    bootstrap_band,
    curve_band,
    plot_learning_curves,
    range_band,
    resolve_band,
    t_band,
)
from rlkit.evaluation.runs import learning_curve_matrix

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib (rlkit[plot])"
)
# two CartPole-like runs in 0..500 that disagree a lot: a t band with 1 dof spans far outside
TWO_RUNS = np.array(
    [
        [9.0, 20.0, 60.0, 150.0, 320.0, 500.0, 500.0],
        [11.0, 15.0, 25.0, 40.0, 90.0, 200.0, 480.0],
    ]
)


def _ten_runs(spread: float) -> np.ndarray:
    """10 runs of 50 steps: a shared rising curve plus noise of scale ``spread``."""
    rng = np.random.default_rng(3)
    return np.linspace(0.0, 400.0, 50) + spread * rng.normal(size=(10, 50))


def _within_runs(low: np.ndarray, high: np.ndarray, values: np.ndarray) -> None:
    assert np.all(low <= high)
    assert np.all(low >= values.min(axis=0)) and np.all(high <= values.max(axis=0))


def _fake_run(path: Path, algo: str, seed: int, returns: np.ndarray) -> str:
    """A run directory written by hand: ``returns`` logged every 100 steps on CartPole-v1."""
    (path / "final").mkdir(parents=True)
    config = {"format": 1, "agent": algo, "hyperparameters": {"seed": seed}}
    config["env"] = {"id": "CartPole-v1"}
    (path / "final" / "config.json").write_text(json.dumps(config))
    with (path / "progress.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["global_step", "rollout/return_mean"])
        writer.writerows([100 * (i + 1), r] for i, r in enumerate(returns))
    return str(path)


# ------------------------------------------------------------------------------ bands


def test_auto_band_for_two_runs_stays_within_their_range() -> None:
    t_low, t_high = t_band(TWO_RUNS)
    assert t_low.min() < 0.0 and t_high.max() > 500.0  # the problem: outside 0..500
    band = curve_band(TWO_RUNS)
    assert band is not None
    low, high, kind = band
    assert kind == "range"
    _within_runs(low, high, TWO_RUNS)
    np.testing.assert_array_equal(low, TWO_RUNS.min(axis=0))
    np.testing.assert_array_equal(high, TWO_RUNS.max(axis=0))


def test_auto_picks_band_by_run_count() -> None:
    assert resolve_band("auto", 1) == "none"
    assert [resolve_band("auto", n) for n in range(2, MIN_BOOTSTRAP_RUNS)] == ["range"] * 3
    assert resolve_band("auto", MIN_BOOTSTRAP_RUNS) == "bootstrap"
    assert resolve_band("t", 2) == "t" and resolve_band("none", 10) == "none"
    assert resolve_band("bootstrap", 1) == "none"  # one run has no spread to show
    assert curve_band(TWO_RUNS[:1]) is None
    with pytest.raises(ValueError, match="band must be one of auto, bootstrap, range, t, none"):
        resolve_band("sd", 3)


def test_bootstrap_band_contains_mean_within_range_and_is_deterministic() -> None:
    values = _ten_runs(60.0)
    low, high = bootstrap_band(values, 0.95, 2000, 0)
    mean = values.mean(axis=0)
    assert np.all(low <= mean) and np.all(mean <= high)
    _within_runs(low, high, values)
    assert np.all(high - low < 0.8 * (values.max(axis=0) - values.min(axis=0)))
    again = bootstrap_band(values, 0.95, 2000, 0)
    np.testing.assert_array_equal(low, again[0])
    np.testing.assert_array_equal(high, again[1])
    band = curve_band(values, "auto", 0.95, 2000, 0)
    assert band is not None and band[2] == "bootstrap"
    np.testing.assert_array_equal(band[0], low)


def test_bootstrap_band_narrows_when_runs_agree() -> None:
    wide_low, wide_high = bootstrap_band(_ten_runs(60.0))
    narrow_low, narrow_high = bootstrap_band(_ten_runs(6.0))
    assert np.all(narrow_high - narrow_low < wide_high - wide_low)
    np.testing.assert_allclose(narrow_high - narrow_low, (wide_high - wide_low) / 10)
    same_low, same_high = bootstrap_band(np.ones((10, 4)))  # identical runs: no width
    np.testing.assert_array_equal(same_low, np.ones(4))
    np.testing.assert_array_equal(same_high, np.ones(4))


def test_bootstrap_band_edge_cases() -> None:
    low, high = bootstrap_band(TWO_RUNS)  # any run count: still within the range
    _within_runs(low, high, TWO_RUNS)
    one_low, one_high = bootstrap_band(TWO_RUNS[:1])
    np.testing.assert_array_equal(one_low, TWO_RUNS[0])
    np.testing.assert_array_equal(one_high, TWO_RUNS[0])
    lower_conf = bootstrap_band(_ten_runs(60.0), confidence=0.5)
    full = bootstrap_band(_ten_runs(60.0), confidence=0.95)
    assert np.all(lower_conf[1] - lower_conf[0] <= full[1] - full[0])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        bootstrap_band(TWO_RUNS, confidence=1.0)
    with pytest.raises(ValueError, match="resamples must be >= 1"):
        bootstrap_band(TWO_RUNS, resamples=0)
    with pytest.raises(ValueError, match="at least one run"):
        range_band(np.empty((0, 3)))


# ------------------------------------------------------------------------------ plots


@needs_matplotlib
def test_learning_curve_plot_draws_range_for_two_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib
    from matplotlib.axes import Axes

    dirs = [_fake_run(tmp_path / f"ppo-s{s}", "ppo", s, r) for s, r in enumerate(TWO_RUNS)]
    drawn: list[tuple[np.ndarray, np.ndarray]] = []
    fill_between = Axes.fill_between

    def record(self: Axes, x: Any, low: Any, high: Any, **kwargs: Any) -> Any:
        drawn.append((np.asarray(low), np.asarray(high)))
        return fill_between(self, x, low, high, **kwargs)

    monkeypatch.setattr(Axes, "fill_between", record)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays searchable
        svg = plot_learning_curves(dirs, tmp_path / "curves.svg").read_text()
    assert "range over 2 runs" in svg and "band: min-max range of runs" in svg
    ((_, values),) = learning_curve_matrix(dirs, points=100, shared_grid=False).values()
    assert len(drawn) == 1
    _within_runs(*drawn[0], values)
    assert values.min() >= 0.0 and values.max() <= 500.0

    drawn.clear()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        svg = plot_learning_curves(dirs, tmp_path / "t.svg", band="t").read_text()
    assert "Student-t CI" in svg and drawn[0][0].min() < 0.0  # the old band, on request
    drawn.clear()
    plot_learning_curves(dirs, tmp_path / "none.png", band="none")
    assert not drawn
    with pytest.raises(ValueError, match="band must be one of"):
        plot_learning_curves(dirs, tmp_path / "x.png", band="sd")


# -------------------------------------------------------------------------------- CLI


@needs_matplotlib
@pytest.mark.parametrize("band", ["none", "t", "auto", "bootstrap", "range"])
def test_plot_command_accepts_band(
    band: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = [_fake_run(tmp_path / f"ppo-s{s}", "ppo", s, r) for s, r in enumerate(TWO_RUNS)]
    out = tmp_path / f"{band}.png"
    assert main(["plot", *dirs, "-o", str(out), "--band", band, "--reps", "200"]) == 0
    assert out.is_file() and out.stat().st_size > 5_000
    assert f"saved {out}" in capsys.readouterr().out


def test_plot_command_rejects_bad_band(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(tmp_path), "-o", str(tmp_path / "x.png"), "--band", "sd"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rlkit: error: argument --band")
    assert "invalid choice: 'sd'" in err
    dirs = [_fake_run(tmp_path / f"ppo-s{s}", "ppo", s, r) for s, r in enumerate(TWO_RUNS)]
    argv = ["plot", *dirs, "-o", str(tmp_path / "x.svg"), "--kind", "profiles", "--band", "t"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "rlkit: error: --band applies to --kind learning only\n"
