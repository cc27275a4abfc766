"""MediaPipe's TextClassifier as a client of a bundle (Android, iOS, web, Python): the spec of the ids it
computes (a port follows `client_ids`; a bundle's golden vectors are its test cases), and running a bundle's
client models in MediaPipe itself to prove them (`pip install 'smsguard[mediapipe]'`)."""

from smsguard.runtime._mediapipe import (
    LABELS_FILE,
    PAD,
    START,
    UNKNOWN,
    VOCAB_FILE,
    client_ids,
    client_text,
    delimiter_pattern,
    delimiters,
    incompatibility,
    pre_padded,
    vocab_file,
)
from smsguard.runtime._mediapipe_client import CLIENT, MediaPipeClassifier, check_clients, classifier, client_section, mediapipe_version, verify_clients

__all__ = [
    "CLIENT",
    "LABELS_FILE",
    "PAD",
    "START",
    "UNKNOWN",
    "VOCAB_FILE",
    "MediaPipeClassifier",
    "check_clients",
    "classifier",
    "client_ids",
    "client_section",
    "client_text",
    "delimiter_pattern",
    "delimiters",
    "incompatibility",
    "mediapipe_version",
    "pre_padded",
    "verify_clients",
    "vocab_file",
]
