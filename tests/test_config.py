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
