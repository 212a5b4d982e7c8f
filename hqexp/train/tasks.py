"""One LightningModule per task kind. Models are plain nn.Modules."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from torch import nn

from hqexp.errors import ConfigError
from hqexp.optim import lightning_optimizers
from hqexp.tracking.metrics import classification_metrics, multilabel_metrics, regression_metrics

RESUME_SCHEDULES = ("stretch", "keep", "hold")


def rng_states() -> dict:
    """The global random states a training step draws from (Python, NumPy, torch CPU and CUDA)."""
    import random

    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()  # plain values: loadable with weights_only
    out = {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict) -> None:
    import random

    import numpy as np

    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def adapt_cosine(sched, max_epochs: int, how: str) -> str:
    """Reshape a restored cosine schedule for a run extended to ``max_epochs``; say what happened.

    ``stretch``: T_max becomes ``max_epochs`` and the learning rate jumps to that longer curve's
    value at this epoch; ``keep``: the saved T_max stays (past it the cosine rises again);
    ``hold``: the current learning rate stays for the added epochs.
    """
    import math

    if how not in RESUME_SCHEDULES:
        raise ConfigError(f"resume_schedule must be one of {', '.join(RESUME_SCHEDULES)}, got {how!r}")
    epoch, old = sched.last_epoch, sched.T_max
    lr_now = sched.optimizer.param_groups[0]["lr"]
    if how == "stretch":
        sched.T_max = max_epochs
        for g, base in zip(sched.optimizer.param_groups, sched.base_lrs):
            g["lr"] = sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * epoch / max_epochs)) / 2
    elif how == "hold":
        sched.base_lrs = [g["lr"] for g in sched.optimizer.param_groups]
        sched.eta_min, sched.T_max = lr_now, max(max_epochs, old)
    sched._last_lr = [g["lr"] for g in sched.optimizer.param_groups]
    lr = sched.optimizer.param_groups[0]["lr"]
    return (
        f"hqexp: resuming at epoch {epoch} of trainer.max_epochs={max_epochs}; the checkpoint's cosine schedule "
        f"ended at epoch {old}: resume_schedule={how} "
        + {
            "stretch": f"stretches it to {max_epochs} epochs (lr {lr_now:.3g} -> {lr:.3g})",
            "keep": "keeps it (past its end the learning rate rises again)",
            "hold": f"holds lr at {lr:.3g}",
        }[how]
        + "; the alternatives are "
        + ", ".join(h for h in RESUME_SCHEDULES if h != how)
    )


class _Task(L.LightningModule):
    """What every task shares: the wrapped model, the optimizer and schedule of its config objects
    (``conf/optim``, ``conf/scheduler``), the ``lr`` log, the
    test-output buffer, checkpoint metadata, and a training step that logs ``train/loss``
    and the model's ``extra_metrics()``."""

    def __init__(self, model: nn.Module, optim: Mapping | None, scheduler: Mapping | None, max_epochs: int) -> None:
        super().__init__()
        self.model = model
        self.optim_cfg = dict(optim or {})
        self.scheduler_cfg = dict(scheduler or {})
        self.max_epochs = max_epochs
        self.test_outputs: dict[str, torch.Tensor] = {}
        self._test_batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.hqexp_meta: dict = {}
        self.resumed_epochs: int | None = None  # epochs the checkpoint had trained, when resuming
        self.resume_schedule = "stretch"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x).float(), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        extra = getattr(self.model, "extra_metrics", None)
        if extra is not None:
            for k, v in extra().items():
                self.log(k, v, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        return loss

    def on_train_epoch_start(self) -> None:
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True, sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self._test_batches = []

    @staticmethod
    def _world() -> int:
        """Processes of a data-parallel job (1 outside one)."""
        import torch.distributed as dist

        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    def _total(self, value) -> float:
        """``value`` summed over the ranks of a data-parallel job (itself otherwise)."""
        if self._world() == 1:
            return float(value)
        t = torch.as_tensor(float(value), dtype=torch.float32, device=self.device)
        return float(self.trainer.strategy.reduce(t, reduce_op="sum"))

    def _test_rows(self) -> list[torch.Tensor]:
        """Each column of the test batches, concatenated. Under DDP, every rank's rows in
        dataset order: Lightning's DistributedSampler deals rows round-robin and pads the last
        round with repeats, which are cut here (the synced test metrics do count them: at most
        devices - 1 rows)."""
        cols = [torch.cat(c) for c in zip(*self._test_batches)]
        if self._world() == 1:
            return cols
        loaders = self.trainer.test_dataloaders
        n = len((loaders[0] if isinstance(loaders, (list, tuple)) else loaders).dataset)
        out = []
        for c in cols:
            g = self.all_gather(c.to(self.device))  # [world, rows per rank, ...]
            out.append(g.transpose(0, 1).reshape(-1, *c.shape[1:])[:n].cpu())
        return out

    def configure_optimizers(self):
        return lightning_optimizers(self.optim_cfg, self.scheduler_cfg, self.parameters(), self.max_epochs)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["hqexp"] = self.hqexp_meta  # config + run id: what `hqexp eval` rebuilds from
        checkpoint["hqexp_rng"] = rng_states()  # a resumed run draws what the uninterrupted one would

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "hqexp_rng" in checkpoint:
            set_rng_states(checkpoint["hqexp_rng"])

    def on_train_start(self) -> None:
        """On resume with a larger ``max_epochs``, reshape the cosine schedule as asked."""
        if self.resumed_epochs is None:
            return
        sched = self.lr_schedulers()
        if isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) and sched.T_max != self.max_epochs:
            print(adapt_cosine(sched, self.max_epochs, self.resume_schedule), flush=True)


