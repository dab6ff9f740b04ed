"""Opt-in: flush on SIGTERM, then let the signal do what it did before.

Python's default SIGTERM ends the process without ``atexit``, and servers that handle SIGTERM
gracefully (uvicorn) restore the previous handler and re-raise the signal once they are done,
so a handler installed at import time runs after the server's own shutdown. modeltel never
installs one by itself: the application owns its signals.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from types import FrameType
from typing import Any

from modeltel._export.runtime import shutdown


def install_signal_handlers(signals: Iterable[int] = (signal.SIGTERM,)) -> None:
    """Flush modeltel when one of ``signals`` arrives, then hand it to the previous handler.

    >>> import modeltel
    >>> modeltel.install_signal_handlers()  # at import time, before the server starts
    """
    for signum in signals:
        signal.signal(signum, _chained(signum, signal.getsignal(signum)))


def _chained(signum: int, previous: Any) -> Any:
    def handler(received: int, frame: FrameType | None) -> None:
        shutdown()
        if callable(previous):
            previous(received, frame)
        elif previous == signal.SIG_IGN:
            return
        else:  # SIG_DFL (or unknown): restore it and deliver the signal again
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler
