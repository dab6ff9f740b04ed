"""A model service that predicts, then labels every prediction in a tight loop (a labelling job).

Run by the outcome and loop-reader tests as a subprocess, configured by environment variables
only: ``python outcome_app.py MODE N`` makes N predictions, then records their N outcomes with
``record_outcome`` in a loop (MODE ``loop``) or with one ``record_outcomes`` call (``bulk``);
MODE ``mixed`` labels N earlier predictions (ids ``o-<i>``) in a thread while it predicts.
Prints one JSON line: how many outcomes ``record_outcomes`` reported recorded (``null`` in loop
mode) and whether the exit flush finished.
"""

from __future__ import annotations

import json
import sys
import threading

import modeltel


@modeltel.instrument(model="loop", version="1.0", tenant="tenant")
def predict(features: dict[str, float], tenant: str) -> float:
    return features["x"]


def label_earlier(calls: int) -> None:
    for i in range(calls):
        modeltel.record_outcome(f"o-{i}", label=i % 2)


def main() -> None:
    mode, calls = sys.argv[1], int(sys.argv[2])
    labeller = threading.Thread(target=label_earlier, args=(calls,))
    if mode == "mixed":
        labeller.start()
    ids = []
    for i in range(calls):
        predict({"x": (i % 100) / 100}, tenant=("acme", "globex")[i % 2])
        ids.append(modeltel.current_prediction().prediction_id)
    labels = [{"prediction_id": pid, "label": i % 100 >= 50} for i, pid in enumerate(ids)]
    recorded = None
    if mode == "mixed":
        labeller.join()
    elif mode == "bulk":
        recorded = modeltel.record_outcomes(iter(labels))
    else:
        for label in labels:
            modeltel.record_outcome(label["prediction_id"], label=label["label"])
    flushed = modeltel.shutdown()
    print(json.dumps({"recorded": recorded, "flushed": flushed}), flush=True)


if __name__ == "__main__":
    main()
