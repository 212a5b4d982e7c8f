"""Checkpoints that are whole or absent: written to a temporary file and renamed, with signals
held back meanwhile, so Ctrl-C or SIGTERM never leaves half a ``last.ckpt`` to resume from."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

from hqexp.errors import storage_full
from hqexp.interrupts import deferred


class AtomicCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, saving atomically (same arguments)."""

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        tmp = Path(filepath).with_name(f".{Path(filepath).name}.{os.getpid()}.tmp")
        with deferred():
            try:
                super()._save_checkpoint(trainer, str(tmp))
            except BaseException as exc:  # a full disk, say: no half-written file is left behind
                tmp.unlink(missing_ok=True)
                full = storage_full(exc, filepath) if isinstance(exc, OSError) else None
                if full is not None:
                    raise full from None
                raise
            if trainer.is_global_zero and tmp.exists():
                os.replace(tmp, filepath)
            self._last_checkpoint_saved = filepath
