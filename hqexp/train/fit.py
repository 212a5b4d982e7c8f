"""One ordinary training run: build, fit and test a model with Lightning, record it in MLflow."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp import safeload
from hqexp.config import choice, output_dir
from hqexp.errors import ConfigError, HqexpError
from hqexp.safeload import trust_tag, trusted
from hqexp.tracking import record
from hqexp.train.build import build_callbacks, build_datamodule, build_model, build_task, build_trainer, energy_meter
from hqexp.train.checks import device_of
from hqexp.train.facts import backend_report, model_facts
from hqexp.train.noise_eval import entries as noise_entries


def fit_and_test(cfg: DictConfig, rec, task, dm, ckpt: str | None, do_fit: bool, out_dir: Path | None = None) -> dict:
    """Fit (unless ``do_fit`` is False) and test; log metrics, tables, plots, best checkpoint.

    The run is marked KILLED on Ctrl-C (and KeyboardInterrupt re-raised) or FAILED on an
    error; on success it is left open for the caller to add to and close.
    """
    from hqexp.tracking.logger import RecorderLogger
    from hqexp.train.memory import PeakMemory

    out_dir = out_dir or output_dir()
    logger = RecorderLogger(rec)
    meter = energy_meter(cfg)
    rec.set_tags({"energy_source": meter.source})
    callbacks = build_callbacks(cfg, out_dir / "checkpoints", meter if do_fit else None)
    trainer = build_trainer(cfg, logger, callbacks, out_dir)
    flag, ckpt_cb = callbacks["interrupt"], callbacks.get("checkpoint")
    import hqexp

    started = time.perf_counter()
    phases = {"time/startup_s": started - hqexp.STARTED}  # imports, composing, data, model, store
    with PeakMemory(device_of(cfg)) as peak:
        try:
            phases["time/test_s"] = _fit_then_test(trainer, task, dm, do_fit, ckpt, flag, ckpt_cb, trusted(cfg))
        except (SystemExit, KeyboardInterrupt) as exc:
            # Lightning turns an interrupt inside fit into SystemExit after its own clean-up;
            # the signal that caused it is known to hqexp.interrupts.
            import signal

            from hqexp.interrupts import Interrupted, received, shielded

            with shielded():
                logger.save()
            if not (flag.interrupted or isinstance(exc, KeyboardInterrupt) or received() is not None):
                rec.terminate("FAILED")
                raise
            raise Interrupted(received() or signal.SIGINT) from None  # the CLI guard ends the run KILLED
        except BaseException as exc:
            logger.save()
            err = monitor_error(exc) or exc
            why = str(err) if isinstance(err, HqexpError) else f"{type(err).__name__}: {err}"
            try:  # recording the failure must not hide it (the store may be on the full disk)
                rec.set_tags({"hqexp.error": why[:5000]})
                rec.terminate("FAILED")
            except Exception:  # noqa: BLE001
                pass
            raise err from None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    elapsed = time.perf_counter() - started
    cost = {"time/fit_s": elapsed, **phases, **peak.metrics()}
    if do_fit:
        cost["time/epochs"] = trainer.current_epoch
        if ckpt_cb is not None and ckpt_cb.best_model_score is not None:
            cost["val/best"] = float(ckpt_cb.best_model_score)  # the monitored value of the kept epoch
    bill = callbacks.get("qpu_bill")
    if bill is not None:  # the hardware bill: counted circuits, estimated price
        cost.update(bill.metrics())
        rec.set_tags(bill.tags())
    ops = callbacks.get("ops")
    if ops is not None:  # operations per classification and their named energy estimate
        cost.update(ops.metrics())
        rec.set_tags(ops.tags())
    rec.log_metrics(cost, step=trainer.global_step)  # test/* went through the logger already
    metrics.update(cost)
    logger.save()
    _record_outputs(
        rec,
        logger,
        task,
        dm,
        metrics,
        elapsed,
        trainer.current_epoch if do_fit else 0,
        ckpt_cb.best_model_path if do_fit and ckpt_cb is not None else None,
    )
    metrics["time/record_s"] = time.perf_counter() - started - elapsed  # plots, tables, artifacts
    rec.log_metrics({"time/record_s": metrics["time/record_s"]}, step=trainer.global_step)
    return metrics


def _fit_then_test(trainer, task, dm, do_fit: bool, ckpt: str | None, flag, ckpt_cb, trust: bool) -> float:
    """Fit (resuming from ``ckpt``) unless ``do_fit`` is False, then test the best kept epoch;
    returns the test's seconds."""
    best = None
    if do_fit:
        trainer.fit(task, datamodule=dm, ckpt_path=ckpt, weights_only=not trust)
        if flag.interrupted:
            raise KeyboardInterrupt
        best = (ckpt_cb.best_model_path or None) if ckpt_cb is not None else None
    t_test = time.perf_counter()
    if best is None:
        trainer.test(task, datamodule=dm, verbose=False)
    else:
        trainer.test(task, datamodule=dm, ckpt_path=best, weights_only=True, verbose=False)  # this run's own
    return time.perf_counter() - t_test


