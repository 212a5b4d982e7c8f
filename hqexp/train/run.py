"""``hqexp train`` and ``hqexp eval``: compose, validate, train/test, record in MLflow."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError

log = logging.getLogger("hqexp")

PARENT_FILE = "mlflow_parent_run_id.txt"
# The recorder of the job in progress, so the CLI guard can mark it on failure.
CURRENT: dict = {}


# ------------------------------------------------------------------ validation
def validate(cfg: DictConfig) -> None:
    """Stop before any work on a missing (``???``) key or an obviously wrong type."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
    if missing:
        raise ConfigError(f"missing required config value(s): {', '.join(missing)} (set them as key=value)")
    checks = [
        ("seed", int, lambda v: True, "an int"),
        ("optim.lr", (int, float), lambda v: v > 0, "a positive number"),
        ("optim.weight_decay", (int, float), lambda v: v >= 0, "a non-negative number"),
        ("trainer.max_epochs", int, lambda v: v >= 1, "an int >= 1"),
    ]
    for key, types, ok, what in checks:
        v = OmegaConf.select(cfg, key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, types) or not ok(v):
            raise ConfigError(f"{key} must be {what}, got {v!r}")


def _hardware(cfg: DictConfig) -> dict:
    import torch

    hw = OmegaConf.to_container(cfg.hardware, resolve=True)
    gpu = hw.get("accelerator") in ("gpu", "cuda")
    if gpu and not torch.cuda.is_available():
        raise ConfigError(
            f"hardware={_choice('hardware')} needs a CUDA GPU, but torch {torch.__version__} sees none; "
            "use hardware=cpu (or install a CUDA build of torch)"
        )
    precision = cfg.get("precision")
    if precision not in (None, "mixed"):
        raise ConfigError(f"precision must be null or mixed, got {precision!r}")
    if precision == "mixed":  # Lightning adds the GradScaler for 16-mixed
        hw["precision"] = "16-mixed" if gpu else "bf16-mixed"
    return hw


def _choice(group: str) -> str:
    from hydra.core.hydra_config import HydraConfig

    try:
        return str(HydraConfig.get().runtime.choices.get(group))
    except ValueError:
        return "?"


def _output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


# -------------------------------------------------------------------- building
def build_datamodule(cfg: DictConfig, fold: int | None = None):
    from hydra.utils import instantiate

    extra = {}
    if int(cfg.cv.folds) > 1 or fold is not None:
        extra.update(cv_folds=int(cfg.cv.folds), fold=cfg.cv.fold if fold is None else fold)
    if cfg.imbalance.method != "none":
        extra.update(imbalance=cfg.imbalance.method, smote_k=cfg.imbalance.smote_k)
    if extra and not _accepts(cfg.dataset._target_, "fold"):
        raise ConfigError(f"cv.folds / imbalance.method are for the tabular classification sets; "
                          f"dataset={_choice('dataset')} does not support them")
    try:
        dm = instantiate(cfg.dataset, seed=cfg.seed, **extra)
    except Exception as exc:  # Hydra wraps constructor errors; surface ours as one line
        raise _unwrap(exc, "dataset") from None
    dm.setup("fit")
    return dm


def _accepts(target: str, arg: str) -> bool:
    import inspect

    from hydra.utils import get_class

    try:
        params = inspect.signature(get_class(target)).parameters
    except Exception:
        return False
    return arg in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def model_task(cfg: DictConfig) -> str:
    """``classification`` or ``regression``: the ``task`` attribute of the model's class."""
    from hydra.utils import get_class

    try:
        return getattr(get_class(cfg.model._target_), "task", "classification")
    except Exception as exc:
        raise ConfigError(f"cannot import model {cfg.model.get('_target_')!r}: {exc}") from None


