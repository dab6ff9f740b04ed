"""A batch model service configured by environment variables only: ``CALLS`` batch calls of
``ROWS`` rows, then a flush. The wire tests run it as a subprocess.

Prints one JSON line: the calls' prediction ids and whether the flush finished in time.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import modeltel

CALLS, ROWS = int(sys.argv[1]), int(sys.argv[2])
ids: list[str] = []


@modeltel.instrument(model="wire-batch", version="1", tenant="tenant", batch=True, columns=["a", "b", "c"])
def score(rows: np.ndarray, tenant: str) -> np.ndarray:  # type: ignore[type-arg]
    ids.append(modeltel.current_prediction().prediction_id)
    return rows[:, 0]


def main() -> None:
    matrix = np.random.default_rng(7).uniform(0, 1, (ROWS, 3))
    for _ in range(CALLS):
        score(matrix, tenant="acme")
    flushed = modeltel.force_flush(30)
    print(json.dumps({"prediction_ids": ids, "flushed": flushed}), flush=True)


if __name__ == "__main__":
    main()
