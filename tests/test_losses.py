"""Loss terms: every closed-form derivative against autograd (torch and, for array-agnostic
terms, NumPy inputs), hand-computed values, and assembly on every backend."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from test_mpo import _cases as mpo_cases

from rlkit.configurable import build_from_spec
from rlkit.distributions.categorical import CategoricalDist
from rlkit.distributions.gaussian import DiagGaussianDist
from rlkit.losses import (
    LOSS_TERMS,
    CategoricalLoss,
    ClippedSurrogate,
    DeterministicActorLoss,
    DiscreteSACActorLoss,
    EntropyBonus,
    GaussianCovarianceKLConstraint,
    GaussianMeanKLConstraint,
    KLConstraint,
    KLPenalty,
    LossPlan,
    LossTerm,
    PolicyGradient,
    PolicyKL,
    QuantileHuberLoss,
    ReferenceKL,
    SACActorLoss,
    Surrogate,
    TDLoss,
    TemperatureLoss,
    TopKTemperatureDual,
    TopKWeightedLikelihood,
    ValueLoss,
    categorical_projection,
    compute_loss,
)

B = 64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _on_policy_inputs(gen: torch.Generator) -> dict[str, torch.Tensor]:
    log_prob = torch.randn(B, generator=gen) * 0.3 - 1.0
    return {
        "log_prob": log_prob,
        "old_log_prob": log_prob + torch.randn(B, generator=gen) * 0.3,
        "advantage": torch.randn(B, generator=gen),
        "entropy": torch.rand(B, generator=gen),
        "value": torch.randn(B, generator=gen),
        "old_value": torch.randn(B, generator=gen),
        "return": torch.randn(B, generator=gen) * 2,
    }


def _td_inputs(gen: torch.Generator, critics: int = 2, weight: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "q": torch.randn(critics, B, generator=gen) * 2,
        "target": torch.randn(B, generator=gen) * 2,
    }
    if weight:
        out["weight"] = torch.rand(B, generator=gen)
    return out


def _top_k_inputs(gen: torch.Generator) -> dict[str, Any]:
    """V-MPO's: the on-policy inputs and the temperature eta (no gradient)."""
    return {**_on_policy_inputs(gen), "temperature": torch.tensor(0.5)}


def _categorical_pair(gen: torch.Generator) -> dict[str, Any]:
    return {
        "old_dist": CategoricalDist(torch.randn(B, 3, generator=gen)),
        "dist": CategoricalDist(torch.randn(B, 3, generator=gen).requires_grad_()),
    }


def _gaussian_pair(gen: torch.Generator, dim: int = 3) -> dict[str, Any]:
    mean, log_std = torch.randn(B, dim, generator=gen), torch.randn(B, dim, generator=gen) * 0.3
    step = torch.randn(2, B, dim, generator=gen) * 0.1
    return {
        "old_dist": DiagGaussianDist(mean, log_std),
        "dist": DiagGaussianDist(
            (mean + step[0]).requires_grad_(), (log_std + step[1]).requires_grad_()
        ),
    }


