"""Signals that stop a run — SIGINT (Ctrl-C), SIGTERM (kill, schedulers), SIGHUP (a closed
terminal) — turned into one exception that remembers which signal it was, so every open MLflow
run can be ended ``KILLED`` with the signal named and the process can exit 128 + signal.

Bottom layer: imports no hqexp module.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)
_state: dict = {"signum": None, "shielded": False, "deferring": 0, "pending": None}


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when one of :data:`SIGNALS` arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _handler(signum, frame) -> None:
    _state["signum"] = _state["signum"] or signum
    if _state["shielded"]:
        return
    if _state["deferring"]:
        _state["pending"] = _state["pending"] or signum
        return
    raise Interrupted(signum)


def install() -> dict:
    """Route SIGINT, SIGTERM and SIGHUP through :class:`Interrupted` (main thread only); returns
    the handlers it replaced, for :func:`restore`."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _handler) for sig in SIGNALS}


def restore(previous: dict) -> None:
    """Put back the handlers :func:`install` replaced (a command run from Python, not a console)."""
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def received() -> int | None:
    """The first signal this process received, if any."""
    return _state["signum"]


def describe(exc: BaseException | None = None) -> tuple[str, int]:
    """``("SIGTERM", 143)``: the signal that stopped the run and the conventional exit code
    (a plain KeyboardInterrupt counts as SIGINT)."""
    signum = getattr(exc, "signum", None) or received() or signal.SIGINT
    return signal.Signals(signum).name, 128 + int(signum)


@contextmanager
def deferred():
    """A block a signal must not cut in two (a database transaction, a checkpoint being written):
    a signal that arrives inside is raised when the outermost such block ends."""
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        if not _state["deferring"] and _state["pending"] is not None and not _state["shielded"]:
            signum, _state["pending"] = _state["pending"], None
            raise Interrupted(signum)


def write_atomically(path, write: Callable[[Path], None], publish: bool = True) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it to ``path``: the file is
    whole or absent — a signal waits for the write (:func:`deferred`), and a failed write (a full
    disk, say) leaves no temporary file, a full disk answered by one line
    (:func:`hqexp.errors.storage_full`). ``publish=False``: write only (a rank that does not own
    the file)."""
    import os

    from hqexp.errors import storage_full

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with deferred():
        try:
            write(tmp)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            full = storage_full(exc, path) if isinstance(exc, OSError) else None
            if full is not None:
                raise full from None
            raise
        if publish and tmp.exists():
            os.replace(tmp, path)


@contextmanager
def shielded():
    """While the run is being closed, later signals are remembered but do not interrupt it."""
    before = _state["shielded"]
    _state["shielded"] = True
    try:
        yield
    finally:
        _state["shielded"] = before
