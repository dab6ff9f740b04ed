"""Decoration time: turn ``tenant=`` / ``features=`` into fast getters over a call's arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from modeltel._errors import ConfigurationError

Getter = Callable[[tuple[Any, ...], dict[str, Any]], Any]


def _none(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return None


def argument_getter(fn: Callable[..., Any], spec: str | Callable[..., Any] | None, role: str) -> Getter:
    """A getter for the argument named ``spec`` (or ``spec(*args, **kwargs)`` when callable)."""
    if spec is None:
        return _none
    if callable(spec):
        user = spec
        return lambda args, kwargs: user(*args, **kwargs)
    params = list(_signature(fn).parameters.values())
    for index, p in enumerate(params):
        if p.name == spec:
            return _by_name_or_position(spec, index, p.default, p.kind)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return lambda args, kwargs: kwargs.get(spec)
    raise ConfigurationError(
        f"{role}={spec!r}: {getattr(fn, '__qualname__', fn)!r} has no argument named {spec!r}"
    )


def _by_name_or_position(name: str, index: int, default: Any, kind: Any) -> Getter:
    default = None if default is inspect.Parameter.empty else default
    if kind is inspect.Parameter.KEYWORD_ONLY:
        return lambda args, kwargs: kwargs.get(name, default)

    def get(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if len(args) > index:
            return args[index]
        return kwargs.get(name, default)

    return get


def features_getter(fn: Callable[..., Any], spec: str | Callable[..., Any] | None) -> Getter:
    """``features=`` as given, else the first positional argument (after ``self`` / ``cls``)."""
    if spec is not None:
        return argument_getter(fn, spec, "features")
    params = [
        p
        for p in _signature(fn).parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    if not params:
        return _none
    return argument_getter(fn, params[0].name, "features")


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the signature of {fn!r}: {exc}") from None
