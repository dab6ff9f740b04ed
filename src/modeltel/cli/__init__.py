"""The ``modeltel`` command: ``main`` parses and dispatches; ``demo``, ``summary`` and ``replay``
are its subcommands' own code (``evaluate`` and ``inventory`` live in ``modeltel.loop``).

Never imported by the call path: a model server pays nothing for it.
"""

from modeltel.cli.main import main

__all__ = ["main"]