def build_model(cfg: DictConfig, info):
    from hydra.utils import instantiate

    kind = model_task(cfg)
    if kind != info.task:
        want = {"regression": "a regression dataset (options)",
                "multilabel": "an ECG dataset (ptbxl, cinc2021, synthetic_ecg)"}.get(kind, "a classification dataset")
        raise ConfigError(f"model={_choice('model')} is a {kind} model but dataset={_choice('dataset')} is a "
                          f"{info.task} dataset; use {want}")
    size = {"n_outputs": info.n_classes} if kind == "regression" else {"n_classes": info.n_classes}
    try:
        return instantiate(cfg.model, n_features=info.n_features, **size, _convert_="all")
    except Exception as exc:
        raise _unwrap(exc, "model") from None


def build_task(cfg: DictConfig, model, dm):
    """The LightningModule for the dataset's task kind."""
    from hqexp.train.tasks import ClassificationTask, MultiLabelTask, RegressionTask

    sched = OmegaConf.to_container(cfg.scheduler, resolve=True)
    loss = cfg.get("loss", "auto")
    if dm.info.task == "regression":
        return RegressionTask(model, cfg.optim.lr, cfg.optim.weight_decay, sched, cfg.trainer.max_epochs,
                              loss="mse" if loss == "auto" else loss, target_mean=dm.target_mean,
                              target_std=dm.target_std)
    if dm.info.task == "multilabel":
        if loss not in ("auto", "bce"):
            raise ConfigError(f"loss={loss!r} does not fit multi-label data; use bce (or auto)")
        return MultiLabelTask(model, dm.info.class_names, cfg.optim.lr, cfg.optim.weight_decay, sched,
                              cfg.trainer.max_epochs)
    if loss not in ("auto", "cross_entropy"):
        raise ConfigError(f"loss={loss!r} is for regression; classification uses cross_entropy (or auto)")
    return ClassificationTask(model, dm.info.n_classes, cfg.optim.lr, cfg.optim.weight_decay, sched,
                              cfg.trainer.max_epochs, class_weights=getattr(dm, "class_weights", None))


def _unwrap(exc: BaseException, group: str) -> BaseException:
    from hqexp.errors import HqexpError

    cur: BaseException | None = exc
    while cur is not None:
        if isinstance(cur, HqexpError):
            return cur
        cur = cur.__cause__ or cur.__context__
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError(f"cannot build {group} ({_choice(group)}): {msg}")


def _run_name(kind: str) -> str:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    ov = [o for o in hc.overrides.task if not o.startswith("hydra")]
    base = f"{kind} {_choice('model')} on {_choice('dataset')}"
    return base + (f" [{', '.join(ov)}]" if ov else "")


def _parent_run_id() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    from hqexp.entrypoints import _is_multirun

    if not _is_multirun():
        return None
    f = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return f.read_text().strip() if f.exists() else None


def start_recorder(cfg: DictConfig, kind: str, extra_tags: dict | None = None, parent_run_id: str | None = None,
                   name_suffix: str = ""):
    from hydra.core.hydra_config import HydraConfig

    from hqexp.cli import project_root
    from hqexp.tracking.mlflow_run import Recorder, git_sha

    hc = HydraConfig.get()
    tags = {
        "hqexp.command": kind,
        "model": _choice("model"),
        "dataset": _choice("dataset"),
        "backend": _choice("backend"),
        "hardware": _choice("hardware"),
        "git_sha": git_sha(project_root()),
        "hqexp.overrides": " ".join(hc.overrides.task),
        "hqexp.output_dir": hc.runtime.output_dir,
        **(extra_tags or {}),
    }
    mcfg = OmegaConf.to_container(cfg.mlflow, resolve=True)
    name = (mcfg.get("run_name") or _run_name(kind)) + name_suffix
    rec = Recorder.start(mcfg, run_name=name, tags=tags, parent_run_id=parent_run_id or _parent_run_id())
    CURRENT["recorder"] = rec
    return rec


def _log_config(rec, cfg: DictConfig) -> None:
    from hqexp.tracking.mlflow_run import flatten

    resolved = OmegaConf.to_container(cfg, resolve=True)
    rec.log_params(flatten(resolved))
    rec.log_text(OmegaConf.to_yaml(resolved), "config/config.yaml")


