"""Parsing of MODELTEL_RATE_LIMITS / MODELTEL_BUDGETS specs and keyword forms."""

from __future__ import annotations

import pytest

from modeltel import ConfigurationError
from modeltel._limits import (
    Budget,
    Rate,
    normalize_budgets,
    normalize_rate_limits,
    parse_budgets,
    parse_rate_limits,
)


def test_rate_spec_with_star_and_burst() -> None:
    """A full rate spec parses into one Rate per tenant, burst defaulting to the count."""
    assert parse_rate_limits("acme=100/s;beta=6000/min burst 50;*=10/hour") == {
        "acme": Rate(count=100, period_s=1.0, burst=100),
        "beta": Rate(count=6000, period_s=60.0, burst=50),
        "*": Rate(count=10, period_s=3600.0, burst=10),
    }


@pytest.mark.parametrize(
    "spec", ["100/s", "6000/min", "10/hour", "3/day", "100/s burst 200", "5/min burst 1"]
)
def test_rate_str_round_trips(spec: str) -> None:
    """str(Rate) gives the spec back."""
    assert str(parse_rate_limits(f"t={spec}")["t"]) == spec


def test_rate_period_aliases_and_whitespace() -> None:
    """Long period names and whitespace around tokens are accepted."""
    assert parse_rate_limits(" acme = 5 / second ; b=2/minute burst 3 ") == {
        "acme": Rate(5, 1.0, 5),
        "b": Rate(2, 60.0, 3),
    }


def test_budget_spec() -> None:
    """A budget spec parses into one Budget per tenant."""
    assert parse_budgets("acme=50/day;*=5/hour;big=1000.25/month") == {
        "acme": Budget(amount=50.0, window="day"),
        "*": Budget(amount=5.0, window="hour"),
        "big": Budget(amount=1000.25, window="month"),
    }


@pytest.mark.parametrize("spec", ["50/day", "5/hour", "1000/month", "0.4/day"])
def test_budget_str_round_trips(spec: str) -> None:
    """str(Budget) gives the spec back."""
    assert str(parse_budgets(f"t={spec}")["t"]) == spec


def test_empty_parts_are_tolerated() -> None:
    """Empty entries (templated env vars) are skipped; an empty spec means no limits."""
    assert parse_rate_limits("") == {}
    assert parse_rate_limits(" ; acme=1/s;; ") == {"acme": Rate(1, 1.0, 1)}
    assert parse_budgets(";") == {}


@pytest.mark.parametrize(
    ("spec", "bad_part"),
    [
        ("acme=100/fortnight", "fortnight"),
        ("acme=abc/s", "abc"),
        ("=5/s", "empty tenant name"),
        ("acme=5/s burst -1", "-1"),
        ("acme=5/s burst 0", "burst '0'"),
        ("acme=0/s", "count '0'"),
        ("acme=1.5/s", "1.5"),
        ("acme", "expected TENANT=LIMIT"),
        ("acme=", "acme="),
        ("acme=5", "COUNT/PERIOD"),
        ("acme=1/s;acme=2/s", "listed twice"),
    ],
)
def test_malformed_rate_names_variable_and_part(spec: str, bad_part: str) -> None:
    """A malformed rate spec raises ConfigurationError naming the variable and the bad part."""
    with pytest.raises(ConfigurationError) as info:
        parse_rate_limits(spec)
    assert str(info.value).startswith("MODELTEL_RATE_LIMITS: bad entry")
    assert bad_part in str(info.value)


@pytest.mark.parametrize(
    ("spec", "bad_part"),
    [
        ("acme=50/decade", "decade"),
        ("acme=abc/day", "abc"),
        ("acme=-5/day", "-5"),
        ("acme=nan/day", "nan"),
        ("acme=1e10/day", "1e10"),
        ("=5/day", "empty tenant name"),
        ("acme=5/day burst 2", "AMOUNT/WINDOW"),
    ],
)
def test_malformed_budget_names_variable_and_part(spec: str, bad_part: str) -> None:
    """A malformed budget spec raises ConfigurationError naming the variable and the bad part."""
    with pytest.raises(ConfigurationError) as info:
        parse_budgets(spec)
    assert str(info.value).startswith("MODELTEL_BUDGETS: bad entry")
    assert bad_part in str(info.value)


def test_custom_variable_name_in_message() -> None:
    """The caller's variable (e.g. a keyword argument) is the one named in the message."""
    with pytest.raises(ConfigurationError, match=r"^rate_limits: bad entry 'acme=1/week'"):
        parse_rate_limits("acme=1/week", variable="rate_limits")


def test_normalize_accepts_string_mapping_and_objects() -> None:
    """Keyword forms: a spec string, a mapping of specs or of Rate/Budget objects, or None."""
    assert normalize_rate_limits("acme=100/s") == {"acme": Rate(100, 1.0, 100)}
    assert normalize_rate_limits({"acme": "100/s", "*": Rate(1, 1.0, 1)}) == {
        "acme": Rate(100, 1.0, 100),
        "*": Rate(1, 1.0, 1),
    }
    assert normalize_rate_limits(None) == {}
    assert normalize_budgets({"acme": "50/day"}) == {"acme": Budget(50.0, "day")}
    assert normalize_budgets({"acme": Budget(1.0, "hour")}) == {"acme": Budget(1.0, "hour")}


def test_normalize_rejects_bad_mapping_values() -> None:
    """A mapping value that is not a spec names the keyword and the tenant."""
    with pytest.raises(ConfigurationError, match=r"^budgets: bad entry 'acme=50/fortnight'"):
        normalize_budgets({"acme": "50/fortnight"})
    with pytest.raises(ConfigurationError, match=r"^rate_limits: bad entry for 'acme': expected a string"):
        normalize_rate_limits({"acme": 100})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match=r"^rate_limits: bad tenant name ''"):
        normalize_rate_limits({"": "1/s"})
