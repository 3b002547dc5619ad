"""Loss-term contract: one piece of an algorithm's loss, reused by every agent that needs it.

A :class:`LossTerm` reads named per-sample inputs (network outputs such as ``log_prob`` or
``q``, batch data such as ``advantage`` or ``target``) and returns its unweighted value, a
scalar; the loss is ``sum(term.coef * term(inputs))``. A term may also give the closed-form
derivative of its weighted value with respect to each differentiable input
(:meth:`LossTerm.derivative`); the ``fast`` backend applies those derivatives to the network
directly (no autograd graph for the term), and ``tests/test_losses.py`` checks every one
against autograd. A term without one works on every backend: it is differentiated by autograd.

Closed forms of terms marked :attr:`LossTerm.array_agnostic` are written against the array API
that NumPy and torch share (``xp = array_namespace(x["log_prob"])``, then ``xp.exp``,
``xp.minimum``, ``.clip()``, ``.mean()``, operators): when a ``fast`` CPU kernel evaluated the
network in NumPy, they run on NumPy views of the inputs, where an operation on a 256-vector
costs a fraction of a torch call.

Standard input names (agents provide these; a custom term may read any key it is given):

=================  ==========================================================================
``log_prob``       log pi(a|s) of the stored actions under the current policy ``[B]``
``entropy``        policy entropy ``[B]``
``value``          state value ``V(s)`` ``[B]``
``old_log_prob``   log-prob when the data was collected ``[B]``
``old_value``      value when the data was collected ``[B]``
``advantage``      advantage estimate ``[B]`` (GAE, V-trace, ...)
``return``         value target ``[B]``
``q``              Q-value(s) of the taken actions ``[B]`` or ``[E, B]`` (E critics)
``target``         TD target ``[B]``
``weight``         importance-sampling weight per sample ``[B]`` (prioritized replay)
=================  ==========================================================================
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from rlkit import guard
from rlkit.backends.setting import closed_form_active
from rlkit.backends.torch_private import own_hooks_present
from rlkit.configurable import Configurable
from rlkit.registry import Registry
from rlkit.utils.compiling import eager_only

#: a term's inputs: names to tensors (or other objects, e.g. distributions).
Inputs = Mapping[str, Any]


def array_namespace(x: Any) -> ModuleType:
    """``numpy`` for a NumPy array, else ``torch``: the namespace an array-agnostic closed
    form calls (``xp.exp``, ``xp.minimum``, ``xp.where``, ``xp.full_like``, ...)."""
    return np if isinstance(x, np.ndarray) else torch


class LossTerm(Configurable, nn.Module, ABC):
    """Base of every loss term (see the module doc).

    ``coef`` weights the term in the total; ``name`` is its log key (``loss/<name>``).
    Subclasses define :attr:`inputs`, :attr:`differentiable`, :meth:`forward` and, where it
    has a closed form, :meth:`derivative`.
    """

    kind = "loss_term"
    #: log key used when no ``name`` is given.
    default_name: ClassVar[str] = "loss"
    #: the closed form accepts NumPy arrays as well as tensors and then returns NumPy results
    #: (see the module doc): :meth:`value_and_derivative`, or, where a term does not override
    #: it, both :meth:`forward` and :meth:`derivative`.
    array_agnostic: ClassVar[bool] = False

    def __init__(self, coef: float = 1.0, name: str | None = None) -> None:
        super().__init__()
        value = float(coef)
        if not math.isfinite(value):
            raise ValueError(f"{type(self).__name__}: coef must be a finite number, got {coef!r}")
        self.coef = value
        self.name = str(name) if name is not None else self.default_name

    @property
    @abstractmethod
    def inputs(self) -> tuple[str, ...]:
        """Names of every input the term reads."""

    @property
    @abstractmethod
    def differentiable(self) -> tuple[str, ...]:
        """The inputs the loss is differentiated with respect to (a subset of :attr:`inputs`)."""

    @abstractmethod
    def forward(self, x: Inputs) -> Tensor:
        """The unweighted value, a scalar tensor."""

    def derivative(self, x: Inputs) -> dict[str, Tensor] | None:
        """``d (coef * forward(x)) / d x[k]`` for every ``k`` in :attr:`differentiable`, each
        shaped like ``x[k]``; ``None`` when the term has no closed form (autograd then)."""
        return None

    def value_and_derivative(self, x: Inputs) -> tuple[Tensor, dict[str, Tensor] | None]:
        """:meth:`forward` and :meth:`derivative` together (without gradient); terms override
        it to share intermediate results between the two."""
        return self.forward(x), self.derivative(x)

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        """Extra values worth logging (``train/<key>``), computed without gradient."""
        return {}

    @classmethod
    def closed_form_status(cls) -> str | None:
        """``None`` when :meth:`derivative` is the derivative of this class's :meth:`forward`;
        otherwise why not (no closed form, or a subclass changed ``forward`` and not
        ``derivative``: then autograd differentiates the term, on every backend)."""
        cached = cls.__dict__.get("_closed_form_status_cache")
        if cached is not None:
            return cached[0]
        derivative, forward = _definer(cls, "derivative"), _definer(cls, "forward")
        status: str | None = None
        if derivative is LossTerm:
            status = "no closed-form derivative"
        elif not issubclass(derivative, forward):
            status = f"{forward.__name__} overrides forward but not derivative"
        setattr(cls, "_closed_form_status_cache", (status,))  # noqa: B010
        return status

    @classmethod
    def _combined_is_current(cls) -> bool:
        """Whether :meth:`value_and_derivative` is defined at or below both methods it joins."""
        combined = _definer(cls, "value_and_derivative")
        return issubclass(combined, _definer(cls, "derivative")) and issubclass(
            combined, _definer(cls, "forward")
        )

    def check_inputs(self, x: Inputs) -> None:
        """Raise a KeyError naming the term, the missing inputs and the ones given."""
        missing = [k for k in self.inputs if k not in x]
        if missing:
            raise KeyError(
                f"loss term {type(self).__name__} ({self.name!r}) needs input(s) "
                f"{', '.join(missing)}; given: {', '.join(sorted(x)) or '(none)'}"
            )

    def __call__(self, x: Inputs) -> Tensor:  # typed shortcut for forward
        out: Tensor = super().__call__(x)
        return out

    def extra_repr(self) -> str:
        return f"name={self.name!r}, coef={self.coef:g}"


def _definer(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO that defines ``name``."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    raise AttributeError(name)


#: term id -> class; ``@LOSS_TERMS.register("id")`` adds one.
LOSS_TERMS: Registry[LossTerm] = Registry("loss_term", LossTerm)


class Pullback(Protocol):
    """Backpropagation of per-sample derivatives through a network evaluated without autograd
    (a ``fast`` backend kernel): ``keys`` names the outputs it handles; ``numpy`` says that it
    works in NumPy (its outputs are NumPy-backed CPU tensors, and seeds may be NumPy arrays)."""

    keys: frozenset[str]
    numpy: bool

    def __call__(self, seeds: Mapping[str, Tensor | np.ndarray | None]) -> None:
        """Accumulate into the parameters' ``.grad`` the gradient of a loss whose derivatives
        with respect to the outputs ``keys`` are ``seeds`` (``None``: zero)."""


class Loss:
    """An assembled loss: the named term values (for logging) and how to backpropagate.

    :meth:`backward` accumulates the gradient of the weighted total into the parameters'
    ``.grad`` on every backend: plain autograd (``reference``/``compile``), or the terms'
    closed-form derivatives pushed through the network's autograd graph or kernel pullback
    (``fast``). ``float(loss)`` and :attr:`total` give the weighted total.
    """

    def __init__(
        self,
        values: Mapping[str, Tensor | np.ndarray | float],
        total: Tensor | Callable[[], Tensor],
        backward: Callable[[], None],
        metrics: dict[str, Tensor] | None = None,
    ) -> None:
        #: diagnostics of the terms (``train/<key>`` when logged).
        self.metrics = metrics if metrics is not None else {}
        self._values = values
        self._total = total
        self._backward = backward
        self._done = False

    @property
    def values(self) -> dict[str, Tensor]:
        """Unweighted value of each term (and extra part), detached: ``name -> scalar``."""
        values = self._values
        if not all(isinstance(v, Tensor) for v in values.values()):
            self._values = values = {
                k: v if isinstance(v, Tensor) else torch.as_tensor(v) for k, v in values.items()
            }
        return values  # type: ignore[return-value]

    @property
    def total(self) -> Tensor:
        """The weighted total (with its graph when autograd runs the backward)."""
        if callable(self._total):
            self._total = self._total()
        return self._total

    @eager_only
    def backward(self) -> None:
        """Accumulate the total's gradient into ``.grad`` (once per loss; outside any compiled
        region: the backward pass itself is the compiled graph's)."""
        if self._done:
            raise RuntimeError("Loss.backward: this loss was already backpropagated")
        self._done = True
        guard.note_loss(self._values)
        self._backward()

    def __float__(self) -> float:
        return float(self.total.detach())

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={float(v):.4g}" for k, v in self.values.items())
        return f"Loss(total={float(self):.4g}, {parts})"


