"""What a run measures on its predictions: torchmetrics collections per task kind.

The Lightning tasks, the federated engines and the INT8 report all use these, so a
metric has one definition and one name everywhere (``val/<name>``, ``test/<name>``).
"""

from __future__ import annotations

import torchmetrics
from torchmetrics import classification as C


def _binary_as_two_classes(metric: torchmetrics.Metric) -> torchmetrics.Metric:
    # Binary collections receive P(class 1); macro metrics over both classes take hard labels.
    from torchmetrics.wrappers import LambdaInputTransformer

    return LambdaInputTransformer(metric, transform_pred=_threshold)


def _threshold(p):
    return (p > 0.5).long()


def classification_metrics(n_classes: int) -> torchmetrics.MetricCollection:
    """Accuracy, AUROC, F1, sensitivity, specificity, precision, AP and macro F1.

    Binary problems take P(class 1) and report the positive class (label 1) — except
    ``f1_macro``, the mean F1 of both classes; multiclass ones take probabilities
    ``[N, C]`` and report macro averages (there ``f1_macro`` equals ``f1``).
    Sensitivity = recall; ap = average precision (area under the precision-recall curve).
    """
    if n_classes == 2:
        return torchmetrics.MetricCollection(
            {
                "acc": C.BinaryAccuracy(),
                "auroc": C.BinaryAUROC(),
                "f1": C.BinaryF1Score(),
                "sensitivity": C.BinaryRecall(),
                "specificity": C.BinarySpecificity(),
                "precision": C.BinaryPrecision(),
                "ap": C.BinaryAveragePrecision(),
                "f1_macro": _binary_as_two_classes(C.MulticlassF1Score(2, average="macro")),
            }
        )
    return torchmetrics.MetricCollection(
        {
            "acc": C.MulticlassAccuracy(n_classes, average="micro"),
            "auroc": C.MulticlassAUROC(n_classes, average="macro"),
            "f1": C.MulticlassF1Score(n_classes, average="macro"),
            "sensitivity": C.MulticlassRecall(n_classes, average="macro"),
            "specificity": C.MulticlassSpecificity(n_classes, average="macro"),
            "precision": C.MulticlassPrecision(n_classes, average="macro"),
            "ap": C.MulticlassAveragePrecision(n_classes, average="macro"),
            "f1_macro": C.MulticlassF1Score(n_classes, average="macro"),
        }
    )


def regression_metrics() -> torchmetrics.MetricCollection:
    """RMSE, MSE, MAE and R² (in the target's units)."""
    return torchmetrics.MetricCollection(
        {
            "rmse": torchmetrics.MeanSquaredError(squared=False),
            "mse": torchmetrics.MeanSquaredError(),
            "mae": torchmetrics.MeanAbsoluteError(),
            "r2": torchmetrics.R2Score(),
        }
    )


def multilabel_metrics(n_labels: int) -> torchmetrics.MetricCollection:
    """Macro AUROC, macro F1 at 0.5 and exact-match accuracy over ``n_labels`` labels."""
    return torchmetrics.MetricCollection(
        {
            "auroc_macro": C.MultilabelAUROC(n_labels, average="macro"),
            "f1_macro": C.MultilabelF1Score(n_labels, average="macro"),
            "acc_exact": C.MultilabelExactMatch(n_labels),
        }
    )


def client_scores(kind: str, n_classes: int, probs, targets) -> dict[str, float]:
    """``acc`` (multi-label: ``acc_exact``) and ``f1_macro`` of one client's predictions:
    the per-client numbers of federated runs (functional forms, no AUROC on tiny shares).

    ``probs``: class probabilities ``[N, C]`` (classification) or label scores ``[N, L]``.
    """
    from torchmetrics.functional import classification as F

    if kind == "multilabel":
        y = targets.int()
        return {
            "acc_exact": float(F.multilabel_exact_match(probs, y, num_labels=n_classes)),
            "f1_macro": float(F.multilabel_f1_score(probs, y, num_labels=n_classes, average="macro")),
        }
    pred = probs.argmax(-1)
    return {
        "acc": float((pred == targets).float().mean()),
        "f1_macro": float(F.multiclass_f1_score(pred, targets, num_classes=n_classes, average="macro")),
    }


def task_scores(kind: str, n_classes: int, probs, targets) -> dict[str, float]:
    """The full collection of ``kind`` on pooled predictions (no prefix)."""
    if kind == "multilabel":
        m = multilabel_metrics(n_classes)
        m.update(probs, targets.int())
    else:
        m = classification_metrics(n_classes)
        m.update(probs[:, 1] if n_classes == 2 else probs, targets)
    return {k: float(v) for k, v in m.compute().items()}
