"""Diagonal Gaussian KLs shared by MPO's and V-MPO's trust regions.

Both algorithms bound ``KL(pi_old || pi)`` of a diagonal Gaussian policy in two parts (Abdolmaleki
et al. 2018b, "Relative Entropy Regularized Policy Iteration"; Song et al. 2019): the mean part
``KL(N(mu_old, s_old) || N(mu, s_old))``, moved by the mean only, and the covariance part
``KL(N(mu_old, s_old) || N(mu_old, s))``, moved by the std only. :func:`decoupled_gaussians` builds
the two Gaussians on the right and :func:`gaussian_kl` takes the KL to each.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from rlkit.distributions.gaussian import DiagGaussianDist


class GaussianParameters(Protocol):
    """An action distribution that is (a bijection of) a diagonal Gaussian: ``mean`` and
    ``log_std`` per action dimension, ``[B, D]`` (DiagGaussian's, SquashedNormal's)."""

    mean: Tensor
    log_std: Tensor


def decoupled_gaussians(
    online: GaussianParameters, target: GaussianParameters
) -> tuple[DiagGaussianDist, DiagGaussianDist]:
    """``(fixed_std, fixed_mean)``: the online mean with the target's std, and the target's mean
    with the online std (the target's parameters detached). Fitting each separately lets the mean
    and the std have trust regions of their own (Abdolmaleki et al. 2018b, "Relative Entropy
    Regularized Policy Iteration")."""
    target_log_std = target.log_std.detach()
    fixed_std = DiagGaussianDist(online.mean, target_log_std)
    fixed_mean = DiagGaussianDist(target.mean.detach(), online.log_std)
    return fixed_std, fixed_mean


def gaussian_kl(p: GaussianParameters, q: GaussianParameters, per_dim: bool = True) -> Tensor:
    """``KL(p || q)`` of diagonal Gaussians ``[B, D]``, one value per action dimension
    (``per_dim``), or their sum ``[B, 1]``. Written as ``(mu_p - mu_q)^2 / (2 s_q^2) +
    expm1(2 d) / 2 - d`` with ``d = log s_p - log s_q`` (TensorFlow Probability's form): a KL
    of 1e-6 (MPO's std constraint) is resolved in float32, where ``r - 1 - log r`` of the
    variance ratio ``r`` would round to noise."""
    log_ratio = p.log_std - q.log_std
    mean_term = 0.5 * ((p.mean - q.mean) / q.log_std.exp()).square()
    kl = mean_term + 0.5 * torch.expm1(2.0 * log_ratio) - log_ratio
    return kl if per_dim else kl.sum(-1, keepdim=True)


__all__ = ["GaussianParameters", "decoupled_gaussians", "gaussian_kl"]
