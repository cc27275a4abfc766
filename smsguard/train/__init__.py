"""Training: load and split the data, fit the tokenizer, train and evaluate the LSTM."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users

from smsguard.train._data import DataError, Dataset, Split, deduplicate, load_messages, locate_data, read_split, split_dataset  # noqa: E402
from smsguard.train._metrics import Metrics, evaluate, threshold_for_ham_fpr  # noqa: E402
from smsguard.train._trainer import TrainConfig, TrainResult, read_run_config, train  # noqa: E402

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
