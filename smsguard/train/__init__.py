"""Training: load and split the data, fit the tokenizer, train and evaluate the LSTM.

Names load on first use, so reading `TrainConfig` (the CLI's flags) costs neither pandas nor TensorFlow."""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users

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
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'smsguard.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"smsguard.train.{_WHERE[name]}"), name)
