"""Remember why training stopped, so the MLflow run gets the right status."""

from __future__ import annotations

import lightning as L


class InterruptFlag(L.Callback):
    """``interrupted`` is True after Ctrl-C (Lightning turns it into a graceful stop)."""

    def __init__(self) -> None:
        self.interrupted = False

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.interrupted = True