#: (term, inputs) cases; every registered term appears at least once (checked below).
CASES: list[tuple[str, Callable[[], LossTerm], Callable[[torch.Generator], dict[str, Any]]]] = [
    ("clipped_surrogate", lambda: ClippedSurrogate(0.2, coef=1.3), _on_policy_inputs),
    ("clipped_surrogate_narrow", lambda: ClippedSurrogate(0.05), _on_policy_inputs),
    ("policy_gradient", lambda: PolicyGradient(coef=0.7), _on_policy_inputs),
    ("surrogate", lambda: Surrogate(coef=0.9), _on_policy_inputs),
    ("kl_penalty", lambda: KLPenalty(coef=0.4), _on_policy_inputs),
    ("entropy_bonus", lambda: EntropyBonus(coef=0.01), _on_policy_inputs),
    ("value_loss", lambda: ValueLoss(coef=0.5), _on_policy_inputs),
    ("value_loss_clipped", lambda: ValueLoss(coef=0.5, clip_range=0.2), _on_policy_inputs),
    ("td_huber", lambda: TDLoss("huber"), lambda g: _td_inputs(g, critics=1)),
    ("td_mse_twin", lambda: TDLoss("mse", coef=0.5), _td_inputs),
    ("td_half_mse_twin", lambda: TDLoss("half_mse"), _td_inputs),
    ("td_mse_weighted", lambda: TDLoss("mse"), lambda g: _td_inputs(g, weight=True)),
    ("td_huber_weighted", lambda: TDLoss("huber"), lambda g: _td_inputs(g, 1, weight=True)),
    (
        "sac_actor",
        lambda: SACActorLoss(),
        lambda g: {
            "log_prob": torch.randn(B, generator=g),
            "q": torch.randn(2, B, generator=g),
            "alpha": torch.tensor(0.3),
        },
    ),
    (
        "sac_actor_mean",
        lambda: SACActorLoss("mean", coef=0.7),
        lambda g: {
            "log_prob": torch.randn(B, generator=g),
            "q": torch.randn(5, B, generator=g),
            "alpha": torch.tensor(0.3),
        },
    ),
    (
        "temperature",
        lambda: TemperatureLoss(-2.0),
        lambda g: {"log_alpha": torch.tensor(-0.5), "log_prob": torch.randn(B, generator=g)},
    ),
    ("deterministic_actor_first", lambda: DeterministicActorLoss("first"), _td_inputs),
    ("deterministic_actor_min", lambda: DeterministicActorLoss("min"), _td_inputs),
    ("deterministic_actor_mean", lambda: DeterministicActorLoss("mean"), _td_inputs),
    (
        "discrete_sac_actor",
        lambda: DiscreteSACActorLoss(),
        lambda g: {
            "logits": torch.randn(B, 5, generator=g),
            "q": torch.randn(B, 5, generator=g),
            "alpha": torch.tensor(0.2),
        },
    ),
    (
        "quantile_huber",
        lambda: QuantileHuberLoss(kappa=1.0, coef=0.8),
        lambda g: {
            "quantiles": torch.randn(B, 5, generator=g) * 2,
            "target_quantiles": torch.randn(B, 7, generator=g) * 2,
        },
    ),
    (
        "quantile_huber_weighted_taus",
        lambda: QuantileHuberLoss(kappa=0.5),
        lambda g: {
            "quantiles": torch.randn(B, 4, generator=g),
            "target_quantiles": torch.randn(B, 4, generator=g),
            "taus": torch.rand(B, 4, generator=g),
            "weight": torch.rand(B, generator=g),
        },
    ),
    (
        "categorical",
        lambda: CategoricalLoss(coef=1.5),
        lambda g: {
            "log_probs": torch.log_softmax(torch.randn(B, 11, generator=g), -1),
            "target_probs": torch.softmax(torch.randn(B, 11, generator=g), -1),
            "weight": torch.rand(B, generator=g),
        },
    ),
    ("policy_kl", lambda: PolicyKL(0.5), _categorical_pair),
    (
        "reference_kl",
        lambda: ReferenceKL(coef=0.6),
        lambda g: {
            "log_prob": torch.randn(B, generator=g) - 1.0,
            "ref_log_prob": torch.randn(B, generator=g) - 1.0,
        },
    ),
    # MPO's (tests/test_mpo.py's cases: temperature, weighted likelihood, KL penalty and dual)
    *((f"mpo_{name}", make, data) for name, make, data in mpo_cases()),
    # V-MPO's: the multipliers (eta, alpha) are the terms' own parameters
    ("top_k_weighted_likelihood", lambda: TopKWeightedLikelihood(0.5, coef=1.3), _top_k_inputs),
    ("top_k_weighted_likelihood_quarter", lambda: TopKWeightedLikelihood(0.25), _top_k_inputs),
    ("top_k_temperature_dual", lambda: TopKTemperatureDual(0.01, 0.8, coef=0.9), _top_k_inputs),
    ("kl_constraint", lambda: KLConstraint(0.01, 5.0), _categorical_pair),
    ("gaussian_mean_kl_constraint", lambda: GaussianMeanKLConstraint(0.01, 2.0), _gaussian_pair),
    (
        "gaussian_covariance_kl_constraint",
        lambda: GaussianCovarianceKLConstraint(5e-5, 1.5, coef=0.7),
        _gaussian_pair,
    ),
]


def test_every_registered_term_has_a_case() -> None:
    covered = {type(make()).registry_id for _, make, _ in CASES}
    assert set(LOSS_TERMS) <= covered, f"add a case for {sorted(set(LOSS_TERMS) - covered)}"


