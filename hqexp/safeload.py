"""Checkpoints are data, never code: every checkpoint, state blob and downloaded artifact is
read with ``torch.load(weights_only=True)``.

PyTorch's weights-only unpickler rebuilds tensors, storages and plain Python values (dicts,
lists, tuples, strings, numbers, ``None``, ``OrderedDict``, ``torch.Size``…) and refuses every
other global, so a crafted file cannot call ``os.system`` or import a module while it is read.
hqexp writes nothing else: its own checkpoints, the federated ledger and the Flower clients'
state carry only those types, so the allow-list of extra types (:data:`ALLOWED`) is empty.

A file that needs anything more is refused with one line naming the first offending global.
``trust=True`` (``trust_checkpoint=true`` on the command line, tagged on the run) reads it with
the full unpickler, for a file from before this rule whose source the user trusts.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hqexp.errors import ConfigError, UnsafeCheckpoint

#: types beyond PyTorch's weights-only defaults that hqexp's own files contain: none
ALLOWED: tuple[type, ...] = ()

_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|global) ([\w.]+)")


def _pickle_globals(data: bytes) -> list[str]:
    """The globals a bare pickle imports, from its opcodes (nothing is executed)."""
    import pickletools

    found, strings = [], []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # a truncated or malformed pickle: what was found so far
        pass
    return found


def _offending(source: str | Path | bytes, exc: BaseException) -> list[str]:
    """The globals the file needs that are not allowed (read without executing anything)."""
    import torch

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception:  # not a zip checkpoint: a bare pickle
        safe = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"}
        found = [g for g in _pickle_globals(data) if g not in safe and not g.startswith("builtins.")]
    allowed = {f"{t.__module__}.{t.__qualname__}" for t in ALLOWED}
    found = list(dict.fromkeys(g for g in found if g not in allowed))
    return found or _GLOBAL.findall(str(exc))[:1]


def load(source: str | Path | bytes, what: str, trust: bool = False, map_location: str = "cpu") -> Any:
    """``source`` (a path or the bytes of a file) read as data; ``what`` names it in errors.

    Raises :class:`UnsafeCheckpoint` (one line, nothing run) when it holds a global that is not
    data, :class:`ConfigError` when it is not a readable torch file at all.
    """
    import torch

    f = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():  # the protocol warning of a foreign pickle: the refusal says it
            warnings.simplefilter("ignore", UserWarning)
            if trust:
                return torch.load(f, map_location=map_location, weights_only=False)
            with torch.serialization.safe_globals(list(ALLOWED)):
                return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if trust:
            raise ConfigError(f"{what} is not a readable checkpoint: {exc}") from None
        names = _offending(source, exc)
        if not names:  # no global in it: bytes that are no pickle torch can read
            raise ConfigError(f"{what} is not a readable checkpoint (not a file torch.save wrote)") from None
        raise UnsafeCheckpoint(
            f"{what} holds {', '.join(names)}, which is not a tensor or a plain value: refused, nothing in it was run "
            "(if it is an old file from a source you trust: trust_checkpoint=true)"
        ) from None
    except (KeyError, EOFError):  # torch's legacy reader on bytes that are no torch file
        raise ConfigError(f"{what} is not a readable checkpoint (not a file torch.save wrote)") from None
    except (OSError, RuntimeError, ValueError, AttributeError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{what} is not a readable checkpoint: {first}") from None


def trusted(cfg: Mapping) -> bool:
    """``trust_checkpoint`` of a run's config (False when absent); one line unless a bool."""
    value = cfg.get("trust_checkpoint", False) if hasattr(cfg, "get") else False
    if not isinstance(value, bool):
        raise ConfigError(f"trust_checkpoint must be true or false, got {value!r}")
    return value


def trust_tag(cfg: Mapping) -> dict[str, str]:
    """``{"trust_checkpoint": "true"}`` on a run that read a checkpoint with the full unpickler."""
    return {"trust_checkpoint": "true"} if trusted(cfg) and (cfg.get("ckpt_path") or cfg.get("run_id")) else {}
