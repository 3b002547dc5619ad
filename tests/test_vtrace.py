"""V-trace against straightforward reference loops (the paper's definition, summed term by
term), including episode ends inside the unroll and the on-policy case where it reduces to
n-step / lambda returns (GAE)."""

from __future__ import annotations

import math

import pytest
import torch

from rlkit.distributed.vtrace import vtrace, vtrace_from_bootstrap
from rlkit.storages.rollout import compute_gae

SHAPES = [(1, 1), (5, 3), (20, 4), (7, 1), (64, 2)]
GAMMA = 0.97


def _episode_inputs(steps: int, envs: int, seed: int, p_end: float = 0.15) -> dict:
    """Random unrolls with terminations and truncations inside (float64)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    ends = torch.rand(steps, envs, generator=g) < p_end
    kind = torch.rand(steps, envs, generator=g) < 0.5
    return {
        "log_rhos": rand(steps, envs),  # std 1: many weights above rho_bar / c_bar
        "rewards": rand(steps, envs),
        "values": rand(steps, envs),
        "bootstrap": rand(envs),
        "final_values": rand(steps, envs),  # V(final obs); used where truncated only
        "terminated": ends & kind,
        "truncated": ends & ~kind,
    }


def _reference(
    inp: dict,
    gamma: float,
    rho_bar: float | None,
    c_bar: float | None,
    pg_rho_bar: float | None,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """v_s = V(x_s) + sum_t gamma^(t-s) (prod_{i<t} c_i) delta_t, term by term, stopping at the
    end of the episode; A_s = rho_pg (r_s + gamma v_{s+1} - V(x_s))."""
    values, rewards = inp["values"].tolist(), inp["rewards"].tolist()
    term, trunc = inp["terminated"].tolist(), inp["truncated"].tolist()
    final, boot = inp["final_values"].tolist(), inp["bootstrap"].tolist()
    rhos = inp["log_rhos"].exp().tolist()
    steps, envs = inp["values"].shape

    def clip(x: float, bar: float | None) -> float:
        return x if bar is None else min(bar, x)

    def next_value(t: int, b: int) -> float:
        if term[t][b]:
            return 0.0
        if trunc[t][b]:
            return final[t][b]
        return boot[b] if t == steps - 1 else values[t + 1][b]

    vs = [[0.0] * envs for _ in range(steps)]
    adv = [[0.0] * envs for _ in range(steps)]
    for b in range(envs):
        for s in range(steps):
            total, coef = values[s][b], 1.0
            for t in range(s, steps):
                delta = clip(rhos[t][b], rho_bar) * (
                    rewards[t][b] + gamma * next_value(t, b) - values[t][b]
                )
                total += coef * delta
                if term[t][b] or trunc[t][b]:
                    break
                coef *= gamma * lam * clip(rhos[t][b], c_bar)
            vs[s][b] = total
    for b in range(envs):
        for s in range(steps):
            if term[s][b]:
                v_next = 0.0
            elif trunc[s][b]:
                v_next = final[s][b]
            else:
                v_next = boot[b] if s == steps - 1 else vs[s + 1][b]
            pg_bar = rho_bar if pg_rho_bar is None else pg_rho_bar
            adv[s][b] = clip(rhos[s][b], pg_bar) * (rewards[s][b] + gamma * v_next - values[s][b])
    return torch.tensor(vs, dtype=torch.float64), torch.tensor(adv, dtype=torch.float64)


def _vtrace_args(inp: dict, gamma: float) -> dict:
    """The inputs the learner builds from a trajectory batch."""
    term, trunc = inp["terminated"], inp["truncated"]
    next_values = torch.cat([inp["values"][1:], inp["bootstrap"][None]], dim=0)
    next_values = torch.where(trunc, inp["final_values"], next_values).masked_fill(term, 0.0)
    return {
        "log_rhos": inp["log_rhos"],
        "discounts": gamma * (~term).double(),
        "rewards": inp["rewards"],
        "values": inp["values"],
        "next_values": next_values,
        "continues": (~(term | trunc)).double(),
    }


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("rho_bar", "c_bar", "pg_rho_bar", "lam"),
    [(1.0, 1.0, None, 1.0), (2.0, 0.5, 1.5, 0.9), (None, None, None, 0.95), (1.0, 1.0, 1.0, 0.0)],
)
def test_vtrace_matches_reference_with_episode_ends(
    shape: tuple[int, int], rho_bar: float | None, c_bar: float | None, pg_rho_bar, lam: float
) -> None:
    inp = _episode_inputs(*shape, seed=sum(shape))
    assert shape[0] * shape[1] < 40 or (inp["terminated"].any() and inp["truncated"].any())
    out = vtrace(
        **_vtrace_args(inp, GAMMA), rho_bar=rho_bar, c_bar=c_bar, pg_rho_bar=pg_rho_bar, lambda_=lam
    )
    ref_vs, ref_adv = _reference(inp, GAMMA, rho_bar, c_bar, pg_rho_bar, lam)
    torch.testing.assert_close(out.vs, ref_vs, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.pg_advantages, ref_adv, rtol=1e-10, atol=1e-10)
    rhos = inp["log_rhos"].exp()
    expected_rhos = rhos if rho_bar is None else rhos.clamp(max=rho_bar)
    torch.testing.assert_close(out.clipped_rhos, expected_rhos)


def test_truncation_bootstraps_from_final_value_and_termination_does_not() -> None:
    """One env, three steps: truncated at t=0, terminated at t=1, running at t=2."""
    values = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    inp = {
        "log_rhos": torch.zeros(3, 1, dtype=torch.float64),
        "rewards": torch.tensor([[0.5], [0.25], [1.0]], dtype=torch.float64),
        "values": values,
        "bootstrap": torch.tensor([4.0], dtype=torch.float64),
        "final_values": torch.tensor([[10.0], [99.0], [99.0]], dtype=torch.float64),
        "terminated": torch.tensor([[False], [True], [False]]),
        "truncated": torch.tensor([[True], [False], [False]]),
    }
    out = vtrace(**_vtrace_args(inp, 0.5))
    # on-policy: v_t = r_t + gamma * (bootstrap value of the step)
    torch.testing.assert_close(
        out.vs.squeeze(1), torch.tensor([0.5 + 0.5 * 10.0, 0.25, 1.0 + 0.5 * 4.0]).double()
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_vtrace_from_bootstrap_matches_paper_definition(shape: tuple[int, int]) -> None:
    """The paper's signature (episode ends as zero discounts), against the n-step sum."""
    steps, envs = shape
    g = torch.Generator().manual_seed(7 + steps)
    log_rhos = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    discounts = GAMMA * (torch.rand(steps, envs, generator=g) > 0.2).double()
    rewards = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    values = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    bootstrap = torch.randn(envs, generator=g, dtype=torch.float64)
    out = vtrace_from_bootstrap(
        log_rhos, discounts, rewards, values, bootstrap, rho_bar=1.0, c_bar=0.9
    )
    rhos = log_rhos.exp()
    v_next = torch.cat([values[1:], bootstrap[None]])
    ref = torch.empty_like(values)
    for b in range(envs):
        for s in range(steps):
            total, coef = values[s, b].item(), 1.0
            for t in range(s, steps):
                delta = min(1.0, rhos[t, b].item()) * (
                    rewards[t, b] + discounts[t, b] * v_next[t, b] - values[t, b]
                )
                total += coef * delta.item()
                coef *= discounts[t, b].item() * min(0.9, rhos[t, b].item())
            ref[s, b] = total
    torch.testing.assert_close(out.vs, ref, rtol=1e-10, atol=1e-10)
    vs_next = torch.cat([ref[1:], bootstrap[None]])
    ref_adv = rhos.clamp(max=1.0) * (rewards + discounts * vs_next - values)
    torch.testing.assert_close(out.pg_advantages, ref_adv, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lam", [1.0, 0.9])
def test_on_policy_vtrace_equals_lambda_returns(shape: tuple[int, int], lam: float) -> None:
    """rho = 1 everywhere: v_s are the lambda-returns (GAE returns, the on-policy loop's
    compute_gae with the truncation bootstrap folded into the reward) and ``v_s - V`` the GAE
    advantages; with lambda = 1 they are the n-step returns to the end of the episode or
    unroll."""
    inp = _episode_inputs(*shape, seed=100 + shape[0])
    inp["log_rhos"] = torch.zeros(shape, dtype=torch.float64)
    out = vtrace(**_vtrace_args(inp, GAMMA), lambda_=lam)
    term, trunc = inp["terminated"], inp["truncated"]
    folded = inp["rewards"] + torch.where(trunc, GAMMA * inp["final_values"], 0.0)
    advantages, returns = compute_gae(
        folded, inp["values"], (term | trunc).double(), inp["bootstrap"], GAMMA, lam
    )
    torch.testing.assert_close(out.vs, returns, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.vs - inp["values"], advantages, rtol=1e-10, atol=1e-10)
    if lam == 1.0:
        steps, envs = shape
        for b in range(envs):
            for s in range(steps):
                ret, disc = 0.0, 1.0
                for t in range(s, steps):
                    ret += disc * inp["rewards"][t, b].item()
                    disc *= GAMMA
                    if term[t, b]:
                        break
                    if trunc[t, b]:
                        ret += disc * inp["final_values"][t, b].item()
                        break
                    if t == steps - 1:
                        ret += disc * inp["bootstrap"][b].item()
                assert math.isclose(out.vs[s, b].item(), ret, rel_tol=1e-10, abs_tol=1e-10)
        # the policy-gradient advantage is then the n-step advantage G_s - V(x_s)
        torch.testing.assert_close(out.pg_advantages, out.vs - inp["values"])


def test_float32_inputs_and_no_gradient() -> None:
    inp = _episode_inputs(16, 3, seed=3)
    args = {k: v.float() for k, v in _vtrace_args(inp, GAMMA).items()}
    args["values"].requires_grad_(True)
    out = vtrace(**args, rho_bar=1.0, c_bar=1.0)
    assert out.vs.dtype == torch.float32 and not out.vs.requires_grad
    ref_vs, _ = _reference(inp, GAMMA, 1.0, 1.0, None, 1.0)
    torch.testing.assert_close(out.vs.double(), ref_vs, rtol=1e-4, atol=1e-4)


def test_bad_inputs_are_named() -> None:
    inp = _vtrace_args(_episode_inputs(4, 2, seed=0), GAMMA)
    with pytest.raises(ValueError, match="next_values has shape"):
        vtrace(**{**inp, "next_values": inp["next_values"][:3]})
    with pytest.raises(ValueError, match="lambda_"):
        vtrace(**inp, lambda_=1.5)
    with pytest.raises(ValueError, match="rho_bar"):
        vtrace(**inp, rho_bar=0.0)
    with pytest.raises(ValueError, match="bootstrap_value"):
        vtrace_from_bootstrap(
            inp["log_rhos"], inp["discounts"], inp["rewards"], inp["values"], torch.zeros(3)
        )
