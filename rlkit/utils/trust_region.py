"""Trust-region maths (TRPO; Schulman et al. 2015, "Trust Region Policy Optimization", appendix
C): flattened gradients for Fisher-vector products, conjugate gradient, the largest step inside
the quadratic KL model, a backtracking line search, and :class:`TrustRegionStep`, which joins
them into one policy step over a flat parameter buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

#: ``(loss, kl)`` of the parameters now in the buffer.
Evaluate = Callable[[], tuple[float, float]]


def flat_grad(
    output: Tensor, params: Sequence[Tensor], create_graph: bool = False
) -> tuple[Tensor, list[bool]]:
    """``d output / d params`` as one vector (zeros for parameters ``output`` does not reach),
    and which parameters it reaches (structurally: a reached one may have a zero gradient)."""
    grads = torch.autograd.grad(
        output, params, create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    parts = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return torch.cat([g.reshape(-1) for g in parts]), [g is not None for g in grads]


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, max_steps: int, residual_tol: float = 1e-10
) -> Tensor:
    """Approximately solve ``A x = b`` for a symmetric positive-definite ``A`` known only
    through ``matvec(v) = A v``: at most ``max_steps`` conjugate-gradient iterations from
    ``x = 0``, stopping once the squared residual is below ``residual_tol``."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(max_steps):
        if float(rr) < residual_tol:
            break
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def max_step_size(direction: Tensor, curvature: Tensor, max_kl: float) -> float:
    """``beta`` with ``0.5 beta^2 d^T A d = max_kl``: the step ``beta d`` reaching the KL radius
    of the quadratic model (``curvature = d^T A d``); 0 when the curvature is not positive."""
    value = float(curvature)
    return (2.0 * max_kl / value) ** 0.5 if value > 0 and torch.isfinite(direction).all() else 0.0


def backtracking_line_search(
    evaluate: Callable[[float], tuple[float, float]],
    loss_before: float,
    max_kl: float,
    shrink: float,
    max_iter: int,
) -> float | None:
    """The first fraction ``shrink**i`` (``i < max_iter``) whose ``evaluate(fraction) = (loss,
    kl)`` lowers the loss below ``loss_before`` with ``kl <= max_kl``; None when none does."""
    fraction = 1.0
    for _ in range(max_iter):
        loss, kl = evaluate(fraction)
        if kl <= max_kl and loss < loss_before:
            return fraction
        fraction *= shrink
    return None


class TrustRegionStep(torch.optim.Optimizer):
    """TRPO's policy step as an optimizer over one flat parameter buffer (stateless).

    Before each :meth:`step`, :meth:`set_problem` gives ``fvp`` (``v -> F v``, the Hessian of
    the mean KL at the current parameters) and ``evaluate`` (``(loss, kl)`` at the parameters
    then in the buffer). With the loss gradient ``g`` in ``.grad``, the step solves ``(F +
    damping I) d = -g`` by :func:`conjugate_gradient`, scales ``d`` to the KL radius
    ``max_kl`` (:func:`max_step_size`) and backtracks (:func:`backtracking_line_search`); when
    no fraction improves the loss inside the radius the parameters are left as they were.
    :attr:`last` holds the outcome (``line_search_success``, ``step_fraction``, ``kl``).
    """

    def __init__(
        self,
        params: Any,
        max_kl: float = 0.01,
        damping: float = 0.1,
        cg_steps: int = 15,
        shrink: float = 0.8,
        max_iter: int = 10,
    ) -> None:
        defaults = {
            "max_kl": max_kl,
            "damping": damping,
            "cg_steps": cg_steps,
            "shrink": shrink,
            "max_iter": max_iter,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1 or len(self.param_groups[0]["params"]) != 1:
            raise ValueError("TrustRegionStep works on one flat parameter buffer")
        self.problem: tuple[Callable[[Tensor], Tensor], Evaluate] | None = None
        self.last: dict[str, float] = {}

    def set_problem(self, fvp: Callable[[Tensor], Tensor], evaluate: Evaluate) -> None:
        """The Fisher-vector product and the evaluation for the next :meth:`step`."""
        self.problem = (fvp, evaluate)

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        if self.problem is None:
            raise RuntimeError("TrustRegionStep.step: call set_problem(fvp, evaluate) first")
        (fvp, evaluate), self.problem = self.problem, None
        group = self.param_groups[0]
        (flat,) = group["params"]
        assert flat.grad is not None

        def damped(v: Tensor) -> Tensor:
            return fvp(v) + group["damping"] * v

        direction = conjugate_gradient(damped, -flat.grad.detach(), group["cg_steps"])
        step = max_step_size(direction, direction @ damped(direction), group["max_kl"]) * direction
        start = flat.detach().clone()
        loss_before, _ = evaluate()

        tried: list[tuple[float, float]] = []

        def candidate(fraction: float) -> tuple[float, float]:
            with torch.no_grad():
                flat.copy_(start + fraction * step)
            tried.append(evaluate())
            return tried[-1]

        fraction = None
        if bool(step.any()):
            fraction = backtracking_line_search(
                candidate, loss_before, group["max_kl"], group["shrink"], group["max_iter"]
            )
        if fraction is None:
            with torch.no_grad():
                flat.copy_(start)
        self.last = {
            "line_search_success": float(fraction is not None),
            "step_fraction": fraction or 0.0,
            "kl": tried[-1][1] if fraction is not None else 0.0,
        }


__all__ = [
    "TrustRegionStep",
    "backtracking_line_search",
    "conjugate_gradient",
    "flat_grad",
    "max_step_size",
]
