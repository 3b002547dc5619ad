"""V-MPO: its loss terms against NumPy by hand, the dual variables moving the right way, pi_old
being the behaviour policy, training and the round trip on every backend (discrete and Box
actions), bad settings, and learning CartPole with the shipped preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from rlkit.agents import VMPO
from rlkit.config.presets import load_preset
from rlkit.distributions.categorical import CategoricalDist
from rlkit.distributions.gaussian import DiagGaussianDist
from rlkit.envs import make_vec_env
from rlkit.losses import (
    GaussianCovarianceKLConstraint,
    GaussianMeanKLConstraint,
    KLConstraint,
    LagrangeMultiplier,
    LossPlan,
    TopKTemperatureDual,
    TopKWeightedLikelihood,
    top_k_mask,
)
from rlkit.prototypes import Evaluate, load_agent
from rlkit.prototypes.learning import PolicyEvaluation
from rlkit.prototypes.on_policy import RolloutBatch

ADV = np.array([0.5, -1.0, 2.0, 0.1, 3.0, -0.2, 1.5, -3.0])  # top half: 3, 2, 1.5, 0.5
TOP = np.array([True, False, True, False, True, False, True, False])
LOG_PROB = np.array([-0.7, -1.2, -0.3, -2.0, -0.9, -0.5, -1.1, -0.4])


def _t(x: np.ndarray) -> Tensor:
    return torch.tensor(x, dtype=torch.float64)


def _psi(adv: np.ndarray, eta: float) -> np.ndarray:
    """NumPy: softmax of A / eta over the top half, 0 elsewhere."""
    k = len(adv) // 2
    keep = adv >= np.sort(adv)[-k]
    w = np.where(keep, np.exp(adv / eta), 0.0)
    return w / w.sum()


# --------------------------------------------------------------------------- terms by hand
def test_top_half_selection_keeps_ties_at_the_threshold() -> None:
    assert torch.equal(top_k_mask(_t(ADV), 0.5), torch.as_tensor(TOP))
    ties = top_k_mask(torch.tensor([1.0, 0.0, 1.0, 1.0]), 0.5)  # k = 2, threshold 1: all three
    assert ties.tolist() == [True, False, True, True]
    assert top_k_mask(torch.tensor([4.0]), 0.5).tolist() == [True]  # at least one sample


def test_weighted_likelihood_by_hand_and_its_derivative() -> None:
    eta = 0.7
    psi = _psi(ADV, eta)
    assert psi[TOP].sum() == pytest.approx(1.0) and np.all(psi[~TOP] == 0)
    term = TopKWeightedLikelihood(0.5, coef=1.3)
    log_prob = _t(LOG_PROB).requires_grad_()
    inputs = {"log_prob": log_prob, "advantage": _t(ADV), "temperature": torch.tensor(eta)}
    value = term(inputs)
    assert float(value.detach()) == pytest.approx(-(psi * LOG_PROB).sum())
    (1.3 * value).backward()
    assert log_prob.grad is not None
    np.testing.assert_allclose(log_prob.grad.numpy(), -1.3 * psi)
    closed = term.derivative({**inputs, "log_prob": _t(LOG_PROB)})
    np.testing.assert_allclose(closed["log_prob"].numpy(), -1.3 * psi)


def test_temperature_dual_by_hand_and_its_gradient() -> None:
    """Value ``eta eps + eta log(mean_top exp(A / eta))``; d/d eta = ``eps - KL(psi || U)``."""
    eta, eps = 0.8, 0.05
    top = ADV[TOP]
    value = eta * eps + eta * np.log(np.mean(np.exp(top / eta)))
    psi = _psi(ADV, eta)[TOP]
    weights_kl = float(np.sum(psi * np.log(psi * len(top))))
    term = TopKTemperatureDual(eps, initial=eta).double()
    out = term({"advantage": _t(ADV)})
    assert float(out.detach()) == pytest.approx(value)
    out.backward()
    assert float(term.eta.value.grad) == pytest.approx(eps - weights_kl)
    diagnostics = term.diagnostics({"advantage": _t(ADV)})
    assert float(diagnostics["eta"]) == pytest.approx(eta)
    assert float(diagnostics["weights_kl"]) == pytest.approx(weights_kl)


def test_kl_constraint_by_hand_on_categoricals() -> None:
    """``alpha (eps - sg KL) + sg(alpha) KL``: valued ``alpha eps``; d/d alpha = ``eps - KL``;
    the policy's gradient is ``alpha`` times the KL's."""
    old_logits = np.array([[0.2, -0.4, 1.0], [1.5, 0.0, -1.0]])
    new_logits = np.array([[0.0, 0.3, 0.6], [0.5, 0.5, -0.2]])

    def log_softmax(z: np.ndarray) -> np.ndarray:
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    p, log_p, log_q = (
        np.exp(log_softmax(old_logits)),
        log_softmax(old_logits),
        log_softmax(new_logits),
    )
    kl = float(np.mean(np.sum(p * (log_p - log_q), -1)))
    alpha, eps = 2.5, 0.01
    term = KLConstraint(eps, initial=alpha).double()
    logits = _t(new_logits).requires_grad_()
    x = {"old_dist": CategoricalDist(_t(old_logits)), "dist": CategoricalDist(logits)}
    out = term(x)
    assert float(out.detach()) == pytest.approx(alpha * eps)
    out.backward()
    assert float(term.alpha.value.grad) == pytest.approx(eps - kl)
    plain = _t(new_logits).requires_grad_()
    CategoricalDist(_t(old_logits)).kl(CategoricalDist(plain)).mean().backward()
    assert logits.grad is not None and plain.grad is not None
    torch.testing.assert_close(logits.grad, alpha * plain.grad)
    assert term.diagnostics(x)["kl"].item() == pytest.approx(kl)


def test_decoupled_gaussian_kl_by_hand() -> None:
    """Mean part ``1/2 sum (mu - mu_old)^2 / s_old^2`` (only the mean moves it), covariance part
    ``1/2 sum (r - 1 - log r)``, ``r = s_old^2 / s^2`` (only the std moves it); at a common
    mean or std each equals the full KL."""
    mu_old, mu = np.array([[0.0, 1.0], [0.5, -0.5]]), np.array([[0.3, 0.8], [0.1, -0.2]])
    ls_old, ls = np.array([[0.0, -0.5], [0.2, 0.1]]), np.array([[0.1, -0.3], [0.0, 0.4]])
    s_old, s = np.exp(ls_old), np.exp(ls)
    mean_kl = float(np.mean(np.sum(0.5 * (mu - mu_old) ** 2 / s_old**2, -1)))
    r = s_old**2 / s**2
    cov_kl = float(np.mean(np.sum(0.5 * (r - 1 - np.log(r)), -1)))
    mean_t, log_std_t = _t(mu).requires_grad_(), _t(ls).requires_grad_()
    x = {
        "old_dist": DiagGaussianDist(_t(mu_old), _t(ls_old)),
        "dist": DiagGaussianDist(mean_t, log_std_t),
    }
    mean_term, cov_term = GaussianMeanKLConstraint(0.01), GaussianCovarianceKLConstraint(1e-4)
    assert float(mean_term.divergence(x).detach()) == pytest.approx(mean_kl)
    assert float(cov_term.divergence(x).detach()) == pytest.approx(cov_kl)
    mean_term.divergence(x).backward()
    assert log_std_t.grad is None and mean_t.grad is not None
    mean_grad = mean_t.grad.clone()
    cov_term.divergence(x).backward()
    assert log_std_t.grad is not None and torch.equal(mean_t.grad, mean_grad)
    same_std = {"old_dist": x["old_dist"], "dist": DiagGaussianDist(_t(mu), _t(ls_old))}
    full = x["old_dist"].kl(same_std["dist"]).mean()
    assert float(mean_term.divergence(same_std)) == pytest.approx(float(full))
    with pytest.raises(TypeError, match="GaussianMeanKLConstraint: needs Gaussian"):
        mean_term({"old_dist": CategoricalDist(torch.zeros(2, 3)), "dist": x["dist"]})


def test_closed_form_and_autograd_give_the_same_gradients() -> None:
    """The V-MPO terms assembled with closed-form derivatives (fast) and by autograd."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 3, generator=gen)
    old = CategoricalDist(torch.randn(16, 3, generator=gen))
    advantage = torch.randn(16, generator=gen)
    actions = torch.randint(0, 3, (16,), generator=gen)
    grads = []
    for closed_form in (True, False):
        terms = [TopKWeightedLikelihood(), TopKTemperatureDual(0.01), KLConstraint(0.01, 5.0)]
        leaf = logits.clone().requires_grad_()
        dist = CategoricalDist(leaf)
        inputs = {
            "log_prob": dist.log_prob(actions),
            "advantage": advantage,
            "temperature": torch.tensor(0.5),
            "old_dist": old,
            "dist": dist,
        }
        LossPlan(terms, closed_form=closed_form)(inputs).backward()
        grads.append((leaf.grad, terms[1].eta.value.grad, terms[2].alpha.value.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- duals move right
def _dual_step(term: Any, inputs: dict[str, Any], multiplier: LagrangeMultiplier) -> float:
    before = multiplier.value.item()
    opt = torch.optim.Adam(multiplier.parameters(), lr=0.05)
    term(inputs).backward()
    opt.step()
    multiplier.project()
    return multiplier.value.item() - before


def test_eta_grows_when_the_weights_are_too_peaked_and_shrinks_otherwise() -> None:
    spread = {"advantage": torch.tensor([0.0, 1.0, 4.0, 9.0, -2.0, -5.0])}  # KL(psi||U) ~ 1
    flat = {"advantage": torch.tensor([0.0, 0.01, 0.02, 0.03, -0.1, -0.2])}  # KL ~ 1e-5
    peaked = TopKTemperatureDual(epsilon=0.01, initial=1.0)
    assert float(peaked.diagnostics(spread)["weights_kl"]) > 0.01
    assert _dual_step(peaked, spread, peaked.eta) > 0
    relaxed = TopKTemperatureDual(epsilon=0.01, initial=1.0)
    assert float(relaxed.diagnostics(flat)["weights_kl"]) < 0.01
    assert _dual_step(relaxed, flat, relaxed.eta) < 0


def test_alpha_grows_while_the_kl_exceeds_epsilon_and_stays_positive() -> None:
    x = {
        "old_dist": CategoricalDist(torch.zeros(4, 3)),
        "dist": CategoricalDist(3 * torch.eye(4, 3)),
    }
    assert float(KLConstraint(0.01).divergence(x)) > 0.1
    tight = KLConstraint(epsilon=0.01, initial=1.0)
    assert _dual_step(tight, x, tight.alpha) > 0
    loose = KLConstraint(epsilon=1.0, initial=1e-8)  # KL < epsilon at the floor: stays there
    assert _dual_step(loose, x, loose.alpha) == 0
    assert loose.alpha.value.item() == pytest.approx(1e-8)


# --------------------------------------------------------------------------- the agent
class Recorder(VMPO):
    """Keeps, per minibatch, the stored log-probs and what pi_old and pi give them."""

    seen: list[tuple[Tensor, Tensor, Tensor]]

    def evaluate_minibatch(self, mb: RolloutBatch, need_entropy: bool = True) -> PolicyEvaluation:
        ev = super().evaluate_minibatch(mb, need_entropy)
        old, new = ev.outputs["old_dist"], ev.outputs["dist"]
        with torch.no_grad():
            record = (mb.old_log_probs, old.log_prob(mb.actions), new.log_prob(mb.actions))
        self.seen.append(record)
        return ev


def test_pi_old_is_the_policy_that_collected_the_rollout() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = Recorder(env, seed=0, num_steps=32, batch_size=16, num_epochs=3, lr=1e-2)
    agent.seen = []
    agent.train(128, progress_bar=False)
    assert len(agent.seen) == 2 * 3 * 4  # rollouts x epochs x minibatches
    for stored, old, _ in agent.seen:
        torch.testing.assert_close(old, stored)
    assert not torch.allclose(agent.seen[-1][2], agent.seen[-1][0])  # pi moved, pi_old did not


BACKENDS = {
    "fast": {"compute": "fast"},
    "reference": {"compute": "reference"},
    "compile": {"compute": "compile", "compiler": "eager"},
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_trains_on_every_backend_and_tight_bounds_raise_the_duals(
    env_id: str, backend: str
) -> None:
    """With bounds far below what one update does, every multiplier must grow from its start."""
    env = make_vec_env(env_id, num_envs=2, seed=0)
    tiny = {"epsilon_eta": 1e-6, "epsilon_alpha": 1e-6, "epsilon_alpha_mu": 1e-8}
    agent = VMPO(
        env,
        seed=0,
        num_steps=32,
        batch_size=32,
        num_epochs=2,
        lr=3e-3,
        dual_lr=1e-2,
        **tiny,
        **BACKENDS[backend],
    )
    start = [m.value.item() for m in agent.multipliers]
    metrics = agent.iteration()
    metrics = agent.iteration()
    names = ["kl_mean", "kl_cov"] if env_id == "Pendulum-v1" else ["kl"]
    expected = {"loss/policy", "loss/temperature", "loss/value", "train/eta", "train/weights_kl"}
    expected |= {f"train/{n}_alpha" for n in names} | {f"loss/{n}" for n in names}
    assert expected <= set(metrics), sorted(metrics)
    assert [type(t).__name__ for t in agent.terms][:2] == [
        "TopKWeightedLikelihood",
        "TopKTemperatureDual",
    ]
    now = [m.value.item() for m in agent.multipliers]
    grew = [b > a for a, b in zip(start, now, strict=True)]
    if env_id == "Pendulum-v1":  # epsilon_alpha_sigma stays 5e-5: only eta and alpha_mu
        assert grew[:2] == [True, True], (start, now)
    else:
        assert all(grew), (start, now)
    report = agent.backend_report.as_dict()
    assert report["policy evaluation"]["implementation"] == "nn.Module + autograd"


def test_round_trip_keeps_the_dual_variables_and_their_optimizer(tmp_path: Path) -> None:
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    agent = VMPO(env, seed=0, num_steps=32, batch_size=32, num_epochs=2, dual_lr=0.05)
    agent.train(128, progress_bar=False)
    values = [m.value.item() for m in agent.multipliers]
    assert all(abs(v - s) > 1e-3 for v, s in zip(values, (1.0, 1.0, 1.0), strict=True)), values
    agent.save(tmp_path / "vmpo")
    loaded = load_agent(tmp_path / "vmpo")
    assert isinstance(loaded, VMPO) and loaded.config == agent.config
    assert [m.value.item() for m in loaded.multipliers] == values
    assert loaded.duals is not None and agent.duals is not None
    saved_state = agent.duals.optimizer.state_dict()["state"][0]
    loaded_state = loaded.duals.optimizer.state_dict()["state"][0]
    torch.testing.assert_close(loaded_state["exp_avg"], saved_state["exp_avg"])
    # the loaded multipliers are what the dual optimizer steps
    before = [m.value.item() for m in loaded.multipliers]
    loaded.iteration()
    assert [m.value.item() for m in loaded.multipliers] != before


def test_the_duals_rate_is_dual_lr_and_anneals_with_the_network() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = VMPO(env, seed=0, num_steps=16, batch_size=32, num_epochs=1, lr=1e-3, dual_lr=0.02)
    assert agent.duals is not None
    assert agent.duals.optimizer.param_groups[0]["lr"] == 0.02
    annealed = VMPO(env, seed=0, num_steps=16, num_epochs=1, lr=1e-3, dual_lr=0.02, anneal_lr=True)
    annealed.train(96, progress_bar=False)
    assert annealed.duals is not None
    policy_lr = annealed.optimizer.param_groups[0]["lr"]
    assert 0 < policy_lr < 1e-3
    assert annealed.duals.optimizer.param_groups[0]["lr"] == pytest.approx(20 * policy_lr)


def test_bad_settings_are_named() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    with pytest.raises(
        ValueError, match=r"top_k_fraction=0.0 \(top_k_fraction must be in \(0, 1\]"
    ):
        VMPO(env, top_k_fraction=0)
    with pytest.raises(ValueError, match=r"epsilon_eta=-0.1 \(epsilon_eta must be > 0\)"):
        VMPO(env, epsilon_eta=-0.1)
    with pytest.raises(ValueError, match=r"alpha_init=0.0 \(alpha_init must be > 0\)"):
        VMPO(env, alpha_init=0)
    with pytest.raises(ValueError, match="TopKTemperatureDual: epsilon must be a finite number"):
        TopKTemperatureDual(epsilon=0.0)
    with pytest.raises(ValueError, match="LagrangeMultiplier: initial must be"):
        KLConstraint(0.01, initial=-1.0)


# --------------------------------------------------------------------------- learning
def vmpo_cartpole(seed: int) -> dict[str, float]:
    """The CartPole preset for up to 100k steps, the deterministic policy evaluated on 20
    episodes every 5k steps; stop at the first evaluation >= 475."""
    preset = load_preset("vmpo", "CartPole-v1")
    num_envs, total = preset.pop("num_envs"), preset.pop("total_steps")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    evaluations = Evaluate(every=5_000, episodes=20, stop_at=475)
    VMPO(env, seed=seed, **preset).train(total, progress_bar=False, callbacks=evaluations)
    assert evaluations.best is not None
    reached = evaluations.reached_at
    return {"best": evaluations.best, "reached_at": float(reached if reached is not None else -1)}


@pytest.mark.learning
def test_vmpo_solves_cartpole_within_100k_steps() -> None:
    """The shipped preset reaches a 20-episode deterministic mean >= 475 (random: ~22) at a
    5k-step evaluation within 100k steps. Validated on an AMD EPYC (AVX-512, 2 cores shared
    with other jobs), fast backend, one thread, seeds 0-4 (``python
    benchmarks/learning_seeds.py vmpo_cartpole --seeds 0-4``): 5 of 5 reach it, at 10k-25k
    steps, best evaluation 500 for every seed, 2-9 s per seed (the load varied); seeds 5-11
    as a further check: 7 of 7, at 15k-30k steps, best evaluations 489-500, 5-13 s per seed."""
    result = vmpo_cartpole(0)
    assert result["best"] >= 475 and result["reached_at"] > 0, result
