"""PNG plots of a run: ROC and precision-recall curves, confusion matrix, loss and accuracy per epoch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server or in CI
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from smsguard.train._metrics import Metrics


def write_plots(folder: Path, labels: np.ndarray, probabilities: np.ndarray, metrics: Metrics, history: dict) -> list[Path]:
    """Plots of the test part (curves, confusion) and of training (history); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    fpr, tpr, _ = roc_curve(labels, probabilities)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"LSTM (AUC {metrics.roc_auc:.4f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.scatter([metrics.ham_false_positive_rate], [metrics.spam_recall], color="red", zorder=3, label=f"threshold {metrics.threshold:.3g}")
    ax.set(xlabel="ham false-positive rate", ylabel="spam recall", title="ROC, test part")
    ax.legend(loc="lower right")
    written.append(_save(fig, folder / "roc.png"))

    precision, recall, _ = precision_recall_curve(labels, probabilities)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, label=f"LSTM (AP {metrics.pr_auc:.4f})")
    ax.scatter([metrics.spam_recall], [metrics.spam_precision], color="red", zorder=3, label=f"threshold {metrics.threshold:.3g}")
    ax.set(xlabel="spam recall", ylabel="spam precision", title="Precision-recall, test part", ylim=(0, 1.02))
    ax.legend(loc="lower left")
    written.append(_save(fig, folder / "precision_recall.png"))

    fig, ax = plt.subplots(figsize=(4.5, 4))
    matrix = np.array(metrics.confusion)
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["ham", "spam"], yticklabels=["ham", "spam"])
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion, test part (threshold {metrics.threshold:.3g})")
    written.append(_save(fig, folder / "confusion_matrix.png"))

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in history:
            loss_ax.plot(epochs, history[key], style, marker="o", label=key)
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        if key in history:
            acc_ax.plot(epochs, history[key], style, marker="o", label=key)
    loss_ax.set(xlabel="epoch", title="binary cross-entropy")
    acc_ax.set(xlabel="epoch", title="accuracy")
    loss_ax.legend()
    acc_ax.legend()
    written.append(_save(fig, folder / "history.png"))
    return written


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
