"""Training: load and split the data, fit the tokenizer, train and evaluate the LSTM.

Names load on first use, so reading `TrainConfig` (the CLI's flags) costs neither pandas nor TensorFlow."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users

if TYPE_CHECKING:  # what editors and type checkers see; at run time `__getattr__` imports on first use
    from smsguard.train._config import DEFAULT_PRESET, PRESETS, ModelConfig, TrainConfig
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
    from smsguard.train._model import NGRAMS, folded_ngrams, inference_copy, load_model, word_branch
    from smsguard.train._run_folder import HISTORY_NAME, METRICS_NAME, RUN_CONFIG_NAME, RUN_MODEL_NAME, SPLIT_FORMAT, SPLIT_NAME
    from smsguard.train._trainer import TrainResult, read_run_config, train

_WHERE = {
    "DEFAULT_PRESET": "_config",
    "PRESETS": "_config",
    "ModelConfig": "_config",
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
    "NGRAMS": "_model",
    "folded_ngrams": "_model",
    "inference_copy": "_model",
    "load_model": "_model",
    "word_branch": "_model",
    "HISTORY_NAME": "_run_folder",
    "METRICS_NAME": "_run_folder",
    "RUN_CONFIG_NAME": "_run_folder",
    "RUN_MODEL_NAME": "_run_folder",
    "SPLIT_FORMAT": "_run_folder",
    "SPLIT_NAME": "_run_folder",
    "TrainResult": "_trainer",
    "read_run_config": "_trainer",
    "train": "_trainer",
}
__all__ = [
    "DEFAULT_PRESET",
    "HISTORY_NAME",
    "METRICS_NAME",
    "NGRAMS",
    "PRESETS",
    "RUN_CONFIG_NAME",
    "RUN_MODEL_NAME",
    "SPLIT_FORMAT",
    "SPLIT_NAME",
    "DataError",
    "Dataset",
    "Metrics",
    "ModelConfig",
    "Split",
    "TrainConfig",
    "TrainResult",
    "deduplicate",
    "evaluate",
    "folded_ngrams",
    "inference_copy",
    "load_messages",
    "load_model",
    "locate_data",
    "read_run_config",
    "read_split",
    "split_dataset",
    "threshold_for_ham_fpr",
    "train",
    "word_branch",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'smsguard.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"smsguard.train.{_WHERE[name]}"), name)