class ClassificationTask(_Task):
    """Cross-entropy classification with accuracy, AUROC, F1, sensitivity, specificity,
    precision and average precision (torchmetrics). ``class_weights`` weight the loss.

    ``val/auroc_tb`` is the validation AUROC rounded to 1e-3 minus 1e-4·val loss: AUC decides,
    and among epochs with the same AUC (small validation sets saturate at 1.0 within a few
    epochs) the lower loss wins. Monitoring raw ``val/auroc`` would stop training and keep the
    first saturated epoch, whose ranking is perfect but whose 0.5 threshold is not yet learned.
    """

    def __init__(
        self,
        model: nn.Module,
        n_classes: int,
        optim: Mapping | None = None,
        scheduler: Mapping | None = None,
        max_epochs: int = 20,
        class_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__(model, optim, scheduler, max_epochs)
        self.n_classes = n_classes
        self.loss = nn.CrossEntropyLoss(weight=class_weights)
        self.val_metrics = classification_metrics(n_classes).clone(prefix="val/")
        self.test_metrics = classification_metrics(n_classes).clone(prefix="test/")
        self._val_loss_sum, self._val_n = 0.0, 0

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        p = logits.float().softmax(-1)
        return p[:, 1] if self.n_classes == 2 else p

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = self.loss(logits.float(), y)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self._val_loss_sum = self._val_loss_sum + loss.detach() * len(y)
        self._val_n += len(y)
        self.val_metrics.update(self._probs(logits), y)

    def on_validation_epoch_start(self) -> None:
        self._val_loss_sum, self._val_n = 0.0, 0

    def on_validation_epoch_end(self) -> None:
        out = self.val_metrics.compute()
        n = self._total(self._val_n)
        if n:
            mean_loss = min(self._total(self._val_loss_sum) / n, 9.99)  # keeps the tie-break inside one 1e-3 step
            auc = round(float(out["val/auroc"]), 3)
            out["val/auroc_tb"] = torch.tensor(auc - 1e-4 * mean_loss, device=self.device)
        self.log_dict(out, prog_bar=False, sync_dist=True)
        self.val_metrics.reset()

    def test_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("test/loss", self.loss(logits.float(), y), on_epoch=True, batch_size=len(y), sync_dist=True)
        self.test_metrics.update(self._probs(logits), y)
        self._test_batches.append((logits.float().softmax(-1).detach().cpu(), y.detach().cpu()))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute(), sync_dist=True)
        self.test_metrics.reset()
        probs, ys = self._test_rows()
        self.test_outputs = {"probs": probs, "targets": ys}


LOSSES = ("mse", "huber")


