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
        return torchmetrics.MetricCollection({
            "acc": C.BinaryAccuracy(), "auroc": C.BinaryAUROC(), "f1": C.BinaryF1Score(),
            "sensitivity": C.BinaryRecall(), "specificity": C.BinarySpecificity(),
            "precision": C.BinaryPrecision(), "ap": C.BinaryAveragePrecision(),
            "f1_macro": _binary_as_two_classes(C.MulticlassF1Score(2, average="macro")),
        })
    return torchmetrics.MetricCollection({
        "acc": C.MulticlassAccuracy(n_classes, average="micro"),
        "auroc": C.MulticlassAUROC(n_classes, average="macro"),
        "f1": C.MulticlassF1Score(n_classes, average="macro"),
        "sensitivity": C.MulticlassRecall(n_classes, average="macro"),
        "specificity": C.MulticlassSpecificity(n_classes, average="macro"),
        "precision": C.MulticlassPrecision(n_classes, average="macro"),
        "ap": C.MulticlassAveragePrecision(n_classes, average="macro"),
        "f1_macro": C.MulticlassF1Score(n_classes, average="macro"),
    })


def regression_metrics() -> torchmetrics.MetricCollection:
    """RMSE, MSE, MAE and R² (in the target's units)."""
    return torchmetrics.MetricCollection({
        "rmse": torchmetrics.MeanSquaredError(squared=False),
        "mse": torchmetrics.MeanSquaredError(),
        "mae": torchmetrics.MeanAbsoluteError(),
        "r2": torchmetrics.R2Score(),
    })


def multilabel_metrics(n_labels: int) -> torchmetrics.MetricCollection:
    """Macro AUROC, macro F1 at 0.5 and exact-match accuracy over ``n_labels`` labels."""
    return torchmetrics.MetricCollection({
        "auroc_macro": C.MultilabelAUROC(n_labels, average="macro"),
        "f1_macro": C.MultilabelF1Score(n_labels, average="macro"),
        "acc_exact": C.MultilabelExactMatch(n_labels),
    })
