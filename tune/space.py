"""Search spaces: which settings a study varies, how each is drawn, and when it applies.

A space is a YAML mapping (or a dict) from a parameter name to how it is drawn::

    lr: {type: loguniform, low: 1.0e-5, high: 1.0e-2}
    num_epochs: {type: int, low: 1, high: 20}
    ent_coef: {type: uniform, low: 0.0, high: 0.02}
    hidden_sizes: {type: categorical, choices: [[64], [64, 64], [256, 256]]}
    intrinsic_reward.id: {type: categorical, choices: [null, rnd]}
    intrinsic_reward.coef: {type: loguniform, low: 1.0e-3, high: 0.1,
                            when: {intrinsic_reward.id: rnd}}

Names are agent hyperparameters, the run setting ``num_envs``, or ``PRIMITIVE.ARGUMENT`` for
a primitive's spec (``encoder.feature_dim``; ``PRIMITIVE.id`` picks the implementation and
``null`` leaves an optional primitive out). ``when`` makes a parameter conditional: it is drawn
only when every named parameter took one of the listed values. The same space drives Optuna
(define-by-run) and Ray Tune (through Ray's Optuna searcher), so both backends draw alike.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rlkit.config import coerce, field_names
from rlkit.prototypes.settings import PRIMITIVE_KEYS

if TYPE_CHECKING:
    import optuna

KINDS = ("loguniform", "uniform", "int", "categorical")
#: keys each kind accepts (``when`` is accepted by all).
_KEYS = {
    "loguniform": {"low", "high"},
    "uniform": {"low", "high", "step"},
    "int": {"low", "high", "step", "log"},
    "categorical": {"choices"},
}
#: run settings a space may vary (others, such as the budget, belong to the study).
RUN_PARAMS = ("num_envs",)


class SpaceError(ValueError):
    """A search space that cannot be used; the message names the parameter and the rule."""


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _label(value: Any) -> Any:
    """Optuna stores scalar choices only: a list or mapping choice is stored as its YAML text."""
    if _scalar(value):
        return value
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a space: its name, how it is drawn, and when it applies."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def applies(self, drawn: Mapping[str, Any]) -> bool:
        """Whether every condition of ``when`` holds for the values drawn so far."""
        return all(name in drawn and drawn[name] in values for name, values in self.when)

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        """Draw this parameter on an Optuna trial (its decoded value)."""
        if self.kind == "categorical":
            labels = [_label(c) for c in self.choices]
            label = trial.suggest_categorical(self.name, labels)
            return self.choices[labels.index(label)]
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.name, self.low, self.high, step=self.step, log=self.kind == "loguniform"
        )

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The Optuna distribution :meth:`suggest` draws from."""
        import optuna

        if self.kind == "categorical":
            return optuna.distributions.CategoricalDistribution([_label(c) for c in self.choices])
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return optuna.distributions.IntDistribution(
                int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return optuna.distributions.FloatDistribution(
            self.low, self.high, step=self.step, log=self.kind == "loguniform"
        )

    def encode(self, value: Any) -> Any:
        """A setting's value as Optuna stores it (list and mapping choices as YAML text)."""
        return _label(value) if self.kind == "categorical" else value

    def decode(self, stored: Any) -> Any:
        """A stored value (as Optuna or Ray recorded it) back to the setting's value."""
        if self.kind != "categorical":
            return stored
        labels = [_label(c) for c in self.choices]
        return self.choices[labels.index(stored)] if stored in labels else stored

    def bounds(self) -> tuple[Any, ...]:
        """The extreme values the parameter can take (for checking a space up front)."""
        if self.kind == "categorical":
            return self.choices
        if self.kind == "int":
            return (int(self.low or 0), int(self.high or 0))
        return (self.low, self.high)


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpaceError(f"search space: {name}.{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SpaceError(f"search space: {name}.{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SpaceError(f"search space: {name}.{key} must be finite, got {value!r}")
    return number


def parse_param(name: str, spec: Any) -> Param:
    """One entry of a space file; a bare list is shorthand for ``categorical``."""
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, Mapping):
        raise SpaceError(
            f"search space: {name} must be a mapping with a 'type' ({', '.join(KINDS)}) or a "
            f"list of choices, got {spec!r}"
        )
    kind = spec.get("type")
    if kind not in KINDS:
        raise SpaceError(
            f"search space: {name}.type is {kind!r}; allowed: {', '.join(KINDS)} "
            "(e.g. {type: loguniform, low: 1.0e-5, high: 1.0e-2})"
        )
    unknown = sorted(set(spec) - _KEYS[kind] - {"type", "when"})
    if unknown:
        raise SpaceError(
            f"search space: {name} ({kind}) has unknown key(s) {', '.join(map(str, unknown))}; "
            f"allowed: {', '.join(sorted(_KEYS[kind] | {'type', 'when'}))}"
        )
    when = _parse_when(name, spec.get("when"))
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(
                f"search space: {name}.choices must be a non-empty list, got {choices!r}"
            )
        labels = [_label(c) for c in choices]
        if len(set(map(repr, labels))) != len(labels):
            raise SpaceError(f"search space: {name}.choices has duplicates: {choices!r}")
        return Param(name, kind, choices=tuple(choices), when=when)
    for key in ("low", "high"):
        if key not in spec:
            raise SpaceError(f"search space: {name} ({kind}) needs '{key}'")
    low, high = _number(name, "low", spec["low"]), _number(name, "high", spec["high"])
    if not low < high:
        raise SpaceError(f"search space: {name} needs low < high, got low={low!r}, high={high!r}")
    log = kind == "loguniform" or bool(spec.get("log", False))
    if log and low <= 0:
        raise SpaceError(
            f"search space: {name} is drawn on a log scale, so low must be > 0, got {low!r}"
        )
    step = _number(name, "step", spec["step"]) if spec.get("step") is not None else None
    if step is not None and step <= 0:
        raise SpaceError(f"search space: {name}.step must be > 0, got {step!r}")
    if kind == "int":
        for key, value in (("low", low), ("high", high), ("step", step)):
            if value is not None and not float(value).is_integer():
                raise SpaceError(
                    f"search space: {name}.{key} must be an integer for type int, got {value!r}"
                )
        if log and step not in (None, 1):
            raise SpaceError(f"search space: {name}: log: true needs step 1, got {step!r}")
    return Param(name, kind, low=low, high=high, step=step, log=log, when=when)


def _parse_when(name: str, when: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise SpaceError(
            f"search space: {name}.when must map parameter names to a value or a list of "
            f"values, got {when!r}"
        )
    return tuple((str(k), tuple(v) if isinstance(v, list) else (v,)) for k, v in when.items())


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """An ordered set of :class:`Param`; conditions refer to parameters listed earlier."""

    params: tuple[Param, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Parse a mapping (what a space YAML file holds) and check its conditions."""
        if not isinstance(data, Mapping) or not data:
            raise SpaceError(
                "search space: expected a non-empty mapping of parameter names to "
                f"distributions, got {data!r}"
            )
        params = tuple(parse_param(str(name), spec) for name, spec in data.items())
        seen: dict[str, Param] = {}
        for param in params:
            for other, values in param.when:
                if other not in seen:
                    raise SpaceError(
                        f"search space: {param.name}.when names {other!r}, which is not a "
                        "parameter listed before it"
                    )
                if seen[other].kind != "categorical":
                    raise SpaceError(
                        f"search space: {param.name}.when names {other!r}, which is "
                        f"{seen[other].kind}; conditions must name categorical parameters"
                    )
                allowed = seen[other].choices
                missing = [v for v in values if v not in allowed]
                if missing:
                    raise SpaceError(
                        f"search space: {param.name}.when: {other} is never {missing!r}; "
                        f"its choices are {list(allowed)!r}"
                    )
            seen[param.name] = param
        return cls(params)

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """Read a space from a YAML file."""
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise FileNotFoundError(f"search space file {path} does not exist") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpaceError(f"search space file {path} is not valid YAML: {e}") from None
        try:
            return cls.from_dict(data or {})
        except SpaceError as e:
            raise SpaceError(f"{path}: {e}") from None

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Draw every applicable parameter on ``trial``: ``{name: value}``."""
        drawn: dict[str, Any] = {}
        for param in self.params:
            if param.applies(drawn):
                drawn[param.name] = param.suggest(trial)
        return drawn

    def decode(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Stored values (labels for list choices) back to settings; unknown names pass."""
        by_name = {p.name: p for p in self.params}
        return {k: by_name[k].decode(v) if k in by_name else v for k, v in stored.items()}

    def encode_start(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A configuration to try first (``{name: value}``) as Optuna stores it; names must be
        in the space, values among a categorical's choices."""
        if not isinstance(values, Mapping):
            raise SpaceError(f"start: expected a mapping of parameter values, got {values!r}")
        by_name = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            raise SpaceError(
                f"start: {', '.join(map(str, unknown))} not in the search space; its "
                f"parameters: {', '.join(self.names)}"
            )
        out = {}
        for name, value in values.items():
            param = by_name[name]
            if param.kind == "categorical" and value not in param.choices:
                raise SpaceError(
                    f"start: {name}={value!r} is not one of its choices {list(param.choices)!r}"
                )
            out[name] = param.encode(value)
        return out

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {p.name: p.distribution() for p in self.params}

    def check_agent(self, agent_cls: Any) -> None:
        """Every name must be a hyperparameter of ``agent_cls``, ``num_envs`` or a primitive
        argument, and every bound must fit the hyperparameter's type and rules."""
        config_cls = agent_cls.Config
        hyper = field_names(config_cls)
        hints = typing.get_type_hints(config_cls)
        agent = getattr(agent_cls, "__name__", str(agent_cls))
        for param in self.params:
            head, dot, _ = param.name.partition(".")
            if dot:
                if head not in PRIMITIVE_KEYS:
                    raise SpaceError(
                        f"search space: {param.name!r}: {head!r} is not a primitive; dotted "
                        f"names start with one of {', '.join(PRIMITIVE_KEYS)}"
                    )
                continue
            if param.name in RUN_PARAMS:
                continue
            if param.name not in hyper:
                raise SpaceError(
                    f"search space: {param.name!r} is not a hyperparameter of {agent}; valid: "
                    f"{', '.join(hyper)}, run setting num_envs, or PRIMITIVE.ARGUMENT with "
                    f"PRIMITIVE one of {', '.join(PRIMITIVE_KEYS)}"
                )
            annotation = hints[param.name]
            if param.kind in ("uniform", "loguniform") and _is_int(annotation):
                raise SpaceError(
                    f"search space: {param.name} is an integer hyperparameter of {agent}; use "
                    f"type: int (got type: {param.kind})"
                )
            for value in param.bounds():
                try:
                    coerce(value, annotation, f"search space: {param.name}")
                except (TypeError, ValueError) as e:
                    raise SpaceError(f"{e} (hyperparameter of {agent})") from None
            for value in param.bounds():
                try:
                    config_cls(**{param.name: coerce(value, annotation, param.name)})
                except (TypeError, ValueError) as e:
                    raise SpaceError(
                        f"search space: {param.name}={value!r} is not allowed by {agent}: {e}"
                    ) from None


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(a is int for a in args)
    return False


def builtin_space(algo: str) -> SearchSpace:
    """The space shipped for agent ``algo`` (``rlkit/tune/spaces/<algo>.yaml``)."""
    try:
        text = resources.files("rlkit.tune").joinpath("spaces").joinpath(f"{algo}.yaml").read_text()
    except FileNotFoundError:
        raise SpaceError(
            f"rlkit tune: no built-in search space for {algo!r}; pass --space FILE "
            f"(built-in: {', '.join(builtin_spaces())})"
        ) from None
    return SearchSpace.from_dict(yaml.safe_load(text))


def builtin_spaces() -> list[str]:
    """Agent ids that have a built-in space."""
    folder = resources.files("rlkit.tune").joinpath("spaces")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def apply_params(
    params: Mapping[str, Any],
    run: Mapping[str, Any],
    hyper: Mapping[str, Any],
    prims: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Put drawn ``params`` over a base config: run settings, hyperparameters and primitive
    specs (``encoder.feature_dim`` merges into the base ``encoder`` spec; ``X.id: null`` drops
    primitive ``X``)."""
    run, hyper = dict(run), dict(hyper)
    specs: dict[str, Any] = {}
    for name, value in params.items():
        head, dot, arg = name.partition(".")
        if dot:
            specs.setdefault(head, {})[arg] = value
        elif name in RUN_PARAMS:
            run[name] = value
        else:
            hyper[name] = value
    out_prims = dict(prims)
    for head, args in specs.items():
        if "id" in args and args["id"] is None:
            out_prims.pop(head, None)
            continue
        base = out_prims.get(head)
        if isinstance(base, str):
            base = {"id": base}
        if base is not None and not isinstance(base, Mapping):
            raise SpaceError(
                f"search space: {head}.* needs the base {head} to be an id or a spec mapping, "
                f"got {type(base).__name__}"
            )
        merged = {**(base or {}), **args}
        if "id" not in merged:
            raise SpaceError(
                f"search space: {', '.join(f'{head}.{a}' for a in args)} needs {head}.id in the "
                f"space or {head} in the base config"
            )
        out_prims[head] = merged
    return run, hyper, out_prims


__all__ = [
    "KINDS",
    "Param",
    "SearchSpace",
    "SpaceError",
    "apply_params",
    "builtin_space",
    "builtin_spaces",
]
