"""Exceptions that carry a message meant for the person at the keyboard.

The CLI prints ``str(exc)`` of these as one line and exits non-zero; anything else
is a bug and keeps its traceback.
"""


class HqexpError(Exception):
    """Base class: a user-facing error whose message is the whole story."""


class ConfigError(HqexpError, ValueError):
    """A config value is missing, of the wrong type, or not one of the choices."""


class BackendUnavailable(HqexpError, RuntimeError):
    """A quantum backend cannot run here (package or hardware missing)."""


class QuantumInputError(HqexpError, ValueError):
    """Inputs or weights given to a circuit have the wrong shape or bad values."""


class QuantumMemoryError(HqexpError, MemoryError):
    """A state vector would not fit in the memory of the device."""


class DataError(HqexpError, ValueError):
    """A dataset file is missing, malformed, or disagrees with its header."""


class UnsafeCheckpoint(HqexpError, ValueError):
    """A checkpoint or state blob holds something other than tensors and plain values."""


class StorageFull(HqexpError, OSError):
    """The disk (or quota) holding an output ran out while writing it."""


def storage_full(exc: OSError, path: object = None) -> StorageFull | None:
    """One line for a write that failed because the device is full (ENOSPC, EDQUOT, EFBIG), else None."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return None
    where = path or exc.filename2 or exc.filename
    return StorageFull(
        f"no space left on the device {f'writing {where} ' if where else ''}({exc.strerror}): free space, or "
        "write elsewhere (hydra.run.dir=…, mlflow.tracking_uri=…); checkpoints are whole or absent, never half-written"
    )