def _model_facts(model) -> tuple[dict, str]:
    from hqexp.models import count_parameters, quantum_layers

    from hqexp.train.int8 import model_bytes

    counts = count_parameters(model)
    used = sorted({q.backend_used for q in quantum_layers(model).values()})
    return ({"params/total": counts["total"], "params/quantum": counts["quantum"],
             "params/trainable": counts["trainable"], "model/bytes": model_bytes(model)}, ",".join(used) or "none")


def energy_meter(cfg: DictConfig):
    """The energy meter for this run's hardware (``Unavailable`` with a reason if none)."""
    from hqexp.energy import select_meter

    c = cfg.callbacks.get("energy")
    if c is None or not c.enabled:
        return select_meter(prefer="none")
    device = "cuda" if cfg.hardware.accelerator in ("gpu", "cuda") else "cpu"
    try:
        return select_meter(device, c.meter)
    except ValueError as exc:
        raise ConfigError(f"callbacks.energy.meter: {exc}") from None


def _callbacks(cfg: DictConfig, ckpt_dir: Path, meter=None):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from hqexp.callbacks.barren import BarrenPlateauCallback
    from hqexp.callbacks.energy import EnergyCallback
    from hqexp.callbacks.latency import CostProgressBar, LatencyCallback
    from hqexp.callbacks.gradnorm import GradNormCallback
    from hqexp.callbacks.interrupt import InterruptFlag

    c = cfg.callbacks
    ckpt = ModelCheckpoint(dirpath=str(ckpt_dir), monitor=c.checkpoint.monitor, mode=c.checkpoint.mode,
                           save_last=c.checkpoint.save_last, filename="best-epoch{epoch:03d}",
                           auto_insert_metric_name=False)  # no '=' in names: Hydra overrides choke on it
    out = [ckpt, InterruptFlag()]
    if c.early_stopping.enabled:
        out.append(EarlyStopping(monitor=c.early_stopping.monitor, mode=c.early_stopping.mode,
                                 patience=c.early_stopping.patience))
    if c.grad_norm.enabled:
        out.append(GradNormCallback(c.grad_norm.every_n_steps))
    if c.barren_plateau.enabled:
        b = c.barren_plateau
        try:
            out.append(BarrenPlateauCallback(b.window, b.threshold))
        except ValueError as exc:
            raise ConfigError(f"callbacks.{exc}") from None
    latency = energy = None
    if c.latency.enabled:
        try:
            latency = LatencyCallback(c.latency.warmup_batches)
        except ValueError as exc:
            raise ConfigError(f"callbacks.{exc}") from None
        out.append(latency)
    if meter is not None and meter.available:
        energy = EnergyCallback(meter)
        out.append(energy)
    if cfg.trainer.get("enable_progress_bar", True):
        out.append(CostProgressBar(latency, energy))
    return out


def _trainer(cfg: DictConfig, logger, callbacks, root: Path):
    import lightning as L

    kw = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if v is not None}
    return L.Trainer(**_hardware(cfg), **kw, logger=logger, callbacks=callbacks, default_root_dir=str(root),
                     enable_model_summary=False)


EPOCH_PREFIXES = ("train/", "val/", "lr", "latency/", "energy/", "grad_norm_epoch/")


def epoch_table(history: dict[str, list[tuple[int, float]]]) -> list[dict]:
    """Per-epoch rows (epoch, step, every epoch-level metric) from the logger's history."""
    by_step: dict[int, dict] = {}
    for key, pts in history.items():
        if key.startswith(EPOCH_PREFIXES):
            for step, v in pts:
                by_step.setdefault(step, {})[key] = v
    # Rows without a train/ or val/ value are the test-time latency entries, not epochs.
    epochs = [(step, vals) for step, vals in sorted(by_step.items())
              if any(k.startswith(("train/", "val/")) for k in vals)]
    return [{"epoch": i, "step": step, **vals} for i, (step, vals) in enumerate(epochs)]


