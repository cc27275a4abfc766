"""The CSV columns smsguard looks for when none is named: one list for `train` and `predict`."""

TEXT_COLUMNS = ("SMS", "sms", "text", "message", "Message", "v2")  # v1/v2: the Kaggle copy
LABEL_COLUMNS = ("Label", "label", "v1", "class", "Category")
