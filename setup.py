"""The native LSTM kernel (smsguard/runtime/_lstm_c.c), built at install time with the system's C
compiler (it also holds the n-gram bag's C kernel). It is optional: without a compiler the install
still succeeds and the runtime uses its NumPy backend (and the bag's Python reference) instead
(`smsguard verify` and `smsguard bench` say so). Portable flags only: the baseline instruction set
of the target (SSE2 on x86-64, NEON on aarch64); the AVX2 variant is chosen at run time by the
kernel itself. Everything else is in pyproject.toml."""

import os
import sys

from setuptools import Extension, setup

portable = [] if sys.platform == "win32" else ["-O3", "-std=gnu11", "-fno-math-errno", "-Wno-unused-function"]

setup(
    ext_modules=[
        Extension(
            "smsguard.runtime._lstm_c",
            sources=[os.path.join("smsguard", "runtime", "_lstm_c.c")],
            depends=[os.path.join("smsguard", "runtime", name) for name in ("_lstm_c_kernel.h", "_lstm_c_text.h")],
            extra_compile_args=portable,
            optional=True,  # a failed build is a warning, not a failed install
        )
    ],
)
