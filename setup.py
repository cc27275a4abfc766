"""The native LSTM kernel (smsguard/runtime/_lstm_c.c, which also holds the n-gram bag's C kernel).

On CPython 3.11 and later it is built against the stable ABI (`Py_LIMITED_API` 3.11), so one wheel,
tagged `cp311-abi3-<platform>`, serves 3.11, 3.12, 3.13 and later; on 3.10, whose limited API lacks the
buffer protocol, a source install builds a module for that version alone. Portable flags only: the
baseline instruction set of the target (SSE2 on x86-64, NEON on aarch64); the AVX2 variant is chosen at
run time by the kernel itself.

The extension is optional for a source install: without a compiler `pip install` still succeeds and the
runtime uses its NumPy backend (and the bag's Python reference) instead (`smsguard verify` and
`smsguard bench` say so). A wheel must carry the kernel: SMSGUARD_NATIVE=required (which the wheel builds
in devices/wheel_lane.sh and devices/arm64_lane.sh set) makes a failed build fail. Everything else is in
pyproject.toml.
"""

import os
import sys

from setuptools import Extension, setup

STABLE_ABI = sys.version_info >= (3, 11)  # the buffer protocol joined the limited API in 3.11
LIMITED_API_VERSION = "0x030B0000"  # the oldest CPython the abi3 module loads in
REQUIRED = os.environ.get("SMSGUARD_NATIVE", "") == "required"

flags = [] if sys.platform == "win32" else [
    "-O3", "-std=gnu11", "-fno-math-errno", "-Wno-unused-function",
    "-Werror=implicit-function-declaration",  # with Py_LIMITED_API: a call outside the limited API fails the build
]

setup(
    ext_modules=[
        Extension(
            "smsguard.runtime._lstm_c",
            sources=[os.path.join("smsguard", "runtime", "_lstm_c.c")],
            depends=[os.path.join("smsguard", "runtime", name) for name in ("_lstm_c_kernel.h", "_lstm_c_text.h")],
            extra_compile_args=flags,
            extra_link_args=[] if sys.platform in ("win32", "darwin") else ["-s"],  # no debug symbols: a third of the size
            define_macros=[("Py_LIMITED_API", LIMITED_API_VERSION)] if STABLE_ABI else [],
            py_limited_api=STABLE_ABI,
            optional=not REQUIRED,  # a failed build is a warning, not a failed install (unless building a wheel)
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}} if STABLE_ABI else {},
)