@pytest.mark.parametrize(("name", "make", "data"), CASES, ids=[c[0] for c in CASES])
def test_spec_round_trips_through_json(
    name: str, make: Callable[[], LossTerm], data: Callable[[torch.Generator], dict]
) -> None:
    """Every registered term rebuilds from its JSON spec (as checkpoints and YAML give it)."""
    term = make()
    spec = json.loads(json.dumps(term.spec()))
    assert spec["id"] == type(term).registry_id and LOSS_TERMS.get(spec["id"]) is type(term)
    rebuilt = build_from_spec("loss_term", spec)
    assert type(rebuilt) is type(term) and rebuilt.spec() == term.spec()
    assert (rebuilt.name, rebuilt.coef) == (term.name, term.coef)


#: the cases whose term holds parameters of its own (V-MPO's Lagrange multipliers).
WITH_PARAMETERS = [c for c in CASES if list(c[1]().parameters())]


def test_terms_with_parameters_are_covered() -> None:
    assert {c[0] for c in WITH_PARAMETERS} >= {
        "top_k_temperature_dual",
        "kl_constraint",
        "gaussian_mean_kl_constraint",
        "gaussian_covariance_kl_constraint",
    }


@pytest.mark.parametrize(
    ("name", "make", "data"), WITH_PARAMETERS, ids=[c[0] for c in WITH_PARAMETERS]
)
@pytest.mark.parametrize("closed_form", [True, False])
def test_a_terms_own_parameters_get_autograd_gradients(
    name: str,
    make: Callable[[], LossTerm],
    data: Callable[[torch.Generator], dict],
    closed_form: bool,
) -> None:
    """A closed form covers a term's inputs, not its parameters: a term holding parameters has
    none (the closed-form assembly would leave them untrained), and both assemblies give its
    parameters autograd's gradients of ``coef * term(inputs)``, none of them zero."""
    assert type(make()).closed_form_status() is not None
    reference = make()
    params = list(reference.parameters())
    expected = torch.autograd.grad(reference.coef * reference(data(_gen(5))), params)
    term = make()
    LossPlan([term], closed_form=closed_form)(data(_gen(5))).backward()
    for param, grad in zip(term.parameters(), expected, strict=True):
        assert param.grad is not None and bool(grad.abs().sum() > 0)
        torch.testing.assert_close(param.grad, grad)


def _autograd_derivative(term: LossTerm, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    leaves = {k: inputs[k].detach().clone().requires_grad_() for k in term.differentiable}
    value = term.coef * term({**inputs, **leaves})
    grads = torch.autograd.grad(value, list(leaves.values()))
    return dict(zip(leaves, grads, strict=True))


CLOSED_FORM = [c for c in CASES if type(c[1]()).closed_form_status() is None]


@pytest.mark.parametrize(("name", "make", "data"), CLOSED_FORM, ids=[c[0] for c in CLOSED_FORM])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_derivative_matches_autograd(
    name: str, make: Callable[[], LossTerm], data: Callable[[torch.Generator], dict], seed: int
) -> None:
    """The generic check: every term's closed-form derivative (and the value it returns with
    it) equals autograd's, also on NumPy inputs for array-agnostic terms."""
    term, inputs = make(), data(_gen(seed))
    expected = _autograd_derivative(term, inputs)
    with torch.no_grad():
        value, derivative = term.value_and_derivative(inputs)
        alone = term.derivative(inputs)
        reference = term(inputs)
    assert derivative is not None and alone is not None
    assert set(derivative) == set(term.differentiable)
    torch.testing.assert_close(torch.as_tensor(value), reference, rtol=1e-5, atol=1e-6)
    for key, grad in expected.items():
        torch.testing.assert_close(torch.as_tensor(derivative[key]), grad, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(torch.as_tensor(alone[key]), grad, rtol=1e-5, atol=1e-7)
    if term.array_agnostic:
        arrays = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        np_value, np_derivative = term.value_and_derivative(arrays)
        assert np_derivative is not None
        assert isinstance(np_derivative[term.differentiable[0]], np.ndarray)
        np.testing.assert_allclose(float(np_value), float(reference), rtol=1e-5, atol=1e-6)
        for key, grad in expected.items():
            np.testing.assert_allclose(np_derivative[key], grad.numpy(), rtol=1e-5, atol=1e-7)


def test_terms_at_ties_split_like_autograd() -> None:
    """Ties (ratio exactly at the clip bound, equal critics) follow autograd's convention."""
    term = ClippedSurrogate(0.2)
    x = {
        "log_prob": torch.log(torch.tensor([1.2, 0.8, 1.0, 1.3])),
        "old_log_prob": torch.zeros(4),
        "advantage": torch.tensor([1.0, -1.0, 0.0, 2.0]),
    }
    torch.testing.assert_close(
        torch.as_tensor(term.derivative(x)["log_prob"]), _autograd_derivative(term, x)["log_prob"]
    )
    actor = SACActorLoss()
    y = {"log_prob": torch.zeros(3), "q": torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 4.0]])}
    y["alpha"] = torch.tensor(0.5)
    torch.testing.assert_close(actor.derivative(y)["q"], _autograd_derivative(actor, y)["q"])


