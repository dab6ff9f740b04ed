"""modeltel's slow loop: outcomes joined to predictions, evaluation, drift, cost, reports.

Nothing on the prediction path imports this package. It imports without its engine, DuckDB;
running an evaluation without it raises :class:`LoopDependencyError` with the install hint
``pip install 'modeltel[loop]'``.

>>> from modeltel.loop import EvaluateOptions, evaluate  # doctest: +SKIP
>>> result = evaluate("./telemetry", EvaluateOptions(labels=(Path("labels.parquet"),)))  # doctest: +SKIP
"""

from modeltel.loop._engine import INSTALL_HINT, LoopDependencyError
from modeltel.loop._evaluate import EvaluateOptions, evaluate
from modeltel.loop._html import render_html
from modeltel.loop._inventory import inventory
from modeltel.loop._profile import Profile, load_profile, save_profile
from modeltel.loop._result import Evaluation, InventoryEntry, to_jsonable
from modeltel.loop._text import format_evaluation, format_inventory

__all__ = [
    "INSTALL_HINT",
    "EvaluateOptions",
    "Evaluation",
    "InventoryEntry",
    "LoopDependencyError",
    "Profile",
    "evaluate",
    "format_evaluation",
    "format_inventory",
    "inventory",
    "load_profile",
    "render_html",
    "save_profile",
    "to_jsonable",
]
