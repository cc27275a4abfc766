"""What the C kernel should report for an instruction-set request on this CPU, worked out from the machine
and /proc/cpuinfo rather than from the kernel itself, so that a kernel ignoring the request is caught."""

from __future__ import annotations

import platform
from pathlib import Path

BASELINES = {"x86_64": "sse2", "amd64": "sse2", "aarch64": "neon", "arm64": "neon"}  # what every CPU of the architecture has


def cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text(encoding="utf-8", errors="replace") if cpuinfo.exists() else ""
    return {flag for line in text.splitlines() if line.startswith(("flags", "Features")) for flag in line.split(":", 1)[1].split()}


def expected_isa(isa: str) -> str:
    """'baseline': the architecture's baseline; 'auto': AVX2+FMA on an x86-64 CPU that has both, else the baseline."""
    machine = platform.machine().lower()
    baseline = BASELINES.get(machine, "generic")
    if isa == "auto" and baseline == "sse2" and {"avx2", "fma"} <= cpu_flags():
        return "avx2+fma"
    return baseline