def test_hand_computed_values() -> None:
    """A few values worked out by hand."""
    x = {
        "log_prob": torch.log(torch.tensor([2.0, 0.5])),
        "old_log_prob": torch.zeros(2),
        "advantage": torch.tensor([1.0, 1.0]),
    }
    # r = [2, 0.5]; clipped to [1.2, 0.8]; min(rA, clip(r)A) = [1.2, 0.5] -> -0.85
    assert float(ClippedSurrogate(0.2)(x)) == pytest.approx(-0.85)
    # (r - 1) - log r = [1 - log 2, -0.5 + log 2] -> mean 0.25
    assert float(KLPenalty()(x)) == pytest.approx(0.25)
    # TRPO's surrogate: -mean(r A) = -(2 + 0.5) / 2; d/d log_prob = -r A / B = [-1, -0.25]
    assert float(Surrogate()(x)) == pytest.approx(-1.25)
    torch.testing.assert_close(Surrogate().derivative(x)["log_prob"], torch.tensor([-1.0, -0.25]))
    v = {"value": torch.tensor([1.0, 3.0]), "return": torch.tensor([0.0, 0.0])}
    assert float(ValueLoss()(v)) == pytest.approx(5.0)
    q = {"q": torch.tensor([0.5, 3.0]), "target": torch.tensor([0.0, 0.0])}
    assert float(TDLoss("huber")(q)) == pytest.approx((0.125 + 2.5) / 2)
    assert float(TDLoss("mse")(q)) == pytest.approx((0.25 + 9.0) / 2)
    assert float(TDLoss("half_mse")(q)) == pytest.approx((0.25 + 9.0) / 4)
    e = {"entropy": torch.tensor([1.0, 2.0])}
    assert float(EntropyBonus()(e)) == pytest.approx(-1.5)
    t = {"log_alpha": torch.tensor(math.log(2.0)), "log_prob": torch.tensor([1.0, 3.0])}
    assert float(TemperatureLoss(-1.0)(t)) == pytest.approx(-math.log(2.0) * 1.0)


def test_distributional_terms_by_hand() -> None:
    """QR-DQN's loss and C51's projection and cross-entropy on cases worked out by hand."""
    # N = 2 quantiles (taus 1/4, 3/4) at [0, 2]; one target sample at 1: u = [1, -1]
    # rho = [|1/4 - 0| * 0.5, |3/4 - 1| * 0.5] = [0.125, 0.125]; sum over i -> 0.25
    x = {"quantiles": torch.tensor([[0.0, 2.0]]), "target_quantiles": torch.tensor([[1.0]])}
    assert float(QuantileHuberLoss()(x)) == pytest.approx(0.25)
    # beyond kappa the Huber part is linear: u = 3 -> kappa (|u| - kappa / 2) = 2.5, tau 1/2
    far = {"quantiles": torch.tensor([[0.0]]), "target_quantiles": torch.tensor([[3.0]])}
    assert float(QuantileHuberLoss()(far)) == pytest.approx(0.5 * 2.5)
    # gradient pushes the lower quantile up (by tau = 1/4) and the upper one down (by 1/4)
    torch.testing.assert_close(
        QuantileHuberLoss().derivative(x)["quantiles"], torch.tensor([[-0.25, 0.25]])
    )
    support = torch.tensor([-1.0, 0.0, 1.0])
    next_probs = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    # r + g z: all mass at 0.5 -> split half/half between 0 and 1; terminal: all at r = -1;
    # shift by 0.9 * 1 + 0.3 = 1.2 -> clipped to 1
    rewards = torch.tensor([0.5, -1.0, 0.3])
    discounts = torch.tensor([0.9, 0.0, 0.9])
    projected = categorical_projection(next_probs, rewards, discounts, support)
    expected = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(projected, expected)
    # cross-entropy of a uniform prediction against a one-hot target: log 3
    c = {"log_probs": torch.log(torch.full((1, 3), 1 / 3)), "target_probs": expected[1:2]}
    assert float(CategoricalLoss()(c)) == pytest.approx(math.log(3))


