"""Primitives remember their constructor arguments so checkpoints can rebuild them from JSON.

Every primitive base class derives from :class:`Configurable`. The arguments of the outermost
``__init__`` call are captured automatically; :meth:`Configurable.spec` turns them into a JSON
description ``{"id": ..., **kwargs}`` and :func:`build_from_spec` reverses it. Nested primitives
(an encoder inside a policy) and gymnasium spaces are encoded recursively. No pickle anywhere.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch
from gymnasium import spaces

from rlkit.config.rules import ARGUMENT_RULES, Rule, check_arguments, rules_of
from rlkit.registry import REGISTRIES, Registry
from rlkit.spaces import space_from_dict, space_to_dict

#: the package that defines each primitive kind's registry (imported on first use).
_KIND_MODULES = {
    "encoder": ("rlkit.encoders", "ENCODERS"),
    "policy": ("rlkit.policies", "POLICIES"),
    "storage": ("rlkit.storages", "STORAGES"),
    "replay_store": ("rlkit.storages", "REPLAY_STORES"),
    "replay_sampler": ("rlkit.storages", "REPLAY_SAMPLERS"),
    "replay_relabeler": ("rlkit.storages", "REPLAY_RELABELERS"),
    "distribution": ("rlkit.distributions", "DISTRIBUTIONS"),
    "augmentation": ("rlkit.augmentations", "AUGMENTATIONS"),
    "intrinsic_reward": ("rlkit.rewards", "INTRINSIC_REWARDS"),
    "reward_model": ("rlkit.reward_models", "REWARD_MODELS"),
    "loss_term": ("rlkit.losses", "LOSS_TERMS"),
}


P = TypeVar("P")


class NotSerializableError(TypeError):
    """A primitive argument has no JSON form."""


class Configurable:
    """Mixin recording the arguments a primitive was built with (see module doc)."""

    #: the primitive kind ("encoder", "policy", ...), set on each base class.
    kind: ClassVar[str] = ""
    #: the id this exact class is registered under (set by :meth:`Registry.register`).
    registry_id: ClassVar[str | None] = None
    #: what each constructor argument allows (:mod:`rlkit.config.rules`), checked before
    #: ``__init__`` runs; a subclass's table adds to its bases'.
    argument_rules: ClassVar[dict[str, Rule]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "registry_id" not in cls.__dict__:
            cls.registry_id = None
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_rlkit_captures", False):
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self: Any, *args: Any, **kw: Any) -> None:
            if "_init_args" not in self.__dict__:
                try:
                    bound = signature.bind(self, *args, **kw)
                except TypeError as e:
                    names = ", ".join(list(signature.parameters)[1:])
                    raise TypeError(
                        f"{type(self).__qualname__}: {e}; its arguments: {names}"
                    ) from None
                bound.apply_defaults()
                captured: dict[str, Any] = {}
                for name, value in list(bound.arguments.items())[1:]:
                    param = signature.parameters[name]
                    if param.kind is inspect.Parameter.VAR_KEYWORD:
                        captured.update(value)
                    elif param.kind is not inspect.Parameter.VAR_POSITIONAL:
                        captured[name] = value
                object.__setattr__(self, "_init_args", captured)
                rules = rules_of(type(self), ARGUMENT_RULES)
                check_arguments(type(self).__name__, captured, rules)
            init(self, *args, **kw)

        wrapped._rlkit_captures = True  # type: ignore[attr-defined]
        setattr(cls, "__init__", wrapped)  # noqa: B010

    @property
    def init_args(self) -> dict[str, Any]:
        """The keyword arguments this object was constructed with."""
        return dict(self.__dict__.get("_init_args", {}))

    def spec(self) -> dict[str, Any]:
        """JSON description: ``{"id": registry id, **constructor kwargs}``."""
        cls = type(self)
        out: dict[str, Any] = {"id": cls.__dict__.get("registry_id")}
        if out["id"] is None:
            out["class"] = f"{cls.__module__}.{cls.__qualname__}"
        for name, value in self.init_args.items():
            out[name] = to_json(value, f"{cls.__qualname__}({name}=...)")
        return out


def to_json(value: Any, where: str = "value") -> Any:
    """Encode a constructor argument as JSON (spaces and primitives tagged)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, torch.device | torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, spaces.Space):
        return {"__space__": space_to_dict(value)}
    if isinstance(value, Configurable):
        return {"__primitive__": value.kind, **value.spec()}
    if isinstance(value, list | tuple):
        return [to_json(v, where) for v in value]
    if isinstance(value, Mapping):
        return {"__dict__": {str(k): to_json(v, where) for k, v in value.items()}}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    raise NotSerializableError(
        f"{where}: cannot store {type(value).__qualname__} in a JSON checkpoint config; "
        "use plain numbers, strings, lists, dicts, spaces or registered primitives"
    )


