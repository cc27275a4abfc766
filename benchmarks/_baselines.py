"""The classic filters every accuracy benchmark sets beside the LSTM (benchmarks/accuracy.py, out_of_domain.py,
evasion.py), with common settings (not tuned here), and how each one's threshold is chosen."""

from __future__ import annotations

import numpy as np

SVM = "TF-IDF words + chars, LinearSVC"
NB = "TF-IDF words, multinomial NB"


def baselines():
    """The classic filters, with common settings (not tuned here): (name, unfitted pipeline, score function)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    svm = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        ),
        LinearSVC(C=1.0),
    )
    nb = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), MultinomialNB(alpha=0.1))
    return [
        (SVM, svm, lambda p, x: p.decision_function(x)),
        (NB, nb, lambda p, x: p.predict_proba(x)[:, 1]),
    ]


def baseline_threshold(name: str, config, pipeline, score, texts, labels, split) -> float:
    """A baseline's threshold, chosen the way the preset chooses the LSTM's: decision 0 for the SVM and 0.5 for
    naive Bayes without a target ham false-positive rate; with one, the lowest threshold meeting it on the
    validation part (`pipeline` fitted on the training part), or, with `threshold_folds`, on out-of-fold
    scores over train + validation (a fresh copy of `pipeline` fitted per fold)."""
    from smsguard.train import threshold_for_ham_fpr

    target = config.target_ham_fpr
    if target is None:
        return default_threshold(name)
    if not config.threshold_folds:
        return threshold_for_ham_fpr(labels[split.validation], score(pipeline, texts[split.validation]), target)
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    pool = np.concatenate([split.train, split.validation])
    oof = np.zeros(len(pool))
    for seen, held in StratifiedKFold(config.threshold_folds, shuffle=True, random_state=config.seed).split(pool, labels[pool]):
        fitted = clone(pipeline).fit(texts[pool[seen]], labels[pool[seen]])
        oof[held] = score(fitted, texts[pool[held]])
    return threshold_for_ham_fpr(labels[pool], oof, target)


def default_threshold(name: str) -> float:
    """A baseline's own decision threshold: 0 for the SVM's margin, 0.5 for naive Bayes' probability."""
    return 0.0 if name == SVM else 0.5
