"""``python -m modeltel.cli``: the ``modeltel`` command."""

import sys

from modeltel.cli.main import main

sys.exit(main())
