"""modeltel: instrumentation for production ML models.

One decorator (or one context manager) around a predict function checks its feature contract,
hashes its payload, samples its full features, enforces per-tenant limits and budgets, and
records model version, latency, scores and outcomes as OpenTelemetry spans, metrics and logs.
"""

from modeltel._cascade import cascade
from modeltel._contract.contract import Contract, compile_contract, sensitive
from modeltel._contract.infer import infer_contract
from modeltel._errors import BudgetExceeded, ConfigurationError, ContractViolation, ModeltelError, RateLimited
from modeltel._export.runtime import configure, force_flush, shutdown
from modeltel._hashing import payload_hash
from modeltel._instrument import instrument, prediction
from modeltel._models import instrument_model
from modeltel._outcomes import record_outcome, record_outcomes
from modeltel._prediction import Prediction, current_prediction
from modeltel._signals import install_signal_handlers
from modeltel._version import __version__

__all__ = [
    "BudgetExceeded",
    "ConfigurationError",
    "Contract",
    "ContractViolation",
    "ModeltelError",
    "Prediction",
    "RateLimited",
    "__version__",
    "cascade",
    "compile_contract",
    "configure",
    "current_prediction",
    "force_flush",
    "infer_contract",
    "install_signal_handlers",
    "instrument",
    "instrument_model",
    "payload_hash",
    "prediction",
    "record_outcome",
    "record_outcomes",
    "sensitive",
    "shutdown",
]
