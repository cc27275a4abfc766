"""The files of a training run folder (what `smsguard train` writes and `smsguard export` reads)."""

RUN_MODEL_NAME = "model.keras"
RUN_CONFIG_NAME = "config.json"
SPLIT_NAME = "split.json"
METRICS_NAME = "metrics.json"
HISTORY_NAME = "history.json"
SPLIT_FORMAT = 1  # a run's split.json
