"""The MLflow store: open it, start (child) runs, write with retries, know which runs are open.

SQLite is the default store. Several processes writing to one SQLite file (a
joblib sweep) can meet "database is locked"; every write here retries with
backoff, and metrics are sent in batches to keep transactions few.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hqexp.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_MARKERS = ("database is locked", "database table is locked", "unable to open database file")


@contextmanager
def _store_lock(db: Path | None):
    """Serialise opening a SQLite store across processes: MLflow creates and migrates the tables
    of a new store without a lock, and two processes doing it at once corrupt it."""
    if db is None or not db.parent.is_dir():
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock; the retries have to do
        yield
        return
    with open(db.parent / f".{db.name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def open_client(tracking_uri: str):
    """An ``MlflowClient`` whose store is ready (created and migrated under a lock for SQLite)."""
    from mlflow.tracking import MlflowClient

    with _store_lock(_sqlite_path(tracking_uri)):
        client = MlflowClient(tracking_uri=tracking_uri)
        retry(lambda: client.search_experiments(max_results=1), "open store")  # creates the tables now
    return client


def retry(fn: Callable[[], T], what: str = "mlflow call", attempts: int = 12) -> T:
    """Call ``fn``, retrying with jittered backoff while SQLite reports contention. A signal
    that arrives meanwhile waits until the call is done (a transaction cut in two would hold
    the store's lock until the process ends)."""
    from hqexp.interrupts import deferred

    delay = 0.1
    for i in range(attempts):
        try:
            with deferred():
                return fn()
        except Exception as exc:  # MLflow wraps SQLAlchemy errors in MlflowException
            if i == attempts - 1 or not any(m in str(exc) for m in _RETRY_MARKERS):
                raise
            log.debug("%s: store busy (%s), retry %d", what, exc, i + 1)
            time.sleep(delay + random.random() * delay)
            delay = min(delay * 2, 3.0)
    raise AssertionError("unreachable")


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :].split("?")[0]) if uri.startswith("sqlite:///") else None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """One line, within ``timeout_s``, when an ``http(s)://`` tracking server does not answer or
    refuses this client's credentials (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``,
    MLflow's own variables, for a server started with ``make server AUTH=1``)."""
    import urllib.error
    import urllib.request

    base = uri.rstrip("/")
    try:
        urllib.request.urlopen(base + "/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        pass  # it answered (perhaps without /health): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"cannot reach the MLflow tracking server {uri} within {timeout_s:g} s ({reason}); "
            "start it (make server) or check mlflow.tracking_uri"
        ) from None
    check_credentials(base, timeout_s)


