"""Classification metrics at a decision threshold, and choosing that threshold on validation data."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from smsguard.runtime import ConfigError, Decision


@dataclass(frozen=True)
class Metrics:
    """Spam is the positive class. Rates are fractions in [0, 1]."""

    n: int
    threshold: float
    accuracy: float
    spam_precision: float
    spam_recall: float
    spam_f1: float
    ham_false_positive_rate: float  # share of real messages flagged as spam: the costly error
    roc_auc: float
    pr_auc: float
    confusion: tuple[tuple[int, int], tuple[int, int]]  # [[ham kept, ham flagged], [spam missed, spam caught]]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["confusion"] = [list(row) for row in self.confusion]
        return data


def evaluate(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> Metrics:
    labels = np.asarray(labels).astype(bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    flagged = Decision(threshold).flags(probabilities)
    tp = int(np.sum(flagged & labels))
    fp = int(np.sum(flagged & ~labels))
    fn = int(np.sum(~flagged & labels))
    tn = int(np.sum(~flagged & ~labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both_classes = labels.any() and not labels.all()
    return Metrics(
        n=len(labels),
        threshold=float(threshold),
        accuracy=(tp + tn) / len(labels) if len(labels) else 0.0,
        spam_precision=precision,
        spam_recall=recall,
        spam_f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        ham_false_positive_rate=fp / (fp + tn) if fp + tn else 0.0,
        roc_auc=float(roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        pr_auc=float(average_precision_score(labels, probabilities)) if both_classes else float("nan"),
        confusion=((tn, fp), (fn, tp)),
    )


def threshold_for_ham_fpr(labels: np.ndarray, probabilities: np.ndarray, target: float) -> float:
    """The lowest threshold whose ham false-positive rate on these messages is at most `target`.

    Lowest, because every step up loses spam recall. At most floor(target * n_ham) ham messages
    may score at or above it; ties at the boundary push it up, never past the target.
    """
    if not 0.0 <= target < 1.0:
        msg = f"target ham false-positive rate must be in [0, 1), found {target}"
        raise ConfigError(msg)
    ham = np.sort(np.asarray(probabilities, dtype=np.float32)[~np.asarray(labels).astype(bool)])[::-1]
    if not len(ham):
        msg = "cannot choose a threshold for a ham false-positive rate: the validation part has no ham"
        raise ConfigError(msg)
    allowed = int(np.floor(target * len(ham) + 1e-9))
    if allowed >= len(ham):
        return 0.0
    # Flag only scores strictly above the (allowed+1)-th highest ham score.
    return float(np.nextafter(ham[allowed], np.float32(np.inf), dtype=np.float32))
