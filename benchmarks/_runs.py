"""Trained runs and bundles a benchmark keeps between invocations (`--runs DIR`): DIR/seed-N/run and
DIR/seed-N/bundle, reused when the run was trained with the config asked for, else trained (and exported) there.
A run records its config, not the code that trained it: use a new DIR after changing the code."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path


def parse_field(item: str) -> tuple[str, object]:
    """`FIELD=VALUE` as a TrainConfig override, the value read as JSON where it parses (1, 0.5, null), else as text."""
    name, _, text = item.partition("=")
    try:
        return name, json.loads(text)
    except json.JSONDecodeError:
        return name, text


def trained_run(config, runs: Path, needs: tuple[str, ...] = ()) -> Path:
    """The run folder of `config` under `runs/seed-N`: reused when it was trained with `config` and holds the
    files `needs`, else trained there."""
    from smsguard.train import read_run_config, train

    run_dir = runs / f"seed-{config.seed}" / "run"
    if (run_dir / "config.json").is_file() and read_run_config(run_dir)[0] == replace(config, data=None) and all((run_dir / n).is_file() for n in needs):
        print(f"\n== seed {config.seed}: reusing {run_dir}", file=sys.stderr)
        return run_dir
    print(f"\n== seed {config.seed}: train ({config.preset} preset) -> {run_dir}", file=sys.stderr)
    train(config, run_dir, force=True)
    bundle_dir = run_dir.parent / "bundle"
    if bundle_dir.exists():  # exported from the run just replaced
        import shutil

        shutil.rmtree(bundle_dir)
    return run_dir


def exported_bundle(config, runs: Path, data: str | None) -> Path:
    """The bundle exported from `trained_run(config, runs)`, exported when it is not there yet."""
    from smsguard.export import ExportConfig, export

    run_dir = trained_run(config, runs)
    bundle_dir = run_dir.parent / "bundle"
    if not (bundle_dir / "manifest.json").is_file():
        print(f"== seed {config.seed}: export -> {bundle_dir}", file=sys.stderr)
        export(run_dir, bundle_dir, ExportConfig(data=data), force=True)
    return bundle_dir
