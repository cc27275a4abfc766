"""Training: load and split the data, fit the tokenizer, train and evaluate the LSTM.

Names load on first use, so reading `TrainConfig` (the CLI's flags) costs neither pandas nor TensorFlow."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users

if TYPE_CHECKING:  # what editors and type checkers see; at run time `__getattr__` imports on first use
    from smsguard.train._config import TrainConfig
    from smsguard.train._data import (
        DataError,
        Dataset,
        Split,
        deduplicate,
        load_messages,
        locate_data,
        read_split,
        split_dataset,
    )
    from smsguard.train._metrics import Metrics, evaluate, threshold_for_ham_fpr
    from smsguard.train._trainer import TrainResult, read_run_config, train

_WHERE = {
    "TrainConfig": "_config",
    "DataError": "_data",
    "Dataset": "_data",
    "Split": "_data",
    "deduplicate": "_data",
    "load_messages": "_data",
    "locate_data": "_data",
    "read_split": "_data",
    "split_dataset": "_data",
    "Metrics": "_metrics",
    "evaluate": "_metrics",
    "threshold_for_ham_fpr": "_metrics",
    "TrainResult": "_trainer",
    "read_run_config": "_trainer",
    "train": "_trainer",
}
__all__ = [
    "DataError",
    "Dataset",
    "Metrics",
    "Split",
    "TrainConfig",
    "TrainResult",
    "deduplicate",
    "evaluate",
    "load_messages",
    "locate_data",
    "read_run_config",
    "read_split",
    "split_dataset",
    "threshold_for_ham_fpr",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'smsguard.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"smsguard.train.{_WHERE[name]}"), name)
