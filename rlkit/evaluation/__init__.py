"""Evaluating agents across runs and tasks with statistics that account for uncertainty.

Only numpy-based modules are imported here, so ``import rlkit.evaluation`` never needs
matplotlib; see ``docs/evaluation.md``.
"""

from __future__ import annotations

from rlkit.evaluation.stats import (
    AGGREGATES,
    IntervalEstimate,
    ScoreDict,
    aggregate_table,
    interval_estimates,
    iqm,
    mean,
    median,
    normalize_scores,
    optimality_gap,
    performance_profile,
    performance_profiles,
    probability_of_improvement,
    probability_of_improvement_interval,
    sample_efficiency_curves,
    stratified_bootstrap_indices,
)

__all__ = [
    "AGGREGATES",
    "IntervalEstimate",
    "ScoreDict",
    "aggregate_table",
    "interval_estimates",
    "iqm",
    "mean",
    "median",
    "normalize_scores",
    "optimality_gap",
    "performance_profile",
    "performance_profiles",
    "probability_of_improvement",
    "probability_of_improvement_interval",
    "sample_efficiency_curves",
    "stratified_bootstrap_indices",
]