def test_sac_actor_on_the_mean_of_the_critics_by_hand() -> None:
    """REDQ's and TQC's actor: the critics' mean, not their minimum."""
    x = {
        "log_prob": torch.tensor([1.0, -1.0, 0.0]),
        "q": torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]),
        "alpha": torch.tensor(0.5),
    }
    # mean over critics [2, 3, 4]; alpha log pi [0.5, -0.5, 0] -> mean(-1.5, -3.5, -4) = -3
    assert float(SACActorLoss("mean")(x)) == pytest.approx(-3.0)
    assert float(SACActorLoss()(x)) == pytest.approx(-(1 + 2 + 3) / 3)  # the minimum: Q_1
    derivative = SACActorLoss("mean").derivative(x)
    torch.testing.assert_close(derivative["q"], torch.full((2, 3), -1 / 6))  # -1 / (E B)
    torch.testing.assert_close(derivative["log_prob"], torch.full((3,), 0.5 / 3))


def test_quantile_huber_closed_form_by_hand() -> None:
    """The combined value-and-derivative pass on the hand case above: L_k(u) = c (u - c / 2)
    with c = clamp(u, -k, k) on both branches."""
    x = {"quantiles": torch.tensor([[0.0, 2.0]]), "target_quantiles": torch.tensor([[1.0, 4.0]])}
    # u = [[1, 4], [-1, 2]]; taus [1/4, 3/4]; Huber (k = 1) [[0.5, 3.5], [0.5, 1.5]]
    # scale [[1/4, 1/4], [1/4, 3/4]]; sum over i, mean over j: (0.125 + 0.125 + 0.875 + 1.125) / 2
    value, derivative = QuantileHuberLoss().value_and_derivative(x)
    assert float(value) == pytest.approx(1.125)
    # -(scale * clamp(u)) averaged over j: [-(1/4 + 1/4) / 2, -(-1/4 + 3/4) / 2]
    torch.testing.assert_close(derivative["quantiles"], torch.tensor([[-0.25, -0.25]]))


def test_categorical_projection_keeps_mass_and_mean() -> None:
    """Inside the support the projection keeps total mass and the mean of r + g Z."""
    gen = _gen(3)
    support = torch.linspace(-10, 10, 51)
    next_probs = torch.softmax(torch.randn(B, 51, generator=gen), -1)
    rewards = torch.rand(B, generator=gen) - 0.5
    discounts = torch.full((B,), 0.5)
    projected = categorical_projection(next_probs, rewards, discounts, support)
    torch.testing.assert_close(projected.sum(-1), torch.ones(B))
    mean = rewards + discounts * (next_probs * support).sum(-1)
    torch.testing.assert_close((projected * support).sum(-1), mean, rtol=1e-5, atol=1e-5)


def test_a_subclass_changing_forward_loses_the_closed_form() -> None:
    """A subclass that overrides forward but not derivative is differentiated by autograd."""

    class Doubled(ValueLoss):
        def forward(self, x: Any) -> torch.Tensor:
            return 2 * super().forward(x)

    assert ValueLoss.closed_form_status() is None
    assert "overrides forward" in str(Doubled.closed_form_status())
    inputs = _on_policy_inputs(_gen())
    inputs["value"] = inputs["value"].clone().requires_grad_()
    loss = compute_loss([Doubled()], inputs, closed_form=True)
    loss.backward()
    expected = 2 * 2 * (inputs["value"] - inputs["return"]).detach() / B
    torch.testing.assert_close(inputs["value"].grad, expected)


def _network_grads(closed_form: bool, terms: list[LossTerm]) -> list[torch.Tensor]:
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    obs = torch.randn(B, 4, generator=_gen(3))
    data = _on_policy_inputs(_gen(4))
    out = net(obs)
    inputs = {**data, "log_prob": out[:, 0], "value": out[:, 1]}
    loss = compute_loss(terms, inputs, closed_form=closed_form, diagnostics=True)
    loss.backward()
    return [p.grad.clone() for p in net.parameters()]  # type: ignore[union-attr]


