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


AVX512 = {"avx512f", "avx512dq", "avx512bw", "avx512vl"}  # what the AVX-512 kernel is compiled for, beside AVX2 and FMA


def expected_isa(isa: str) -> str:
    """'baseline': the architecture's baseline; 'avx2': AVX2+FMA; 'avx512': AVX-512; 'auto': the widest of AVX-512
    (F, DQ, BW, VL with AVX2 and FMA), AVX2+FMA and the baseline this x86-64 CPU has; the baseline elsewhere."""
    machine = platform.machine().lower()
    baseline = BASELINES.get(machine, "generic")
    if baseline != "sse2" or isa == "baseline":
        return baseline
    flags = cpu_flags()
    wide = {"avx2", "fma"} <= flags
    if isa == "avx512" or (isa == "auto" and wide and flags >= AVX512):
        return "avx512"
    if isa == "avx2" or (isa == "auto" and wide):
        return "avx2+fma"
    return baseline
