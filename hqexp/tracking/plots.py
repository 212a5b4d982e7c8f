"""PNG figures a person would rather look at than read."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curves(history: dict[str, list[tuple[int, float]]], keys: list[str], title: str, ylabel: str, logy: bool = False):
    """Line plot of logged metrics against the step they were logged at."""
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = 0
    for k in keys:
        pts = history.get(k)
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, marker="." if len(pts) < 50 else None, label=k)
            drawn += 1
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if drawn:
        ax.legend()
    fig.tight_layout()
    return fig


def _roc_figure(curves, title: str, fontsize=None):
    """ROC curves for ``(name, positive mask, scores)`` triples; one-class labels are skipped."""
    from sklearn.metrics import auc, roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, pos, score in curves:
        if pos.all() or not pos.any():
            continue
        fpr, tpr, _ = roc_curve(pos, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=fontsize)
    fig.tight_layout()
    return fig


def roc(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]):
    """One-vs-rest ROC curves (one curve for binary problems)."""
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    return _roc_figure([(class_names[c], y_true == c, probs[:, c]) for c in classes], "ROC (test)")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]):
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(range(len(class_names))),
        display_labels=class_names,
        ax=ax,
        colorbar=False,
        xticks_rotation=45 if len(class_names) > 3 else "horizontal",
    )
    ax.set_title("confusion matrix (test)")
    fig.tight_layout()
    return fig


def predicted_vs_true(y_true: np.ndarray, y_pred: np.ndarray, name: str):
    """Scatter of predictions against targets with the y = x line."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=6, alpha=0.5)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel(f"true {name}")
    ax.set_ylabel(f"predicted {name}")
    ax.set_title("predicted vs true (test)")
    fig.tight_layout()
    return fig


def heatmap(matrix: np.ndarray, title: str, xlabel: str, ylabel: str):
    """A labelled heat map of a small matrix (e.g. learned qubit-pair strengths)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(matrix, cmap="viridis")
    n0, n1 = matrix.shape
    ax.set_xticks(range(n1))
    ax.set_yticks(range(n0))
    for i in range(n0):
        for j in range(n1):
            if matrix[i, j]:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def per_class_confusion(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]):
    """One 2x2 confusion matrix per label of a multi-label problem."""
    from sklearn.metrics import multilabel_confusion_matrix

    cms = multilabel_confusion_matrix(y_true, y_pred)
    fig, axes = plt.subplots(1, len(class_names), figsize=(2.6 * len(class_names), 2.8))
    for ax, cm, name in zip(np.atleast_1d(axes), cms, class_names):
        ax.imshow(cm, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center")
        ax.set_xticks([0, 1], ["no", "yes"])
        ax.set_yticks([0, 1], ["no", "yes"])
        ax.set_title(name)
        ax.set_xlabel("predicted")
    np.atleast_1d(axes)[0].set_ylabel("true")
    fig.tight_layout()
    return fig


def precision_recall(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]):
    """One-vs-rest precision-recall curves (one curve for binary problems), with average precision."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for c in classes:
        pos = y_true == c
        if pos.all() or not pos.any():
            continue
        prec, rec, _ = precision_recall_curve(pos, probs[:, c])
        ax.step(rec, prec, where="post", label=f"{class_names[c]} (AP {average_precision_score(pos, probs[:, c]):.3f})")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("precision-recall (test)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def multilabel_roc(y_true: np.ndarray, scores: np.ndarray, class_names: list[str]):
    """One ROC curve per label."""
    return _roc_figure(
        [(name, y_true[:, c] > 0.5, scores[:, c]) for c, name in enumerate(class_names)],
        "ROC per class (test)",
        fontsize=8,
    )


def lines(series: dict[str, tuple], title: str, xlabel: str, ylabel: str, logx: bool = False):
    """Line plot of named ``(xs, ys)`` series (e.g. validation F1 against round or MB sent)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="." if len(xs) < 60 else None, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logx:
        ax.set_xscale("log")
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gram_heatmap(K: np.ndarray, labels: np.ndarray, name: str):
    """A Gram matrix with its rows and columns ordered by class (a good kernel shows blocks)."""
    order = np.argsort(np.asarray(labels), kind="stable")
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(K[np.ix_(order, order)], cmap="viridis", vmin=0.0, vmax=1.0)
    edges = np.flatnonzero(np.diff(np.asarray(labels)[order])) + 0.5
    for e in edges:
        ax.axhline(e, color="white", lw=0.8)
        ax.axvline(e, color="white", lw=0.8)
    ax.set_title(f"{name}: training Gram matrix (sorted by class)")
    ax.set_xlabel("training sample")
    ax.set_ylabel("training sample")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig
