"""``hqexp runs stale`` / ``hqexp runs close-stale``: runs left RUNNING by a process that is gone.

A SIGKILL, a power cut or a lost node leaves an MLflow run RUNNING that nothing will end.
Every hqexp run records its host, pid (and the pid's start time) and writes an
``hqexp.heartbeat`` tag while it is open. A RUNNING run is stale when its process is gone
(same host: no such pid, or the pid now belongs to a newer process) or, seen from another
host, when its heartbeat is older than ``stale_after_s``.
"""

from __future__ import annotations

import socket
import time

from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError

ACTIONS = ("stale", "close-stale", "sync")


def why_stale(tags: dict, start_ms: int, stale_after_s: float, now: float | None = None) -> str | None:
    """The reason a RUNNING run with ``tags`` is stale, or None while it looks alive."""
    from hqexp.tracking.store import pid_start

    now = time.time() if now is None else now
    host, pid = tags.get("hqexp.host"), tags.get("hqexp.pid")
    if host == socket.gethostname() and pid:
        started = pid_start(int(pid))
        if started is None:
            return f"process {pid} on {host} is gone"
        if tags.get("hqexp.pid_start") and str(started) != tags["hqexp.pid_start"]:
            return f"pid {pid} on {host} now belongs to another process"
        return None
    beat = float(tags.get("hqexp.heartbeat") or start_ms / 1000)
    age = now - beat
    if age > stale_after_s:
        return f"no heartbeat for {age / 60:.0f} min (host {host or 'unknown'})"
    return None


def run_runs(cfg: DictConfig) -> list[dict]:
    """List (``stale``) or close as KILLED (``close-stale``) the stale runs of every experiment."""
    from hqexp.tracking.store import open_store, retry

    if cfg.action not in ACTIONS:
        raise ConfigError(f"unknown runs action {cfg.action!r}; choose one of: {', '.join(ACTIONS)}")
    if cfg.action == "sync":
        return sync(cfg.get("path"), float(cfg.mlflow.get("connect_timeout_s", 5)))
    mcfg = OmegaConf.to_container(cfg.mlflow, resolve=True)
    client, _ = open_store(
        mcfg["tracking_uri"],
        mcfg["experiment_name"],
        mcfg.get("artifact_location"),
        bool(mcfg.get("create_dirs")),
        float(mcfg.get("connect_timeout_s", 5)),
    )
    exps = [e.experiment_id for e in retry(lambda: client.search_experiments())]
    running = retry(lambda: client.search_runs(exps, filter_string="attributes.status = 'RUNNING'", max_results=5000))
    rows = []
    for run in running:
        reason = why_stale(run.data.tags, run.info.start_time or 0, float(cfg.stale_after_s))
        if reason is None:
            continue
        rows.append(
            {
                "run_id": run.info.run_id,
                "experiment": run.info.experiment_id,
                "name": run.info.run_name or "",
                "reason": reason,
            }
        )
        if cfg.action == "close-stale":
            retry(
                lambda run=run, reason=reason: client.set_tag(
                    run.info.run_id, "hqexp.error", f"{reason} (closed by hqexp runs close-stale)"
                )
            )
            retry(lambda run=run: client.set_terminated(run.info.run_id, "KILLED"))
    verb = "closed as KILLED" if cfg.action == "close-stale" else "stale"
    print(f"hqexp runs: {len(running)} RUNNING in {mcfg['tracking_uri']}, {len(rows)} {verb}")
    for r in rows:
        print(f"  {r['run_id']}  exp {r['experiment']}  {r['name'][:50]:<50}  {r['reason']}")
    if rows and cfg.action == "stale":
        print("close them with: hqexp runs close-stale")
    return rows


def sync(path: str | None, timeout_s: float = 5.0) -> list[dict]:
    """Upload every offline journal under ``path`` to the server its run lives on (once)."""
    from pathlib import Path

    from hqexp.tracking import offline
    from hqexp.tracking.store import check_reachable, open_client

    if not path:
        raise ConfigError("hqexp runs sync needs the folder: hqexp runs sync DIR (a run's outputs or mlflow_offline/)")
    root = Path(path)
    if not root.exists():
        raise ConfigError(f"hqexp runs sync: {path} does not exist")
    folders = sorted(p.parent for p in root.rglob(offline.JOURNAL))
    if not folders:
        raise ConfigError(f"hqexp runs sync: no {offline.JOURNAL} under {path} (nothing was kept offline)")
    rows = []
    for folder in folders:
        entries = offline.read(folder)
        if (folder / offline.SYNCED).exists() or not entries:
            print(f"  {folder}: already uploaded")
            continue
        uri = entries[0]["tracking_uri"]
        check_reachable(uri, timeout_s)
        counts = offline.replay(folder, open_client(uri), entries)
        offline.mark_synced(folder, counts)
        rows.append({"run_id": entries[0]["run_id"], "folder": str(folder), **counts})
        print(
            f"  run {entries[0]['run_id']} -> {uri}: {counts['metrics']} metric values, {counts['params']} params, "
            f"{counts['tags']} tags, {counts['artifacts']} artifacts" + (", closed" if counts["status"] else "")
        )
    print(f"hqexp runs sync: {len(rows)} run(s) uploaded")
    return rows
