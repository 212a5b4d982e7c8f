"""``hqexp eval``: test a checkpoint on the test split, as a run tagged with its source run."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp.config import task_overrides
from hqexp.errors import ConfigError
from hqexp.tracking import record
from hqexp.train.build import build_datamodule, build_model, build_task
from hqexp.train.checks import validate
from hqexp.train.facts import model_facts
from hqexp.train.fit import fit_and_test


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate ``ckpt_path`` on the test split; the run is tagged with its source run."""
    import torch

    validate(cfg)
    if cfg.ckpt_path is None:
        raise ConfigError("missing required config value: ckpt_path (hqexp eval ckpt_path=PATH)")
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ConfigError(f"ckpt_path {str(path)!r} is not a readable checkpoint: {exc}") from None
    meta = ckpt.get("hqexp") if isinstance(ckpt, dict) else None
    if not meta or "state_dict" not in ckpt:
        raise ConfigError(f"ckpt_path {str(path)!r} is not an hqexp checkpoint (no 'hqexp' metadata)")
    # Architecture and data come from the checkpoint unless the command line says otherwise.
    given = {o.split("=")[0].lstrip("+~") for o in task_overrides()}
    saved = OmegaConf.create(meta["config"])
    for group in ("model", "dataset", "backend", "optim", "scheduler"):
        if group not in given and group in saved:
            cfg[group] = saved[group]
    if "seed" not in given:
        cfg.seed = saved.seed
    if "backend" not in given and "model" not in given and "backend" in cfg.model:
        cfg.model.backend = cfg.backend
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm.info)
    task = build_task(cfg, model, dm)
    try:
        task.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ConfigError(f"checkpoint does not fit the model: {str(exc).splitlines()[0]}") from None
    tags = {g: c for g, c in meta.get("choices", {}).items() if g not in given}
    rec = record.start_run(cfg, "eval", {**tags, "source_run_id": meta.get("run_id", "unknown"),
                                         "source_checkpoint": str(path.resolve())})
    facts, used = model_facts(model)
    rec.set_tags({"backend_used": used})
    record.log_config(rec, cfg)
    rec.log_metrics(facts)
    metrics = fit_and_test(cfg, rec, task, dm, None, do_fit=False)
    rec.terminate("FINISHED")
    record.headline(metrics, rec, "eval")
    return metrics
