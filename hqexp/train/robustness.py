"""Adversarial robustness of a trained model: its metrics on FGSM / PGD test inputs."""

from __future__ import annotations

from omegaconf import DictConfig


def adversarial_scores(cfg: DictConfig, model, dm, loss_fn) -> dict[str, float]:
    """``adv/test/*``: the model's metrics on adversarial test inputs (``attack=fgsm|pgd``)."""
    a = cfg.attack
    if a.name == "none":
        return {}
    from hqexp.privacy.attacks import adversarial
    from hqexp.tracking.metrics import task_scores

    logits, y = adversarial(
        model, loss_fn, dm.test_dataloader(), a.name, float(a.eps), int(a.steps or 10), a.step_size, cfg.seed
    )
    kind = dm.info.task
    probs = logits.sigmoid() if kind == "multilabel" else logits.softmax(-1)
    return {f"adv/test/{k}": v for k, v in task_scores(kind, dm.info.n_classes, probs, y).items()}