def _log_tables(rec, logger, task, metrics: dict, elapsed: float) -> None:
    """Per-epoch log (JSON + CSV), predictions CSV (regression) and a one-row run summary CSV."""
    import json

    import pandas as pd

    rows = epoch_table(logger.history)
    rec.log_text(json.dumps(rows, indent=1), "logs/epochs.json")
    rec.log_text(pd.DataFrame(rows).to_csv(index=False), "logs/epochs.csv")
    out = task.test_outputs
    if out and "preds" in out:
        df = pd.DataFrame({"target": out["targets"].numpy(), "prediction": out["preds"].numpy()})
        df["error"] = df.prediction - df.target
        rec.log_text(df.to_csv(index=False), "predictions/test.csv")
    summary = {"run_id": rec.run_id, "model": _choice("model"), "dataset": _choice("dataset"),
               "epochs": len([r for r in rows if "train/loss" in r]), "time_fit_s": round(elapsed, 3), **metrics}
    rec.log_text(pd.DataFrame([summary]).to_csv(index=False), "summary/run_summary.csv")


def _log_plots(rec, logger, task, class_names) -> None:
    from hqexp.tracking import plots

    h = logger.history
    ylabel = type(task.loss).__name__
    rec.log_figure(plots.curves(h, ["train/loss", "val/loss"], "loss", ylabel), "plots/loss.png")
    rec.log_figure(plots.curves(h, ["lr"], "learning rate", "lr", logy=True), "plots/lr.png")
    gn = [k for k in h if k.startswith("grad_norm/")]
    if gn:
        rec.log_figure(plots.curves(h, sorted(gn), "gradient norms", "L2 norm", logy=True),
                       "plots/grad_norm.png")
    out = task.test_outputs
    for path, fig in (task.model.figures().items() if hasattr(task.model, "figures") else ()):
        rec.log_figure(fig, path)
    if out and "scores" in out:
        y, p = out["targets"].numpy(), out["scores"].numpy()
        rec.log_figure(plots.multilabel_roc(y, p, list(class_names)), "plots/roc.png")
        rec.log_figure(plots.per_class_confusion(y.astype(int), (p > 0.5).astype(int), list(class_names)),
                       "plots/confusion_matrix.png")
    elif out and "preds" in out:
        rec.log_figure(plots.predicted_vs_true(out["targets"].numpy(), out["preds"].numpy(), class_names[0]),
                       "plots/predicted_vs_true.png")
    elif out:
        y, p = out["targets"].numpy(), out["probs"].numpy()
        rec.log_figure(plots.roc(y, p, list(class_names)), "plots/roc.png")
        rec.log_figure(plots.precision_recall(y, p, list(class_names)), "plots/pr.png")
        rec.log_figure(plots.confusion(y, p.argmax(1), list(class_names)), "plots/confusion_matrix.png")


def _headline(metrics: dict, rec, kind: str) -> None:
    from hqexp.tracking.mlflow_run import retry

    uri = retry(lambda: rec.client._tracking_client.tracking_uri)
    keys = [k for k in ("test/acc", "test/auroc", "test/f1", "test/auroc_macro", "test/f1_macro", "test/acc_exact",
                        "test/rmse", "test/mae", "test/r2", "test/loss")
            if k in metrics]
    shown = "  ".join(f"{k}={metrics[k]:.4f}" for k in keys)
    print(f"\nhqexp {kind}: {shown}")
    print(f"MLflow run {rec.run_id} in {uri} (experiment id {rec.experiment_id}); "
          f"`make ui` then open {rec.ui_path}")


