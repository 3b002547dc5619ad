"""Registries map string ids to primitive classes so configs can name implementations."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")
C = TypeVar("C", bound=type)


class UnknownIdError(KeyError):
    """Raised when a registry is asked for an id it does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class UnknownArgumentError(TypeError):
    """A spec names an argument the class does not take."""


def arguments_of(cls: type) -> dict[str, bool] | None:
    """``{argument: required}`` of the keyword arguments ``cls(...)`` takes, or None when it
    takes any (``**kwargs``)."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    out: dict[str, bool] = {}
    for name, param in signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            continue
        out[name] = param.default is inspect.Parameter.empty
    return out


#: kind -> registry; every Registry adds itself so JSON specs can name nested primitives.
REGISTRIES: dict[str, Registry[Any]] = {}


class Registry(Generic[T]):
    """A named table ``id -> class`` for one primitive kind.

    >>> ENCODERS = Registry("encoder", Encoder)
    >>> @ENCODERS.register("my_cnn")
    ... class MyCNN(Encoder): ...
    """

    def __init__(self, kind: str, base: type[T]) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type[T]] = {}
        REGISTRIES[kind] = self

    def register(self, id: str) -> Callable[[C], C]:
        """Class decorator registering ``cls`` under ``id`` (also stored as ``cls.registry_id``)."""

        def decorator(cls: C) -> C:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(
                    f"{self.kind} registry: {cls!r} must subclass {self.base.__qualname__}"
                )
            existing = self._classes.get(id)
            if existing is not None and existing is not cls:
                raise ValueError(
                    f"{self.kind} id {id!r} is already registered to {existing.__qualname__}"
                )
            self._classes[id] = cls
            # Set on the class itself (Configurable resets it on subclasses).
            setattr(cls, "registry_id", id)  # noqa: B010
            return cls  # type: ignore[return-value]

        return decorator

    def unregister(self, id: str) -> type[T]:
        """Remove ``id`` and return its class (re-registering a class, in a notebook or a test);
        the class keeps no ``registry_id`` afterwards."""
        cls = self.get(id)
        del self._classes[id]
        if cls.__dict__.get("registry_id") == id:
            setattr(cls, "registry_id", None)  # noqa: B010
        return cls

    def get(self, id: str) -> type[T]:
        """Return the class registered under ``id``; the error lists the known ids."""
        try:
            return self._classes[id]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "(none)"
            raise UnknownIdError(
                f"unknown {self.kind} id {id!r}; known {self.kind}s: {known}"
            ) from None

    def lookup(self, id: str) -> type[T] | None:
        """The class registered under ``id``, or None (no error, nothing imported)."""
        return self._classes.get(id)

    def id_of(self, cls: type) -> str | None:
        """The id ``cls`` is registered under, or None."""
        for key, value in self._classes.items():
            if value is cls:
                return key
        return None

    def build(self, spec: str | Mapping[str, Any], **defaults: Any) -> T:
        """Instantiate from ``"id"`` or ``{"id": ..., **kwargs}``; ``defaults`` fill gaps. A key
        the class does not take, or a required argument left out, is an error naming the id,
        the class and its arguments."""
        if isinstance(spec, str):
            spec = {"id": spec}
        if not isinstance(spec, Mapping):
            raise TypeError(
                f"{self.kind} spec must be an id or a mapping with an 'id' key, got {spec!r}"
            )
        if "id" not in spec:
            raise ValueError(f"{self.kind} spec {dict(spec)!r} needs an 'id' key")
        given = {str(k): v for k, v in spec.items() if k != "id"}
        cls = self.get(str(spec["id"]))
        kwargs = {**defaults, **given}
        signature = arguments_of(cls)
        if signature is not None:
            what = f"{self.kind} {spec['id']!r} ({cls.__qualname__})"
            names = list(signature)
            unknown = [k for k in given if k not in signature]
            if unknown:
                raise UnknownArgumentError(
                    f"{what} has no argument(s) {', '.join(unknown)}; its arguments: "
                    f"{', '.join(names) or '(none)'}"
                )
            missing = [k for k, required in signature.items() if required and k not in kwargs]
            if missing:
                raise TypeError(
                    f"{what} needs the argument(s) {', '.join(missing)}; its arguments: "
                    f"{', '.join(names)}"
                )
        return cls(**kwargs)

    def __contains__(self, id: object) -> bool:
        return id in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._classes))

    def items(self) -> list[tuple[str, type[T]]]:
        return sorted(self._classes.items())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, ids={sorted(self._classes)})"
