"""Feature contracts: a pydantic model compiled once (decoration time) into fast per-call checks.

``compile_contract(Features)`` reads the model's fields into specs, generates a straight-line
fast path for valid input, and keeps the explaining checks for when the fast path says no.
The checks are always strict (no coercion); see ``_contract_rules`` for the few deliberate
differences from pydantic's strict mode. Values never reach a Violation, only their type names.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modeltel._contract.codegen import RowCheck, ValueCheck, build_row_check, build_value_check
from modeltel._contract.rules import check_mapping
from modeltel._contract.spec import FieldSpec, feature_name, parse_model, version_of
from modeltel._contract.violation import Violation

if TYPE_CHECKING:
    from modeltel._contract.batch import BatchCheck

__all__ = ["Contract", "Violation", "compile_contract", "sensitive"]


def sensitive(**field_kwargs: Any) -> Any:
    """A pydantic ``Field`` marking a feature whose value telemetry must never carry.

    ``email: str = modeltel.sensitive()`` is required; ``sensitive(default=None)`` is not. Any other
    ``Field`` keyword is passed through. Same as ``Field(json_schema_extra={"sensitive": True})``.
    """
    extra = field_kwargs.pop("json_schema_extra", None) or {}
    if not isinstance(extra, dict):
        raise TypeError("sensitive(): json_schema_extra must be a dict")
    return Field(**field_kwargs, json_schema_extra={**extra, "sensitive": True})


class Contract:
    """A compiled, immutable feature contract. Build it with ``compile_contract(Model)``."""

    __slots__ = (
        "_fast",
        "_forbid",
        "_names",
        "_renames",
        "_specs",
        "_value_checks",
        "fields",
        "model",
        "sensitive",
        "version",
    )

    model: type[BaseModel]
    fields: tuple[str, ...]
    sensitive: frozenset[str]
    version: str
    _specs: tuple[FieldSpec, ...]
    _forbid: bool
    _names: frozenset[str]
    _fast: RowCheck
    _value_checks: tuple[ValueCheck, ...]
    _renames: dict[str, str]

    def __init__(self, model: type[BaseModel]) -> None:
        specs, forbid = parse_model(model)
        init = {
            "model": model,
            "fields": tuple(s.name for s in specs),
            "sensitive": frozenset(s.name for s in specs if s.sensitive),
            "version": version_of(specs, forbid),
            "_specs": specs,
            "_forbid": forbid,
            "_names": frozenset(s.name for s in specs),
            "_fast": build_row_check(specs, forbid),
            "_value_checks": tuple(build_value_check(s) for s in specs),
            "_renames": {
                attr: feature_name(attr, info)
                for attr, info in model.model_fields.items()
                if feature_name(attr, info) != attr
            },
        }
        for key, value in init.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Contract is immutable; cannot set {name!r}")

    def __repr__(self) -> str:
        return f"<Contract {self.model.__name__} version={self.version} fields={len(self.fields)}>"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # the generated functions cannot be pickled: pickle the model and compile again on load
        module = sys.modules.get(self.model.__module__)
        if getattr(module, self.model.__qualname__, None) is self.model:
            return (compile_contract, (self.model,))
        return (Contract.from_json, (self.to_json(),))

    @property
    def row_check(self) -> RowCheck:
        """The generated test "this mapping certainly honours the contract" (True: no violation).

        False or an exception means "maybe not": :meth:`check` says what is wrong.
        """
        return self._fast

    @property
    def specs(self) -> tuple[FieldSpec, ...]:
        """The per-field specs the checks run on, in declaration order."""
        return self._specs

    @property
    def forbids_extra(self) -> bool:
        """True when features the model does not declare are reported as ``unexpected``."""
        return self._forbid

    def value_check(self, index: int) -> ValueCheck:
        """The generated "certainly valid?" test of field ``index`` (for columnar checks)."""
        return self._value_checks[index]

    def check(self, features: Any) -> list[Violation]:
        """Every violation of one call's features; ``[]`` when they honour the contract.

        ``features`` is a mapping, a pydantic model instance or a dataclass instance.
        """
        if type(features) is not dict:
            features = self.to_mapping(features)
        try:
            if self._fast(features):
                return []
        except Exception:  # e.g. KeyError for a missing feature: let the explaining path say so
            pass
        return check_mapping(self._specs, self._names, self._forbid, features)

    def check_row(self, features: Any, row: int) -> list[Violation]:
        """Like ``check``, with ``row`` set on every violation (one row of a batch)."""
        if type(features) is not dict:
            features = self.to_mapping(features)
        try:
            if self._fast(features):
                return []
        except Exception:
            pass
        return check_mapping(self._specs, self._names, self._forbid, features, row)

    def to_mapping(self, features: Any) -> Mapping[str, Any]:
        """A mapping view of a dict / Mapping, a pydantic model instance or a dataclass instance."""
        if isinstance(features, Mapping):
            return features
        if isinstance(features, BaseModel):
            extra = features.__pydantic_extra__ or {}
            values = features.__dict__
            if self._renames:  # attribute name -> the feature (alias) it stands for
                values = {self._renames.get(k, k): v for k, v in values.items()}
            return {**values, **extra}
        if dataclasses.is_dataclass(features) and not isinstance(features, type):
            return {f.name: getattr(features, f.name) for f in dataclasses.fields(features)}
        raise TypeError(
            "features must be a mapping, a pydantic model or a dataclass instance, "
            f"got {type(features).__name__}"
        )

    def check_batch(self, batch: Any, columns: Sequence[str] | None = None) -> BatchCheck:
        """Check a list of rows, a 2-D ndarray or a pandas DataFrame; see ``_contract_batch``."""
        from modeltel._contract.batch import check_batch

        return check_batch(self, batch, columns)

    def to_json(self) -> str:
        """The contract's definition as JSON; ``Contract.from_json`` rebuilds an equal contract."""
        from modeltel._contract.serialize import contract_to_json

        return contract_to_json(self.model.__name__, self._specs, self._forbid, self.version)

    @classmethod
    def from_json(cls, text: str) -> Contract:
        """Rebuild a contract (and a pydantic model for it) from ``to_json`` output."""
        from modeltel._contract.serialize import model_from_json

        return cls(model_from_json(text))


def compile_contract(model: type[BaseModel]) -> Contract:
    """Compile ``model`` into a Contract; ConfigurationError names any field it cannot check."""
    return Contract(model)