# ----------------------------------------------------------------- the loops
def _fit_and_test(cfg: DictConfig, rec, task, dm, trainer_ckpt: str | None, do_fit: bool,
                  out_dir: Path | None = None) -> dict:
    from hqexp.tracking.logger import RecorderLogger
    from hqexp.train.memory import PeakMemory

    out_dir = out_dir or _output_dir()
    logger = RecorderLogger(rec)
    meter = energy_meter(cfg)
    rec.set_tags({"energy_source": meter.source})
    callbacks = _callbacks(cfg, out_dir / "checkpoints", meter if do_fit else None)
    trainer = _trainer(cfg, logger, callbacks, out_dir)
    flag = callbacks[1]
    started = time.perf_counter()
    with PeakMemory("cuda" if cfg.hardware.accelerator in ("gpu", "cuda") else "cpu") as peak:
        try:
            if do_fit:
                trainer.fit(task, datamodule=dm, ckpt_path=trainer_ckpt)
                if flag.interrupted:
                    raise KeyboardInterrupt
                best = callbacks[0].best_model_path or None
                trainer.test(task, datamodule=dm, ckpt_path=best, weights_only=False, verbose=False)
            else:
                trainer.test(task, datamodule=dm, verbose=False)
        except (SystemExit, KeyboardInterrupt):
            logger.save()
            status = "KILLED" if flag.interrupted or not do_fit else "FAILED"
            rec.terminate(status)
            raise KeyboardInterrupt from None
        except BaseException:
            logger.save()
            rec.terminate("FAILED")
            raise
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    elapsed = time.perf_counter() - started
    cost = {"time/fit_s": elapsed, **peak.metrics()}
    if do_fit:
        cost["time/epochs"] = trainer.current_epoch
    rec.log_metrics({**metrics, **cost}, step=trainer.global_step)
    metrics.update(cost)
    logger.save()
    _log_plots(rec, logger, task, dm.info.class_names)
    _log_tables(rec, logger, task, metrics, elapsed)
    if do_fit and callbacks[0].best_model_path:
        rec.log_artifact(callbacks[0].best_model_path, "checkpoints")
    return metrics


def train(cfg: DictConfig) -> dict:
    """One training run — or, with ``cv.folds > 1``, a parent run with one child per fold."""
    validate(cfg)
    _hardware(cfg)
    if cfg.ckpt_path is not None and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path {cfg.ckpt_path!r} does not exist")
    folds = cfg.cv.folds
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ConfigError(f"cv.folds must be an int >= 1, got {folds!r}")
    if folds > 1 and cfg.cv.fold is None:
        if cfg.ckpt_path is not None:
            raise ConfigError("ckpt_path resumes one run; with cv.folds > 1 resume a fold with cv.fold=i")
        return _train_cv(cfg, folds)
    metrics, rec = _train_one(cfg, cfg.cv.fold if folds > 1 else None)
    rec.terminate("FINISHED")
    _headline(metrics, rec, "train")
    return metrics


def _train_one(cfg: DictConfig, fold: int | None, parent_run_id: str | None = None,
               out_dir: Path | None = None) -> tuple[dict, object]:
    """Fit and test one model (one fold when ``fold`` is set); the run is left open."""
    import lightning as L

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg, fold)
    model = build_model(cfg, dm.info)
    task = build_task(cfg, model, dm)
    tags = {"resumed_from": cfg.ckpt_path} if cfg.ckpt_path else {}
    if fold is not None:
        tags["cv.fold"] = str(fold)
    rec = start_recorder(cfg, "train", tags, parent_run_id=parent_run_id,
                         name_suffix=f" fold {fold}" if parent_run_id else "")
    facts, used = _model_facts(model)
    rec.set_tags({"backend_used": used})
    _log_config(rec, cfg)
    rec.log_metrics({**facts, **({"data/skipped": dm.n_skipped} if hasattr(dm, "n_skipped") else {})})
    task.hqexp_meta = {"config": OmegaConf.to_container(cfg, resolve=True), "run_id": rec.run_id,
                       "choices": {g: _choice(g) for g in ("model", "dataset", "backend", "hardware")}}
    metrics = _fit_and_test(cfg, rec, task, dm, cfg.ckpt_path, do_fit=True, out_dir=out_dir)
    metrics.update(facts)
    _backend_report(rec, model)
    if cfg.quantize.int8:
        if task.__class__.__name__ != "ClassificationTask":
            raise ConfigError("quantize.int8 is measured with classification metrics; use a classification dataset")
        from hqexp.train.int8 import int8_report

        q = int8_report(task.model, dm.test_dataloader(), dm.info.n_classes)
        rec.log_metrics(q)
        metrics.update(q)
    return metrics, rec


