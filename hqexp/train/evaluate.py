"""``hqexp eval``: test a checkpoint on the test split, as a run tagged with its source run."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp import safeload
from hqexp.config import task_overrides
from hqexp.errors import ConfigError
from hqexp.safeload import trust_tag, trusted
from hqexp.tracking import record
from hqexp.train.build import build_datamodule, build_model, build_task
from hqexp.train.checks import validate
from hqexp.train.facts import backend_report, model_facts
from hqexp.train.fit import fit_and_test

RESTORED = ("model", "dataset", "backend", "noise", "optim", "scheduler", "seed", "twin", "loss")


def restore(cfg: DictConfig, saved: DictConfig) -> set[str]:
    """Rebuild what the checkpoint was trained as — model, dataset, backend, … and its MLflow
    experiment — then re-apply every override of the command line on top, so each one takes
    effect. Returns the overridden keys and groups."""
    overrides = [o for o in task_overrides() if not o.startswith("hydra")]
    given = {o.split("=")[0].lstrip("+~") for o in overrides}
    mine = {key: OmegaConf.select(cfg, key) for key in given}  # as Hydra composed them
    for key in RESTORED:
        if key in saved:
            cfg[key] = saved[key]
    if "mlflow" in saved and not given & {"mlflow", "mlflow.experiment_name"}:
        cfg.mlflow.experiment_name = saved.mlflow.experiment_name
    for key, value in sorted(mine.items(), key=lambda kv: kv[0].count(".")):  # groups before their keys
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    if "backend" in cfg and "noise" in cfg:  # the noise of the evaluation: the training's, or noise=… given here
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.backend.noise = cfg.noise
    if "backend" in cfg.model:  # the circuits run where the (possibly overridden) backend says
        cfg.model.backend = cfg.backend
    return given


def load_weights(task, state: dict, path: Path) -> None:
    """Load a checkpoint's weights; one line naming the keys that differ when they do not fit."""
    mine = task.state_dict()
    missing = sorted(set(mine) - set(state))
    unexpected = sorted(set(state) - set(mine))
    shapes = [
        f"{k} {list(state[k].shape)} vs {list(mine[k].shape)}"
        for k in sorted(set(mine) & set(state))
        if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(mine[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = (
            [f"missing in the checkpoint: {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}"]
            if missing
            else []
        )
        parts += (
            [f"not in the model: {', '.join(unexpected[:4])}{' …' if len(unexpected) > 4 else ''}"]
            if unexpected
            else []
        )
        parts += (
            [f"shape (checkpoint vs model): {'; '.join(shapes[:3])}{' …' if len(shapes) > 3 else ''}"] if shapes else []
        )
        raise ConfigError(f"checkpoint {path.name} does not fit the model: {' | '.join(parts)}")
    task.load_state_dict(state)


def fetch_checkpoint(cfg: DictConfig, run_id: str) -> Path:
    """Download the checkpoint run ``run_id`` logged under ``checkpoints/`` (its best one, else the
    last) from the MLflow store into this run's folder."""
    from hqexp.config import output_dir
    from hqexp.tracking.store import open_store, retry

    m = OmegaConf.to_container(cfg.mlflow, resolve=True)
    client, _ = open_store(
        m["tracking_uri"],
        m["experiment_name"],
        m.get("artifact_location"),
        bool(m.get("create_dirs")),
        float(m.get("connect_timeout_s", 5)),
    )
    try:
        files = [a.path for a in retry(lambda: client.list_artifacts(run_id, "checkpoints"))]
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"run_id {run_id!r}: no such run in {m['tracking_uri']} ({first})") from None
    ckpts = sorted(f for f in files if f.endswith(".ckpt"))
    if not ckpts:
        if retry(lambda: client.get_run(run_id)).data.tags.get("model.kind") == "fitted":
            raise ConfigError(
                f"run {run_id} is a fitted model (a kernel method or scikit-learn estimator): fitted models "
                "are not saved (nothing hqexp reads may run code); fit it again with hqexp train"
            )
        raise ConfigError(f"run {run_id} has no checkpoint under checkpoints/ in {m['tracking_uri']}")
    pick = next((f for f in ckpts if Path(f).name.startswith("best")), ckpts[-1])
    dest = output_dir() / "source_checkpoint"
    dest.mkdir(parents=True, exist_ok=True)
    return Path(retry(lambda: client.download_artifacts(run_id, pick, str(dest))))


def load_for_eval(cfg: DictConfig):
    """The checkpoint of ``ckpt_path`` (or ``run_id``) rebuilt as it was trained, command-line
    overrides applied: ``(task, dm, model, meta, path, given)``."""
    validate(cfg)
    if cfg.ckpt_path is None and cfg.get("run_id") is None:
        raise ConfigError("missing required config value: ckpt_path (hqexp eval ckpt_path=PATH, or run_id=ID)")
    path = Path(cfg.ckpt_path) if cfg.ckpt_path is not None else fetch_checkpoint(cfg, str(cfg.run_id))
    if not path.is_file():
        raise ConfigError(f"ckpt_path {str(path)!r} does not exist")
    ckpt = safeload.load(path, f"ckpt_path {str(path)!r}", trusted(cfg))
    meta = ckpt.get("hqexp") if isinstance(ckpt, dict) else None
    if not meta or "state_dict" not in ckpt:
        raise ConfigError(f"ckpt_path {str(path)!r} is not an hqexp checkpoint (no 'hqexp' metadata)")
    given = restore(cfg, OmegaConf.create(meta["config"]))
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm.info)
    task = build_task(cfg, model, dm)
    load_weights(task, ckpt["state_dict"], path)
    return task, dm, model, meta, path, given


def start_eval_run(cfg: DictConfig, kind: str, model, meta: dict, path: Path, given: set[str]):
    """The MLflow run of an evaluation, tagged with the checkpoint's source run."""
    tags = {g: c for g, c in meta.get("choices", {}).items() if g not in given}
    rec = record.start_run(
        cfg,
        kind,
        {
            **tags,
            "source_run_id": meta.get("run_id", "unknown"),
            "source_checkpoint": str(path.resolve()),
            **trust_tag(cfg),
        },
    )
    facts, used = model_facts(model)
    rec.set_tags({"backend_used": used})
    record.log_config(rec, cfg)
    rec.log_metrics(facts)
    return rec


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate ``ckpt_path`` on the test split; the run is tagged with its source run."""
    task, dm, model, meta, path, given = load_for_eval(cfg)
    rec = start_eval_run(cfg, "eval", model, meta, path, given)
    metrics = fit_and_test(cfg, rec, task, dm, None, do_fit=False)
    backend_report(rec, model)
    rec.terminate("FINISHED")
    record.headline(metrics, rec, "eval")
    return metrics