def from_json(value: Any) -> Any:
    """Inverse of :func:`to_json`."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if "__space__" in value:
            return space_from_dict(value["__space__"])
        if "__dict__" in value:
            return {k: from_json(v) for k, v in value["__dict__"].items()}
        if "__primitive__" in value:
            kind = value["__primitive__"]
            spec = {k: v for k, v in value.items() if k != "__primitive__"}
            return build_from_spec(kind, spec)
        return {k: from_json(v) for k, v in value.items()}
    return value


def registry_of(kind: str) -> Registry[Any]:
    """The registry of primitive ``kind`` (importing the package that defines it)."""
    if kind not in REGISTRIES and kind in _KIND_MODULES:
        importlib.import_module(_KIND_MODULES[kind][0])
    registry = REGISTRIES.get(kind)
    if registry is None:
        raise ValueError(f"unknown primitive kind {kind!r}; known: {sorted(REGISTRIES)}")
    return registry


def build_from_spec(kind: str, spec: Mapping[str, Any], **overrides: Any) -> Any:
    """Build a primitive of ``kind`` from a :meth:`Configurable.spec` dictionary."""
    registry = registry_of(kind)
    if spec.get("id") is None:
        module, registry_name = _KIND_MODULES.get(kind, ("rlkit", "<registry>"))
        raise ValueError(
            f"the {kind} {spec.get('class', '?')} is not registered, so it cannot be rebuilt "
            f"from its config; register it with @{module}.{registry_name}.register('<id>') or "
            f"pass the {kind} object explicitly"
        )
    kwargs = {k: from_json(v) for k, v in spec.items() if k not in ("id", "class")}
    kwargs.update(overrides)
    return registry.build({"id": spec["id"], **kwargs})


def build_primitive(
    kind: str, value: Any, base: type[P], owner: str = "", **defaults: Any
) -> P | None:
    """Accept a primitive as an object, a registered id or an ``{"id": ...}`` spec (as YAML
    configs give them); ids and specs are built with ``defaults`` (e.g. the env's spaces).
    ``None`` stays ``None``; anything else is a TypeError naming ``owner`` and ``kind``."""
    if value is None or isinstance(value, base):
        return value
    if isinstance(value, str | Mapping):
        if kind not in REGISTRIES and kind in _KIND_MODULES:
            importlib.import_module(_KIND_MODULES[kind][0])
        registry = REGISTRIES[kind]
        name = value if isinstance(value, str) else value.get("id")
        cls = registry.lookup(name) if isinstance(name, str) else None
        if cls is not None and not issubclass(cls, base):  # say so before building it
            raise TypeError(f"{owner}: {kind} {name!r} is a {cls.__name__}, not a {base.__name__}")
        built = registry.build(value, **defaults)
        if not isinstance(built, base):
            raise TypeError(
                f"{owner}: {kind} {value!r} is a {type(built).__name__}, not a {base.__name__}"
            )
        return built
    prefix = f"{owner}: " if owner else ""
    raise TypeError(
        f"{prefix}{kind} must be a {base.__name__}, a registered id or an {{'id': ...}} spec, "
        f"got {type(value).__name__}"
    )