def _backend_report(rec, model) -> None:
    """What ran where: final backend, switches and forward passes per backend."""
    from hqexp.models import quantum_layers

    layers = quantum_layers(model)
    if not layers:
        return
    events = [f"{name}: {e}" for name, q in layers.items() for e in getattr(q, "events", [])]
    rec.set_tags({"backend_used": ",".join(sorted({q.backend_used for q in layers.values()})),
                  **({"backend_events": " | ".join(events)[:5000]} if events else {})})
    steps: dict[str, float] = {}
    for q in layers.values():
        for b, n in getattr(q, "steps", {}).items():
            steps[f"backend/forwards/{b}"] = steps.get(f"backend/forwards/{b}", 0) + n
    rec.log_metrics({**steps, "backend/switches": float(len(events))})


def _train_cv(cfg: DictConfig, folds: int) -> dict:
    """Stratified k-fold CV: a parent run holding mean/std, one child run per fold."""
    import numpy as np
    import pandas as pd

    from hqexp.tracking.mlflow_run import retry

    parent = start_recorder(cfg, "train", {"cv.folds": str(folds)})
    _log_config(parent, cfg)
    rows, used = [], set()
    try:
        for i in range(folds):
            metrics, rec = _train_one(cfg, i, parent_run_id=parent.run_id, out_dir=_output_dir() / f"fold_{i}")
            rec.terminate("FINISHED")
            used.add(retry(lambda: rec.client.get_run(rec.run_id)).data.tags.get("backend_used", "none"))
            rows.append({"fold": i, "run_id": rec.run_id, **metrics})
            CURRENT["recorder"] = parent
    except BaseException:
        CURRENT["recorder"] = parent  # the CLI guard marks the parent; the fold already marked itself
        raise
    df = pd.DataFrame(rows)
    summary: dict[str, float] = {}
    for col in df.columns:
        if col in ("fold", "run_id") or not np.issubdtype(df[col].dtype, np.number):
            continue
        vals = df[col].dropna().to_numpy(float)
        summary[f"cv/{col}_mean"], summary[f"cv/{col}_std"] = float(vals.mean()), float(vals.std(ddof=1) if len(vals) > 1 else 0.0)
    # The fold means under the usual names, so sweeps and the UI compare CV runs like any other.
    means = {c: float(df[c].mean()) for c in df.columns if c.startswith(("test/", "int8/", "params/", "model/"))}
    means["time/fit_s"] = float(df["time/fit_s"].sum())
    if "time/epochs" in df:
        means["time/epochs"] = float(df["time/epochs"].mean())
    parent.set_tags({"backend_used": ",".join(sorted(used))})
    for key in ("mem/peak_rss_mb", "mem/peak_cuda_mb", "mem/fit_rss_delta_mb"):
        if key in df:
            means[key] = float(df[key].max())
    parent.log_metrics({**summary, **means})
    parent.log_text(df.to_csv(index=False), "cv/folds.csv")
    lines = ["| metric | mean | std |", "|---|---|---|"] + [
        f"| {k[3:-5]} | {v:.4f} | {summary[k[:-5] + '_std']:.4f} |" for k, v in summary.items()
        if k.endswith("_mean") and k.startswith("cv/test/")]
    parent.log_text("\n".join(lines) + "\n", "cv/summary.md")
    parent.terminate("FINISHED")
    print(f"\n{folds}-fold CV (mean ± std over folds):")
    for k, v in summary.items():
        if k.startswith("cv/test/") and k.endswith("_mean"):
            print(f"  {k[3:-5]:<22} {v:.4f} ± {summary[k[:-5] + '_std']:.4f}")
    _headline(means, parent, "train")
    return {**summary, **means}


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate ``ckpt_path`` on the test split; the run is tagged with its source run."""
    import torch
    from hydra.core.hydra_config import HydraConfig

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
    given = {o.split("=")[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
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
    rec = start_recorder(cfg, "eval", {**tags, "source_run_id": meta.get("run_id", "unknown"),
                                       "source_checkpoint": str(path.resolve())})
    facts, used = _model_facts(model)
    rec.set_tags({"backend_used": used})
    _log_config(rec, cfg)
    rec.log_metrics(facts)
    metrics = _fit_and_test(cfg, rec, task, dm, None, do_fit=False)
    rec.terminate("FINISHED")
    _headline(metrics, rec, "eval")
    return metrics
