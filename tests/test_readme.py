"""The README is the user's contract: every name the code emits is documented there, and every
name it documents is one the code emits or reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields as settings_fields
from pathlib import Path

from modeltel import _names as n
from modeltel._config import env_name

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SOURCE = "\n".join(p.read_text() for p in (ROOT / "src" / "modeltel").rglob("*.py"))


def _emitted() -> set[str]:
    """The span attributes, metrics and log events named in modeltel._names."""
    values = (getattr(n, name) for name in n.__annotations__)
    return {v for v in values if isinstance(v, str) and v.startswith(("ml.", "modeltel."))}


def test_every_emitted_name_is_documented() -> None:
    missing = sorted(name for name in _emitted() if f"`{name}`" not in README)
    assert not missing, f"emitted but not in the README: {missing}"


def test_every_documented_name_is_emitted() -> None:
    """Backticked ``ml.*`` names in the README are string literals in the source."""
    documented = set(re.findall(r"`(ml\.[a-z_.]+)`", README))
    unknown = sorted(name for name in documented if f'"{name}"' not in SOURCE)
    assert not unknown, f"in the README but emitted nowhere: {unknown}"


def test_every_setting_is_documented_and_every_documented_setting_exists() -> None:
    from modeltel._config import Settings

    variables = {env_name(f.name) for f in settings_fields(Settings)}
    assert not sorted(v for v in variables if f"`{v}`" not in README)
    documented = set(re.findall(r"`(MODELTEL_[A-Z0-9_]+)", README))
    assert documented - variables <= {"MODELTEL_STRICT"}  # our own suite's switch, named as such


# What the README's snippets take for granted: a model object, a payload, a time.
STAND_INS = """
import datetime, json

class _Model:
    def predict_proba(self, features):
        return 0.42

    def predict(self, x):
        return 0.42

model = _Model()
payload = {"amount": 12.0, "account_age_days": 40, "is_new_device": True}
x = [12.0, 40.0, 1.0]
chargeback_time = datetime.datetime.now(datetime.timezone.utc)
"""
AFTER = """
test_predictions_are_counted()
print(json.dumps({"payload_hash": modeltel.payload_hash(payload)}))
"""


def test_readme_python_blocks_run_as_written(tmp_path: Path) -> None:
    """Every ```python block of the README, in order, in one fresh interpreter: none raises, the
    testing example's assertions hold, and the offline hash recipe prints payload_hash()."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    script = tmp_path / "readme.py"
    script.write_text(STAND_INS + "\n".join(blocks) + AFTER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env["MODELTEL_OUTPUT"] = str(tmp_path / "telemetry")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    expected = json.loads(lines[-1])["payload_hash"]
    assert expected in lines[:-1]  # the offline recipe's print
