"""NoisyNet layers (Fortunato et al. 2018, "Noisy Networks for Exploration"): linear layers whose
weights carry learned, factorised Gaussian noise, so exploration is part of the network.

- :class:`NoisyLinear` is a drop-in for ``nn.Linear``: ``W = mu_W + sigma_W * eps_W`` with
  factorised noise ``eps_W = f(eps_out) f(eps_in)^T``, ``eps_b = f(eps_out)``,
  ``f(x) = sign(x) sqrt(|x|)``. Noise applies in training mode; in eval mode (deterministic
  evaluation, export) the layer is the mean ``mu``.
- :func:`make_noisy` turns every ``nn.Linear`` inside any module (an encoder, a head, a whole
  policy) into a :class:`NoisyLinear` that starts from its weights.
- :func:`reset_noise` draws new noise for every noisy layer in a module; the off-policy
  prototype calls it on the policy and its targets before every gradient step (the noise then
  stays fixed for acting until the next step, as in the paper's DQN variant).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NoisyLinear(nn.Module):
    """Affine layer with factorised Gaussian weight noise.

    ``mu`` starts uniform in ``+-1/sqrt(in_features)`` and ``sigma`` at
    ``sigma0 / sqrt(in_features)`` (the paper's factorised initialisation, ``sigma0 = 0.5``).
    The current noise is kept in buffers (``weight_epsilon``, ``bias_epsilon``) so a
    checkpoint restores it; it starts at zero (the layer is its mean until the first
    :meth:`reset_noise`).
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(
                "NoisyLinear: in_features and out_features must be >= 1, got "
                f"{in_features}, {out_features}"
            )
        if not (math.isfinite(float(sigma0)) and float(sigma0) >= 0):
            raise ValueError(f"NoisyLinear: sigma0 must be a finite number >= 0, got {sigma0!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.sigma0 = float(sigma0)
        self.weight_mu = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.weight_sigma = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias_mu = nn.Parameter(torch.empty(self.out_features))
        self.bias_sigma = nn.Parameter(torch.empty(self.out_features))
        self.register_buffer("weight_epsilon", torch.zeros(self.out_features, self.in_features))
        self.register_buffer("bias_epsilon", torch.zeros(self.out_features))
        self.reset_parameters()

    weight_epsilon: Tensor
    bias_epsilon: Tensor

    def reset_parameters(self) -> None:
        """The paper's factorised initialisation (see the class doc)."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight_mu.uniform_(-bound, bound)
            self.bias_mu.uniform_(-bound, bound)
            self.weight_sigma.fill_(self.sigma0 * bound)
            self.bias_sigma.fill_(self.sigma0 * bound)

    @classmethod
    def from_linear(cls, layer: nn.Linear, sigma0: float = 0.5) -> NoisyLinear:
        """A noisy layer whose mean is ``layer``'s weights (on its device and dtype)."""
        noisy = cls(layer.in_features, layer.out_features, sigma0)
        noisy.to(device=layer.weight.device, dtype=layer.weight.dtype)
        with torch.no_grad():
            noisy.weight_mu.copy_(layer.weight)
            if layer.bias is not None:
                noisy.bias_mu.copy_(layer.bias)
            else:
                noisy.bias_mu.zero_()
        return noisy

    @torch.no_grad()
    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new factorised noise (from ``generator`` where given, for reproducibility)."""
        device = generator.device if generator is not None else self.weight_mu.device
        noise = torch.randn(self.noise_size, generator=generator, device=device)
        self.set_noise(noise.sign() * noise.abs().sqrt_())

    @property
    def noise_size(self) -> int:
        """How many factor values one draw takes: ``in_features + out_features``."""
        return self.in_features + self.out_features

    @torch.no_grad()
    def set_noise(self, factors: Tensor) -> None:
        """Set the noise from ``f(eps)`` factors ``[in_features + out_features]`` (input
        factors first); :func:`draw_noise` draws many layers' factors at once."""
        factors = factors.to(self.weight_mu)
        eps_in, eps_out = factors[: self.in_features], factors[self.in_features :]
        torch.outer(eps_out, eps_in, out=self.weight_epsilon)
        self.bias_epsilon.copy_(eps_out)

    @property
    def weight(self) -> Tensor:
        """The weight in use: noisy in training mode, the mean in eval mode."""
        if self.training:
            return torch.addcmul(self.weight_mu, self.weight_sigma, self.weight_epsilon)
        return self.weight_mu

    @property
    def bias(self) -> Tensor:
        """The bias in use (see :attr:`weight`)."""
        if self.training:
            return torch.addcmul(self.bias_mu, self.bias_sigma, self.bias_epsilon)
        return self.bias_mu

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        sizes = f"in_features={self.in_features}, out_features={self.out_features}"
        return f"{sizes}, sigma0={self.sigma0:g}"


def make_noisy(module: nn.Module, sigma0: float = 0.5) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (or ``module`` itself) by a
    :class:`NoisyLinear` starting from its weights; returns the (changed) module."""
    if isinstance(module, nn.Linear):
        return NoisyLinear.from_linear(module, sigma0)
    for name, child in list(module.named_children()):
        replaced = make_noisy(child, sigma0)
        if replaced is not child:
            setattr(module, name, replaced)
    return module


class Noisy(Protocol):
    """What a noisy layer offers: drawing new noise (from ``generator`` where given)."""

    def reset_noise(self, generator: torch.Generator | None = None) -> None: ...


def noisy_layers(module: nn.Module) -> list[Noisy]:
    """Every submodule of ``module`` with a ``reset_noise(generator)`` method (a noisy layer,
    built-in or a user's own)."""
    return [cast(Noisy, m) for m in module.modules() if callable(getattr(m, "reset_noise", None))]


def draw_noise(layers: Sequence[Noisy], generator: torch.Generator | None = None) -> None:
    """Draw new noise in ``layers``: the factors of every :class:`NoisyLinear` (that keeps its
    ``reset_noise``) in one random call, split among them; any other noisy layer through its
    own ``reset_noise``. One call instead of one per layer matters for small networks, whose
    update cost is operator count."""
    batched: list[NoisyLinear] = []
    for layer in layers:
        if isinstance(layer, NoisyLinear) and _draws_as_noisy_linear(layer):
            batched.append(layer)
        else:
            layer.reset_noise(generator)
    if not batched:
        return
    sizes = [layer.noise_size for layer in batched]
    device = generator.device if generator is not None else batched[0].weight_mu.device
    noise = torch.randn(sum(sizes), generator=generator, device=device)
    noise = noise.sign() * noise.abs().sqrt_()
    for layer, factors in zip(batched, noise.split(sizes), strict=True):
        layer.set_noise(factors)


def _draws_as_noisy_linear(layer: NoisyLinear) -> bool:
    """Whether ``layer`` draws its noise as :class:`NoisyLinear` does (a subclass that
    overrides ``reset_noise`` or ``set_noise`` keeps its own)."""
    cls = layer.__class__
    return cls.reset_noise is NoisyLinear.reset_noise and cls.set_noise is NoisyLinear.set_noise


def reset_noise(module: nn.Module, generator: torch.Generator | None = None) -> int:
    """Draw new noise in every noisy layer of ``module`` (:func:`draw_noise`); returns how
    many there are."""
    layers = noisy_layers(module)
    draw_noise(layers, generator)
    return len(layers)


__all__ = ["Noisy", "NoisyLinear", "draw_noise", "make_noisy", "noisy_layers", "reset_noise"]
