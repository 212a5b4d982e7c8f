"""Checkpoints that are whole or absent: written to a temporary file and renamed, with signals
held back meanwhile, so Ctrl-C or SIGTERM never leaves half a ``last.ckpt`` to resume from."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

from hqexp.interrupts import write_atomically


class AtomicCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, saving atomically (same arguments)."""

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        save = super()._save_checkpoint
        write_atomically(filepath, lambda tmp: save(trainer, str(tmp)), publish=trainer.is_global_zero)
        self._last_checkpoint_saved = filepath
