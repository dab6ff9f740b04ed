"""One broken contract rule: the record every check produces and ``ContractViolation`` carries.

A leaf module (it imports nothing of modeltel), so the errors and the contract checks can both
name it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which feature, which kind of rule, and the type (never the value) it got."""

    feature: str
    kind: str  # missing, type, range, category, null, non_finite, unexpected
    rule: str
    value_type: str
    row: int | None = None

    def __str__(self) -> str:
        where = f"row {self.row}: " if self.row is not None else ""
        return f"{where}{self.feature}: {self.kind} ({self.rule}; got {self.value_type})"
