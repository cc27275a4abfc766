"""The files of a training run folder (what `smsguard train` writes and `smsguard export` reads)."""

RUN_MODEL_NAME = "model.keras"
RUN_CONFIG_NAME = "config.json"
SPLIT_NAME = "split.json"
METRICS_NAME = "metrics.json"
HISTORY_NAME = "history.json"
OUT_OF_FOLD_NAME = "out_of_fold.json"  # a fused run's out-of-fold scores per branch, when its threshold was chosen on them (benchmarks/fusion.py)
SPLIT_FORMAT = 1  # a run's split.json
