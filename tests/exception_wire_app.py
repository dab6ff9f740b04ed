"""A model service, configured by environment variables only, whose predict sometimes raises:
once with a 5 MiB message, once with a sensitive feature's value (the canary) in its message.

The wire test runs it as a subprocess. Prints one JSON line: how many calls answered and raised,
and whether every caller got the very exception predict raised, its message unchanged.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

import modeltel

CANARY = "canary-7f3a9c@example.com"
HUGE_MESSAGE = "x" * (5 * 1024 * 1024)
CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


class Applicant(BaseModel):
    email: str = modeltel.sensitive()
    amount: float


raised: list[BaseException] = []


@modeltel.instrument(model="kyc", version="1", tenant="tenant", contract=Applicant)
def predict(features: dict[str, Any], tenant: str) -> float:
    if features["amount"] < 0:
        raised.append(ValueError(HUGE_MESSAGE))
        raise raised[-1]
    if features["email"] == CANARY:
        raised.append(ValueError(f"bad email {features['email']}"))
        raise raised[-1]
    return features["amount"] / CALLS


def main() -> None:
    answered, caught = 0, []
    payloads = [{"email": f"user{i}@example.com", "amount": float(i)} for i in range(CALLS)]
    payloads.insert(CALLS // 2, {"email": "huge@example.com", "amount": -1.0})
    payloads.append({"email": CANARY, "amount": 1.0})
    for features in payloads:
        try:
            predict(features, tenant="acme")
            answered += 1
        except ValueError as exc:
            caught.append(exc)
    same = all(c is r for c, r in zip(caught, raised, strict=True))
    intact = [str(c) for c in caught] == [HUGE_MESSAGE, f"bad email {CANARY}"]
    print(json.dumps({"answered": answered, "raised": len(caught), "unchanged": same and intact}))


if __name__ == "__main__":
    main()