def _scalar_zero(inputs: Inputs) -> Tensor:
    for value in inputs.values():
        if isinstance(value, Tensor):
            return torch.zeros((), dtype=torch.float32, device=value.device)
    return torch.zeros(())


class LossPlan:
    """Loss terms prepared for repeated assembly (one plan per update serves every minibatch):
    which terms contribute a closed-form derivative and which are differentiated by autograd
    is decided once, here.

    ``closed_form`` (default: the active backend's setting) makes terms contribute their
    :meth:`~LossTerm.derivative` where they have one, no subclass changed their ``forward``
    without it, and no module hook is registered on them; the rest, and ``extra`` parts, run
    through autograd.
    """

    def __init__(self, terms: Sequence[LossTerm], closed_form: bool | None = None) -> None:
        self.terms = list(terms)
        self.closed_form = closed_form_active() if closed_form is None else closed_form
        self._direct = [
            self.closed_form and type(t).closed_form_status() is None and not own_hooks_present(t)
            for t in self.terms
        ]
        self._combined = [type(t)._combined_is_current() for t in self.terms]
        self._numpy_ok = [t.array_agnostic for t in self.terms]
        self._checked: set[tuple[int, bool]] = set()
        self._reads: dict[str, bool] = {}
        self._all = list(range(len(self.terms)))
        self._weighted = [i for i, t in enumerate(self.terms) if t.coef != 0.0]
        needed = {k for t in self.terms if t.array_agnostic for k in t.inputs}
        self._numpy_keys = tuple(sorted(needed))

    def weights(self, name: str) -> bool:
        """Whether a term with a non-zero weight reads the input ``name`` (e.g. whether an
        entropy must be computed at all)."""
        cached = self._reads.get(name)
        if cached is None:
            cached = self._reads[name] = any(name in self.terms[i].inputs for i in self._weighted)
        return cached

    def __call__(
        self,
        inputs: Inputs,
        *,
        pullback: Pullback | None = None,
        extra: Mapping[str, Tensor] | None = None,
        diagnostics: bool = False,
    ) -> Loss:
        """Assemble ``sum(term.coef * term(inputs)) + sum(extra.values())`` (see
        :func:`compute_loss`)."""
        active = self._all if diagnostics else self._weighted
        signature = (len(inputs), diagnostics)
        if signature not in self._checked:  # check the names once per kind of call
            for i in active:
                self.terms[i].check_inputs(inputs)
            self._checked.add(signature)
        metrics: dict[str, Tensor] = {}
        if diagnostics:
            with torch.no_grad():
                for i in active:
                    metrics.update(self.terms[i].diagnostics(inputs))
        if not self.closed_form:
            if pullback is not None:
                raise ValueError("LossPlan: a kernel pullback needs closed_form=True")
            return self._autograd_loss(active, inputs, extra or {}, metrics)
        return self._closed_form_loss(active, inputs, pullback, extra or {}, metrics)

    def _autograd_loss(
        self,
        active: list[int],
        inputs: Inputs,
        extra: Mapping[str, Tensor],
        metrics: dict[str, Tensor],
    ) -> Loss:
        values: dict[str, Tensor] = {}
        total = _scalar_zero(inputs)
        for i in active:
            term = self.terms[i]
            if term.coef == 0.0:  # logged, not differentiated
                with torch.no_grad():
                    values[term.name] = term(inputs)
                continue
            value = term(inputs)
            values[term.name] = value.detach()
            total = total + term.coef * value
        for name, part in extra.items():
            values[name] = part.detach()
            total = total + part
        return Loss(values, total, total.backward, metrics)

    def _closed_form_loss(
        self,
        active: list[int],
        inputs: Inputs,
        pullback: Pullback | None,
        extra: Mapping[str, Tensor],
        metrics: dict[str, Tensor],
    ) -> Loss:
        seeds: dict[str, Any] = {}
        graph_parts: list[Tensor] = []
        leaves: dict[str, Tensor] = {}
        kernel_keys = pullback.keys if pullback is not None else frozenset()
        in_numpy = pullback is not None and getattr(pullback, "numpy", False)
        arrays: dict[str, Any] | None = None
        values: dict[str, Any] = {}
        weights: dict[str, float] = {}
        for i in active:
            term = self.terms[i]
            if self._direct[i]:
                x = inputs
                if in_numpy and self._numpy_ok[i]:
                    if arrays is None:
                        arrays = _numpy_views(inputs, self._numpy_keys)
                    if all(k in arrays for k in term.inputs):
                        x = arrays
                if x is arrays and self._combined[i]:
                    value, derivative = term.value_and_derivative(x)
                else:
                    with torch.no_grad():
                        if self._combined[i]:
                            value, derivative = term.value_and_derivative(x)
                        else:
                            value, derivative = term.forward(x), term.derivative(x)
                if term.coef != 0.0:
                    for key, grad in (derivative or {}).items():
                        seeds[key] = _add(seeds[key], grad) if key in seeds else grad
            elif term.coef == 0.0:
                with torch.no_grad():
                    value = term(inputs)
            else:  # autograd for this term; kernel outputs become leaves whose grads are seeds
                local = dict(inputs)
                for key in term.differentiable:
                    if key in kernel_keys:
                        if key not in leaves:
                            leaves[key] = inputs[key].detach().requires_grad_(True)
                        local[key] = leaves[key]
                value = term(local)
                graph_parts.append(term.coef * value)
                value = value.detach()
            values[term.name] = value
            weights[term.name] = term.coef
        for name, part in extra.items():
            values[name] = part.detach()
            weights[name] = 1.0
            if part.requires_grad:  # (a part without a graph is a constant: logged only)
                graph_parts.append(part)

        def total() -> Tensor:
            out = _scalar_zero(inputs)
            for name, value in values.items():
                out = out + weights[name] * torch.as_tensor(value)
            return out

        def backward() -> None:
            tensors: list[Tensor] = list(graph_parts)
            grads: list[Tensor | None] = [None] * len(graph_parts)
            for key, grad in seeds.items():
                if key in kernel_keys:
                    continue
                tensor = inputs[key]
                if isinstance(tensor, Tensor) and tensor.requires_grad:
                    tensors.append(tensor)
                    grads.append(torch.as_tensor(grad))
            if tensors:
                torch.autograd.backward(tensors, grads)
            if pullback is not None:
                kernel_seeds: dict[str, Any] = {}
                for key in kernel_keys:
                    seed = seeds.get(key)
                    leaf = leaves.get(key)
                    if leaf is not None and leaf.grad is not None:
                        seed = leaf.grad if seed is None else _add(seed, leaf.grad)
                    kernel_seeds[key] = seed
                pullback(kernel_seeds)

        return Loss(values, total, backward, metrics)


