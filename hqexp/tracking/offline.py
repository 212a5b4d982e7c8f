"""A run's record kept on disk while its tracking server is gone, and uploaded later.

MLflow's client retries a request that fails to connect (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``,
default 7, exponential backoff): a server that comes back within that window loses nothing.
When the retries run out, the :class:`~hqexp.tracking.store.Recorder` stops calling the server
for the rest of the run and appends every call — metrics with their steps and timestamps,
params, tags, artifacts (copied), the final status — to ``journal.jsonl`` in an offline folder
beside the run's outputs. ``hqexp runs sync DIR`` replays it once the server is back, under the
same run id; what the server already has is not sent twice.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JOURNAL = "journal.jsonl"
SYNCED = "synced"


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the tracking server could not be reached (after MLflow's retries)."""
    text = str(exc)
    return any(
        m in text
        for m in (
            "Max retries exceeded",
            "Connection refused",
            "Failed to establish a new connection",
            "RemoteDisconnected",
        )
    )


class Journal:
    """The offline record of run ``run_id`` in ``folder`` (created on the first entry)."""

    def __init__(self, folder: Path, run_id: str, tracking_uri: str) -> None:
        self.folder, self.run_id, self.tracking_uri = Path(folder), run_id, tracking_uri
        self.entries = 0

    def add(self, op: str, **data: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {"op": op, "run_id": self.run_id, "tracking_uri": self.tracking_uri, **data}
        with open(self.folder / JOURNAL, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
        self.entries += 1

    def metrics(self, items: list[tuple[str, float, int, int]]) -> None:
        self.add("metrics", items=[list(i) for i in items])

    def artifact(self, local: str, artifact_dir: str | None) -> None:
        src = Path(local)
        dest = self.folder / "artifacts" / f"{self.entries:05d}" / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
        self.add("artifact", path=str(dest.relative_to(self.folder)), artifact_dir=artifact_dir)

    def text(self, text: str, path: str) -> None:
        self.add("text", text=text, path=path)

    def figure(self, fig, path: str) -> None:
        dest = self.folder / "artifacts" / f"{self.entries:05d}" / Path(path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(dest)
        self.add("artifact", path=str(dest.relative_to(self.folder)), artifact_dir=str(Path(path).parent) or None)


def read(folder: Path) -> list[dict]:
    """The journal's entries, in order (one line each; a torn last line, from a kill, is skipped)."""
    out = []
    for line in (Path(folder) / JOURNAL).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def replay(folder: Path, client, entries: list[dict]) -> dict[str, int]:
    """Send ``entries`` to ``client``; returns counts by kind. Metrics the server already holds
    (same key, step and timestamp) are skipped, so a sync cut short can simply be run again."""
    from mlflow.entities import Metric, Param, RunTag

    done = {"metrics": 0, "params": 0, "tags": 0, "artifacts": 0, "status": 0}
    have: dict[str, set] = {}
    for e in entries:
        run, op = e["run_id"], e["op"]
        if op == "metrics":
            fresh = []
            for key, value, ts, step in e["items"]:
                if key not in have:
                    have[key] = {(m.step, m.timestamp) for m in client.get_metric_history(run, key)}
                if (step, ts) not in have[key]:
                    fresh.append(Metric(key, float(value), int(ts), int(step)))
                    have[key].add((step, ts))
            for i in range(0, len(fresh), 1000):
                client.log_batch(run, metrics=fresh[i : i + 1000])
            done["metrics"] += len(fresh)
        elif op == "params":
            items = [Param(k, v) for k, v in e["items"].items()]
            existing = client.get_run(run).data.params
            items = [p for p in items if p.key not in existing]
            for i in range(0, len(items), 100):
                client.log_batch(run, params=items[i : i + 100])
            done["params"] += len(items)
        elif op == "tags":
            client.log_batch(run, tags=[RunTag(k, v) for k, v in e["items"].items()])
            done["tags"] += len(e["items"])
        elif op == "text":
            client.log_text(run, e["text"], e["path"])
            done["artifacts"] += 1
        elif op == "artifact":
            client.log_artifact(run, str(Path(folder) / e["path"]), e.get("artifact_dir"))
            done["artifacts"] += 1
        elif op == "terminate":
            client.set_terminated(run, e["status"], end_time=e.get("end_time"))
            done["status"] += 1
    return done


def mark_synced(folder: Path, counts: Mapping[str, int]) -> None:
    (Path(folder) / SYNCED).write_text(json.dumps({"at": int(time.time()), **counts}))
