"""Score a pandas DataFrame in batches, one prediction (hash, score, outcome) per row.

    python examples/batch_scorer/score.py --rows 20000 --batch-size 5000

Each batch goes to the model as a float matrix; ``batch=True, columns=...`` tells modeltel the
column names, so every row gets the same payload hash it would get scored alone. The scores are
written with their hashes (``--out scores.csv``): the join key for labels that arrive later.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

import modeltel

FEATURES = ["tenure_months", "monthly_spend", "support_tickets"]
WEIGHTS = np.array([-0.05, 0.01, 0.4])


class Customer(BaseModel):
    """One row of the scoring table, as the model was trained on it."""

    tenure_months: float = Field(ge=0, le=600)
    monthly_spend: float = Field(ge=0)
    support_tickets: float = Field(ge=0)


@modeltel.instrument(
    model="churn",
    version="2.1.0",
    tenant="tenant",
    contract=Customer,
    batch=True,
    columns=FEATURES,
)
def churn_scores(matrix: np.ndarray, tenant: str) -> np.ndarray:
    """Churn probability per row of an (n, 3) matrix in ``FEATURES`` order."""
    scores: np.ndarray = 1.0 / (1.0 + np.exp(-(matrix @ WEIGHTS - 1.0)))
    return scores


def customers(rows: int, seed: int = 7) -> pd.DataFrame:
    """A synthetic scoring table."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(rows),
            "tenure_months": rng.integers(0, 120, rows).astype(float),
            "monthly_spend": rng.gamma(2.0, 30.0, rows).round(2),
            "support_tickets": rng.poisson(1.5, rows).astype(float),
        }
    )


def batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    """Consecutive slices of at most ``size`` rows."""
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def score(frame: pd.DataFrame, batch_size: int, tenant: str) -> pd.DataFrame:
    """Score every row; return the frame with ``score`` and ``payload_hash`` columns."""
    scored = []
    for batch in batches(frame, batch_size):
        scores = churn_scores(batch[FEATURES].to_numpy(dtype=float), tenant=tenant)
        current = modeltel.current_prediction()  # this batch: one hash per row
        hashes = current.row_hashes if current is not None else [""] * len(batch)
        scored.append(batch.assign(score=scores, payload_hash=hashes))
    return pd.concat(scored)


def main() -> None:
    """Score a synthetic table, print a few rows with their hashes, flush telemetry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--tenant", default="nightly")
    parser.add_argument("--out", help="write customer_id, score, payload_hash as CSV")
    args = parser.parse_args()
    result = score(customers(args.rows), args.batch_size, args.tenant)
    print(result[["customer_id", *FEATURES, "score", "payload_hash"]].head(5).to_string(index=False))
    first = result.iloc[0]
    alone = modeltel.payload_hash({k: float(first[k]) for k in FEATURES})
    print(f"row 0 hashed alone: {alone} (same as in the batch: {alone == first['payload_hash']})")
    if args.out:
        result[["customer_id", "score", "payload_hash"]].to_csv(args.out, index=False)
    print(f"scored {len(result)} rows", flush=True)
    modeltel.shutdown()  # a batch job exits right away: flush before it does


if __name__ == "__main__":
    main()