class RegressionTask(_Task):
    """Regression with MSE or Huber loss on standardised targets; metrics in target units.

    ``target_mean``/``target_std`` undo the data module's standardisation, so
    ``val/rmse``, ``val/mae`` and ``test/rmse`` are in the units of the target, not of
    the loss. A model with ``recon_weight > 0`` and ``reconstruction_loss(x)`` (the
    HQNN pre-autoencoder) adds that term to the training loss.
    """

    def __init__(
        self,
        model: nn.Module,
        optim: Mapping | None = None,
        scheduler: Mapping | None = None,
        max_epochs: int = 20,
        loss: str = "mse",
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ) -> None:
        if loss not in LOSSES:
            raise ConfigError(f"unknown regression loss {loss!r}; choose one of: {', '.join(LOSSES)}")
        super().__init__(model, optim, scheduler, max_epochs)
        self.loss = nn.MSELoss() if loss == "mse" else nn.HuberLoss()
        self.target_mean, self.target_std = target_mean, target_std
        metrics = regression_metrics()
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def units(self, t: torch.Tensor) -> torch.Tensor:
        """Standardised targets or predictions back in the target's units."""
        return t.float() * self.target_std + self.target_mean

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x), y)
        w = float(getattr(self.model, "recon_weight", 0.0) or 0.0)
        if w > 0:
            recon = self.model.reconstruction_loss(x)
            self.log("train/recon_loss", recon, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
            self.log("train/target_loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
            loss = loss + w * recon
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        pred = self(x)
        self.log("val/loss", self.loss(pred, y), on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.val_metrics.update(self.units(pred).flatten(), self.units(y).flatten())

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=False, sync_dist=True)
        self.val_metrics.reset()

    def test_step(self, batch, batch_idx):
        x, y = batch
        pred = self(x)
        self.log("test/loss", self.loss(pred, y), on_epoch=True, batch_size=len(y), sync_dist=True)
        p, t = self.units(pred).flatten(), self.units(y).flatten()
        self.test_metrics.update(p, t)
        self._test_batches.append((p.detach().cpu(), t.detach().cpu()))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute(), sync_dist=True)
        self.test_metrics.reset()
        preds, ys = self._test_rows()
        self.test_outputs = {"preds": preds, "targets": ys}


class MultiLabelTask(_Task):
    """Multi-label classification (BCE with logits) with the PTB-XL benchmark's metrics.

    ``test/auroc_macro`` is the benchmark's headline; per class it logs
    ``test/auroc/<CLASS>``, ``test/sensitivity/<CLASS>`` and ``test/specificity/<CLASS>``
    at threshold 0.5. A model with ``extra_metrics()`` (e.g. ``fusion/alpha``,
    ``snn/spike_rate``) has them logged every training step.
    """

    def __init__(
        self,
        model: nn.Module,
        class_names: tuple[str, ...],
        optim: Mapping | None = None,
        scheduler: Mapping | None = None,
        max_epochs: int = 20,
    ) -> None:
        super().__init__(model, optim, scheduler, max_epochs)
        self.class_names = tuple(class_names)
        n = len(self.class_names)
        self.loss = nn.BCEWithLogitsLoss()
        self.val_metrics = multilabel_metrics(n).clone(prefix="val/")
        self.test_metrics = multilabel_metrics(n).clone(prefix="test/")
        from torchmetrics import classification as C

        self.test_auroc_each = C.MultilabelAUROC(n, average=None)
        self.test_stats = C.MultilabelStatScores(n, average=None)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x).float()
        self.log(
            "val/loss", self.loss(logits.float(), y), on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True
        )
        self.val_metrics.update(logits.sigmoid(), y.int())

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), sync_dist=True)
        self.val_metrics.reset()

    def test_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x).float()
        p = logits.sigmoid()
        self.log("test/loss", self.loss(logits.float(), y), on_epoch=True, batch_size=len(y), sync_dist=True)
        self.test_metrics.update(p, y.int())
        self.test_auroc_each.update(p, y.int())
        self.test_stats.update(p, y.int())
        self._test_batches.append((p.detach().cpu(), y.detach().cpu()))

    def on_test_epoch_end(self) -> None:
        out = dict(self.test_metrics.compute())
        auc = self.test_auroc_each.compute()
        stats = self.test_stats.compute()  # [n, 5]: tp, fp, tn, fn, support
        for i, name in enumerate(self.class_names):
            tp, fp, tn, fn = (stats[i, j].float() for j in range(4))
            out[f"test/auroc/{name}"] = auc[i]
            out[f"test/sensitivity/{name}"] = tp / (tp + fn) if tp + fn > 0 else torch.tensor(float("nan"))
            out[f"test/specificity/{name}"] = tn / (tn + fp) if tn + fp > 0 else torch.tensor(float("nan"))
        self.log_dict(out, sync_dist=True)
        for m in (self.test_metrics, self.test_auroc_each, self.test_stats):
            m.reset()
        scores, ys = self._test_rows()
        self.test_outputs = {"scores": scores, "targets": ys}
