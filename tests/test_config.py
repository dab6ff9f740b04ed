"""Settings: env vars, keyword overrides, and clear errors naming the variable."""

from __future__ import annotations

import pytest

from modeltel import ConfigurationError
from modeltel._config import load_settings


def test_defaults() -> None:
    """With nothing set, the documented defaults apply."""
    s = load_settings(environ={})
    assert (s.disabled, s.feature_sample_rate, s.on_violation, s.limits_backend, s.output, s.max_tenants) == (
        False,
        0.01,
        "record",
        "memory",
        "./telemetry",
        100,
    )


def test_env_then_keyword_precedence() -> None:
    """A keyword beats the env var, which beats the default."""
    env = {"MODELTEL_FEATURE_SAMPLE_RATE": "0.2", "MODELTEL_ON_VIOLATION": "reject"}
    s = load_settings({"feature_sample_rate": 0.5}, environ=env)
    assert (s.feature_sample_rate, s.on_violation) == (0.5, "reject")


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("MODELTEL_FEATURE_SAMPLE_RATE", "1.5", "from 0 to 1"),
        ("MODELTEL_FEATURE_SAMPLE_RATE", "lots", "could not convert"),
        ("MODELTEL_DISABLED", "maybe", "true or false"),
        ("MODELTEL_ON_VIOLATION", "ignore", "record, reject"),
        ("MODELTEL_LIMITS_BACKEND", "postgres://x", "redis://"),
        ("MODELTEL_MAX_TENANTS", "0", ">= 1"),
        ("MODELTEL_COST_PER_1K", "-1", ">= 0"),
    ],
)
def test_malformed_env_var_names_the_variable(variable: str, value: str, rule: str) -> None:
    """A bad value fails at start-up with the variable, the value and the rule in the message."""
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={variable: value})
    assert variable in str(info.value) and repr(value) in str(info.value) and rule in str(info.value)


def test_hash_key_is_never_echoed() -> None:
    """Even a rejected hash key is not printed (there is no rejected one today, but the rule holds)."""
    s = load_settings(environ={"MODELTEL_HASH_KEY": "topsecret"})
    assert s.hash_key == "topsecret"
    assert "topsecret" not in repr(ConfigurationError("MODELTEL_HASH_KEY=<hidden> is invalid"))


def test_unknown_keyword_is_rejected() -> None:
    """configure(sample_rate=...) (a typo) is an error, not silently ignored."""
    with pytest.raises(ConfigurationError, match="sample_rate"):
        load_settings({"sample_rate": 0.1}, environ={})


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_BSP_MAX_QUEUE_SIZE", "64"), ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "100000")],
)
def test_otel_batch_variables_the_sdk_refuses_fail_at_start_up_naming_them(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A queue smaller than a batch is refused by the OTel SDK itself; modeltel's start-up says
    which variable, as it does for its own."""
    from modeltel.testing import capture

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"{variable}='{value}' is invalid"), capture():
        pass


@pytest.mark.parametrize("variable", ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BLRP_MAX_QUEUE_SIZE"])
@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_malformed_queue_size_fails_at_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """modeltel sizes the batch queues it builds (and counts what they drop), so it reads the
    queue variables itself: a value that is no size fails naming the variable and the rule."""
    from modeltel.testing import capture

    monkeypatch.setenv(variable, value)
    rule = f"{variable}='{value}' is invalid: expected a whole number"
    with pytest.raises(ConfigurationError, match=rule), capture():
        pass


def test_kill_switch_works_with_a_broken_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """MODELTEL_DISABLED=true is inert: a malformed MODELTEL_* value beside it is not read, the
    decorator returns the function itself, and configure() does not raise."""
    import modeltel

    monkeypatch.setenv("MODELTEL_DISABLED", "true")
    monkeypatch.setenv("MODELTEL_FEATURE_SAMPLE_RATE", "lots")
    monkeypatch.setenv("MODELTEL_RATE_LIMITS", "acme=fast")

    def predict(features: dict[str, float]) -> float:
        return 0.5

    assert modeltel.instrument(model="m", version="1")(predict) is predict
    assert load_settings().disabled is True
    assert load_settings({"max_tenants": 0, "no_such_setting": 1}).disabled is True
    monkeypatch.delenv("MODELTEL_DISABLED")
    assert load_settings({"disabled": True, "feature_sample_rate": "lots"}).disabled is True
    with pytest.raises(ConfigurationError, match="MODELTEL_FEATURE_SAMPLE_RATE"):
        load_settings()
