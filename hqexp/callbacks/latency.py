"""Forward-pass latency from forward hooks."""

from __future__ import annotations

import time

import lightning as L

from hqexp.callbacks.util import sync, task_model


class LatencyCallback(L.Callback):
    """Forward-pass wall time: ``latency/ms_per_sample`` and ``latency/ms_per_batch`` (inference,
    from validation/test batches) and ``latency/train_ms_per_sample`` (training forwards)."""

    def __init__(self, warmup_batches: int = 3) -> None:
        if warmup_batches < 0:
            raise ValueError(f"latency.warmup_batches must be >= 0, got {warmup_batches}")
        self.warmup = warmup_batches
        self._handles: list = []
        self._t0: float | None = None
        self._seen = {"train": 0, "eval": 0}
        self._acc = {"train": [0.0, 0, 0], "eval": [0.0, 0, 0]}  # seconds, samples, batches
        self.last_ms_per_sample: float | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        model = task_model(pl_module)

        def pre(module, args):
            sync(pl_module.device)
            self._t0 = time.perf_counter()

        def post(module, args, output):
            if self._t0 is None:
                return
            sync(pl_module.device)
            dt = time.perf_counter() - self._t0
            self._t0 = None
            phase = "train" if module.training else "eval"
            self._seen[phase] += 1
            if self._seen[phase] <= self.warmup:
                return  # first calls pay for allocation, caching and lazy init
            n = args[0].shape[0] if args and hasattr(args[0], "shape") else 1
            acc = self._acc[phase]
            acc[0] += dt
            acc[1] += n
            acc[2] += 1

        self._handles = [model.register_forward_pre_hook(pre), model.register_forward_hook(post)]

    def teardown(self, trainer, pl_module, stage: str) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _flush(self, pl_module, phase: str) -> None:
        secs, samples, batches = self._acc[phase]
        if not samples:
            return
        if phase == "train":
            pl_module.log(
                "latency/train_ms_per_sample", 1e3 * secs / samples, on_epoch=True, on_step=False, sync_dist=True
            )  # the ranks' mean
        else:
            self.last_ms_per_sample = 1e3 * secs / samples
            pl_module.log_dict(
                {"latency/ms_per_sample": self.last_ms_per_sample, "latency/ms_per_batch": 1e3 * secs / batches},
                on_epoch=True,
                on_step=False,
                sync_dist=True,
            )
        self._acc[phase] = [0.0, 0, 0]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._flush(pl_module, "train")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._flush(pl_module, "eval")
        else:
            self._acc["eval"] = [0.0, 0, 0]

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._flush(pl_module, "eval")
