"""Export: a trained run -> quantized TFLite and ONNX models, vocabulary, parity report and manifest; and `pack`:
a bundle -> the files one device runs, as a bundle of its own.

Names load on first use, so reading `ExportConfig` (the CLI's flags) costs no TensorFlow."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users

if TYPE_CHECKING:  # what editors and type checkers see; at run time `__getattr__` imports on first use
    from smsguard.export._config import ExportConfig
    from smsguard.export._conformance import Conformance, compare, python_problems, write_conformance
    from smsguard.export._exporter import export
    from smsguard.export._golden import EDGE_CASES
    from smsguard.export._pack import PackConfig, PackReport, pack
    from smsguard.export._pack_targets import PACK_TARGETS, PackSpec, PackTarget
    from smsguard.export._parity import FLOAT_ATOL, MAX_ACCURACY_DROP, MIN_LABEL_AGREEMENT, ModelParity, ParityError
    from smsguard.export._quiet import ConversionError
    from smsguard.export._targets import QUANTIZED_ATOL, TARGETS, ExportTarget

_WHERE = {
    "ExportConfig": "_config",
    "Conformance": "_conformance",
    "compare": "_conformance",
    "python_problems": "_conformance",
    "write_conformance": "_conformance",
    "export": "_exporter",
    "EDGE_CASES": "_golden",
    "PackConfig": "_pack",
    "PackReport": "_pack",
    "pack": "_pack",
    "PACK_TARGETS": "_pack_targets",
    "PackSpec": "_pack_targets",
    "PackTarget": "_pack_targets",
    "FLOAT_ATOL": "_parity",
    "MAX_ACCURACY_DROP": "_parity",
    "MIN_LABEL_AGREEMENT": "_parity",
    "ModelParity": "_parity",
    "ParityError": "_parity",
    "ConversionError": "_quiet",
    "QUANTIZED_ATOL": "_targets",
    "TARGETS": "_targets",
    "ExportTarget": "_targets",
}
__all__ = [
    "EDGE_CASES",
    "FLOAT_ATOL",
    "MAX_ACCURACY_DROP",
    "MIN_LABEL_AGREEMENT",
    "PACK_TARGETS",
    "QUANTIZED_ATOL",
    "TARGETS",
    "Conformance",
    "ConversionError",
    "ExportConfig",
    "ExportTarget",
    "ModelParity",
    "PackConfig",
    "PackReport",
    "PackSpec",
    "PackTarget",
    "ParityError",
    "compare",
    "export",
    "pack",
    "python_problems",
    "write_conformance",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'smsguard.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"smsguard.export.{_WHERE[name]}"), name)