def test_closed_form_and_autograd_assembly_give_the_same_gradients() -> None:
    """The fast backend's assembly (derivatives seeded into the network's graph) equals plain
    autograd, a term without closed form (PolicyKL-free set here) included."""

    class Square(LossTerm):  # no closed form: autograd for this term on every backend
        inputs = ("value",)
        differentiable = ("value",)

        def forward(self, x: Any) -> torch.Tensor:
            return x["value"].square().mean()

    def terms() -> list[LossTerm]:
        return [ClippedSurrogate(0.2), ValueLoss(0.5, clip_range=0.3), Square(0.1)]

    for a, b in zip(_network_grads(True, terms()), _network_grads(False, terms()), strict=True):
        torch.testing.assert_close(a, b)


class _RecordingPullback:
    keys = frozenset(("log_prob", "value", "entropy"))
    numpy = True

    def __init__(self) -> None:
        self.seeds: dict[str, Any] = {}

    def __call__(self, seeds: Any) -> None:
        self.seeds = dict(seeds)


def test_plan_with_a_numpy_pullback_matches_autograd() -> None:
    """With a kernel pullback, array-agnostic terms run on NumPy views, a term without a
    closed form goes through leaf tensors, and the seeds equal autograd's derivatives."""

    class Cube(LossTerm):
        inputs = ("log_prob",)
        differentiable = ("log_prob",)

        def forward(self, x: Any) -> torch.Tensor:
            return x["log_prob"].pow(3).mean()

    terms = [ClippedSurrogate(0.2), ValueLoss(0.5), EntropyBonus(0.01), Cube(0.3)]
    data = _on_policy_inputs(_gen(7))
    pullback = _RecordingPullback()
    loss = LossPlan(terms, closed_form=True)(data, pullback=pullback)
    loss.backward()
    leaves = {k: data[k].clone().requires_grad_() for k in ("log_prob", "value", "entropy")}
    total = sum(t.coef * t({**data, **leaves}) for t in terms)
    grads = torch.autograd.grad(total, list(leaves.values()))  # type: ignore[arg-type]
    for key, grad in zip(leaves, grads, strict=True):
        np.testing.assert_allclose(np.asarray(pullback.seeds[key]), grad.numpy(), rtol=1e-5)
    assert float(loss) == pytest.approx(float(total), rel=1e-5)


def test_zero_weight_terms_are_logged_only_with_diagnostics() -> None:
    data = _on_policy_inputs(_gen())
    del data["entropy"]
    terms = [ClippedSurrogate(0.2), EntropyBonus(0.0)]
    loss = compute_loss(terms, data, closed_form=True)  # entropy not needed: coef 0
    assert set(loss.values) == {"policy"}
    with pytest.raises(KeyError, match=r"EntropyBonus.*entropy"):
        compute_loss(terms, data, closed_form=True, diagnostics=True)


def test_missing_input_error_names_the_term_and_the_inputs() -> None:
    with pytest.raises(KeyError, match=r"ClippedSurrogate \('policy'\) needs input\(s\) advantage"):
        compute_loss(
            [ClippedSurrogate()], {"log_prob": torch.zeros(2), "old_log_prob": torch.zeros(2)}
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ClippedSurrogate(0.0), "clip_range must be > 0"),
        (lambda: ValueLoss(clip_range=-1.0), "clip_range must be > 0 or None"),
        (lambda: TDLoss("l1"), "loss must be one of"),
        (lambda: DeterministicActorLoss("max"), "critic must be one of"),
        (lambda: SACActorLoss("first"), "critic must be one of"),
        (lambda: KLPenalty(target_kl=0.0), "target_kl must be > 0"),
        (lambda: EntropyBonus(coef=float("nan")), "coef must be a finite number"),
    ],
)
def test_bad_arguments_are_named(make: Callable[[], LossTerm], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_adaptive_kl_coefficient_adapts_and_is_saved() -> None:
    term = KLPenalty(1.0, target_kl=0.01)
    term.adapt(0.001)
    assert term.coef == 0.5
    term.adapt(0.1)
    assert term.coef == 1.0
    state = term.state_dict()
    other = KLPenalty(1.0, target_kl=0.01)
    term.adapt(0.1)
    other.load_state_dict(term.state_dict())
    assert other.coef == 2.0 and "_extra_state" in state


def test_loss_backward_runs_once() -> None:
    x = {"value": torch.zeros(2, requires_grad=True), "return": torch.ones(2)}
    loss = compute_loss([ValueLoss()], x, closed_form=False)
    loss.backward()
    with pytest.raises(RuntimeError, match="already backpropagated"):
        loss.backward()