def check_credentials(uri: str, timeout_s: float = 5.0) -> None:
    """One line when the server wants a login this client does not have (HTTP 401)."""
    import base64
    import urllib.error
    import urllib.request

    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    req = urllib.request.Request(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1")
    if user or password:
        token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        urllib.request.urlopen(req, timeout=timeout_s).close()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            who = f"user {user!r} and this password" if user else "no credentials"
            raise ConfigError(
                f"the MLflow tracking server {uri} refused {who} (HTTP 401); set MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD to an account the server's admin created"
            ) from None
    except (urllib.error.URLError, OSError):
        pass  # reachable a moment ago: MLflow's own retries and messages take over


def open_store(
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str | None = None,
    create_dirs: bool = False,
    connect_timeout_s: float = 5.0,
):
    """``(MlflowClient, experiment_id)``; the store and experiment are created if needed.

    A SQLite store's folder is created only inside the project's outputs folder, or anywhere
    with ``create_dirs``; artifacts go beside it unless ``artifact_location`` says otherwise.
    A tracking server must answer within ``connect_timeout_s``. Raises :class:`ConfigError`
    with one line when the URI cannot be opened.
    """
    from hqexp.config import default_output_dir

    db = _sqlite_path(tracking_uri)
    if db is not None:
        if not db.parent.is_dir():
            if not (create_dirs or _inside(db.parent, default_output_dir())):
                raise ConfigError(
                    f"cannot open MLflow tracking URI {tracking_uri!r}: folder {db.parent} does not "
                    "exist (create it, or set mlflow.create_dirs=true)"
                )
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot open MLflow tracking URI {tracking_uri!r}: {exc.strerror}") from exc
        artifact_location = artifact_location or str(db.parent / "mlartifacts")
    elif tracking_uri.startswith(("http://", "https://")):
        check_reachable(tracking_uri, connect_timeout_s)
    try:
        client = open_client(tracking_uri)
        exp = retry(lambda: client.get_experiment_by_name(experiment_name), "get experiment")
        if exp is not None:
            return client, exp.experiment_id
        loc = None
        if artifact_location and "://" not in artifact_location:
            Path(artifact_location).mkdir(parents=True, exist_ok=True)
            loc = Path(artifact_location).resolve().as_uri()
        elif artifact_location:
            loc = artifact_location
        try:
            return client, retry(lambda: client.create_experiment(experiment_name, artifact_location=loc))
        except Exception as exc:  # another process may have created it meanwhile
            exp = retry(lambda: client.get_experiment_by_name(experiment_name))
            if exp is None:
                raise exc
            return client, exp.experiment_id
    except ConfigError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.split(". See ")[0]
        raise ConfigError(f"cannot open MLflow tracking URI {tracking_uri!r}: {first}") from None


def git_sha(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        sha = out.stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists become their string form."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# Runs this process started and has not ended yet, oldest first: whatever stops the
# process (an error, Ctrl-C, SIGTERM) can end each with a truthful status.
_OPEN: dict[str, Recorder] = {}


def open_runs() -> list[Recorder]:
    """The runs this process started and has not terminated, newest first."""
    return list(reversed(_OPEN.values()))


def process_tags() -> dict[str, str]:
    """Who runs this: host, pid and the pid's start time (so a reused pid is not mistaken for it)."""
    import socket

    return {
        "hqexp.host": socket.gethostname(),
        "hqexp.pid": str(os.getpid()),
        "hqexp.pid_start": str(pid_start(os.getpid()) or ""),
    }


def pid_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def heartbeat_seconds() -> float:
    """How often an open run writes its ``hqexp.heartbeat`` tag ($HQEXP_HEARTBEAT_S, default 60)."""
    return float(os.environ.get("HQEXP_HEARTBEAT_S", "60"))


class Recorder:
    """One MLflow run, written through a client with retries; while it is open a daemon thread
    writes the ``hqexp.heartbeat`` tag, so a run whose process died can be found later.

    With ``offline_dir``, a tracking server that stays unreachable past MLflow's own retries does
    not end the run: the rest of its record goes to a :class:`~hqexp.tracking.offline.Journal`
    there, for ``hqexp runs sync``."""

    def __init__(
        self, client, run_id: str, experiment_id: str, tracking_uri: str = "", offline_dir: Path | None = None
    ) -> None:
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id
        self.tracking_uri, self.offline_dir = tracking_uri, offline_dir
        self.journal = None
        self._stop = None

    def _send(self, what: str, call: Callable[[], Any], keep: Callable[[], None]) -> Any:
        """``call`` the store (with retries); once the server is gone for good, ``keep`` it on disk."""
        from hqexp.tracking.offline import Journal, unreachable

        if self.journal is None:
            try:
                return retry(call, what)
            except Exception as exc:
                if self.offline_dir is None or not unreachable(exc):
                    raise
                self.journal = Journal(self.offline_dir, self.run_id, self.tracking_uri)
                if self._stop is not None:
                    self._stop.set()  # no heartbeats into the void
                first = str(exc).strip().splitlines()[0][:300]
                log.warning(
                    "the tracking server %s is unreachable (%s): this run goes on, recorded in %s "
                    "(upload it later: hqexp runs sync %s)",
                    self.tracking_uri,
                    first,
                    self.offline_dir,
                    self.offline_dir,
                )
        keep()
        return None

    def __getstate__(self) -> dict:  # a sweep's callbacks travel to joblib workers: not the thread
        return {k: v for k, v in self.__dict__.items() if k != "_stop"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _stop=None)

    def _beat(self) -> None:
        import threading

        self._stop = threading.Event()

        def loop(stop=self._stop) -> None:
            while not stop.wait(heartbeat_seconds()):
                try:
                    self.client.set_tag(self.run_id, "hqexp.heartbeat", str(int(time.time())))
                except Exception as exc:  # noqa: BLE001 - a missed beat is not worth a crash
                    log.debug("heartbeat of %s failed: %s", self.run_id, exc)

        threading.Thread(target=loop, name=f"hqexp-heartbeat-{self.run_id[:8]}", daemon=True).start()

    @classmethod
    def start(
        cls,
        mlflow_cfg: Mapping,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        offline_dir: Path | None = None,
    ) -> Recorder:
        client, exp_id = open_store(
            mlflow_cfg["tracking_uri"],
            mlflow_cfg["experiment_name"],
            mlflow_cfg.get("artifact_location"),
            bool(mlflow_cfg.get("create_dirs", False)),
            float(mlflow_cfg.get("connect_timeout_s", 5.0)),
        )
        all_tags = {str(k): str(v) for k, v in dict(tags or {}).items()}
        all_tags.update({str(k): str(v) for k, v in dict(mlflow_cfg.get("tags") or {}).items()})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        all_tags.update({**process_tags(), "hqexp.heartbeat": str(int(time.time()))})
        run = retry(lambda: client.create_run(exp_id, run_name=run_name, tags=all_tags), "create run")
        remote = str(mlflow_cfg["tracking_uri"]).startswith(("http://", "https://"))
        kept = Path(offline_dir) / run.info.run_id if remote and offline_dir is not None else None
        rec = cls(client, run.info.run_id, exp_id, mlflow_cfg["tracking_uri"], kept)
        _OPEN[rec.run_id] = rec
        rec._beat()
        return rec

    @property
    def ui_path(self) -> str:
        return f"#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            chunk = items[i : i + 100]
            self._send(
                "log params",
                lambda chunk=chunk: self.client.log_batch(self.run_id, params=chunk),
                lambda chunk=chunk: self.journal.add("params", items={p.key: p.value for p in chunk}),
            )

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.log_metric_values([Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_metric_values(self, items: list) -> None:
        """MLflow ``Metric`` objects as they are (each with its own step and timestamp)."""
        for i in range(0, len(items), 1000):
            chunk = items[i : i + 1000]
            self._send(
                "log metrics",
                lambda chunk=chunk: self.client.log_batch(self.run_id, metrics=chunk),
                lambda chunk=chunk: self.journal.metrics([(m.key, m.value, m.timestamp, m.step) for m in chunk]),
            )

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self._send(
            "set tags",
            lambda: self.client.log_batch(self.run_id, tags=items),
            lambda: self.journal.add("tags", items={t.key: t.value for t in items}),
        )

    def log_text(self, text: str, path: str) -> None:
        self._send(
            "log text", lambda: self.client.log_text(self.run_id, text, path), lambda: self.journal.text(text, path)
        )

    def log_figure(self, fig, path: str) -> None:
        import matplotlib.pyplot as plt

        self._send(
            "log figure", lambda: self.client.log_figure(self.run_id, fig, path), lambda: self.journal.figure(fig, path)
        )
        plt.close(fig)

    def log_artifact(self, local: str | os.PathLike, artifact_dir: str | None = None) -> None:
        self._send(
            "log artifact",
            lambda: self.client.log_artifact(self.run_id, str(local), artifact_dir),
            lambda: self.journal.artifact(str(local), artifact_dir),
        )

    def terminate(self, status: str = "FINISHED") -> None:
        if self._stop is not None:
            self._stop.set()
        end = int(time.time() * 1000)
        self._send(
            "end run",
            lambda: self.client.set_terminated(self.run_id, status, end_time=end),
            lambda: self.journal.add("terminate", status=status, end_time=end),
        )
        _OPEN.pop(self.run_id, None)
        if self.journal is not None:
            import sys

            print(
                f"hqexp: the tracking server {self.tracking_uri} did not come back: run {self.run_id} ({status}) "
                f"is kept in {self.offline_dir}; upload it with: hqexp runs sync {self.offline_dir}",
                file=sys.stderr,
            )

    def status(self) -> str:
        return retry(lambda: self.client.get_run(self.run_id)).info.status


class MutedRecorder(Recorder):
    """What a non-zero rank of a data-parallel job records: nothing (rank 0 records the run)."""

    def __init__(self) -> None:
        super().__init__(None, "", "")

    def _beat(self) -> None:
        pass

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        pass

    def log_metric_values(self, items: list) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def log_text(self, text: str, path: str) -> None:
        pass

    def log_figure(self, fig, path: str) -> None:
        import matplotlib.pyplot as plt

        plt.close(fig)

    def log_artifact(self, local: str | os.PathLike, artifact_dir: str | None = None) -> None:
        pass

    def terminate(self, status: str = "FINISHED") -> None:
        pass

    def status(self) -> str:
        return "RUNNING"


def search_children(client, experiment_ids: Iterable[str], parent_run_id: str):
    flt = f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return retry(lambda: client.search_runs(list(experiment_ids), filter_string=flt, max_results=5000))
