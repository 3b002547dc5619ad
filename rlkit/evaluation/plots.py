"""Figures for evaluation results: learning curves, interval estimates, performance profiles,
probability of improvement and sample-efficiency curves.

Needs matplotlib (``pip install rlkit[plot]``), imported only when a function is called.
Figures are drawn on matplotlib's non-interactive Agg canvas without touching pyplot's global
state (no display needed, no backend switch in the caller's session) and saved as PNG, SVG or
PDF by ``path``'s extension, at 150 dpi.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlkit.evaluation.runs import DEFAULT_METRIC, PathLike, learning_curve_matrix

if TYPE_CHECKING:
    from rlkit.evaluation.stats import IntervalEstimate

FORMATS = (".png", ".svg", ".pdf")
DPI = 150
METRIC_LABELS = {
    "median": "Median",
    "iqm": "IQM",
    "mean": "Mean",
    "optimality_gap": "Optimality gap",
}
Curve = tuple[np.ndarray, np.ndarray, np.ndarray]
BANDS = ("auto", "bootstrap", "range", "t", "none")
# From 5 runs on, a percentile bootstrap of the mean is a usable interval; with 2 to 4 runs it
# has at most 35 distinct resampled means and covers poorly, and a Student-t band is mostly
# the huge t quantile (12.7 for 2 runs), so "auto" shows the runs' range instead.
MIN_BOOTSTRAP_RUNS = 5
_BOOTSTRAP_ELEMENTS = 1 << 22  # resampled means held at once by bootstrap_band (32 MiB)


def _matplotlib() -> Any:
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib: install it with `pip install rlkit[plot]`"
        ) from None
    return Figure, FigureCanvasAgg


def _output(path: PathLike) -> Path:
    """Check that matplotlib is there and ``path`` names a known image format."""
    _matplotlib()
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(
            f"cannot tell the image format of {out}: use a file name ending in {', '.join(FORMATS)}"
        )
    return out


def _figure(nrows: int = 1, ncols: int = 1, panel: tuple[float, float] = (5.0, 3.6)) -> Any:
    figure_cls, canvas_cls = _matplotlib()
    fig = figure_cls(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    canvas_cls(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format=path.suffix.lower()[1:])
    return path


def _colors(names: Iterable[str]) -> dict[str, Any]:
    """A fixed color per name (matplotlib's tab10 cycle, in the given order)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(dict.fromkeys(names))}


def _steps_axis(ax: Any) -> None:
    from matplotlib.ticker import EngFormatter

    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel("Environment steps")


def plot_interval_estimates(
    estimates: Mapping[str, Mapping[str, IntervalEstimate]],
    path: PathLike,
    metrics: Sequence[str] | None = None,
    xlabel: str = "Score",
    title: str | None = None,
) -> Path:
    """One panel per aggregate metric (``estimates[algorithm][metric]``, as returned by
    ``interval_estimates``), one bar per algorithm spanning its confidence interval with a
    tick at the point estimate."""
    out = _output(path)
    algorithms = list(estimates)
    if not algorithms:
        raise ValueError("no estimates to plot")
    if metrics is None:
        metrics = list(dict.fromkeys(m for algo in algorithms for m in estimates[algo]))
    colors = _colors(algorithms)
    fig = _figure(1, len(metrics), panel=(2.7, 0.5 * len(algorithms) + 1.4))
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for row, algo in enumerate(algorithms):
            if metric not in estimates[algo]:
                raise ValueError(f"no {metric!r} estimate for {algo}")
            est = estimates[algo][metric]
            ax.barh(
                row,
                est.high - est.low,
                left=est.low,
                height=0.6,
                color=colors[algo],
                alpha=0.75,
            )
            ax.vlines(est.point, row - 0.35, row + 0.35, color="black", linewidth=2)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
        ax.use_sticky_edges = False  # keep a margin so zero-width intervals stay visible
        ax.margins(x=0.08)
    axes[0].set_yticks(range(len(algorithms)), algorithms)
    axes[0].set_ylim(-0.6, len(algorithms) - 0.4)
    axes[0].invert_yaxis()
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_performance_profiles(
    profiles: Mapping[str, Curve],
    taus: np.ndarray | Sequence[float],
    path: PathLike,
    xlabel: str = r"Score threshold $\tau$",
    title: str | None = None,
) -> Path:
    """Score distributions (``performance_profiles``' ``algorithm -> (point, low, high)``
    over ``taus``): the fraction of runs scoring above each threshold, with its band."""
    out = _output(path)
    if not profiles:
        raise ValueError("no profiles to plot")
    x = np.asarray(taus, dtype=np.float64)
    colors = _colors(profiles)
    fig = _figure(panel=(5.5, 3.8))
    ax = fig.add_subplot()
    for algo, (point, low, high) in profiles.items():
        ax.plot(x, point, color=colors[algo], label=algo, linewidth=2)
        ax.fill_between(x, low, high, color=colors[algo], alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"Fraction of runs with score $> \tau$")
    ax.set_ylim(0.0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "Performance profiles")
    return _save(fig, out)


def plot_probability_of_improvement(
    pairs: Mapping[tuple[str, str], IntervalEstimate],
    path: PathLike,
    title: str | None = None,
) -> Path:
    """``P(X > Y)`` with its confidence interval for each pair ``(X, Y)``; the dashed line at
    0.5 is "no difference"."""
    out = _output(path)
    if not pairs:
        raise ValueError("no algorithm pairs to plot")
    colors = _colors(x for x, _ in pairs)
    fig = _figure(panel=(5.5, 0.45 * len(pairs) + 1.4))
    ax = fig.add_subplot()
    labels = []
    for row, ((x, y), est) in enumerate(pairs.items()):
        ax.barh(row, est.high - est.low, left=est.low, height=0.6, color=colors[x], alpha=0.75)
        ax.vlines(est.point, row - 0.3, row + 0.3, color="black", linewidth=2)
        labels.append(f"{x} vs {y}")
    ax.axvline(0.5, color="gray", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(-0.03, 1.03)  # intervals at 0 or 1 stay visible
    ax.set_xlabel("P(X > Y)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "Probability of improvement")
    return _save(fig, out)


def plot_sample_efficiency(
    curves: Mapping[str, Curve],
    steps: np.ndarray | Sequence[float],
    path: PathLike,
    metric_label: str = "IQM",
    title: str | None = None,
) -> Path:
    """Aggregate score over training (``sample_efficiency_curves``' ``algorithm -> (point,
    low, high)`` at ``steps``), one line per algorithm with its confidence band."""
    out = _output(path)
    if not curves:
        raise ValueError("no curves to plot")
    x = np.asarray(steps, dtype=np.float64)
    colors = _colors(curves)
    fig = _figure(panel=(5.5, 3.8))
    ax = fig.add_subplot()
    for algo, (point, low, high) in curves.items():
        if len(point) != len(x):
            raise ValueError(f"{algo}: {len(point)} curve points for {len(x)} steps")
        ax.plot(x, point, color=colors[algo], label=algo, linewidth=2)
        ax.fill_between(x, low, high, color=colors[algo], alpha=0.2, linewidth=0)
    _steps_axis(ax)
    ax.set_ylabel(metric_label)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or f"{metric_label} over training")
    return _save(fig, out)


def t_band(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student-t confidence interval of the mean over axis 0 (runs): ``mean -+ t * sd /
    sqrt(n)``. With a single run the band collapses onto the curve.

    Kept for ``band="t"``: with few runs it is very wide (``t`` is 12.7 for two runs at 95%)
    and can leave the range the runs lie in; :func:`bootstrap_band` and :func:`range_band`
    cannot.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return mean.copy(), mean.copy()
    half = _t_critical(confidence, n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)
    return mean - half, mean + half


def _runs(values: Any) -> np.ndarray:
    """``values`` as a float array with at least one run along axis 0."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim < 1 or array.shape[0] < 1:
        raise ValueError(f"values must hold at least one run along axis 0, got shape {array.shape}")
    return array


def range_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range of the runs, ``(min, max)`` over axis 0: where the runs actually were, the
    honest band when there are too few runs for a confidence interval."""
    array = _runs(values)
    return array.min(axis=0), array.max(axis=0)


def bootstrap_band(
    values: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of the mean over axis 0 (runs).

    Whole runs are resampled with replacement (``resamples`` times, from
    ``numpy.random.default_rng(seed)``, so the band is the same on every call) and the mean is
    taken at every step at once. Each resampled mean is an average of runs, so the band never
    leaves the runs' ``[min, max]`` at any step; one run gives a band on the curve.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)):
        raise TypeError(f"resamples must be an int, got {type(resamples).__name__}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    array = _runs(values)
    n = array.shape[0]
    flat = array.reshape(n, -1)
    if n < 2:
        return flat[0].reshape(array.shape[1:]).copy(), flat[0].reshape(array.shape[1:]).copy()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(resamples), n))
    # weights[r, i]: how often run i appears in resample r, over n -> each row is a mean
    weights = np.zeros((int(resamples), n))
    np.add.at(weights, (np.arange(int(resamples))[:, None], idx), 1.0 / n)
    alpha = (1.0 - confidence) / 2.0
    low = np.empty(flat.shape[1])
    high = np.empty(flat.shape[1])
    chunk = max(1, _BOOTSTRAP_ELEMENTS // int(resamples))  # bound the [resamples, steps] block
    for start in range(0, flat.shape[1], chunk):
        means = weights @ flat[:, start : start + chunk]
        low[start : start + chunk], high[start : start + chunk] = np.percentile(
            means, [100.0 * alpha, 100.0 * (1.0 - alpha)], axis=0
        )
    lowest, highest = flat.min(axis=0), flat.max(axis=0)
    # rounding in the weighted sums must not push the band past the runs
    low, high = np.clip(low, lowest, highest), np.clip(high, lowest, highest)
    return low.reshape(array.shape[1:]), high.reshape(array.shape[1:])


def resolve_band(band: str, runs: int) -> str:
    """The band actually drawn for ``runs`` runs: ``band`` itself, or for ``"auto"``
    ``"bootstrap"`` from :data:`MIN_BOOTSTRAP_RUNS` runs on, ``"range"`` below that and
    ``"none"`` for a single run (also for any band with one run: there is no spread to show).
    """
    if band not in BANDS:
        raise ValueError(f"band must be one of {', '.join(BANDS)}, got {band!r}")
    if runs < 2:
        return "none"
    if band == "auto":
        return "bootstrap" if runs >= MIN_BOOTSTRAP_RUNS else "range"
    return band


def curve_band(
    values: np.ndarray,
    band: str = "auto",
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The band around the mean of ``values`` (runs, steps) that learning curves draw, as
    ``(low, high, kind)`` with ``kind`` from :func:`resolve_band`; None when there is none."""
    array = _runs(values)
    kind = resolve_band(band, array.shape[0])
    if kind == "bootstrap":
        return (*bootstrap_band(array, confidence, resamples, seed), kind)
    if kind == "range":
        return (*range_band(array), kind)
    if kind == "t":
        return (*t_band(array, confidence), kind)
    return None


def _band_text(kind: str, confidence: float, runs: int | None = None) -> str:
    """How a band is named in legends (``runs`` given) and titles."""
    if kind == "range":
        return f"range over {runs} runs" if runs else "min-max range of runs"
    name = {"bootstrap": "bootstrap CI", "t": "Student-t CI"}[kind]
    return f"{confidence:.0%} {name}" + (f", {runs} runs" if runs else "")


def _t_two_sided(t: float, dof: int) -> float:
    """P(|T| < t) for Student's t with integer ``dof`` (closed form, Abramowitz & Stegun
    26.7.3-4)."""
    theta = math.atan(t / math.sqrt(dof))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if dof % 2 == 1:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (dof - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        return 2.0 / math.pi * (theta + s * total)
    total, term = 0.0, 1.0
    for k in range(1, dof // 2 + 1):
        total += term
        term *= c2 * (2 * k - 1) / (2 * k)
    return s * total


def _t_critical(confidence: float, dof: int) -> float:
    """``t`` with ``P(|T| < t) = confidence`` (bisection on the closed-form CDF)."""
    low, high = 0.0, 1.0
    while _t_two_sided(high, dof) < confidence:
        high *= 2.0
    for _ in range(100):
        mid = 0.5 * (low + high)
        if _t_two_sided(mid, dof) < confidence:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def plot_learning_curves(
    run_dirs: Iterable[PathLike],
    path: PathLike,
    metric: str = DEFAULT_METRIC,
    confidence: float = 0.95,
    points: int = 100,
    title: str | None = None,
    band: str = "auto",
    resamples: int = 2000,
    seed: int = 0,
) -> Path:
    """Learning curves from run directories: one panel per env, one line per algorithm.

    Each line is the mean over the algorithm's runs (seeds) of ``metric`` interpolated onto
    ``points`` steps spanning the range all those runs reached. The band (``band``, see
    :func:`resolve_band`) is by default the ``confidence`` percentile bootstrap CI of that mean
    for 5 or more runs, the runs' min-max range for 2 to 4 runs and absent for one run, so it
    stays within the data; ``"t"`` gives the Student-t interval. Legends and the default title
    say which band each line has.
    """
    if band not in BANDS:
        raise ValueError(f"band must be one of {', '.join(BANDS)}, got {band!r}")
    out = _output(path)
    curves = learning_curve_matrix(run_dirs, metric=metric, points=points, shared_grid=False)
    envs = sorted({env for _, env in curves})
    algorithms = sorted({algo for algo, _ in curves})
    colors = _colors(algorithms)
    ncols = min(len(envs), 3)
    nrows = math.ceil(len(envs) / ncols)
    fig = _figure(nrows, ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    drawn: list[str] = []
    for ax, env in zip(axes, envs, strict=False):
        for algo in algorithms:
            if (algo, env) not in curves:
                continue
            steps, values = curves[(algo, env)]
            n = values.shape[0]
            shaded = curve_band(values, band, confidence, resamples, seed)
            if shaded is None:
                label = f"{algo} ({n} run{'s' if n != 1 else ''}, no band)"
            else:
                low, high, kind = shaded
                ax.fill_between(steps, low, high, color=colors[algo], alpha=0.2, linewidth=0)
                label = f"{algo} (band: {_band_text(kind, confidence, n)})"
                drawn.append(kind)
            ax.plot(steps, values.mean(axis=0), color=colors[algo], label=label, linewidth=2)
        ax.set_title(env)
        _steps_axis(ax)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(envs) :]:
        ax.set_visible(False)
    kinds = [_band_text(kind, confidence) for kind in dict.fromkeys(drawn)]
    plural = "s" if len(kinds) > 1 else ""
    default = f"Mean over runs; band{plural}: {', '.join(kinds)}" if kinds else "Mean over runs"
    fig.suptitle(title or default, fontsize="medium")
    return _save(fig, out)
