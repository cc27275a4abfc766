"""MkDocs hook: the plots benchmarks write (`benchmarks/results/*.png`) are served as `assets/NAME.png`,
so that a page shows the file the benchmark wrote, never a copy of it."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def on_files(files, config):  # MkDocs calls it once, with every file of the site
    for image in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"assets/{image.name}", abs_src_path=str(image)))
    return files
