"""The latency benchmark behind the README table: train and export the default (tuned) model (or take
--bundle), then time every model with every installed backend beside Keras. Writes
benchmarks/results/latency.json and latency.md.

    python benchmarks/latency.py [--bundle DIR --keras-model RUN_DIR/model.keras] [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from smsguard.bench import BenchConfig, run_benchmark

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", help="a bundle to time (default: train and export one now)")
    parser.add_argument("--keras-model", help="the .keras model the bundle came from")
    parser.add_argument("--data", help="the SMS Spam Collection (default: ../shared/data)")
    parser.add_argument("--runs", type=int, default=BenchConfig.runs)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        bundle, keras_model = args.bundle, args.keras_model
        if bundle is None:
            from smsguard.export import ExportConfig, export
            from smsguard.train import TrainConfig, train

            run_dir, bundle = Path(work) / "run", Path(work) / "bundle"
            train(TrainConfig(data=args.data), run_dir)
            export(run_dir, bundle, ExportConfig(data=args.data))
            keras_model = str(run_dir / "model.keras")
        config = BenchConfig(
            runs=args.runs,
            keras_model=keras_model,
            json=str(RESULTS / "latency.json"),
            markdown=str(RESULTS / "latency.md"),
        )
        run_benchmark(Path(bundle), config)
    print(f"* Results in {RESULTS / 'latency.md'} and {RESULTS / 'latency.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
