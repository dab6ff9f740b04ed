"""The public surface is what DESIGN.md promises, no more."""

import modeltel


def test_all_is_pinned() -> None:
    """`modeltel.__all__` lists exactly the public names, sorted."""
    assert modeltel.__all__ == sorted(modeltel.__all__)
    assert set(modeltel.__all__) == {
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
    }
    for name in modeltel.__all__:
        assert hasattr(modeltel, name)


def test_public_exceptions_share_a_base() -> None:
    """Users can catch every modeltel exception with ModeltelError."""
    for exc in (
        modeltel.RateLimited,
        modeltel.BudgetExceeded,
        modeltel.ContractViolation,
        modeltel.ConfigurationError,
    ):
        assert issubclass(exc, modeltel.ModeltelError)