def _record_outputs(rec, logger, task, dm, metrics: dict, elapsed: float, epochs: int, best: str | None) -> None:
    """Plots, per-epoch and test tables, and the kept checkpoint, into the run."""
    figures = task.model.figures() if hasattr(task.model, "figures") else {}
    record.log_plots(rec, logger.history, task.test_outputs, dm.info.class_names, type(task.loss).__name__, figures)
    offset = getattr(task, "resumed_epochs", None) or 0
    rows = [{**r, "epoch": r["epoch"] + offset} for r in record.epoch_table(logger.history)]
    record.log_tables(rec, logger.history, task.test_outputs, metrics, elapsed, rows=rows, epochs=epochs)
    if best:
        rec.log_artifact(best, "checkpoints")


def completed_epochs(path: str, max_epochs: int, trust: bool = False) -> int:
    """Epochs the Lightning checkpoint at ``path`` has trained; one line when there is nothing left
    to train (a finished run resumed to the same ``trainer.max_epochs`` would silently do nothing).
    Read as data (:mod:`hqexp.safeload`) before Lightning sees it."""
    ckpt = safeload.load(path, f"ckpt_path {path!r}", trust)
    if not isinstance(ckpt, dict) or "epoch" not in ckpt:
        raise ConfigError(f"ckpt_path {path!r} is not a Lightning training checkpoint (use last.ckpt of a run)")
    done = int(ckpt["epoch"]) + 1  # saved when epoch `epoch` (0-based) had trained and validated
    if done >= max_epochs:
        raise ConfigError(
            f"ckpt_path {Path(path).name} has already trained {done} epoch(s), and "
            f"trainer.max_epochs={max_epochs}: nothing to resume; set trainer.max_epochs above {done} "
            "to train on (hqexp eval ckpt_path=… tests it as it is)"
        )
    return done


def monitor_error(exc: BaseException) -> ConfigError | None:
    """One line for a checkpoint / early-stopping ``monitor`` naming a metric the run does not log."""
    msg = str(exc)
    if "could not find the monitored key" in msg or ("conditioned on metric" in msg and "not available" in msg):
        import re

        key = re.search(r"monitor='([^']+)'|metric `([^`]+)`", msg)
        name = next((g for g in key.groups() if g), "?") if key else "?"
        logged = sorted(set(re.findall(r"[`']((?:train|val)/[\w/]+|lr)[`']", msg)) - {name})
        which = "callbacks.checkpoint.monitor" if "ModelCheckpoint" in msg else "callbacks.early_stopping.monitor"
        return ConfigError(f"{which}={name} is not a metric this run logs; choose one of: {', '.join(logged)}")
    return None


def train_one(
    cfg: DictConfig, fold: int | None, parent: str | None = None, out_dir: Path | None = None
) -> tuple[dict, object]:
    """Fit and test one model (one fold when ``fold`` is set); the run is left open."""
    import lightning as L

    from hqexp.privacy import check as check_privacy

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    from hqexp.quantum.noise import NoiseSpec

    for e in noise_entries(cfg):  # every noise_eval entry checked before any work
        NoiseSpec.from_config({k: v for k, v in e.items() if k != "name"})
    dm = build_datamodule(cfg, fold)
    check_privacy(
        OmegaConf.to_container(cfg.privacy, resolve=True),
        OmegaConf.to_container(cfg.attack, resolve=True),
        "none",
        dm.info.task,
        dm.info.n_classes,
        choice("dataset"),
    )
    model = build_model(cfg, dm.info)
    task = build_task(cfg, model, dm)
    tags = {"federation": "none", **({"resumed_from": cfg.ckpt_path} if cfg.ckpt_path else {}), **trust_tag(cfg)}
    if cfg.ckpt_path:
        task.resumed_epochs = completed_epochs(cfg.ckpt_path, cfg.trainer.max_epochs, trusted(cfg))
        task.resume_schedule = cfg.get("resume_schedule", "stretch")
        tags["resumed_epoch"] = str(task.resumed_epochs)
    if fold is not None:
        tags["cv.fold"] = str(fold)
    rec = record.start_run(cfg, "train", tags, parent=parent, name_suffix=f" fold {fold}" if parent else "")
    facts, used = model_facts(model)
    rec.set_tags({"backend_used": used})
    record.log_config(rec, cfg)
    rec.log_metrics({**facts, **({"data/skipped": dm.n_skipped} if hasattr(dm, "n_skipped") else {})})
    task.hqexp_meta = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "run_id": rec.run_id,
        "choices": {g: choice(g) for g in record.CHOICE_GROUPS},
    }
    metrics = fit_and_test(cfg, rec, task, dm, cfg.ckpt_path, do_fit=True, out_dir=out_dir)
    metrics.update(facts)
    if cfg.attack.name != "none":
        from hqexp.train.robustness import adversarial_scores

        adv = adversarial_scores(cfg, task.model, dm, task.loss)
        rec.log_metrics(adv)
        metrics.update(adv)
    backend_report(rec, model)
    wanted = noise_entries(cfg)
    if wanted:  # the kept model scored again under each noise of noise_eval
        from hqexp.train.noise_eval import evaluate_under_noise

        extra = evaluate_under_noise(cfg, task, dm, wanted)
        rec.log_metrics(extra)
        metrics.update(extra)
    if cfg.quantize.int8:
        if task.__class__.__name__ != "ClassificationTask":
            raise ConfigError("quantize.int8 is measured with classification metrics; use a classification dataset")
        from hqexp.train.int8 import int8_report

        q = int8_report(task.model, dm.test_dataloader(), dm.info.n_classes)
        rec.log_metrics(q)
        metrics.update(q)
    return metrics, rec
