"""The layout's rules (docs/architecture.md): the call path loads no CLI, loop or operations code,
and no module imports another that imports it back, type-only imports included."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
NEVER_ON_THE_CALL_PATH = ("modeltel.cli", "modeltel.loop", "modeltel._ops")

CALL = """
import json, sys, time
t0 = time.perf_counter()
import modeltel
imported = time.perf_counter() - t0

@modeltel.instrument(model="layout", version="1", contract=None)
def predict(features):
    return 0.5

predict({"x": 1.0})
modeltel.force_flush()
print(json.dumps({"modules": sorted(sys.modules), "import_s": imported}))
"""


def test_the_call_path_loads_no_cli_loop_or_operations_code(tmp_path: Path) -> None:
    """A fresh interpreter imports modeltel and makes a prediction (telemetry to files): none of
    the folders a model server never needs is loaded. Prints ``import modeltel``'s time."""
    proc = subprocess.run(
        [sys.executable, "-c", CALL],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
        env={"PATH": "", "MODELTEL_OUTPUT": str(tmp_path / "telemetry")},
    )
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    loaded = [m for m in found["modules"] if m.startswith(NEVER_ON_THE_CALL_PATH)]
    assert loaded == []
    print(f"import modeltel: {found['import_s'] * 1000:.0f} ms")


def _imports() -> dict[str, set[str]]:
    """Each modeltel module's imports of other modeltel modules, wherever they sit in it
    (top level, functions, ``if TYPE_CHECKING:``)."""
    modules = {}
    for path in (SRC / "modeltel").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modeltel"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    edges[name].add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name.startswith("modeltel"))
    return {name: {t for t in targets if t in modules and t != name} for name, targets in edges.items()}


def test_no_import_cycles() -> None:
    edges = _imports()
    cycles = []
    for start in edges:
        stack = [(start, (start,))]
        seen = set()
        while stack:
            node, path = stack.pop()
            for target in edges[node]:
                if target == start:
                    cycles.append(" -> ".join((*path, start)))
                elif target not in seen and target > start:  # each cycle found once, from its least module
                    seen.add(target)
                    stack.append((target, (*path, target)))
    assert cycles == []


def test_the_call_path_modules_import_no_cli_loop_or_operations() -> None:
    """Statically too: no module outside those folders names them (the package's ``__init__``,
    the CLI and the loop may)."""
    edges = _imports()
    offenders = {
        name: sorted(t for t in targets if t.startswith(NEVER_ON_THE_CALL_PATH))
        for name, targets in edges.items()
        if not name.startswith(NEVER_ON_THE_CALL_PATH)
    }
    assert {name: found for name, found in offenders.items() if found} == {}
