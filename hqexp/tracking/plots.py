"""PNG figures a person would rather look at than read."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curves(history: dict[str, list[tuple[int, float]]], keys: list[str], title: str, ylabel: str,
           logy: bool = False):
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


def roc(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]):
    """One-vs-rest ROC curves (one curve for binary problems)."""
    from sklearn.metrics import auc, roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for c in classes:
        pos = y_true == c
        if pos.all() or not pos.any():
            continue
        fpr, tpr, _ = roc_curve(pos, probs[:, c])
        ax.plot(fpr, tpr, label=f"{class_names[c]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def confusion(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]):
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(range(len(class_names))), display_labels=class_names, ax=ax,
        colorbar=False,
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
