"""The on-device runtime: tokenize, pad and infer with LiteRT or ONNX Runtime. Never imports TensorFlow."""

from smsguard.runtime._backends import BACKENDS, installed_backends
from smsguard.runtime._bundle import Bundle, BundleFile, GoldenVector
from smsguard.runtime._classifier import Classifier
from smsguard.runtime._errors import BackendError, BundleError, IntegrityError, SmsguardError
from smsguard.runtime._vocabulary import DEFAULT_FILTERS, TokenizerConfig, Vocabulary, pad_sequences, text_to_word_sequence

__all__ = [
    "BACKENDS",
    "DEFAULT_FILTERS",
    "BackendError",
    "Bundle",
    "BundleError",
    "BundleFile",
    "Classifier",
    "GoldenVector",
    "IntegrityError",
    "SmsguardError",
    "TokenizerConfig",
    "Vocabulary",
    "installed_backends",
    "pad_sequences",
    "text_to_word_sequence",
]