def _numpy_views(inputs: Inputs, keys: Sequence[str]) -> dict[str, Any]:
    """NumPy views of the CPU tensors among ``inputs[keys]`` that need no gradient."""
    out: dict[str, Any] = {}
    for key in keys:
        value = inputs.get(key)
        if isinstance(value, Tensor):
            if value.is_cpu and not value.requires_grad:
                out[key] = value.numpy()
        elif value is not None:
            out[key] = value
    return out


def _add(a: Any, b: Any) -> Any:
    """``a + b`` for seeds that may mix NumPy arrays and tensors (NumPy wins on the CPU)."""
    if isinstance(a, np.ndarray) and isinstance(b, Tensor):
        b = b.numpy()
    elif isinstance(b, np.ndarray) and isinstance(a, Tensor):
        a = a.numpy()
    return a + b


def compute_loss(
    terms: Sequence[LossTerm],
    inputs: Inputs,
    *,
    pullback: Pullback | None = None,
    extra: Mapping[str, Tensor] | None = None,
    diagnostics: bool = False,
    closed_form: bool | None = None,
) -> Loss:
    """Assemble ``sum(term.coef * term(inputs)) + sum(extra.values())`` into a :class:`Loss`.

    ``extra`` holds already weighted tensors with their own autograd graphs (e.g. DrAC's
    regularisers), added as they are. ``pullback`` covers inputs computed by a kernel without
    autograd. ``closed_form`` (default: the active backend's setting) makes terms contribute
    their :meth:`~LossTerm.derivative` where they have one; terms without one, and ``extra``,
    are differentiated by autograd. ``diagnostics`` also computes the terms' diagnostics, and
    the values of zero-weight terms (skipped otherwise) for logging. For many calls with the
    same terms, build a :class:`LossPlan` once.
    """
    plan = LossPlan(terms, closed_form)
    return plan(inputs, pullback=pullback, extra=extra, diagnostics=diagnostics)


__all__ = [
    "LOSS_TERMS",
    "Inputs",
    "Loss",
    "LossPlan",
    "LossTerm",
    "Pullback",
    "array_namespace",
    "compute_loss",
]
