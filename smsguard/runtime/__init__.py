"""The on-device runtime: tokenize, pad and infer with LiteRT, ONNX Runtime or NumPy. Never imports TensorFlow.

`smsguard.runtime.bundle` is the bundle format (names, versions, the typed manifest); the rest of the
public surface is re-exported here."""

from smsguard._errors import BackendError, BundleError, ConfigError, IntegrityError, ReloadError, SmsguardError
from smsguard.runtime._backends import BACKENDS, BackendInfo, Session, backend_info, distribution_version, installed_backends, open_session
from smsguard.runtime._classifier import Classification, Classifier
from smsguard.runtime._contract import DEFAULT_MAXLEN, Decision, InputLayout
from smsguard.runtime._explain import Explanation, Span
from smsguard.runtime._inputs import as_texts
from smsguard.runtime._native import NativeKernel
from smsguard.runtime._native import status as native_kernel
from smsguard.runtime._ngrams import NgramConfig, NgramHasher
from smsguard.runtime._personal import Correction, Personal, PersonalError, PersonalStateWarning
from smsguard.runtime._personal_fit import LearnerConfig
from smsguard.runtime._text import Lowercase, Normaliser, TextSpec
from smsguard.runtime._verify import VerifyReport, VerifyResult, verify_bundle
from smsguard.runtime._vocabulary import DEFAULT_FILTERS, Side, TokenizerConfig, Vocabulary, pad_sequences, text_to_word_sequence
from smsguard.runtime.bundle import (
    Bundle,
    BundleFile,
    FileKind,
    GoldenVector,
    Manifest,
    ModelFormat,
    Quantization,
    Source,
    TensorSpec,
    Variant,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_FILTERS",
    "DEFAULT_MAXLEN",
    "BackendError",
    "BackendInfo",
    "Bundle",
    "BundleError",
    "BundleFile",
    "Classification",
    "Classifier",
    "ConfigError",
    "Correction",
    "Decision",
    "Explanation",
    "FileKind",
    "GoldenVector",
    "InputLayout",
    "IntegrityError",
    "LearnerConfig",
    "Lowercase",
    "Manifest",
    "ModelFormat",
    "NativeKernel",
    "NgramConfig",
    "NgramHasher",
    "Normaliser",
    "Personal",
    "PersonalError",
    "PersonalStateWarning",
    "Quantization",
    "ReloadError",
    "Session",
    "Side",
    "SmsguardError",
    "Source",
    "Span",
    "TensorSpec",
    "TextSpec",
    "TokenizerConfig",
    "Variant",
    "VerifyReport",
    "VerifyResult",
    "Vocabulary",
    "as_texts",
    "backend_info",
    "distribution_version",
    "installed_backends",
    "native_kernel",
    "open_session",
    "pad_sequences",
    "text_to_word_sequence",
    "verify_bundle",
]
