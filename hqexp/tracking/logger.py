"""A Lightning logger that writes to an existing MLflow run through :class:`Recorder`.

Lightning's own ``MLFlowLogger`` sends one write per ``log_metrics`` call and does
not retry; with several sweep jobs on one SQLite store that means lock errors.
This one buffers metrics and flushes them in one batch per epoch (and at the end),
with retries.
"""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from hqexp.tracking.store import Recorder


class RecorderLogger(Logger):
    def __init__(self, recorder: Recorder, flush_every: int = 200) -> None:
        super().__init__()
        self.recorder = recorder
        self.flush_every = flush_every
        self._buffer: list = []
        self.history: dict[str, list[tuple[int, float]]] = {}

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str:
        return self.recorder.run_id

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the resolved Hydra config is logged as params by hqexp.tracking.record

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for k, v in metrics.items():
            if k == "epoch":
                continue
            v = float(v)
            self._buffer.append(Metric(k, v, now, int(step or 0)))
            self.history.setdefault(k, []).append((int(step or 0), v))
        if len(self._buffer) >= self.flush_every:
            self.save()

    @rank_zero_only
    def save(self) -> None:
        if not self._buffer:
            return
        chunk, self._buffer = self._buffer, []
        self.recorder.log_metric_values(chunk)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()  # the run's status is set by hqexp.train.loop, which knows why it ended
